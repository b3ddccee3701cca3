/*
 * Unit tests of backend/proto.c: every client message, valid and refused
 * (table-driven: text -> error code), the exact bytes of every server
 * message, string escaping, and that head + seq + tail of a `message` event
 * is the same text proto_message writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/proto.h"

#define X16 "abcdefghijklmnop"
#define ID128 X16 X16 X16 X16 X16 X16 X16 X16
#define NAME64 X16 X16 X16 X16

static void parse_ok(const char *text, struct proto_msg *m)
{
    struct proto_error err = {0};
    if (proto_parse(text, strlen(text), m, &err) != 0)
        fail_msg("%s: refused with %s", text, err.code);
    assert_non_null(m->root);
}

static void join_with_room_only(void **state)
{
    (void)state;
    struct proto_msg m;
    parse_ok("{\"type\":\"join\",\"room\":\"T42\"}", &m);
    assert_int_equal(m.type, PROTO_JOIN);
    assert_int_equal(m.room_len, 3);
    assert_memory_equal(m.room, "T42", 3);
    assert_false(m.has_since);
    assert_null(m.data);
    assert_null(m.id);
    proto_msg_free(&m);
    assert_null(m.root);
}

static void join_since_takes_any_non_negative_int64(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t since;
    } cases[] = {
        {"{\"type\":\"join\",\"room\":\"a\",\"since\":0}", 0},
        {"{\"type\":\"join\",\"room\":\"a\",\"since\":-0}", 0},
        {"{\"type\":\"join\",\"room\":\"a\",\"since\":17}", 17},
        {"{\"type\":\"join\",\"room\":\"a\",\"since\":9007199254740993}", 9007199254740993ULL},
        {"{\"type\":\"join\",\"room\":\"a\",\"since\":9223372036854775807}",
         9223372036854775807ULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_msg m;
        parse_ok(cases[i].text, &m);
        assert_true(m.has_since);
        assert_int_equal(m.since, cases[i].since);
        proto_msg_free(&m);
    }
}

static void leave_presence_and_ping(void **state)
{
    (void)state;
    struct proto_msg m;
    parse_ok("{\"type\":\"leave\",\"room\":\"x.y\"}", &m);
    assert_int_equal(m.type, PROTO_LEAVE);
    assert_int_equal(m.room_len, 3);
    proto_msg_free(&m);
    parse_ok("{\"type\":\"presence\",\"room\":\"x:y\"}", &m);
    assert_int_equal(m.type, PROTO_PRESENCE);
    assert_memory_equal(m.room, "x:y", 3);
    proto_msg_free(&m);
    parse_ok("{\"type\":\"ping\"}", &m);
    assert_int_equal(m.type, PROTO_PING);
    assert_null(m.room);
    proto_msg_free(&m);
    parse_ok("{\"type\":\"ping\",\"room\":\"not checked / here\"}", &m);
    assert_int_equal(m.type, PROTO_PING);
    proto_msg_free(&m);
}

static void unknown_fields_are_ignored(void **state)
{
    (void)state;
    struct proto_msg m;
    parse_ok(" {\"v\":[1,{\"x\":null}],\"type\":\"leave\",\"extra\":\"\\u00e9\",\"room\":\"r\"}\n",
             &m);
    assert_int_equal(m.type, PROTO_LEAVE);
    proto_msg_free(&m);
}

static void publish_takes_data_of_every_json_type(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        json_type type;
        const char *out;
    } cases[] = {
        {"null", JSON_NULL, "null"},
        {"true", JSON_TRUE, "true"},
        {"false", JSON_FALSE, "false"},
        {"-42", JSON_INTEGER, "-42"},
        {"9007199254740993", JSON_INTEGER, "9007199254740993"},
        {"2.5", JSON_REAL, "2.5"},
        {"0.1", JSON_REAL, "0.10000000000000001"},
        {"1e2", JSON_REAL, "100.0"},
        {"\"hi\"", JSON_STRING, "\"hi\""},
        {"\"\"", JSON_STRING, "\"\""},
        {"[]", JSON_ARRAY, "[]"},
        {"[1, \"a\", [null]]", JSON_ARRAY, "[1,\"a\",[null]]"},
        {"{}", JSON_OBJECT, "{}"},
        {"{\"b\": {\"c\": [true]}, \"a\": 1}", JSON_OBJECT, "{\"b\":{\"c\":[true]},\"a\":1}"},
    };
    char text[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_msg m;
        struct rr_text out = {0};
        snprintf(text, sizeof(text),
                 "{\"type\":\"publish\",\"room\":\"r\",\"id\":\"m1\",\"data\":%s}", cases[i].data);
        parse_ok(text, &m);
        assert_int_equal(m.type, PROTO_PUBLISH);
        assert_non_null(m.data);
        assert_int_equal(json_typeof(m.data), cases[i].type);
        assert_string_equal(m.id, "m1");
        assert_int_equal(m.id_len, 2);
        proto_message_tail(&out, "s", m.data, 0);
        snprintf(text, sizeof(text), ",\"from\":\"s\",\"data\":%s,\"ts\":0}", cases[i].out);
        assert_string_equal(out.p, text);
        rr_text_free(&out);
        proto_msg_free(&m);
    }
}

static void publish_id_of_1_and_128_bytes(void **state)
{
    (void)state;
    struct proto_msg m;
    parse_ok("{\"type\":\"publish\",\"room\":\"r\",\"id\":\"x\",\"data\":1}", &m);
    assert_int_equal(m.id_len, 1);
    proto_msg_free(&m);
    parse_ok("{\"type\":\"publish\",\"room\":\"r\",\"id\":\"" ID128 "\",\"data\":1}", &m);
    assert_int_equal(m.id_len, 128);
    assert_string_equal(m.id, ID128);
    proto_msg_free(&m);
    /* 128 bytes of UTF-8, 64 characters. */
    parse_ok("{\"type\":\"publish\",\"room\":\"r\",\"id\":\"" NAME64 "\",\"data\":1}", &m);
    proto_msg_free(&m);
}

