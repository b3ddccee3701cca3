/*
 * Unit tests of the agent's answers (spoa/handler.c, spoa/check_token.c):
 * NOTIFY frames built with the SPOP writer go through spoa_handle_notify()
 * and the ACK's actions are read back and compared as text, one line per
 * ACK ("set sess.auth=BOOL(true) | unset sess.auth_err | ...").
 *
 * Keys are the fixtures of tests/fixtures/jwt. Vectors made by python3-jwt
 * are used for the refusals; tokens that carry claims of every JSON type are
 * signed here with libjwt and the fixture HMAC secret (the verifier itself is
 * checked against python3-jwt in test_jwt.c). Not tested here: sockets and
 * the connection state machine (tests/integration/test_spoa_protocol.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spoa/handler.h"
#include "spoa/stats.h"
#include "tests/unit/jwt_fixture.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The clock of vectors.json; the expected answers below spell out times from it. */
#define NOW 1900000000
#define EXP (NOW + 600)

static json_t *doc;
static struct rr_jwt_policy base_policy;
static struct rr_keyring keyring;
static char key_paths[4][600];
static const char *hmac_files[1], *pem_specs[2], *jwks_files[1];
static unsigned char secret[256];
static size_t secret_len;
static char *token_alice, *token_bob;

/* What each test runs with: reset before every test. */
static const char *claim_vars[16];
static struct spoa_config cfg;
static struct spoa_ctx ctx;
static char *owned[8]; /* tokens signed by a test, freed after it */
static size_t n_owned;

/* ---- tokens ---- */

/* Signs claims (a JSON object's text) with the fixture HMAC secret, as an issuer would. */
static char *sign(const char *claims)
{
    jwt_t *jwt = NULL;
    char *tok;

    if (jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, claims) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, secret, (int)secret_len) != 0)
        fail_msg("cannot sign %s", claims);
    tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!tok)
        fail_msg("cannot encode %s", claims);
    return tok;
}

/* A token the fixture policy accepts, with `extra` members (",\"role\":\"x\"") added. */
static char *sign_with(const char *extra)
{
    char claims[2048];

    snprintf(claims, sizeof(claims),
             "{\"sub\":\"alice\",\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%d,\"exp\":%d%s}",
             base_policy.issuer, base_policy.audience, NOW, EXP, extra);
    return sign(claims);
}

/* Like sign() for a token the test throws away afterwards. */
static const char *test_token(const char *claims)
{
    assert_true(n_owned < N_ELEMS(owned));
    owned[n_owned] = sign(claims);
    return owned[n_owned++];
}

static const char *vector_token(const char *name)
{
    json_t *v;
    size_t i;

    json_array_foreach (json_object_get(doc, "vectors"), i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return json_string_value(json_object_get(v, "token"));
    }
    fail_msg("no vector %s in vectors.json", name);
    return NULL;
}

/* ---- NOTIFY frames ---- */

/* One message argument. STR and BIN values may name the test tokens: "$A" is
 * replaced by token_alice, "$B" by token_bob. */
struct arg {
    const char *key;
    uint8_t type; /* enum spop_data_type: NULL, INT32, STR or BIN */
    const char *val;
};

/* clang-format off */
#define NUL_ARG(k) {k, SPOP_DATA_NULL, NULL}
#define STR_ARG(k, v) {k, SPOP_DATA_STR, v}
/* clang-format on */

struct msg {
    const char *name;
    struct arg args[6]; /* up to the first one without a key */
};

