/*
 * permessage-deflate, see pmd.h. zlib does the compression; this file only
 * frames it the way RFC 7692 §7.2 says (raw deflate, sync flush, the final
 * 00 00 ff ff removed by the sender and put back by the receiver).
 */
#include "backend/pmd.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

int pmd_deflater_init(struct pmd_deflater *d, int level)
{
    memset(d, 0, sizeof(*d));
    if (deflateInit2(&d->zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    d->ready = true;
    return 0;
}

void pmd_deflater_free(struct pmd_deflater *d)
{
    if (d->ready)
        deflateEnd(&d->zs);
    free(d->out);
    memset(d, 0, sizeof(*d));
}

int pmd_compress(struct pmd_deflater *d, const uint8_t *in, size_t len, const uint8_t **out,
                 size_t *out_len)
{
    size_t need = deflateBound(&d->zs, len) + 16;
    if (need > d->cap) {
        uint8_t *nb = realloc(d->out, need);
        if (!nb)
            return -1;
        d->out = nb;
        d->cap = need;
    }
    deflateReset(&d->zs);
    d->zs.next_in = (Bytef *)(uintptr_t)in;
    d->zs.avail_in = (uInt)len;
    d->zs.next_out = d->out;
    d->zs.avail_out = (uInt)d->cap;
    if (deflate(&d->zs, Z_SYNC_FLUSH) != Z_OK || d->zs.avail_in != 0)
        return -1;
    size_t n = d->cap - d->zs.avail_out;
    if (n >= 4 && memcmp(d->out + n - 4, sync_tail, 4) == 0)
        n -= 4;
    *out = d->out;
    *out_len = n;
    return 0;
}

void pmd_inflater_init(struct pmd_inflater *f, unsigned window_bits, bool reset_each)
{
    memset(f, 0, sizeof(*f));
    f->window_bits = window_bits < 9 ? 9 : window_bits > 15 ? 15 : window_bits;
    f->reset_each = reset_each;
}

void pmd_inflater_free(struct pmd_inflater *f)
{
    if (f->ready)
        inflateEnd(&f->zs);
    f->ready = false;
}

/* Feeds in[] to the inflater, writing at out + *off, at most cap bytes in all. */
static enum pmd_result feed(struct pmd_inflater *f, const uint8_t *in, size_t len, uint8_t *out,
                            size_t cap, size_t *off)
{
    f->zs.next_in = (Bytef *)(uintptr_t)in;
    f->zs.avail_in = (uInt)len;
    while (f->zs.avail_in > 0) {
        if (*off == cap)
            return PMD_TOO_BIG;
        f->zs.next_out = out + *off;
        f->zs.avail_out = (uInt)(cap - *off);
        int rc = inflate(&f->zs, Z_SYNC_FLUSH);
        *off = cap - f->zs.avail_out;
        if (rc == Z_STREAM_END)
            return f->zs.avail_in == 0 ? PMD_OK : PMD_BAD_DATA;
        if (rc == Z_BUF_ERROR && f->zs.avail_out == 0)
            return PMD_TOO_BIG;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return rc == Z_MEM_ERROR ? PMD_NO_MEMORY : PMD_BAD_DATA;
    }
    return PMD_OK;
}

enum pmd_result pmd_inflate(struct pmd_inflater *f, const uint8_t *in, size_t len, uint8_t *out,
                            size_t cap, size_t *out_len)
{
    if (!f->ready) {
        if (inflateInit2(&f->zs, -(int)f->window_bits) != Z_OK)
            return PMD_NO_MEMORY;
        f->ready = true;
    }
    /* One byte of room past the limit tells "exactly cap" from "more". */
    size_t off = 0;
    enum pmd_result r = feed(f, in, len, out, cap + 1, &off);
    if (r == PMD_OK)
        r = feed(f, sync_tail, sizeof(sync_tail), out, cap + 1, &off);
    if (r == PMD_OK && off > cap)
        r = PMD_TOO_BIG;
    /* After a bad or oversized message the connection is closed; after a
     * good one, the context is dropped when the client does not keep it. */
    if (r != PMD_OK || f->reset_each)
        pmd_inflater_free(f);
    *out_len = off;
    return r;
}
