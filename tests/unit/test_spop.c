/*
 * Unit tests of the SPOP 2.0 codec (spoa/spop.c) against HAProxy's
 * doc/SPOE.txt section 3 and against frames captured from HAProxy 2.6.
 * Not tested here: the agent's sockets and state machine (test_agent.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spoa/spop.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Wire captures from Debian's HAProxy 2.6.12 (/usr/sbin/haproxy), taken with
 * a throwaway /usr/bin/python3 agent on loopback that logged every frame it
 * received, answered HAPROXY-HELLO with `agent_hello_accepted` below and
 * NOTIFY with an empty ACK. HAProxy ran:
 *
 *   frontend fe: filter spoe engine e config spoe.conf
 *                http-request return status 200 string ok
 *   backend agents: mode tcp, option spop-check, server a1 <agent> check
 *   spoe.conf: spoe-agent rr-agent (messages check-token, option var-prefix rr,
 *              use-backend agents); spoe-message check-token with
 *              args bearer=req.hdr(authorization) qtoken=url_param(access_token)
 *                   proto=req.fhdr(sec-websocket-protocol) cookie=req.cook(rr_token)
 *              event on-frontend-http-request
 *
 * then: curl -H 'Authorization: Bearer aaa.bbb.ccc' http://fe/ws?room=T42
 * and:  curl -H 'Authorization: Bearer aaa.bbb.ccc'
 *            -H 'Sec-WebSocket-Protocol: roomrelay.v1, bearer.x.y.z'
 *            -b 'rr_token=c.d.e' 'http://fe/ws?room=T42&access_token=q.r.s'
 */

/* The health-check HAPROXY-HELLO: capabilities "" and healthcheck=true (0x11), no engine-id. */
static const uint8_t cap_hello_check[] = {
    0x00, 0x00, 0x00, 0x4e, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12, 0x73, 0x75,
    0x70, 0x70, 0x6f, 0x72, 0x74, 0x65, 0x64, 0x2d, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f,
    0x6e, 0x73, 0x08, 0x03, 0x32, 0x2e, 0x30, 0x0e, 0x6d, 0x61, 0x78, 0x2d, 0x66, 0x72,
    0x61, 0x6d, 0x65, 0x2d, 0x73, 0x69, 0x7a, 0x65, 0x03, 0xfc, 0xf0, 0x06, 0x0c, 0x63,
    0x61, 0x70, 0x61, 0x62, 0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x08, 0x00, 0x0b,
    0x68, 0x65, 0x61, 0x6c, 0x74, 0x68, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x11,
};

/* The HAPROXY-HELLO of a processing connection: no healthcheck key at all. */
static const uint8_t cap_hello[] = {
    0x00, 0x00, 0x00, 0x81, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12, 0x73, 0x75, 0x70,
    0x70, 0x6f, 0x72, 0x74, 0x65, 0x64, 0x2d, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x73,
    0x08, 0x03, 0x32, 0x2e, 0x30, 0x0e, 0x6d, 0x61, 0x78, 0x2d, 0x66, 0x72, 0x61, 0x6d, 0x65,
    0x2d, 0x73, 0x69, 0x7a, 0x65, 0x03, 0xfc, 0xf0, 0x06, 0x0c, 0x63, 0x61, 0x70, 0x61, 0x62,
    0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x08, 0x10, 0x70, 0x69, 0x70, 0x65, 0x6c, 0x69,
    0x6e, 0x69, 0x6e, 0x67, 0x2c, 0x61, 0x73, 0x79, 0x6e, 0x63, 0x09, 0x65, 0x6e, 0x67, 0x69,
    0x6e, 0x65, 0x2d, 0x69, 0x64, 0x08, 0x24, 0x39, 0x32, 0x62, 0x65, 0x61, 0x36, 0x66, 0x30,
    0x2d, 0x61, 0x65, 0x35, 0x37, 0x2d, 0x34, 0x39, 0x37, 0x34, 0x2d, 0x61, 0x64, 0x64, 0x30,
    0x2d, 0x35, 0x36, 0x62, 0x63, 0x37, 0x34, 0x31, 0x34, 0x32, 0x38, 0x36, 0x34,
};

/* First request (stream-id 0, frame-id 1): the three missing sources arrive as NULL (0x00). */
static const uint8_t cap_notify_bearer_only[] = {
    0x00, 0x00, 0x00, 0x46, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x0b, 0x63, 0x68, 0x65,
    0x63, 0x6b, 0x2d, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x04, 0x06, 0x62, 0x65, 0x61, 0x72, 0x65,
    0x72, 0x08, 0x12, 0x42, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20, 0x61, 0x61, 0x61, 0x2e, 0x62,
    0x62, 0x62, 0x2e, 0x63, 0x63, 0x63, 0x06, 0x71, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x00, 0x05,
    0x70, 0x72, 0x6f, 0x74, 0x6f, 0x00, 0x06, 0x63, 0x6f, 0x6f, 0x6b, 0x69, 0x65, 0x00,
};

/* Second request (stream-id 2, frame-id 1): all four sources present, as STR. */
static const uint8_t cap_notify_all_sources[] = {
    0x00, 0x00, 0x00, 0x6d, 0x03, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x0b, 0x63, 0x68, 0x65,
    0x63, 0x6b, 0x2d, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x04, 0x06, 0x62, 0x65, 0x61, 0x72, 0x65,
    0x72, 0x08, 0x12, 0x42, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20, 0x61, 0x61, 0x61, 0x2e, 0x62,
    0x62, 0x62, 0x2e, 0x63, 0x63, 0x63, 0x06, 0x71, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x08, 0x05,
    0x71, 0x2e, 0x72, 0x2e, 0x73, 0x05, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x08, 0x1a, 0x72, 0x6f,
    0x6f, 0x6d, 0x72, 0x65, 0x6c, 0x61, 0x79, 0x2e, 0x76, 0x31, 0x2c, 0x20, 0x62, 0x65, 0x61,
    0x72, 0x65, 0x72, 0x2e, 0x78, 0x2e, 0x79, 0x2e, 0x7a, 0x06, 0x63, 0x6f, 0x6f, 0x6b, 0x69,
    0x65, 0x08, 0x05, 0x63, 0x2e, 0x64, 0x2e, 0x65,
};

/* The AGENT-HELLO the capture agent sent (version "2.0", max-frame-size 16380,
 * capabilities "pipelining,async"); HAProxy 2.6 accepted it and sent NOTIFYs. */