static void expand(char *out, size_t cap, const char *tmpl)
{
    size_t o = 0;

    for (const char *p = tmpl; *p; p++) {
        const char *ins = NULL;
        if (p[0] == '$' && p[1] == 'A')
            ins = token_alice;
        else if (p[0] == '$' && p[1] == 'B')
            ins = token_bob;
        if (ins) {
            size_t n = strlen(ins);
            assert_true(o + n < cap);
            memcpy(out + o, ins, n);
            o += n;
            p++;
        } else {
            assert_true(o + 1 < cap);
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static void write_arg(struct spop_writer *w, const struct arg *a)
{
    char buf[16384];
    struct spop_data d = {.type = a->type};

    if (a->type == SPOP_DATA_INT32) {
        d.u.i32 = atoi(a->val);
    } else if (a->type == SPOP_DATA_STR || a->type == SPOP_DATA_BIN) {
        expand(buf, sizeof(buf), a->val);
        d.u.str = (struct spop_str){buf, strlen(buf)};
    }
    spop_write_kv(w, a->key, &d);
}

static size_t write_notify(uint8_t *buf, size_t cap, uint64_t sid, uint64_t fid,
                           const struct msg *msgs, size_t n)
{
    struct spop_writer w;
    size_t len;

    spop_writer_init(&w, buf, cap);
    spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, sid, fid);
    for (size_t i = 0; i < n; i++) {
        uint8_t nargs = 0;
        while (nargs < N_ELEMS(msgs[i].args) && msgs[i].args[nargs].key)
            nargs++;
        spop_write_message(&w, msgs[i].name, nargs);
        for (uint8_t a = 0; a < nargs; a++)
            write_arg(&w, &msgs[i].args[a]);
    }
    len = spop_frame_end(&w);
    assert_true(len > 0);
    return len;
}

/* ---- ACKs as text ---- */

static void render_data(char *out, size_t cap, const struct spop_data *d)
{
    switch (d->type) {
    case SPOP_DATA_BOOL:
        snprintf(out, cap, "BOOL(%s)", d->u.b ? "true" : "false");
        break;
    case SPOP_DATA_INT64:
        snprintf(out, cap, "INT64(%" PRId64 ")", d->u.i64);
        break;
    case SPOP_DATA_STR:
        snprintf(out, cap, "STR(%.*s)", (int)d->u.str.len, d->u.str.ptr);
        break;
    default:
        snprintf(out, cap, "TYPE%u", d->type);
        break;
    }
}

/* The actions of an ACK payload, "set sess.x=T(v) | unset sess.y | ...". */
static void render_actions(char *out, size_t cap, const uint8_t *p, size_t len)
{
    static const char *const scopes[] = {"proc", "sess", "txn", "req", "res"};
    struct spop_reader r;
    size_t o = 0;
    int rc;

    out[0] = '\0';
    spop_reader_init(&r, p, len);
    for (;;) {
        uint8_t type, scope;
        struct spop_str name;
        struct spop_data val;
        char v[4096];

        rc = spop_read_action(&r, &type, &scope, &name, &val);
        if (rc == 0)
            break;
        assert_int_equal(rc, 1);
        if (type == SPOP_ACT_SET_VAR) {
            render_data(v, sizeof(v), &val);
            o += (size_t)snprintf(out + o, cap - o, "%sset %s.%.*s=%s", o ? " | " : "",
                                  scopes[scope], (int)name.len, name.ptr, v);
        } else {
            o += (size_t)snprintf(out + o, cap - o, "%sunset %s.%.*s", o ? " | " : "",
                                  scopes[scope], (int)name.len, name.ptr);
        }
        assert_true(o < cap);
    }
}

/* Runs a NOTIFY frame through the handler. On SPOP_ST_NONE the ACK must be a
 * FIN ACK echoing the ids and fitting max_frame; its actions go to `out`. */
static enum spop_status answer(const uint8_t *frame, size_t len, uint32_t max_frame, char *out,
                               size_t cap)
{
    static uint8_t ack[SPOP_MAX_FRAME_SIZE + SPOP_LEN_PREFIX];
    struct spop_frame f, a;
    size_t ack_len = 0;
    enum spop_status st;

    assert_int_equal(spop_frame_parse(frame, len, SPOP_MAX_FRAME_SIZE, &f), (int)len);
    st = spoa_handle_notify(&ctx, &f, ack, sizeof(ack), max_frame, &ack_len);
    if (st != SPOP_ST_NONE)
        return st;
    assert_int_equal(spop_frame_parse(ack, ack_len, max_frame, &a), (int)ack_len);
    assert_int_equal(a.type, SPOP_FRAME_ACK);
    assert_int_equal(a.flags, SPOP_FLAG_FIN);
    assert_int_equal(a.stream_id, f.stream_id);
    assert_int_equal(a.frame_id, f.frame_id);
    render_actions(out, cap, a.payload, a.payload_len);
    return st;
}

static void ask_max(const struct msg *msgs, size_t n, uint32_t max_frame, char *out, size_t cap)
{
    static uint8_t frame[65536];
    size_t len = write_notify(frame, sizeof(frame), 1, 1, msgs, n);

    assert_int_equal(answer(frame, len, max_frame, out, cap), SPOP_ST_NONE);
}

static void ask(const struct msg *msgs, size_t n, char *out, size_t cap)
{
    ask_max(msgs, n, 16380, out, cap);
}

/* check-token with the token in the Authorization header and the other
 * sources absent, as HAProxy sends it. */
static void ask_bearer(const char *token, char *out, size_t cap)
{
    char bearer[16384];
    struct msg m = {
        "check-token",
        {STR_ARG("bearer", bearer), NUL_ARG("qtoken"), NUL_ARG("proto"), NUL_ARG("cookie")}};

    snprintf(bearer, sizeof(bearer), "Bearer %s", token);
    ask(&m, 1, out, cap);
}

/* The answers for the default claim vars (role, rooms). */
#define ACCEPT_ALICE                                                                               \
    "set sess.auth=BOOL(true) | unset sess.auth_err | set sess.sub=STR(alice) | "                  \
    "set sess.exp=INT64(1900000600) | set sess.role=STR(mod) | "                                   \
    "set sess.rooms=STR([\"T1\",\"lobby:*\"])"
#define ACCEPT_BOB                                                                                 \
    "set sess.auth=BOOL(true) | unset sess.auth_err | set sess.sub=STR(bob) | "                    \
    "set sess.exp=INT64(1900000600) | unset sess.role | unset sess.rooms"
#define REFUSE(reason)                                                                             \
    "set sess.auth=BOOL(false) | set sess.auth_err=STR(" reason ") | unset sess.sub | "            \
    "unset sess.exp | unset sess.role | unset sess.rooms"

/* ---- fixed tests ---- */

static void valid_token_sets_auth_sub_exp_then_each_claim_var_in_order(void **state)
{
    (void)state;
    static uint8_t frame[4096];
    char bearer[2048], got[4096];
    struct msg m = {
        "check-token",
        {STR_ARG("bearer", bearer), NUL_ARG("qtoken"), NUL_ARG("proto"), NUL_ARG("cookie")}};
    uint64_t ok = rr_load(&spoa_stats.check_token[RR_AUTH_OK]);
    size_t len;

    claim_vars[2] = "level";
    claim_vars[3] = "nick";
    cfg.claim_vars.n = 4;
    snprintf(bearer, sizeof(bearer), "Bearer %s",
             test_token("{\"sub\":\"carol\",\"iss\":\"https://issuer.test\",\"aud\":\"roomrelay\","
                        "\"exp\":1900000600,\"level\":3,\"rooms\":[\"T1\"],\"role\":\"admin\"}"));
    /* Ids past one varint byte, echoed in the ACK (checked by answer()). */
    len = write_notify(frame, sizeof(frame), 4000, 300, &m, 1);
    assert_int_equal(answer(frame, len, 16380, got, sizeof(got)), SPOP_ST_NONE);
    assert_string_equal(got, "set sess.auth=BOOL(true) | unset sess.auth_err | "
                             "set sess.sub=STR(carol) | set sess.exp=INT64(1900000600) | "
                             "set sess.role=STR(admin) | set sess.rooms=STR([\"T1\"]) | "
                             "set sess.level=INT64(3) | unset sess.nick");
    assert_int_equal(rr_load(&spoa_stats.check_token[RR_AUTH_OK]), ok + 1);
}

static void token_without_exp_unsets_exp_when_the_policy_allows_it(void **state)
{
    (void)state;
    char got[4096];

    cfg.policy.allow_no_exp = true;
    ask_bearer(test_token("{\"sub\":\"alice\",\"iss\":\"https://issuer.test\","
                          "\"aud\":\"roomrelay\",\"role\":\"mod\"}"),
               got, sizeof(got));
    assert_string_equal(got, "set sess.auth=BOOL(true) | unset sess.auth_err | "
                             "set sess.sub=STR(alice) | unset sess.exp | "
                             "set sess.role=STR(mod) | unset sess.rooms");
}

static void token_without_a_string_sub_is_malformed(void **state)
{
    (void)state;
#define REST "\"iss\":\"https://issuer.test\",\"aud\":\"roomrelay\",\"exp\":1900000600}"
    static const char *const claims[] = {
        "{" REST,
        "{\"sub\":42," REST,
        "{\"sub\":null," REST,
        "{\"sub\":[\"a\"]," REST,
    };
#undef REST
    char got[4096];

    for (size_t i = 0; i < N_ELEMS(claims); i++) {
        uint64_t hits = rr_load(&spoa_stats.cache_hits);
        const char *tok = test_token(claims[i]);

        /* Twice: a refusal is not cached either. */
        ask_bearer(tok, got, sizeof(got));
        assert_string_equal(got, REFUSE("malformed"));
        ask_bearer(tok, got, sizeof(got));
        assert_string_equal(got, REFUSE("malformed"));
        assert_int_equal(rr_load(&spoa_stats.cache_hits), hits);
    }
}

static void unknown_message_gets_an_ack_without_actions_and_is_counted(void **state)
{
    (void)state;
    struct msg m = {"no-such-message", {STR_ARG("room", "T42"), NUL_ARG("sub")}};
    uint64_t before = rr_load(&spoa_stats.unknown_messages);
    char got[4096];

    ask(&m, 1, got, sizeof(got));
    assert_string_equal(got, "");
    assert_int_equal(rr_load(&spoa_stats.unknown_messages), before + 1);
}

static void empty_notify_gets_an_ack_without_actions(void **state)
{
    (void)state;
    char got[4096];

    ask(NULL, 0, got, sizeof(got));
    assert_string_equal(got, "");
}

static void two_check_tokens_in_one_notify_are_answered_in_order(void **state)
{
    (void)state;
    const struct msg m[] = {
        {"check-token", {STR_ARG("cookie", "$A")}},
        {"other", {STR_ARG("x", "$B")}},
        {"check-token", {NUL_ARG("bearer"), STR_ARG("qtoken", "$B")}},
        {"check-token", {NUL_ARG("bearer")}},
    };
    uint64_t before = rr_load(&spoa_stats.unknown_messages);
    char got[8192];

    ask(m, N_ELEMS(m), got, sizeof(got));
    assert_string_equal(got, ACCEPT_ALICE " | " ACCEPT_BOB " | " REFUSE("missing"));
    assert_int_equal(rr_load(&spoa_stats.unknown_messages), before + 1);
}

/* A 400-byte claim cannot fit in a 256-byte frame: fail closed, not a DISCONNECT. */
static void ack_over_max_frame_is_replaced_by_a_fail_closed_answer(void **state)
{
    (void)state;
    char extra[600], blob[401], bearer[2048], got[4096];
    const struct msg m = {"check-token", {STR_ARG("bearer", bearer)}};
    uint64_t before = rr_load(&spoa_stats.ack_overflows);

    memset(blob, 'x', 400);
    blob[400] = '\0';
    snprintf(extra, sizeof(extra), ",\"blob\":\"%s\"", blob);
    assert_true(n_owned < N_ELEMS(owned));
    owned[n_owned] = sign_with(extra);
    snprintf(bearer, sizeof(bearer), "Bearer %s", owned[n_owned++]);
    claim_vars[0] = "blob";
    cfg.claim_vars.n = 1;

    ask_max(&m, 1, 256, got, sizeof(got));
    assert_string_equal(got, "set sess.auth=BOOL(false) | set sess.auth_err=STR(too_large) | "
                             "unset sess.sub | unset sess.exp | unset sess.blob");
    assert_int_equal(rr_load(&spoa_stats.ack_overflows), before + 1);

    /* The same token in a frame of HAProxy's default size is accepted. */
    ask_max(&m, 1, 16380, got, sizeof(got));
    assert_int_equal(strncmp(got, "set sess.auth=BOOL(true) | ", 27), 0);
    assert_int_equal(rr_load(&spoa_stats.ack_overflows), before + 1);
}

/* When not even the refusal fits (claim vars whose unsets pass 256 bytes),
 * the caller must disconnect: nothing else would unset the variables. */
static void fail_closed_answer_that_cannot_fit_is_too_big(void **state)
{
    (void)state;
    static uint8_t frame[4096];
    static const char *const names[] = {
        "claim_with_a_long_name_01", "claim_with_a_long_name_02", "claim_with_a_long_name_03",
        "claim_with_a_long_name_04", "claim_with_a_long_name_05", "claim_with_a_long_name_06",
        "claim_with_a_long_name_07", "claim_with_a_long_name_08", "claim_with_a_long_name_09",
        "claim_with_a_long_name_10",
    };
    const struct msg m = {"check-token", {STR_ARG("bearer", "Bearer $A")}};
    char got[4096];
    size_t len;

    for (size_t i = 0; i < N_ELEMS(names); i++)
        claim_vars[i] = names[i];
    cfg.claim_vars.n = N_ELEMS(names);
    len = write_notify(frame, sizeof(frame), 1, 1, &m, 1);
    assert_int_equal(answer(frame, len, 256, got, sizeof(got)), SPOP_ST_TOO_BIG);
}

static void second_identical_token_is_a_cache_hit_until_the_keys_reload(void **state)
{
    (void)state;
    uint64_t hits = rr_load(&spoa_stats.cache_hits);
    uint64_t misses = rr_load(&spoa_stats.cache_misses);
    char got[4096], err[512];

    ask_bearer(token_alice, got, sizeof(got));
    assert_string_equal(got, ACCEPT_ALICE);
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits);
    assert_int_equal(rr_load(&spoa_stats.cache_misses), misses + 1);

    ask_bearer(token_alice, got, sizeof(got));
    assert_string_equal(got, ACCEPT_ALICE);
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits + 1);
    assert_int_equal(rr_load(&spoa_stats.cache_misses), misses + 1);

    assert_int_equal(rr_keyring_reload(&keyring, err, sizeof(err)), 1);
    ask_bearer(token_alice, got, sizeof(got));
    assert_string_equal(got, ACCEPT_ALICE);
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits + 1);
    assert_int_equal(rr_load(&spoa_stats.cache_misses), misses + 2);

    ask_bearer(token_alice, got, sizeof(got));
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits + 2);
}

