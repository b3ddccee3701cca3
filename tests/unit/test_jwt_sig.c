/*
 * Unit tests of lib/jwt_sig.c: a signature context is set up once per key and
 * digest and then reused, and reuse changes no verdict: good and bad
 * signatures in any order on one context, RSA, EC and HMAC alike. A keyset of
 * another generation never meets an old context, a keyset freed under a
 * context is harmless, and threads with their own contexts share one keyset.
 * Messages are signed here with the fixture private keys
 * (tests/fixtures/jwt/test-only-*.pem, or under $RR_FIXTURES).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/jwt_keys.h"
#include "lib/jwt_sig.h"

#define ROUNDS 100
#define SIG_MAX 512

static EVP_PKEY *rsa, *rsa_other, *ec;
static const unsigned char secret[] = "test-only secret of the jwt_sig tests";

struct sig {
    unsigned char b[SIG_MAX];
    size_t len;
};

static EVP_PKEY *private_key(const char *name)
{
    const char *dir = getenv("RR_FIXTURES");
    char path[512];
    EVP_PKEY *pk;
    FILE *f;

    snprintf(path, sizeof(path), "%s/jwt/%s", dir && *dir ? dir : "tests/fixtures", name);
    f = fopen(path, "r");
    if (!f)
        return NULL;
    pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return pk;
}

/* A keyset of one key: pk's public half as a --pem-key FILE:ALGS, or the HMAC
 * secret. The file is gone once the keyset is loaded. */
static struct rr_keyset *keyset_of(EVP_PKEY *pk, const char *algs)
{
    char path[] = "/tmp/rr-test-jwt-sig-XXXXXX", spec[64], err[512];
    const char *specs[1] = {spec}, *files[1] = {path};
    struct rr_key_sources src = {0};
    struct rr_keyset *ks;
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    assert_non_null(f);
    if (pk)
        assert_int_equal(PEM_write_PUBKEY(f, pk), 1);
    else
        assert_int_equal(fwrite(secret, 1, sizeof(secret) - 1, f), sizeof(secret) - 1);
    assert_int_equal(fclose(f), 0);
    if (pk) {
        snprintf(spec, sizeof(spec), "%s:%s", path, algs);
        src.pem_specs = specs;
        src.n_pem = 1;
    } else {
        src.hmac_files = files;
        src.n_hmac = 1;
    }
    ks = rr_keyset_load(&src, err, sizeof(err));
    unlink(path);
    if (!ks)
        fail_msg("%s", err);
    return ks;
}

static const EVP_MD *alg_md(enum rr_jwt_alg alg)
{
    switch (alg) {
    case RR_ALG_HS384:
    case RR_ALG_RS384:
    case RR_ALG_ES384:
        return EVP_sha384();
    case RR_ALG_HS512:
    case RR_ALG_RS512:
    case RR_ALG_ES512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

/* The JWS signature of msg: an HMAC with the secret (pk NULL), PKCS#1 v1.5,
 * or ECDSA as R || S of 32 bytes each (P-256). */
static struct sig sign(EVP_PKEY *pk, enum rr_jwt_alg alg, const char *msg)
{
    struct sig s = {0};
    unsigned char der[SIG_MAX];
    const unsigned char *p = der;
    size_t der_len = sizeof(der);
    unsigned int mac_len = 0;
    EVP_MD_CTX *ctx;
    ECDSA_SIG *es;

    if (!pk) {
        assert_non_null(HMAC(alg_md(alg), secret, (int)sizeof(secret) - 1,
                             (const unsigned char *)msg, strlen(msg), s.b, &mac_len));
        s.len = mac_len;
        return s;
    }
    ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, alg_md(alg), NULL, pk), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)msg, strlen(msg)),
                     1);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        memcpy(s.b, der, der_len);
        s.len = der_len;
        return s;
    }
    es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    assert_non_null(es);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), s.b, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), s.b + 32, 32), 32);
    ECDSA_SIG_free(es);
    s.len = 64;
    return s;
}

static bool check(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks, enum rr_jwt_alg alg,
                  const char *msg, const struct sig *s)
{
    return rr_jwt_sig_check(sc, ks, 0, alg, (const unsigned char *)msg, strlen(msg), s->b, s->len);
}

/* ---- one key, many messages: one context ---- */

static const struct reuse_case {
    const char *name;
    EVP_PKEY **pk; /* NULL: HMAC */
    const char *algs;
    enum rr_jwt_alg alg;
    size_t contexts; /* set up for ROUNDS verifies */
} reuse_cases[] = {
    {"rs256_context_set_up_once_for_many_verifies", &rsa, "RS256", RR_ALG_RS256, 1},
    {"rs512_context_set_up_once_for_many_verifies", &rsa, "RS512", RR_ALG_RS512, 1},
    {"es256_context_set_up_once_for_many_verifies", &ec, "ES256", RR_ALG_ES256, 1},
    {"hs256_needs_no_key_context", NULL, NULL, RR_ALG_HS256, 0},
    {"hs512_needs_no_key_context", NULL, NULL, RR_ALG_HS512, 0},
};

