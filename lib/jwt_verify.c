/*
 * The checks of one JWT, in order: size, shape, header (alg, crit, typ, kid),
 * choice of keys, payload, signature, then exp/nbf/iss/aud.
 *
 * The signature is checked (jwt_sig.c, OpenSSL) against keys parsed once at
 * load (jwt_keys.c), and only ever with a key whose kind and allowed
 * algorithms fit the header's alg: the token names the algorithm, the key
 * decides whether it may. The header and the claims come from our own strict
 * parse (duplicate names refused). Not here: loading keys (jwt_keys.c), the
 * OpenSSL calls (jwt_sig.c), caching (token_cache.c).
 */
#include "lib/jwt_verify.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/b64url.h"
#include "lib/jwt_sig.h"

/* The longest signature any key can have: RSA with OpenSSL's largest modulus, 16384 bits. */
#define SIG_MAX 2048
#define SIG_B64_MAX ((SIG_MAX * 4 + 2) / 3) /* its unpadded base64url length */

static const char *const err_names[RR_AUTH_ERR_COUNT] = {
    [RR_AUTH_OK] = "ok",
    [RR_AUTH_MISSING] = "missing",
    [RR_AUTH_MALFORMED] = "malformed",
    [RR_AUTH_ALG_NOT_ALLOWED] = "alg_not_allowed",
    [RR_AUTH_UNKNOWN_KID] = "unknown_kid",
    [RR_AUTH_BAD_SIGNATURE] = "bad_signature",
    [RR_AUTH_EXPIRED] = "expired",
    [RR_AUTH_NOT_YET_VALID] = "not_yet_valid",
    [RR_AUTH_BAD_ISSUER] = "bad_issuer",
    [RR_AUTH_BAD_AUDIENCE] = "bad_audience",
    [RR_AUTH_TOO_LARGE] = "too_large",
};

const char *rr_auth_err_name(enum rr_auth_err e)
{
    return (unsigned)e < RR_AUTH_ERR_COUNT ? err_names[e] : "unknown";
}

