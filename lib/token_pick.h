/*
 * Where a client's token comes from, first present wins (DESIGN.md §3):
 * `Authorization: Bearer <jwt>`, the access_token query argument, the
 * `bearer.<jwt>` item of Sec-WebSocket-Protocol, the rr_token cookie.
 * Pure: the inputs are the raw header/argument values (len 0 when absent).
 */
#ifndef RR_TOKEN_PICK_H
#define RR_TOKEN_PICK_H

#include <stdbool.h>
#include <stddef.h>

struct rr_token_inputs {
    const char *bearer; /* whole Authorization header value */
    size_t bearer_len;
    const char *qtoken; /* access_token query argument */
    size_t qtoken_len;
    const char *proto; /* whole Sec-WebSocket-Protocol header value */
    size_t proto_len;
    const char *cookie; /* rr_token cookie value */
    size_t cookie_len;
};

/* Finds the token. Returns true and points *tok and *len into the inputs, or
 * false when no source holds one (an Authorization header that is not
 * "Bearer <x>" counts as absent). Surrounding spaces are trimmed. */
bool rr_token_pick(const struct rr_token_inputs *in, const char **tok, size_t *len);

#endif
