/*
 * roomrelay-backend's connections: accept, the read path up to the point
 * where a byte belongs to PROXY, HTTP or WebSocket, the write path, timers,
 * limits per address, and drain. One event loop; nothing locks.
 *
 * Writes are corked: conn_queue() only queues a buffer reference and puts
 * the connection on the dirty list; an ev_prepare watcher, which runs once
 * per loop pass before the loop sleeps, writes every dirty connection with
 * one writev. A room message therefore costs one buffer for all its
 * recipients and one system call per recipient per pass, however many
 * messages the pass produced.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend/proxy_v2.h"
#include "backend/server_int.h"
#include "backend/stats.h"
#include "backend/ws_handshake.h"
#include "lib/log.h"
#include "lib/net.h"

#define READ_BUF 65536

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- connections per client address ---- */

/* Open addressing, keyed by the 16-byte address (v4 mapped into v6). An
 * entry whose count drops to 0 stays as a tombstone-free slot: counts are
 * only ever looked up by the same key, so 0 means free. */
struct ip_slot {
    uint8_t ip[16];
    uint32_t count;
};

struct ip_table {
    struct ip_slot *slots;
    size_t cap, used;
};

static uint64_t ip_hash(const uint8_t ip[16])
{
    uint64_t h = 1469598103934665603u;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 1099511628211u;
    return h;
}

static struct ip_slot *ip_slot(struct ip_table *t, const uint8_t ip[16], bool create)
{
    if (create && (t->used + 1) * 4 > t->cap * 3) {
        size_t ncap = t->cap ? t->cap * 2 : 256;
        struct ip_slot *ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return NULL;
        size_t used = 0;
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i].count == 0)
                continue;
            size_t j = ip_hash(t->slots[i].ip) & (ncap - 1);
            while (ns[j].count)
                j = (j + 1) & (ncap - 1);
            ns[j] = t->slots[i];
            used++;
        }
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
        t->used = used;
    }
    if (t->cap == 0)
        return NULL;
    size_t j = ip_hash(ip) & (t->cap - 1);
    for (size_t n = 0; n < t->cap; n++, j = (j + 1) & (t->cap - 1)) {
        struct ip_slot *sl = &t->slots[j];
        if (sl->count && memcmp(sl->ip, ip, 16) == 0)
            return sl;
        if (!sl->count)
            return create ? sl : NULL;
    }
    return NULL;
}

static void ip_key(const struct conn *c, uint8_t key[16])
{
    if (c->ip_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, c->ip, 4);
    } else {
        memcpy(key, c->ip, 16);
    }
}

/* Takes a slot for the connection's address; false when the address is at
 * --max-conns-per-ip. */
static bool ip_acquire(struct server *s, struct conn *c)
{
    if (s->cfg->max_conns_per_ip <= 0)
        return true;
    uint8_t key[16];
    ip_key(c, key);
    struct ip_slot *sl = ip_slot(s->per_ip, key, true);
    if (!sl)
        return false;
    if (sl->count == 0) {
        memcpy(sl->ip, key, 16);
        s->per_ip->used++;
    }
    if (sl->count >= (uint64_t)s->cfg->max_conns_per_ip) {
        if (sl->count == 0)
            s->per_ip->used--;
        return false;
    }
    sl->count++;
    c->counted_ip = true;
    return true;
}

static void ip_release(struct server *s, struct conn *c)
{
    if (!c->counted_ip)
        return;
    uint8_t key[16];
    ip_key(c, key);
    struct ip_slot *sl = ip_slot(s->per_ip, key, false);
    if (sl && sl->count > 0)
        sl->count--;
    c->counted_ip = false;
}

/* The client's address as a trusted proxy's X-Forwarded-For gives it: the
 * connection's slot in the per-address table moves to it. Returns false
 * when that address is already at --max-conns-per-ip. */
bool conn_set_client_ip(struct conn *c, int family, const uint8_t *ip)
{
    ip_release(c->srv, c);
    c->ip_family = (uint8_t)family;
    memcpy(c->ip, ip, family == AF_INET ? 4 : 16);
    return ip_acquire(c->srv, c);
}