static void refusals_are_not_cached(void **state)
{
    (void)state;
    const char *tok = vector_token("hs256_tampered_payload_is_bad_signature");
    uint64_t hits = rr_load(&spoa_stats.cache_hits);
    uint64_t misses = rr_load(&spoa_stats.cache_misses);
    char got[4096];

    for (int i = 0; i < 2; i++) {
        ask_bearer(tok, got, sizeof(got));
        assert_string_equal(got, REFUSE("bad_signature"));
    }
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits);
    assert_int_equal(rr_load(&spoa_stats.cache_misses), misses + 2);
}

/* A cached token is refused once the clock passes exp + leeway, like a verified one. */
static void cached_token_expires_with_its_exp_plus_leeway(void **state)
{
    (void)state;
    uint64_t hits = rr_load(&spoa_stats.cache_hits);
    char got[4096];

    ask_bearer(token_alice, got, sizeof(got));
    ctx.now = EXP + 29;
    ask_bearer(token_alice, got, sizeof(got));
    assert_string_equal(got, ACCEPT_ALICE);
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits + 1);
    ctx.now = EXP + 31;
    ask_bearer(token_alice, got, sizeof(got));
    assert_string_equal(got, REFUSE("expired"));
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits + 1);
}

/* ---- claim vars keep their JSON type ---- */