static const uint8_t agent_hello_accepted[] = {
    0x00, 0x00, 0x00, 0x46, 0x65, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x07, 0x76, 0x65, 0x72,
    0x73, 0x69, 0x6f, 0x6e, 0x08, 0x03, 0x32, 0x2e, 0x30, 0x0e, 0x6d, 0x61, 0x78, 0x2d, 0x66,
    0x72, 0x61, 0x6d, 0x65, 0x2d, 0x73, 0x69, 0x7a, 0x65, 0x03, 0xfc, 0xf0, 0x06, 0x0c, 0x63,
    0x61, 0x70, 0x61, 0x62, 0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x08, 0x10, 0x70, 0x69,
    0x70, 0x65, 0x6c, 0x69, 0x6e, 0x69, 0x6e, 0x67, 0x2c, 0x61, 0x73, 0x79, 0x6e, 0x63,
};

/* ---- helpers ---- */

static struct spop_str str_of(const char *s)
{
    return (struct spop_str){s, strlen(s)};
}

static void assert_str(struct spop_str got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    if (got.len > 0)
        assert_memory_equal(got.ptr, want, got.len);
}

/* Splits a whole captured frame and checks it is exactly one frame. */
static void parse_whole(const uint8_t *buf, size_t len, struct spop_frame *f)
{
    assert_int_equal(spop_frame_parse(buf, len, SPOP_MAX_FRAME_SIZE, f), (int)len);
}

/* ---- varints ---- */

static void spop_varint_round_trips_at_every_length_boundary(void **state)
{
    static const struct {
        uint64_t v;
        size_t len;
    } cases[] = {
        {0, 1},
        {239, 1},
        {240, 2},
        {2287, 2},
        {2288, 3},
        {264431, 3},
        {264432, 4},
        {33818863, 4},
        {33818864, 5},
        {UINT32_MAX, 5},
        {4328786159u, 5},
        {4328786160u, 6},
        {0x10204081020408efull, 9},
        {0x10204081020408f0ull, 10},
        {UINT64_MAX, 10},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        uint8_t buf[16];
        uint64_t got = 0;
        size_t n = spop_varint_encode(cases[i].v, buf, sizeof(buf));

        assert_int_equal(n, cases[i].len);
        assert_int_equal(spop_varint_decode(buf, n, &got), (int)n);
        assert_true(got == cases[i].v);
    }
}

static void spop_varint_encodes_exact_peers_bytes(void **state)
{
    static const struct {
        uint64_t v;
        uint8_t bytes[10];
        size_t len;
    } cases[] = {
        {0, {0x00}, 1},
        {239, {0xef}, 1},
        {240, {0xf0, 0x00}, 2},
        {2287, {0xff, 0x7f}, 2},
        {2288, {0xf0, 0x80, 0x00}, 3},
        {16380, {0xfc, 0xf0, 0x06}, 3},
        {UINT32_MAX, {0xff, 0xf0, 0xfe, 0xfe, 0x7e}, 5},
        {UINT64_MAX, {0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e}, 10},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        uint8_t buf[10];

        assert_int_equal(spop_varint_encode(cases[i].v, buf, sizeof(buf)), cases[i].len);
        assert_memory_equal(buf, cases[i].bytes, cases[i].len);
    }
}

static void spop_varint_truncated_needs_more_bytes(void **state)
{
    static const uint64_t values[] = {240, 2288, 16380, 264432, UINT32_MAX, UINT64_MAX};
    (void)state;
    for (size_t i = 0; i < LEN(values); i++) {
        uint8_t buf[10];
        uint64_t got;
        size_t n = spop_varint_encode(values[i], buf, sizeof(buf));

        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal(spop_varint_decode(buf, cut, &got), 0);
    }
}

