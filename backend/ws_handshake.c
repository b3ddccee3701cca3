/*
 * RFC 6455 server handshake and RFC 7692 permessage-deflate negotiation, see
 * ws_handshake.h. Header values arrive trimmed and with repeats joined by
 * http_req.c, so every list rule below reads one comma-separated value.
 *
 * Subprotocol: only WSH_SUBPROTOCOL is ever echoed. A client that offers
 * other protocols only (a `bearer.<jwt>` item alone, say) gets no
 * Sec-WebSocket-Protocol in the 101, which RFC 6455 §4.2.2 allows; browsers
 * then fail the connection, so browser clients offer WSH_SUBPROTOCOL next to
 * their token. The token itself is never written back.
 *
 * Origin: with an allow-list, a request whose Origin is not listed is 403. A
 * request without Origin is not from a browser (which always sends one) and
 * passes: the check protects browsers' ambient credentials, and any other
 * client can write any Origin anyway.
 */
#include "backend/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "lib/room_access.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Whether the comma-separated list v holds `want` as one whole item. */
static bool list_has(const char *v, size_t len, const char *want, bool ignore_case)
{
    size_t wlen = strlen(want);
    const char *end = v + len;

    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *ie = comma ? comma : end;
        while (v < ie && http_ows(*v))
            v++;
        while (ie > v && http_ows(ie[-1]))
            ie--;
        if ((size_t)(ie - v) == wlen &&
            (ignore_case ? strncasecmp(v, want, wlen) : memcmp(v, want, wlen)) == 0)
            return true;
        if (!comma)
            break;
        v = comma + 1;
    }
    return false;
}

/* 16 bytes in canonical base64: 22 characters, the last with its 4 unused bits zero, "==". */
static bool key_valid(const char *k, size_t len)
{
    if (len != WSH_KEY_LEN || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        const char *pos = k[i] ? strchr(b64_alphabet, k[i]) : NULL;
        if (!pos)
            return false;
        if (i == 21 && ((pos - b64_alphabet) & 0x0f) != 0)
            return false;
    }
    return true;
}

void wsh_accept_key(const char key[WSH_KEY_LEN], char out[WSH_ACCEPT_LEN + 1])
{
    unsigned char in[WSH_KEY_LEN + sizeof(ws_guid) - 1];
    unsigned char md[SHA_DIGEST_LENGTH];

    memcpy(in, key, WSH_KEY_LEN);
    memcpy(in + WSH_KEY_LEN, ws_guid, sizeof(ws_guid) - 1);
    SHA1(in, sizeof(in), md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* --- permessage-deflate (RFC 7692) --- */

struct ext_cursor {
    const char *p, *end;
};

static void skip_ows(struct ext_cursor *c)
{
    while (c->p < c->end && http_ows(*c->p))
        c->p++;
}

static size_t token(struct ext_cursor *c, const char **tok)
{
    *tok = c->p;
    while (c->p < c->end && http_tchar(*c->p))
        c->p++;
    return (size_t)(c->p - *tok);
}

/* A parameter value: a token or a quoted-string, unescaped into out (cap
 * bytes and a NUL). Returns its length, or -1 on bad syntax; a value longer
 * than cap is consumed and reported as cap + 1, which no parameter accepts. */
static int param_value(struct ext_cursor *c, char *out, size_t cap)
{
    size_t n = 0;

    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p == c->end)
                return -1;
            char ch = *c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->p == c->end)
                    return -1;
                ch = *c->p++;
            }
            if (n < cap)
                out[n] = ch;
            n++;
        }
    } else {
        const char *t;
        n = token(c, &t);
        if (n == 0)
            return -1;
        memcpy(out, t, n < cap ? n : cap);
    }
    if (n > cap)
        n = cap + 1;
    else
        out[n] = '\0';
    return (int)n;
}

/* A window size: 8..15 written without leading zeros. */
static unsigned window_bits(const char *v, int len)
{
    if (len == 1 && v[0] >= '8' && v[0] <= '9')
        return (unsigned)(v[0] - '0');
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (unsigned)(v[1] - '0');
    return 0;
}

struct pmd_offer {
    struct wsh_deflate p;
    bool acceptable;
    bool has_snct, has_cnct, has_smwb, has_cmwb; /* parameters seen */
    bool cmwb_value;                             /* client_max_window_bits came with a value */
};

