/*
 * Loading JWT verification keys and swapping them on reload.
 *
 * Every public key, from a PEM file or a JWK, is turned into an OpenSSL
 * EVP_PKEY once, checked, and kept as such: verification (jwt_verify.c) never
 * parses a key. The algorithms a key may verify are fixed here and only
 * here: HMAC keys get HS*, RSA keys RS*, EC keys the ES* of their curve, so a
 * public key can never be used as an HMAC secret. Not here: the checks of a
 * token (jwt_verify.c).
 */
#include "lib/jwt_keys.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/b64url.h"
#include "lib/log.h"

#define KEY_FILE_MAX (1u << 20) /* bytes; a JWKS of a few hundred keys fits */
#define WHY_LEN 160             /* a load error's reason, after "<file>: " */
#define ALG_BIT(a) (1u << (a))
#define HMAC_ALGS (ALG_BIT(RR_ALG_HS256) | ALG_BIT(RR_ALG_HS384) | ALG_BIT(RR_ALG_HS512))
#define RSA_ALGS (ALG_BIT(RR_ALG_RS256) | ALG_BIT(RR_ALG_RS384) | ALG_BIT(RR_ALG_RS512))

static const char *const alg_names[RR_ALG_COUNT] = {
    [RR_ALG_NONE] = "none",   [RR_ALG_HS256] = "HS256", [RR_ALG_HS384] = "HS384",
    [RR_ALG_HS512] = "HS512", [RR_ALG_RS256] = "RS256", [RR_ALG_RS384] = "RS384",
    [RR_ALG_RS512] = "RS512", [RR_ALG_ES256] = "ES256", [RR_ALG_ES384] = "ES384",
    [RR_ALG_ES512] = "ES512",
};

/* The EC curves JWS defines (RFC 7518 §3.4), by JWK crv, OpenSSL group and algorithm. */
static const struct curve {
    const char *crv;
    const char *group;
    enum rr_jwt_alg alg;
    size_t coord_len;
} curves[] = {
    {"P-256", "prime256v1", RR_ALG_ES256, 32},
    {"P-384", "secp384r1", RR_ALG_ES384, 48},
    {"P-521", "secp521r1", RR_ALG_ES512, 66},
};

/* Every keyset gets a generation no other keyset of the process has had. */
static uint64_t last_generation;

enum rr_jwt_alg rr_jwt_alg_parse(const char *s, size_t len)
{
    for (int a = RR_ALG_HS256; a < RR_ALG_COUNT; a++)
        if (strlen(alg_names[a]) == len && memcmp(alg_names[a], s, len) == 0)
            return (enum rr_jwt_alg)a;
    return RR_ALG_NONE;
}

const char *rr_jwt_alg_name(enum rr_jwt_alg alg)
{
    return (unsigned)alg < RR_ALG_COUNT ? alg_names[alg] : "none";
}

