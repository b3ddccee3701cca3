/*
 * Unit tests of lib/jwt_keys.c and lib/jwt_verify.c. Tokens and keys come
 * from PyJWT (tests/fixtures/jwt/make_vectors.py), not from our code: one
 * cmocka test per vector of vectors.json, named after it. Beyond them: the
 * vectors' signatures edited (lengths, DER instead of R || S, spelling), and
 * ES512, which has no vector, signed here with OpenSSL. Fixtures are found
 * under $RR_FIXTURES, default tests/fixtures (tests run from the repo root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/b64url.h"
#include "lib/jwt_keys.h"
#include "lib/jwt_verify.h"
#include "lib/log.h"
#include "tests/unit/jwt_fixture.h"

#define ALG_BIT(a) (1u << (a))

static json_t *doc;
static struct rr_keyset *ks_full, *ks_public;
static struct rr_jwt_sig_ctx *sig_ctx; /* one for every test: its contexts are reused throughout */
static struct rr_jwt_policy base_policy;
static int64_t now;
static char tmpdir[] = "/tmp/rr-test-jwt-XXXXXX";

static void tmpfile_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Key sources whose paths live in the struct. */
struct sources {
    char paths[3][4][512];
    const char *ptrs[3][4];
    struct rr_key_sources src;
};

static void sources_from_json(json_t *set, struct sources *s)
{
    static const char *const kinds[3] = {"hmac", "pem", "jwks"};
    size_t counts[3] = {0};

    for (int k = 0; k < 3; k++) {
        json_t *list = json_object_get(set, kinds[k]), *v;
        size_t i;

        json_array_foreach (list, i, v) {
            fixture(s->paths[k][i], sizeof(s->paths[k][i]), json_string_value(v));
            s->ptrs[k][i] = s->paths[k][i];
            counts[k]++;
        }
    }
    s->src = (struct rr_key_sources){
        .hmac_files = s->ptrs[0],
        .n_hmac = counts[0],
        .pem_specs = s->ptrs[1],
        .n_pem = counts[1],
        .jwks_files = s->ptrs[2],
        .n_jwks = counts[2],
    };
}

static struct rr_keyset *load_keyset(const char *name)
{
    struct sources s = {0};
    char err[512];
    struct rr_keyset *ks;

    sources_from_json(json_object_get(json_object_get(doc, "keysets"), name), &s);
    ks = rr_keyset_load(&s.src, err, sizeof(err));
    if (!ks)
        fprintf(stderr, "keyset %s: %s\n", name, err);
    return ks;
}

/* ---- the vectors ---- */

static void verify_vector(void **state)
{
    json_t *v = *state, *pol_j = json_object_get(v, "policy"), *val, *claims = NULL;
    const char *token = json_string_value(json_object_get(v, "token"));
    const char *keyset = json_string_value(json_object_get(v, "keyset"));
    const char *sub = json_string_value(json_object_get(v, "sub"));
    struct rr_jwt_policy pol = base_policy;
    enum rr_auth_err rc;
    const char *key;

    json_object_foreach (pol_j, key, val) {
        if (strcmp(key, "issuer") == 0)
            pol.issuer = json_string_value(val);
        else if (strcmp(key, "audience") == 0)
            pol.audience = json_string_value(val);
        else if (strcmp(key, "allow_no_exp") == 0)
            pol.allow_no_exp = json_is_true(val);
        else if (strcmp(key, "max_token_bytes") == 0)
            pol.max_token_bytes = (size_t)json_integer_value(val);
        else
            fail_msg("unknown policy override %s", key);
    }
    rc = rr_jwt_verify(sig_ctx, keyset && strcmp(keyset, "public") == 0 ? ks_public : ks_full, &pol,
                       token, strlen(token), now, &claims);
    assert_string_equal(rr_auth_err_name(rc), json_string_value(json_object_get(v, "expect")));
    if (rc != RR_AUTH_OK) {
        assert_null(claims);
        return;
    }
    assert_true(json_is_object(claims));
    if (sub)
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), sub);
    json_decref(claims);
}

/* ---- fixed tests ---- */

static void verify_returns_claims_with_their_json_types(void **state)
{
    (void)state;
    json_t *vectors = json_object_get(doc, "vectors"), *v, *claims = NULL;
    size_t i;

    json_array_foreach (vectors, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), "aud_array_containing_it_ok") !=
            0)
            continue;
        const char *token = json_string_value(json_object_get(v, "token"));
        assert_int_equal(
            rr_jwt_verify(sig_ctx, ks_full, &base_policy, token, strlen(token), now, &claims),
            RR_AUTH_OK);
    }
    assert_non_null(claims);
    assert_true(json_is_integer(json_object_get(claims, "exp")));
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), now + 600);
    assert_true(json_is_array(json_object_get(claims, "aud")));
    json_decref(claims);
}