static void room_of_64_bytes_is_accepted(void **state)
{
    (void)state;
    struct proto_msg m;
    parse_ok("{\"type\":\"join\",\"room\":\"" NAME64 "\"}", &m);
    assert_int_equal(m.room_len, 64);
    proto_msg_free(&m);
}

/* The refused messages: code, and the id echoed back ("" when none). */
static const struct {
    const char *text;
    const char *code;
    const char *id;
} refused[] = {
    {"", "bad_json", ""},
    {"   ", "bad_json", ""},
    {"not json", "bad_json", ""},
    {"{\"type\":\"ping\"", "bad_json", ""},
    {"{\"type\":\"ping\"} {}", "bad_json", ""},
    {"{\"type\":\"ping\",}", "bad_json", ""},
    {"[{\"type\":\"ping\"}]", "bad_json", ""},
    {"\"ping\"", "bad_json", ""},
    {"42", "bad_json", ""},
    {"null", "bad_json", ""},
    {"{\"type\":\"ping\",\"type\":\"ping\"}", "bad_json", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"room\":\"b\"}", "bad_json", ""},
    {"{\"type\":\"join\",\"room\":\"a\\u0000b\"}", "invalid_room", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"data\":1,\"id\":\"x\\u0000y\"}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"\\ud800\"}", "bad_json", ""},
    {"{\"type\":\"join\",\"room\":\"\xc3\x28\"}", "bad_json", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":9223372036854775808}", "bad_json", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"id\":\"m\",\"data\":1e400}", "bad_json", ""},
    {"{}", "bad_request", ""},
    {"{\"room\":\"a\"}", "bad_request", ""},
    {"{\"type\":null}", "bad_request", ""},
    {"{\"type\":7}", "bad_request", ""},
    {"{\"type\":[\"join\"]}", "bad_request", ""},
    {"{\"type\":\"\"}", "unknown_type", ""},
    {"{\"type\":\"JOIN\",\"room\":\"a\"}", "unknown_type", ""},
    {"{\"type\":\"join \",\"room\":\"a\"}", "unknown_type", ""},
    {"{\"type\":\"subscribe\",\"room\":\"a\"}", "unknown_type", ""},
    {"{\"type\":\"welcome\"}", "unknown_type", ""},
    {"{\"type\":\"join\"}", "invalid_room", ""},
    {"{\"type\":\"leave\"}", "invalid_room", ""},
    {"{\"type\":\"presence\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":\"\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":\"" NAME64 "x\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":\"a b\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":\"a/b\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":\"caf\xc3\xa9\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":\"caf\\u00e9\"}", "invalid_room", ""},
    {"{\"type\":\"leave\",\"room\":\"a\\n\"}", "invalid_room", ""},
    {"{\"type\":\"join\",\"room\":42}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":null}", "bad_request", ""},
    {"{\"type\":\"presence\",\"room\":[\"a\"]}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":-1}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":-9223372036854775808}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":1.0}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":1.5}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":1e3}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":9007199254740993.0}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":\"5\"}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":null}", "bad_request", ""},
    {"{\"type\":\"join\",\"room\":\"a\",\"since\":true}", "bad_request", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"data\":1}", "bad_request", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"id\":\"\",\"data\":1}", "bad_request", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"id\":\"" ID128 "x\",\"data\":1}", "bad_request", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"id\":7,\"data\":1}", "bad_request", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"id\":null,\"data\":1}", "bad_request", ""},
    {"{\"type\":\"publish\",\"room\":\"a\",\"id\":\"m1\"}", "bad_request", "m1"},
    {"{\"type\":\"publish\",\"id\":\"m1\",\"data\":1}", "invalid_room", "m1"},
    {"{\"type\":\"publish\",\"room\":\"a b\",\"id\":\"m1\",\"data\":1}", "invalid_room", "m1"},
    {"{\"type\":\"publish\",\"room\":5,\"id\":\"m\\\"2\",\"data\":1}", "bad_request", "m\"2"},
    {"{\"type\":\"publish\",\"room\":\"\",\"id\":\"" ID128 "\",\"data\":1}", "invalid_room", ID128},
};