static void set_err(char *err, size_t errlen, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(char *err, size_t errlen, const char *file, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "%s: ", file);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Reads a whole key file (bounded) into a NUL-terminated buffer. */
static unsigned char *read_key_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;

    if (!f) {
        set_err(err, errlen, path, "%s", strerror(errno));
        return NULL;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        set_err(err, errlen, path, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    if (ferror(f) || n > KEY_FILE_MAX) {
        set_err(err, errlen, path, ferror(f) ? "read error" : "larger than %u bytes", KEY_FILE_MAX);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

struct key_list {
    struct rr_key *v;
    size_t n, cap;
};

/* Appends a key: an HMAC secret (material) or a public key (pk), owned from here on. */
static int push_key(struct key_list *l, enum rr_key_kind kind, const char *kid, uint32_t allowed,
                    unsigned char *material, size_t material_len, EVP_PKEY *pk, const char *source)
{
    struct rr_key *k;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct rr_key *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            free(material);
            EVP_PKEY_free(pk);
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    k = &l->v[l->n];
    *k = (struct rr_key){.kind = kind,
                         .allowed = allowed,
                         .material = material,
                         .material_len = material_len,
                         .pkey = pk};
    k->source = strdup(source);
    k->kid = kid ? strdup(kid) : NULL;
    if (!k->source || (kid && !k->kid)) {
        free(k->source);
        free(k->kid);
        free(material);
        EVP_PKEY_free(pk);
        return -1;
    }
    l->n++;
    return 0;
}

static void free_keys(struct rr_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(keys[i].kid);
        free(keys[i].material);
        EVP_PKEY_free(keys[i].pkey);
        free(keys[i].source);
    }
    free(keys);
}

static int load_hmac(struct key_list *l, const char *path, char *err, size_t errlen)
{
    size_t len;
    unsigned char *secret = read_key_file(path, &len, err, errlen);

    if (!secret)
        return -1;
    if (len > 0 && secret[len - 1] == '\n')
        len--;
    if (len == 0) {
        free(secret);
        set_err(err, errlen, path, "empty secret");
        return -1;
    }
    if (push_key(l, RR_KEY_HMAC, NULL, ALG_BIT(RR_ALG_HS256), secret, len, NULL, path) < 0) {
        set_err(err, errlen, path, "out of memory");
        return -1;
    }
    return 0;
}

/* An HMAC secret given as a value (the environment) rather than a file. */
static int load_hmac_value(struct key_list *l, const char *secret, char *err, size_t errlen)
{
    size_t len = strlen(secret);
    unsigned char *copy = len ? malloc(len) : NULL;

    if (len == 0) {
        set_err(err, errlen, "--hmac-secret", "empty secret");
        return -1;
    }
    if (!copy || push_key(l, RR_KEY_HMAC, NULL, ALG_BIT(RR_ALG_HS256), memcpy(copy, secret, len),
                          len, NULL, "--hmac-secret") < 0) {
        set_err(err, errlen, "--hmac-secret", "out of memory");
        return -1;
    }
    return 0;
}

/* What an EVP_PKEY is to us: its kind, and for EC the one algorithm of its curve. */
static int pkey_kind(EVP_PKEY *pk, enum rr_key_kind *kind, enum rr_jwt_alg *ec_alg, char *why)
{
    char group[64];

    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        *kind = RR_KEY_RSA;
        return 0;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL)) {
            snprintf(why, WHY_LEN, "EC key without a named curve");
            return -1;
        }
        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
            if (strcmp(group, curves[i].group) == 0) {
                *kind = RR_KEY_EC;
                *ec_alg = curves[i].alg;
                return 0;
            }
        }
        snprintf(why, WHY_LEN, "unsupported EC curve %s (P-256, P-384 or P-521)", group);
        return -1;
    default:
        snprintf(why, WHY_LEN, "unsupported key type (RSA or EC public keys only)");
        return -1;
    }
}

static uint32_t kind_algs(enum rr_key_kind kind, enum rr_jwt_alg ec_alg)
{
    switch (kind) {
    case RR_KEY_HMAC:
        return HMAC_ALGS;
    case RR_KEY_RSA:
        return RSA_ALGS;
    case RR_KEY_EC:
        return ALG_BIT(ec_alg);
    }
    return 0;
}

static const char *kind_name(enum rr_key_kind kind, enum rr_jwt_alg ec_alg)
{
    switch (kind) {
    case RR_KEY_HMAC:
        return "an HMAC secret";
    case RR_KEY_RSA:
        return "an RSA key";
    case RR_KEY_EC:
        return ec_alg == RR_ALG_ES256   ? "a P-256 key"
               : ec_alg == RR_ALG_ES384 ? "a P-384 key"
                                        : "a P-521 key";
    }
    return "a key";
}

/* Whether a key of this kind (and curve) can verify alg; explains why not. */
static int alg_fits(enum rr_jwt_alg alg, enum rr_key_kind kind, enum rr_jwt_alg ec_alg, char *why)
{
    if (kind_algs(kind, ec_alg) & ALG_BIT(alg))
        return 0;
    snprintf(why, WHY_LEN, "%s cannot be used with %s", alg_names[alg], kind_name(kind, ec_alg));
    return -1;
}

