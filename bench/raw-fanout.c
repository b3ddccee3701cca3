/*
 * raw-fanout: the benchmark's baseline, the least a fan-out server can do on
 * this machine. Plain epoll, one thread. It answers roomrelay-bench's
 * WebSocket handshakes (GET /ws?room=R: just enough HTTP to send the 101),
 * sends the welcome, and for each publish frame builds the `message` JSON
 * the backend would send (same fields, same size: the publish's `data` bytes
 * copied, not parsed), frames it once into a shared buffer, queues it to
 * every member of the room and acks the publisher. After each epoll pass
 * every connection with output gets one writev with all of it (the
 * backend's outq), so roomrelay-backend is measured against the same write
 * strategy without its HTTP parser, JSON, authentication, limits and
 * metrics.
 *
 * Not a server: no validation beyond what keeps it from crashing, publish
 * frames must look like roomrelay-bench's, every client is anonymous, no
 * ping, no backlog limit.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend/outq.h"
#include "backend/ws_frame.h"
#include "backend/ws_handshake.h"
#include "lib/conf.h"
#include "lib/net.h"

#define READ_BUF 65536
#define HTTP_MAX 4096
#define ROOM_MAX 64
#define MAX_EVENTS 512

enum rstate { R_HTTP, R_WS, R_CLOSING };

struct rconn {
    int fd;
    uint8_t state;
    bool dirty, want_write;
    uint8_t npending;
    uint8_t pending[WS_CLIENT_HEADER_MAX]; /* a partial frame header between reads */
    uint32_t room, slot;                   /* room index, place in its member array */
    struct rconn *dirty_next;
    uint64_t session;
    char *http; /* the request until its end arrives */
    uint16_t hlen;
    struct ws_reader *rd;
    struct outq outq;
};

struct froom {
    char name[ROOM_MAX + 1];
    uint64_t seq;
    struct rconn **members;
    uint32_t n, cap;
};

static struct {
    int ep, lfd;
    struct froom *rooms;
    uint32_t nrooms, roomcap;
    struct rconn *dirty;
    uint64_t session_seed;
    uint8_t rbuf[READ_BUF + WS_CLIENT_HEADER_MAX];
} g;

static const char *listen_addr;

static void ep_set(struct rconn *c, int op, bool want_write)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g.ep, op, c->fd, &ev);
    c->want_write = want_write;
}

static void mark_dirty(struct rconn *c)
{
    if (c->dirty || c->want_write)
        return;
    c->dirty = true;
    c->dirty_next = g.dirty;
    g.dirty = c;
}

static void froom_leave(struct rconn *c)
{
    if (c->state == R_HTTP)
        return;
    struct froom *r = &g.rooms[c->room];
    r->members[c->slot] = r->members[--r->n];
    r->members[c->slot]->slot = c->slot;
}

static void conn_close(struct rconn *c)
{
    froom_leave(c);
    if (c->dirty) {
        struct rconn **pp = &g.dirty;
        while (*pp != c)
            pp = &(*pp)->dirty_next;
        *pp = c->dirty_next;
    }
    close(c->fd);
    outq_clear(&c->outq);
    if (c->rd) {
        ws_reader_free(c->rd);
        free(c->rd);
    }
    free(c->http);
    free(c);
}

/* A text frame of len payload bytes into a new buffer; the caller writes the
 * payload at the returned pointer. */
static struct wsbuf *frame_new(size_t len, uint8_t **payload)
{
    uint8_t hdr[WS_SERVER_HEADER_MAX];
    size_t hl = ws_frame_header_build(hdr, true, WS_OP_TEXT, false, len);
    struct wsbuf *b = wsbuf_new(hl + len);
    if (!b)
        return NULL;
    memcpy(b->data, hdr, hl);
    *payload = b->data + hl;
    return b;
}

static void queue_text(struct rconn *c, const char *s, size_t len)
{
    uint8_t *p;
    struct wsbuf *b = frame_new(len, &p);
    if (!b)
        return;
    memcpy(p, s, len);
    outq_push(&c->outq, b);
    wsbuf_unref(b);
    mark_dirty(c);
}

static uint32_t froom_find(const char *name, size_t len)
{
    for (uint32_t i = 0; i < g.nrooms; i++)
        if (strlen(g.rooms[i].name) == len && memcmp(g.rooms[i].name, name, len) == 0)
            return i;
    if (g.nrooms == g.roomcap) {
        g.roomcap = g.roomcap ? g.roomcap * 2 : 64;
        g.rooms = realloc(g.rooms, g.roomcap * sizeof(*g.rooms));
        if (!g.rooms)
            abort();
    }
    struct froom *r = &g.rooms[g.nrooms];
    memset(r, 0, sizeof(*r));
    memcpy(r->name, name, len);
    return g.nrooms++;
}

