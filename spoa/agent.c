/*
 * SPOP server I/O: listeners, connections, the HELLO handshake, reading
 * frames and writing ACKs and DISCONNECTs. What to answer is handler.c's job;
 * how bytes become frames is spop.c's. One libev loop per worker thread, each
 * worker with its own SO_REUSEPORT listener: a connection lives and dies on
 * one thread, so nothing here locks.
 *
 * Each connection owns one receive buffer (max frame + prefix) and one send
 * buffer. Frames are answered as they are parsed and the answers of one read
 * go out in one write, so every frame leaves in a single write unless the
 * socket itself is full.
 *
 * A NOTIFY whose route-room must ask Redis becomes a `pending`: its ACK so
 * far is copied out, the worker's router resolves the room, and the finished
 * ACK is queued when the answer comes (ACKs leave in any order: HAProxy
 * matches them by stream and frame id). The answers that complete in one
 * loop pass go out in one write, from the write watcher.
 */
#include "spoa/agent.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "spoa/handler.h"
#include "spoa/stats.h"

/* NOTIFYs waiting for Redis on one connection at most; beyond, route-room
 * is answered from the cache alone. */
#define MAX_PENDING 1024
/* Room for route-room's actions after the rest of an ACK. */
#define ROUTE_ACTIONS_MAX 256

enum conn_state {
    CONN_HELLO,   /* waiting for HAPROXY-HELLO */
    CONN_READY,   /* exchanging NOTIFY / ACK */
    CONN_CLOSING, /* last frame queued: close once it is written */
};

struct worker;
struct conn;

/* One NOTIFY whose ACK waits for the router. */
struct pending {
    struct conn *c; /* NULL once the connection is gone */
    struct pending *prev, *next;
    uint64_t t0;
    struct spoa_deferred d;
    size_t len, cap;
    uint8_t buf[]; /* the ACK so far */
};

struct conn {
    ev_io rio, wio;
    ev_timer timer; /* hello timeout, then idle timeout */
    int fd;
    enum conn_state state;
    uint32_t max_frame;
    struct worker *w;
    struct conn *prev, *next;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    struct pending *pend;
    uint32_t npend;
    bool stop_when_answered; /* the agent stops: disconnect once pend is empty */
};

struct worker {
    pthread_t thread;
    struct ev_loop *loop;
    ev_io accept_io;
    ev_async stop_async;
    ev_timer stop_timer;
    int lfd;
    bool stopping;
    struct conn *conns;
    size_t nconns;
    struct spoa_ctx ctx; /* ctx.router is this worker's */
};

static struct worker *workers;
static size_t nworkers;
/* --listen's Unix socket path, NULL when it is a TCP address. */
static const char *unix_path;
static _Atomic uint64_t total_conns;

static int64_t now_unix(void)
{
    return (int64_t)time(NULL);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    for (struct pending *p = c->pend; p; p = p->next)
        p->c = NULL;
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->timer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&total_conns, 1);
    rr_inc(&spoa_stats.conns_closed);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
    if (w->stopping && w->nconns == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

/* Writes what is queued. Returns -1 if the connection was freed. */
static int conn_flush(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->w->loop, &c->wio);
            return 0;
        }
        rr_debug("spop connection fd=%d: send failed: %s", c->fd, strerror(errno));
        conn_free(c);
        return -1;
    }
    c->woff = c->wlen = 0;
    ev_io_stop(c->w->loop, &c->wio);
    if (c->state == CONN_CLOSING) {
        conn_free(c);
        return -1;
    }
    return 0;
}

/* Makes room for `need` more bytes at the end of the send buffer. */
static int conn_reserve(struct conn *c, size_t need)
{
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + need <= c->wcap)
        return 0;
    if (c->woff > 0) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wlen + need <= c->wcap)
            return 0;
    }
    size_t ncap = c->wcap * 2;
    while (ncap < c->wlen + need)
        ncap *= 2;
    if (ncap > (size_t)c->w->ctx.cfg->max_write_backlog + need)
        return -1;
    uint8_t *nb = realloc(c->wbuf, ncap);
    if (!nb)
        return -1;
    c->wbuf = nb;
    c->wcap = ncap;
    return 0;
}

