/*
 * Token to identity, see auth.h.
 */
#include "lib/auth.h"

int64_t rr_claim_seconds(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    double d = json_real_value(v);
    if (d >= 0x1p63)
        return INT64_MAX;
    if (d < -0x1p63)
        return INT64_MIN;
    return (int64_t)d;
}

enum rr_auth_err rr_auth_check(struct rr_keyring *keys, const struct rr_jwt_policy *pol,
                               struct rr_token_cache *cache, struct rr_jwt_sig_ctx *sc,
                               const char *tok, size_t len, int64_t now, json_t **claims,
                               bool *cache_hit)
{
    *claims = NULL;
    *cache_hit = false;
    if (pol->max_token_bytes && len > pol->max_token_bytes)
        return RR_AUTH_TOO_LARGE;

    struct rr_keyset *ks = rr_keyring_get(keys);
    enum rr_auth_err err = RR_AUTH_OK;
    if (cache)
        *claims = rr_token_cache_get(cache, tok, len, ks->generation, now);
    if (*claims) {
        *cache_hit = true;
    } else {
        err = rr_jwt_verify(sc, ks, pol, tok, len, now, claims);
        if (err == RR_AUTH_OK && !json_is_string(json_object_get(*claims, "sub"))) {
            json_decref(*claims);
            *claims = NULL;
            err = RR_AUTH_MALFORMED;
        }
        if (err == RR_AUTH_OK && cache) {
            json_t *exp = json_object_get(*claims, "exp");
            int64_t until = INT64_MAX;
            if (json_is_number(exp)) {
                int64_t e = rr_claim_seconds(exp);
                until = e > INT64_MAX - pol->leeway ? INT64_MAX : e + pol->leeway;
            }
            rr_token_cache_put(cache, tok, len, ks->generation, until, *claims);
        }
    }
    rr_keyset_unref(ks);
    return err;
}
