/*
 * Unit tests of lib/registry.c: the Redis key names (hash tags, prefixes,
 * buffers too small), the instance record parsed from HGETALL pairs (every
 * field, defaults, and each way a record is refused), and the control
 * messages (format, parse, round trip, malformed input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "lib/registry.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void room_keys_are_hash_tagged_under_the_prefix(void **state)
{
    (void)state;
    char k[128];
    assert_int_equal(rr_key_room(k, sizeof(k), "rr:", "T42", "owner"), 14);
    assert_string_equal(k, "rr:{T42}:owner");
    rr_key_room(k, sizeof(k), "app1:", "lobby:1", "hist");
    assert_string_equal(k, "app1:{lobby:1}:hist");
    rr_key_room(k, sizeof(k), "", "T", "ch");
    assert_string_equal(k, "{T}:ch");
}

static void instance_and_global_keys(void **state)
{
    (void)state;
    char k[64];
    assert_int_equal(rr_key_instance(k, sizeof(k), "rr:", "ws2"), 11);
    assert_string_equal(k, "rr:inst:ws2");
    assert_int_equal(rr_key_global(k, sizeof(k), "rr:", "instances"), 12);
    assert_string_equal(k, "rr:instances");
    rr_key_global(k, sizeof(k), RR_PREFIX_DEFAULT, "ctl");
    assert_string_equal(k, "rr:ctl");
}

static void keys_that_do_not_fit_return_zero(void **state)
{
    (void)state;
    char k[15];
    assert_int_equal(rr_key_room(k, 14, "rr:", "T42", "owner"), 0); /* needs 15 */
    assert_int_equal(rr_key_room(k, 15, "rr:", "T42", "owner"), 14);
    assert_int_equal(rr_key_instance(k, 12, "rr:", "ws2"), 11);
    assert_int_equal(rr_key_instance(k, 11, "rr:", "ws2"), 0);
    assert_int_equal(rr_key_global(k, 6, "rr:", "ctl"), 0);
}

static int parse(struct rr_instance *inst, const char *id, const char *const *kv, size_t n)
{
    const char *f[16], *v[16];
    for (size_t i = 0; i < n; i++) {
        f[i] = kv[2 * i];
        v[i] = kv[2 * i + 1];
    }
    return rr_instance_parse(inst, id, f, v, n);
}

static void instance_record_with_every_field(void **state)
{
    (void)state;
    static const char *const kv[] = {
        "addr",     "10.0.0.7",   "port",    "8081",  "server", "be-ws-3", "state",
        "draining", "degraded",   "1",       "conns", "12345",  "rooms",   "678",
        "started",  "1900000000", "version", "0.2.0", "future", "ignored",
    };
    struct rr_instance in;
    assert_int_equal(parse(&in, "ws3", kv, N_ELEMS(kv) / 2), 0);
    assert_string_equal(in.id, "ws3");
    assert_string_equal(in.addr, "10.0.0.7");
    assert_int_equal(in.port, 8081);
    assert_string_equal(in.server, "be-ws-3");
    assert_int_equal(in.state, RR_INST_DRAINING);
    assert_true(in.degraded);
    assert_int_equal(in.conns, 12345);
    assert_int_equal(in.rooms, 678);
    assert_int_equal(in.started, 1900000000);
    assert_string_equal(in.version, "0.2.0");
}

static void instance_server_defaults_to_its_id(void **state)
{
    (void)state;
    static const char *const kv[] = {"state", "up", "addr", "127.0.0.1"};
    struct rr_instance in;
    assert_int_equal(parse(&in, "ws1", kv, 2), 0);
    assert_string_equal(in.server, "ws1");
    assert_int_equal(in.state, RR_INST_UP);
    assert_false(in.degraded);
    assert_int_equal(in.rooms, 0);
    assert_int_equal(in.port, 0);
}