/* Parses "RS256,RS512" into a mask of algorithms that must fit the key. */
static int parse_alg_list(const char *list, enum rr_key_kind kind, enum rr_jwt_alg ec_alg,
                          uint32_t *allowed, char *why)
{
    const char *p = list;

    *allowed = 0;
    for (;;) {
        size_t n = strcspn(p, ",");
        enum rr_jwt_alg alg = rr_jwt_alg_parse(p, n);

        if (alg == RR_ALG_NONE) {
            snprintf(why, WHY_LEN, "unknown algorithm '%.*s'", (int)n, p);
            return -1;
        }
        if (alg_fits(alg, kind, ec_alg, why) < 0)
            return -1;
        *allowed |= ALG_BIT(alg);
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

/* "FILE:ALG,ALG" -> path and the list after the last ':' (NULL without one). */
static int split_pem_spec(const char *spec, char *path, size_t pathlen, const char **algs)
{
    const char *colon = strrchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

    if (n == 0 || n >= pathlen)
        return -1;
    memcpy(path, spec, n);
    path[n] = '\0';
    *algs = colon ? colon + 1 : NULL;
    return 0;
}

static int load_pem(struct key_list *l, const char *spec, char *err, size_t errlen)
{
    char path[4096], why[WHY_LEN];
    const char *algs;
    unsigned char *buf;
    size_t len;
    enum rr_key_kind kind = RR_KEY_RSA;
    enum rr_jwt_alg ec_alg = RR_ALG_NONE;
    uint32_t allowed = 0;
    EVP_PKEY *pk;
    BIO *bio;
    int rc = 0;

    if (split_pem_spec(spec, path, sizeof(path), &algs) < 0) {
        set_err(err, errlen, spec, "expected FILE[:ALG,ALG...]");
        return -1;
    }
    buf = read_key_file(path, &len, err, errlen);
    if (!buf)
        return -1;
    bio = BIO_new_mem_buf(buf, (int)len);
    pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!pk) {
        /* We verify, we never sign: a private key has no business on this host. */
        snprintf(why, WHY_LEN, "%s",
                 strstr((char *)buf, "PRIVATE KEY")
                     ? "holds a private key; give its public key (openssl pkey -pubout)"
                     : "no PEM public key (-----BEGIN PUBLIC KEY-----)");
        rc = -1;
    }
    free(buf);
    if (rc == 0)
        rc = pkey_kind(pk, &kind, &ec_alg, why);
    if (rc == 0 && algs)
        rc = parse_alg_list(algs, kind, ec_alg, &allowed, why);
    else if (rc == 0)
        allowed = kind == RR_KEY_RSA ? ALG_BIT(RR_ALG_RS256) : ALG_BIT(ec_alg);
    if (rc < 0) {
        EVP_PKEY_free(pk);
        set_err(err, errlen, path, "%s", why);
        return -1;
    }
    if (push_key(l, kind, NULL, allowed, NULL, 0, pk, path) < 0) {
        set_err(err, errlen, path, "out of memory");
        return -1;
    }
    return 0;
}

/* A base64url JWK member, decoded; NULL when absent or not base64url. */
static unsigned char *jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
    json_t *v = json_object_get(jwk, name);
    const char *s = json_string_value(v);
    unsigned char *out;
    ssize_t n;

    if (!s || json_string_length(v) == 0)
        return NULL;
    out = malloc(RR_B64URL_DECODED_MAX(json_string_length(v)));
    if (!out)
        return NULL;
    n = rr_b64url_decode(s, json_string_length(v), out);
    if (n <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pk = NULL;

    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static const char *jwk_rsa(json_t *jwk, EVP_PKEY **pk)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = jwk_bytes(jwk, "n", &n_len), *e = jwk_bytes(jwk, "e", &e_len);
    BIGNUM *bn_n = n ? BN_bin2bn(n, (int)n_len, NULL) : NULL;
    BIGNUM *bn_e = e ? BN_bin2bn(e, (int)e_len, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    const char *why = NULL;

    if (!n || !e)
        why = "RSA key needs base64url n and e";
    else if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
             !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
             !(*pk = pkey_fromdata("RSA", bld)))
        why = "invalid RSA key";
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return why;
}

static const char *jwk_ec(json_t *jwk, EVP_PKEY **pk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const struct curve *c = NULL;
    unsigned char *x, *y, point[1 + 2 * 66];
    size_t x_len = 0, y_len = 0;
    OSSL_PARAM_BLD *bld;
    const char *why = NULL;

    for (size_t i = 0; crv && i < sizeof(curves) / sizeof(curves[0]); i++)
        if (strcmp(crv, curves[i].crv) == 0)
            c = &curves[i];
    if (!c)
        return "EC key needs crv P-256, P-384 or P-521";
    x = jwk_bytes(jwk, "x", &x_len);
    y = jwk_bytes(jwk, "y", &y_len);
    if (!x || !y || x_len != c->coord_len || y_len != c->coord_len) {
        free(x);
        free(y);
        return "EC key needs base64url x and y of the curve's size";
    }
    point[0] = 0x04; /* uncompressed point: 04 || x || y */
    memcpy(point + 1, x, x_len);
    memcpy(point + 1 + x_len, y, y_len);
    free(x);
    free(y);
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * x_len) ||
        !(*pk = pkey_fromdata("EC", bld)))
        why = "invalid EC key";
    OSSL_PARAM_BLD_free(bld);
    return why;
}