static void spop_varint_rejects_11_byte_encoding(void **state)
{
    static const uint8_t eleven[] = {0xf0, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    /* ten bytes whose last one still says "more follows" */
    static const uint8_t ten_cont[] = {0xf0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81};
    uint64_t got;
    (void)state;
    assert_int_equal(spop_varint_decode(eleven, sizeof(eleven), &got), -1);
    assert_int_equal(spop_varint_decode(ten_cont, sizeof(ten_cont), &got), -1);
}

static void spop_varint_rejects_overflow_past_64_bits(void **state)
{
    /* UINT64_MAX is ... 0x0e; one more in the last byte no longer fits */
    static const uint8_t max_plus[] = {0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0f};
    static const uint8_t all_ones[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    /* the smallest 10-byte value, then a last byte whose bit 4 lands on bit 64 */
    static const uint8_t bit_64[] = {0xf0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10};
    uint64_t got;
    (void)state;
    assert_int_equal(spop_varint_decode(max_plus, sizeof(max_plus), &got), -1);
    assert_int_equal(spop_varint_decode(all_ones, sizeof(all_ones), &got), -1);
    assert_int_equal(spop_varint_decode(bit_64, sizeof(bit_64), &got), -1);
}

static void spop_varint_encode_reports_short_buffer(void **state)
{
    uint8_t buf[3] = {0xaa, 0xaa, 0xaa};
    (void)state;
    assert_int_equal(spop_varint_encode(16380, buf, 2), 0);
    assert_int_equal(buf[0], 0xaa);
    assert_int_equal(spop_varint_encode(16380, buf, 3), 3);
    assert_int_equal(spop_varint_encode(5, buf, 0), 0);
}

/* ---- typed data ---- */

static void spop_data_integers_and_bools_have_exact_wire_bytes(void **state)
{
    static const struct {
        const char *name;
        uint8_t wire[12];
        size_t len;
        struct spop_data want;
    } cases[] = {
        {"null", {0x00}, 1, {.type = SPOP_DATA_NULL}},
        {"bool true has flag 0x10", {0x11}, 1, {.type = SPOP_DATA_BOOL, .u.b = true}},
        {"bool false", {0x01}, 1, {.type = SPOP_DATA_BOOL, .u.b = false}},
        {"int32 0", {0x02, 0x00}, 2, {.type = SPOP_DATA_INT32, .u.i32 = 0}},
        {"int32 max",
         {0x02, 0xff, 0xf0, 0xfe, 0xfe, 0x3e},
         6,
         {.type = SPOP_DATA_INT32, .u.i32 = INT32_MAX}},
        {"int32 -1 is sign-extended to 64 bits",
         {0x02, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e},
         11,
         {.type = SPOP_DATA_INT32, .u.i32 = -1}},
        {"int32 min",
         {0x02, 0xf0, 0xf1, 0xfe, 0xfe, 0xbe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e},
         11,
         {.type = SPOP_DATA_INT32, .u.i32 = INT32_MIN}},
        {"uint32 16380", {0x03, 0xfc, 0xf0, 0x06}, 4, {.type = SPOP_DATA_UINT32, .u.u32 = 16380}},
        {"uint32 max",
         {0x03, 0xff, 0xf0, 0xfe, 0xfe, 0x7e},
         6,
         {.type = SPOP_DATA_UINT32, .u.u32 = UINT32_MAX}},
        {"int64 1700000000",
         {0x04, 0xf0, 0x81, 0xfd, 0xd3, 0x31},
         6,
         {.type = SPOP_DATA_INT64, .u.i64 = 1700000000}},
        {"int64 -1 as HAProxy encodes a negative sint",
         {0x04, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e},
         11,
         {.type = SPOP_DATA_INT64, .u.i64 = -1}},
        {"int64 min",
         {0x04, 0xf0, 0xf1, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x06},
         11,
         {.type = SPOP_DATA_INT64, .u.i64 = INT64_MIN}},
        {"uint64 max",
         {0x05, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e},
         11,
         {.type = SPOP_DATA_UINT64, .u.u64 = UINT64_MAX}},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        uint8_t buf[16];
        struct spop_writer w;
        struct spop_reader r;
        struct spop_data got;

        print_message("# case: %s\n", cases[i].name);
        spop_writer_init(&w, buf, sizeof(buf));
        spop_write_data(&w, &cases[i].want);
        assert_false(w.overflow);
        assert_int_equal(w.off, cases[i].len);
        assert_memory_equal(buf, cases[i].wire, cases[i].len);

        spop_reader_init(&r, cases[i].wire, cases[i].len);
        assert_int_equal(spop_read_data(&r, &got), 1);
        assert_true(spop_reader_done(&r));
        assert_int_equal(got.type, cases[i].want.type);
        switch (got.type) {
        case SPOP_DATA_BOOL:
            assert_int_equal(got.u.b, cases[i].want.u.b);
            break;
        case SPOP_DATA_INT32:
            assert_int_equal(got.u.i32, cases[i].want.u.i32);
            break;
        case SPOP_DATA_UINT32:
            assert_int_equal(got.u.u32, cases[i].want.u.u32);
            break;
        case SPOP_DATA_INT64:
            assert_true(got.u.i64 == cases[i].want.u.i64);
            break;
        case SPOP_DATA_UINT64:
            assert_true(got.u.u64 == cases[i].want.u.u64);
            break;
        }
    }
}

static void spop_data_bool_reads_only_the_true_flag(void **state)
{
    static const struct {
        uint8_t byte;
        bool want;
    } cases[] = {{0x11, true}, {0x01, false}, {0x31, true}, {0x21, false}};
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        struct spop_reader r;
        struct spop_data d;

        spop_reader_init(&r, &cases[i].byte, 1);
        assert_int_equal(spop_read_data(&r, &d), 1);
        assert_int_equal(d.type, SPOP_DATA_BOOL);
        assert_int_equal(d.u.b, cases[i].want);
    }
}

static void spop_data_addresses_and_strings_round_trip(void **state)
{
    static const uint8_t v4[4] = {127, 0, 0, 1};
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x01};
    static const uint8_t bin[] = {0x00, 0xff, 0x10};
    struct spop_data in[5], out;
    uint8_t buf[64];
    struct spop_writer w;
    struct spop_reader r;
    (void)state;

    memset(in, 0, sizeof(in));
    in[0].type = SPOP_DATA_IPV4;
    memcpy(&in[0].u.v4, v4, 4);
    in[1].type = SPOP_DATA_IPV6;
    memcpy(&in[1].u.v6, v6, 16);
    in[2] = spop_str_data("ws2", 3);
    in[3] = spop_str_data("", 0);
    in[4].type = SPOP_DATA_BIN;
    in[4].u.str = (struct spop_str){(const char *)bin, sizeof(bin)};

    spop_writer_init(&w, buf, sizeof(buf));
    for (size_t i = 0; i < LEN(in); i++)
        spop_write_data(&w, &in[i]);
    assert_false(w.overflow);
    /* 1+4, 1+16, 1+1+3, 1+1, 1+1+3 */
    assert_int_equal(w.off, 5 + 17 + 5 + 2 + 5);
    assert_memory_equal(buf, "\x06\x7f\x00\x00\x01", 5);
    assert_memory_equal(buf + 22, "\x08\x03ws2\x08\x00\x09\x03\x00\xff\x10", 12);

    spop_reader_init(&r, buf, w.off);
    assert_int_equal(spop_read_data(&r, &out), 1);
    assert_int_equal(out.type, SPOP_DATA_IPV4);
    assert_memory_equal(&out.u.v4, v4, 4);
    assert_int_equal(spop_read_data(&r, &out), 1);
    assert_int_equal(out.type, SPOP_DATA_IPV6);
    assert_memory_equal(&out.u.v6, v6, 16);
    assert_int_equal(spop_read_data(&r, &out), 1);
    assert_int_equal(out.type, SPOP_DATA_STR);
    assert_str(out.u.str, "ws2");
    assert_ptr_equal(out.u.str.ptr, (const char *)buf + 24);
    assert_int_equal(spop_read_data(&r, &out), 1);
    assert_int_equal(out.type, SPOP_DATA_STR);
    assert_int_equal(out.u.str.len, 0);
    assert_int_equal(spop_read_data(&r, &out), 1);
    assert_int_equal(out.type, SPOP_DATA_BIN);
    assert_int_equal(out.u.str.len, sizeof(bin));
    assert_memory_equal(out.u.str.ptr, bin, sizeof(bin));
    assert_int_equal(spop_read_data(&r, &out), 0);
}

static void spop_data_rejects_reserved_types_10_to_15(void **state)
{
    (void)state;
    for (unsigned t = 10; t <= 15; t++) {
        for (unsigned flags = 0; flags <= 0x10; flags += 0x10) {
            uint8_t b[2] = {(uint8_t)(t | flags), 0x00};
            struct spop_reader r;
            struct spop_data d;

            spop_reader_init(&r, b, sizeof(b));
            assert_int_equal(spop_read_data(&r, &d), -1);
        }
    }
}

static void spop_data_rejects_values_running_past_the_buffer(void **state)
{
    static const struct {
        const char *name;
        uint8_t bytes[20];
        size_t len;
    } cases[] = {
        {"string length past end", {0x08, 0x05, 'a', 'b'}, 4},
        {"binary length past end", {0x09, 0x01}, 2},
        {"string length varint cut", {0x08, 0xf0}, 2},
        {"string without length", {0x08}, 1},
        {"string of length UINT64_MAX",
         {0x08, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e, 'x'},
         12},
        {"ipv4 with 3 bytes", {0x06, 1, 2, 3}, 4},
        {"ipv6 with 15 bytes", {0x07, [15] = 0}, 16},
        {"int64 varint cut", {0x04, 0xf0}, 2},
        {"uint64 without value", {0x05}, 1},
        {"int32 over INT32_MAX", {0x02, 0xf0, 0xf1, 0xfe, 0xfe, 0x3e}, 6},
        {"uint32 over UINT32_MAX", {0x03, 0xf0, 0xf1, 0xfe, 0xfe, 0x7e}, 6},
        {"int64 varint of 11 bytes",
         {0x04, 0xf0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
         12},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        struct spop_reader r;
        struct spop_data d;

        print_message("# case: %s\n", cases[i].name);
        spop_reader_init(&r, cases[i].bytes, cases[i].len);
        assert_int_equal(spop_read_data(&r, &d), -1);
        assert_true(r.off <= r.len);
    }
}

static void spop_data_unknown_type_fails_the_writer(void **state)
{
    uint8_t buf[8];
    struct spop_writer w;
    struct spop_data d = {.type = 12};
    (void)state;
    spop_writer_init(&w, buf, sizeof(buf));
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 0, 0);
    spop_write_data(&w, &d);
    assert_true(w.overflow);
    assert_int_equal(spop_frame_end(&w), 0);
}