/* Queues an AGENT-DISCONNECT and closes once it is written. */
static void conn_disconnect(struct conn *c, uint32_t status, const char *message)
{
    spoa_stats_count_disconnect(status);
    if (status != SPOP_ST_NONE)
        rr_info("spop connection fd=%d: disconnecting, status %u (%s): %s", c->fd, status,
                spop_status_text(status), message);
    c->state = CONN_CLOSING;
    ev_io_stop(c->w->loop, &c->rio);
    ev_timer_stop(c->w->loop, &c->timer);
    size_t need = 64 + strlen(message);
    if (conn_reserve(c, need) == 0) {
        struct spop_writer wr;
        spop_writer_init(&wr, c->wbuf + c->wlen, c->wcap - c->wlen);
        c->wlen += spop_write_disconnect(&wr, SPOP_FRAME_AGENT_DISCONNECT, status, message);
    }
    /* Stop waiting for a peer that does not read its DISCONNECT. */
    ev_timer_set(&c->timer, 5.0, 0.0);
    ev_timer_start(c->w->loop, &c->timer);
}

static void conn_arm_timer(struct conn *c, int64_t ms)
{
    ev_timer_stop(c->w->loop, &c->timer);
    if (ms > 0) {
        ev_timer_set(&c->timer, (double)ms / 1000.0, 0.0);
        ev_timer_start(c->w->loop, &c->timer);
    }
}

static enum spop_status on_hello(struct conn *c, const struct spop_frame *f)
{
    struct spop_hello h;
    enum spop_status st = spop_hello_parse(f->payload, f->payload_len, &h);
    if (st != SPOP_ST_NONE)
        return st;
    if (!spop_versions_support_2(h.versions))
        return SPOP_ST_BAD_VSN;
    if (h.max_frame_size < SPOP_MIN_FRAME_SIZE)
        return SPOP_ST_BAD_FRAME_SIZE;

    uint32_t mfs = h.max_frame_size;
    if (mfs > (uint32_t)c->w->ctx.cfg->max_frame_size)
        mfs = (uint32_t)c->w->ctx.cfg->max_frame_size;
    c->max_frame = mfs;

    /* Announce pipelining and async only where HAProxy offers them
     * (HAProxy 3.1+ has no async). */
    bool pipelining = spop_list_has(h.capabilities, "pipelining");
    bool async = spop_list_has(h.capabilities, "async");
    char caps[32];
    snprintf(caps, sizeof(caps), "%s%s%s", pipelining ? "pipelining" : "",
             pipelining && async ? "," : "", async ? "async" : "");

    if (conn_reserve(c, 128) < 0)
        return SPOP_ST_RES;
    struct spop_writer wr;
    spop_writer_init(&wr, c->wbuf + c->wlen, c->wcap - c->wlen);
    size_t n = spop_write_agent_hello(&wr, mfs, caps);
    if (n == 0)
        return SPOP_ST_RES;
    c->wlen += n;

    if (h.healthcheck) {
        rr_inc(&spoa_stats.healthchecks);
        c->state = CONN_CLOSING;
        ev_io_stop(c->w->loop, &c->rio);
        return SPOP_ST_NONE;
    }
    rr_debug("spop connection fd=%d: hello, max-frame-size %u, capabilities '%s'", c->fd, mfs,
             caps);
    c->state = CONN_READY;
    conn_arm_timer(c, c->w->ctx.cfg->idle_timeout_ms);
    return SPOP_ST_NONE;
}

