/*
 * Picks the client's token out of the four places it may travel in. Only
 * finds it: whether it is a valid JWT is jwt_verify.c's business.
 */
#include "lib/token_pick.h"

#include <string.h>
#include <strings.h>

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims optional white space around [*p, *p + *len); true when something remains. */
static bool trim(const char **p, size_t *len)
{
    while (*len > 0 && ows((*p)[0])) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && ows((*p)[*len - 1]))
        (*len)--;
    return *len > 0;
}

/* "Bearer <token>" (RFC 6750 §2.1): the scheme is case-insensitive, then at least one space. */
static bool from_bearer(const char *v, size_t len, const char **tok, size_t *tlen)
{
    static const char scheme[] = "bearer ";
    const size_t n = sizeof(scheme) - 1;

    trim(&v, &len);
    if (len < n || strncasecmp(v, scheme, n) != 0)
        return false;
    *tok = v + n;
    *tlen = len - n;
    return trim(tok, tlen);
}

/* The first "bearer.<token>" item of a comma-separated subprotocol list. */
static bool from_proto(const char *v, size_t len, const char **tok, size_t *tlen)
{
    static const char prefix[] = "bearer.";
    const size_t n = sizeof(prefix) - 1;

    while (len > 0) {
        const char *comma = memchr(v, ',', len);
        size_t ilen = comma ? (size_t)(comma - v) : len;
        const char *item = v;

        if (trim(&item, &ilen) && ilen > n && memcmp(item, prefix, n) == 0) {
            *tok = item + n;
            *tlen = ilen - n;
            return true;
        }
        if (!comma)
            break;
        len -= (size_t)(comma + 1 - v);
        v = comma + 1;
    }
    return false;
}

/* A cookie value may be wrapped in double quotes (RFC 6265 §4.1.1). */
static bool from_cookie(const char *v, size_t len, const char **tok, size_t *tlen)
{
    if (!trim(&v, &len))
        return false;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    *tok = v;
    *tlen = len;
    return trim(tok, tlen);
}

bool rr_token_pick(const struct rr_token_inputs *in, const char **tok, size_t *len)
{
    *tok = NULL;
    *len = 0;
    if (from_bearer(in->bearer, in->bearer_len, tok, len))
        return true;
    *tok = in->qtoken;
    *len = in->qtoken_len;
    if (trim(tok, len))
        return true;
    if (from_proto(in->proto, in->proto_len, tok, len))
        return true;
    if (from_cookie(in->cookie, in->cookie_len, tok, len))
        return true;
    *tok = NULL;
    *len = 0;
    return false;
}