static bool pkey_public_ok(EVP_PKEY *pk)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    bool ok = ctx && EVP_PKEY_public_check(ctx) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Loads one JWK. Returns 0 (loaded), 1 (skipped) or -1 (error); why says why. */
static int load_jwk(struct key_list *l, json_t *jwk, const char *path, char *why)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    json_t *kid = json_object_get(jwk, "kid"), *alg_j = json_object_get(jwk, "alg");
    enum rr_jwt_alg alg = RR_ALG_NONE, ec_alg = RR_ALG_NONE;
    enum rr_key_kind kind = RR_KEY_RSA;
    EVP_PKEY *pk = NULL;
    const char *bad = NULL;
    int rc = 0;

    if (!json_is_object(jwk))
        bad = "not an object";
    else if (!kty)
        bad = "no kty";
    else if (kid && !json_is_string(kid))
        bad = "kid is not a string";
    else if (alg_j && !json_is_string(alg_j))
        bad = "alg is not a string";
    if (bad) {
        snprintf(why, WHY_LEN, "%s", bad);
        return -1;
    }
    if (use && strcmp(use, "enc") == 0) {
        snprintf(why, WHY_LEN, "use enc");
        return 1;
    }
    /* RFC 7517 §5: ignore key types we do not understand (oct, OKP, ...). */
    if (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0) {
        snprintf(why, WHY_LEN, "kty %s", kty);
        return 1;
    }
    if (alg_j) {
        alg = rr_jwt_alg_parse(json_string_value(alg_j), json_string_length(alg_j));
        if (alg == RR_ALG_NONE) {
            snprintf(why, WHY_LEN, "alg %s not supported", json_string_value(alg_j));
            return 1;
        }
    }
    bad = strcmp(kty, "RSA") == 0 ? jwk_rsa(jwk, &pk) : jwk_ec(jwk, &pk);
    if (!bad && !pkey_public_ok(pk))
        bad = "public key fails OpenSSL's check";
    if (bad) {
        snprintf(why, WHY_LEN, "%s", bad);
        rc = -1;
    }
    if (rc == 0)
        rc = pkey_kind(pk, &kind, &ec_alg, why);
    if (rc == 0 && alg != RR_ALG_NONE)
        rc = alg_fits(alg, kind, ec_alg, why);
    ERR_clear_error();
    if (rc < 0) {
        EVP_PKEY_free(pk);
        return -1;
    }
    if (alg == RR_ALG_NONE)
        alg = kind == RR_KEY_RSA ? RR_ALG_RS256 : ec_alg;
    if (push_key(l, kind, json_string_value(kid), ALG_BIT(alg), NULL, 0, pk, path) < 0) {
        snprintf(why, WHY_LEN, "out of memory");
        return -1;
    }
    return 0;
}