static void froom_join(struct rconn *c, uint32_t idx)
{
    struct froom *r = &g.rooms[idx];
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        struct rconn **m = realloc(r->members, r->cap * sizeof(struct rconn *));
        if (!m)
            abort();
        r->members = m;
    }
    c->room = idx;
    c->slot = r->n;
    r->members[r->n++] = c;
}

/* The request is whole: 101, join the room of ?room=, welcome. */
static int http_done(struct rconn *c)
{
    char *req = c->http;
    const char *q = strstr(req, "/ws?room=");
    const char *key = strcasestr(req, "\r\nSec-WebSocket-Key:");
    if (!q || !key)
        return -1;
    q += 9;
    size_t rl = strcspn(q, " &\r\n");
    if (rl == 0 || rl > ROOM_MAX)
        return -1;
    key += 20;
    while (*key == ' ')
        key++;
    if (strcspn(key, "\r\n ") != WSH_KEY_LEN)
        return -1;
    char accept[WSH_ACCEPT_LEN + 1];
    wsh_accept_key(key, accept);
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    uint32_t idx = froom_find(q, rl);
    free(c->http);
    c->http = NULL;
    c->rd = malloc(sizeof(*c->rd));
    if (!c->rd)
        return -1;
    ws_reader_init(c->rd, 65536, false);
    c->state = R_WS;
    froom_join(c, idx);
    c->session = ++g.session_seed * 0x9E3779B97F4A7C15u;
    struct wsbuf *b = wsbuf_new((size_t)n);
    if (!b)
        return -1;
    memcpy(b->data, resp, (size_t)n);
    outq_push(&c->outq, b);
    wsbuf_unref(b);
    char wel[256];
    int wl = snprintf(wel, sizeof(wel),
                      "{\"type\":\"welcome\",\"instance\":\"raw\",\"session\":\"%016" PRIx64
                      "\",\"room\":\"%s\",\"seq\":%" PRIu64 "}",
                      c->session, g.rooms[idx].name, g.rooms[idx].seq);
    queue_text(c, wel, (size_t)wl);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* {"type":"publish","room":R,"data":D,"id":"I"} as roomrelay-bench writes it:
 * the room must be the connection's; D is copied as is. */
static void on_publish(struct rconn *c, const char *p, size_t len)
{
    static const char room_key[] = "\"room\":\"", data_key[] = "\"data\":", id_key[] = ",\"id\":\"";
    const char *end = p + len;
    const char *rk = memmem(p, len, room_key, sizeof(room_key) - 1);
    const char *dk = memmem(p, len, data_key, sizeof(data_key) - 1);
    const char *ik = NULL;
    for (const char *s = end - (sizeof(id_key) - 1); s > p; s--)
        if (memcmp(s, id_key, sizeof(id_key) - 1) == 0) {
            ik = s;
            break;
        }
    if (!rk || !dk || !ik || dk > ik || len < 2 || end[-2] != '"' || end[-1] != '}')
        return;
    struct froom *r = &g.rooms[c->room];
    rk += sizeof(room_key) - 1;
    size_t rl = strlen(r->name);
    if ((size_t)(end - rk) < rl + 1 || memcmp(rk, r->name, rl) != 0 || rk[rl] != '"')
        return;
    const char *data = dk + sizeof(data_key) - 1;
    size_t dlen = (size_t)(ik - data);
    const char *id = ik + sizeof(id_key) - 1;
    size_t idlen = (size_t)(end - 2 - id);

    uint64_t seq = ++r->seq;
    char head[160], tail[40];
    int hl = snprintf(head, sizeof(head),
                      "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%" PRIu64
                      ",\"from\":\"anon-%016" PRIx64 "\",\"data\":",
                      r->name, seq, c->session);
    int tl = snprintf(tail, sizeof(tail), ",\"ts\":%" PRId64 "}", now_ms());
    uint8_t *out;
    struct wsbuf *b = frame_new((size_t)hl + dlen + (size_t)tl, &out);
    if (!b)
        return;
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, data, dlen);
    memcpy(out + (size_t)hl + dlen, tail, (size_t)tl);
    for (uint32_t i = 0; i < r->n; i++) {
        outq_push(&r->members[i]->outq, b);
        mark_dirty(r->members[i]);
    }
    wsbuf_unref(b);
    char ack[200];
    if (idlen > 128)
        return;
    int al = snprintf(ack, sizeof(ack), "{\"type\":\"ack\",\"id\":\"%.*s\",\"seq\":%" PRIu64 "}",
                      (int)idlen, id, seq);
    queue_text(c, ack, (size_t)al);
}