static void spop_read_kv_and_message_reject_truncated_items(void **state)
{
    static const struct {
        const char *name;
        uint8_t bytes[8];
        size_t len;
        int kv, msg;
    } cases[] = {
        {"empty input is the end", {0}, 0, 0, 0},
        {"name length past end", {0x05, 'a'}, 2, -1, -1},
        {"name without value / nargs", {0x01, 'a'}, 2, -1, -1},
        {"name then value / nargs", {0x01, 'a', 0x00}, 3, 1, 1},
        {"empty name (an unnamed arg)", {0x00, 0x11}, 2, 1, 1},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        struct spop_reader r;
        struct spop_str name;
        struct spop_data d;
        uint8_t nargs;

        print_message("# case: %s\n", cases[i].name);
        spop_reader_init(&r, cases[i].bytes, cases[i].len);
        assert_int_equal(spop_read_kv(&r, &name, &d), cases[i].kv);
        spop_reader_init(&r, cases[i].bytes, cases[i].len);
        assert_int_equal(spop_read_message(&r, &name, &nargs), cases[i].msg);
    }
}

/* ---- frames ---- */

static void spop_frame_parse_follows_the_length_prefix(void **state)
{
    static const struct {
        const char *name;
        uint8_t bytes[24];
        size_t len;
        uint32_t max;
        int ret;
        uint8_t type;
        uint32_t flags;
        uint64_t sid, fid;
        size_t payload_len;
    } cases[] = {
        {"empty buffer", {0}, 0, 16380, 0},
        {"3 bytes of prefix", {0, 0, 0}, 3, 16380, 0},
        {"prefix only", {0, 0, 0, 7}, 4, 16380, 0},
        {"body incomplete", {0, 0, 0, 7, 3, 0, 0, 0, 1, 0}, 10, 16380, 0},
        {"too big is known from the prefix", {0, 0, 0x3f, 0xfd}, 4, 16380, -SPOP_ST_TOO_BIG},
        {"exactly max is only incomplete", {0, 0, 0x3f, 0xfc}, 4, 16380, 0},
        {"zero-length frame", {0, 0, 0, 0}, 4, 16380, -SPOP_ST_INVALID},
        {"shorter than any header", {0, 0, 0, 6, 3, 0, 0, 0, 1, 0}, 10, 16380, -SPOP_ST_INVALID},
        {"stream-id runs past the frame",
         {0, 0, 0, 7, 3, 0, 0, 0, 1, 0xf0, 0x80, 0, 0},
         13,
         16380,
         -SPOP_ST_INVALID},
        {"frame-id runs past the frame",
         {0, 0, 0, 7, 3, 0, 0, 0, 1, 0, 0xf0, 0, 0},
         13,
         16380,
         -SPOP_ST_INVALID},
        {"overlong stream-id",
         {0,    0,    0,    17,   3,    0,    0,    0,    1,    0xf0, 0x80,
          0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00},
         21,
         16380,
         -SPOP_ST_INVALID},
        {"stream-id 0 is valid", {0, 0, 0, 7, 3, 0, 0, 0, 1, 0, 0}, 11, 16380, 11, 3, 1, 0, 0, 0},
        {"bytes of the next frame are left alone",
         {0, 0, 0, 8, 3, 0, 0, 0, 1, 4, 1, 0xaa, 0, 0},
         14,
         16380,
         12,
         3,
         1,
         4,
         1,
         1},
        {"multi-byte ids",
         {0, 0, 0, 11, 3, 0, 0, 0, 1, 0xf0, 0x80, 0x00, 0xfc, 0xf0, 0x06},
         15,
         16380,
         15,
         3,
         1,
         2288,
         16380,
         0},
        {"unknown type is left to the caller",
         {0, 0, 0, 7, 0x42, 0, 0, 0, 1, 0, 0},
         11,
         16380,
         11,
         0x42,
         1,
         0,
         0,
         0},
        {"flags are big-endian",
         {0, 0, 0, 7, 0, 0x80, 0, 0, 3, 1, 1},
         11,
         16380,
         11,
         0,
         0x80000003u,
         1,
         1,
         0},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        struct spop_frame f;
        int ret;

        print_message("# case: %s\n", cases[i].name);
        ret = spop_frame_parse(cases[i].bytes, cases[i].len, cases[i].max, &f);
        assert_int_equal(ret, cases[i].ret);
        if (ret <= 0)
            continue;
        assert_int_equal(f.type, cases[i].type);
        assert_int_equal(f.flags, cases[i].flags);
        assert_true(f.stream_id == cases[i].sid);
        assert_true(f.frame_id == cases[i].fid);
        assert_int_equal(f.payload_len, cases[i].payload_len);
        assert_ptr_equal(f.payload + f.payload_len, cases[i].bytes + ret);
    }
}

static void spop_frame_writer_fills_length_prefixes(void **state)
{
    uint8_t buf[64];
    struct spop_writer w;
    struct spop_frame f;
    size_t a, b;
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 2288, 1);
    a = spop_frame_end(&w);
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 7, 3);
    spop_write_unset_var(&w, SPOP_SCOPE_TXN, "x");
    b = spop_frame_end(&w);
    assert_int_equal(a, 4 + 5 + 3 + 1);
    assert_int_equal(b, 4 + 5 + 1 + 1 + 5);
    assert_int_equal(w.off, a + b);
    assert_int_equal(spop_frame_parse(buf, w.off, 16380, &f), (int)a);
    assert_true(f.stream_id == 2288);
    assert_int_equal(spop_frame_parse(buf + a, w.off - a, 16380, &f), (int)b);
    assert_true(f.stream_id == 7 && f.frame_id == 3);
    assert_int_equal(f.payload_len, 5);
}

/* ---- HELLO ---- */

static void spop_hello_parse_reads_captured_haproxy_hello(void **state)
{
    struct spop_frame f;
    struct spop_hello h;
    (void)state;

    parse_whole(cap_hello, sizeof(cap_hello), &f);
    assert_int_equal(f.type, SPOP_FRAME_HAPROXY_HELLO);
    assert_int_equal(f.flags, SPOP_FLAG_FIN);
    assert_true(f.stream_id == 0 && f.frame_id == 0);
    assert_int_equal(spop_hello_parse(f.payload, f.payload_len, &h), SPOP_ST_NONE);
    assert_str(h.versions, "2.0");
    assert_true(spop_versions_support_2(h.versions));
    assert_int_equal(h.max_frame_size, 16380);
    assert_str(h.capabilities, "pipelining,async");
    assert_true(spop_list_has(h.capabilities, "pipelining"));
    assert_true(spop_list_has(h.capabilities, "async"));
    assert_false(spop_list_has(h.capabilities, "fragmentation"));
    assert_false(h.healthcheck);
    assert_str(h.engine_id, "92bea6f0-ae57-4974-add0-56bc74142864");
}

