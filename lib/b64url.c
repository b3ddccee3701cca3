/*
 * base64url decoding on top of OpenSSL's EVP_DecodeBlock. It exists because
 * OpenSSL only knows the standard alphabet with '=' padding: we translate
 * '-' and '_' to '+' and '/', pad the last quantum, and let OpenSSL decode.
 * No allocation: the translation goes through a small stack buffer.
 */
#include "lib/b64url.h"

#include <openssl/evp.h>
#include <string.h>

#define CHUNK 256 /* input characters translated per EVP_DecodeBlock call; a multiple of 4 */

/* Bitwise, not short-circuit: a signature's characters are random, and a
 * branch per character class mispredicts (it was 6% of an RS256 check). */
static bool b64url_char(unsigned char c)
{
    return ((unsigned)(c - 'A') < 26) | ((unsigned)(c - 'a') < 26) | ((unsigned)(c - '0') < 10) |
           (c == '-') | (c == '_');
}

bool rr_b64url_valid(const char *in, size_t len)
{
    if (len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!b64url_char((unsigned char)in[i]))
            return false;
    return true;
}

/* The value of a base64url character; the caller has checked that it is one. */
static unsigned b64url_value(unsigned char c)
{
    return c >= 'A' && c <= 'Z'   ? (unsigned)(c - 'A')
           : c >= 'a' && c <= 'z' ? (unsigned)(c - 'a') + 26
           : c >= '0' && c <= '9' ? (unsigned)(c - '0') + 52
           : c == '-'             ? 62
                                  : 63;
}

bool rr_b64url_canonical(const char *in, size_t len)
{
    /* A last quantum of 2 characters carries 8 bits of 12, one of 3 carries 16 of 18. */
    static const unsigned spare_mask[4] = {0, 0, 0x0f, 0x03};

    if (!rr_b64url_valid(in, len))
        return false;
    return len == 0 || (b64url_value((unsigned char)in[len - 1]) & spare_mask[len % 4]) == 0;
}

ssize_t rr_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    unsigned char tmp[CHUNK];
    size_t done = 0, outlen = 0;

    if (!rr_b64url_valid(in, len))
        return -1;
    while (done < len) {
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        size_t pad = (4 - n % 4) % 4;

        for (size_t i = 0; i < n; i++) {
            char c = in[done + i];
            tmp[i] = c == '-' ? '+' : c == '_' ? '/' : (unsigned char)c;
        }
        memset(tmp + n, '=', pad);
        int got = EVP_DecodeBlock(out + outlen, tmp, (int)(n + pad));
        if (got < 0)
            return -1;
        /* EVP_DecodeBlock counts the zero bytes the padding stands for. */
        outlen += (size_t)got - pad;
        done += n;
    }
    return (ssize_t)outlen;
}