static void auth_err_names_are_the_spoe_contract(void **state)
{
    (void)state;
    static const char *const names[RR_AUTH_ERR_COUNT] = {
        "ok",      "missing",       "malformed",  "alg_not_allowed", "unknown_kid", "bad_signature",
        "expired", "not_yet_valid", "bad_issuer", "bad_audience",    "too_large",
    };

    for (int e = 0; e < RR_AUTH_ERR_COUNT; e++)
        assert_string_equal(rr_auth_err_name((enum rr_auth_err)e), names[e]);
}

static void alg_parse_is_exact_and_refuses_none(void **state)
{
    (void)state;
    for (int a = RR_ALG_HS256; a < RR_ALG_COUNT; a++) {
        const char *name = rr_jwt_alg_name((enum rr_jwt_alg)a);
        assert_int_equal(rr_jwt_alg_parse(name, strlen(name)), a);
    }
    assert_string_equal(rr_jwt_alg_name(RR_ALG_ES512), "ES512");
    assert_int_equal(rr_jwt_alg_parse("none", 4), RR_ALG_NONE);
    assert_int_equal(rr_jwt_alg_parse("hs256", 5), RR_ALG_NONE);
    assert_int_equal(rr_jwt_alg_parse("HS2560", 6), RR_ALG_NONE);
    assert_int_equal(rr_jwt_alg_parse("HS25", 4), RR_ALG_NONE);
    assert_int_equal(rr_jwt_alg_parse("HS256", 4), RR_ALG_NONE);
    assert_int_equal(rr_jwt_alg_parse("PS256", 5), RR_ALG_NONE);
}

static void keyset_loads_fixture_keys_in_configuration_order(void **state)
{
    (void)state;
    const struct rr_key *k = ks_full->keys;

    assert_int_equal(ks_full->n, 5);
    assert_int_equal(ks_full->n_skipped, 1); /* the oct JWK */
    assert_int_equal(k[0].kind, RR_KEY_HMAC);
    assert_int_equal(k[0].allowed, ALG_BIT(RR_ALG_HS256));
    assert_null(k[0].kid);
    /* one trailing newline stripped */
    assert_int_equal(k[0].material_len, strlen("test-only-hmac-secret-for-roomrelay-vectors"));
    assert_memory_equal(k[0].material, "test-only-hmac-secret-for-roomrelay-vectors",
                        k[0].material_len);
    assert_int_equal(k[1].kind, RR_KEY_RSA);
    assert_int_equal(k[1].allowed, ALG_BIT(RR_ALG_RS256) | ALG_BIT(RR_ALG_RS384));
    assert_int_equal(k[2].kind, RR_KEY_EC);
    assert_int_equal(k[2].allowed, ALG_BIT(RR_ALG_ES256));
    assert_int_equal(k[3].kind, RR_KEY_RSA);
    assert_string_equal(k[3].kid, "rsa-1");
    assert_int_equal(k[3].allowed, ALG_BIT(RR_ALG_RS256));
    assert_int_equal(k[4].kind, RR_KEY_EC);
    assert_string_equal(k[4].kid, "ec-1");
    assert_int_equal(k[4].allowed, ALG_BIT(RR_ALG_ES384));
    assert_null(k[0].pkey);
    for (size_t i = 1; i < ks_full->n; i++) {
        assert_null(k[i].material);
        assert_int_equal(EVP_PKEY_get_base_id(k[i].pkey),
                         k[i].kind == RR_KEY_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC);
    }
}

static void public_keys_never_allow_hmac(void **state)
{
    (void)state;
    const uint32_t hmac = ALG_BIT(RR_ALG_HS256) | ALG_BIT(RR_ALG_HS384) | ALG_BIT(RR_ALG_HS512);

    for (size_t i = 0; i < ks_full->n; i++)
        if (ks_full->keys[i].kind != RR_KEY_HMAC)
            assert_int_equal(ks_full->keys[i].allowed & hmac, 0);
}

static void keyset_generations_are_never_shared(void **state)
{
    (void)state;
    struct rr_keyset *again = load_keyset("full");

    assert_non_null(again);
    assert_true(again->generation != ks_full->generation);
    assert_true(again->generation != ks_public->generation);
    assert_int_equal(again->refcnt, 1);
    assert_ptr_equal(rr_keyset_ref(again), again);
    assert_int_equal(again->refcnt, 2);
    rr_keyset_unref(again);
    rr_keyset_unref(again);
}

/* A PEM public key of a freshly generated key, by OpenSSL key type and parameter. */
static void write_generated_pem(const char *path, const char *type, const char *curve)
{
    EVP_PKEY *pk =
        curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve) : EVP_PKEY_Q_keygen(NULL, NULL, type);
    FILE *f = fopen(path, "w");

    assert_non_null(pk);
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, pk), 1);
    fclose(f);
    EVP_PKEY_free(pk);
}