static int ws_input(struct rconn *c, uint8_t *buf, size_t len)
{
    size_t off = 0;
    for (;;) {
        struct ws_event ev;
        size_t used;
        ws_reader_next(c->rd, buf + off, len - off, &used, &ev);
        off += used;
        switch (ev.type) {
        case WS_EV_NONE: {
            size_t rest = len - off;
            memcpy(c->pending, buf + off, rest);
            c->npending = (uint8_t)rest;
            return 0;
        }
        case WS_EV_TEXT:
            if (ev.len > 17 && memcmp(ev.data, "{\"type\":\"publish\"", 17) == 0)
                on_publish(c, (const char *)ev.data, ev.len);
            break;
        case WS_EV_PING: {
            uint8_t f[WS_CONTROL_FRAME_MAX];
            size_t n = ws_frame_build_control(f, sizeof(f), WS_OP_PONG, ev.data, ev.len);
            struct wsbuf *b = wsbuf_new(n);
            if (b) {
                memcpy(b->data, f, n);
                outq_push(&c->outq, b);
                wsbuf_unref(b);
                mark_dirty(c);
            }
            break;
        }
        case WS_EV_CLOSE:
        case WS_EV_ERROR:
            return -1;
        default:
            break;
        }
    }
}

static void conn_read(struct rconn *c)
{
    if (c->state == R_HTTP) {
        ssize_t r = recv(c->fd, c->http + c->hlen, HTTP_MAX - 1 - c->hlen, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            conn_close(c);
            return;
        }
        c->hlen += (uint16_t)r;
        c->http[c->hlen] = 0;
        if (!strstr(c->http, "\r\n\r\n")) {
            if (c->hlen >= HTTP_MAX - 1)
                conn_close(c);
            return;
        }
        if (http_done(c) < 0)
            conn_close(c);
        return;
    }
    size_t have = c->npending;
    memcpy(g.rbuf, c->pending, have);
    c->npending = 0;
    ssize_t r = recv(c->fd, g.rbuf + have, READ_BUF, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        c->npending = (uint8_t)have;
        return;
    }
    if (r <= 0 || ws_input(c, g.rbuf, have + (size_t)r) < 0)
        conn_close(c);
}

static void do_accept(void)
{
    for (;;) {
        int fd = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct rconn *c = calloc(1, sizeof(*c));
        if (!c || !(c->http = malloc(HTTP_MAX))) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        outq_init(&c->outq);
        ep_set(c, EPOLL_CTL_ADD, false);
    }
}

/* One writev (outq_flush) per connection with output, after each pass. */
static void flush_dirty(void)
{
    while (g.dirty) {
        struct rconn *c = g.dirty;
        g.dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        int rc = outq_flush(&c->outq, c->fd);
        if (rc < 0)
            conn_close(c);
        else if (rc == 0)
            ep_set(c, EPOLL_CTL_MOD, true);
    }
}

int main(int argc, char **argv)
{
    const struct rr_opt opts[] = {
        {"listen", RR_OPT_STR, &listen_addr, "127.0.0.1:8090", "HOST:PORT", "address to listen on",
         0, 0},
        RR_OPT_END,
    };
    rr_opts_parse(opts, "raw-fanout", "0.1.0",
                  "raw-fanout: the fan-out baseline for roomrelay-bench (plain epoll, one writev "
                  "per socket per pass). Not a server.",
                  argc, argv);
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    g.lfd = rr_listen_tcp("--listen", listen_addr, false, 4096, err, sizeof(err));
    if (g.lfd < 0)
        rr_opts_die("%s", err);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.lfd, &lev);
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(g.ep, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            rr_opts_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct rconn *c = evs[i].data.ptr;
            if (!c) {
                do_accept();
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                int rc = outq_flush(&c->outq, c->fd);
                if (rc < 0) {
                    conn_close(c);
                    continue;
                }
                if (rc == 1)
                    ep_set(c, EPOLL_CTL_MOD, false);
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c);
        }
        flush_dirty();
    }
}