static void spop_hello_parse_reads_captured_healthcheck_hello(void **state)
{
    struct spop_frame f;
    struct spop_hello h;
    (void)state;

    parse_whole(cap_hello_check, sizeof(cap_hello_check), &f);
    assert_int_equal(f.type, SPOP_FRAME_HAPROXY_HELLO);
    assert_int_equal(spop_hello_parse(f.payload, f.payload_len, &h), SPOP_ST_NONE);
    assert_str(h.versions, "2.0");
    assert_int_equal(h.max_frame_size, 16380);
    assert_true(h.has_capabilities);
    assert_int_equal(h.capabilities.len, 0);
    assert_true(h.healthcheck);
    assert_int_equal(h.engine_id.len, 0);
}

static void spop_haproxy_hello_writer_rebuilds_captured_bytes(void **state)
{
    uint8_t buf[256];
    struct spop_writer w;
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(spop_write_haproxy_hello(&w, "2.0", 16380, "", true, NULL),
                     sizeof(cap_hello_check));
    assert_memory_equal(buf, cap_hello_check, sizeof(cap_hello_check));

    spop_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(spop_write_haproxy_hello(&w, "2.0", 16380, "pipelining,async", false,
                                              "92bea6f0-ae57-4974-add0-56bc74142864"),
                     sizeof(cap_hello));
    assert_memory_equal(buf, cap_hello, sizeof(cap_hello));
}

enum { HAS_VSN = 1, HAS_MFS = 2, HAS_CAP = 4, ALL_KEYS = 7 };

static size_t hello_payload(uint8_t *buf, size_t cap, unsigned keys)
{
    struct spop_writer w;
    struct spop_data v = spop_str_data("2.0", 3);
    struct spop_data m = spop_uint32_data(16380);
    struct spop_data c = spop_str_data("pipelining", 10);

    spop_writer_init(&w, buf, cap);
    if (keys & HAS_VSN)
        spop_write_kv(&w, "supported-versions", &v);
    if (keys & HAS_MFS)
        spop_write_kv(&w, "max-frame-size", &m);
    if (keys & HAS_CAP)
        spop_write_kv(&w, "capabilities", &c);
    assert_false(w.overflow);
    return w.off;
}

static void spop_hello_parse_names_the_missing_mandatory_key(void **state)
{
    static const struct {
        unsigned keys;
        enum spop_status want;
    } cases[] = {
        {ALL_KEYS, SPOP_ST_NONE},
        {HAS_MFS | HAS_CAP, SPOP_ST_NO_VSN},
        {HAS_VSN | HAS_CAP, SPOP_ST_NO_FRAME_SIZE},
        {HAS_VSN | HAS_MFS, SPOP_ST_NO_CAP},
        {0, SPOP_ST_NO_VSN},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        uint8_t buf[128];
        struct spop_hello h;
        size_t n = hello_payload(buf, sizeof(buf), cases[i].keys);

        assert_int_equal(spop_hello_parse(buf, n, &h), cases[i].want);
    }
}

static void spop_hello_parse_skips_unknown_keys(void **state)
{
    uint8_t buf[256];
    struct spop_writer w;
    struct spop_hello h;
    struct spop_data d;
    size_t n;
    (void)state;

    n = hello_payload(buf, sizeof(buf), ALL_KEYS);
    spop_writer_init(&w, buf + n, sizeof(buf) - n);
    d.type = SPOP_DATA_IPV6;
    memset(&d.u.v6, 0xee, 16);
    spop_write_kv(&w, "x-future-address", &d);
    d = spop_int64_data(-5);
    spop_write_kv(&w, "x-future-count", &d);
    d = spop_str_data("max-frame-size", 14);
    spop_write_kv(&w, "max-frame-sizes", &d);
    assert_false(w.overflow);
    assert_int_equal(spop_hello_parse(buf, n + w.off, &h), SPOP_ST_NONE);
    assert_int_equal(h.max_frame_size, 16380);
    assert_str(h.capabilities, "pipelining");
}

static void spop_hello_parse_checks_value_types(void **state)
{
    static const struct {
        const char *name;
        const char *key;
        struct spop_data val;
        enum spop_status want;
        uint32_t mfs;
    } cases[] = {
        {"max-frame-size as int32",
         "max-frame-size",
         {.type = SPOP_DATA_INT32, .u.i32 = 4096},
         SPOP_ST_NONE,
         4096},
        {"max-frame-size as int64",
         "max-frame-size",
         {.type = SPOP_DATA_INT64, .u.i64 = 300},
         SPOP_ST_NONE,
         300},
        {"max-frame-size as uint64",
         "max-frame-size",
         {.type = SPOP_DATA_UINT64, .u.u64 = UINT32_MAX},
         SPOP_ST_NONE,
         UINT32_MAX},
        {"max-frame-size over 32 bits",
         "max-frame-size",
         {.type = SPOP_DATA_UINT64, .u.u64 = 1ull << 32},
         SPOP_ST_BAD_FRAME_SIZE},
        {"negative max-frame-size",
         "max-frame-size",
         {.type = SPOP_DATA_INT64, .u.i64 = -1},
         SPOP_ST_BAD_FRAME_SIZE},
        {"max-frame-size as a string",
         "max-frame-size",
         {.type = SPOP_DATA_STR, .u.str = {"16380", 5}},
         SPOP_ST_BAD_FRAME_SIZE},
        {"versions as a bool", "supported-versions", {.type = SPOP_DATA_BOOL}, SPOP_ST_INVALID},
        {"capabilities as binary", "capabilities", {.type = SPOP_DATA_BIN}, SPOP_ST_INVALID},
        {"healthcheck as a string", "healthcheck", {.type = SPOP_DATA_STR}, SPOP_ST_INVALID},
        {"engine-id as null", "engine-id", {.type = SPOP_DATA_NULL}, SPOP_ST_INVALID},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        uint8_t buf[256];
        struct spop_writer w;
        struct spop_hello h;
        size_t n = hello_payload(buf, sizeof(buf), ALL_KEYS);

        print_message("# case: %s\n", cases[i].name);
        /* a later key overrides an earlier one */
        spop_writer_init(&w, buf + n, sizeof(buf) - n);
        spop_write_kv(&w, cases[i].key, &cases[i].val);
        assert_false(w.overflow);
        assert_int_equal(spop_hello_parse(buf, n + w.off, &h), cases[i].want);
        if (cases[i].want == SPOP_ST_NONE)
            assert_int_equal(h.max_frame_size, cases[i].mfs);
    }
}