static const struct pem_case {
    const char *name;
    const char *type, *curve;
    enum rr_key_kind kind;
    uint32_t allowed; /* 0: a load error, reason below */
    const char *reason;
} pem_cases[] = {
    {"pem_p256_defaults_to_es256", "EC", "P-256", RR_KEY_EC, ALG_BIT(RR_ALG_ES256), NULL},
    {"pem_p384_defaults_to_es384", "EC", "P-384", RR_KEY_EC, ALG_BIT(RR_ALG_ES384), NULL},
    {"pem_p521_defaults_to_es512", "EC", "P-521", RR_KEY_EC, ALG_BIT(RR_ALG_ES512), NULL},
    {"pem_secp256k1_is_refused", "EC", "secp256k1", RR_KEY_EC, 0,
     "unsupported EC curve secp256k1 (P-256, P-384 or P-521)"},
    {"pem_ed25519_is_refused", "ED25519", NULL, RR_KEY_EC, 0,
     "unsupported key type (RSA or EC public keys only)"},
};

static void pem_default_alg_by_key_type(void **state)
{
    const struct pem_case *c = *state;
    char path[512], err[512], want[768];
    const char *specs[1] = {path};
    struct rr_key_sources src = {.pem_specs = specs, .n_pem = 1};
    struct rr_keyset *ks;

    tmpfile_path(path, sizeof(path), c->name);
    write_generated_pem(path, c->type, c->curve);
    ks = rr_keyset_load(&src, err, sizeof(err));
    if (c->allowed) {
        assert_non_null(ks);
        assert_int_equal(ks->keys[0].kind, c->kind);
        assert_int_equal(ks->keys[0].allowed, c->allowed);
        rr_keyset_unref(ks);
    } else {
        assert_null(ks);
        snprintf(want, sizeof(want), "%s: %s", path, c->reason);
        assert_string_equal(err, want);
    }
}

enum src_kind { SRC_HMAC, SRC_PEM, SRC_JWKS };

static const struct load_case {
    const char *name;
    enum src_kind kind;
    const char *fixture; /* a file of tests/fixtures/jwt, or NULL: content below */
    const char *content;
    const char *suffix; /* appended to a PEM path: the algorithm list */
    const char *reason; /* what follows "<file>: " */
} load_cases[] = {
    {"pem_hs256_listed_on_rsa_key", SRC_PEM, "rsa.pub.pem", NULL, ":RS256,HS256",
     "HS256 cannot be used with an RSA key"},
    {"pem_es256_listed_on_rsa_key", SRC_PEM, "rsa.pub.pem", NULL, ":ES256",
     "ES256 cannot be used with an RSA key"},
    {"pem_es384_listed_on_p256_key", SRC_PEM, "ec256.pub.pem", NULL, ":ES256,ES384",
     "ES384 cannot be used with a P-256 key"},
    {"pem_hs256_listed_on_ec_key", SRC_PEM, "ec256.pub.pem", NULL, ":HS256",
     "HS256 cannot be used with a P-256 key"},
    {"pem_unknown_alg_listed", SRC_PEM, "rsa.pub.pem", NULL, ":RS256,XS1",
     "unknown algorithm 'XS1'"},
    {"pem_none_listed", SRC_PEM, "rsa.pub.pem", NULL, ":none", "unknown algorithm 'none'"},
    {"pem_empty_alg_list", SRC_PEM, "rsa.pub.pem", NULL, ":", "unknown algorithm ''"},
    {"pem_private_key_is_refused", SRC_PEM, "test-only-rsa.pem", NULL, NULL,
     "holds a private key; give its public key (openssl pkey -pubout)"},
    {"pem_file_without_key", SRC_PEM, "jwks.json", NULL, NULL,
     "no PEM public key (-----BEGIN PUBLIC KEY-----)"},
    {"pem_missing_file", SRC_PEM, "absent.pem", NULL, NULL, "No such file or directory"},
    {"hmac_file_with_only_a_newline", SRC_HMAC, NULL, "\n", NULL, "empty secret"},
    {"hmac_missing_file", SRC_HMAC, "absent.secret", NULL, NULL, "No such file or directory"},
    {"jwks_not_json", SRC_JWKS, NULL, "{keys: []}", NULL,
     "not JSON: string or '}' expected near 'keys' (line 1)"},
    {"jwks_duplicate_member", SRC_JWKS, NULL, "{\"keys\": [], \"keys\": []}", NULL,
     "not JSON: duplicate object key near '\"keys\"' (line 1)"},
    {"jwks_without_keys_array", SRC_JWKS, NULL, "{\"keys\": {}}", NULL, "no \"keys\" array"},
    {"jwks_with_only_an_oct_key", SRC_JWKS, NULL,
     "{\"keys\": [{\"kty\": \"oct\", \"kid\": \"s\", \"k\": \"c2VjcmV0\"}]}", NULL,
     "no usable key (1 skipped)"},
    {"jwks_key_not_an_object", SRC_JWKS, NULL, "{\"keys\": [5]}", NULL,
     "key 1 (kid -): not an object"},
    {"jwks_rsa_key_without_n", SRC_JWKS, NULL,
     "{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"k1\", \"e\": \"AQAB\"}]}", NULL,
     "key 1 (kid k1): RSA key needs base64url n and e"},
    {"jwks_ec_key_with_short_x", SRC_JWKS, NULL,
     "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"k1\", \"crv\": \"P-256\", \"x\": \"AAAA\","
     " \"y\": \"AAAA\"}]}",
     NULL, "key 1 (kid k1): EC key needs base64url x and y of the curve's size"},
    {"jwks_ec_point_off_the_curve", SRC_JWKS, NULL,
     "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"k1\", \"crv\": \"P-256\","
     " \"x\": \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\","
     " \"y\": \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}]}",
     NULL, "key 1 (kid k1): invalid EC key"},
    {"jwks_ec_curve_not_jws", SRC_JWKS, NULL,
     "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-192\", \"x\": \"AAAA\", \"y\": \"AAAA\"}]}", NULL,
     "key 1 (kid -): EC key needs crv P-256, P-384 or P-521"},
    {"jwks_kid_not_a_string", SRC_JWKS, NULL,
     "{\"keys\": [{\"kty\": \"RSA\", \"kid\": 7, \"n\": \"AQAB\", \"e\": \"AQAB\"}]}", NULL,
     "key 1 (kid -): kid is not a string"},
    {"jwks_key_without_kty", SRC_JWKS, NULL, "{\"keys\": [{\"kid\": \"k1\"}]}", NULL,
     "key 1 (kid k1): no kty"},
};

