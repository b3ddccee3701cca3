/*
 * Unit tests of the RFC 6455 frame codec (backend/ws_frame.c): the reader's
 * rules of §5 (each refused frame with its close code and the byte at which
 * it is refused), length encodings at every boundary, fragmentation, UTF-8
 * across fragments, close frames (§5.5.1, §7.4), max_message, zero-copy, and
 * the builders against the examples of §5.7. The UTF-8 automaton itself is
 * tested in test_utf8.c. Not tested here: sockets (ws_conn.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/ws_frame.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The masking key of RFC 6455 §5.7's examples. */
static const uint8_t rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- a byte stream of client frames ---- */

struct wire {
    uint8_t *p;
    size_t len, cap;
};

static void wire_reserve(struct wire *w, size_t n)
{
    if (w->p && w->cap - w->len >= n)
        return;
    w->cap = (w->len + n) * 2;
    w->p = realloc(w->p, w->cap);
    assert_non_null(w->p);
}

static void wire_frame(struct wire *w, bool fin, uint8_t op, const void *payload, size_t n)
{
    size_t got;

    wire_reserve(w, n + WS_CLIENT_HEADER_MAX);
    got = ws_frame_build_masked(w->p + w->len, w->cap - w->len, fin, op, payload, n, rfc_mask);
    assert_int_not_equal(got, 0);
    w->len += got;
}

static void wire_str(struct wire *w, bool fin, uint8_t op, const char *s)
{
    wire_frame(w, fin, op, s, strlen(s));
}

/* ---- feeding a reader as the I/O layer does ---- */

#define MAX_EVENTS 64

struct rec {
    enum ws_ev type;
    enum ws_err err;
    uint16_t code;
    bool rsv1;
    bool in_place; /* data pointed into the caller's buffer */
    size_t len;
    uint8_t *data;
};

struct run {
    struct rec ev[MAX_EVENTS];
    size_t n;
    size_t fed_at_error; /* input bytes offered when the error came */
    size_t left_over;    /* bytes never consumed */
};

static void run_free(struct run *run)
{
    for (size_t i = 0; i < run->n; i++)
        free(run->ev[i].data);
    run->n = 0;
}

/*
 * Offers the input `chunk` bytes at a time (0: all at once) to a fresh
 * reader: unconsumed bytes stay at the front of the buffer, new ones are
 * appended, and events are drained until WS_EV_NONE. Stops at an error.
 */
static void feed(const uint8_t *in, size_t len, size_t chunk, size_t max_message, bool allow_rsv1,
                 struct run *run)
{
    struct ws_reader r;
    uint8_t *buf = malloc(len + 1);
    size_t have = 0, fed = 0;
    bool failed = false;

    assert_non_null(buf);
    memset(run, 0, sizeof(*run));
    ws_reader_init(&r, max_message, allow_rsv1);
    while (!failed && (fed < len || fed == 0)) {
        size_t n = chunk && chunk < len - fed ? chunk : len - fed;
        size_t off = 0;

        memcpy(buf + have, in + fed, n);
        have += n;
        fed += n;
        for (;;) {
            struct ws_event ev;
            size_t used = SIZE_MAX;
            enum ws_ev t = ws_reader_next(&r, buf + off, have - off, &used, &ev);
            struct rec *rec;

            assert_int_equal(t, ev.type);
            assert_true(used <= have - off);
            if (t == WS_EV_NONE) {
                off += used;
                assert_true(have - off < WS_CLIENT_HEADER_MAX);
                break;
            }
            assert_true(run->n < MAX_EVENTS);
            rec = &run->ev[run->n++];
            rec->type = t;
            rec->err = ev.err;
            rec->code = ev.code;
            rec->rsv1 = ev.rsv1;
            rec->len = ev.len;
            if (t == WS_EV_ERROR) {
                assert_null(ev.data);
                assert_int_equal(ev.len, 0);
            } else {
                assert_non_null(ev.data);
                rec->in_place = ev.data >= buf && ev.data < buf + have;
                rec->data = malloc(ev.len + 1);
                assert_non_null(rec->data);
                memcpy(rec->data, ev.data, ev.len);
            }
            off += used;
            if (t == WS_EV_ERROR) {
                run->fed_at_error = fed;
                failed = true;
                break;
            }
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (len == 0)
            break;
    }
    run->left_over = have;
    ws_reader_free(&r);
    free(buf);
}

struct want {
    enum ws_ev type;
    uint16_t code;
    const char *data; /* NULL: not checked */
    size_t len;
};

#define WANT_STR(t, s)                                                                             \
    {                                                                                              \
        t, 0, s, sizeof(s) - 1                                                                     \
    }

static void assert_events(const struct run *run, const struct want *w, size_t n)
{
    assert_int_equal(run->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(run->ev[i].type, w[i].type);
        assert_int_equal(run->ev[i].code, w[i].code);
        if (w[i].data) {
            assert_int_equal(run->ev[i].len, w[i].len);
            assert_memory_equal(run->ev[i].data, w[i].data, w[i].len);
        }
    }
}

static void assert_runs_equal(const struct run *a, const struct run *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->ev[i].type, b->ev[i].type);
        assert_int_equal(a->ev[i].err, b->ev[i].err);
        assert_int_equal(a->ev[i].code, b->ev[i].code);
        assert_int_equal(a->ev[i].rsv1, b->ev[i].rsv1);
        assert_int_equal(a->ev[i].len, b->ev[i].len);
        if (a->ev[i].len)
            assert_memory_equal(a->ev[i].data, b->ev[i].data, a->ev[i].len);
    }
    if (a->n == 0 || a->ev[a->n - 1].type != WS_EV_ERROR)
        assert_int_equal(a->left_over, b->left_over);
}

/* Every way of cutting the input up must give the same events. */
static void assert_chunking_invariant(const uint8_t *in, size_t len, size_t max_message,
                                      bool allow_rsv1, const struct run *whole)
{
    static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64, 1000, 4096};

    for (size_t i = 0; i < LEN(chunks); i++) {
        struct run run;

        feed(in, len, chunks[i], max_message, allow_rsv1, &run);
        assert_runs_equal(&run, whole);
        run_free(&run);
    }
}

/* ---- refused frames ---- */

