/*
 * Unit tests of backend/ws_handshake.c: each rule of RFC 6455 §4.2.1 with the
 * status it answers, the accept key of §1.3, subprotocol selection (a bearer
 * token is never echoed), RFC 7692 permessage-deflate negotiation, the room
 * argument, the token sources and the exact response bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "backend/ws_handshake.h"
#include "tests/unit/cases.h"
#include "tests/unit/http_feed.h"

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define HOST "Host: server.example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define GET "GET /ws?room=T42 HTTP/1.1\r\n"
#define VALID GET HOST UPG CONN KEY VER "\r\n"

static const char *const allowed[] = {"https://app.example", "http://localhost:8080"};
static const struct wsh_config open_cfg = {0};
static const struct wsh_config origin_cfg = {.origins = allowed, .n_origins = 2};

static const struct rule_case {
    const char *name;
    const char *req;
    int status;
    const struct wsh_config *cfg; /* NULL: open_cfg */
} rules[] = {
    {"rfc6455_4_2_1_complete_handshake_is_101", VALID, 101, NULL},
    {"path_other_than_ws_is_404", "GET /chat?room=T42 HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n",
     404, NULL},
    {"path_with_trailing_slash_is_404",
     "GET /ws/?room=T42 HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 404, NULL},
    {"item1_post_is_405",
     "POST /ws?room=T42 HTTP/1.1\r\nContent-Length: 0\r\n" HOST UPG CONN KEY VER "\r\n", 405, NULL},
    {"item1_head_is_405", "HEAD /ws?room=T42 HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 405, NULL},
    {"item1_http_1_0_is_400", "GET /ws?room=T42 HTTP/1.0\r\n" HOST UPG CONN KEY VER "\r\n", 400,
     NULL},
    {"item2_missing_host_is_400", GET UPG CONN KEY VER "\r\n", 400, NULL},
    {"item2_empty_host_is_400", GET "Host:\r\n" UPG CONN KEY VER "\r\n", 400, NULL},
    {"item3_missing_upgrade_is_400", GET HOST CONN KEY VER "\r\n", 400, NULL},
    {"item3_upgrade_to_other_protocol_is_400", GET HOST "Upgrade: h2c\r\n" CONN KEY VER "\r\n", 400,
     NULL},
    {"item3_upgrade_token_prefix_is_400", GET HOST "Upgrade: websockets\r\n" CONN KEY VER "\r\n",
     400, NULL},
    {"item3_upgrade_any_case_is_101", GET HOST "Upgrade: WebSocket\r\n" CONN KEY VER "\r\n", 101,
     NULL},
    {"item3_upgrade_in_a_list_is_101", GET HOST "Upgrade: foo/2, websocket\r\n" CONN KEY VER "\r\n",
     101, NULL},
    {"item4_missing_connection_is_400", GET HOST UPG KEY VER "\r\n", 400, NULL},
    {"item4_connection_keep_alive_only_is_400",
     GET HOST UPG "Connection: keep-alive\r\n" KEY VER "\r\n", 400, NULL},
    {"item4_connection_token_prefix_is_400", GET HOST UPG "Connection: upgrades\r\n" KEY VER "\r\n",
     400, NULL},
    {"item4_connection_keep_alive_comma_upgrade_is_101",
     GET HOST UPG "Connection: keep-alive, Upgrade\r\n" KEY VER "\r\n", 101, NULL},
    {"item4_connection_list_without_spaces_is_101",
     GET HOST UPG "Connection: keep-alive,upgrade\r\n" KEY VER "\r\n", 101, NULL},
    {"item4_connection_lowercase_is_101", GET HOST UPG "Connection: upgrade\r\n" KEY VER "\r\n",
     101, NULL},
    {"item4_connection_split_over_two_headers_is_101",
     GET HOST UPG "Connection: keep-alive\r\nConnection: UPGRADE\r\n" KEY VER "\r\n", 101, NULL},
    {"item5_missing_key_is_400", GET HOST UPG CONN VER "\r\n", 400, NULL},
    {"item5_key_of_15_bytes_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n" VER "\r\n", 400, NULL},
    {"item5_key_of_18_bytes_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAB\r\n" VER "\r\n", 400, NULL},
    {"item5_key_without_padding_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" VER "\r\n", 400, NULL},
    {"item5_key_with_non_base64_character_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n" VER "\r\n", 400, NULL},
    {"item5_key_with_padding_inside_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j=Q==\r\n" VER "\r\n", 400, NULL},
    {"item5_key_with_nonzero_pad_bits_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n" VER "\r\n", 400, NULL},
    {"item5_key_base64url_alphabet_is_400",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j_Q==\r\n" VER "\r\n", 400, NULL},
    {"item5_key_sent_twice_is_400", GET HOST UPG CONN KEY KEY VER "\r\n", 400, NULL},
    {"item5_key_with_plus_and_slash_is_101",
     GET HOST UPG CONN "Sec-WebSocket-Key: +/+/+/+/+/+/+/+/+/+/+w==\r\n" VER "\r\n", 101, NULL},
    {"item6_version_8_is_426", GET HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n\r\n", 426, NULL},
    {"item6_missing_version_is_426", GET HOST UPG CONN KEY "\r\n", 426, NULL},
    {"item6_version_13_and_8_is_426", GET HOST UPG CONN KEY VER "Sec-WebSocket-Version: 8\r\n\r\n",
     426, NULL},
    {"item6_version_013_is_426", GET HOST UPG CONN KEY "Sec-WebSocket-Version: 013\r\n\r\n", 426,
     NULL},
    {"item7_origin_not_allowed_is_403",
     GET HOST UPG CONN KEY VER "Origin: https://evil.example\r\n\r\n", 403, &origin_cfg},
    {"item7_origin_null_not_allowed_is_403", GET HOST UPG CONN KEY VER "Origin: null\r\n\r\n", 403,
     &origin_cfg},
    {"item7_origin_allowed_is_101",
     GET HOST UPG CONN KEY VER "Origin: http://localhost:8080\r\n\r\n", 101, &origin_cfg},
    {"item7_origin_compared_ignoring_case_is_101",
     GET HOST UPG CONN KEY VER "Origin: HTTPS://APP.EXAMPLE\r\n\r\n", 101, &origin_cfg},
    {"item7_origin_with_other_port_is_403",
     GET HOST UPG CONN KEY VER "Origin: http://localhost:8081\r\n\r\n", 403, &origin_cfg},
    {"item7_no_origin_passes_the_allow_list", VALID, 101, &origin_cfg},
    {"item7_empty_allow_list_allows_any_origin",
     GET HOST UPG CONN KEY VER "Origin: https://evil.example\r\n\r\n", 101, NULL},
    {"room_missing_is_400", "GET /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 400, NULL},
    {"room_empty_is_400", "GET /ws?room= HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 400, NULL},
    {"room_with_slash_is_400", "GET /ws?room=a/b HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 400,
     NULL},
    {"room_with_encoded_space_is_400",
     "GET /ws?room=a%20b HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 400, NULL},
    {"room_with_bad_escape_is_400", "GET /ws?room=a%2 HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n",
     400, NULL},
    {"room_of_64_bytes_is_101",
     "GET /ws?room=0123456789012345678901234567890123456789012345678901234567890123 "
     "HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n",
     101, NULL},
    {"room_of_65_bytes_is_400",
     "GET /ws?room=01234567890123456789012345678901234567890123456789012345678901234 "
     "HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n",
     400, NULL},
    {"room_of_every_allowed_character_is_101",
     "GET /ws?room=azAZ09_.:- HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n", 101, NULL},
    {"first_failing_rule_decides_version_before_room",
     "GET /ws HTTP/1.1\r\n" HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n\r\n", 426, NULL},
    {"first_failing_rule_decides_upgrade_before_key", GET HOST CONN VER "\r\n", 400, NULL},
};

static void rule(void **state)
{
    const struct rule_case *c = *state;
    struct http_req *r = parse(c->req);
    struct wsh_decision d;

    enum wsh_err e = wsh_decide(r, c->cfg ? c->cfg : &open_cfg, &d);
    assert_int_equal(wsh_err_status(e), c->status);
    http_req_free(r);
}

static void rfc6455_1_3_sample_key_gives_sample_accept(void **state)
{
    (void)state;
    char out[WSH_ACCEPT_LEN + 1];

    wsh_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void accept_response_is_exact(void **state)
{
    (void)state;
    struct http_req *r = parse(VALID);
    struct wsh_decision d;
    char buf[512];
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "\r\n";

    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_string_equal(d.room, "T42");
    assert_int_equal(d.room_len, 3);
    size_t n = wsh_accept_response(&d, NULL, buf, sizeof(buf));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    assert_int_equal(wsh_accept_response(&d, NULL, buf, n), 0);
    http_req_free(r);
}

static void accept_response_with_protocol_extension_and_extra_headers(void **state)
{
    (void)state;
    struct http_req *r =
        parse(GET HOST UPG CONN KEY VER "Sec-WebSocket-Protocol: roomrelay.v1\r\n"
                                        "Sec-WebSocket-Extensions: permessage-deflate; "
                                        "client_max_window_bits\r\n\r\n");
    struct wsh_config cfg = {.deflate = true};
    struct wsh_decision d;
    char buf[512];
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: roomrelay.v1\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; "
                               "server_no_context_takeover\r\n"
                               "Set-Cookie: rr_srv=ws1\r\n"
                               "\r\n";

    assert_int_equal(wsh_decide(r, &cfg, &d), WSH_OK);
    size_t n = wsh_accept_response(&d, "Set-Cookie: rr_srv=ws1\r\n", buf, sizeof(buf));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    http_req_free(r);
}

static void deflate_offer_is_ignored_when_disabled(void **state)
{
    (void)state;
    struct http_req *r =
        parse(GET HOST UPG CONN KEY VER "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    struct wsh_decision d;
    char buf[512];

    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_false(d.deflate);
    assert_string_equal(d.extensions, "");
    wsh_accept_response(&d, NULL, buf, sizeof(buf));
    assert_null(strstr(buf, "Extensions"));
    http_req_free(r);
}

/* --- subprotocol --- */

static const struct proto_case {
    const char *name;
    const char *headers; /* Sec-WebSocket-Protocol lines */
    bool selected;
} protos[] = {
    {"subprotocol_roomrelay_v1_selected", "Sec-WebSocket-Protocol: roomrelay.v1\r\n", true},
    {"subprotocol_selected_before_bearer",
     "Sec-WebSocket-Protocol: roomrelay.v1, bearer.eyJhbGciOi.x.y\r\n", true},
    {"subprotocol_selected_after_bearer",
     "Sec-WebSocket-Protocol: bearer.eyJhbGciOi.x.y, roomrelay.v1\r\n", true},
    {"subprotocol_selected_from_second_header_line",
     "Sec-WebSocket-Protocol: bearer.eyJhbGciOi.x.y\r\nSec-WebSocket-Protocol: roomrelay.v1\r\n",
     true},
    {"subprotocol_bearer_alone_is_not_echoed", "Sec-WebSocket-Protocol: bearer.eyJhbGciOi.x.y\r\n",
     false},
    {"subprotocol_others_only_gets_no_protocol", "Sec-WebSocket-Protocol: chat, superchat\r\n",
     false},
    {"subprotocol_is_case_sensitive", "Sec-WebSocket-Protocol: RoomRelay.V1\r\n", false},
    {"subprotocol_prefix_is_not_selected", "Sec-WebSocket-Protocol: roomrelay.v10\r\n", false},
    {"subprotocol_absent_gets_no_protocol", "", false},
};

static void proto(void **state)
{
    const struct proto_case *c = *state;
    char req[512], buf[512];
    struct wsh_decision d;

    snprintf(req, sizeof(req), GET HOST UPG CONN KEY VER "%s\r\n", c->headers);
    struct http_req *r = parse(req);
    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_int_equal(d.subprotocol, c->selected);
    assert_true(wsh_accept_response(&d, NULL, buf, sizeof(buf)) > 0);
    assert_null(strstr(buf, "bearer"));
    assert_null(strstr(buf, "eyJ"));
    if (c->selected)
        assert_non_null(strstr(buf, "\r\nSec-WebSocket-Protocol: roomrelay.v1\r\n"));
    else
        assert_null(strstr(buf, "Sec-WebSocket-Protocol"));
    http_req_free(r);
}

/* --- permessage-deflate --- */

#define SNCT "permessage-deflate; server_no_context_takeover"

static const struct pmd_case {
    const char *name;
    const char *offer;
    const char *answer; /* NULL: declined */
    bool snct, cnct;
    unsigned smwb, cmwb;
} pmds[] = {
    {"pmd_plain_offer_accepted", "permessage-deflate", SNCT, true, false, 15, 15},
    {"pmd_server_no_context_takeover_offered_is_answered_once",
     "permessage-deflate; server_no_context_takeover", SNCT, true, false, 15, 15},
    {"pmd_client_max_window_bits_without_value_not_echoed",
     "permessage-deflate; client_max_window_bits", SNCT, true, false, 15, 15},
    {"pmd_client_max_window_bits_value_echoed", "permessage-deflate; client_max_window_bits=10",
     SNCT "; client_max_window_bits=10", true, false, 15, 10},
    {"pmd_client_max_window_bits_8_accepted", "permessage-deflate; client_max_window_bits=8",
     SNCT "; client_max_window_bits=8", true, false, 15, 8},
    {"pmd_quoted_value_accepted", "permessage-deflate; client_max_window_bits=\"9\"",
     SNCT "; client_max_window_bits=9", true, false, 15, 9},
    {"pmd_client_no_context_takeover_echoed", "permessage-deflate; client_no_context_takeover",
     SNCT "; client_no_context_takeover", true, true, 15, 15},
    {"pmd_server_max_window_bits_15_echoed", "permessage-deflate;server_max_window_bits=15",
     SNCT "; server_max_window_bits=15", true, false, 15, 15},
    {"pmd_all_parameters",
     "permessage-deflate ; client_no_context_takeover ; server_max_window_bits = 15 ; "
     "client_max_window_bits = 11 ; server_no_context_takeover",
     SNCT "; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=11",
     true, true, 15, 11},
    {"pmd_server_max_window_bits_below_15_declined",
     "permessage-deflate; server_max_window_bits=12", NULL, false, false, 0, 0},
    {"pmd_server_max_window_bits_8_declined", "permessage-deflate; server_max_window_bits=8", NULL,
     false, false, 0, 0},
    {"pmd_server_max_window_bits_without_value_declined",
     "permessage-deflate; server_max_window_bits", NULL, false, false, 0, 0},
    {"pmd_window_bits_16_declined", "permessage-deflate; client_max_window_bits=16", NULL, false,
     false, 0, 0},
    {"pmd_window_bits_7_declined", "permessage-deflate; client_max_window_bits=7", NULL, false,
     false, 0, 0},
    {"pmd_window_bits_leading_zero_declined", "permessage-deflate; client_max_window_bits=010",
     NULL, false, false, 0, 0},
    {"pmd_window_bits_long_value_declined",
     "permessage-deflate; client_max_window_bits=\"100000000000\"", NULL, false, false, 0, 0},
    {"pmd_unknown_parameter_declined", "permessage-deflate; foo", NULL, false, false, 0, 0},
    {"pmd_repeated_parameter_declined",
     "permessage-deflate; client_no_context_takeover; client_no_context_takeover", NULL, false,
     false, 0, 0},
    {"pmd_no_context_takeover_with_value_declined",
     "permessage-deflate; server_no_context_takeover=1", NULL, false, false, 0, 0},
    {"pmd_declined_offer_falls_back_to_next",
     "permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits=9",
     SNCT "; client_max_window_bits=9", true, false, 15, 9},
    {"pmd_first_acceptable_offer_wins",
     "permessage-deflate; client_max_window_bits=12, permessage-deflate",
     SNCT "; client_max_window_bits=12", true, false, 15, 12},
    {"pmd_after_other_extension", "x-webkit-deflate-frame; no_context_takeover, permessage-deflate",
     SNCT, true, false, 15, 15},
    {"pmd_other_extension_only_declined", "x-webkit-deflate-frame", NULL, false, false, 0, 0},
    {"pmd_broken_syntax_declined", "permessage-deflate;;", NULL, false, false, 0, 0},
    {"pmd_unterminated_quote_declined", "permessage-deflate; client_max_window_bits=\"10", NULL,
     false, false, 0, 0},
    {"pmd_empty_header_declined", "", NULL, false, false, 0, 0},
};

static void pmd(void **state)
{
    const struct pmd_case *c = *state;
    struct wsh_deflate p = {0};
    char answer[160] = "";

    assert_int_equal(wsh_deflate_negotiate(c->offer, strlen(c->offer), &p, answer, sizeof(answer)),
                     c->answer != NULL);
    if (!c->answer)
        return;
    assert_string_equal(answer, c->answer);
    assert_int_equal(p.server_no_context_takeover, c->snct);
    assert_int_equal(p.client_no_context_takeover, c->cnct);
    assert_int_equal(p.server_max_window_bits, c->smwb);
    assert_int_equal(p.client_max_window_bits, c->cmwb);
}

static void deflate_negotiated_in_the_handshake(void **state)
{
    (void)state;
    struct http_req *r =
        parse(GET HOST UPG CONN KEY VER "Sec-WebSocket-Extensions: permessage-deflate; "
                                        "server_max_window_bits=8\r\n"
                                        "Sec-WebSocket-Extensions: permessage-deflate; "
                                        "client_no_context_takeover\r\n\r\n");
    struct wsh_config cfg = {.deflate = true};
    struct wsh_decision d;

    assert_int_equal(wsh_decide(r, &cfg, &d), WSH_OK);
    assert_true(d.deflate);
    assert_true(d.pmd.server_no_context_takeover);
    assert_true(d.pmd.client_no_context_takeover);
    assert_int_equal(d.pmd.server_max_window_bits, 15);
    assert_int_equal(d.pmd.client_max_window_bits, 15);
    assert_string_equal(d.extensions, SNCT "; client_no_context_takeover");
    http_req_free(r);
}

/* --- token sources --- */

static void token_inputs_point_at_every_source(void **state)
{
    (void)state;
    struct http_req *r =
        parse("GET /ws?room=T42&access_token=q.t%2Ek HTTP/1.1\r\n" HOST UPG CONN KEY VER
              "Authorization: Bearer h.t.k\r\n"
              "Sec-WebSocket-Protocol: roomrelay.v1, bearer.p.t.k\r\n"
              "Cookie: a=1; rr_token=c.t.k; b=2\r\n\r\n");
    struct wsh_decision d;
    const char *tok;
    size_t len;

    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_int_equal(d.tokens.bearer_len, 12);
    assert_memory_equal(d.tokens.bearer, "Bearer h.t.k", 12);
    assert_int_equal(d.tokens.qtoken_len, 5);
    assert_memory_equal(d.tokens.qtoken, "q.t.k", 5);
    assert_int_equal(d.tokens.proto_len, 26);
    assert_memory_equal(d.tokens.proto, "roomrelay.v1, bearer.p.t.k", 26);
    assert_int_equal(d.tokens.cookie_len, 5);
    assert_memory_equal(d.tokens.cookie, "c.t.k", 5);
    assert_true(rr_token_pick(&d.tokens, &tok, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(tok, "h.t.k", 5);
    http_req_free(r);
}

static void token_inputs_absent_are_null(void **state)
{
    (void)state;
    struct http_req *r = parse(GET HOST UPG CONN KEY VER "Cookie: other=1\r\n\r\n");
    struct wsh_decision d;
    const char *tok;
    size_t len;

    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_null(d.tokens.bearer);
    assert_null(d.tokens.qtoken);
    assert_null(d.tokens.proto);
    assert_null(d.tokens.cookie);
    assert_false(rr_token_pick(&d.tokens, &tok, &len));
    http_req_free(r);
}

static void token_from_cookie_when_alone(void **state)
{
    (void)state;
    struct http_req *r = parse(GET HOST UPG CONN KEY VER "Cookie: rr_token=\"c.t.k\"\r\n\r\n");
    struct wsh_decision d;
    const char *tok;
    size_t len;

    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_true(rr_token_pick(&d.tokens, &tok, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(tok, "c.t.k", 5);
    http_req_free(r);
}

static void malformed_access_token_counts_as_absent(void **state)
{
    (void)state;
    struct http_req *r =
        parse("GET /ws?room=T42&access_token=a%zz HTTP/1.1\r\n" HOST UPG CONN KEY VER "\r\n");
    struct wsh_decision d;

    assert_int_equal(wsh_decide(r, &open_cfg, &d), WSH_OK);
    assert_null(d.tokens.qtoken);
    assert_int_equal(d.tokens.qtoken_len, 0);
    http_req_free(r);
}

/* --- errors and routing --- */

static void version_error_response_names_version_13(void **state)
{
    (void)state;
    char buf[512];
    static const char want[] = "HTTP/1.1 426 Upgrade Required\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 34\r\n"
                               "Connection: close\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "\r\n"
                               "unsupported Sec-WebSocket-Version\n";
    size_t n = wsh_error_response(WSH_ERR_VERSION, buf, sizeof(buf));

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
}

static void method_error_response_allows_get(void **state)
{
    (void)state;
    char buf[512];
    size_t n = wsh_error_response(WSH_ERR_METHOD, buf, sizeof(buf));

    assert_true(n > 0);
    assert_memory_equal(buf, "HTTP/1.1 405 Method Not Allowed\r\n", 33);
    assert_non_null(strstr(buf, "\r\nAllow: GET\r\n"));
}

static void room_error_response_says_invalid_room(void **state)
{
    (void)state;
    char buf[512];
    static const char want[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "invalid room\n";
    size_t n = wsh_error_response(WSH_ERR_ROOM, buf, sizeof(buf));

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
}

static const struct path_case {
    const char *name;
    const char *target;
    bool ws;
} paths[] = {
    {"ws_path_plain", "/ws", true},
    {"ws_path_with_query", "/ws?room=a", true},
    {"ws_path_with_empty_query", "/ws?", true},
    {"ws_path_trailing_slash_is_http", "/ws/", false},
    {"ws_path_longer_name_is_http", "/wsx", false},
    {"ws_path_health_is_http", "/health", false},
    {"ws_path_root_is_http", "/", false},
    {"ws_path_uppercase_is_http", "/WS", false},
};

static void path(void **state)
{
    const struct path_case *c = *state;
    char req[128];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", c->target);
    struct http_req *r = parse(req);
    assert_int_equal(wsh_is_ws_path(r), c->ws);
    http_req_free(r);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(rfc6455_1_3_sample_key_gives_sample_accept),
        cmocka_unit_test(accept_response_is_exact),
        cmocka_unit_test(accept_response_with_protocol_extension_and_extra_headers),
        cmocka_unit_test(deflate_offer_is_ignored_when_disabled),
        cmocka_unit_test(deflate_negotiated_in_the_handshake),
        cmocka_unit_test(token_inputs_point_at_every_source),
        cmocka_unit_test(token_inputs_absent_are_null),
        cmocka_unit_test(token_from_cookie_when_alone),
        cmocka_unit_test(malformed_access_token_counts_as_absent),
        cmocka_unit_test(version_error_response_names_version_13),
        cmocka_unit_test(method_error_response_allows_get),
        cmocka_unit_test(room_error_response_says_invalid_room),
    };
    struct CMUnitTest
        tests[COUNT(fixed) + COUNT(rules) + COUNT(protos) + COUNT(pmds) + COUNT(paths)];
    size_t n = 0;

    ADD_CASES(tests, &n, rules, rule);
    ADD_CASES(tests, &n, protos, proto);
    ADD_CASES(tests, &n, pmds, pmd);
    ADD_CASES(tests, &n, paths, path);
    for (size_t i = 0; i < COUNT(fixed); i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("ws_handshake", tests, n, NULL, NULL);
}