static void refused_messages_get_their_error_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct proto_msg m;
        struct proto_error err;
        memset(&err, 0x55, sizeof(err));
        int rc = proto_parse(refused[i].text, strlen(refused[i].text), &m, &err);
        if (rc != -1 || strcmp(err.code, refused[i].code) != 0 ||
            strcmp(err.id, refused[i].id) != 0)
            fail_msg("case %zu %s: rc %d code %s id \"%s\", expected %s id \"%s\"", i,
                     refused[i].text, rc, rc ? err.code : "-", rc ? err.id : "-", refused[i].code,
                     refused[i].id);
        assert_non_null(err.message);
        assert_true(strlen(err.message) > 0);
        assert_null(m.root);
    }
}

static void parse_uses_only_len_bytes(void **state)
{
    (void)state;
    static const char text[] = "{\"type\":\"ping\"}garbage";
    struct proto_msg m;
    struct proto_error err;
    assert_int_equal(proto_parse(text, 15, &m, &err), 0);
    assert_int_equal(m.type, PROTO_PING);
    proto_msg_free(&m);
    assert_int_equal(proto_parse(text, 14, &m, &err), -1);
    assert_string_equal(err.code, "bad_json");
}

/* Checks what t holds, then empties it for the next message. */
static void expect(struct rr_text *t, const char *want)
{
    assert_false(t->oom);
    assert_int_equal(t->len, strlen(want));
    assert_string_equal(t->p, want);
    t->len = 0;
}