static void spop_hello_parse_rejects_truncated_payload(void **state)
{
    uint8_t buf[128];
    struct spop_hello h;
    size_t n = hello_payload(buf, sizeof(buf), ALL_KEYS);
    (void)state;

    /* cuts that fall inside a key or a value */
    static const size_t cuts[] = {1, 10, 19, 20, 21, 35, 36, 38, 41};
    for (size_t i = 0; i < LEN(cuts); i++) {
        assert_true(cuts[i] < n);
        assert_int_equal(spop_hello_parse(buf, cuts[i], &h), SPOP_ST_INVALID);
    }
}

static void spop_list_has_ignores_spaces_and_matches_whole_items(void **state)
{
    static const struct {
        const char *list, *item;
        bool want;
    } cases[] = {
        {"pipelining,async", "async", true},
        {"pipelining,async", "pipelining", true},
        {" pipelining , async ", "pipelining", true},
        {"pipelining,\tasync", "async", true},
        {"pipelining,async", "pipe", false},
        {"asyncx", "async", false},
        {"fragmentation", "fragment", false},
        {"", "async", false},
        {",,async,", "async", true},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++)
        assert_int_equal(spop_list_has(str_of(cases[i].list), cases[i].item), cases[i].want);
}

static void spop_versions_support_2_accepts_any_2_minor(void **state)
{
    static const struct {
        const char *versions;
        bool want;
    } cases[] = {
        {"2.0", true},  {"2.0, 1.5", true}, {"1.0,2.0", true}, {" 2.1 ", true},
        {"2.10", true}, {"1.0", false},     {"3.0", false},    {"20.0", false},
        {"2", false},   {"2.", false},      {"2.x", false},    {"", false},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++)
        assert_int_equal(spop_versions_support_2(str_of(cases[i].versions)), cases[i].want);
}

/* ---- DISCONNECT ---- */

static void spop_disconnect_writer_has_exact_bytes(void **state)
{
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x35, 0x66, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0b, 0x73, 0x74, 0x61,
        0x74, 0x75, 0x73, 0x2d, 0x63, 0x6f, 0x64, 0x65, 0x03, 0x04, 0x07, 0x6d, 0x65, 0x73, 0x73,
        0x61, 0x67, 0x65, 0x08, 0x16, 0x69, 0x6e, 0x76, 0x61, 0x6c, 0x69, 0x64, 0x20, 0x66, 0x72,
        0x61, 0x6d, 0x65, 0x20, 0x72, 0x65, 0x63, 0x65, 0x69, 0x76, 0x65, 0x64,
    };
    uint8_t buf[128];
    struct spop_writer w;
    struct spop_frame f;
    struct spop_disconnect d;
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(spop_write_disconnect(&w, SPOP_FRAME_AGENT_DISCONNECT, SPOP_ST_INVALID,
                                           spop_status_text(SPOP_ST_INVALID)),
                     sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    parse_whole(want, sizeof(want), &f);
    assert_int_equal(spop_disconnect_parse(f.payload, f.payload_len, &d), SPOP_ST_NONE);
    assert_int_equal(d.status, SPOP_ST_INVALID);
    assert_str(d.message, "invalid frame received");
}

static void spop_disconnect_parse_checks_its_keys(void **state)
{
    static const struct {
        const char *name;
        bool status, message;
        struct spop_data code;
        enum spop_status want;
        uint32_t status_code;
    } cases[] = {
        {"both keys", true, true, {.type = SPOP_DATA_UINT32, .u.u32 = 9}, SPOP_ST_NONE, 9},
        {"status as int64", true, false, {.type = SPOP_DATA_INT64, .u.i64 = 99}, SPOP_ST_NONE, 99},
        {"no status-code", false, true, {0}, SPOP_ST_INVALID},
        {"status-code over 32 bits",
         true,
         true,
         {.type = SPOP_DATA_UINT64, .u.u64 = 1ull << 40},
         SPOP_ST_INVALID},
        {"status-code as a string",
         true,
         true,
         {.type = SPOP_DATA_STR, .u.str = {"3", 1}},
         SPOP_ST_INVALID},
    };
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        uint8_t buf[128];
        struct spop_writer w;
        struct spop_disconnect d;
        struct spop_data msg = spop_str_data("bye", 3);

        print_message("# case: %s\n", cases[i].name);
        spop_writer_init(&w, buf, sizeof(buf));
        /* message first: key order is free */
        if (cases[i].message)
            spop_write_kv(&w, "message", &msg);
        if (cases[i].status)
            spop_write_kv(&w, "status-code", &cases[i].code);
        assert_false(w.overflow);
        assert_int_equal(spop_disconnect_parse(buf, w.off, &d), cases[i].want);
        if (cases[i].want != SPOP_ST_NONE)
            continue;
        assert_int_equal(d.status, cases[i].status_code);
        assert_str(d.message, cases[i].message ? "bye" : "");
    }
}

static void spop_status_text_follows_the_spec_table(void **state)
{
    (void)state;
    assert_string_equal(spop_status_text(SPOP_ST_NONE), "normal");
    assert_string_equal(spop_status_text(SPOP_ST_TOO_BIG), "frame is too big");
    assert_string_equal(spop_status_text(SPOP_ST_FRAG_NOT_SUP),
                        "payload fragmentation is not supported");
    assert_string_equal(spop_status_text(SPOP_ST_RES), "resource allocation error");
    assert_string_equal(spop_status_text(SPOP_ST_UNKNOWN), "unknown error");
    assert_string_equal(spop_status_text(14), "unknown error");
    assert_string_equal(spop_status_text(UINT32_MAX), "unknown error");
}

/* ---- NOTIFY ---- */

struct want_arg {
    const char *name;
    uint8_t type;
    const char *value;
};

static void assert_notify(const uint8_t *frame, size_t len, uint64_t sid, uint64_t fid,
                          const struct want_arg want[4])
{
    struct spop_frame f;
    struct spop_reader r;
    struct spop_str name;
    struct spop_data val;
    uint8_t nargs;

    parse_whole(frame, len, &f);
    assert_int_equal(f.type, SPOP_FRAME_NOTIFY);
    assert_int_equal(f.flags, SPOP_FLAG_FIN);
    assert_true(f.stream_id == sid && f.frame_id == fid);
    spop_reader_init(&r, f.payload, f.payload_len);
    assert_int_equal(spop_read_message(&r, &name, &nargs), 1);
    assert_str(name, "check-token");
    assert_int_equal(nargs, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(spop_read_kv(&r, &name, &val), 1);
        assert_str(name, want[i].name);
        assert_int_equal(val.type, want[i].type);
        if (want[i].type == SPOP_DATA_STR)
            assert_str(val.u.str, want[i].value);
    }
    assert_int_equal(spop_read_message(&r, &name, &nargs), 0);
}

