/*
 * Unit tests of backend/proxy_v2.c: PROXY protocol v2 (IPv4, IPv6, LOCAL,
 * fallback families, TLVs, truncation, bad signature/version/family, length
 * bound) and v1 lines (TCP4, TCP6, UNKNOWN, the 107-byte bound, strict
 * syntax), each checked for the result, the header length and the addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "backend/proxy_v2.h"

#define SIG "\r\n\r\n\0\r\nQUIT\n"
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1
#define V4_ADDRS "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x6f\x00\xde" /* 1.2.3.4:111 5.6.7.8:222 */
#define V6_ADDRS                                                                                   \
    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" /* 2001:db8::1 */                                 \
    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x02"         /* ::2 */                                         \
    "\xc3\x50\x01\xbb"                           /* 50000, 443 */

static const struct pp_case {
    const char *name;
    const uint8_t *buf;
    size_t len;
    enum pp2_result want;
    size_t consumed;
    int version;
    bool local;
    const char *src, *dst; /* NULL: AF_UNSPEC */
} cases[] = {
    {"v2_tcp4_proxy", BYTES(SIG "\x21\x11\x00\x0c" V4_ADDRS "GET"), PP2_OK, 28, 2, false,
     "1.2.3.4:111", "5.6.7.8:222"},
    {"v2_tcp6_proxy", BYTES(SIG "\x21\x21\x00\x24" V6_ADDRS), PP2_OK, 52, 2, false,
     "[2001:db8::1]:50000", "[::2]:443"},
    {"v2_local_without_addresses", BYTES(SIG "\x20\x00\x00\x00GET"), PP2_OK, 16, 2, true, NULL,
     NULL},
    {"v2_local_addresses_are_skipped_and_ignored", BYTES(SIG "\x20\x11\x00\x0c" V4_ADDRS), PP2_OK,
     28, 2, true, NULL, NULL},
    {"v2_local_ignores_even_an_invalid_family", BYTES(SIG "\x20\xff\x00\x00"), PP2_OK, 16, 2, true,
     NULL, NULL},
    {"v2_proxy_unspec_uses_socket_addresses", BYTES(SIG "\x21\x00\x00\x00"), PP2_OK, 16, 2, false,
     NULL, NULL},
    {"v2_udp4_falls_back_to_unspec", BYTES(SIG "\x21\x12\x00\x0c" V4_ADDRS), PP2_OK, 28, 2, false,
     NULL, NULL},
    {"v2_tlvs_after_addresses_are_skipped",
     BYTES(SIG "\x21\x11\x00\x13" V4_ADDRS "\x04\x00\x04noop"
               "GET"),
     PP2_OK, 35, 2, false, "1.2.3.4:111", "5.6.7.8:222"},
    {"v2_tcp4_address_block_too_short_is_error", BYTES(SIG "\x21\x11\x00\x0b" V4_ADDRS), PP2_ERROR,
     0, 0, false, NULL, NULL},
    {"v2_tcp6_address_block_too_short_is_error", BYTES(SIG "\x21\x21\x00\x23" V6_ADDRS), PP2_ERROR,
     0, 0, false, NULL, NULL},
    {"v2_version_1_nibble_is_error", BYTES(SIG "\x11\x11\x00\x0c" V4_ADDRS), PP2_ERROR, 0, 0, false,
     NULL, NULL},
    {"v2_version_3_nibble_is_error", BYTES(SIG "\x31\x11\x00\x0c" V4_ADDRS), PP2_ERROR, 0, 0, false,
     NULL, NULL},
    {"v2_command_2_is_error", BYTES(SIG "\x22\x11\x00\x0c" V4_ADDRS), PP2_ERROR, 0, 0, false, NULL,
     NULL},
    {"v2_family_4_is_error", BYTES(SIG "\x21\x41\x00\x0c" V4_ADDRS), PP2_ERROR, 0, 0, false, NULL,
     NULL},
    {"v2_protocol_3_is_error", BYTES(SIG "\x21\x13\x00\x0c" V4_ADDRS), PP2_ERROR, 0, 0, false, NULL,
     NULL},
    {"v2_length_over_bound_is_error_at_once", BYTES(SIG "\x21\x11\x04\x01"), PP2_ERROR, 0, 0, false,
     NULL, NULL},
    {"v2_length_65535_is_error_at_once", BYTES(SIG "\x21\x11\xff\xff"), PP2_ERROR, 0, 0, false,
     NULL, NULL},
    {"v2_header_without_addresses_yet_needs_more", BYTES(SIG "\x21\x11\x00\x0c\x01\x02"),
     PP2_NEED_MORE, 0, 0, false, NULL, NULL},
    {"v2_signature_only_needs_more", BYTES(SIG), PP2_NEED_MORE, 0, 0, false, NULL, NULL},
    {"nothing_yet_needs_more", (const uint8_t *)"", 0, PP2_NEED_MORE, 0, 0, false, NULL, NULL},
    {"v2_signature_with_wrong_byte_is_not_proxy", BYTES("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c"),
     PP2_NOT_PROXY, 0, 0, false, NULL, NULL},
    {"http_request_is_not_proxy", BYTES("GET / HTTP/1.1\r\n"), PP2_NOT_PROXY, 0, 0, false, NULL,
     NULL},
    {"http_after_empty_line_is_not_proxy", BYTES("\r\nGET / HTTP/1.1\r\n"), PP2_NOT_PROXY, 0, 0,
     false, NULL, NULL},
    {"propfind_is_not_proxy", BYTES("PROPFIND / HTTP/1.1\r\n"), PP2_NOT_PROXY, 0, 0, false, NULL,
     NULL},
    {"tls_hello_is_not_proxy", BYTES("\x16\x03\x01\x00\xa5"), PP2_NOT_PROXY, 0, 0, false, NULL,
     NULL},

    {"v1_tcp4", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\nGET / HTTP/1.1\r\n"), PP2_OK, 36, 1,
     false, "1.2.3.4:111", "5.6.7.8:222"},
    {"v1_tcp4_extremes", BYTES("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n"), PP2_OK, 44, 1,
     false, "255.255.255.255:65535", "0.0.0.0:0"},
    {"v1_tcp6", BYTES("PROXY TCP6 2001:db8::1 ::2 50000 443\r\n"), PP2_OK, 38, 1, false,
     "[2001:db8::1]:50000", "[::2]:443"},
    {"v1_unknown_short_form", BYTES("PROXY UNKNOWN\r\nGET"), PP2_OK, 15, 1, false, NULL, NULL},
    {"v1_unknown_rest_of_line_ignored", BYTES("PROXY UNKNOWN what ever 1 2\r\n"), PP2_OK, 29, 1,
     false, NULL, NULL},
    {"v1_prefix_needs_more", BYTES("PROX"), PP2_NEED_MORE, 0, 0, false, NULL, NULL},
    {"v1_partial_line_needs_more", BYTES("PROXY TCP4 1.2.3.4 5.6"), PP2_NEED_MORE, 0, 0, false,
     NULL, NULL},
    {"v1_line_ending_in_cr_needs_more", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r"),
     PP2_NEED_MORE, 0, 0, false, NULL, NULL},
    {"v1_lone_lf_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\nGET"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_cr_without_lf_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\rGET"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_double_space_is_error", BYTES("PROXY TCP4  1.2.3.4 5.6.7.8 111 222\r\n"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_trailing_space_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111 222 \r\n"), PP2_ERROR, 0,
     0, false, NULL, NULL},
    {"v1_missing_port_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111\r\n"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_extra_field_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 111 222 3\r\n"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_port_with_leading_zero_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 0111 222\r\n"),
     PP2_ERROR, 0, 0, false, NULL, NULL},
    {"v1_port_65536_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 65536 222\r\n"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_port_with_sign_is_error", BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 +111 222\r\n"), PP2_ERROR, 0,
     0, false, NULL, NULL},
    {"v1_ipv4_with_leading_zero_is_error", BYTES("PROXY TCP4 01.2.3.4 5.6.7.8 111 222\r\n"),
     PP2_ERROR, 0, 0, false, NULL, NULL},
    {"v1_ipv4_with_three_parts_is_error", BYTES("PROXY TCP4 1.2.3 5.6.7.8 111 222\r\n"), PP2_ERROR,
     0, 0, false, NULL, NULL},
    {"v1_ipv6_under_tcp4_is_error", BYTES("PROXY TCP4 ::1 5.6.7.8 111 222\r\n"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_ipv4_under_tcp6_is_error", BYTES("PROXY TCP6 1.2.3.4 ::1 111 222\r\n"), PP2_ERROR, 0, 0,
     false, NULL, NULL},
    {"v1_unknown_protocol_is_error", BYTES("PROXY UDP4 1.2.3.4 5.6.7.8 111 222\r\n"), PP2_ERROR, 0,
     0, false, NULL, NULL},
    {"v1_lowercase_protocol_is_error", BYTES("PROXY tcp4 1.2.3.4 5.6.7.8 111 222\r\n"), PP2_ERROR,
     0, 0, false, NULL, NULL},
    {"v1_nothing_after_proxy_is_error", BYTES("PROXY \r\n"), PP2_ERROR, 0, 0, false, NULL, NULL},
    {"v1_lowercase_proxy_is_not_proxy", BYTES("proxy TCP4 1.2.3.4 5.6.7.8 111 222\r\n"),
     PP2_NOT_PROXY, 0, 0, false, NULL, NULL},
};