/* The router's answer to a pending NOTIFY: finish its ACK and queue it. */
static void on_routed(void *arg, const struct spoa_route_answer *a, enum spoa_route_result res)
{
    (void)res;
    struct pending *p = arg;
    struct conn *c = p->c;
    if (c) {
        if (p->prev)
            p->prev->next = p->next;
        else
            c->pend = p->next;
        if (p->next)
            p->next->prev = p->prev;
        c->npend--;
    }
    if (c && c->state != CONN_CLOSING) {
        size_t n = spoa_finish_ack(p->buf, p->len, p->cap, &p->d, c->w->ctx.cfg, a);
        if (n == 0 || conn_reserve(c, n) < 0) {
            conn_disconnect(c, SPOP_ST_RES, "cannot queue an ACK");
            ev_io_start(c->w->loop, &c->wio);
        } else {
            memcpy(c->wbuf + c->wlen, p->buf, n);
            c->wlen += n;
            rr_inc(&spoa_stats.notify_frames);
            rr_hist_observe_ns(&spoa_stats.notify_seconds, mono_ns() - p->t0);
            if (c->stop_when_answered && c->npend == 0)
                conn_disconnect(c, SPOP_ST_NONE, "agent is stopping");
            ev_io_start(c->w->loop, &c->wio);
        }
    }
    free(p);
}

/* Parks an ACK that waits for route-room's answer (out/len: the ACK so far). */
static enum spop_status defer(struct conn *c, const struct spoa_deferred *d, const uint8_t *out,
                              size_t len, uint64_t t0)
{
    size_t cap = len + ROUTE_ACTIONS_MAX;
    if (cap > (size_t)c->max_frame + SPOP_LEN_PREFIX)
        cap = (size_t)c->max_frame + SPOP_LEN_PREFIX;
    struct pending *p = malloc(sizeof(*p) + cap);
    if (!p)
        return SPOP_ST_RES;
    *p = (struct pending){.c = c, .next = c->pend, .t0 = t0, .d = *d, .len = len, .cap = cap};
    memcpy(p->buf, out, len);
    if (c->pend)
        c->pend->prev = p;
    c->pend = p;
    c->npend++;
    spoa_router_resolve(c->w->ctx.router, d->room, d->room_len, on_routed, p);
    return SPOP_ST_NONE;
}

static enum spop_status on_notify(struct conn *c, const struct spop_frame *f)
{
    if (!(f->flags & SPOP_FLAG_FIN))
        return SPOP_ST_FRAG_NOT_SUP;
    uint64_t t0 = mono_ns();
    size_t room = (size_t)c->max_frame + SPOP_LEN_PREFIX;
    if (conn_reserve(c, room) < 0)
        return SPOP_ST_RES;
    c->w->ctx.now = now_unix();
    size_t n = 0;
    struct spoa_deferred d = {0};
    enum spop_status st =
        spoa_handle_notify_async(&c->w->ctx, f, c->wbuf + c->wlen, c->wcap - c->wlen, c->max_frame,
                                 &n, c->npend < MAX_PENDING ? &d : NULL);
    if (st != SPOP_ST_NONE)
        return st;
    if (d.pending)
        return defer(c, &d, c->wbuf + c->wlen, n, t0);
    c->wlen += n;
    rr_inc(&spoa_stats.notify_frames);
    rr_hist_observe_ns(&spoa_stats.notify_seconds, mono_ns() - t0);
    return SPOP_ST_NONE;
}

