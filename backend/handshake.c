/*
 * The WebSocket upgrade of one connection: ws_handshake.c's decision on the
 * request, then this server's policies (drain, --max-connections, who the
 * client is, which rooms it may have), then the 101 and the session.
 *
 * Identity, in order: X-RR-Sub (and X-RR-Rooms) set by HAProxy, believed
 * only from a --trusted-proxy peer; else the client's own token, verified
 * with the backend's keys; else, with --allow-anonymous, "anon-<session>".
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "backend/server_int.h"
#include "backend/stats.h"
#include "backend/ws_handshake.h"
#include "lib/auth.h"
#include "lib/log.h"
#include "lib/room_access.h"
#include "lib/token_pick.h"

/* The identity HAProxy vouches for, when the peer may vouch. */
static bool proxy_identity(struct conn *c, const char **sub, json_t **rooms)
{
    if (!c->peer_trusted)
        return false;
    size_t len;
    const char *h = http_req_header(c->req, "x-rr-sub", &len);
    if (!h || len == 0)
        return false;
    *sub = h;
    const char *r = http_req_header(c->req, "x-rr-rooms", &len);
    if (r && len > 0) {
        json_t *v = json_loadb(r, len, 0, NULL);
        if (json_is_array(v))
            *rooms = v;
        else
            json_decref(v);
    }
    return true;
}

/* The client's address when the peer is a --trusted-proxy that sent no
 * PROXY header: the last address of X-Forwarded-For (the one the proxy
 * appended), else the proxy's own. From any other peer the header is
 * ignored. Returns false when that address is over --max-conns-per-ip. */
static bool forwarded_for(struct conn *c)
{
    if (!c->peer_trusted || c->via_proxy)
        return true;
    size_t len = 0;
    const char *h = http_req_header(c->req, "x-forwarded-for", &len);
    const char *item = h ? h + len : NULL;
    while (item && item > h && item[-1] != ',')
        item--;
    while (item && item < h + len && *item == ' ')
        item++;
    size_t n = item ? (size_t)(h + len - item) : 0;
    while (n > 0 && item[n - 1] == ' ')
        n--;
    char text[INET6_ADDRSTRLEN];
    uint8_t ip[16];
    if (n > 0 && n < sizeof(text)) {
        memcpy(text, item, n);
        text[n] = '\0';
        if (inet_pton(AF_INET, text, ip) == 1)
            return conn_set_client_ip(c, AF_INET, ip);
        if (inet_pton(AF_INET6, text, ip) == 1)
            return conn_set_client_ip(c, AF_INET6, ip);
    }
    memcpy(ip, c->ip, sizeof(ip));
    return conn_set_client_ip(c, c->ip_family, ip);
}

int ws_upgrade(struct conn *c)
{
    struct server *s = c->srv;
    const struct backend_config *cfg = s->cfg;

    struct wsh_config wc = {
        .origins = cfg->origins.v, .n_origins = cfg->origins.n, .deflate = cfg->deflate};
    struct wsh_decision d;
    enum wsh_err e = wsh_decide(c->req, &wc, &d);
    if (e != WSH_OK) {
        char out[512];
        size_t n = wsh_error_response(e, out, sizeof(out));
        /* A HEAD request gets the head of the answer only (RFC 9110 §9.3.2). */
        const char *end = memmem(out, n, "\r\n\r\n", 4);
        if (http_req_method(c->req) == HTTP_M_HEAD && end)
            n = (size_t)(end - out) + 4;
        stats_reject(e == WSH_ERR_ROOM ? REJ_BAD_ROOM : REJ_BAD_HANDSHAKE);
        if (conn_queue_bytes(c, out, n) < 0)
            return -1;
        c->state = CONN_CLOSING;
        return 0;
    }
    if (!forwarded_for(c))
        return conn_refuse(c, 503, "too many connections from this address", NULL,
                           REJ_MAX_CONNS_PER_IP);
    /* since=<seq>: a reconnecting client's last seq; the missed messages
     * follow welcome. */
    bool has_since = false;
    uint64_t since = 0;
    const char *sv;
    size_t svlen;
    enum http_qarg qs = http_req_query_arg(c->req, "since", &sv, &svlen);
    if (qs != HTTP_QARG_ABSENT) {
        char *end = NULL;
        char num[24];
        if (qs == HTTP_QARG_FOUND && svlen > 0 && svlen < sizeof(num) && sv[0] >= '0' &&
            sv[0] <= '9') {
            memcpy(num, sv, svlen);
            num[svlen] = '\0';
            errno = 0;
            since = strtoull(num, &end, 10);
        }
        if (!end || *end || errno)
            return conn_refuse(c, 400, "since must be a non-negative integer", NULL,
                               REJ_BAD_HANDSHAKE);
        has_since = true;
    }
    if (s->draining)
        return conn_refuse(c, 503, "draining: reconnect to another server", "Retry-After: 1\r\n",
                           REJ_DRAINING);
    if (cfg->max_connections > 0 && s->nws >= (uint64_t)cfg->max_connections)
        return conn_refuse(c, 503, "too many connections", "Retry-After: 1\r\n",
                           REJ_MAX_CONNECTIONS);

    const char *sub = NULL;
    json_t *claims = NULL, *rooms = NULL;
    if (proxy_identity(c, &sub, &rooms)) {
        /* HAProxy checked the token; nothing more to verify here. */
    } else if (cfg->keys) {
        const char *tok;
        size_t tlen;
        enum rr_auth_err ae = RR_AUTH_MISSING;
        bool hit;
        if (rr_token_pick(&d.tokens, &tok, &tlen))
            ae = rr_auth_check(cfg->keys, &cfg->policy, s->token_cache, s->sig_ctx, tok, tlen,
                               (int64_t)time(NULL), &claims, &hit);
        if (ae != RR_AUTH_OK) {
            char hdr[96];
            snprintf(hdr, sizeof(hdr), "X-RR-Auth-Err: %s\r\n", rr_auth_err_name(ae));
            return conn_refuse(c, 401, rr_auth_err_name(ae), hdr, REJ_UNAUTHORIZED);
        }
        sub = json_string_value(json_object_get(claims, "sub"));
        json_t *rc = json_object_get(claims, "rooms");
        if (json_is_array(rc))
            rooms = json_incref(rc);
    } else if (cfg->allow_anonymous) {
        sub = ""; /* ws_session_open names it after the session */
    } else {
        return conn_refuse(c, 401, "missing", "X-RR-Auth-Err: missing\r\n", REJ_UNAUTHORIZED);
    }

    /* The home room must be allowed by the token's rooms claim too. */
    c->rooms_claim = rooms;
    int rc;
    if (rooms && !rr_room_allowed(rooms, d.room, d.room_len)) {
        rc = conn_refuse(c, 403, "forbidden_room", NULL, REJ_FORBIDDEN_ROOM);
    } else {
        char out[512];
        size_t n = wsh_accept_response(&d, NULL, out, sizeof(out));
        char *owned = strdup(sub);
        rc = owned ? conn_queue_bytes(c, out, n) : -1;
        if (rc == 0) {
            /* The request arena (where sub was) is not needed any more: an
             * open WebSocket keeps only what it uses. */
            http_req_free(c->req);
            c->req = NULL;
            rc = ws_session_open(c, d.room, owned, d.deflate ? &d.pmd : NULL, has_since, since);
        } else {
            free(owned);
            if (!owned)
                conn_close_now(c);
        }
    }
    json_decref(claims);
    return rc;
}