static const struct claim_case {
    const char *name;
    const char *claim; /* ",\"c\":<value>", or "" */
    const char *want;  /* the action on sess.c */
} claim_cases[] = {
    {"claim_string_is_str", ",\"c\":\"mod\"", "set sess.c=STR(mod)"},
    {"claim_empty_string_is_empty_str", ",\"c\":\"\"", "set sess.c=STR()"},
    {"claim_utf8_string_is_str_of_its_bytes", ",\"c\":\"caf\\u00e9\"",
     "set sess.c=STR(caf\xc3\xa9)"},
    {"claim_integer_is_int64", ",\"c\":7", "set sess.c=INT64(7)"},
    {"claim_negative_integer_is_int64", ",\"c\":-42", "set sess.c=INT64(-42)"},
    {"claim_integer_past_double_precision_keeps_every_digit", ",\"c\":9007199254740993",
     "set sess.c=INT64(9007199254740993)"},
    {"claim_true_is_bool_true", ",\"c\":true", "set sess.c=BOOL(true)"},
    {"claim_false_is_bool_false", ",\"c\":false", "set sess.c=BOOL(false)"},
    {"claim_array_is_compact_json_text", ",\"c\":[\"T1\", \"lobby:*\"]",
     "set sess.c=STR([\"T1\",\"lobby:*\"])"},
    {"claim_object_is_compact_json_text", ",\"c\":{\"a\": 1, \"b\": [true, null]}",
     "set sess.c=STR({\"a\":1,\"b\":[true,null]})"},
    {"claim_real_is_json_text", ",\"c\":1.5", "set sess.c=STR(1.5)"},
    {"claim_null_is_json_text", ",\"c\":null", "set sess.c=STR(null)"},
    {"claim_missing_is_unset", "", "unset sess.c"},
};