struct reject {
    const char *name;
    uint8_t b[24];
    size_t len;
    size_t need;   /* bytes the reader must see, fed one at a time, to refuse */
    size_t before; /* events that come before the error */
    enum ws_err err;
};

/*
 * Each case is fed whole and one byte at a time: the error is the last
 * event, carries the close code of its class, and comes exactly when byte
 * `need` arrives.
 */
static void assert_rejects(const struct reject *c, size_t n, enum ws_err err, uint16_t code,
                           size_t max_message, bool allow_rsv1)
{
    for (size_t i = 0; i < n; i++) {
        struct run whole, bytewise;

        print_message("%s\n", c[i].name);
        feed(c[i].b, c[i].len, 0, max_message, allow_rsv1, &whole);
        feed(c[i].b, c[i].len, 1, max_message, allow_rsv1, &bytewise);
        assert_int_equal(whole.n, c[i].before + 1);
        assert_int_equal(whole.ev[c[i].before].type, WS_EV_ERROR);
        assert_int_equal(whole.ev[c[i].before].err, err);
        assert_int_equal(whole.ev[c[i].before].code, code);
        assert_runs_equal(&bytewise, &whole);
        assert_int_equal(bytewise.fed_at_error, c[i].need);
        run_free(&whole);
        run_free(&bytewise);
    }
}

#define M0 0x00, 0x00, 0x00, 0x00 /* a zero masking key: the payload reads as is */