static void spop_notify_captured_with_bearer_only_has_null_for_missing_sources(void **state)
{
    static const struct want_arg want[4] = {
        {"bearer", SPOP_DATA_STR, "Bearer aaa.bbb.ccc"},
        {"qtoken", SPOP_DATA_NULL, NULL},
        {"proto", SPOP_DATA_NULL, NULL},
        {"cookie", SPOP_DATA_NULL, NULL},
    };
    (void)state;
    assert_notify(cap_notify_bearer_only, sizeof(cap_notify_bearer_only), 0, 1, want);
}

static void spop_notify_captured_with_all_sources_has_four_strings(void **state)
{
    static const struct want_arg want[4] = {
        {"bearer", SPOP_DATA_STR, "Bearer aaa.bbb.ccc"},
        {"qtoken", SPOP_DATA_STR, "q.r.s"},
        {"proto", SPOP_DATA_STR, "roomrelay.v1, bearer.x.y.z"},
        {"cookie", SPOP_DATA_STR, "c.d.e"},
    };
    (void)state;
    assert_notify(cap_notify_all_sources, sizeof(cap_notify_all_sources), 2, 1, want);
}

static void spop_notify_writer_rebuilds_captured_bytes(void **state)
{
    uint8_t buf[128];
    struct spop_writer w;
    struct spop_data bearer = spop_str_data("Bearer aaa.bbb.ccc", 18);
    struct spop_data null = {.type = SPOP_DATA_NULL};
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, 0, 1);
    spop_write_message(&w, "check-token", 4);
    spop_write_kv(&w, "bearer", &bearer);
    spop_write_kv(&w, "qtoken", &null);
    spop_write_kv(&w, "proto", &null);
    spop_write_kv(&w, "cookie", &null);
    assert_int_equal(spop_frame_end(&w), sizeof(cap_notify_bearer_only));
    assert_memory_equal(buf, cap_notify_bearer_only, sizeof(cap_notify_bearer_only));
}

/* ---- ACK ---- */