/* ---- trusted proxies ---- */

bool server_ip_trusted(const struct server *s, int family, const uint8_t *ip)
{
    for (size_t i = 0; i < s->cfg->n_trusted; i++) {
        const struct cidr *n = &s->cfg->trusted[i];
        if (n->family != family)
            continue;
        unsigned bits = n->bits, full = bits / 8, rest = bits % 8;
        if (memcmp(n->addr, ip, full) != 0)
            continue;
        if (rest && ((n->addr[full] ^ ip[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return true;
    }
    return false;
}

/* ---- the write path ---- */

static void conn_set_events(struct conn *c, bool want_write)
{
    if (c->want_write == want_write)
        return;
    c->want_write = want_write;
    ev_io_stop(c->srv->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ | (want_write ? EV_WRITE : 0));
    ev_io_start(c->srv->loop, &c->io);
}

/* Writes what the connection has queued. Returns -1 if it was closed. */
static int conn_flush(struct conn *c)
{
    size_t before = c->outq.bytes;
    int rc = outq_flush(&c->outq, c->fd);
    rr_add(&bstats.bytes_out, before - c->outq.bytes);
    if (rc < 0) {
        rr_debug("connection fd=%d: write failed: %s", c->fd, strerror(errno));
        conn_close_now(c);
        return -1;
    }
    if (rc == 0) {
        conn_set_events(c, true);
        return 0;
    }
    conn_set_events(c, false);
    if (c->state == CONN_CLOSING) {
        conn_close_now(c);
        return -1;
    }
    return 0;
}

static void mark_dirty(struct conn *c)
{
    if (c->dirty || c->want_write)
        return;
    c->dirty = true;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

int conn_queue(struct conn *c, struct wsbuf *b)
{
    if (c->state == CONN_CLOSING)
        return 0;
    if (c->srv->cfg->max_backlog > 0 &&
        c->outq.bytes + b->len > (uint64_t)c->srv->cfg->max_backlog && c->state == CONN_WS) {
        /* A consumer this slow would hold every message of its rooms in
         * memory: drop what it has not read and tell it why. */
        stats_reject(REJ_SLOW_CONSUMER);
        rr_info("connection fd=%d sub=%s: more than %lld bytes unread, closing (1008)", c->fd,
                c->sub ? c->sub : "-", (long long)c->srv->cfg->max_backlog);
        outq_drop_unsent(&c->outq);
        conn_ws_close(c, WS_CLOSE_POLICY, "slow consumer");
        return -1;
    }
    if (outq_push(&c->outq, b) < 0) {
        /* A WebSocket is closed later, not here: bus callbacks queue
         * frames, and the connection must outlive them. */
        if (c->state == CONN_WS)
            conn_ws_close(c, WS_CLOSE_INTERNAL, "out of memory");
        else
            conn_close_now(c);
        return -1;
    }
    mark_dirty(c);
    return 0;
}

int conn_queue_bytes(struct conn *c, const void *p, size_t len)
{
    struct wsbuf *b = wsbuf_new(len);
    if (!b) {
        conn_close_now(c);
        return -1;
    }
    memcpy(b->data, p, len);
    int rc = conn_queue(c, b);
    wsbuf_unref(b);
    return rc;
}

void conn_ws_close(struct conn *c, uint16_t code, const char *reason)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (code >= 1000 && code < 1016)
        rr_inc(&bstats.closes[code - 1000]);
    /* Queued past the backlog limit and without closing on failure: the
     * connection ends at the latest when the timer below fires. */
    uint8_t frame[WS_CONTROL_FRAME_MAX];
    size_t n = ws_frame_build_close(frame, sizeof(frame), code, reason);
    struct wsbuf *b = n ? wsbuf_new(n) : NULL;
    if (b) {
        memcpy(b->data, frame, n);
        if (outq_push(&c->outq, b) == 0)
            mark_dirty(c);
        wsbuf_unref(b);
    }
    /* Give the peer a moment to read the close frame, no more. */
    ev_timer_stop(c->srv->loop, &c->timer);
    ev_timer_set(&c->timer, 2.0, 0.0);
    ev_timer_start(c->srv->loop, &c->timer);
}

/* The prepare watcher: one writev per dirty connection per loop pass. */
static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *s = w->data;
    if (!s->dirty)
        return;
    uint64_t t0 = mono_ns();
    while (s->dirty) {
        struct conn *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        conn_flush(c);
    }
    rr_hist_observe_ns(&bstats.flush_seconds, mono_ns() - t0);
}

/* Refuses a connection at the HTTP level: answer, then close. */
int conn_refuse(struct conn *c, int status, const char *reason, const char *extra,
                enum reject_reason why)
{
    char out[512];
    size_t n = http_error_response(out, sizeof(out), status, extra, reason);
    stats_reject(why);
    if (conn_queue_bytes(c, out, n) < 0)
        return -1;
    c->state = CONN_CLOSING;
    return 0;
}

/* ---- closing ---- */

void conn_close_now(struct conn *c)
{
    struct server *s = c->srv;
    ws_session_end(c);
    ev_io_stop(s->loop, &c->io);
    ev_timer_stop(s->loop, &c->timer);
    close(c->fd);
    if (c->dirty) {
        /* Unlink from the dirty list (rare: closing in the middle of a pass). */
        struct conn **pp = &s->dirty;
        while (*pp && *pp != c)
            pp = &(*pp)->dirty_next;
        if (*pp)
            *pp = c->dirty_next;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ip_release(s, c);
    outq_clear(&c->outq);
    http_req_free(c->req);
    free(c->spill);
    s->nconns--;
    rr_inc(&bstats.conns_closed);
    free(c);
}

/* ---- the read path ---- */

static int conn_on_http(struct conn *c, uint8_t *buf, size_t len)
{
    size_t used = 0;
    enum http_req_status st = http_req_feed(c->req, (const char *)buf, len, &used);
    if (st == HTTP_REQ_NEED_MORE)
        return 0;
    if (st == HTTP_REQ_ERROR) {
        enum http_req_err e = http_req_error(c->req);
        return conn_refuse(c, http_req_error_status(e), http_req_error_reason(e), NULL,
                           REJ_BAD_HANDSHAKE);
    }
    /* A complete request: the WebSocket path or an ops endpoint. Bytes after
     * it (a pipelined request, or a client's first frame) are kept. */
    size_t rest = len - used;
    if (wsh_is_ws_path(c->req)) {
        if (ws_upgrade(c) < 0)
            return -1;
        if (c->state == CONN_WS && rest > 0)
            return ws_session_read(c, buf + used, rest);
        return 0;
    }
    if (ops_serve(c) < 0)
        return -1;
    if (c->state == CONN_HTTP && rest > 0)
        return conn_on_http(c, buf + used, rest);
    return 0;
}

static int conn_on_proxy(struct conn *c, uint8_t *buf, size_t len)
{
    struct pp2_info info;
    enum pp2_result st = pp2_parse(buf, len, &info);
    if (st == PP2_NEED_MORE) {
        /* HAProxy sends the header in one segment; keep a partial one aside. */
        c->spill = malloc(len);
        if (!c->spill) {
            conn_close_now(c);
            return -1;
        }
        memcpy(c->spill, buf, len);
        c->nspill = (uint16_t)len;
        return 0;
    }
    bool trusted = c->peer_trusted;
    if (st == PP2_ERROR || (st == PP2_OK && !trusted) ||
        (st == PP2_NOT_PROXY && c->srv->cfg->require_proxy)) {
        stats_reject(REJ_PROXY_PROTOCOL);
        rr_info("connection fd=%d: %s, closing", c->fd,
                st == PP2_ERROR ? "bad PROXY header"
                : st == PP2_OK  ? "PROXY header from an address not in --trusted-proxy"
                                : "no PROXY header (--require-proxy-protocol)");
        conn_close_now(c);
        return -1;
    }
    size_t skip = 0;
    if (st == PP2_OK) {
        skip = info.consumed;
        if (info.src.ss_family == AF_INET) {
            c->ip_family = AF_INET;
            memcpy(c->ip, &((struct sockaddr_in *)&info.src)->sin_addr, 4);
        } else if (info.src.ss_family == AF_INET6) {
            c->ip_family = AF_INET6;
            memcpy(c->ip, &((struct sockaddr_in6 *)&info.src)->sin6_addr, 16);
        }
        c->via_proxy = true;
    }
    c->state = CONN_HTTP;
    /* A trusted proxy without a PROXY header may name the client in
     * X-Forwarded-For: its connections are counted at the handshake. */
    if (!(trusted && !c->via_proxy) && !ip_acquire(c->srv, c))
        return conn_refuse(c, 503, "too many connections from this address", NULL,
                           REJ_MAX_CONNS_PER_IP);
    return skip < len ? conn_on_http(c, buf + skip, len - skip) : 0;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct conn *c = io->data;
    struct server *s = c->srv;

    if (revents & EV_WRITE) {
        if (conn_flush(c) < 0)
            return;
        if (!(revents & EV_READ))
            return;
    }

    /* Bytes a previous read left (a partial frame header, or a partial PROXY
     * header) go first. */
    uint8_t *buf = s->rbuf;
    size_t have = c->npending;
    memcpy(buf, c->pending, have);
    c->npending = 0;
    if (c->spill) {
        memcpy(buf, c->spill, c->nspill);
        have = c->nspill;
        free(c->spill);
        c->spill = NULL;
        c->nspill = 0;
    }

    ssize_t n = recv(c->fd, buf + have, s->rbuf_cap - have, 0);
    if (n == 0) {
        conn_close_now(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (have > sizeof(c->pending)) {
                c->spill = malloc(have);
                if (!c->spill) {
                    conn_close_now(c);
                    return;
                }
                memcpy(c->spill, buf, have);
                c->nspill = (uint16_t)have;
            } else {
                c->npending = (uint8_t)have;
                memcpy(c->pending, buf, have);
            }
            return;
        }
        conn_close_now(c);
        return;
    }
    rr_add(&bstats.bytes_in, (uint64_t)n);
    size_t len = have + (size_t)n;
    c->last_rx_ns = mono_ns();

    switch (c->state) {
    case CONN_PROXY:
        conn_on_proxy(c, buf, len);
        return;
    case CONN_HTTP:
        conn_on_http(c, buf, len);
        return;
    case CONN_WS:
        ws_session_read(c, buf, len);
        return;
    case CONN_CLOSING:
        return; /* reading only to notice the peer's close */
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = t->data;
    switch (c->state) {
    case CONN_PROXY:
    case CONN_HTTP:
        stats_reject(REJ_HANDSHAKE_TIMEOUT);
        conn_close_now(c);
        return;
    case CONN_WS:
        ws_session_timer(c);
        return;
    case CONN_CLOSING:
        conn_close_now(c);
        return;
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct server *s = io->data;
    for (;;) {
        struct sockaddr_storage ss = {0};
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                rr_warn("accept: %s (raise the open files limit or lower --max-connections)",
                        strerror(errno));
            return;
        }
        struct conn *c = NULL;
        if (posix_memalign((void **)&c, 64, sizeof(*c)) == 0)
            memset(c, 0, sizeof(*c));
        else
            c = NULL;
        struct http_limits lim = HTTP_LIMITS_DEFAULT;
        lim.max_head = (size_t)s->cfg->max_header_bytes;
        if (c)
            c->req = http_req_new(&lim);
        if (!c || !c->req) {
            free(c);
            close(fd);
            rr_error("out of memory accepting a connection");
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->srv = s;
        outq_init(&c->outq);
        if (ss.ss_family == AF_INET) {
            c->ip_family = AF_INET;
            memcpy(c->ip, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        } else if (ss.ss_family == AF_INET6) {
            c->ip_family = AF_INET6;
            memcpy(c->ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        }
        c->peer_trusted = server_ip_trusted(s, c->ip_family, c->ip);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        rr_inc(&bstats.conns_accepted);

        /* A PROXY header can only come from a trusted proxy; without one
         * configured, every connection starts as HTTP. */
        c->state = (s->cfg->require_proxy || s->cfg->n_trusted > 0) ? CONN_PROXY : CONN_HTTP;
        ev_io_init(&c->io, conn_read_cb, fd, EV_READ);
        c->io.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_init(&c->timer, conn_timer_cb, (double)s->cfg->handshake_timeout_ms / 1000.0, 0.0);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
        if (c->state == CONN_HTTP && !ip_acquire(s, c))
            conn_refuse(c, 503, "too many connections from this address", NULL,
                        REJ_MAX_CONNS_PER_IP);
    }
}

/* ---- drain ---- */

static void drain_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct server *s = t->data;
    rr_info("drain timeout: closing %llu connection(s) with 1001", (unsigned long long)s->nws);
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_WS)
            conn_ws_close(c, WS_CLOSE_GOING_AWAY, "server draining");
    }
}

#define MIGRATE_TICK_MS 100
#define MIGRATE_AFTER_MIN_MS 100
#define MIGRATE_AFTER_SPREAD_MS 900

/* When a migrated client should reconnect: spread over a second so that a
 * whole room does not knock at once on the backend that takes it over. */
static int64_t migrate_after_ms(struct server *s)
{
    s->migrate_rnd = s->migrate_rnd * 6364136223846793005u + 1442695040888963407u;
    return MIGRATE_AFTER_MIN_MS + (int64_t)((s->migrate_rnd >> 33) % MIGRATE_AFTER_SPREAD_MS);
}

/* One batch of migrates every tick: --drain-rate x tick of them, the
 * fractions carried over in thousandths (a rate of 2 is one every 5 ticks),
 * or every WebSocket at once with --drain-rate 0. Connections accepted since
 * are plain HTTP (new WebSockets are refused), so a pass from the head of
 * the list finds the ones left. */
static void migrate_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct server *s = t->data;
    int64_t rate = s->cfg->drain_rate;
    uint64_t budget = UINT64_MAX;
    if (rate > 0) {
        s->migrate_credit += rate * MIGRATE_TICK_MS;
        budget = (uint64_t)(s->migrate_credit / 1000);
        s->migrate_credit %= 1000;
    }
    uint64_t sent = 0;
    bool left = false;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state != CONN_WS)
            continue;
        if (sent == budget) {
            left = true;
            break;
        }
        ws_session_migrate(c, migrate_after_ms(s));
        sent++;
    }
    if (sent)
        rr_info("drain: %llu connection(s) sent migrate and closed with 1012",
                (unsigned long long)sent);
    if (!left)
        ev_timer_stop(s->loop, &s->migrate_timer);
}

static void state_changed(struct server *s)
{
    if (s->state_cb)
        s->state_cb(s->state_arg);
}

void server_drain(struct server *s, const char *why)
{
    if (s->draining)
        return;
    s->draining = true;
    rr_info("draining (%s): refusing new WebSockets; %s; those left close in %llds", why,
            s->cfg->redis ? "migrating open ones" : "open ones stay",
            (long long)s->cfg->drain_timeout_s);
    ev_timer_init(&s->drain_timer, drain_timer_cb, (double)s->cfg->drain_timeout_s, 0.0);
    s->drain_timer.data = s;
    ev_timer_start(s->loop, &s->drain_timer);
    state_changed(s);
    /* Without Redis there is nowhere to migrate to: another backend would
     * not know the rooms' seqs or history. */
    if (s->cfg->redis) {
        /* The first tick sends at least one. */
        int64_t first = s->cfg->drain_rate * MIGRATE_TICK_MS;
        s->migrate_credit = first < 1000 ? 1000 - first : 0;
        s->migrate_rnd = s->session_seed ^ mono_ns();
        ev_timer_init(&s->migrate_timer, migrate_cb, 0.0, MIGRATE_TICK_MS / 1000.0);
        s->migrate_timer.data = s;
        ev_timer_start(s->loop, &s->migrate_timer);
    }
}

void server_undrain(struct server *s)
{
    if (!s->draining)
        return;
    s->draining = false;
    ev_timer_stop(s->loop, &s->drain_timer);
    ev_timer_stop(s->loop, &s->migrate_timer);
    rr_info("undrained: accepting WebSockets again");
    state_changed(s);
}

bool server_draining(const struct server *s)
{
    return s->draining;
}

void server_on_state(struct server *s, void (*cb)(void *arg), void *arg)
{
    s->state_cb = cb;
    s->state_arg = arg;
}

uint64_t server_websockets(const struct server *s)
{
    return s->nws;
}

uint64_t server_rooms(const struct server *s)
{
    return room_table_count(s->rooms);
}

bool server_degraded(const struct server *s)
{
    return s->bus->ops->degraded(s->bus);
}

uint64_t server_connections(const struct server *s)
{
    return s->nconns;
}

/* ---- life cycle ---- */

struct server *server_new(struct ev_loop *loop, const struct backend_config *cfg, char *err,
                          size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->rbuf_cap = READ_BUF;
    s->rbuf = malloc(READ_BUF + PP2_MAX_HEADER);
    s->rooms = room_table_new();
    s->per_ip = calloc(1, sizeof(*s->per_ip));
    s->bus = cfg->redis
                 ? bus_redis_new(loop, cfg->redis, server_on_event, s, (size_t)cfg->dedup_size)
                 : bus_local_new(server_on_event, s, (size_t)cfg->dedup_size);
    if (s->bus)
        s->bus->on_member = server_on_member;
    s->token_cache = rr_token_cache_new(cfg->keys ? 16384 : 0);
    s->sig_ctx = cfg->keys ? rr_jwt_sig_ctx_new() : NULL;
    if (cfg->deflate) {
        s->inflate_buf = malloc((size_t)(cfg->max_message > 0 ? cfg->max_message : 1 << 24) + 1);
        if (!s->inflate_buf || pmd_deflater_init(&s->deflater, (int)cfg->deflate_level) < 0) {
            snprintf(err, errlen, "out of memory (permessage-deflate)");
            server_free(s);
            return NULL;
        }
    }
    if (!s->rbuf || !s->rooms || !s->per_ip || !s->bus ||
        (cfg->keys && (!s->token_cache || !s->sig_ctx))) {
        snprintf(err, errlen, "out of memory");
        server_free(s);
        return NULL;
    }
    s->lfd = rr_listen_tcp("--listen", cfg->listen, false, 4096, err, errlen);
    if (s->lfd < 0) {
        server_free(s);
        return NULL;
    }
    s->started_ns = mono_ns();
    s->started_unix = (int64_t)time(NULL);
    s->session_seed = s->started_ns ^ ((uint64_t)getpid() << 32);
    ev_io_init(&s->accept_io, accept_cb, s->lfd, EV_READ);
    s->accept_io.data = s;
    ev_io_start(loop, &s->accept_io);
    ev_prepare_init(&s->flush_prepare, flush_cb);
    s->flush_prepare.data = s;
    ev_prepare_start(loop, &s->flush_prepare);
    return s;
}

void server_stop(struct server *s)
{
    if (s->lfd >= 0) {
        ev_io_stop(s->loop, &s->accept_io);
        close(s->lfd);
        s->lfd = -1;
    }
    s->stopping = true;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_WS)
            conn_ws_close(c, WS_CLOSE_GOING_AWAY, "server stopping");
        else
            conn_close_now(c);
    }
}

void server_free(struct server *s)
{
    if (!s)
        return;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_close_now(c);
    }
    if (s->lfd > 0) {
        ev_io_stop(s->loop, &s->accept_io);
        close(s->lfd);
    }
    ev_prepare_stop(s->loop, &s->flush_prepare);
    ev_timer_stop(s->loop, &s->drain_timer);
    ev_timer_stop(s->loop, &s->migrate_timer);
    if (s->bus)
        s->bus->ops->free(s->bus);
    room_table_free(s->rooms);
    rr_token_cache_free(s->token_cache);
    rr_jwt_sig_ctx_free(s->sig_ctx);
    if (s->per_ip)
        free(s->per_ip->slots);
    free(s->per_ip);
    free(s->rbuf);
    free(s->inflate_buf);
    pmd_deflater_free(&s->deflater);
    free(s);
}
