/*
 * The checks of one JWT, in order: size, shape, header (alg, crit, typ, kid),
 * choice of keys, payload, signature, then exp/nbf/iss/aud.
 *
 * The signature is checked with OpenSSL's EVP API against keys parsed once at
 * load (jwt_keys.c), and only ever with a key whose kind and allowed
 * algorithms fit the header's alg: the token names the algorithm, the key
 * decides whether it may. The header and the claims come from our own strict
 * parse (duplicate names refused). Not here: loading keys (jwt_keys.c),
 * caching (token_cache.c).
 */
#include "lib/jwt_verify.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/b64url.h"

/* The longest signature any key can have: RSA with OpenSSL's largest modulus, 16384 bits. */
#define SIG_MAX 2048
#define SIG_B64_MAX ((SIG_MAX * 4 + 2) / 3) /* its unpadded base64url length */
/* An ECDSA-Sig-Value in DER on P-521: SEQUENCE (3-byte header), two INTEGERs of 1 + 66 bytes. */
#define ECDSA_DER_MAX (3 + 2 * (2 + 1 + 66))

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

/* The digest of each algorithm, and for ES* the size of R and of S (RFC 7518 §3.4). */
static const EVP_MD *alg_md(enum rr_jwt_alg alg, size_t *ec_coord_len)
{
    switch (alg) {
    case RR_ALG_HS256:
    case RR_ALG_RS256:
        return EVP_sha256();
    case RR_ALG_ES256:
        *ec_coord_len = 32;
        return EVP_sha256();
    case RR_ALG_HS384:
    case RR_ALG_RS384:
        return EVP_sha384();
    case RR_ALG_ES384:
        *ec_coord_len = 48;
        return EVP_sha384();
    case RR_ALG_HS512:
    case RR_ALG_RS512:
        return EVP_sha512();
    case RR_ALG_ES512:
        *ec_coord_len = 66;
        return EVP_sha512();
    default:
        return NULL;
    }
}

static bool hmac_ok(const struct rr_key *k, const EVP_MD *md, const unsigned char *in,
                    size_t in_len, const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (!HMAC(md, k->material, (int)k->material_len, in, in_len, mac, &mac_len))
        return false;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* PKCS#1 v1.5 for an RSA key (OpenSSL's default padding), ECDSA over DER for an EC key. */
static bool pkey_ok(EVP_PKEY *pk, const EVP_MD *md, const unsigned char *in, size_t in_len,
                    const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, in, in_len) == 1;

    EVP_MD_CTX_free(ctx);
    return ok;
}

/* JWS carries R || S, each of exactly coord_len bytes; OpenSSL verifies an
 * ECDSA-Sig-Value, so the pair is re-encoded as DER first. */
static bool ecdsa_ok(EVP_PKEY *pk, const EVP_MD *md, size_t coord_len, const unsigned char *in,
                     size_t in_len, const unsigned char *sig, size_t sig_len)
{
    unsigned char der[ECDSA_DER_MAX], *p = der;
    ECDSA_SIG *es;
    BIGNUM *r, *s;
    int der_len = 0;

    if (sig_len != 2 * coord_len)
        return false;
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, (int)coord_len, NULL);
    s = BN_bin2bn(sig + coord_len, (int)coord_len, NULL);
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them now */
        der_len = i2d_ECDSA_SIG(es, NULL);
        der_len = der_len <= (int)sizeof(der) ? i2d_ECDSA_SIG(es, &p) : 0;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der_len > 0 && pkey_ok(pk, md, in, in_len, der, (size_t)der_len);
}

/* The signature over "header.payload" (the first len bytes of token), tried
 * with every candidate key. A signature not spelled canonically (a last
 * character with bits beyond the data) is refused: one token, one spelling. */
static enum rr_auth_err check_signature(const struct rr_keyset *ks, enum rr_jwt_alg alg,
                                        const char *kid, const char *token, size_t len,
                                        const char *sig_b64, size_t sig_b64_len)
{
    const unsigned char *in = (const unsigned char *)token;
    unsigned char sig[RR_B64URL_DECODED_MAX(SIG_B64_MAX)];
    size_t coord_len = 0, sig_len;
    const EVP_MD *md = alg_md(alg, &coord_len);
    bool ok = false;
    ssize_t n;

    if (!md || sig_b64_len > SIG_B64_MAX || !rr_b64url_canonical(sig_b64, sig_b64_len))
        return RR_AUTH_BAD_SIGNATURE;
    n = rr_b64url_decode(sig_b64, sig_b64_len, sig);
    if (n < 0)
        return RR_AUTH_BAD_SIGNATURE;
    sig_len = (size_t)n;
    for (size_t i = 0; i < ks->n && !ok; i++) {
        const struct rr_key *k = &ks->keys[i];

        if (!key_matches(k, kid) || !key_allows(k, alg))
            continue;
        if (k->kind == RR_KEY_HMAC)
            ok = hmac_ok(k, md, in, len, sig, sig_len);
        else if (k->kind == RR_KEY_RSA)
            ok = pkey_ok(k->pkey, md, in, len, sig, sig_len);
        else
            ok = ecdsa_ok(k->pkey, md, coord_len, in, len, sig, sig_len);
    }
    ERR_clear_error(); /* a refused signature leaves OpenSSL errors on this thread's queue */
    return ok ? RR_AUTH_OK : RR_AUTH_BAD_SIGNATURE;
}

static bool aud_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v)
    {
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

enum rr_auth_err rr_jwt_verify(const struct rr_keyset *ks, const struct rr_jwt_policy *pol,
                               const char *token, size_t len, int64_t now, json_t **claims)
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
        rc = check_signature(ks, alg, kid, token, (size_t)(dot2 - token), dot2 + 1,
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