/* Handles one complete frame. Returns the status to disconnect with, or NONE. */
static enum spop_status on_frame(struct conn *c, const struct spop_frame *f, const char **why)
{
    switch (c->state) {
    case CONN_HELLO:
        if (f->type != SPOP_FRAME_HAPROXY_HELLO) {
            *why = "expected HAPROXY-HELLO first";
            return SPOP_ST_INVALID;
        }
        *why = "bad HAPROXY-HELLO";
        return on_hello(c, f);
    case CONN_READY:
        switch (f->type) {
        case SPOP_FRAME_NOTIFY:
            *why = "bad NOTIFY";
            return on_notify(c, f);
        case SPOP_FRAME_HAPROXY_DISCONNECT: {
            struct spop_disconnect d;
            rr_inc(&spoa_stats.disconnect_recv);
            if (spop_disconnect_parse(f->payload, f->payload_len, &d) == SPOP_ST_NONE &&
                d.status != SPOP_ST_NONE)
                rr_info("spop connection fd=%d: HAProxy disconnects, status %u: %.*s", c->fd,
                        d.status, (int)d.message.len, d.message.ptr);
            conn_disconnect(c, SPOP_ST_NONE, "bye");
            return SPOP_ST_NONE;
        }
        case SPOP_FRAME_UNSET:
            *why = "fragmented payload without the fragmentation capability";
            return SPOP_ST_FRAG_NOT_SUP;
        default:
            *why = "unexpected frame type";
            return SPOP_ST_INVALID;
        }
    case CONN_CLOSING:
        return SPOP_ST_NONE;
    }
    return SPOP_ST_NONE;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = io->data;

    for (;;) {
        if (c->rlen == c->rcap) {
            /* A full buffer with no whole frame cannot happen: parse rejects
             * frames above max_frame, and rcap holds one. */
            conn_disconnect(c, SPOP_ST_TOO_BIG, "frame larger than the receive buffer");
            break;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n == 0) {
            conn_free(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_free(c);
            return;
        }
        c->rlen += (size_t)n;

        size_t off = 0;
        while (c->state != CONN_CLOSING) {
            uint32_t limit =
                c->state == CONN_HELLO ? (uint32_t)c->w->ctx.cfg->max_frame_size : c->max_frame;
            struct spop_frame f;
            int rc = spop_frame_parse(c->rbuf + off, c->rlen - off, limit, &f);
            if (rc == 0)
                break;
            if (rc < 0) {
                conn_disconnect(c, (uint32_t)-rc, "malformed frame");
                break;
            }
            off += (size_t)rc;
            const char *why = "";
            enum spop_status st = on_frame(c, &f, &why);
            if (st != SPOP_ST_NONE) {
                conn_disconnect(c, st, why);
                break;
            }
            if (c->state == CONN_READY)
                conn_arm_timer(c, c->w->ctx.cfg->idle_timeout_ms);
        }
        if (off > 0) {
            memmove(c->rbuf, c->rbuf + off, c->rlen - off);
            c->rlen -= off;
        }
        if (c->state == CONN_CLOSING)
            break;
    }
    conn_flush(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(io->data);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = t->data;
    if (c->state == CONN_CLOSING) {
        conn_free(c);
        return;
    }
    conn_disconnect(c, SPOP_ST_TIMEOUT,
                    c->state == CONN_HELLO ? "no HAPROXY-HELLO in time" : "idle timeout");
    conn_flush(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct worker *w = io->data;
    for (;;) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                rr_warn("accept: %s", strerror(errno));
            return;
        }
        int64_t maxc = w->ctx.cfg->max_connections;
        if (maxc > 0 && atomic_load(&total_conns) >= (uint64_t)maxc) {
            rr_inc(&spoa_stats.conns_refused);
            rr_warn("refusing a connection: --max-connections %lld reached", (long long)maxc);
            close(fd);
            continue;
        }
        int one = 1;
        if (!unix_path)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        struct conn *c = calloc(1, sizeof(*c));
        size_t rcap = (size_t)w->ctx.cfg->max_frame_size + SPOP_LEN_PREFIX;
        if (c) {
            c->rbuf = malloc(rcap);
            c->wbuf = malloc(rcap);
        }
        if (!c || !c->rbuf || !c->wbuf) {
            rr_error("out of memory accepting a connection");
            if (c) {
                free(c->rbuf);
                free(c->wbuf);
            }
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->w = w;
        c->rcap = c->wcap = rcap;
        c->state = CONN_HELLO;
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        atomic_fetch_add(&total_conns, 1);
        rr_inc(&spoa_stats.conns_accepted);

        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        ev_init(&c->timer, conn_timer_cb);
        c->rio.data = c->wio.data = c->timer.data = c;
        ev_io_start(loop, &c->rio);
        conn_arm_timer(c, w->ctx.cfg->hello_timeout_ms);
    }
}

static void stop_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Graceful stop of one worker: no new connections; every connection gets
 * AGENT-DISCONNECT after the frames already read are answered (at once, or
 * when the router answers the pending ones). */
static void stop_async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct worker *w = a->data;
    w->stopping = true;
    ev_io_stop(loop, &w->accept_io);
    close(w->lfd);
    w->lfd = -1;
    if (w->nconns == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_CLOSING)
            continue;
        if (c->npend > 0) {
            c->stop_when_answered = true;
            ev_io_stop(loop, &c->rio);
            continue;
        }
        conn_disconnect(c, SPOP_ST_NONE, "agent is stopping");
        conn_flush(c);
    }
    ev_timer_init(&w->stop_timer, stop_timer_cb, (double)w->ctx.cfg->stop_timeout_ms / 1000.0, 0);
    ev_timer_start(loop, &w->stop_timer);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_run(w->loop, 0);
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        conn_free(c);
    }
    spoa_router_free(w->ctx.router);
    w->ctx.router = NULL;
    return NULL;
}

