/*
 * The server side of the RFC 6455 opening handshake (§4.2.1, §4.2.2), as a
 * pure decision on a parsed request: accept (with the Sec-WebSocket-Accept,
 * the subprotocol, the permessage-deflate parameters of RFC 7692, the home
 * room and where the token may be), or the HTTP error to answer. Also
 * writes the 101 and the error responses. Does not verify the token (the
 * caller hands `tokens` to rr_token_pick and the JWT code) and does no I/O.
 */
#ifndef RR_WS_HANDSHAKE_H
#define RR_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/http_req.h"
#include "backend/room.h"
#include "lib/token_pick.h"

#define WSH_PATH "/ws"
#define WSH_SUBPROTOCOL "roomrelay.v1"
#define WSH_KEY_LEN 24    /* base64 of 16 bytes */
#define WSH_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

struct wsh_config {
    const char *const *origins; /* allowed Origin values, compared ignoring case */
    size_t n_origins;           /* 0: any origin */
    bool deflate;               /* accept a permessage-deflate offer (see below) */
};

/* Negotiated permessage-deflate parameters (RFC 7692 §7.1). The server
 * compresses a room message once for all its recipients (backend/pmd.h), so
 * it always answers server_no_context_takeover and uses a 15-bit window:
 * the first two fields are always true and 15 on an accepted offer. */
struct wsh_deflate {
    bool server_no_context_takeover; /* we reset our compressor after each message */
    bool client_no_context_takeover; /* the client resets its compressor after each message */
    unsigned server_max_window_bits; /* the window our compressor uses */
    unsigned client_max_window_bits; /* 8..15: the window the client's compressor uses */
};

enum wsh_err {
    WSH_OK = 0,
    WSH_ERR_NOT_FOUND,    /* 404: path is not /ws */
    WSH_ERR_METHOD,       /* 405: not GET (§4.2.1 item 1) */
    WSH_ERR_HTTP_VERSION, /* 400: older than HTTP/1.1 (item 1) */
    WSH_ERR_HOST,         /* 400: no Host (item 2) */
    WSH_ERR_UPGRADE,      /* 400: Upgrade lacks "websocket" (item 3) */
    WSH_ERR_CONNECTION,   /* 400: Connection lacks "upgrade" (item 4) */
    WSH_ERR_KEY,          /* 400: Sec-WebSocket-Key is not 16 bytes in base64 (item 5) */
    WSH_ERR_VERSION,      /* 426 + Sec-WebSocket-Version: 13 (item 6, §4.4) */
    WSH_ERR_ORIGIN,       /* 403: Origin not allowed (item 7, §4.2.2) */
    WSH_ERR_ROOM,         /* 400: room argument missing or invalid */
};

struct wsh_decision {
    char accept[WSH_ACCEPT_LEN + 1]; /* Sec-WebSocket-Accept */
    bool subprotocol;                /* WSH_SUBPROTOCOL selected */
    bool deflate;                    /* permessage-deflate accepted, as in pmd */
    struct wsh_deflate pmd;
    char extensions[160];         /* Sec-WebSocket-Extensions answer, "" when none */
    char room[ROOM_NAME_MAX + 1]; /* the home room, decoded */
    size_t room_len;
    /* Where the token may be (DESIGN.md §3), pointing into the request: valid
     * until http_req_reset()/http_req_free(). */
    struct rr_token_inputs tokens;
};

/* Whether a complete request is for the WebSocket endpoint (path /ws): then
 * wsh_decide() answers it, whatever its method or headers; otherwise it is
 * plain HTTP for the caller's routes. */
bool wsh_is_ws_path(const struct http_req *r);

/* Checks a complete request. On WSH_OK *d is filled; on an error, answer
 * with wsh_error_response(). Checks run in the order of enum wsh_err, so the
 * first failing rule names the status. Uses the request's query scratch. */
enum wsh_err wsh_decide(struct http_req *r, const struct wsh_config *cfg, struct wsh_decision *d);

int wsh_err_status(enum wsh_err e);
const char *wsh_err_reason(enum wsh_err e);

/* The 101 response for an accepted handshake, with extra_headers (whole
 * "Name: value\r\n" lines, or NULL) before its end. Returns the length, or 0
 * when cap is too small. */
size_t wsh_accept_response(const struct wsh_decision *d, const char *extra_headers, char *buf,
                           size_t cap);
/* The error response (Connection: close, the reason as a text/plain body). */
size_t wsh_error_response(enum wsh_err e, char *buf, size_t cap);

/* Sec-WebSocket-Accept for a key (§4.2.2 item 5.4): base64(SHA-1(key GUID)). */
void wsh_accept_key(const char key[WSH_KEY_LEN], char out[WSH_ACCEPT_LEN + 1]);

/* Picks the first acceptable permessage-deflate offer of a
 * Sec-WebSocket-Extensions value and writes the answer's value into resp
 * (cap >= sizeof(((struct wsh_decision *)0)->extensions)). An offer with an
 * unknown, repeated or out-of-range parameter is declined, not an error (RFC
 * 7692 §5, §7.1); so is one asking server_max_window_bits below 15, which
 * the shared compressor cannot honour. Returns false when no offer is
 * acceptable. */
bool wsh_deflate_negotiate(const char *ext, size_t len, struct wsh_deflate *out, char *resp,
                           size_t cap);

#endif
