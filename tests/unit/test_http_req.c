/*
 * Unit tests of backend/http_req.c: what a request reads as, the status each
 * limit and each refusal answers with, byte-at-a-time feeding, keep-alive,
 * header lookups, query arguments and cookies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/http_req.h"
#include "tests/unit/cases.h"
#include "tests/unit/http_feed.h"

/* --- outcome of a whole request fed at once --- */

static const struct outcome_case {
    const char *name;
    const char *req;
    enum http_req_status want;
    int status; /* for HTTP_REQ_ERROR */
} outcomes[] = {
    {"get_completes", "GET /ws?room=a HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_REQ_COMPLETE, 0},
    {"head_completes", "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_REQ_COMPLETE, 0},
    {"post_with_body_completes",
     "POST /admin/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", HTTP_REQ_COMPLETE, 0},
    {"http_1_0_completes", "GET / HTTP/1.0\r\n\r\n", HTTP_REQ_COMPLETE, 0},
    {"incomplete_head_needs_more", "GET / HTTP/1.1\r\nHost: x\r\n", HTTP_REQ_NEED_MORE, 0},
    {"incomplete_body_needs_more", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
     HTTP_REQ_NEED_MORE, 0},
    {"put_is_501", "PUT / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_REQ_ERROR, 501},
    {"delete_is_501", "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_REQ_ERROR, 501},
    {"connect_is_501", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_REQ_ERROR, 501},
    {"unknown_method_is_501", "FROB / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_REQ_ERROR, 501},
    {"http2_preface_is_501", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_REQ_ERROR, 501},
    {"gzip_before_chunked_is_501",
     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     HTTP_REQ_ERROR, 501},
    {"final_coding_not_chunked_is_400",
     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_REQ_ERROR, 400},
    {"content_length_and_chunked_is_400",
     "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     HTTP_REQ_ERROR, 400},
    {"content_length_over_limit_is_413", "POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n",
     HTTP_REQ_ERROR, 413},
    {"two_content_lengths_is_400",
     "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", HTTP_REQ_ERROR, 400},
    {"bad_version_is_400", "GET / HTTP/9.9\r\n\r\n", HTTP_REQ_ERROR, 400},
    {"space_in_header_name_is_400", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", HTTP_REQ_ERROR, 400},
    {"space_before_colon_is_400", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_REQ_ERROR, 400},
    {"chunked_twice_is_400",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", HTTP_REQ_ERROR,
     400},
    {"chunked_any_case_completes", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
     HTTP_REQ_COMPLETE, 0},
    {"missing_target_is_400", "GET HTTP/1.1\r\n\r\n", HTTP_REQ_ERROR, 400},
    {"tls_client_hello_is_refused", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HTTP_REQ_ERROR,
     501},
};

static void outcome(void **state)
{
    const struct outcome_case *c = *state;
    struct http_req *r = http_req_new(NULL);
    size_t used = 99;

    assert_non_null(r);
    assert_int_equal(http_req_feed(r, c->req, strlen(c->req), &used), c->want);
    if (c->want == HTTP_REQ_ERROR)
        assert_int_equal(http_req_error_status(http_req_error(r)), c->status);
    else
        assert_int_equal(used, strlen(c->req));
    http_req_free(r);
}

/* --- what a request reads as --- */

static const char sample[] = "GET /ws?room=T42&access_token=abc HTTP/1.1\r\n"
                             "Host: lb.example\r\n"
                             "Upgrade: websocket\r\n"
                             "connection: keep-alive\r\n"
                             "Sec-WebSocket-Protocol: roomrelay.v1\r\n"
                             "X-Spaces: \t  padded value \t \r\n"
                             "X-Empty:\r\n"
                             "CONNECTION: Upgrade\r\n"
                             "Sec-WebSocket-Protocol: bearer.tok\r\n"
                             "\r\n";

static void check_sample(struct http_req *r)
{
    size_t len;
    const char *v;

    assert_int_equal(http_req_method(r), HTTP_M_GET);
    assert_int_equal(http_req_version(r), 11);
    assert_string_equal(http_req_url(r, &len), "/ws?room=T42&access_token=abc");
    assert_int_equal(len, 29);
    v = http_req_path(r, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "/ws", 3);
    assert_string_equal(http_req_header(r, "host", &len), "lb.example");
    assert_int_equal(len, 10);
    assert_string_equal(http_req_header(r, "UPGRADE", &len), "websocket");
    assert_string_equal(http_req_header(r, "Connection", &len), "keep-alive, Upgrade");
    assert_int_equal(len, 19);
    assert_string_equal(http_req_header(r, "sec-websocket-protocol", &len),
                        "roomrelay.v1, bearer.tok");
    assert_string_equal(http_req_header(r, "x-spaces", &len), "padded value");
    assert_int_equal(len, 12);
    assert_string_equal(http_req_header(r, "x-empty", &len), "");
    assert_int_equal(len, 0);
    assert_null(http_req_header(r, "origin", &len));
    assert_int_equal(len, 0);
    assert_null(http_req_header(r, "host2", &len));
}

static void request_fields_read_back(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    size_t used;

    assert_int_equal(http_req_feed(r, sample, sizeof(sample) - 1, &used), HTTP_REQ_COMPLETE);
    assert_int_equal(used, sizeof(sample) - 1);
    check_sample(r);
    http_req_free(r);
}

static void request_fed_one_byte_at_a_time_reads_the_same(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    size_t used;

    for (size_t i = 0; i + 1 < sizeof(sample) - 1; i++) {
        assert_int_equal(http_req_feed(r, sample + i, 1, &used), HTTP_REQ_NEED_MORE);
        assert_int_equal(used, 1);
    }
    assert_int_equal(http_req_feed(r, sample + sizeof(sample) - 2, 1, &used), HTTP_REQ_COMPLETE);
    assert_int_equal(used, 1);
    check_sample(r);
    http_req_free(r);
}

static void chunked_body_fed_one_byte_at_a_time_is_dechunked(void **state)
{
    (void)state;
    static const char req[] = "POST /admin/drain HTTP/1.1\r\nHost: x\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    struct http_req *r = http_req_new(NULL);
    enum http_req_status st = HTTP_REQ_NEED_MORE;
    size_t used, len;

    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        assert_int_equal(st, HTTP_REQ_NEED_MORE);
        st = http_req_feed(r, req + i, 1, &used);
        assert_int_equal(used, 1);
    }
    assert_int_equal(st, HTTP_REQ_COMPLETE);
    assert_int_equal(http_req_method(r), HTTP_M_POST);
    assert_string_equal(http_req_body(r, &len), "abcde");
    assert_int_equal(len, 5);
    http_req_free(r);
}

static void content_length_body_is_kept(void **state)
{
    (void)state;
    static const char req[] = "POST /admin/drain HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    struct http_req *r = http_req_new(NULL);
    size_t used, len;

    assert_int_equal(http_req_feed(r, req, sizeof(req) - 1, &used), HTTP_REQ_COMPLETE);
    assert_string_equal(http_req_body(r, &len), "{\"a\":1}");
    assert_int_equal(len, 7);
    http_req_free(r);
}

static void bytes_after_the_request_are_not_consumed(void **state)
{
    (void)state;
    static const char req[] = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n\x81\x85XYZW";
    struct http_req *r = http_req_new(NULL);
    size_t used;

    assert_int_equal(http_req_feed(r, req, sizeof(req) - 1, &used), HTTP_REQ_COMPLETE);
    assert_int_equal(used, sizeof(req) - 1 - 6);
    assert_int_equal(http_req_feed(r, req + used, 6, &used), HTTP_REQ_COMPLETE);
    assert_int_equal(used, 0);
    http_req_free(r);
}

static void keep_alive_reads_two_pipelined_requests_after_reset(void **state)
{
    (void)state;
    static const char two[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /metrics HTTP/1.1\r\nHost: y\r\n\r\n";
    struct http_req *r = http_req_new(NULL);
    size_t used, used2, len;

    assert_int_equal(http_req_feed(r, two, sizeof(two) - 1, &used), HTTP_REQ_COMPLETE);
    assert_string_equal(http_req_url(r, &len), "/health");
    assert_true(http_req_keep_alive(r));
    http_req_reset(r);
    assert_int_equal(http_req_feed(r, two + used, sizeof(two) - 1 - used, &used2),
                     HTTP_REQ_COMPLETE);
    assert_int_equal(used + used2, sizeof(two) - 1);
    assert_string_equal(http_req_url(r, &len), "/metrics");
    assert_string_equal(http_req_header(r, "host", &len), "y");
    http_req_free(r);
}

static const struct keepalive_case {
    const char *name;
    const char *req;
    bool want;
} keepalives[] = {
    {"http_1_1_keeps_alive", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
    {"connection_close_does_not_keep_alive", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
    {"http_1_0_does_not_keep_alive", "GET / HTTP/1.0\r\n\r\n", false},
    {"http_1_0_keep_alive_keeps_alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
    {"upgrade_does_not_keep_alive",
     "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
};

static void keepalive(void **state)
{
    const struct keepalive_case *c = *state;
    struct http_req *r = http_req_new(NULL);
    size_t used;

    assert_int_equal(http_req_feed(r, c->req, strlen(c->req), &used), HTTP_REQ_COMPLETE);
    assert_int_equal(http_req_keep_alive(r), c->want);
    http_req_free(r);
}

/* --- limits --- */

static char *request_with(size_t url_len, size_t nheaders, size_t value_len)
{
    size_t cap = url_len + nheaders * (value_len + 16) + 64;
    char *s = malloc(cap), *p = s;

    p += sprintf(p, "GET /");
    memset(p, 'u', url_len - 1);
    p += url_len - 1;
    p += sprintf(p, " HTTP/1.1\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        p += sprintf(p, "X-%03zu: ", i);
        memset(p, 'v', value_len);
        p += value_len;
        p += sprintf(p, "\r\n");
    }
    sprintf(p, "\r\n");
    return s;
}

static void url_of_2048_bytes_is_accepted(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(2048, 0, 0);
    size_t len;

    assert_int_equal(feed_str(r, s), HTTP_REQ_COMPLETE);
    http_req_url(r, &len);
    assert_int_equal(len, 2048);
    free(s);
    http_req_free(r);
}

static void url_of_2049_bytes_is_414(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(2049, 0, 0);

    assert_int_equal(feed_str(r, s), HTTP_REQ_ERROR);
    assert_int_equal(http_req_error(r), HTTP_REQ_ERR_URL_TOO_LONG);
    assert_int_equal(http_req_error_status(http_req_error(r)), 414);
    free(s);
    http_req_free(r);
}

static void sixty_four_headers_are_accepted(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(1, 64, 4);
    size_t len;

    assert_int_equal(feed_str(r, s), HTTP_REQ_COMPLETE);
    assert_string_equal(http_req_header(r, "x-063", &len), "vvvv");
    free(s);
    http_req_free(r);
}

static void sixty_five_headers_are_431(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(1, 65, 4);

    assert_int_equal(feed_str(r, s), HTTP_REQ_ERROR);
    assert_int_equal(http_req_error(r), HTTP_REQ_ERR_TOO_MANY_HEADERS);
    assert_int_equal(http_req_error_status(http_req_error(r)), 431);
    free(s);
    http_req_free(r);
}

/* "GET / HTTP/1.1\r\n" is 16 bytes, "X-000: " 7, the final CRLF 2. */
static void head_of_exactly_8192_bytes_is_accepted(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(1, 1, 8192 - 16 - 7 - 2 - 2);

    assert_int_equal(strlen(s), 8192);
    assert_int_equal(feed_str(r, s), HTTP_REQ_COMPLETE);
    free(s);
    http_req_free(r);
}

static void head_of_8193_bytes_is_431(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(1, 1, 8192 - 16 - 7 - 2 - 2 + 1);

    assert_int_equal(feed_str(r, s), HTTP_REQ_ERROR);
    assert_int_equal(http_req_error(r), HTTP_REQ_ERR_HEAD_TOO_LARGE);
    assert_int_equal(http_req_error_status(http_req_error(r)), 431);
    free(s);
    http_req_free(r);
}

static void head_limit_counts_bytes_fed_one_at_a_time(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = request_with(1, 1, 9000);
    enum http_req_status st = HTTP_REQ_NEED_MORE;
    size_t i = 0, used;

    while (st == HTTP_REQ_NEED_MORE)
        st = http_req_feed(r, s + i++, 1, &used);
    assert_int_equal(st, HTTP_REQ_ERROR);
    assert_int_equal(i, 8193);
    assert_int_equal(http_req_error_status(http_req_error(r)), 431);
    free(s);
    http_req_free(r);
}

/* Padding that llhttp drops before a value still counts on the wire. */
static void whitespace_padding_counts_against_the_head_limit(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = malloc(9000);
    int n = sprintf(s, "GET / HTTP/1.1\r\nX-Pad:");

    memset(s + n, ' ', 8500);
    memcpy(s + n + 8500, "x\r\n\r\n", sizeof("x\r\n\r\n"));
    assert_int_equal(feed_str(r, s), HTTP_REQ_ERROR);
    assert_int_equal(http_req_error_status(http_req_error(r)), 431);
    free(s);
    http_req_free(r);
}

/* Joined copies of repeated headers are stored too, and count. */
static void repeated_headers_whose_join_overflows_are_431(void **state)
{
    (void)state;
    struct http_limits lim = {.max_head = 256, .max_headers = 8, .max_url = 64, .max_body = 0};
    struct http_req *r = http_req_new(&lim);
    char s[512], v[61];
    int n = sprintf(s, "GET / HTTP/1.1\r\n");

    memset(v, 'v', 60);
    v[60] = '\0';
    for (int i = 0; i < 3; i++)
        n += sprintf(s + n, "X-A: %s\r\n", v);
    sprintf(s + n, "\r\n");
    assert_true(strlen(s) <= 256);
    assert_int_equal(feed_str(r, s), HTTP_REQ_ERROR);
    assert_int_equal(http_req_error(r), HTTP_REQ_ERR_HEAD_TOO_LARGE);
    http_req_free(r);
}

static void body_of_4096_bytes_is_accepted_chunked(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = malloc(8192);
    int n = sprintf(s, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n");
    size_t len;

    memset(s + n, 'b', 4096);
    memcpy(s + n + 4096, "\r\n0\r\n\r\n", sizeof("\r\n0\r\n\r\n"));
    assert_int_equal(feed_str(r, s), HTTP_REQ_COMPLETE);
    http_req_body(r, &len);
    assert_int_equal(len, 4096);
    free(s);
    http_req_free(r);
}

static void chunked_body_over_4096_bytes_is_413(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    char *s = malloc(8192);
    int n = sprintf(s, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n");

    memset(s + n, 'b', 4097);
    memcpy(s + n + 4097, "\r\n0\r\n\r\n", sizeof("\r\n0\r\n\r\n"));
    assert_int_equal(feed_str(r, s), HTTP_REQ_ERROR);
    assert_int_equal(http_req_error(r), HTTP_REQ_ERR_BODY_TOO_LARGE);
    assert_int_equal(http_req_error_status(http_req_error(r)), 413);
    free(s);
    http_req_free(r);
}

static void error_is_sticky_until_reset(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    size_t used = 99;

    assert_int_equal(feed_str(r, "PUT / HTTP/1.1\r\n\r\n"), HTTP_REQ_ERROR);
    assert_int_equal(http_req_feed(r, "GET / HTTP/1.1\r\n\r\n", 18, &used), HTTP_REQ_ERROR);
    assert_int_equal(used, 0);
    http_req_reset(r);
    assert_int_equal(feed_str(r, "GET / HTTP/1.1\r\n\r\n"), HTTP_REQ_COMPLETE);
    assert_int_equal(http_req_error(r), HTTP_REQ_ERR_NONE);
    http_req_free(r);
}

/* --- query arguments --- */

static const struct qarg_case {
    const char *name;
    const char *query, *key;
    enum http_qarg want;
    const char *value;
} qargs[] = {
    {"qarg_plain", "room=T42", "room", HTTP_QARG_FOUND, "T42"},
    {"qarg_second_of_several", "a=1&room=T42&b=2", "room", HTTP_QARG_FOUND, "T42"},
    {"qarg_first_occurrence_wins", "room=a&room=b", "room", HTTP_QARG_FOUND, "a"},
    {"qarg_absent", "rooms=a&xroom=b", "room", HTTP_QARG_ABSENT, ""},
    {"qarg_empty_query_is_absent", "", "room", HTTP_QARG_ABSENT, ""},
    {"qarg_without_equals_is_empty", "a&room&b=1", "room", HTTP_QARG_FOUND, ""},
    {"qarg_with_empty_value", "room=&b=1", "room", HTTP_QARG_FOUND, ""},
    {"qarg_empty_pairs_skipped", "&&room=x&&", "room", HTTP_QARG_FOUND, "x"},
    {"qarg_value_keeps_later_equals", "t=a=b", "t", HTTP_QARG_FOUND, "a=b"},
    {"qarg_percent_decoded", "room=a%3Ab%2fc", "room", HTTP_QARG_FOUND, "a:b/c"},
    {"qarg_percent_upper_and_lower_hex", "v=%4a%4A", "v", HTTP_QARG_FOUND, "JJ"},
    {"qarg_plus_is_space", "v=a+b", "v", HTTP_QARG_FOUND, "a b"},
    {"qarg_encoded_plus_is_plus", "v=a%2Bb", "v", HTTP_QARG_FOUND, "a+b"},
    {"qarg_encoded_ampersand_stays_in_value", "v=a%26room%3Dx&room=y", "room", HTTP_QARG_FOUND,
     "y"},
    {"qarg_key_is_decoded", "r%6Fom=x", "room", HTTP_QARG_FOUND, "x"},
    {"qarg_key_is_case_sensitive", "Room=x", "room", HTTP_QARG_ABSENT, ""},
    {"qarg_truncated_escape_is_malformed", "room=a%4", "room", HTTP_QARG_MALFORMED, ""},
    {"qarg_non_hex_escape_is_malformed", "room=%zz", "room", HTTP_QARG_MALFORMED, ""},
    {"qarg_lone_percent_is_malformed", "room=%", "room", HTTP_QARG_MALFORMED, ""},
    {"qarg_bad_escape_in_other_key_is_ignored", "%zz=1&room=x", "room", HTTP_QARG_FOUND, "x"},
    {"qarg_value_filling_the_buffer_is_too_long", "v=0123456789abcdef", "v", HTTP_QARG_TOO_LONG,
     ""},
    {"qarg_value_one_under_the_buffer_fits", "v=0123456789abcde", "v", HTTP_QARG_FOUND,
     "0123456789abcde"},
};

static void qarg(void **state)
{
    const struct qarg_case *c = *state;
    char out[16];
    size_t len = 99;

    assert_int_equal(http_query_arg(c->query, strlen(c->query), c->key, out, sizeof(out), &len),
                     c->want);
    if (c->want == HTTP_QARG_FOUND) {
        assert_int_equal(len, strlen(c->value));
        assert_string_equal(out, c->value);
    } else {
        assert_int_equal(len, 0);
    }
}

static void query_arg_of_request_decodes_into_its_arena(void **state)
{
    (void)state;
    static const char req[] = "GET /ws?room=T%34%32&access_token=a.b%2Ec HTTP/1.1\r\n\r\n";
    struct http_req *r = http_req_new(NULL);
    const char *room, *tok, *none = "x";
    size_t used, rlen, tlen, nlen = 9;

    assert_int_equal(http_req_feed(r, req, sizeof(req) - 1, &used), HTTP_REQ_COMPLETE);
    assert_int_equal(http_req_query_arg(r, "room", &room, &rlen), HTTP_QARG_FOUND);
    assert_int_equal(http_req_query_arg(r, "access_token", &tok, &tlen), HTTP_QARG_FOUND);
    assert_int_equal(http_req_query_arg(r, "since", &none, &nlen), HTTP_QARG_ABSENT);
    assert_string_equal(room, "T42");
    assert_int_equal(rlen, 3);
    assert_string_equal(tok, "a.b.c");
    assert_int_equal(tlen, 5);
    assert_null(none);
    assert_int_equal(nlen, 0);
    http_req_free(r);
}

static void query_arg_of_request_without_query_is_absent(void **state)
{
    (void)state;
    struct http_req *r = http_req_new(NULL);
    const char *v;
    size_t len;

    assert_int_equal(feed_str(r, "GET /ws HTTP/1.1\r\n\r\n"), HTTP_REQ_COMPLETE);
    assert_int_equal(http_req_query_arg(r, "room", &v, &len), HTTP_QARG_ABSENT);
    http_req_free(r);
}

/* --- cookies --- */

static const struct cookie_case {
    const char *name;
    const char *hdr, *key;
    const char *want; /* NULL: not found */
} cookies[] = {
    {"cookie_only_pair", "rr_token=abc", "rr_token", "abc"},
    {"cookie_among_others", "a=1; rr_token=abc; b=2", "rr_token", "abc"},
    {"cookie_last_without_space", "a=1;rr_token=abc", "rr_token", "abc"},
    {"cookie_first_match_wins", "rr_token=one; rr_token=two", "rr_token", "one"},
    {"cookie_from_joined_headers", "a=1, rr_token=abc", "rr_token", "abc"},
    {"cookie_quotes_kept_for_caller", "rr_token=\"abc\"", "rr_token", "\"abc\""},
    {"cookie_empty_value", "rr_token=; a=1", "rr_token", ""},
    {"cookie_spaces_trimmed", "  rr_token = abc ;a=1", "rr_token", "abc"},
    {"cookie_name_is_case_sensitive", "RR_TOKEN=abc", "rr_token", NULL},
    {"cookie_suffix_name_does_not_match", "xrr_token=abc", "rr_token", NULL},
    {"cookie_prefix_name_does_not_match", "rr_token2=abc", "rr_token", NULL},
    {"cookie_pair_without_equals_skipped", "rr_token; rr_token=x", "rr_token", "x"},
    {"cookie_value_keeps_equals", "rr_token=a=b", "rr_token", "a=b"},
    {"cookie_absent_in_empty_header", "", "rr_token", NULL},
};

static void cookie(void **state)
{
    const struct cookie_case *c = *state;
    const char *v = "unset";
    size_t len = 99;

    if (!c->want) {
        assert_false(http_cookie(c->hdr, strlen(c->hdr), c->key, &v, &len));
        assert_null(v);
        assert_int_equal(len, 0);
        return;
    }
    assert_true(http_cookie(c->hdr, strlen(c->hdr), c->key, &v, &len));
    assert_int_equal(len, strlen(c->want));
    assert_memory_equal(v, c->want, len);
}

/* --- error answers --- */

static void error_response_is_exact(void **state)
{
    (void)state;
    char buf[256];
    size_t n = http_error_response(buf, sizeof(buf), 431, NULL,
                                   http_req_error_reason(HTTP_REQ_ERR_HEAD_TOO_LARGE));
    static const char want[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 25\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "header section too large\n";

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
}

static void error_response_carries_extra_headers(void **state)
{
    (void)state;
    char buf[256];
    size_t n = http_error_response(buf, sizeof(buf), 405, "Allow: GET\r\n", "no");
    static const char want[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 3\r\n"
                               "Connection: close\r\n"
                               "Allow: GET\r\n"
                               "\r\n"
                               "no\n";

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
}

static void error_response_that_does_not_fit_is_0(void **state)
{
    (void)state;
    char buf[40];
    assert_int_equal(http_error_response(buf, sizeof(buf), 400, NULL, "bad"), 0);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(request_fields_read_back),
        cmocka_unit_test(request_fed_one_byte_at_a_time_reads_the_same),
        cmocka_unit_test(chunked_body_fed_one_byte_at_a_time_is_dechunked),
        cmocka_unit_test(content_length_body_is_kept),
        cmocka_unit_test(bytes_after_the_request_are_not_consumed),
        cmocka_unit_test(keep_alive_reads_two_pipelined_requests_after_reset),
        cmocka_unit_test(url_of_2048_bytes_is_accepted),
        cmocka_unit_test(url_of_2049_bytes_is_414),
        cmocka_unit_test(sixty_four_headers_are_accepted),
        cmocka_unit_test(sixty_five_headers_are_431),
        cmocka_unit_test(head_of_exactly_8192_bytes_is_accepted),
        cmocka_unit_test(head_of_8193_bytes_is_431),
        cmocka_unit_test(head_limit_counts_bytes_fed_one_at_a_time),
        cmocka_unit_test(whitespace_padding_counts_against_the_head_limit),
        cmocka_unit_test(repeated_headers_whose_join_overflows_are_431),
        cmocka_unit_test(body_of_4096_bytes_is_accepted_chunked),
        cmocka_unit_test(chunked_body_over_4096_bytes_is_413),
        cmocka_unit_test(error_is_sticky_until_reset),
        cmocka_unit_test(query_arg_of_request_decodes_into_its_arena),
        cmocka_unit_test(query_arg_of_request_without_query_is_absent),
        cmocka_unit_test(error_response_is_exact),
        cmocka_unit_test(error_response_carries_extra_headers),
        cmocka_unit_test(error_response_that_does_not_fit_is_0),
    };
    struct CMUnitTest
        tests[COUNT(fixed) + COUNT(outcomes) + COUNT(keepalives) + COUNT(qargs) + COUNT(cookies)];
    size_t n = 0;

    ADD_CASES(tests, &n, outcomes, outcome);
    ADD_CASES(tests, &n, keepalives, keepalive);
    ADD_CASES(tests, &n, qargs, qarg);
    ADD_CASES(tests, &n, cookies, cookie);
    for (size_t i = 0; i < COUNT(fixed); i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("http_req", tests, n, NULL, NULL);
}