static void load_error_names_file_and_reason(void **state)
{
    const struct load_case *c = *state;
    char path[512], spec[600], err[512], want[1024];
    const char *list[1] = {spec};
    struct rr_key_sources src = {0};

    if (c->fixture) {
        fixture(path, sizeof(path), c->fixture);
    } else {
        tmpfile_path(path, sizeof(path), c->name);
        write_file(path, c->content, strlen(c->content));
    }
    snprintf(spec, sizeof(spec), "%s%s", path, c->suffix ? c->suffix : "");
    if (c->kind == SRC_HMAC)
        src = (struct rr_key_sources){.hmac_files = list, .n_hmac = 1};
    else if (c->kind == SRC_PEM)
        src = (struct rr_key_sources){.pem_specs = list, .n_pem = 1};
    else
        src = (struct rr_key_sources){.jwks_files = list, .n_jwks = 1};
    assert_null(rr_keyset_load(&src, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: %s", path, c->reason);
    assert_string_equal(err, want);
}

/* A JWKS made of the fixture's keys[index] with one member replaced (or removed: value NULL). */
static const struct jwk_case {
    const char *name;
    size_t index; /* 0: RSA rsa-1, 1: EC P-384 ec-1 */
    const char *member, *value;
    const char *reason; /* NULL: loads, with the allowed mask below */
    uint32_t allowed;
} jwk_cases[] = {
    {"jwk_rsa_alg_es256_is_refused", 0, "alg", "\"ES256\"",
     "key 1 (kid rsa-1): ES256 cannot be used with an RSA key", 0},
    {"jwk_rsa_alg_hs256_is_refused", 0, "alg", "\"HS256\"",
     "key 1 (kid rsa-1): HS256 cannot be used with an RSA key", 0},
    {"jwk_p384_alg_es256_is_refused", 1, "alg", "\"ES256\"",
     "key 1 (kid ec-1): ES256 cannot be used with a P-384 key", 0},
    {"jwk_alg_not_a_string_is_refused", 0, "alg", "256", "key 1 (kid rsa-1): alg is not a string",
     0},
    {"jwk_rsa_n_not_base64url_is_refused", 0, "n", "\"a+b/\"",
     "key 1 (kid rsa-1): RSA key needs base64url n and e", 0},
    {"jwk_ec_y_of_other_size_is_refused", 1, "y", "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"",
     "key 1 (kid ec-1): EC key needs base64url x and y of the curve's size", 0},
    {"jwk_rsa_alg_rs512_allows_only_rs512", 0, "alg", "\"RS512\"", NULL, ALG_BIT(RR_ALG_RS512)},
    {"jwk_rsa_without_alg_defaults_to_rs256", 0, "alg", NULL, NULL, ALG_BIT(RR_ALG_RS256)},
    {"jwk_ec_alg_es384_allows_es384", 1, "alg", "\"ES384\"", NULL, ALG_BIT(RR_ALG_ES384)},
    {"jwk_use_sig_loads", 1, "use", "\"sig\"", NULL, ALG_BIT(RR_ALG_ES384)},
};

static json_t *fixture_jwk(size_t index)
{
    char path[512];
    json_t *jwks, *jwk;

    fixture(path, sizeof(path), "jwks.json");
    jwks = json_load_file(path, 0, NULL);
    assert_non_null(jwks);
    jwk = json_deep_copy(json_array_get(json_object_get(jwks, "keys"), index));
    json_decref(jwks);
    assert_non_null(jwk);
    return jwk;
}

static void write_jwks(const char *path, json_t *keys)
{
    json_t *jwks = json_pack("{s:o}", "keys", keys);

    assert_int_equal(json_dump_file(jwks, path, 0), 0);
    json_decref(jwks);
}

static void jwk_member_rules(void **state)
{
    const struct jwk_case *c = *state;
    json_t *jwk = fixture_jwk(c->index);
    char path[512], err[512], want[1024];
    const char *list[1] = {path};
    struct rr_key_sources src = {.jwks_files = list, .n_jwks = 1};
    struct rr_keyset *ks;

    if (c->value)
        json_object_set_new(jwk, c->member, json_loads(c->value, JSON_DECODE_ANY, NULL));
    else
        json_object_del(jwk, c->member);
    tmpfile_path(path, sizeof(path), c->name);
    write_jwks(path, json_pack("[o]", jwk));
    ks = rr_keyset_load(&src, err, sizeof(err));
    if (c->reason) {
        assert_null(ks);
        snprintf(want, sizeof(want), "%s: %s", path, c->reason);
        assert_string_equal(err, want);
        return;
    }
    assert_non_null(ks);
    assert_int_equal(ks->n, 1);
    assert_int_equal(ks->keys[0].allowed, c->allowed);
    rr_keyset_unref(ks);
}

static void jwks_skips_and_counts_keys_it_cannot_use(void **state)
{
    (void)state;
    json_t *enc = fixture_jwk(0), *ps = fixture_jwk(0);
    char path[512], err[512];
    const char *list[1] = {path};
    struct rr_key_sources src = {.jwks_files = list, .n_jwks = 1};
    struct rr_keyset *ks;

    json_object_set_new(enc, "use", json_string("enc"));
    json_object_set_new(ps, "alg", json_string("PS256"));
    tmpfile_path(path, sizeof(path), "skips.json");
    write_jwks(path, json_pack("[o,o,o,{s:s,s:s,s:s},{s:s,s:s}]", fixture_jwk(1), enc, ps, "kty",
                               "OKP", "crv", "Ed25519", "x", "AAAA", "kty", "oct", "k", "AAAA"));
    ks = rr_keyset_load(&src, err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(ks->n, 1);
    assert_int_equal(ks->n_skipped, 4);
    assert_string_equal(ks->keys[0].kid, "ec-1");
    rr_keyset_unref(ks);
}

/* ---- signatures beyond the vectors: ES's R || S encoding, the signature's spelling ---- */

static const char *vector_token(const char *name)
{
    json_t *vectors = json_object_get(doc, "vectors"), *v;
    size_t i;

    json_array_foreach (vectors, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return json_string_value(json_object_get(v, "token"));
    }
    fail_msg("no vector %s", name);
    return NULL;
}

static size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);

    while (n > 0 && out[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[n] = '\0';
    return n;
}

/* "header.payload." of token followed by the base64url of sig: a token with another signature. */
static void with_signature(char *out, size_t outlen, const char *token, const unsigned char *sig,
                           size_t sig_len)
{
    size_t head = (size_t)(strrchr(token, '.') + 1 - token);

    assert_true(head + (sig_len + 2) / 3 * 4 < outlen);
    memcpy(out, token, head);
    b64url_encode(sig, sig_len, out + head);
}

static size_t signature_of(const char *token, unsigned char *sig, size_t room)
{
    const char *s = strrchr(token, '.') + 1;
    ssize_t n;

    assert_true(RR_B64URL_DECODED_MAX(strlen(s)) <= room);
    n = rr_b64url_decode(s, strlen(s), sig);
    assert_true(n > 0);
    return (size_t)n;
}

/* R || S as DER, the form OpenSSL signs in and JWS does not use. */
static size_t raw_to_der(const unsigned char *sig, size_t len, unsigned char *der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    unsigned char *p = der;
    int n;

    assert_non_null(es);
    assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)len / 2, NULL),
                                    BN_bin2bn(sig + len / 2, (int)len / 2, NULL)),
                     1);
    n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    assert_true(n > 0);
    return (size_t)n;
}