static void instance_records_that_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *why;
        const char *kv[6];
    } cases[] = {
        {"no state", {"addr", "a", "rooms", "1"}},
        {"no addr", {"state", "up", "rooms", "1"}},
        {"unknown state", {"state", "gone", "addr", "a"}},
        {"port above 65535", {"state", "up", "addr", "a", "port", "65536"}},
        {"negative rooms", {"state", "up", "addr", "a", "rooms", "-1"}},
        {"rooms not a number", {"state", "up", "addr", "a", "rooms", "12x"}},
        {"empty conns", {"state", "up", "addr", "a", "conns", ""}},
        {"empty addr", {"state", "up", "addr", ""}},
        {"empty server", {"state", "up", "addr", "a", "server", ""}},
        {"degraded 2", {"state", "up", "addr", "a", "degraded", "2"}},
        {"rooms overflowing 64 bits",
         {"state", "up", "addr", "a", "rooms", "18446744073709551616"}},
        {"addr too long",
         {"state", "up", "addr",
          "0123456789012345678901234567890123456789012345678901234567890123"}},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        size_t n = 0;
        while (n < 3 && cases[i].kv[2 * n])
            n++;
        struct rr_instance in;
        if (parse(&in, "ws1", cases[i].kv, n) != -1)
            fail_msg("accepted a record with %s", cases[i].why);
    }
}

static void instance_id_must_fit(void **state)
{
    (void)state;
    static const char *const kv[] = {"state", "up", "addr", "a"};
    char id[RR_INSTANCE_ID_MAX + 2];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    struct rr_instance in;
    assert_int_equal(parse(&in, id, kv, 2), -1);
    assert_int_equal(parse(&in, "", kv, 2), -1);
    id[RR_INSTANCE_ID_MAX] = '\0';
    assert_int_equal(parse(&in, id, kv, 2), 0);
    assert_string_equal(in.id, id);
}

static void state_names(void **state)
{
    (void)state;
    assert_string_equal(rr_inst_state_name(RR_INST_UP), "up");
    assert_string_equal(rr_inst_state_name(RR_INST_DRAINING), "draining");
}

static void ctl_messages_format_as_compact_json(void **state)
{
    (void)state;
    char out[128];
    struct rr_ctl_msg m = {.op = RR_CTL_DRAIN, .instance = "ws2"};
    assert_int_equal(rr_ctl_format(out, sizeof(out), &m), 31);
    assert_string_equal(out, "{\"op\":\"drain\",\"instance\":\"ws2\"}");
    m.op = RR_CTL_UNDRAIN;
    rr_ctl_format(out, sizeof(out), &m);
    assert_string_equal(out, "{\"op\":\"undrain\",\"instance\":\"ws2\"}");
    m = (struct rr_ctl_msg){.op = RR_CTL_OWNER, .instance = "ws3", .room = "T42"};
    rr_ctl_format(out, sizeof(out), &m);
    assert_string_equal(out, "{\"op\":\"owner\",\"instance\":\"ws3\",\"room\":\"T42\"}");
    m = (struct rr_ctl_msg){.op = RR_CTL_STATE, .instance = "ws2"};
    rr_ctl_format(out, sizeof(out), &m);
    assert_string_equal(out, "{\"op\":\"state\",\"instance\":\"ws2\"}");
}

static void ctl_format_that_does_not_fit_returns_zero(void **state)
{
    (void)state;
    char out[31];
    struct rr_ctl_msg m = {.op = RR_CTL_DRAIN, .instance = "ws2"};
    assert_int_equal(rr_ctl_format(out, sizeof(out), &m), 0); /* 31 + NUL */
    char big[32];
    assert_int_equal(rr_ctl_format(big, sizeof(big), &m), 31);
}