static void format(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        snprintf(out, cap, "family %d", ss->ss_family);
    }
}

static void check_addr(const struct sockaddr_storage *ss, const char *want)
{
    char got[64];

    if (!want) {
        assert_int_equal(ss->ss_family, AF_UNSPEC);
        return;
    }
    format(ss, got, sizeof(got));
    assert_string_equal(got, want);
}

static void parse_case(void **state)
{
    const struct pp_case *c = *state;
    struct pp2_info info;

    assert_int_equal(pp2_parse(c->buf, c->len, &info), c->want);
    if (c->want != PP2_OK)
        return;
    assert_int_equal(info.consumed, c->consumed);
    assert_int_equal(info.version, c->version);
    assert_int_equal(info.local, c->local);
    check_addr(&info.src, c->src);
    check_addr(&info.dst, c->dst);
}

/* A header split anywhere (a short first read) is never mistaken for anything. */
static void every_truncation_of_a_valid_header_needs_more(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *buf;
        size_t len;
    } whole[] = {
        {BYTES(SIG "\x21\x11\x00\x0c" V4_ADDRS)},
        {BYTES(SIG "\x21\x21\x00\x24" V6_ADDRS)},
        {BYTES(SIG "\x20\x00\x00\x00")},
        {BYTES("PROXY TCP6 2001:db8::1 ::2 50000 443\r\n")},
        {BYTES("PROXY UNKNOWN\r\n")},
    };
    struct pp2_info info;

    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
        for (size_t n = 0; n < whole[i].len; n++)
            assert_int_equal(pp2_parse(whole[i].buf, n, &info), PP2_NEED_MORE);
        assert_int_equal(pp2_parse(whole[i].buf, whole[i].len, &info), PP2_OK);
        assert_int_equal(info.consumed, whole[i].len);
    }
}