/* Applies one parameter of a permessage-deflate offer (RFC 7692 §7.1). */
static void offer_param(struct pmd_offer *o, const char *name, size_t nlen, const char *val,
                        int vlen)
{
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    bool *seen;

    if (IS("server_no_context_takeover")) {
        seen = &o->has_snct;
        if (vlen >= 0)
            o->acceptable = false;
    } else if (IS("client_no_context_takeover")) {
        seen = &o->has_cnct;
        o->p.client_no_context_takeover = true;
        if (vlen >= 0)
            o->acceptable = false;
    } else if (IS("server_max_window_bits")) {
        seen = &o->has_smwb;
        if (vlen <= 0 || window_bits(val, vlen) != 15)
            o->acceptable = false;
    } else if (IS("client_max_window_bits")) {
        seen = &o->has_cmwb;
        if (vlen >= 0) {
            o->cmwb_value = true;
            o->p.client_max_window_bits = window_bits(val, vlen);
            if (o->p.client_max_window_bits == 0)
                o->acceptable = false;
        }
    } else {
        o->acceptable = false;
        return;
    }
#undef IS
    if (*seen)
        o->acceptable = false;
    *seen = true;
}

static size_t deflate_answer(const struct pmd_offer *o, char *buf, size_t cap)
{
    char cmwb[32] = "";
    if (o->cmwb_value)
        snprintf(cmwb, sizeof(cmwb), "; client_max_window_bits=%u", o->p.client_max_window_bits);
    /* server_no_context_takeover unasked is allowed (RFC 7692 §7.1.1.1); an offered
     * server_max_window_bits (15, the only one accepted) is accepted by echoing it */
    int n = snprintf(buf, cap, "permessage-deflate; server_no_context_takeover%s%s%s",
                     o->p.client_no_context_takeover ? "; client_no_context_takeover" : "",
                     o->has_smwb ? "; server_max_window_bits=15" : "", cmwb);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

bool wsh_deflate_negotiate(const char *ext, size_t len, struct wsh_deflate *out, char *resp,
                           size_t cap)
{
    struct ext_cursor c = {ext, ext + len};

    for (;;) {
        const char *name;
        skip_ows(&c);
        size_t nlen = token(&c, &name);
        if (nlen == 0)
            return false;
        struct pmd_offer o = {.acceptable =
                                  nlen == 18 && memcmp(name, "permessage-deflate", 18) == 0};

        for (;;) {
            skip_ows(&c);
            if (c.p == c.end || *c.p != ';')
                break;
            c.p++;
            skip_ows(&c);
            const char *pname;
            size_t plen = token(&c, &pname);
            if (plen == 0)
                return false;
            skip_ows(&c);
            char val[4];
            int vlen = -1;
            if (c.p < c.end && *c.p == '=') {
                c.p++;
                skip_ows(&c);
                vlen = param_value(&c, val, sizeof(val) - 1);
                if (vlen < 0)
                    return false;
            }
            offer_param(&o, pname, plen, val, vlen);
        }
        if (o.acceptable) {
            o.p.server_no_context_takeover = true;
            o.p.server_max_window_bits = 15;
            if (!o.cmwb_value)
                o.p.client_max_window_bits = 15;
            if (deflate_answer(&o, resp, cap) == 0)
                return false;
            *out = o.p;
            return true;
        }
        if (c.p == c.end || *c.p != ',')
            return false;
        c.p++;
    }
}

/* --- the handshake --- */

static bool header_is(const struct http_req *r, const char *name, const char *item,
                      bool ignore_case)
{
    size_t len;
    const char *v = http_req_header(r, name, &len);
    return v && list_has(v, len, item, ignore_case);
}

static bool origin_allowed(const struct http_req *r, const struct wsh_config *cfg)
{
    size_t len;
    const char *origin = http_req_header(r, "origin", &len);

    if (cfg->n_origins == 0 || !origin)
        return true;
    for (size_t i = 0; i < cfg->n_origins; i++) {
        if (strcasecmp(origin, cfg->origins[i]) == 0)
            return true;
    }
    return false;
}

bool wsh_is_ws_path(const struct http_req *r)
{
    size_t len;
    const char *path = http_req_path(r, &len);
    return len == sizeof(WSH_PATH) - 1 && memcmp(path, WSH_PATH, len) == 0;
}

enum wsh_err wsh_decide(struct http_req *r, const struct wsh_config *cfg, struct wsh_decision *d)
{
    const char *v, *key;
    size_t len, key_len;

    memset(d, 0, sizeof(*d));
    if (!wsh_is_ws_path(r))
        return WSH_ERR_NOT_FOUND;
    if (http_req_method(r) != HTTP_M_GET)
        return WSH_ERR_METHOD;
    if (http_req_version(r) < 11)
        return WSH_ERR_HTTP_VERSION;
    v = http_req_header(r, "host", &len);
    if (!v || len == 0)
        return WSH_ERR_HOST;
    if (!header_is(r, "upgrade", "websocket", true))
        return WSH_ERR_UPGRADE;
    if (!header_is(r, "connection", "upgrade", true))
        return WSH_ERR_CONNECTION;
    key = http_req_header(r, "sec-websocket-key", &key_len);
    if (!key || !key_valid(key, key_len))
        return WSH_ERR_KEY;
    v = http_req_header(r, "sec-websocket-version", &len);
    if (!v || len != 2 || memcmp(v, "13", 2) != 0)
        return WSH_ERR_VERSION;
    if (!origin_allowed(r, cfg))
        return WSH_ERR_ORIGIN;
    if (http_req_query_arg(r, "room", &v, &len) != HTTP_QARG_FOUND || !rr_room_name_valid(v, len))
        return WSH_ERR_ROOM;
    memcpy(d->room, v, len);
    d->room[len] = '\0';
    d->room_len = len;

    wsh_accept_key(key, d->accept);
    d->subprotocol = header_is(r, "sec-websocket-protocol", WSH_SUBPROTOCOL, false);
    v = http_req_header(r, "sec-websocket-extensions", &len);
    if (cfg->deflate && v)
        d->deflate = wsh_deflate_negotiate(v, len, &d->pmd, d->extensions, sizeof(d->extensions));

    struct rr_token_inputs *t = &d->tokens;
    t->bearer = http_req_header(r, "authorization", &t->bearer_len);
    /* a malformed access_token counts as absent: the token check then reports it missing */
    if (http_req_query_arg(r, "access_token", &t->qtoken, &t->qtoken_len) != HTTP_QARG_FOUND)
        t->qtoken = NULL;
    t->proto = http_req_header(r, "sec-websocket-protocol", &t->proto_len);
    v = http_req_header(r, "cookie", &len);
    if (v)
        http_cookie(v, len, "rr_token", &t->cookie, &t->cookie_len);
    return WSH_OK;
}

int wsh_err_status(enum wsh_err e)
{
    switch (e) {
    case WSH_OK:
        return 101;
    case WSH_ERR_NOT_FOUND:
        return 404;
    case WSH_ERR_METHOD:
        return 405;
    case WSH_ERR_VERSION:
        return 426;
    case WSH_ERR_ORIGIN:
        return 403;
    case WSH_ERR_HTTP_VERSION:
    case WSH_ERR_HOST:
    case WSH_ERR_UPGRADE:
    case WSH_ERR_CONNECTION:
    case WSH_ERR_KEY:
    case WSH_ERR_ROOM:
        return 400;
    }
    return 400;
}

const char *wsh_err_reason(enum wsh_err e)
{
    switch (e) {
    case WSH_OK:
        return "switching protocols";
    case WSH_ERR_NOT_FOUND:
        return "not found";
    case WSH_ERR_METHOD:
        return "websocket handshake must be GET";
    case WSH_ERR_HTTP_VERSION:
        return "websocket handshake needs HTTP/1.1";
    case WSH_ERR_HOST:
        return "missing Host";
    case WSH_ERR_UPGRADE:
        return "missing Upgrade: websocket";
    case WSH_ERR_CONNECTION:
        return "missing Connection: upgrade";
    case WSH_ERR_KEY:
        return "invalid Sec-WebSocket-Key";
    case WSH_ERR_VERSION:
        return "unsupported Sec-WebSocket-Version";
    case WSH_ERR_ORIGIN:
        return "origin not allowed";
    case WSH_ERR_ROOM:
        return "invalid room";
    }
    return "bad request";
}

size_t wsh_accept_response(const struct wsh_decision *d, const char *extra_headers, char *buf,
                           size_t cap)
{
    int n =
        snprintf(buf, cap,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s%s%s\r\n",
                 d->accept, d->subprotocol ? "Sec-WebSocket-Protocol: " WSH_SUBPROTOCOL "\r\n" : "",
                 d->deflate ? "Sec-WebSocket-Extensions: " : "", d->deflate ? d->extensions : "",
                 d->deflate ? "\r\n" : "", extra_headers ? extra_headers : "");
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t wsh_error_response(enum wsh_err e, char *buf, size_t cap)
{
    const char *extra = NULL;
    if (e == WSH_ERR_VERSION)
        extra = "Sec-WebSocket-Version: 13\r\n";
    else if (e == WSH_ERR_METHOD)
        extra = "Allow: GET\r\n";
    return http_error_response(buf, cap, wsh_err_status(e), extra, wsh_err_reason(e));
}