static void ctl_round_trip(void **state)
{
    (void)state;
    static const struct rr_ctl_msg msgs[] = {
        {.op = RR_CTL_DRAIN, .instance = "ws1"},
        {.op = RR_CTL_UNDRAIN, .instance = "backend-7.example"},
        {.op = RR_CTL_OWNER, .instance = "ws3", .room = "lobby:eu-1"},
        {.op = RR_CTL_STATE, .instance = "ws2"},
    };
    for (size_t i = 0; i < N_ELEMS(msgs); i++) {
        char out[256];
        size_t n = rr_ctl_format(out, sizeof(out), &msgs[i]);
        assert_true(n > 0);
        struct rr_ctl_msg back;
        assert_int_equal(rr_ctl_parse(out, n, &back), 0);
        assert_int_equal(back.op, msgs[i].op);
        assert_string_equal(back.instance, msgs[i].instance);
        assert_string_equal(back.room, msgs[i].room);
    }
}

static void ctl_parse_ignores_unknown_members_and_order(void **state)
{
    (void)state;
    static const char in[] = "{\"room\":\"T1\",\"x\":[1],\"instance\":\"ws9\",\"op\":\"owner\"}";
    struct rr_ctl_msg m;
    assert_int_equal(rr_ctl_parse(in, sizeof(in) - 1, &m), 0);
    assert_int_equal(m.op, RR_CTL_OWNER);
    assert_string_equal(m.instance, "ws9");
    assert_string_equal(m.room, "T1");
}

static void ctl_malformed_messages_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"op\":\"drain\"}",
        "{\"instance\":\"ws1\"}",
        "{\"op\":\"explode\",\"instance\":\"ws1\"}",
        "{\"op\":\"DRAIN\",\"instance\":\"ws1\"}",
        "{\"op\":1,\"instance\":\"ws1\"}",
        "{\"op\":\"drain\",\"instance\":7}",
        "{\"op\":\"drain\",\"instance\":\"\"}",
        "{\"op\":\"owner\",\"instance\":\"ws1\",\"room\":\"\"}",
        "{\"op\":\"owner\",\"instance\":\"ws1\"}",
        "{\"op\":\"owner\",\"instance\":\"ws1\",\"room\":5}",
        "{\"op\":\"drain\",\"op\":\"undrain\",\"instance\":\"ws1\"}",
        "{\"op\":\"drain\",\"instance\":\"ws1\"",
        /* 65-character room and instance: one literal each, split in two lines */
        "{\"op\":\"owner\",\"instance\":\"ws1\",\"room\":" // NOLINT(bugprone-suspicious-missing-comma)
        "\"01234567890123456789012345678901234567890123456789012345678901234\"}",
        "{\"op\":\"drain\",\"instance\":"
        "\"01234567890123456789012345678901234567890123456789012345678901234\"}",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct rr_ctl_msg m;
        if (rr_ctl_parse(bad[i], strlen(bad[i]), &m) != -1)
            fail_msg("accepted %s", bad[i]);
    }
}

static void ctl_parse_reads_only_len_bytes(void **state)
{
    (void)state;
    static const char in[] = "{\"op\":\"drain\",\"instance\":\"ws1\"}trailing";
    struct rr_ctl_msg m;
    assert_int_equal(rr_ctl_parse(in, 31, &m), 0);
    assert_string_equal(m.instance, "ws1");
    assert_int_equal(rr_ctl_parse(in, sizeof(in) - 1, &m), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(room_keys_are_hash_tagged_under_the_prefix),
        cmocka_unit_test(instance_and_global_keys),
        cmocka_unit_test(keys_that_do_not_fit_return_zero),
        cmocka_unit_test(instance_record_with_every_field),
        cmocka_unit_test(instance_server_defaults_to_its_id),
        cmocka_unit_test(instance_records_that_are_refused),
        cmocka_unit_test(instance_id_must_fit),
        cmocka_unit_test(state_names),
        cmocka_unit_test(ctl_messages_format_as_compact_json),
        cmocka_unit_test(ctl_format_that_does_not_fit_returns_zero),
        cmocka_unit_test(ctl_round_trip),
        cmocka_unit_test(ctl_parse_ignores_unknown_members_and_order),
        cmocka_unit_test(ctl_malformed_messages_are_refused),
        cmocka_unit_test(ctl_parse_reads_only_len_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
