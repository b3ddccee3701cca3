/*
 * base64url decoding with one 256-entry table: a character's 6-bit value, or
 * a flag for anything outside [A-Za-z0-9_-]. Validity is the OR of the
 * entries (no branch per character: a signature's characters are random and
 * any branch on them mispredicts), decoding is four lookups per 3 bytes. No
 * allocation.
 */
#include "lib/b64url.h"

#define XX 0x40 /* not a base64url character */

/* clang-format off */
static const unsigned char values[256] = {
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, XX, XX, XX,
    XX,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, 63,
    XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};
/* clang-format on */

#undef XX

bool rr_b64url_valid(const char *in, size_t len)
{
    const unsigned char *p = (const unsigned char *)in;
    unsigned bad = 0;

    if (len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++)
        bad |= values[p[i]];
    return (bad & 0x40) == 0;
}

bool rr_b64url_canonical(const char *in, size_t len)
{
    /* A last quantum of 2 characters carries 8 bits of 12, one of 3 carries 16 of 18. */
    static const unsigned spare_mask[4] = {0, 0, 0x0f, 0x03};

    if (!rr_b64url_valid(in, len))
        return false;
    return len == 0 || (values[(unsigned char)in[len - 1]] & spare_mask[len % 4]) == 0;
}

ssize_t rr_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    unsigned long v;

    if (!rr_b64url_valid(in, len))
        return -1;
    for (; i + 4 <= len; i += 4, o += 3) {
        v = (unsigned long)values[p[i]] << 18 | (unsigned long)values[p[i + 1]] << 12 |
            (unsigned long)values[p[i + 2]] << 6 | values[p[i + 3]];
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
    }
    if (len - i >= 2) { /* 2 or 3 characters left: 1 or 2 bytes */
        v = (unsigned long)values[p[i]] << 18 | (unsigned long)values[p[i + 1]] << 12;
        out[o++] = (unsigned char)(v >> 16);
        if (len - i == 3) {
            v |= (unsigned long)values[p[i + 2]] << 6;
            out[o++] = (unsigned char)(v >> 8);
        }
    }
    return (ssize_t)o;
}
