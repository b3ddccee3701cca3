/*
 * JWT verification policy: header checks, key choice by kid/alg (the token's
 * alg alone never picks a key), signature with OpenSSL against keys parsed at
 * load, then exp/nbf/iss/aud. Pure apart from the crypto: the caller passes
 * `now`. Shared by roomrelay-spoa and roomrelay-backend.
 */
#ifndef RR_JWT_VERIFY_H
#define RR_JWT_VERIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/jwt_keys.h"
#include "lib/jwt_sig.h"

/* Why a token was refused. Names are the values of sess.rr.auth_err. */
enum rr_auth_err {
    RR_AUTH_OK = 0,
    RR_AUTH_MISSING,
    RR_AUTH_MALFORMED,
    RR_AUTH_ALG_NOT_ALLOWED,
    RR_AUTH_UNKNOWN_KID,
    RR_AUTH_BAD_SIGNATURE,
    RR_AUTH_EXPIRED,
    RR_AUTH_NOT_YET_VALID,
    RR_AUTH_BAD_ISSUER,
    RR_AUTH_BAD_AUDIENCE,
    RR_AUTH_TOO_LARGE,
    RR_AUTH_ERR_COUNT,
};

/* "bad_signature" for RR_AUTH_BAD_SIGNATURE, "ok" for RR_AUTH_OK. */
const char *rr_auth_err_name(enum rr_auth_err e);

struct rr_jwt_policy {
    const char *issuer;     /* NULL: iss not checked */
    const char *audience;   /* NULL: aud not checked */
    int64_t leeway;         /* seconds allowed on exp and nbf */
    bool allow_no_exp;      /* accept tokens without exp */
    size_t max_token_bytes; /* longer is RR_AUTH_TOO_LARGE (0: no limit) */
};

/*
 * Verifies one compact JWS (header.payload.signature, no surrounding spaces).
 * On RR_AUTH_OK, *claims receives the payload object (the caller owns one
 * reference). On any error *claims is NULL.
 *
 * The header's alg must be one of enum rr_jwt_alg (else ALG_NOT_ALLOWED). A
 * token with a kid is tried only against the keys with that kid (UNKNOWN_KID
 * if none; HMAC and PEM keys have no kid), one without a kid against every
 * key allowing its alg, in configuration order. MALFORMED also covers a
 * header with crit, a string typ other than "JWT" (another kind of token), a
 * non-string kid, and an exp or nbf that is not a number. BAD_SIGNATURE also
 * covers a signature of the wrong length for its alg (ES* is R || S, RFC 7518
 * §3.4) and one whose last character has bits set beyond the data. A missing
 * exp is EXPIRED unless allow_no_exp. Valid while now <= exp + leeway and
 * now + leeway >= nbf. Signatures are checked with sc, the calling thread's.
 */
enum rr_auth_err rr_jwt_verify(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks,
                               const struct rr_jwt_policy *pol, const char *token, size_t len,
                               int64_t now, json_t **claims);

#endif
