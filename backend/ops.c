/*
 * Plain HTTP on the backend's port: /health, /metrics, /status, /rooms and
 * the admin endpoints. Answers one complete request (keep-alive allowed);
 * /ws never comes here (handshake.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "backend/server_int.h"
#include "backend/stats.h"
#include "lib/log.h"

#ifndef RR_VERSION
#define RR_VERSION "0.1.0"
#endif

static bool path_is(const char *p, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(p, lit, len) == 0;
}

/* Queues a whole response. Keeps the connection for the next request when
 * the client allows it. */
static int respond(struct conn *c, int status, const char *ctype, const char *extra,
                   const char *body, size_t len)
{
    bool keep = http_req_keep_alive(c->req);
    bool head = http_req_method(c->req) == HTTP_M_HEAD;
    struct rr_text t = {0};
    rr_text_printf(&t,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n%s%s\r\n",
                   status, http_status_text(status), ctype, len, extra ? extra : "",
                   keep ? "" : "Connection: close\r\n");
    if (!head)
        rr_text_append(&t, body, len);
    int rc = t.oom ? -1 : conn_queue_bytes(c, t.p, t.len);
    rr_text_free(&t);
    if (rc < 0)
        return -1;
    if (keep) {
        http_req_reset(c->req);
        /* A keep-alive connection gets the handshake timeout again as its idle limit. */
        ev_timer_stop(c->srv->loop, &c->timer);
        ev_timer_set(&c->timer, (double)c->srv->cfg->handshake_timeout_ms / 1000.0, 0.0);
        ev_timer_start(c->srv->loop, &c->timer);
    } else {
        c->state = CONN_CLOSING;
    }
    return 0;
}

static int respond_json(struct conn *c, int status, struct rr_text *body)
{
    int rc = respond(c, status, "application/json", NULL, body->p ? body->p : "", body->len);
    rr_text_free(body);
    return rc;
}

static int respond_text(struct conn *c, int status, const char *extra, const char *text)
{
    return respond(c, status, "text/plain", extra, text, strlen(text));
}

static int health(struct conn *c)
{
    struct server *s = c->srv;
    struct rr_text t = {0};
    bool degraded = s->bus->ops->degraded(s->bus);
    if (s->draining)
        rr_text_printf(&t, "{\"status\":\"draining\",\"reason\":\"draining\"}\n");
    else if (degraded)
        rr_text_printf(&t, "{\"status\":\"degraded\",\"reason\":\"redis unreachable\"}\n");
    else
        rr_text_printf(&t, "{\"status\":\"ok\"}\n");
    return respond_json(c, s->draining || degraded ? 503 : 200, &t);
}

static int status(struct conn *c)
{
    struct server *s = c->srv;
    struct rr_text t = {0};
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:b}", "instance", s->cfg->instance_id,
                          "state", s->draining ? "draining" : "up", "connections",
                          (json_int_t)s->nws, "rooms", (json_int_t)room_table_count(s->rooms),
                          "uptime", (json_int_t)((mono_ns() - s->started_ns) / 1000000000u),
                          "version", RR_VERSION, "degraded", s->bus->ops->degraded(s->bus));
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (txt)
        rr_text_printf(&t, "%s\n", txt);
    free(txt);
    json_decref(o);
    return respond_json(c, 200, &t);
}

static int rooms(struct conn *c)
{
    struct server *s = c->srv;
    json_t *o = json_object();
    for (struct room *r = room_next(s->rooms, NULL); r && o; r = room_next(s->rooms, r))
        json_object_set_new(o, r->name, json_integer(r->n_members));
    char *txt = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    struct rr_text t = {0};
    if (txt)
        rr_text_printf(&t, "%s\n", txt);
    free(txt);
    json_decref(o);
    return respond_json(c, 200, &t);
}

static int metrics(struct conn *c)
{
    struct server *s = c->srv;
    struct rr_text t = {0};
    backend_stats_render(&t, room_table_count(s->rooms), s->bus->ops->degraded(s->bus),
                         s->draining);
    int rc = respond(c, 200, "text/plain; version=0.0.4", NULL, t.p ? t.p : "", t.len);
    rr_text_free(&t);
    return rc;
}

/* Constant-time comparison of the presented admin token. */
static bool admin_ok(struct conn *c)
{
    const char *want = c->srv->cfg->admin_token;
    size_t len;
    const char *h = http_req_header(c->req, "authorization", &len);
    if (!want || !h || len < 7 || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    len -= 7;
    size_t wl = strlen(want);
    unsigned diff = (unsigned)(len ^ wl);
    for (size_t i = 0; i < len && i < wl; i++)
        diff |= (unsigned)(h[i] ^ want[i]);
    return diff == 0;
}

static int admin(struct conn *c, bool drain)
{
    if (!c->srv->cfg->admin_token)
        return respond_text(c, 403, NULL,
                            "admin endpoints are off: start with --admin-token-file\n");
    if (!admin_ok(c))
        return respond_text(c, 401, "WWW-Authenticate: Bearer\r\n", "admin token required\n");
    if (drain)
        server_drain(c->srv, "POST /admin/drain");
    else
        server_undrain(c->srv);
    struct rr_text t = {0};
    rr_text_printf(&t, "{\"state\":\"%s\"}\n", drain ? "draining" : "up");
    return respond_json(c, 200, &t);
}

static int admin_drain(struct conn *c)
{
    return admin(c, true);
}

static int admin_undrain(struct conn *c)
{
    return admin(c, false);
}

int ops_serve(struct conn *c)
{
    static const struct {
        const char *path;
        bool post;
        int (*serve)(struct conn *c);
    } routes[] = {
        {"/health", false, health},          {"/metrics", false, metrics},
        {"/status", false, status},          {"/rooms", false, rooms},
        {"/admin/drain", true, admin_drain}, {"/admin/undrain", true, admin_undrain},
    };
    size_t plen;
    const char *path = http_req_path(c->req, &plen);
    enum http_method m = http_req_method(c->req);
    bool get = m == HTTP_M_GET || m == HTTP_M_HEAD;

    for (size_t i = 0; i < sizeof(routes) / sizeof(*routes); i++) {
        if (!path_is(path, plen, routes[i].path))
            continue;
        if (routes[i].post ? m != HTTP_M_POST : !get)
            return respond_text(c, 405, routes[i].post ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n",
                                "method not allowed\n");
        return routes[i].serve(c);
    }
    return respond_text(c, 404, NULL, "not found\n");
}