enum sig_edit {
    SIG_SAME,          /* decoded and encoded again: proves the helpers */
    SIG_DROP_LAST,     /* one byte short */
    SIG_APPEND_ZERO,   /* one byte long */
    SIG_FLIP_FIRST,    /* a bit of R (ES) or of the value (RS, HS) changed */
    SIG_SWAP_HALVES,   /* S || R */
    SIG_AS_DER,        /* an ECDSA-Sig-Value instead of R || S */
    SIG_ALL_ZERO,      /* R = S = 0 */
    SIG_SPARE_BIT_SET, /* same bytes, last character with a bit beyond the data set */
};

static const struct sig_case {
    const char *name;
    const char *vector;
    enum sig_edit edit;
    const char *expect;
} sig_cases[] = {
    {"es256_signature_reencoded_ok", "es256_pem_by_curve_ok", SIG_SAME, "ok"},
    {"es256_signature_of_63_bytes_is_bad_signature", "es256_pem_by_curve_ok", SIG_DROP_LAST,
     "bad_signature"},
    {"es256_signature_of_65_bytes_is_bad_signature", "es256_pem_by_curve_ok", SIG_APPEND_ZERO,
     "bad_signature"},
    {"es256_signature_r_changed_is_bad_signature", "es256_pem_by_curve_ok", SIG_FLIP_FIRST,
     "bad_signature"},
    {"es256_signature_s_r_swapped_is_bad_signature", "es256_pem_by_curve_ok", SIG_SWAP_HALVES,
     "bad_signature"},
    {"es256_signature_in_der_is_bad_signature", "es256_pem_by_curve_ok", SIG_AS_DER,
     "bad_signature"},
    {"es256_signature_all_zero_is_bad_signature", "es256_pem_by_curve_ok", SIG_ALL_ZERO,
     "bad_signature"},
    {"es384_signature_reencoded_ok", "es384_jwks_by_kid_ok", SIG_SAME, "ok"},
    {"es384_signature_of_95_bytes_is_bad_signature", "es384_jwks_by_kid_ok", SIG_DROP_LAST,
     "bad_signature"},
    {"es384_signature_in_der_is_bad_signature", "es384_jwks_by_kid_ok", SIG_AS_DER,
     "bad_signature"},
    {"rs256_signature_one_byte_short_is_bad_signature", "rs256_pem_without_kid_ok", SIG_DROP_LAST,
     "bad_signature"},
    {"rs256_signature_one_byte_long_is_bad_signature", "rs256_pem_without_kid_ok", SIG_APPEND_ZERO,
     "bad_signature"},
    {"hs256_signature_one_byte_long_is_bad_signature", "hs256_secret_file_ok", SIG_APPEND_ZERO,
     "bad_signature"},
    {"hs256_signature_spare_bit_set_is_bad_signature", "hs256_secret_file_ok", SIG_SPARE_BIT_SET,
     "bad_signature"},
    {"rs256_signature_spare_bit_set_is_bad_signature", "rs256_pem_without_kid_ok",
     SIG_SPARE_BIT_SET, "bad_signature"},
    {"es256_signature_spare_bit_set_is_bad_signature", "es256_pem_by_curve_ok", SIG_SPARE_BIT_SET,
     "bad_signature"},
};