static void rfc6455_5_1_unmasked_client_frame(void **state)
{
    static const struct reject c[] = {
        {"text", {0x81, 0x02, 'H', 'i'}, 4, 2, 0, 0},
        {"binary, 16-bit length", {0x82, 0x7E, 0x00, 0x80}, 4, 4, 0, 0},
        {"ping", {0x89, 0x00}, 2, 2, 0, 0},
        {"close", {0x88, 0x02, 0x03, 0xE8}, 4, 2, 0, 0},
        {"continuation", {0x01, 0x80, M0, 0x80, 0x00}, 8, 8, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_UNMASKED, 1002, 0, false);
}

static void rfc6455_5_2_rsv_bits_without_extension(void **state)
{
    static const struct reject c[] = {
        {"rsv1", {0xC1, 0x80, M0}, 6, 6, 0, 0},
        {"rsv2", {0xA1, 0x80, M0}, 6, 6, 0, 0},
        {"rsv3", {0x91, 0x80, M0}, 6, 6, 0, 0},
        {"all three", {0xF2, 0x80, M0}, 6, 6, 0, 0},
        {"rsv2 on a ping", {0xA9, 0x80, M0}, 6, 6, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_RSV_BITS, 1002, 0, false);
}

static void rfc7692_6_rsv1_only_on_the_first_frame_of_a_message(void **state)
{
    static const struct reject c[] = {
        {"rsv1 on a ping", {0xC9, 0x80, M0}, 6, 6, 0, 0},
        {"rsv1 on a close", {0xC8, 0x80, M0}, 6, 6, 0, 0},
        {"rsv1 on a continuation", {0x41, 0x80, M0, 0xC0, 0x80, M0}, 12, 12, 0, 0},
        {"rsv2 with deflate", {0x61, 0x80, M0}, 6, 6, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_RSV_BITS, 1002, 0, true);
}

static void rfc6455_5_2_reserved_opcodes(void **state)
{
    static const uint8_t ops[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF};

    (void)state;
    for (size_t i = 0; i < LEN(ops); i++) {
        struct reject c = {"reserved", {(uint8_t)(0x80 | ops[i]), 0x80, M0}, 6, 2, 0, 0};
        struct ws_frame_header h;

        assert_rejects(&c, 1, WS_ERR_RESERVED_OPCODE, 1002, 0, false);
        assert_int_equal(ws_frame_header_parse(c.b, 2, &h), -WS_ERR_RESERVED_OPCODE);
    }
}

static void rfc6455_5_2_non_minimal_length(void **state)
{
    static const struct reject c[] = {
        {"125 in 16 bits", {0x82, 0xFE, 0x00, 0x7D, M0}, 8, 4, 0, 0},
        {"0 in 16 bits", {0x82, 0xFE, 0x00, 0x00, M0}, 8, 4, 0, 0},
        {"65535 in 64 bits", {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, M0}, 14, 10, 0, 0},
        {"125 in 64 bits", {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x00, 0x7D, M0}, 14, 10, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_LENGTH_NOT_MINIMAL, 1002, 0, false);
}

static void rfc6455_5_2_length_with_top_bit_set(void **state)
{
    static const struct reject c[] = {
        {"2^63", {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, M0}, 14, 10, 0, 0},
        {"2^64-1", {0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, M0}, 14, 10, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_LENGTH_TOP_BIT, 1002, 0, false);
}

static void rfc6455_5_5_control_frame_too_long(void **state)
{
    static const struct reject c[] = {
        {"ping of 126", {0x89, 0xFE, 0x00, 0x7E, M0}, 8, 2, 0, 0},
        {"pong of 65536", {0x8A, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, M0}, 14, 2, 0, 0},
        {"close of 126", {0x88, 0xFE, 0x00, 0x7E, M0}, 8, 2, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_CONTROL_TOO_LONG, 1002, 0, false);
}

static void rfc6455_5_5_fragmented_control_frame(void **state)
{
    static const struct reject c[] = {
        {"ping", {0x09, 0x80, M0}, 6, 2, 0, 0},
        {"pong", {0x0A, 0x80, M0}, 6, 2, 0, 0},
        {"close", {0x08, 0x80, M0}, 6, 2, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_CONTROL_FRAGMENTED, 1002, 0, false);
}

static void rfc6455_5_4_continuation_without_start(void **state)
{
    static const struct reject c[] = {
        {"final continuation", {0x80, 0x80, M0}, 6, 6, 0, 0},
        {"non-final continuation", {0x00, 0x80, M0}, 6, 6, 0, 0},
        {"after a whole message", {0x81, 0x81, M0, 'a', 0x80, 0x81, M0, 'b'}, 14, 13, 1, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_CONT_WITHOUT_START, 1002, 0, false);
}

static void rfc6455_5_4_new_message_inside_a_fragmented_one(void **state)
{
    static const struct reject c[] = {
        {"text in text", {0x01, 0x81, M0, 'a', 0x81, 0x81, M0, 'b'}, 14, 13, 0, 0},
        {"binary in text", {0x01, 0x81, M0, 'a', 0x82, 0x80, M0}, 13, 13, 0, 0},
        {"text in binary", {0x02, 0x80, M0, 0x01, 0x80, M0}, 12, 12, 0, 0},
        {"after an interleaved ping",
         {0x01, 0x80, M0, 0x89, 0x80, M0, 0x81, 0x80, M0},
         18,
         18,
         1,
         0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_DATA_IN_FRAGMENTED, 1002, 0, false);
}

static void rfc6455_5_5_1_close_payload_of_one_byte(void **state)
{
    static const struct reject c[] = {
        {"one byte", {0x88, 0x81, M0, 0x03}, 7, 7, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_CLOSE_ONE_BYTE, 1002, 0, false);
}

static void rfc6455_5_5_1_close_reason_must_be_utf8(void **state)
{
    static const struct reject c[] = {
        {"overlong", {0x88, 0x84, M0, 0x03, 0xE8, 0xC0, 0x80}, 10, 10, 0, 0},
        {"truncated", {0x88, 0x84, M0, 0x03, 0xE8, 'a', 0xE2}, 10, 10, 0, 0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_CLOSE_BAD_UTF8, 1007, 0, false);
}

/* Fed a byte at a time, a text frame fails on its bad byte, not at its end. */
static void rfc6455_8_1_text_must_be_utf8(void **state)
{
    static const struct reject c[] = {
        {"overlong in one frame", {0x81, 0x85, M0, 'a', 0xC0, 0x80, 'b', 'c'}, 11, 8, 0, 0},
        {"surrogate in one frame", {0x81, 0x83, M0, 0xED, 0xA0, 0x80}, 9, 8, 0, 0},
        {"truncated at the end", {0x81, 0x82, M0, 'a', 0xE2}, 8, 8, 0, 0},
        {"bad first fragment", {0x01, 0x82, M0, 'a', 0xFF, 0x80, 0x80, M0}, 14, 8, 0, 0},
        {"truncated across the last fragment",
         {0x01, 0x81, M0, 0xE2, 0x80, 0x81, M0, 0x82},
         14,
         14,
         0,
         0},
    };

    (void)state;
    assert_rejects(c, LEN(c), WS_ERR_BAD_UTF8, 1007, 0, false);
}

static void rfc6455_8_1_invalid_utf8_fails_before_the_message_completes(void **state)
{
    uint8_t in[6 + 100];
    struct ws_reader r;
    struct ws_event ev;
    size_t used;

    (void)state;
    memcpy(in, (const uint8_t[]){0x81, 0xE4, M0}, 6); /* a 100-byte text frame */
    memset(in + 6, 'a', 100);
    in[6 + 5] = 0xFF;
    ws_reader_init(&r, 0, false);
    assert_int_equal(ws_reader_next(&r, in, 6 + 10, &used, &ev), WS_EV_ERROR);
    assert_int_equal(ev.err, WS_ERR_BAD_UTF8);
    assert_int_equal(ev.code, 1007);
    ws_reader_free(&r);
}

static void rfc6455_7_4_close_code_classes_0_to_5000(void **state)
{
    (void)state;
    for (unsigned code = 0; code <= UINT16_MAX; code++) {
        bool ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                  (code >= 3000 && code <= 4999);

        assert_int_equal(ws_close_code_receivable((uint16_t)code), ok);
        if (code <= 5000) {
            uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
            struct wire w = {0};
            struct run run;

            wire_frame(&w, true, WS_OP_CLOSE, body, 2);
            feed(w.p, w.len, 0, 0, false, &run);
            assert_int_equal(run.n, 1);
            if (ok) {
                assert_int_equal(run.ev[0].type, WS_EV_CLOSE);
                assert_int_equal(run.ev[0].code, code);
                assert_int_equal(run.ev[0].len, 0);
            } else {
                assert_int_equal(run.ev[0].type, WS_EV_ERROR);
                assert_int_equal(run.ev[0].err, WS_ERR_CLOSE_BAD_CODE);
                assert_int_equal(run.ev[0].code, 1002);
            }
            run_free(&run);
            free(w.p);
        }
    }
}

static void rfc6455_5_5_1_close_frames_are_read(void **state)
{
    char reason[WS_CLOSE_REASON_MAX + 1];
    uint8_t body[WS_CONTROL_MAX];
    struct wire w = {0};
    struct run run;

    (void)state;
    wire_frame(&w, true, WS_OP_CLOSE, NULL, 0);
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run, (const struct want[]){{WS_EV_CLOSE, WS_CLOSE_NO_STATUS, "", 0}}, 1);
    run_free(&run);

    w.len = 0;
    wire_frame(&w, true, WS_OP_CLOSE,
               "\x03\xE8"
               "bye \xC3\xA9",
               8);
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run, (const struct want[]){{WS_EV_CLOSE, 1000, "bye \xC3\xA9", 6}}, 1);
    assert_chunking_invariant(w.p, w.len, 0, false, &run);
    run_free(&run);

    memset(reason, 'r', WS_CLOSE_REASON_MAX);
    body[0] = 0x0F; /* 4000 */
    body[1] = 0xA0;
    memcpy(body + 2, reason, WS_CLOSE_REASON_MAX);
    w.len = 0;
    wire_frame(&w, true, WS_OP_CLOSE, body, sizeof(body));
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run, (const struct want[]){{WS_EV_CLOSE, 4000, reason, WS_CLOSE_REASON_MAX}}, 1);
    assert_chunking_invariant(w.p, w.len, 0, false, &run);
    run_free(&run);
    free(w.p);
}

static void rfc6455_1_4_input_after_close_is_ignored(void **state)
{
    uint8_t in[64];
    size_t len = 0, used;
    struct ws_reader r;
    struct ws_event ev;

    (void)state;
    len += ws_frame_build_masked(in, sizeof(in), true, WS_OP_CLOSE, (const uint8_t *)"\x03\xE8", 2,
                                 rfc_mask);
    len += ws_frame_build_masked(in + len, sizeof(in) - len, true, WS_OP_TEXT,
                                 (const uint8_t *)"late", 4, rfc_mask);
    in[len++] = 0xFF; /* and garbage */
    in[len++] = 0xFF;
    ws_reader_init(&r, 0, false);
    assert_int_equal(ws_reader_next(&r, in, len, &used, &ev), WS_EV_CLOSE);
    assert_int_equal(used, 8);
    assert_int_equal(ws_reader_next(&r, in + used, len - used, &used, &ev), WS_EV_NONE);
    assert_int_equal(used, len - 8);
    ws_reader_free(&r);
}

static void reader_error_is_sticky(void **state)
{
    static const uint8_t bad[] = {0x81, 0x02, 'H', 'i'};
    uint8_t in[16];
    size_t used;
    struct ws_reader r;
    struct ws_event ev;

    (void)state;
    ws_reader_init(&r, 0, false);
    memcpy(in, bad, sizeof(bad));
    assert_int_equal(ws_reader_next(&r, in, sizeof(bad), &used, &ev), WS_EV_ERROR);
    assert_int_equal(
        ws_frame_build_masked(in, sizeof(in), true, WS_OP_TEXT, (const uint8_t *)"ok", 2, rfc_mask),
        8);
    assert_int_equal(ws_reader_next(&r, in, 8, &used, &ev), WS_EV_ERROR);
    assert_int_equal(ev.err, WS_ERR_UNMASKED);
    assert_int_equal(ev.code, 1002);
    assert_int_equal(used, 0);
    ws_reader_free(&r);
}

/* ---- lengths, fragmentation, UTF-8 across fragments ---- */

static void rfc6455_5_2_length_encodings_at_every_boundary(void **state)
{
    static const struct {
        uint64_t len;
        size_t hlen;
        uint8_t hdr[10];
    } c[] = {
        {0, 2, {0x82, 0x00}},
        {1, 2, {0x82, 0x01}},
        {125, 2, {0x82, 0x7D}},
        {126, 4, {0x82, 0x7E, 0x00, 0x7E}},
        {127, 4, {0x82, 0x7E, 0x00, 0x7F}},
        {65535, 4, {0x82, 0x7E, 0xFF, 0xFF}},
        {65536, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
        {100000, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x86, 0xA0}},
        {1ull << 32, 10, {0x82, 0x7F, 0, 0, 0, 0x01, 0, 0, 0, 0}},
        {INT64_MAX, 10, {0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
    };

    (void)state;
    for (size_t i = 0; i < LEN(c); i++) {
        uint8_t hdr[WS_SERVER_HEADER_MAX], masked[WS_CLIENT_HEADER_MAX];
        struct ws_frame_header h;

        assert_int_equal(ws_frame_header_build(hdr, true, WS_OP_BINARY, false, c[i].len),
                         c[i].hlen);
        assert_memory_equal(hdr, c[i].hdr, c[i].hlen);
        assert_int_equal(ws_frame_header_parse(hdr, c[i].hlen, &h), (int)c[i].hlen);
        assert_false(h.masked);
        assert_int_equal(h.len, c[i].len);

        /* The same header, masked: every prefix asks for more bytes. */
        memcpy(masked, hdr, c[i].hlen);
        masked[1] |= 0x80;
        memcpy(masked + c[i].hlen, rfc_mask, 4);
        for (size_t k = 0; k < c[i].hlen + 4; k++)
            assert_int_equal(ws_frame_header_parse(masked, k, &h), 0);
        assert_int_equal(ws_frame_header_parse(masked, c[i].hlen + 4, &h), (int)c[i].hlen + 4);
        assert_true(h.fin && h.masked && !h.rsv1 && !h.rsv2 && !h.rsv3);
        assert_int_equal(h.opcode, WS_OP_BINARY);
        assert_int_equal(h.len, c[i].len);
        assert_memory_equal(h.mask, rfc_mask, 4);

        if (c[i].len <= 100000) {
            size_t n = (size_t)c[i].len;
            uint8_t *payload = malloc(n + 1);
            struct wire w = {0};
            struct run run;

            for (size_t k = 0; k < n; k++)
                payload[k] = (uint8_t)(k * 7 + 3);
            wire_frame(&w, true, WS_OP_BINARY, payload, n);
            assert_int_equal(w.len, c[i].hlen + 4 + n);
            feed(w.p, w.len, 0, 0, false, &run);
            assert_int_equal(run.n, 1);
            assert_int_equal(run.ev[0].type, WS_EV_BINARY);
            assert_int_equal(run.ev[0].len, n);
            assert_memory_equal(run.ev[0].data, payload, n);
            run_free(&run);
            free(w.p);
            free(payload);
        }
    }
}

static void rfc6455_5_5_control_frame_of_125_bytes_is_read(void **state)
{
    uint8_t body[WS_CONTROL_MAX];
    struct wire w = {0};
    struct run run;

    (void)state;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)i;
    wire_frame(&w, true, WS_OP_PING, body, sizeof(body));
    wire_frame(&w, true, WS_OP_PONG, body, sizeof(body));
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run,
                  (const struct want[]){{WS_EV_PING, 0, (const char *)body, sizeof(body)},
                                        {WS_EV_PONG, 0, (const char *)body, sizeof(body)}},
                  2);
    assert_chunking_invariant(w.p, w.len, 0, false, &run);
    run_free(&run);
    free(w.p);
}

static void rfc6455_5_4_control_frames_interleave_with_fragments(void **state)
{
    struct wire w = {0};
    struct run run;
    const struct want want[] = {
        WANT_STR(WS_EV_PING, "p1"),      WANT_STR(WS_EV_PONG, ""),
        WANT_STR(WS_EV_PING, "p2"),      WANT_STR(WS_EV_TEXT, "Hello, world!"),
        WANT_STR(WS_EV_BINARY, "after"),
    };

    (void)state;
    wire_str(&w, false, WS_OP_TEXT, "Hel");
    wire_str(&w, true, WS_OP_PING, "p1");
    wire_str(&w, false, WS_OP_CONT, "lo, ");
    wire_str(&w, true, WS_OP_PONG, "");
    wire_str(&w, false, WS_OP_CONT, "");
    wire_str(&w, true, WS_OP_PING, "p2");
    wire_str(&w, true, WS_OP_CONT, "world!");
    wire_str(&w, true, WS_OP_BINARY, "after");
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run, want, LEN(want));
    assert_int_equal(run.left_over, 0);
    assert_chunking_invariant(w.p, w.len, 0, false, &run);
    run_free(&run);
    free(w.p);
}

static void rfc6455_5_4_empty_fragments_make_an_empty_message(void **state)
{
    struct wire w = {0};
    struct run run;
    const struct want want[] = {WANT_STR(WS_EV_TEXT, ""), WANT_STR(WS_EV_BINARY, "")};

    (void)state;
    wire_str(&w, false, WS_OP_TEXT, "");
    wire_str(&w, true, WS_OP_CONT, "");
    wire_str(&w, true, WS_OP_BINARY, "");
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run, want, LEN(want));
    assert_chunking_invariant(w.p, w.len, 0, false, &run);
    run_free(&run);
    free(w.p);
}

/* Text cut into two and three fragments at every byte: whole characters and halves alike. */
static void rfc6455_5_6_utf8_split_at_every_byte_across_fragments(void **state)
{
    static const char text[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z\xF4\x8F\xBF\xBF";
    static const char bad[] = "a\xC3\xA9\xED\xA0\x80\xF0\x9F\x98\x80z"; /* a surrogate */
    const size_t n = sizeof(text) - 1, nb = sizeof(bad) - 1;

    (void)state;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct wire w = {0};
            struct run run;

            wire_frame(&w, false, WS_OP_TEXT, text, i);
            wire_frame(&w, false, WS_OP_CONT, text + i, j - i);
            wire_frame(&w, true, WS_OP_CONT, text + j, n - j);
            feed(w.p, w.len, 0, 0, false, &run);
            assert_events(&run, (const struct want[]){{WS_EV_TEXT, 0, text, n}}, 1);
            run_free(&run);
            free(w.p);
        }
    }
    for (size_t i = 0; i <= nb; i++) {
        struct wire w = {0};
        struct run run;

        wire_frame(&w, false, WS_OP_TEXT, bad, i);
        wire_frame(&w, true, WS_OP_CONT, bad + i, nb - i);
        feed(w.p, w.len, 0, 0, false, &run);
        assert_int_equal(run.n, 1);
        assert_int_equal(run.ev[0].err, WS_ERR_BAD_UTF8);
        assert_int_equal(run.ev[0].code, 1007);
        run_free(&run);
        free(w.p);
    }
}

static void rfc7692_rsv1_is_reported_and_skips_the_utf8_check(void **state)
{
    /* Compressed bytes are not UTF-8: the caller checks after inflating. */
    static const uint8_t in[] = {
        0xC1, 0x82, M0, 0xFF, 0xC0,                 /* one compressed text frame */
        0x41, 0x81, M0, 0xFF, 0x80, 0x81, M0, 0xFE, /* compressed text in two fragments */
        0x81, 0x81, M0, 'x',                        /* a plain one */
    };
    struct run run;

    (void)state;
    feed(in, sizeof(in), 0, 0, true, &run);
    assert_events(&run,
                  (const struct want[]){{WS_EV_TEXT, 0, "\xFF\xC0", 2},
                                        {WS_EV_TEXT, 0, "\xFF\xFE", 2},
                                        {WS_EV_TEXT, 0, "x", 1}},
                  3);
    assert_true(run.ev[0].rsv1);
    assert_true(run.ev[1].rsv1);
    assert_false(run.ev[2].rsv1);
    assert_chunking_invariant(in, sizeof(in), 0, true, &run);
    run_free(&run);
}

/* ---- byte-at-a-time, zero-copy, max_message, the reassembly buffer ---- */

static void reader_gives_the_same_events_however_the_input_is_cut(void **state)
{
    uint8_t *big = malloc(70000);
    struct wire w = {0};
    struct run run;
    const struct want want[] = {
        WANT_STR(WS_EV_TEXT, "{\"type\":\"ping\"}"),
        {WS_EV_BINARY, 0, (const char *)big, 200},
        WANT_STR(WS_EV_PING, "are you there"),
        WANT_STR(WS_EV_PONG, "yes"),
        WANT_STR(WS_EV_TEXT, "fragmented \xE2\x82\xAC text"),
        {WS_EV_BINARY, 0, (const char *)big, 70000},
        WANT_STR(WS_EV_TEXT, ""),
        {WS_EV_CLOSE, 1001, "going", 5},
    };

    (void)state;
    for (size_t i = 0; i < 70000; i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    wire_str(&w, true, WS_OP_TEXT, "{\"type\":\"ping\"}");
    wire_frame(&w, true, WS_OP_BINARY, big, 200);
    wire_str(&w, true, WS_OP_PING, "are you there");
    wire_str(&w, false, WS_OP_TEXT, "fragmented \xE2");
    wire_str(&w, true, WS_OP_PONG, "yes");
    wire_str(&w, true, WS_OP_CONT, "\x82\xAC text");
    wire_frame(&w, false, WS_OP_BINARY, big, 30000);
    wire_frame(&w, true, WS_OP_CONT, big + 30000, 40000);
    wire_str(&w, true, WS_OP_TEXT, "");
    wire_frame(&w, true, WS_OP_CLOSE, "\x03\xE9going", 7);
    feed(w.p, w.len, 0, 0, false, &run);
    assert_events(&run, want, LEN(want));
    assert_int_equal(run.left_over, 0);
    /* Fed whole, one-frame messages and control frames are read in place. */
    for (size_t i = 0; i < LEN(want); i++)
        if (want[i].len > 0)
            assert_int_equal(run.ev[i].in_place, i != 4 && i != 5);
    assert_chunking_invariant(w.p, w.len, 0, false, &run);
    run_free(&run);
    free(w.p);
    free(big);
}

static void reader_hands_out_a_whole_frame_in_place(void **state)
{
    uint8_t in[256];
    size_t len = 0, used;
    struct ws_reader r;
    struct ws_event ev;

    (void)state;
    len += ws_frame_build_masked(in, sizeof(in), true, WS_OP_TEXT, (const uint8_t *)"Hello", 5,
                                 rfc_mask);
    len += ws_frame_build_masked(in + len, sizeof(in) - len, true, WS_OP_PING,
                                 (const uint8_t *)"ping!", 5, rfc_mask);
    ws_reader_init(&r, 65536, false);
    assert_int_equal(ws_reader_next(&r, in, len, &used, &ev), WS_EV_TEXT);
    assert_ptr_equal(ev.data, in + 6);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(in + 6, "Hello", 5); /* unmasked where it lies */
    assert_int_equal(used, 11);
    assert_int_equal(ws_reader_next(&r, in + 11, len - 11, &used, &ev), WS_EV_PING);
    assert_ptr_equal(ev.data, in + 17);
    assert_int_equal(used, 11);
    assert_null(r.buf); /* nothing was allocated */
    ws_reader_free(&r);
}

static void reader_gathers_split_frames_in_its_own_buffers(void **state)
{
    uint8_t in[64];
    size_t len, used;
    struct ws_reader r;
    struct ws_event ev;

    (void)state;
    ws_reader_init(&r, 65536, false);
    /* A text frame whose last byte has not arrived yet. */
    len = ws_frame_build_masked(in, sizeof(in), true, WS_OP_TEXT, (const uint8_t *)"Hello", 5,
                                rfc_mask);
    assert_int_equal(ws_reader_next(&r, in, len - 1, &used, &ev), WS_EV_NONE);
    assert_int_equal(used, len - 1);
    assert_int_equal(ws_reader_next(&r, in + len - 1, 1, &used, &ev), WS_EV_TEXT);
    assert_int_equal(used, 1);
    assert_ptr_equal(ev.data, r.buf);
    assert_memory_equal(ev.data, "Hello", 5);
    /* A ping split the same way lands in the control buffer. */
    len = ws_frame_build_masked(in, sizeof(in), true, WS_OP_PING, (const uint8_t *)"abc", 3,
                                rfc_mask);
    assert_int_equal(ws_reader_next(&r, in, len - 2, &used, &ev), WS_EV_NONE);
    assert_int_equal(used, len - 2);
    assert_int_equal(ws_reader_next(&r, in + len - 2, 2, &used, &ev), WS_EV_PING);
    assert_ptr_equal(ev.data, r.ctl);
    assert_memory_equal(ev.data, "abc", 3);
    /* A header that is not all there is left alone. */
    assert_int_equal(ws_reader_next(&r, in, 5, &used, &ev), WS_EV_NONE);
    assert_int_equal(used, 0);
    ws_reader_free(&r);
}

static void reader_keeps_a_small_buffer_and_frees_a_big_one(void **state)
{
    static uint8_t big[WS_READER_KEEP + 1];
    struct wire w = {0};
    struct ws_reader r;
    struct ws_event ev;
    uint8_t *kept;
    size_t used, off = 0, lens[5];

    (void)state;
    memset(big, 'b', sizeof(big));
    wire_str(&w, false, WS_OP_TEXT, "one ");
    wire_str(&w, true, WS_OP_CONT, "two");
    lens[0] = w.len;
    wire_str(&w, false, WS_OP_TEXT, "three ");
    wire_str(&w, true, WS_OP_CONT, "four");
    lens[1] = w.len;
    wire_frame(&w, false, WS_OP_BINARY, big, 1);
    wire_frame(&w, true, WS_OP_CONT, big + 1, sizeof(big) - 1);
    lens[2] = w.len;
    wire_str(&w, false, WS_OP_TEXT, "five ");
    wire_str(&w, true, WS_OP_CONT, "six");
    lens[3] = w.len;

    ws_reader_init(&r, 0, false);
    assert_int_equal(ws_reader_next(&r, w.p, lens[0], &used, &ev), WS_EV_TEXT);
    assert_memory_equal(ev.data, "one two", 7);
    kept = r.buf;
    assert_int_equal(r.cap, 1024);
    off = used;
    assert_int_equal(ws_reader_next(&r, w.p + off, lens[1] - off, &used, &ev), WS_EV_TEXT);
    assert_memory_equal(ev.data, "three four", 10);
    assert_ptr_equal(r.buf, kept);
    off += used;
    assert_int_equal(ws_reader_next(&r, w.p + off, lens[2] - off, &used, &ev), WS_EV_BINARY);
    assert_int_equal(ev.len, sizeof(big));
    assert_true(r.cap > WS_READER_KEEP);
    off += used;
    /* The next call releases it before reading on. */
    assert_int_equal(ws_reader_next(&r, w.p + off, 0, &used, &ev), WS_EV_NONE);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);
    assert_int_equal(ws_reader_next(&r, w.p + off, lens[3] - off, &used, &ev), WS_EV_TEXT);
    assert_memory_equal(ev.data, "five six", 8);
    ws_reader_free(&r);
    free(w.p);
}

#define PING "interleaved pings do not count"
#define PING_LEN (6 + sizeof(PING) - 1)

/* The limit counts the payload after reassembly, and a frame that would pass
 * it is refused on its header, before its payload arrives. */
static void max_message_boundaries(void **state)
{
    static uint8_t payload[1001];
    static const struct {
        const char *name;
        size_t first, second; /* second 0: one frame */
        bool ok;
        size_t need; /* bytes fed one at a time when refused */
    } c[] = {
        {"one frame of exactly max", 1000, 0, true, 0},
        {"one frame of max + 1", 1001, 0, false, 8},
        {"fragments adding up to max", 600, 400, true, 0},
        {"fragments adding up to max + 1", 600, 401, false, 608 + PING_LEN + 8},
        {"first fragment of max + 1", 1001, 1, false, 8},
        {"empty first fragment, then max + 1", 0, 1001, false, 6 + PING_LEN + 8},
    };

    (void)state;
    memset(payload, 'm', sizeof(payload));
    for (size_t i = 0; i < LEN(c); i++) {
        struct wire w = {0};
        struct run run, bytewise;

        print_message("%s\n", c[i].name);
        wire_frame(&w, c[i].second == 0 && c[i].first != 0, WS_OP_TEXT, payload, c[i].first);
        wire_str(&w, true, WS_OP_PING, PING);
        if (c[i].second || c[i].first == 0)
            wire_frame(&w, true, WS_OP_CONT, payload, c[i].second);
        feed(w.p, w.len, 0, 1000, false, &run);
        feed(w.p, w.len, 1, 1000, false, &bytewise);
        assert_runs_equal(&bytewise, &run);
        if (c[i].ok) {
            size_t text = c[i].second ? 1 : 0; /* the ping comes between the fragments */

            assert_int_equal(run.n, 2);
            assert_int_equal(run.ev[1 - text].type, WS_EV_PING);
            assert_int_equal(run.ev[text].type, WS_EV_TEXT);
            assert_int_equal(run.ev[text].len, 1000);
        } else {
            assert_int_equal(run.ev[run.n - 1].type, WS_EV_ERROR);
            assert_int_equal(run.ev[run.n - 1].err, WS_ERR_TOO_BIG);
            assert_int_equal(run.ev[run.n - 1].code, 1009);
            assert_int_equal(bytewise.fed_at_error, c[i].need);
        }
        run_free(&run);
        run_free(&bytewise);
        free(w.p);
    }
}

static void max_message_zero_means_no_limit(void **state)
{
    size_t n = 300000;
    uint8_t *payload = calloc(n, 1);
    struct wire w = {0};
    struct run run;

    (void)state;
    wire_frame(&w, false, WS_OP_BINARY, payload, n / 2);
    wire_frame(&w, true, WS_OP_CONT, payload, n / 2);
    feed(w.p, w.len, 0, 0, false, &run);
    assert_int_equal(run.n, 1);
    assert_int_equal(run.ev[0].type, WS_EV_BINARY);
    assert_int_equal(run.ev[0].len, n);
    run_free(&run);
    free(w.p);
    free(payload);
}

/* ---- masking and builders ---- */

static void ws_mask_matches_bytewise_xor_at_every_alignment_and_offset(void **state)
{
    uint8_t buf[8 + 48], ref[48];

    (void)state;
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len <= 40; len++) {
            for (uint64_t offset = 0; offset < 6; offset++) {
                uint8_t *p = buf + align;

                for (size_t i = 0; i < len; i++)
                    p[i] = ref[i] = (uint8_t)(i * 31 + len);
                ws_mask(p, len, rfc_mask, offset);
                for (size_t i = 0; i < len; i++)
                    ref[i] ^= rfc_mask[(offset + i) % 4];
                assert_memory_equal(p, ref, len);
            }
        }
    }
}

/* The byte sequences of RFC 6455 §5.7. */
static void rfc6455_5_7_examples(void **state)
{
    static const uint8_t hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t hel[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    static const uint8_t lo[] = {0x80, 0x02, 0x6c, 0x6f};
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t bin256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t bin64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    uint8_t out[32];

    (void)state;
    assert_int_equal(ws_frame_header_build(out, true, WS_OP_TEXT, false, 5), 2);
    assert_memory_equal(out, hello_unmasked, 2);
    assert_int_equal(ws_frame_build_masked(out, sizeof(out), true, WS_OP_TEXT,
                                           (const uint8_t *)"Hello", 5, rfc_mask),
                     sizeof(hello_masked));
    assert_memory_equal(out, hello_masked, sizeof(hello_masked));
    assert_int_equal(ws_frame_build_masked(out, sizeof(out), true, WS_OP_PONG,
                                           (const uint8_t *)"Hello", 5, rfc_mask),
                     sizeof(pong_masked));
    assert_memory_equal(out, pong_masked, sizeof(pong_masked));
    assert_int_equal(ws_frame_header_build(out, false, WS_OP_TEXT, false, 3), 2);
    assert_memory_equal(out, hel, 2);
    assert_int_equal(ws_frame_header_build(out, true, WS_OP_CONT, false, 2), 2);
    assert_memory_equal(out, lo, 2);
    assert_int_equal(
        ws_frame_build_control(out, sizeof(out), WS_OP_PING, (const uint8_t *)"Hello", 5),
        sizeof(ping));
    assert_memory_equal(out, ping, sizeof(ping));
    assert_int_equal(ws_frame_header_build(out, true, WS_OP_BINARY, false, 256), 4);
    assert_memory_equal(out, bin256, sizeof(bin256));
    assert_int_equal(ws_frame_header_build(out, true, WS_OP_BINARY, false, 65536), 10);
    assert_memory_equal(out, bin64k, sizeof(bin64k));
    assert_int_equal(ws_frame_header_build(out, true, WS_OP_TEXT, true, 0), 2);
    assert_int_equal(out[0], 0xC1);
}

static void ws_frame_builders_check_their_limits(void **state)
{
    char reason[WS_CLOSE_REASON_MAX + 2];
    uint8_t out[WS_CONTROL_FRAME_MAX + 8], payload[WS_CONTROL_MAX + 1] = {0};

    (void)state;
    assert_int_equal(ws_frame_build_close(out, sizeof(out), 1000, "bye"), 7);
    assert_memory_equal(out,
                        "\x88\x05\x03\xE8"
                        "bye",
                        7);
    assert_int_equal(ws_frame_build_close(out, sizeof(out), 1009, NULL), 4);
    assert_memory_equal(out, "\x88\x02\x03\xF1", 4);
    assert_int_equal(ws_frame_build_close(out, sizeof(out), 0, NULL), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    assert_int_equal(ws_frame_build_close(out, sizeof(out), 0, "no code, no reason"), 0);
    assert_int_equal(ws_frame_build_close(out, 6, 1000, "bye"), 0);
    memset(reason, 'r', sizeof(reason) - 1);
    reason[WS_CLOSE_REASON_MAX + 1] = '\0';
    assert_int_equal(ws_frame_build_close(out, sizeof(out), 1000, reason), 0);
    reason[WS_CLOSE_REASON_MAX] = '\0';
    assert_int_equal(ws_frame_build_close(out, sizeof(out), 1000, reason), WS_CONTROL_FRAME_MAX);
    assert_int_equal(out[1], 125);

    assert_int_equal(ws_frame_build_control(out, sizeof(out), WS_OP_PONG, payload, 125),
                     WS_CONTROL_FRAME_MAX);
    assert_int_equal(out[0], 0x8A);
    assert_int_equal(ws_frame_build_control(out, sizeof(out), WS_OP_PONG, payload, 126), 0);
    assert_int_equal(ws_frame_build_control(out, 126, WS_OP_PING, payload, 125), 0);
    assert_int_equal(ws_frame_build_control(out, sizeof(out), WS_OP_TEXT, payload, 1), 0);
    assert_int_equal(ws_frame_build_control(out, sizeof(out), WS_OP_CLOSE, payload, 1), 0);
    assert_int_equal(ws_frame_build_control(out, 2, WS_OP_PING, NULL, 0), 2);
    assert_memory_equal(out, "\x89\x00", 2);

    assert_int_equal(
        ws_frame_build_masked(out, 10, true, WS_OP_TEXT, (const uint8_t *)"Hello", 5, rfc_mask), 0);
    assert_int_equal(ws_frame_build_masked(out, 5, true, WS_OP_TEXT, NULL, 0, rfc_mask), 0);
    assert_int_equal(ws_frame_build_masked(out, 6, true, WS_OP_TEXT, NULL, 0, rfc_mask), 6);
}

/* A close frame we build is one a peer's reader accepts, code and reason intact. */
static void ws_frame_build_close_round_trips_through_the_rules(void **state)
{
    static const uint16_t codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 4000};
    uint8_t out[WS_CONTROL_FRAME_MAX];
    struct wire w = {0};
    struct run run;

    (void)state;
    for (size_t i = 0; i < LEN(codes); i++) {
        size_t n = ws_frame_build_close(out, sizeof(out), codes[i], "r\xC3\xA9");

        assert_int_equal(n, 2 + 2 + 3);
        w.len = 0;
        wire_frame(&w, true, WS_OP_CLOSE, out + 2, n - 2);
        feed(w.p, w.len, 0, 0, false, &run);
        assert_events(&run, (const struct want[]){{WS_EV_CLOSE, codes[i], "r\xC3\xA9", 3}}, 1);
        run_free(&run);
    }
    free(w.p);
}

static void ws_err_maps_every_error_to_its_close_code_and_text(void **state)
{
    static const struct {
        enum ws_err err;
        uint16_t code;
        const char *text;
    } c[] = {
        {WS_ERR_NONE, 1000, "no error"},
        {WS_ERR_UNMASKED, 1002, "unmasked frame"},
        {WS_ERR_RSV_BITS, 1002, "rsv bits set"},
        {WS_ERR_RESERVED_OPCODE, 1002, "reserved opcode"},
        {WS_ERR_CONTROL_TOO_LONG, 1002, "control frame too long"},
        {WS_ERR_CONTROL_FRAGMENTED, 1002, "fragmented control frame"},
        {WS_ERR_LENGTH_TOP_BIT, 1002, "64-bit length with top bit set"},
        {WS_ERR_LENGTH_NOT_MINIMAL, 1002, "non-minimal length encoding"},
        {WS_ERR_CONT_WITHOUT_START, 1002, "continuation without start"},
        {WS_ERR_DATA_IN_FRAGMENTED, 1002, "new message inside a fragmented one"},
        {WS_ERR_CLOSE_ONE_BYTE, 1002, "close payload of 1 byte"},
        {WS_ERR_CLOSE_BAD_CODE, 1002, "bad close code"},
        {WS_ERR_CLOSE_BAD_UTF8, 1007, "invalid utf-8 in close reason"},
        {WS_ERR_BAD_UTF8, 1007, "invalid utf-8"},
        {WS_ERR_TOO_BIG, 1009, "message too big"},
        {WS_ERR_NO_MEMORY, 1011, "out of memory"},
    };

    (void)state;
    for (size_t i = 0; i < LEN(c); i++) {
        assert_int_equal(c[i].err, i); /* the table covers every value, in order */
        assert_int_equal(ws_err_close_code(c[i].err), c[i].code);
        assert_string_equal(ws_err_text(c[i].err), c[i].text);
        assert_true(strlen(c[i].text) <= WS_CLOSE_REASON_MAX);
    }
    assert_int_equal(ws_err_close_code((enum ws_err)LEN(c)), 1011);
    assert_string_equal(ws_err_text((enum ws_err)LEN(c)), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6455_5_1_unmasked_client_frame),
        cmocka_unit_test(rfc6455_5_2_rsv_bits_without_extension),
        cmocka_unit_test(rfc7692_6_rsv1_only_on_the_first_frame_of_a_message),
        cmocka_unit_test(rfc6455_5_2_reserved_opcodes),
        cmocka_unit_test(rfc6455_5_2_non_minimal_length),
        cmocka_unit_test(rfc6455_5_2_length_with_top_bit_set),
        cmocka_unit_test(rfc6455_5_5_control_frame_too_long),
        cmocka_unit_test(rfc6455_5_5_fragmented_control_frame),
        cmocka_unit_test(rfc6455_5_4_continuation_without_start),
        cmocka_unit_test(rfc6455_5_4_new_message_inside_a_fragmented_one),
        cmocka_unit_test(rfc6455_5_5_1_close_payload_of_one_byte),
        cmocka_unit_test(rfc6455_5_5_1_close_reason_must_be_utf8),
        cmocka_unit_test(rfc6455_8_1_text_must_be_utf8),
        cmocka_unit_test(rfc6455_8_1_invalid_utf8_fails_before_the_message_completes),
        cmocka_unit_test(rfc6455_7_4_close_code_classes_0_to_5000),
        cmocka_unit_test(rfc6455_5_5_1_close_frames_are_read),
        cmocka_unit_test(rfc6455_1_4_input_after_close_is_ignored),
        cmocka_unit_test(reader_error_is_sticky),
        cmocka_unit_test(rfc6455_5_2_length_encodings_at_every_boundary),
        cmocka_unit_test(rfc6455_5_5_control_frame_of_125_bytes_is_read),
        cmocka_unit_test(rfc6455_5_4_control_frames_interleave_with_fragments),
        cmocka_unit_test(rfc6455_5_4_empty_fragments_make_an_empty_message),
        cmocka_unit_test(rfc6455_5_6_utf8_split_at_every_byte_across_fragments),
        cmocka_unit_test(rfc7692_rsv1_is_reported_and_skips_the_utf8_check),
        cmocka_unit_test(reader_gives_the_same_events_however_the_input_is_cut),
        cmocka_unit_test(reader_hands_out_a_whole_frame_in_place),
        cmocka_unit_test(reader_gathers_split_frames_in_its_own_buffers),
        cmocka_unit_test(reader_keeps_a_small_buffer_and_frees_a_big_one),
        cmocka_unit_test(max_message_boundaries),
        cmocka_unit_test(max_message_zero_means_no_limit),
        cmocka_unit_test(ws_mask_matches_bytewise_xor_at_every_alignment_and_offset),
        cmocka_unit_test(rfc6455_5_7_examples),
        cmocka_unit_test(ws_frame_builders_check_their_limits),
        cmocka_unit_test(ws_frame_build_close_round_trips_through_the_rules),
        cmocka_unit_test(ws_err_maps_every_error_to_its_close_code_and_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