static void context_reused_across_verifies(void **state)
{
    const struct reuse_case *c = *state;
    EVP_PKEY *pk = c->pk ? *c->pk : NULL;
    struct rr_keyset *ks = keyset_of(pk, c->algs);
    struct rr_jwt_sig_ctx *sc = rr_jwt_sig_ctx_new();

    assert_non_null(sc);
    for (int i = 0; i < ROUNDS; i++) {
        char msg[64];
        struct sig s;

        snprintf(msg, sizeof(msg), "eyJhbGciOiJub25lIn0.message-%d", i);
        s = sign(pk, c->alg, msg);
        assert_true(check(sc, ks, c->alg, msg, &s));
    }
    assert_int_equal(rr_jwt_sig_ctx_built(sc), c->contexts);
    rr_jwt_sig_ctx_free(sc);
    rr_keyset_unref(ks);
}

/* ---- good and bad in any order on one context ---- */

enum edit { GOOD, FLIP_FIRST_BIT, FLIP_LAST_BIT, ONE_BYTE_SHORT, OTHER_MESSAGE, ALL_ZERO };

static bool check_edited(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks, enum rr_jwt_alg alg,
                         const char *msg, struct sig s, enum edit e)
{
    switch (e) {
    case GOOD:
        break;
    case FLIP_FIRST_BIT:
        s.b[0] ^= 0x80;
        break;
    case FLIP_LAST_BIT:
        s.b[s.len - 1] ^= 0x01;
        break;
    case ONE_BYTE_SHORT:
        s.len--;
        break;
    case OTHER_MESSAGE:
        msg = "eyJhbGciOiJub25lIn0.another-message";
        break;
    case ALL_ZERO:
        memset(s.b, 0, s.len);
        break;
    }
    return check(sc, ks, alg, msg, &s);
}

static const struct order_case {
    const char *name;
    EVP_PKEY **pk;
    const char *algs;
    enum rr_jwt_alg alg;
} order_cases[] = {
    {"rs256_bad_after_good_refused_and_good_after_bad_accepted", &rsa, "RS256", RR_ALG_RS256},
    {"es256_bad_after_good_refused_and_good_after_bad_accepted", &ec, "ES256", RR_ALG_ES256},
    {"hs256_bad_after_good_refused_and_good_after_bad_accepted", NULL, NULL, RR_ALG_HS256},
};

static void verdicts_do_not_depend_on_the_previous_one(void **state)
{
    static const enum edit seq[] = {GOOD,           FLIP_FIRST_BIT, GOOD,         FLIP_LAST_BIT,
                                    ONE_BYTE_SHORT, GOOD,           ALL_ZERO,     OTHER_MESSAGE,
                                    GOOD,           GOOD,           FLIP_LAST_BIT};
    const struct order_case *c = *state;
    EVP_PKEY *pk = c->pk ? *c->pk : NULL;
    struct rr_keyset *ks = keyset_of(pk, c->algs);
    struct rr_jwt_sig_ctx *sc = rr_jwt_sig_ctx_new();
    const char *msg = "eyJhbGciOiJub25lIn0.the-message";
    struct sig s = sign(pk, c->alg, msg);

    assert_non_null(sc);
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
            assert_int_equal(check_edited(sc, ks, c->alg, msg, s, seq[i]), seq[i] == GOOD);
    assert_int_equal(rr_jwt_sig_ctx_built(sc), pk ? 1 : 0);
    rr_jwt_sig_ctx_free(sc);
    rr_keyset_unref(ks);
}

/* ---- keysets ---- */

/* Two keysets whose key 0 differs: a context kept from the first would accept
 * its signatures under the second. Going back, or loading the same key again,
 * sets up a context anew. */
static void new_keyset_generation_never_meets_old_contexts(void **state)
{
    (void)state;
    struct rr_keyset *a = keyset_of(rsa, "RS256"), *b = keyset_of(rsa_other, "RS256");
    struct rr_keyset *a_again = keyset_of(rsa, "RS256");
    struct rr_jwt_sig_ctx *sc = rr_jwt_sig_ctx_new();
    const char *msg = "eyJhbGciOiJub25lIn0.rotated";
    struct sig by_a = sign(rsa, RR_ALG_RS256, msg), by_b = sign(rsa_other, RR_ALG_RS256, msg);

    assert_non_null(sc);
    assert_true(check(sc, a, RR_ALG_RS256, msg, &by_a));
    assert_false(check(sc, b, RR_ALG_RS256, msg, &by_a));
    assert_true(check(sc, b, RR_ALG_RS256, msg, &by_b));
    assert_int_equal(rr_jwt_sig_ctx_built(sc), 2);
    assert_false(check(sc, a, RR_ALG_RS256, msg, &by_b));
    assert_true(check(sc, a, RR_ALG_RS256, msg, &by_a));
    assert_int_equal(rr_jwt_sig_ctx_built(sc), 3);
    assert_true(check(sc, a_again, RR_ALG_RS256, msg, &by_a));
    assert_int_equal(rr_jwt_sig_ctx_built(sc), 4);
    rr_jwt_sig_ctx_free(sc);
    rr_keyset_unref(a);
    rr_keyset_unref(b);
    rr_keyset_unref(a_again);
}