int spoa_agent_start(const struct spoa_config *cfg, char *err, size_t errlen)
{
    unix_path = rr_unix_path(cfg->listen);
    nworkers = (size_t)cfg->threads;
    workers = calloc(nworkers, sizeof(*workers));
    if (!workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t per_thread_cache = (size_t)cfg->cache_size / nworkers;
    if (cfg->cache_size > 0 && per_thread_cache == 0)
        per_thread_cache = 1;
    for (size_t i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        /* TCP: a SO_REUSEPORT socket per worker, and the kernel spreads the
         * connections. Unix sockets have no SO_REUSEPORT: one socket, and
         * each worker accepts on a copy of it. */
        if (!unix_path)
            w->lfd = rr_listen_tcp("--listen", cfg->listen, true, 1024, err, errlen);
        else if (i == 0)
            w->lfd = rr_listen_unix("--listen", unix_path, 1024, err, errlen);
        else if ((w->lfd = fcntl(workers[0].lfd, F_DUPFD_CLOEXEC, 0)) < 0)
            snprintf(err, errlen, "--listen %s: %s", unix_path, strerror(errno));
        if (w->lfd < 0)
            return -1;
        w->loop = ev_loop_new(EVFLAG_AUTO);
        w->ctx.cfg = cfg;
        w->ctx.cache = rr_token_cache_new(per_thread_cache);
        w->ctx.sig_ctx = rr_jwt_sig_ctx_new();
        if (w->loop && cfg->redis)
            w->ctx.router = spoa_router_new(w->loop, &cfg->router);
        if (!w->loop || (per_thread_cache && !w->ctx.cache) || !w->ctx.sig_ctx ||
            (cfg->redis && !w->ctx.router)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        ev_io_init(&w->accept_io, accept_cb, w->lfd, EV_READ);
        w->accept_io.data = w;
        ev_io_start(w->loop, &w->accept_io);
        ev_async_init(&w->stop_async, stop_async_cb);
        w->stop_async.data = w;
        ev_async_start(w->loop, &w->stop_async);
    }
    for (size_t i = 0; i < nworkers; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %zu", i);
            return -1;
        }
    }
    return 0;
}

void spoa_agent_stop(void)
{
    /* The socket file goes first: HAProxy then fails fast (ENOENT) on a new
     * connection rather than queueing it on a socket no one accepts on. */
    if (nworkers && unix_path)
        unlink(unix_path);
    for (size_t i = 0; i < nworkers; i++)
        ev_async_send(workers[i].loop, &workers[i].stop_async);
    for (size_t i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        rr_token_cache_free(workers[i].ctx.cache);
        rr_jwt_sig_ctx_free(workers[i].ctx.sig_ctx);
        ev_loop_destroy(workers[i].loop);
    }
    free(workers);
    workers = NULL;
    nworkers = 0;
}
