/*
 * permessage-deflate (RFC 7692) on zlib. The server compresses with no
 * context takeover (it always says server_no_context_takeover), so a room
 * message is compressed once and the same bytes go to every recipient that
 * negotiated the extension. Inflating is per connection: a client may keep
 * its compression context between messages, and then so must we.
 */
#ifndef RR_PMD_H
#define RR_PMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* The server's one compressor. */
struct pmd_deflater {
    z_stream zs;
    bool ready;
    uint8_t *out;
    size_t cap;
};

int pmd_deflater_init(struct pmd_deflater *d, int level);
void pmd_deflater_free(struct pmd_deflater *d);
/* Compresses one message (raw deflate, the 00 00 ff ff tail removed).
 * Returns 0 and points *out into the deflater's buffer (valid until the next
 * call), or -1 when out of memory. */
int pmd_compress(struct pmd_deflater *d, const uint8_t *in, size_t len, const uint8_t **out,
                 size_t *out_len);

/* A connection's decompressor. */
struct pmd_inflater {
    z_stream zs;
    bool ready;
    bool reset_each;      /* the client said client_no_context_takeover */
    unsigned window_bits; /* the client's max window (8..15); 8 is read as 9 (zlib) */
};

void pmd_inflater_init(struct pmd_inflater *f, unsigned window_bits, bool reset_each);
void pmd_inflater_free(struct pmd_inflater *f);

enum pmd_result { PMD_OK, PMD_TOO_BIG, PMD_BAD_DATA, PMD_NO_MEMORY };

/* Inflates one message into out, which has room for cap + 1 bytes; more
 * than cap bytes is PMD_TOO_BIG (--max-message applies to what a message
 * inflates to, not to its compressed size). */
enum pmd_result pmd_inflate(struct pmd_inflater *f, const uint8_t *in, size_t len, uint8_t *out,
                            size_t cap, size_t *out_len);

#endif