/* A reload frees the old keyset while a worker's context still holds its key;
 * the next verify (with the new keyset) drops that context. Sanitizers judge. */
static void keyset_freed_under_a_context_is_released_at_next_verify(void **state)
{
    (void)state;
    struct rr_keyset *old = keyset_of(ec, "ES256"), *cur = keyset_of(rsa, "RS256");
    struct rr_jwt_sig_ctx *sc = rr_jwt_sig_ctx_new();
    const char *msg = "eyJhbGciOiJub25lIn0.reloaded";
    struct sig by_ec = sign(ec, RR_ALG_ES256, msg), by_rsa = sign(rsa, RR_ALG_RS256, msg);

    assert_non_null(sc);
    assert_true(check(sc, old, RR_ALG_ES256, msg, &by_ec));
    rr_keyset_unref(old);
    assert_true(check(sc, cur, RR_ALG_RS256, msg, &by_rsa));
    rr_keyset_unref(cur);
    rr_jwt_sig_ctx_free(sc); /* still holds cur's key context */
}

/* One context per digest: RS256 then RS384 with one key is two contexts, reused. */
static void one_context_per_key_and_digest(void **state)
{
    (void)state;
    struct rr_keyset *ks = keyset_of(rsa, "RS256,RS384");
    struct rr_jwt_sig_ctx *sc = rr_jwt_sig_ctx_new();
    const char *msg = "eyJhbGciOiJub25lIn0.two-digests";
    struct sig s256 = sign(rsa, RR_ALG_RS256, msg), s384 = sign(rsa, RR_ALG_RS384, msg);

    assert_non_null(sc);
    for (int i = 0; i < 3; i++) {
        assert_true(check(sc, ks, RR_ALG_RS256, msg, &s256));
        assert_false(check(sc, ks, RR_ALG_RS384, msg, &s256));
        assert_true(check(sc, ks, RR_ALG_RS384, msg, &s384));
        assert_false(check(sc, ks, RR_ALG_RS256, msg, &s384));
    }
    assert_int_equal(rr_jwt_sig_ctx_built(sc), 2);
    rr_jwt_sig_ctx_free(sc);
    rr_keyset_unref(ks);
}

/* ---- threads ---- */

struct worker {
    pthread_t thread;
    const struct rr_keyset *ks;
    const struct sig *good, *bad;
    const char *msg;
    int wrong; /* verdicts that were not what they should be */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct rr_jwt_sig_ctx *sc = rr_jwt_sig_ctx_new();

    w->wrong = sc ? 0 : -1;
    for (int i = 0; sc && i < ROUNDS; i++) {
        w->wrong += !check(sc, w->ks, RR_ALG_RS256, w->msg, w->good);
        w->wrong += check(sc, w->ks, RR_ALG_RS256, w->msg, w->bad);
    }
    rr_jwt_sig_ctx_free(sc);
    return NULL;
}

static void threads_with_their_own_contexts_share_one_keyset(void **state)
{
    (void)state;
    struct rr_keyset *ks = keyset_of(rsa, "RS256");
    const char *msg = "eyJhbGciOiJub25lIn0.concurrent";
    struct sig good = sign(rsa, RR_ALG_RS256, msg), bad = sign(rsa_other, RR_ALG_RS256, msg);
    struct worker w[4];

    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        w[i] = (struct worker){.ks = ks, .good = &good, .bad = &bad, .msg = msg};
        assert_int_equal(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
    }
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        assert_int_equal(w[i].wrong, 0);
    }
    rr_keyset_unref(ks);
}

/* ---- main ---- */

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(new_keyset_generation_never_meets_old_contexts),
        cmocka_unit_test(keyset_freed_under_a_context_is_released_at_next_verify),
        cmocka_unit_test(one_context_per_key_and_digest),
        cmocka_unit_test(threads_with_their_own_contexts_share_one_keyset),
    };
    struct CMUnitTest tests[N_ELEMS(fixed) + N_ELEMS(reuse_cases) + N_ELEMS(order_cases)];
    size_t n = 0;
    int failed;

    rsa = private_key("test-only-rsa.pem");
    rsa_other = private_key("test-only-rsa-other.pem");
    ec = private_key("test-only-ec256.pem");
    if (!rsa || !rsa_other || !ec) {
        fprintf(stderr, "test_jwt_sig: fixture keys missing\n");
        return 1;
    }
    for (size_t i = 0; i < N_ELEMS(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < N_ELEMS(reuse_cases); i++)
        tests[n++] = (struct CMUnitTest){reuse_cases[i].name, context_reused_across_verifies, NULL,
                                         NULL, (void *)&reuse_cases[i]};
    for (size_t i = 0; i < N_ELEMS(order_cases); i++)
        tests[n++] =
            (struct CMUnitTest){order_cases[i].name, verdicts_do_not_depend_on_the_previous_one,
                                NULL, NULL, (void *)&order_cases[i]};
    failed = _cmocka_run_group_tests("jwt_sig", tests, n, NULL, NULL);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec);
    return failed;
}