static int load_jwks(struct key_list *l, const char *path, size_t *skipped, char *err,
                     size_t errlen)
{
    size_t len, loaded = 0, skips = 0;
    unsigned char *buf = read_key_file(path, &len, err, errlen);
    json_error_t jerr;
    json_t *root, *keys;
    int rc = 0;

    if (!buf)
        return -1;
    root = json_loadb((char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!root) {
        set_err(err, errlen, path, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return -1;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        set_err(err, errlen, path, "no \"keys\" array");
        json_decref(root);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(keys) && rc == 0; i++) {
        json_t *jwk = json_array_get(keys, i);
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        char why[WHY_LEN];

        switch (load_jwk(l, jwk, path, why)) {
        case 0:
            loaded++;
            break;
        case 1:
            skips++;
            rr_info("%s: key %zu (kid %s): skipped, %s", path, i + 1, kid ? kid : "-", why);
            break;
        default:
            set_err(err, errlen, path, "key %zu (kid %s): %s", i + 1, kid ? kid : "-", why);
            rc = -1;
        }
    }
    json_decref(root);
    if (rc == 0 && loaded == 0) {
        set_err(err, errlen, path, "no usable key (%zu skipped)", skips);
        rc = -1;
    }
    *skipped += skips;
    return rc;
}

struct rr_keyset *rr_keyset_load(const struct rr_key_sources *src, char *err, size_t errlen)
{
    struct key_list l = {0};
    struct rr_keyset *ks = calloc(1, sizeof(*ks));
    int rc = 0;

    if (!ks) {
        snprintf(err, errlen, "keys: out of memory");
        return NULL;
    }
    if (src->hmac_secret)
        rc = load_hmac_value(&l, src->hmac_secret, err, errlen);
    for (size_t i = 0; rc == 0 && i < src->n_hmac; i++)
        rc = load_hmac(&l, src->hmac_files[i], err, errlen);
    for (size_t i = 0; rc == 0 && i < src->n_pem; i++)
        rc = load_pem(&l, src->pem_specs[i], err, errlen);
    for (size_t i = 0; rc == 0 && i < src->n_jwks; i++)
        rc = load_jwks(&l, src->jwks_files[i], &ks->n_skipped, err, errlen);
    if (rc < 0) {
        free_keys(l.v, l.n);
        free(ks);
        return NULL;
    }
    ks->keys = l.v;
    ks->n = l.n;
    ks->refcnt = 1;
    ks->generation = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
    return ks;
}

struct rr_keyset *rr_keyset_ref(struct rr_keyset *ks)
{
    __atomic_add_fetch(&ks->refcnt, 1, __ATOMIC_RELAXED);
    return ks;
}

void rr_keyset_unref(struct rr_keyset *ks)
{
    if (ks && __atomic_sub_fetch(&ks->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        free_keys(ks->keys, ks->n);
        free(ks);
    }
}

/* The file behind source i of the keyring: HMAC files, PEM specs, JWKS files. */
static int source_path(const struct rr_key_sources *src, size_t i, char *path, size_t pathlen)
{
    const char *algs;

    if (i < src->n_hmac)
        return snprintf(path, pathlen, "%s", src->hmac_files[i]) < (int)pathlen ? 0 : -1;
    i -= src->n_hmac;
    if (i < src->n_pem)
        return split_pem_spec(src->pem_specs[i], path, pathlen, &algs);
    i -= src->n_pem;
    return snprintf(path, pathlen, "%s", src->jwks_files[i]) < (int)pathlen ? 0 : -1;
}

static void stamp_files(const struct rr_keyring *kr, struct rr_file_stamp *out)
{
    char path[4096];
    struct stat st;

    for (size_t i = 0; i < kr->n_files; i++) {
        out[i] = (struct rr_file_stamp){0};
        if (source_path(&kr->src, i, path, sizeof(path)) == 0 && stat(path, &st) == 0)
            out[i] = (struct rr_file_stamp){
                .mtime = st.st_mtim, .size = st.st_size, .ino = st.st_ino, .present = true};
    }
}

static bool stamps_equal(const struct rr_file_stamp *a, const struct rr_file_stamp *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].present != b[i].present || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
            a[i].mtime.tv_nsec != b[i].mtime.tv_nsec || a[i].size != b[i].size ||
            a[i].ino != b[i].ino)
            return false;
    return true;
}

int rr_keyring_init(struct rr_keyring *kr, const struct rr_key_sources *src, char *err,
                    size_t errlen)
{
    *kr = (struct rr_keyring){.src = *src, .n_files = src->n_hmac + src->n_pem + src->n_jwks};
    kr->lock = malloc(sizeof(pthread_mutex_t));
    kr->stamps = calloc(kr->n_files ? kr->n_files : 1, sizeof(*kr->stamps));
    if (!kr->lock || !kr->stamps) {
        snprintf(err, errlen, "keys: out of memory");
        free(kr->lock);
        free(kr->stamps);
        return -1;
    }
    pthread_mutex_init(kr->lock, NULL);
    stamp_files(kr, kr->stamps);
    kr->current = rr_keyset_load(src, err, errlen);
    if (!kr->current) {
        rr_keyring_free(kr);
        return -1;
    }
    return 0;
}

struct rr_keyset *rr_keyring_get(struct rr_keyring *kr)
{
    struct rr_keyset *ks;

    pthread_mutex_lock(kr->lock);
    ks = rr_keyset_ref(kr->current);
    pthread_mutex_unlock(kr->lock);
    return ks;
}

/* Loads from stamps taken before reading, so a write during the load is seen next time. */
static int reload_stamped(struct rr_keyring *kr, struct rr_file_stamp *stamps, char *err,
                          size_t errlen)
{
    struct rr_keyset *ks = rr_keyset_load(&kr->src, err, errlen), *old = NULL;

    pthread_mutex_lock(kr->lock);
    memcpy(kr->stamps, stamps, kr->n_files * sizeof(*stamps));
    if (ks) {
        old = kr->current;
        kr->current = ks;
    }
    pthread_mutex_unlock(kr->lock);
    rr_keyset_unref(old);
    return ks ? 1 : -1;
}

int rr_keyring_reload(struct rr_keyring *kr, char *err, size_t errlen)
{
    struct rr_file_stamp *stamps = calloc(kr->n_files ? kr->n_files : 1, sizeof(*stamps));
    int rc;

    if (!stamps) {
        snprintf(err, errlen, "keys: out of memory");
        return -1;
    }
    stamp_files(kr, stamps);
    rc = reload_stamped(kr, stamps, err, errlen);
    free(stamps);
    return rc;
}

int rr_keyring_reload_if_changed(struct rr_keyring *kr, char *err, size_t errlen)
{
    struct rr_file_stamp *stamps = calloc(kr->n_files ? kr->n_files : 1, sizeof(*stamps));
    bool same;
    int rc = 0;

    if (!stamps) {
        snprintf(err, errlen, "keys: out of memory");
        return -1;
    }
    stamp_files(kr, stamps);
    pthread_mutex_lock(kr->lock);
    same = stamps_equal(stamps, kr->stamps, kr->n_files);
    pthread_mutex_unlock(kr->lock);
    if (!same)
        rc = reload_stamped(kr, stamps, err, errlen);
    free(stamps);
    return rc;
}

void rr_keyring_free(struct rr_keyring *kr)
{
    rr_keyset_unref(kr->current);
    if (kr->lock)
        pthread_mutex_destroy(kr->lock);
    free(kr->lock);
    free(kr->stamps);
    *kr = (struct rr_keyring){0};
}