static void claim_var_keeps_its_json_type(void **state)
{
    const struct claim_case *c = *state;
    char want[4096], got[4096];

    claim_vars[0] = "c";
    cfg.claim_vars.n = 1;
    assert_true(n_owned < N_ELEMS(owned));
    owned[n_owned] = sign_with(c->claim);
    ask_bearer(owned[n_owned++], got, sizeof(got));
    snprintf(want, sizeof(want),
             "set sess.auth=BOOL(true) | unset sess.auth_err | set sess.sub=STR(alice) | "
             "set sess.exp=INT64(1900000600) | %s",
             c->want);
    assert_string_equal(got, want);
}

/* ---- sess.rr.exp is the token's exp in whole seconds ---- */

static const struct exp_case {
    const char *name;
    const char *exp; /* JSON */
    const char *want;
} exp_cases[] = {
    {"exp_integer_is_int64", "1900000600", "INT64(1900000600)"},
    {"exp_fraction_is_dropped", "1900000600.75", "INT64(1900000600)"},
    {"exp_largest_int64_is_kept", "9223372036854775807", "INT64(9223372036854775807)"},
    {"exp_real_past_int64_saturates", "1e19", "INT64(9223372036854775807)"},
    {"exp_real_1e300_saturates", "1e300", "INT64(9223372036854775807)"},
};

