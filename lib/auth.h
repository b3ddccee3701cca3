/*
 * Who a client is, from its token: the keyring's current keys, the
 * verified-token cache, the JWT policy, and the rule that an identity needs a
 * string `sub`. The one path both the agent (check-token) and the backend
 * (its own handshake) verify tokens through.
 */
#ifndef RR_AUTH_H
#define RR_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/jwt_keys.h"
#include "lib/jwt_verify.h"
#include "lib/token_cache.h"

/*
 * Verifies tok (through cache, which may be NULL; a miss is verified with sc,
 * the calling thread's signature state). On RR_AUTH_OK *claims is
 * the payload (the caller owns one reference) and has a string `sub`; a
 * token without one is RR_AUTH_MALFORMED. *cache_hit says whether the cache
 * answered. Successes are cached until exp + leeway.
 */
enum rr_auth_err rr_auth_check(struct rr_keyring *keys, const struct rr_jwt_policy *pol,
                               struct rr_token_cache *cache, struct rr_jwt_sig_ctx *sc,
                               const char *tok, size_t len, int64_t now, json_t **claims,
                               bool *cache_hit);

/* A JSON number claim (exp, nbf) in whole seconds. JSON allows any number
 * (1e300) and C leaves the cast of a double past int64 undefined: such a
 * value saturates. */
int64_t rr_claim_seconds(const json_t *v);

#endif
