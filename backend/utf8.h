/*
 * Incremental UTF-8 validation (RFC 3629), as RFC 6455 requires of text
 * messages and close reasons. The state survives between calls, so a message
 * cut at any byte validates the same as in one piece, and a bad byte is
 * reported as soon as it is fed, not when the message ends.
 *
 * Validation only: nothing is decoded, copied or allocated.
 */
#ifndef RR_UTF8_H
#define RR_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A zeroed struct is a validator at the start of a message. */
struct ws_utf8 {
    uint32_t state;
};

void ws_utf8_init(struct ws_utf8 *u);

/* Feeds the next bytes. Returns false once the input so far can never be
 * valid UTF-8; from then on every call returns false. */
bool ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t len);

/* True when everything fed is valid and ends on a character boundary. */
bool ws_utf8_complete(const struct ws_utf8 *u);

/* The whole of p is valid UTF-8. */
bool ws_utf8_valid(const uint8_t *p, size_t len);

#endif