static void signature_edit(void **state)
{
    const struct sig_case *c = *state;
    const char *token = vector_token(c->vector);
    unsigned char sig[600], edited[600];
    char out[2048];
    size_t len = signature_of(token, sig, sizeof(sig) - 1), half = len / 2;
    json_t *claims = NULL;

    memcpy(edited, sig, len);
    switch (c->edit) {
    case SIG_SAME:
        break;
    case SIG_DROP_LAST:
        len--;
        break;
    case SIG_APPEND_ZERO:
        edited[len++] = 0;
        break;
    case SIG_FLIP_FIRST:
        edited[0] ^= 0x01;
        break;
    case SIG_SWAP_HALVES:
        memcpy(edited, sig + half, half);
        memcpy(edited + half, sig, half);
        break;
    case SIG_AS_DER:
        len = raw_to_der(sig, len, edited);
        break;
    case SIG_ALL_ZERO:
        memset(edited, 0, len);
        break;
    case SIG_SPARE_BIT_SET:
        break;
    }
    with_signature(out, sizeof(out), token, edited, len);
    if (c->edit == SIG_SPARE_BIT_SET) {
        static const char abc[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char *last = out + strlen(out) - 1;

        assert_true(strlen(strrchr(out, '.') + 1) % 4 != 0); /* its lowest bit is beyond the data */
        *last = abc[(strchr(abc, *last) - abc) ^ 1];
    }
    assert_string_equal(rr_auth_err_name(rr_jwt_verify(sig_ctx, ks_full, &base_policy, out,
                                                       strlen(out), now, &claims)),
                        c->expect);
    json_decref(claims);
}

/* ES512 has no PyJWT vector: sign with a fresh P-521 key here, many times, so
 * that R and S of fewer than 66 significant bytes (leading zeros) come up. */
static void es512_with_p521_key_verifies_raw_r_s(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    char path[512], err[512], input[512], token[1024];
    const char *specs[1] = {path};
    struct rr_key_sources src = {.pem_specs = specs, .n_pem = 1};
    struct rr_keyset *ks;
    FILE *f;
    int n;

    assert_non_null(pk);
    tmpfile_path(path, sizeof(path), "p521.pub.pem");
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, pk), 1);
    fclose(f);
    ks = rr_keyset_load(&src, err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(ks->keys[0].allowed, ALG_BIT(RR_ALG_ES512));
    for (int round = 0; round < 64; round++) {
        static const char hdr[] = "{\"alg\":\"ES512\",\"typ\":\"JWT\"}";
        char payload[256];
        unsigned char der[160], raw[132], *r_s = raw;
        const unsigned char *p = der;
        size_t der_len = sizeof(der), hlen;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ECDSA_SIG *es;
        json_t *claims = NULL;

        n = snprintf(payload, sizeof(payload),
                     "{\"sub\":\"erin-%d\",\"exp\":%lld,\"iss\":\"%s\",\"aud\":\"%s\"}", round,
                     (long long)now + 600, base_policy.issuer, base_policy.audience);
        assert_true(n > 0 && (size_t)n < sizeof(payload));
        hlen = b64url_encode((const unsigned char *)hdr, strlen(hdr), input);
        input[hlen++] = '.';
        hlen += b64url_encode((const unsigned char *)payload, (size_t)n, input + hlen);
        assert_non_null(ctx);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha512(), NULL, pk), 1);
        assert_int_equal(EVP_DigestSign(ctx, der, &der_len, (unsigned char *)input, hlen), 1);
        EVP_MD_CTX_free(ctx);
        es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        assert_non_null(es);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), r_s, 66), 66);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), r_s + 66, 66), 66);
        ECDSA_SIG_free(es);
        input[hlen] = '.';
        input[hlen + 1] = '\0';
        with_signature(token, sizeof(token), input, raw, sizeof(raw));
        assert_int_equal(
            rr_jwt_verify(sig_ctx, ks, &base_policy, token, strlen(token), now, &claims),
            RR_AUTH_OK);
        json_decref(claims);
        with_signature(token, sizeof(token), input, raw, sizeof(raw) - 1);
        assert_int_equal(
            rr_jwt_verify(sig_ctx, ks, &base_policy, token, strlen(token), now, &claims),
            RR_AUTH_BAD_SIGNATURE);
    }
    rr_keyset_unref(ks);
    EVP_PKEY_free(pk);
}