static void exp_var_is_whole_seconds(void **state)
{
    const struct exp_case *c = *state;
    char claims[512], want[512], got[4096];
    const char *tok;

    snprintf(claims, sizeof(claims),
             "{\"sub\":\"alice\",\"iss\":\"https://issuer.test\",\"aud\":\"roomrelay\","
             "\"exp\":%s}",
             c->exp);
    tok = test_token(claims);
    snprintf(want, sizeof(want),
             "set sess.auth=BOOL(true) | unset sess.auth_err | set sess.sub=STR(alice) | "
             "set sess.exp=%s | unset sess.role | unset sess.rooms",
             c->want);
    ask_bearer(tok, got, sizeof(got));
    assert_string_equal(got, want);
    /* Cached until exp + leeway: the second answer comes from the cache. */
    uint64_t hits = rr_load(&spoa_stats.cache_hits);
    ask_bearer(tok, got, sizeof(got));
    assert_string_equal(got, want);
    assert_int_equal(rr_load(&spoa_stats.cache_hits), hits + 1);
}

/* ---- each refusal unsets the identity ---- */

static const struct refusal_case {
    const char *name;
    const char *vector; /* in vectors.json */
    enum rr_auth_err err;
} refusal_cases[] = {
    {"refusal_empty_token_is_missing", "empty_is_missing", RR_AUTH_MISSING},
    {"refusal_malformed", "two_parts_is_malformed", RR_AUTH_MALFORMED},
    {"refusal_alg_not_allowed", "alg_none_is_alg_not_allowed", RR_AUTH_ALG_NOT_ALLOWED},
    {"refusal_unknown_kid", "unknown_kid", RR_AUTH_UNKNOWN_KID},
    {"refusal_bad_signature", "hs256_tampered_payload_is_bad_signature", RR_AUTH_BAD_SIGNATURE},
    {"refusal_hs256_with_rsa_key_is_bad_signature",
     "hs256_signed_with_rsa_pem_is_bad_signature_beside_hmac_key", RR_AUTH_BAD_SIGNATURE},
    {"refusal_expired", "expired_by_leeway_plus_one", RR_AUTH_EXPIRED},
    {"refusal_not_yet_valid", "nbf_beyond_leeway_is_not_yet_valid", RR_AUTH_NOT_YET_VALID},
    {"refusal_bad_issuer", "iss_wrong_is_bad_issuer", RR_AUTH_BAD_ISSUER},
    {"refusal_bad_audience", "aud_wrong_is_bad_audience", RR_AUTH_BAD_AUDIENCE},
    {"refusal_too_large", "over_max_token_bytes_is_too_large", RR_AUTH_TOO_LARGE},
};

static void refusal_sets_auth_false_and_its_reason_and_unsets_the_identity(void **state)
{
    const struct refusal_case *c = *state;
    uint64_t before = rr_load(&spoa_stats.check_token[c->err]);
    char want[512], got[4096];

    snprintf(want, sizeof(want), REFUSE("%s"), rr_auth_err_name(c->err));
    ask_bearer(vector_token(c->vector), got, sizeof(got));
    assert_string_equal(got, want);
    assert_int_equal(rr_load(&spoa_stats.check_token[c->err]), before + 1);
}

/* ---- where the token comes from ---- */

