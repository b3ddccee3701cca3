/*
 * libFuzzer target for token verification (lib/jwt_verify.c): the input is
 * one token, checked against the fixture keyset (tests/fixtures/jwt, or
 * $RR_FIXTURES/jwt) under the fixture policy. Oracles besides the sanitizers:
 * claims come back exactly when the answer is RR_AUTH_OK, as an object with a
 * name for every refusal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/jwt_keys.h"
#include "lib/jwt_verify.h"
#include "lib/log.h"

/* The clock of tests/fixtures/jwt/vectors.json. */
#define NOW 1900000000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rr_keyset *ks;
static struct rr_jwt_sig_ctx *sig_ctx;

/* No size limit: the fuzzer's -max_len bounds the input, and the parsers get every byte. */
static const struct rr_jwt_policy policy = {
    .issuer = "https://issuer.test",
    .audience = "roomrelay",
    .leeway = 30,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char paths[4][600];
    static const char *hmac[1], *pem[2], *jwks[1];
    const char *dir = getenv("RR_FIXTURES");
    char err[512];
    struct rr_key_sources src = {.hmac_files = hmac,
                                 .n_hmac = 1,
                                 .pem_specs = pem,
                                 .n_pem = 2,
                                 .jwks_files = jwks,
                                 .n_jwks = 1};

    (void)argc;
    (void)argv;
    if (!dir || !*dir)
        dir = "tests/fixtures";
    snprintf(paths[0], sizeof(paths[0]), "%s/jwt/hmac.secret", dir);
    snprintf(paths[1], sizeof(paths[1]), "%s/jwt/rsa.pub.pem:RS256,RS384", dir);
    snprintf(paths[2], sizeof(paths[2]), "%s/jwt/ec256.pub.pem", dir);
    snprintf(paths[3], sizeof(paths[3]), "%s/jwt/jwks.json", dir);
    hmac[0] = paths[0];
    pem[0] = paths[1];
    pem[1] = paths[2];
    jwks[0] = paths[3];
    rr_log_setup("fuzz_jwt", "text", "warn");
    ks = rr_keyset_load(&src, err, sizeof(err));
    sig_ctx = rr_jwt_sig_ctx_new();
    if (!ks || !sig_ctx) {
        fprintf(stderr, "fuzz_jwt: %s\n", ks ? "out of memory" : err);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t untouched;
    json_t *claims = &untouched;
    enum rr_auth_err e =
        rr_jwt_verify(sig_ctx, ks, &policy, (const char *)data, size, NOW, &claims);

    if (e >= RR_AUTH_ERR_COUNT || !rr_auth_err_name(e))
        abort();
    if (e == RR_AUTH_OK ? !json_is_object(claims) : claims != NULL)
        abort();
    json_decref(claims);
    return 0;
}