static void spop_ack_set_var_has_raw_scope_and_untyped_name(void **state)
{
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x2c,                                   /* frame length 44 */
        0x67, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01,                 /* ACK, FIN, stream 2, frame 1 */
        0x01, 0x03, 0x01, 0x04, 'a',  'u',  't',  'h', 0x11,      /* set-var sess auth = true */
        0x01, 0x03, 0x01, 0x03, 'e',  'x',  'p',                  /* set-var sess exp = */
        0x04, 0xf0, 0x81, 0xfd, 0xd3, 0x31,                       /*   int64 1700000000 */
        0x01, 0x03, 0x02, 0x06, 's',  'e',  'r',  'v', 'e',  'r', /* set-var txn server = */
        0x08, 0x03, 'w',  's',  '2',                              /*   "ws2" */
    };
    uint8_t buf[64];
    struct spop_writer w;
    struct spop_data t = spop_bool_data(true);
    struct spop_data exp = spop_int64_data(1700000000);
    struct spop_data srv = spop_str_data("ws2", 3);
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 2, 1);
    spop_write_set_var(&w, SPOP_SCOPE_SESS, "auth", &t);
    spop_write_set_var(&w, SPOP_SCOPE_SESS, "exp", &exp);
    spop_write_set_var(&w, SPOP_SCOPE_TXN, "server", &srv);
    assert_int_equal(spop_frame_end(&w), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void spop_ack_unset_var_has_two_args(void **state)
{
    static const uint8_t want[] = {0x02, 0x02, 0x02, 0x06, 's', 'e', 'r', 'v', 'e', 'r'};
    uint8_t buf[16];
    struct spop_writer w;
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    spop_write_unset_var(&w, SPOP_SCOPE_TXN, "server");
    assert_false(w.overflow);
    assert_int_equal(w.off, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void spop_read_action_round_trips_and_rejects_bad_actions(void **state)
{
    uint8_t buf[64];
    struct spop_writer w;
    struct spop_reader r;
    struct spop_data t = spop_bool_data(true), val;
    struct spop_str name;
    uint8_t type, scope;
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    spop_write_set_var(&w, SPOP_SCOPE_SESS, "auth", &t);
    spop_write_unset_var(&w, SPOP_SCOPE_RES, "x");
    spop_reader_init(&r, buf, w.off);
    assert_int_equal(spop_read_action(&r, &type, &scope, &name, &val), 1);
    assert_int_equal(type, SPOP_ACT_SET_VAR);
    assert_int_equal(scope, SPOP_SCOPE_SESS);
    assert_str(name, "auth");
    assert_int_equal(val.type, SPOP_DATA_BOOL);
    assert_true(val.u.b);
    assert_int_equal(spop_read_action(&r, &type, &scope, &name, &val), 1);
    assert_int_equal(type, SPOP_ACT_UNSET_VAR);
    assert_int_equal(scope, SPOP_SCOPE_RES);
    assert_str(name, "x");
    assert_int_equal(val.type, SPOP_DATA_NULL);
    assert_int_equal(spop_read_action(&r, &type, &scope, &name, &val), 0);

    static const struct {
        const char *name;
        uint8_t bytes[8];
        size_t len;
    } bad[] = {
        {"unknown action type", {0x03, 0x02, 0x01, 0x01, 'a'}, 5},
        {"set-var with 2 args", {0x01, 0x02, 0x01, 0x01, 'a', 0x11}, 6},
        {"unset-var with 3 args", {0x02, 0x03, 0x01, 0x01, 'a'}, 5},
        {"scope past res", {0x02, 0x02, 0x05, 0x01, 'a'}, 5},
        {"set-var without value", {0x01, 0x03, 0x01, 0x01, 'a'}, 5},
        {"name past end", {0x02, 0x02, 0x01, 0x02, 'a'}, 5},
        {"no scope", {0x02, 0x02}, 2},
    };
    for (size_t i = 0; i < LEN(bad); i++) {
        print_message("# case: %s\n", bad[i].name);
        spop_reader_init(&r, bad[i].bytes, bad[i].len);
        assert_int_equal(spop_read_action(&r, &type, &scope, &name, &val), -1);
    }
}

/* ---- AGENT-HELLO and writer overflow ---- */

static void spop_agent_hello_matches_the_frame_haproxy_accepted(void **state)
{
    uint8_t buf[128];
    struct spop_writer w;
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(spop_write_agent_hello(&w, 16380, "pipelining,async"),
                     sizeof(agent_hello_accepted));
    assert_memory_equal(buf, agent_hello_accepted, sizeof(agent_hello_accepted));
}

static void spop_agent_hello_overflows_at_every_cut_point(void **state)
{
    size_t full = sizeof(agent_hello_accepted);
    (void)state;

    for (size_t cap = 0; cap <= full; cap++) {
        /* exactly cap bytes on the heap, so ASan sees any write past it */
        uint8_t *buf = malloc(cap ? cap : 1);
        struct spop_writer w;
        size_t n;

        assert_non_null(buf);
        spop_writer_init(&w, buf, cap);
        n = spop_write_agent_hello(&w, 16380, "pipelining,async");
        if (cap < full) {
            assert_int_equal(n, 0);
            assert_true(w.overflow);
            assert_true(w.off <= cap);
        } else {
            assert_int_equal(n, full);
            assert_memory_equal(buf, agent_hello_accepted, full);
        }
        free(buf);
    }
}

static void spop_writer_is_a_no_op_after_overflow(void **state)
{
    uint8_t buf[4];
    struct spop_writer w;
    struct spop_data t = spop_bool_data(true);
    (void)state;

    spop_writer_init(&w, buf, sizeof(buf));
    spop_write_str(&w, "abcdef", 6);
    assert_true(w.overflow);
    assert_int_equal(w.off, 1);
    spop_write_varint(&w, 1);
    spop_write_kv(&w, "k", &t);
    assert_int_equal(w.off, 1);
}

/* ---- robustness ---- */

/* Runs every decoder over bytes that sit at the very end of a heap block. */
static void decode_everything(const uint8_t *p, size_t len)
{
    struct spop_reader r;
    struct spop_str name;
    struct spop_data val;
    struct spop_hello h;
    struct spop_disconnect d;
    uint8_t nargs, type, scope;

    spop_reader_init(&r, p, len);
    while (spop_read_message(&r, &name, &nargs) == 1) {
        assert_true(name.ptr >= (const char *)p && name.ptr + name.len <= (const char *)p + len);
        for (unsigned i = 0; i < nargs; i++) {
            if (spop_read_kv(&r, &name, &val) != 1)
                break;
            if (val.type == SPOP_DATA_STR || val.type == SPOP_DATA_BIN)
                assert_true(val.u.str.ptr + val.u.str.len <= (const char *)p + len);
        }
        assert_true(r.off <= len);
    }
    spop_reader_init(&r, p, len);
    while (spop_read_action(&r, &type, &scope, &name, &val) == 1)
        assert_true(r.off <= len);
    spop_hello_parse(p, len, &h);
    spop_disconnect_parse(p, len, &d);
}

/* Returns what spop_frame_parse said about a heap copy of buf[0..len). */
static int feed(const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    struct spop_frame f;
    int n;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, buf, len);
    n = spop_frame_parse(copy, len, SPOP_MAX_FRAME_SIZE, &f);
    if (n > 0) {
        assert_true((size_t)n <= len);
        assert_true(f.payload >= copy && f.payload + f.payload_len == copy + n);
        decode_everything(f.payload, f.payload_len);
    }
    decode_everything(copy, len);
    free(copy);
    return n;
}

static void spop_decoders_survive_every_prefix_and_byte_corruption(void **state)
{
    static const struct {
        const uint8_t *p;
        size_t len;
    } frames[] = {
        {cap_notify_bearer_only, sizeof(cap_notify_bearer_only)},
        {cap_notify_all_sources, sizeof(cap_notify_all_sources)},
        {cap_hello, sizeof(cap_hello)},
        {cap_hello_check, sizeof(cap_hello_check)},
    };
    (void)state;
    for (size_t k = 0; k < LEN(frames); k++) {
        const uint8_t *p = frames[k].p;
        size_t len = frames[k].len;
        uint8_t mut[256];

        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(feed(p, cut), 0);
        assert_int_equal(feed(p, len), (int)len);

        assert_true(len <= sizeof(mut));
        for (size_t pos = 0; pos < len; pos++) {
            for (unsigned x = 1; x < 256; x++) {
                memcpy(mut, p, len);
                mut[pos] ^= (uint8_t)x;
                feed(mut, len);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spop_varint_round_trips_at_every_length_boundary),
        cmocka_unit_test(spop_varint_encodes_exact_peers_bytes),
        cmocka_unit_test(spop_varint_truncated_needs_more_bytes),
        cmocka_unit_test(spop_varint_rejects_11_byte_encoding),
        cmocka_unit_test(spop_varint_rejects_overflow_past_64_bits),
        cmocka_unit_test(spop_varint_encode_reports_short_buffer),
        cmocka_unit_test(spop_data_integers_and_bools_have_exact_wire_bytes),
        cmocka_unit_test(spop_data_bool_reads_only_the_true_flag),
        cmocka_unit_test(spop_data_addresses_and_strings_round_trip),
        cmocka_unit_test(spop_data_rejects_reserved_types_10_to_15),
        cmocka_unit_test(spop_data_rejects_values_running_past_the_buffer),
        cmocka_unit_test(spop_data_unknown_type_fails_the_writer),
        cmocka_unit_test(spop_read_kv_and_message_reject_truncated_items),
        cmocka_unit_test(spop_frame_parse_follows_the_length_prefix),
        cmocka_unit_test(spop_frame_writer_fills_length_prefixes),
        cmocka_unit_test(spop_hello_parse_reads_captured_haproxy_hello),
        cmocka_unit_test(spop_hello_parse_reads_captured_healthcheck_hello),
        cmocka_unit_test(spop_haproxy_hello_writer_rebuilds_captured_bytes),
        cmocka_unit_test(spop_hello_parse_names_the_missing_mandatory_key),
        cmocka_unit_test(spop_hello_parse_skips_unknown_keys),
        cmocka_unit_test(spop_hello_parse_checks_value_types),
        cmocka_unit_test(spop_hello_parse_rejects_truncated_payload),
        cmocka_unit_test(spop_list_has_ignores_spaces_and_matches_whole_items),
        cmocka_unit_test(spop_versions_support_2_accepts_any_2_minor),
        cmocka_unit_test(spop_disconnect_writer_has_exact_bytes),
        cmocka_unit_test(spop_disconnect_parse_checks_its_keys),
        cmocka_unit_test(spop_status_text_follows_the_spec_table),
        cmocka_unit_test(spop_notify_captured_with_bearer_only_has_null_for_missing_sources),
        cmocka_unit_test(spop_notify_captured_with_all_sources_has_four_strings),
        cmocka_unit_test(spop_notify_writer_rebuilds_captured_bytes),
        cmocka_unit_test(spop_ack_set_var_has_raw_scope_and_untyped_name),
        cmocka_unit_test(spop_ack_unset_var_has_two_args),
        cmocka_unit_test(spop_read_action_round_trips_and_rejects_bad_actions),
        cmocka_unit_test(spop_agent_hello_matches_the_frame_haproxy_accepted),
        cmocka_unit_test(spop_agent_hello_overflows_at_every_cut_point),
        cmocka_unit_test(spop_writer_is_a_no_op_after_overflow),
        cmocka_unit_test(spop_decoders_survive_every_prefix_and_byte_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