static const struct source_case {
    const char *name;
    struct arg args[6];
    const char *want;
} source_cases[] = {
    {"source_bearer_header",
     {STR_ARG("bearer", "Bearer $A"), NUL_ARG("qtoken"), NUL_ARG("proto"), NUL_ARG("cookie")},
     ACCEPT_ALICE},
    {"source_access_token_query_argument",
     {NUL_ARG("bearer"), STR_ARG("qtoken", "$A"), NUL_ARG("proto"), NUL_ARG("cookie")},
     ACCEPT_ALICE},
    {"source_websocket_protocol_bearer_item",
     {NUL_ARG("bearer"), NUL_ARG("qtoken"), STR_ARG("proto", "roomrelay.v1, bearer.$A"),
      NUL_ARG("cookie")},
     ACCEPT_ALICE},
    {"source_cookie",
     {NUL_ARG("bearer"), NUL_ARG("qtoken"), NUL_ARG("proto"), STR_ARG("cookie", "$A")},
     ACCEPT_ALICE},
    {"source_null_args_are_absent",
     {NUL_ARG("bearer"), NUL_ARG("qtoken"), NUL_ARG("proto"), NUL_ARG("cookie")},
     REFUSE("missing")},
    {"source_no_args_is_missing", {{NULL, 0, NULL}}, REFUSE("missing")},
    {"source_bearer_wins_whatever_the_arg_order",
     {STR_ARG("cookie", "$B"), STR_ARG("proto", "bearer.$B"), STR_ARG("qtoken", "$B"),
      STR_ARG("bearer", "Bearer $A")},
     ACCEPT_ALICE},
    {"source_null_bearer_falls_through_to_the_cookie",
     {NUL_ARG("bearer"), NUL_ARG("qtoken"), NUL_ARG("proto"), STR_ARG("cookie", "$B")},
     ACCEPT_BOB},
    {"source_unknown_args_are_ignored",
     {STR_ARG("x-token", "Bearer $B"),
      {"n", SPOP_DATA_INT32, "7"},
      STR_ARG("bearer", "Bearer $A"),
      STR_ARG("Cookie", "$B")},
     ACCEPT_ALICE},
    {"source_binary_value_is_read_like_a_string",
     {{"bearer", SPOP_DATA_BIN, "Bearer $A"}},
     ACCEPT_ALICE},
    {"source_non_string_value_is_absent",
     {{"bearer", SPOP_DATA_INT32, "7"}, STR_ARG("cookie", "$B")},
     ACCEPT_BOB},
    {"source_basic_authorization_is_absent", {STR_ARG("bearer", "Basic YTpi")}, REFUSE("missing")},
    {"source_arg_names_are_case_sensitive", {STR_ARG("Bearer", "Bearer $A")}, REFUSE("missing")},
};

static void token_source(void **state)
{
    const struct source_case *c = *state;
    struct msg m = {"check-token", {{NULL, 0, NULL}}};
    char got[4096];

    memcpy(m.args, c->args, sizeof(m.args));
    ask(&m, 1, got, sizeof(got));
    assert_string_equal(got, c->want);
}

/* ---- malformed payloads end the connection ---- */

/* Octal escapes, which stop after three digits: "\013check" is 11 then "check". */
#define CHECK_TOKEN "\013check-token"

static const struct payload_case {
    const char *name;
    const char *bytes;
    size_t len;
} malformed_cases[] = {
/* clang-format off */
#define P(name, lit) {name, lit, sizeof(lit) - 1}
    /* clang-format on */
    P("malformed_message_name_past_the_end", "\013check"),
    P("malformed_message_without_nargs", CHECK_TOKEN),
    P("malformed_nargs_larger_than_the_args_present", CHECK_TOKEN "\002\006bearer\000"),
    P("malformed_unknown_message_nargs_larger_than_present", "\001x\001"),
    P("malformed_kv_key_past_the_end", CHECK_TOKEN "\001\006bea"),
    P("malformed_kv_without_a_value", CHECK_TOKEN "\001\006bearer"),
    P("malformed_kv_string_past_the_end", CHECK_TOKEN "\001\006bearer\010\005ab"),
    P("malformed_kv_reserved_type", CHECK_TOKEN "\001\006bearer\012"),
    P("malformed_kv_key_length_11_byte_varint",
      CHECK_TOKEN "\001\377\377\377\377\377\377\377\377\377\377\001"),
    P("malformed_unknown_message_truncated_kv", "\001x\001\001k\003"),
    P("malformed_second_message_truncated", CHECK_TOKEN "\000\013check-tok"),
#undef P
};

static void malformed_payload_is_invalid(void **state)
{
    const struct payload_case *c = *state;
    static uint8_t ack[SPOP_MAX_FRAME_SIZE + SPOP_LEN_PREFIX];
    /* An exact-size copy, so that ASan sees any read past the payload. */
    uint8_t *p = malloc(c->len);
    struct spop_frame f = {SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 1, 1, p, c->len};
    size_t ack_len = 0;

    assert_non_null(p);
    memcpy(p, c->bytes, c->len);
    assert_int_equal(spoa_handle_notify(&ctx, &f, ack, sizeof(ack), 16380, &ack_len),
                     SPOP_ST_INVALID);
    free(p);
}

/* ---- setup ---- */

static int setup_test(void **state)
{
    (void)state;
    memset(claim_vars, 0, sizeof(claim_vars));
    claim_vars[0] = "role";
    claim_vars[1] = "rooms";
    cfg = (struct spoa_config){
        .policy = base_policy,
        .claim_vars = {claim_vars, 2},
        .keys = &keyring,
    };
    ctx = (struct spoa_ctx){
        .cfg = &cfg, .cache = rr_token_cache_new(64), .now = NOW, .sig_ctx = rr_jwt_sig_ctx_new()};
    n_owned = 0;
    return ctx.cache && ctx.sig_ctx ? 0 : -1;
}