static void server_messages_have_exact_bytes(void **state)
{
    (void)state;
    struct rr_text t = {0};

    proto_welcome(&t, "be-1", "s-9", "T42", 7);
    expect(&t, "{\"type\":\"welcome\",\"instance\":\"be-1\",\"session\":\"s-9\",\"room\":\"T42\","
               "\"seq\":7}");
    proto_welcome(&t, "", "", "r", UINT64_MAX);
    expect(&t, "{\"type\":\"welcome\",\"instance\":\"\",\"session\":\"\",\"room\":\"r\","
               "\"seq\":18446744073709551615}");
    proto_joined(&t, "T42", 10, -1, true);
    expect(&t, "{\"type\":\"joined\",\"room\":\"T42\",\"seq\":10,\"complete\":true}");
    proto_joined(&t, "T42", 10, 0, false);
    expect(&t, "{\"type\":\"joined\",\"room\":\"T42\",\"seq\":10,\"recovered\":0,"
               "\"complete\":false}");
    proto_joined(&t, "T42", 0, 250, true);
    expect(&t, "{\"type\":\"joined\",\"room\":\"T42\",\"seq\":0,\"recovered\":250,"
               "\"complete\":true}");
    proto_left(&t, "T42");
    expect(&t, "{\"type\":\"left\",\"room\":\"T42\"}");
    proto_ack(&t, "m-1", 12);
    expect(&t, "{\"type\":\"ack\",\"id\":\"m-1\",\"seq\":12}");
    proto_member(&t, "T42", "alice", true);
    expect(&t, "{\"type\":\"member\",\"room\":\"T42\",\"sub\":\"alice\",\"event\":\"join\"}");
    proto_member(&t, "T42", "alice", false);
    expect(&t, "{\"type\":\"member\",\"room\":\"T42\",\"sub\":\"alice\",\"event\":\"leave\"}");
    proto_error(&t, "invalid_room", "Bad room.", NULL);
    expect(&t, "{\"type\":\"error\",\"code\":\"invalid_room\",\"message\":\"Bad room.\"}");
    proto_error(&t, "invalid_room", "Bad room.", "");
    expect(&t, "{\"type\":\"error\",\"code\":\"invalid_room\",\"message\":\"Bad room.\"}");
    proto_error(&t, "rate_limited", "Slow down.", "m1");
    expect(&t, "{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":\"Slow down.\","
               "\"id\":\"m1\"}");
    proto_migrate(&t, 1500, "drain");
    expect(&t, "{\"type\":\"migrate\",\"reconnect_after_ms\":1500,\"reason\":\"drain\"}");
    proto_migrate(&t, 0, "owner_moved");
    expect(&t, "{\"type\":\"migrate\",\"reconnect_after_ms\":0,\"reason\":\"owner_moved\"}");
    proto_pong(&t);
    expect(&t, "{\"type\":\"pong\"}");

    proto_presence_begin(&t, "T42");
    proto_presence_end(&t);
    expect(&t, "{\"type\":\"presence\",\"room\":\"T42\",\"members\":[]}");
    proto_presence_begin(&t, "T42");
    proto_presence_member(&t, "alice", "be-1");
    proto_presence_end(&t);
    expect(&t, "{\"type\":\"presence\",\"room\":\"T42\",\"members\":[{\"sub\":\"alice\","
               "\"instance\":\"be-1\"}]}");
    proto_presence_begin(&t, "T42");
    proto_presence_member(&t, "alice", "be-1");
    proto_presence_member(&t, "bob", "be-2");
    proto_presence_member(&t, "[", "[");
    proto_presence_end(&t);
    expect(&t, "{\"type\":\"presence\",\"room\":\"T42\",\"members\":[{\"sub\":\"alice\","
               "\"instance\":\"be-1\"},{\"sub\":\"bob\",\"instance\":\"be-2\"},{\"sub\":\"[\","
               "\"instance\":\"[\"}]}");

    json_t *data = json_pack("{s:i,s:[b,n]}", "x", 1, "y", 1);
    proto_message(&t, "T42", 5, "alice", data, 1700000000123);
    expect(&t, "{\"type\":\"message\",\"room\":\"T42\",\"seq\":5,\"from\":\"alice\","
               "\"data\":{\"x\":1,\"y\":[true,null]},\"ts\":1700000000123}");
    proto_message_head(&t, "T42");
    expect(&t, "{\"type\":\"message\",\"room\":\"T42\",\"seq\":");
    proto_message_tail(&t, "alice", data, -3);
    expect(&t, ",\"from\":\"alice\",\"data\":{\"x\":1,\"y\":[true,null]},\"ts\":-3}");
    json_decref(data);
    rr_text_free(&t);
}

static void messages_append_to_what_is_there(void **state)
{
    (void)state;
    struct rr_text t = {0};
    proto_pong(&t);
    proto_left(&t, "a");
    assert_string_equal(t.p, "{\"type\":\"pong\"}{\"type\":\"left\",\"room\":\"a\"}");
    rr_text_free(&t);
}

static void strings_are_json_escaped(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "\"plain\""},
        {"say \"hi\"", "\"say \\\"hi\\\"\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"a/b", "\"a/b\""},
        {"\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\""},
        {"\x01\x1f", "\"\\u0001\\u001F\""},
        {"\x7f", "\"\x7f\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
        {"\xe2\x80\xa8", "\"\xe2\x80\xa8\""},
        {"\xf0\x9f\x83\x8f", "\"\xf0\x9f\x83\x8f\""},
        {"</script>", "\"</script>\""},
    };
    char want[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rr_text t = {0};
        proto_member(&t, "r", cases[i].in, true);
        snprintf(want, sizeof(want),
                 "{\"type\":\"member\",\"room\":\"r\",\"sub\":%s,\"event\":\"join\"}",
                 cases[i].out);
        assert_false(t.oom);
        assert_string_equal(t.p, want);
        json_t *back = json_loads(t.p, 0, NULL);
        assert_non_null(back);
        assert_string_equal(json_string_value(json_object_get(back, "sub")), cases[i].in);
        json_decref(back);
        rr_text_free(&t);
    }
}

