/*
 * The check-token message: pick the client's token from the request's
 * header/argument/cookie, verify it (or find it in this worker's cache) and
 * set the session variables HAProxy's rules read: auth, auth_err, sub, exp and
 * one per --claim-var. Every variable this handler does not set for this
 * request is unset, because session variables outlive a request on a
 * keep-alive connection and a stale `sub` must never ride on a refused token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/auth.h"
#include "lib/token_pick.h"
#include "spoa/handler.h"
#include "spoa/stats.h"

static bool str_is(struct spop_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Reads the four args by name; args with other names are ignored. */
static int read_inputs(struct spop_reader *r, uint8_t nargs, struct rr_token_inputs *in)
{
    memset(in, 0, sizeof(*in));
    for (uint8_t i = 0; i < nargs; i++) {
        struct spop_str k;
        struct spop_data v;
        if (spop_read_kv(r, &k, &v) != 1)
            return -1;
        if (v.type != SPOP_DATA_STR && v.type != SPOP_DATA_BIN)
            continue; /* absent sample: HAProxy sends NULL */
        if (str_is(k, "bearer")) {
            in->bearer = v.u.str.ptr;
            in->bearer_len = v.u.str.len;
        } else if (str_is(k, "qtoken")) {
            in->qtoken = v.u.str.ptr;
            in->qtoken_len = v.u.str.len;
        } else if (str_is(k, "proto")) {
            in->proto = v.u.str.ptr;
            in->proto_len = v.u.str.len;
        } else if (str_is(k, "cookie")) {
            in->cookie = v.u.str.ptr;
            in->cookie_len = v.u.str.len;
        }
    }
    return 0;
}

/* Sets sess.rr.<name> from a JSON claim, keeping its type where SPOP has one. */
static void set_claim_var(struct spop_writer *w, const char *name, json_t *val)
{
    struct spop_data d;
    char *dump = NULL;
    if (json_is_string(val)) {
        d = spop_str_data(json_string_value(val), json_string_length(val));
    } else if (json_is_integer(val)) {
        d = spop_int64_data((int64_t)json_integer_value(val));
    } else if (json_is_boolean(val)) {
        d = spop_bool_data(json_is_true(val));
    } else {
        dump = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!dump) {
            spop_write_unset_var(w, SPOP_SCOPE_SESS, name);
            return;
        }
        d = spop_str_data(dump, strlen(dump));
    }
    spop_write_set_var(w, SPOP_SCOPE_SESS, name, &d);
    free(dump);
}

static void unset_identity(struct spop_writer *w, const struct spoa_config *cfg)
{
    spop_write_unset_var(w, SPOP_SCOPE_SESS, "sub");
    spop_write_unset_var(w, SPOP_SCOPE_SESS, "exp");
    for (size_t i = 0; i < cfg->claim_vars.n; i++)
        spop_write_unset_var(w, SPOP_SCOPE_SESS, cfg->claim_vars.v[i]);
}

static void write_refusal(struct spop_writer *w, const struct spoa_config *cfg,
                          enum rr_auth_err err)
{
    struct spop_data no = spop_bool_data(false);
    const char *reason = rr_auth_err_name(err);
    struct spop_data why = spop_str_data(reason, strlen(reason));
    spop_write_set_var(w, SPOP_SCOPE_SESS, "auth", &no);
    spop_write_set_var(w, SPOP_SCOPE_SESS, "auth_err", &why);
    unset_identity(w, cfg);
}

void spoa_check_token_fail_closed(struct spop_writer *w, const struct spoa_config *cfg)
{
    write_refusal(w, cfg, RR_AUTH_TOO_LARGE);
}

static void write_accept(struct spop_writer *w, const struct spoa_config *cfg, json_t *claims)
{
    struct spop_data yes = spop_bool_data(true);
    spop_write_set_var(w, SPOP_SCOPE_SESS, "auth", &yes);
    spop_write_unset_var(w, SPOP_SCOPE_SESS, "auth_err");

    json_t *sub = json_object_get(claims, "sub");
    struct spop_data d = spop_str_data(json_string_value(sub), json_string_length(sub));
    spop_write_set_var(w, SPOP_SCOPE_SESS, "sub", &d);

    json_t *exp = json_object_get(claims, "exp");
    if (json_is_number(exp)) {
        d = spop_int64_data(rr_claim_seconds(exp));
        spop_write_set_var(w, SPOP_SCOPE_SESS, "exp", &d);
    } else {
        spop_write_unset_var(w, SPOP_SCOPE_SESS, "exp");
    }

    for (size_t i = 0; i < cfg->claim_vars.n; i++) {
        const char *name = cfg->claim_vars.v[i];
        json_t *v = json_object_get(claims, name);
        if (v)
            set_claim_var(w, name, v);
        else
            spop_write_unset_var(w, SPOP_SCOPE_SESS, name);
    }
}

/* Verifies the token through this worker's cache, counting hits and misses. */
static enum rr_auth_err verify(struct spoa_ctx *ctx, const char *tok, size_t len, json_t **claims)
{
    const struct spoa_config *cfg = ctx->cfg;
    bool hit = false;
    enum rr_auth_err err = rr_auth_check(cfg->keys, &cfg->policy, ctx->cache, ctx->sig_ctx, tok,
                                         len, ctx->now, claims, &hit);
    if (err != RR_AUTH_TOO_LARGE)
        rr_inc(hit ? &spoa_stats.cache_hits : &spoa_stats.cache_misses);
    return err;
}

int spoa_check_token(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                     struct spop_writer *w)
{
    struct rr_token_inputs in;
    if (read_inputs(r, nargs, &in) < 0)
        return -1;

    const char *tok;
    size_t len;
    json_t *claims = NULL;
    enum rr_auth_err err;
    if (!rr_token_pick(&in, &tok, &len))
        err = RR_AUTH_MISSING;
    else
        err = verify(ctx, tok, len, &claims);

    rr_inc(&spoa_stats.check_token[err]);
    if (err == RR_AUTH_OK)
        write_accept(w, ctx->cfg, claims);
    else
        write_refusal(w, ctx->cfg, err);
    json_decref(claims);
    return 0;
}