static int teardown_test(void **state)
{
    (void)state;
    rr_token_cache_free(ctx.cache);
    rr_jwt_sig_ctx_free(ctx.sig_ctx);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    n_owned = 0;
    return 0;
}

static int read_secret(void)
{
    char path[512];
    FILE *f;

    fixture(path, sizeof(path), "hmac.secret");
    f = fopen(path, "rb");
    if (!f)
        return -1;
    secret_len = fread(secret, 1, sizeof(secret), f);
    fclose(f);
    if (secret_len && secret[secret_len - 1] == '\n')
        secret_len--; /* as the keyset does */
    return secret_len ? 0 : -1;
}

static int setup_all(void)
{
    char err[512];
    struct rr_key_sources src = {
        .hmac_files = hmac_files,
        .n_hmac = 1,
        .pem_specs = pem_specs,
        .n_pem = 2,
        .jwks_files = jwks_files,
        .n_jwks = 1,
    };

    doc = fixture_vectors();
    if (!doc)
        return -1;
    if (json_integer_value(json_object_get(doc, "now")) != NOW) {
        fprintf(stderr, "vectors.json: now is not %d\n", NOW);
        return -1;
    }
    base_policy = fixture_policy(doc);
    fixture(key_paths[0], sizeof(key_paths[0]), "hmac.secret");
    fixture(key_paths[1], sizeof(key_paths[1]), "rsa.pub.pem:RS256,RS384");
    fixture(key_paths[2], sizeof(key_paths[2]), "ec256.pub.pem");
    fixture(key_paths[3], sizeof(key_paths[3]), "jwks.json");
    hmac_files[0] = key_paths[0];
    pem_specs[0] = key_paths[1];
    pem_specs[1] = key_paths[2];
    jwks_files[0] = key_paths[3];
    if (rr_keyring_init(&keyring, &src, err, sizeof(err)) < 0) {
        fprintf(stderr, "keyring: %s\n", err);
        return -1;
    }
    if (read_secret() < 0)
        return -1;
    token_alice = sign_with(",\"role\":\"mod\",\"rooms\":[\"T1\",\"lobby:*\"]");
    token_bob = sign("{\"sub\":\"bob\",\"iss\":\"https://issuer.test\",\"aud\":\"roomrelay\","
                     "\"exp\":1900000600}");
    return 0;
}

static void teardown_all(void)
{
    free(token_alice);
    free(token_bob);
    rr_keyring_free(&keyring);
    json_decref(doc);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup_test, teardown_test)
/* clang-format off */
#define CASES(tbl, fn)                                                                             \
    for (size_t i = 0; i < N_ELEMS(tbl); i++)                                                      \
        tests[n++] = (struct CMUnitTest){(tbl)[i].name, (fn), setup_test, teardown_test,        \
                                         (void *)&(tbl)[i]}
/* clang-format on */

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        TEST(valid_token_sets_auth_sub_exp_then_each_claim_var_in_order),
        TEST(token_without_exp_unsets_exp_when_the_policy_allows_it),
        TEST(token_without_a_string_sub_is_malformed),
        TEST(unknown_message_gets_an_ack_without_actions_and_is_counted),
        TEST(empty_notify_gets_an_ack_without_actions),
        TEST(two_check_tokens_in_one_notify_are_answered_in_order),
        TEST(ack_over_max_frame_is_replaced_by_a_fail_closed_answer),
        TEST(fail_closed_answer_that_cannot_fit_is_too_big),
        TEST(second_identical_token_is_a_cache_hit_until_the_keys_reload),
        TEST(refusals_are_not_cached),
        TEST(cached_token_expires_with_its_exp_plus_leeway),
    };
    struct CMUnitTest tests[N_ELEMS(fixed) + N_ELEMS(claim_cases) + N_ELEMS(exp_cases) +
                            N_ELEMS(refusal_cases) + N_ELEMS(source_cases) +
                            N_ELEMS(malformed_cases)];
    size_t n = 0;
    int failed;

    rr_log_setup("test_handler", "text", "warn");
    if (setup_all() < 0)
        return 1;
    for (size_t i = 0; i < N_ELEMS(fixed); i++)
        tests[n++] = fixed[i];
    CASES(claim_cases, claim_var_keeps_its_json_type);
    CASES(exp_cases, exp_var_is_whole_seconds);
    CASES(refusal_cases, refusal_sets_auth_false_and_its_reason_and_unsets_the_identity);
    CASES(source_cases, token_source);
    CASES(malformed_cases, malformed_payload_is_invalid);
    failed = _cmocka_run_group_tests("test_handler", tests, n, NULL, NULL);
    teardown_all();
    return failed;
}