/* One base64url segment holding a JSON object; NULL if it is anything else. */
static json_t *decode_object(const char *seg, size_t len)
{
    unsigned char *buf = malloc(RR_B64URL_DECODED_MAX(len));
    json_t *obj = NULL;
    ssize_t n;

    if (!buf)
        return NULL;
    n = rr_b64url_decode(seg, len, buf);
    if (n > 0)
        obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* The key kind an algorithm family needs: the guard against key confusion. */
static enum rr_key_kind alg_kind(enum rr_jwt_alg alg)
{
    return alg <= RR_ALG_HS512 ? RR_KEY_HMAC : alg <= RR_ALG_RS512 ? RR_KEY_RSA : RR_KEY_EC;
}

static bool key_allows(const struct rr_key *k, enum rr_jwt_alg alg)
{
    return (k->allowed & (1u << alg)) && k->kind == alg_kind(alg);
}

/* Whether key k is a candidate: the kid must match when the token has one. */
static bool key_matches(const struct rr_key *k, const char *kid)
{
    return !kid || (k->kid && strcmp(k->kid, kid) == 0);
}

static enum rr_auth_err check_header(json_t *hdr, enum rr_jwt_alg *alg, const char **kid)
{
    json_t *alg_j = json_object_get(hdr, "alg"), *kid_j = json_object_get(hdr, "kid");
    const char *typ = json_string_value(json_object_get(hdr, "typ"));

    if (!json_is_string(alg_j))
        return RR_AUTH_ALG_NOT_ALLOWED;
    *alg = rr_jwt_alg_parse(json_string_value(alg_j), json_string_length(alg_j));
    if (*alg == RR_ALG_NONE)
        return RR_AUTH_ALG_NOT_ALLOWED;
    /* RFC 7515 §4.1.11: we understand no extension, so a crit header is refused. */
    if (json_object_get(hdr, "crit"))
        return RR_AUTH_MALFORMED;
    /* Another typ is another kind of token (RFC 8725 §3.11; "at+jwt" is an access token). */
    if (typ && strcasecmp(typ, "JWT") != 0)
        return RR_AUTH_MALFORMED;
    if (kid_j && !json_is_string(kid_j))
        return RR_AUTH_MALFORMED;
    *kid = json_string_value(kid_j);
    return RR_AUTH_OK;
}

/* With a kid: UNKNOWN_KID if no key has it. Then ALG_NOT_ALLOWED if no candidate allows alg. */
static enum rr_auth_err check_keys(const struct rr_keyset *ks, enum rr_jwt_alg alg, const char *kid)
{
    bool kid_known = false;

    for (size_t i = 0; i < ks->n; i++) {
        if (!key_matches(&ks->keys[i], kid))
            continue;
        kid_known = true;
        if (key_allows(&ks->keys[i], alg))
            return RR_AUTH_OK;
    }
    return kid && !kid_known ? RR_AUTH_UNKNOWN_KID : RR_AUTH_ALG_NOT_ALLOWED;
}

/* The signature over "header.payload" (the first len bytes of token), tried
 * with every candidate key. A signature not spelled canonically (a last
 * character with bits beyond the data) is refused: one token, one spelling. */
static enum rr_auth_err check_signature(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks,
                                        enum rr_jwt_alg alg, const char *kid, const char *token,
                                        size_t len, const char *sig_b64, size_t sig_b64_len)
{
    const unsigned char *in = (const unsigned char *)token;
    unsigned char sig[RR_B64URL_DECODED_MAX(SIG_B64_MAX)];
    bool ok = false;
    ssize_t n;

    if (sig_b64_len > SIG_B64_MAX || !rr_b64url_canonical(sig_b64, sig_b64_len))
        return RR_AUTH_BAD_SIGNATURE;
    n = rr_b64url_decode(sig_b64, sig_b64_len, sig);
    if (n < 0)
        return RR_AUTH_BAD_SIGNATURE;
    for (size_t i = 0; i < ks->n && !ok; i++)
        if (key_matches(&ks->keys[i], kid) && key_allows(&ks->keys[i], alg))
            ok = rr_jwt_sig_check(sc, ks, i, alg, in, len, sig, (size_t)n);
    return ok ? RR_AUTH_OK : RR_AUTH_BAD_SIGNATURE;
}

static bool aud_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach (aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

/* Times are compared as doubles: exp may be fractional, and no sum can overflow. */
static enum rr_auth_err check_claims(json_t *c, const struct rr_jwt_policy *pol, int64_t now)
{
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    const char *iss = json_string_value(json_object_get(c, "iss"));
    double t = (double)now, leeway = (double)pol->leeway;

    if (exp && !json_is_number(exp))
        return RR_AUTH_MALFORMED;
    if (nbf && !json_is_number(nbf))
        return RR_AUTH_MALFORMED;
    if (!exp && !pol->allow_no_exp)
        return RR_AUTH_EXPIRED;
    if (exp && t > json_number_value(exp) + leeway)
        return RR_AUTH_EXPIRED;
    if (nbf && t + leeway < json_number_value(nbf))
        return RR_AUTH_NOT_YET_VALID;
    if (pol->issuer && (!iss || strcmp(iss, pol->issuer) != 0))
        return RR_AUTH_BAD_ISSUER;
    if (pol->audience && !aud_matches(json_object_get(c, "aud"), pol->audience))
        return RR_AUTH_BAD_AUDIENCE;
    return RR_AUTH_OK;
}

enum rr_auth_err rr_jwt_verify(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks,
                               const struct rr_jwt_policy *pol, const char *token, size_t len,
                               int64_t now, json_t **claims)
{
    const char *dot1, *dot2, *kid = NULL;
    enum rr_jwt_alg alg = RR_ALG_NONE;
    json_t *hdr, *payload = NULL;
    enum rr_auth_err rc;

    *claims = NULL;
    if (len == 0)
        return RR_AUTH_MISSING;
    if (pol->max_token_bytes && len > pol->max_token_bytes)
        return RR_AUTH_TOO_LARGE;
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || !rr_b64url_valid(dot2 + 1, len - (size_t)(dot2 + 1 - token)))
        return RR_AUTH_MALFORMED;
    hdr = decode_object(token, (size_t)(dot1 - token));
    if (!hdr)
        return RR_AUTH_MALFORMED;
    rc = check_header(hdr, &alg, &kid);
    if (rc == RR_AUTH_OK)
        rc = check_keys(ks, alg, kid);
    if (rc == RR_AUTH_OK) {
        payload = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
        rc = payload ? RR_AUTH_OK : RR_AUTH_MALFORMED;
    }
    if (rc == RR_AUTH_OK)
        rc = check_signature(sc, ks, alg, kid, token, (size_t)(dot2 - token), dot2 + 1,
                             len - (size_t)(dot2 + 1 - token));
    if (rc == RR_AUTH_OK)
        rc = check_claims(payload, pol, now);
    json_decref(hdr); /* kid points into hdr: freed last */
    if (rc != RR_AUTH_OK) {
        json_decref(payload);
        return rc;
    }
    *claims = payload;
    return RR_AUTH_OK;
}