/* ---- keyring reload ---- */

static const char *keyring_str(const char *name)
{
    return json_string_value(json_object_get(json_object_get(doc, "keyring"), name));
}

static enum rr_auth_err verify_with(struct rr_keyring *kr, const char *token)
{
    struct rr_jwt_policy pol = base_policy;
    struct rr_keyset *ks = rr_keyring_get(kr);
    json_t *claims = NULL;
    enum rr_auth_err rc = rr_jwt_verify(sig_ctx, ks, &pol, token, strlen(token), now, &claims);

    json_decref(claims);
    rr_keyset_unref(ks);
    return rc;
}

static void write_secret(const char *path, const char *secret)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s\n", secret);

    write_file(path, buf, (size_t)n);
}

/* Past the kernel's timestamp granularity, so a same-size rewrite differs in mtime. */
static void tick(void)
{
    struct timespec ts = {0, 20000000L};

    nanosleep(&ts, NULL);
}

static void keyring_reloads_changed_files_and_keeps_old_keys_on_error(void **state)
{
    (void)state;
    char hmac[512], jwks[512], fix_jwks[512], err[512], want[1024];
    const char *hmacs[1] = {hmac}, *jwkss[1] = {jwks};
    struct rr_key_sources src = {
        .hmac_files = hmacs, .n_hmac = 1, .jwks_files = jwkss, .n_jwks = 1};
    const char *token_a = keyring_str("token_a"), *token_b = keyring_str("token_b");
    struct rr_keyring kr;
    struct rr_keyset *before;
    json_t *fix;

    tmpfile_path(hmac, sizeof(hmac), "keyring.secret");
    tmpfile_path(jwks, sizeof(jwks), "keyring-jwks.json");
    fixture(fix_jwks, sizeof(fix_jwks), "jwks.json");
    fix = json_load_file(fix_jwks, 0, NULL);
    assert_int_equal(json_dump_file(fix, jwks, 0), 0);
    json_decref(fix);
    write_secret(hmac, keyring_str("secret_a"));

    assert_int_equal(rr_keyring_init(&kr, &src, err, sizeof(err)), 0);
    assert_int_equal(verify_with(&kr, token_a), RR_AUTH_OK);
    assert_int_equal(verify_with(&kr, token_b), RR_AUTH_BAD_SIGNATURE);
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), 0);

    /* Same size, same inode: only the mtime's nanoseconds tell. */
    before = rr_keyring_get(&kr);
    tick();
    write_secret(hmac, keyring_str("secret_b"));
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), 1);
    assert_int_equal(verify_with(&kr, token_a), RR_AUTH_BAD_SIGNATURE);
    assert_int_equal(verify_with(&kr, token_b), RR_AUTH_OK);
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), 0);

    /* The keyset taken before the swap still works for whoever holds it. */
    {
        json_t *claims = NULL;
        assert_int_equal(
            rr_jwt_verify(sig_ctx, before, &base_policy, token_a, strlen(token_a), now, &claims),
            RR_AUTH_OK);
        json_decref(claims);
        struct rr_keyset *after = rr_keyring_get(&kr);
        assert_true(after->generation > before->generation);
        rr_keyset_unref(after);
        rr_keyset_unref(before);
    }

    /* A broken JWKS: reload fails, the keys in force stay, and it is not retried unchanged. */
    tick();
    write_file(jwks, "{\"keys\": [", 10);
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: not JSON: ", jwks);
    assert_memory_equal(err, want, strlen(want));
    assert_int_equal(verify_with(&kr, token_b), RR_AUTH_OK);
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), 0);
    assert_int_equal(rr_keyring_reload(&kr, err, sizeof(err)), -1);

    /* A file replaced by rename is a new inode. */
    {
        char tmp[512];
        tmpfile_path(tmp, sizeof(tmp), "keyring-jwks.json.new");
        fix = json_load_file(fix_jwks, 0, NULL);
        assert_int_equal(json_dump_file(fix, tmp, 0), 0);
        json_decref(fix);
        assert_int_equal(rename(tmp, jwks), 0);
    }
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), 1);
    assert_int_equal(verify_with(&kr, token_b), RR_AUTH_OK);
    assert_int_equal(rr_keyring_reload(&kr, err, sizeof(err)), 1);

    /* A deleted file is a change, and an error. */
    assert_int_equal(unlink(hmac), 0);
    assert_int_equal(rr_keyring_reload_if_changed(&kr, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", hmac);
    assert_string_equal(err, want);
    assert_int_equal(verify_with(&kr, token_b), RR_AUTH_OK);
    rr_keyring_free(&kr);
    unlink(jwks);
}

static void keyring_init_fails_with_the_load_error(void **state)
{
    (void)state;
    char hmac[512], err[512], want[1024];
    const char *hmacs[1] = {hmac};
    struct rr_key_sources src = {.hmac_files = hmacs, .n_hmac = 1};
    struct rr_keyring kr;

    tmpfile_path(hmac, sizeof(hmac), "absent.secret");
    assert_int_equal(rr_keyring_init(&kr, &src, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", hmac);
    assert_string_equal(err, want);
}

/* ---- main: fixed tests, then one test per case and per vector ---- */

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        tmpfile_path(path, sizeof(path), e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

static int setup_doc(void)
{
    doc = fixture_vectors();
    if (!doc)
        return -1;
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    now = json_integer_value(json_object_get(doc, "now"));
    base_policy = fixture_policy(doc);
    ks_full = load_keyset("full");
    ks_public = load_keyset("public");
    sig_ctx = rr_jwt_sig_ctx_new();
    return ks_full && ks_public && sig_ctx ? 0 : -1;
}

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(auth_err_names_are_the_spoe_contract),
        cmocka_unit_test(alg_parse_is_exact_and_refuses_none),
        cmocka_unit_test(keyset_loads_fixture_keys_in_configuration_order),
        cmocka_unit_test(public_keys_never_allow_hmac),
        cmocka_unit_test(keyset_generations_are_never_shared),
        cmocka_unit_test(verify_returns_claims_with_their_json_types),
        cmocka_unit_test(jwks_skips_and_counts_keys_it_cannot_use),
        cmocka_unit_test(es512_with_p521_key_verifies_raw_r_s),
        cmocka_unit_test(keyring_reloads_changed_files_and_keeps_old_keys_on_error),
        cmocka_unit_test(keyring_init_fails_with_the_load_error),
    };
    json_t *vectors, *v;
    struct CMUnitTest *tests;
    size_t n = 0, i;
    int failed;

    rr_log_setup("test_jwt", "text", "warn"); /* skipped JWKs are logged at info */
    if (setup_doc() < 0)
        return 1;
    vectors = json_object_get(doc, "vectors");
    tests = calloc(N_ELEMS(fixed) + N_ELEMS(pem_cases) + N_ELEMS(load_cases) + N_ELEMS(jwk_cases) +
                       N_ELEMS(sig_cases) + json_array_size(vectors),
                   sizeof(*tests));
    if (!tests)
        return 1;
    for (i = 0; i < N_ELEMS(fixed); i++)
        tests[n++] = fixed[i];
    for (i = 0; i < N_ELEMS(pem_cases); i++)
        tests[n++] = (struct CMUnitTest){pem_cases[i].name, pem_default_alg_by_key_type, NULL, NULL,
                                         (void *)&pem_cases[i]};
    for (i = 0; i < N_ELEMS(load_cases); i++)
        tests[n++] = (struct CMUnitTest){load_cases[i].name, load_error_names_file_and_reason, NULL,
                                         NULL, (void *)&load_cases[i]};
    for (i = 0; i < N_ELEMS(jwk_cases); i++)
        tests[n++] = (struct CMUnitTest){jwk_cases[i].name, jwk_member_rules, NULL, NULL,
                                         (void *)&jwk_cases[i]};
    for (i = 0; i < N_ELEMS(sig_cases); i++)
        tests[n++] = (struct CMUnitTest){sig_cases[i].name, signature_edit, NULL, NULL,
                                         (void *)&sig_cases[i]};
    json_array_foreach (vectors, i, v) {
        tests[n++] = (struct CMUnitTest){json_string_value(json_object_get(v, "name")),
                                         verify_vector, NULL, NULL, v};
    }
    failed = _cmocka_run_group_tests("jwt", tests, n, NULL, NULL);
    free(tests);
    rr_keyset_unref(ks_full);
    rr_keyset_unref(ks_public);
    rr_jwt_sig_ctx_free(sig_ctx);
    json_decref(doc);
    remove_tmpdir();
    return failed;
}