static void string_that_is_not_utf8_spoils_the_output(void **state)
{
    (void)state;
    struct rr_text t = {0};
    proto_ack(&t, "m\xff", 1);
    assert_true(t.oom);
    rr_text_free(&t);
}

/* head + decimal seq + tail, for many rooms, senders, data and seqs, is the
 * text of proto_message, and parses back to the values put in. */
static void head_seq_tail_equals_message(void **state)
{
    (void)state;
    static const char *rooms[] = {"a", "T42", "game:table-7.v2_x", NAME64};
    static const char *froms[] = {"alice", "", "q\"uote\\", "\xc3\xa9\n\x01", ID128};
    static const char *datas[] = {
        "null",  "0",       "-1",   "1.5",      "\"s\\u0000\"",
        "[]",    "{}",      "true", "\"\\\"\"", "{\"a\":[1,{\"b\":\"\\n\"}]}",
        "false", "[[[[]]]]"};
    static const uint64_t seqs[] = {0, 1, 9, 10, 4294967296ULL, 9007199254740993ULL, UINT64_MAX};
    static const int64_t tss[] = {0, -1, 1700000000123, INT64_MAX, INT64_MIN};
    size_t n = 0;

    for (size_t d = 0; d < sizeof(datas) / sizeof(datas[0]); d++) {
        json_t *data = json_loads(datas[d], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(data);
        for (size_t r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++)
            for (size_t f = 0; f < sizeof(froms) / sizeof(froms[0]); f++)
                for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
                    int64_t ts = tss[(d + r + f + s) % (sizeof(tss) / sizeof(tss[0]))];
                    struct rr_text whole = {0}, parts = {0};
                    proto_message(&whole, rooms[r], seqs[s], froms[f], data, ts);
                    proto_message_head(&parts, rooms[r]);
                    rr_text_printf(&parts, "%llu", (unsigned long long)seqs[s]);
                    proto_message_tail(&parts, froms[f], data, ts);
                    assert_false(whole.oom);
                    assert_int_equal(parts.len, whole.len);
                    assert_memory_equal(parts.p, whole.p, whole.len);

                    rr_text_free(&parts);
                    if (seqs[s] > INT64_MAX) { /* more than jansson reads back */
                        rr_text_free(&whole);
                        continue;
                    }
                    json_t *back = json_loadb(whole.p, whole.len,
                                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
                    assert_non_null(back);
                    assert_int_equal(json_object_size(back), 6);
                    assert_string_equal(json_string_value(json_object_get(back, "type")),
                                        "message");
                    assert_string_equal(json_string_value(json_object_get(back, "room")), rooms[r]);
                    assert_string_equal(json_string_value(json_object_get(back, "from")), froms[f]);
                    assert_true(json_equal(json_object_get(back, "data"), data));
                    assert_int_equal(json_integer_value(json_object_get(back, "ts")), ts);
                    assert_int_equal(json_integer_value(json_object_get(back, "seq")), seqs[s]);
                    json_decref(back);
                    rr_text_free(&whole);
                    n++;
                }
        json_decref(data);
    }
    assert_int_equal(n, 12 * 4 * 5 * 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(join_with_room_only),
        cmocka_unit_test(join_since_takes_any_non_negative_int64),
        cmocka_unit_test(leave_presence_and_ping),
        cmocka_unit_test(unknown_fields_are_ignored),
        cmocka_unit_test(publish_takes_data_of_every_json_type),
        cmocka_unit_test(publish_id_of_1_and_128_bytes),
        cmocka_unit_test(room_of_64_bytes_is_accepted),
        cmocka_unit_test(refused_messages_get_their_error_code),
        cmocka_unit_test(parse_uses_only_len_bytes),
        cmocka_unit_test(server_messages_have_exact_bytes),
        cmocka_unit_test(messages_append_to_what_is_there),
        cmocka_unit_test(strings_are_json_escaped),
        cmocka_unit_test(string_that_is_not_utf8_spoils_the_output),
        cmocka_unit_test(head_seq_tail_equals_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