static void v2_payload_of_exactly_the_bound_is_accepted(void **state)
{
    (void)state;
    static const uint8_t head[] = SIG "\x21\x11\x04\x00" V4_ADDRS;
    static uint8_t buf[PP2_MAX_HEADER + 3];
    struct pp2_info info;

    memcpy(buf, head, sizeof(head) - 1);
    assert_int_equal(pp2_parse(buf, PP2_MAX_HEADER - 1, &info), PP2_NEED_MORE);
    assert_int_equal(pp2_parse(buf, sizeof(buf), &info), PP2_OK);
    assert_int_equal(info.consumed, 16 + 1024);
    check_addr(&info.src, "1.2.3.4:111");
}

static void v2_unix_stream_falls_back_to_unspec(void **state)
{
    (void)state;
    static const uint8_t head[] = SIG "\x21\x31\x00\xd8/run/client.sock";
    uint8_t buf[16 + 216] = {0};
    struct pp2_info info;

    memcpy(buf, head, sizeof(head));
    assert_int_equal(pp2_parse(buf, sizeof(buf), &info), PP2_OK);
    assert_int_equal(info.consumed, 232);
    assert_false(info.local);
    check_addr(&info.src, NULL);
}

/* "PROXY UNKNOWN " with two 39-character addresses and two 5-digit ports. */
static void v1_line_of_107_bytes(char *line, size_t pad)
{
    static const char addr[] = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    sprintf(line, "PROXY UNKNOWN %s %s 65535 %.*s65535\r\n", addr, addr, (int)pad, "000000000000");
}

static void v1_line_of_107_bytes_is_accepted(void **state)
{
    (void)state;
    char line[128];
    struct pp2_info info;

    v1_line_of_107_bytes(line, 0);
    assert_int_equal(strlen(line), PP1_MAX_LINE);
    assert_int_equal(pp2_parse((const uint8_t *)line, strlen(line), &info), PP2_OK);
    assert_int_equal(info.consumed, PP1_MAX_LINE);
}

static void v1_line_of_108_bytes_is_error(void **state)
{
    (void)state;
    char line[128];
    struct pp2_info info;

    v1_line_of_107_bytes(line, 1);
    assert_int_equal(strlen(line), PP1_MAX_LINE + 1);
    assert_int_equal(pp2_parse((const uint8_t *)line, strlen(line), &info), PP2_ERROR);
    /* as soon as the line cannot end within the bound, without waiting for the rest */
    assert_int_equal(pp2_parse((const uint8_t *)line, PP1_MAX_LINE - 1, &info), PP2_ERROR);
    assert_int_equal(pp2_parse((const uint8_t *)line, PP1_MAX_LINE - 2, &info), PP2_NEED_MORE);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(every_truncation_of_a_valid_header_needs_more),
        cmocka_unit_test(v2_payload_of_exactly_the_bound_is_accepted),
        cmocka_unit_test(v2_unix_stream_falls_back_to_unspec),
        cmocka_unit_test(v1_line_of_107_bytes_is_accepted),
        cmocka_unit_test(v1_line_of_108_bytes_is_error),
    };
    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + sizeof(fixed) / sizeof(fixed[0])];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        tests[n++] = (struct CMUnitTest){cases[i].name, parse_case, NULL, NULL, (void *)&cases[i]};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("proxy_v2", tests, n, NULL, NULL);
}
