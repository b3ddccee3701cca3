/*
 * roomrelay-bench: WebSocket load generator for roomrelay-backend and for the
 * servers it is compared with (bench/raw-fanout, node ws, nchan).
 *
 * The coordinator (this process) forks --procs workers (a process holds at
 * most ~9000 connections: 20000 open files per process here) and splits
 * --connections over them; connection i joins room i % --rooms through its
 * handshake (GET /ws?room=R), and connections 0..rooms-1 are the rooms'
 * publishers. Each worker is one libev loop. For each rate of --rates (per
 * room, publishes/s; room r offset by r/R of the interval, so that rooms
 * take turns) the publishers send
 *   {"type":"publish","room":R,"data":{"t":<CLOCK_MONOTONIC ns>,"n":<k>,"p":"<pad>"},"id":"<k>"}
 * with `data` exactly --size bytes, and every member records now - t into a
 * histogram (bench/hist.h). A delivery is parsed only as far as needed: the
 * `"seq":` of the envelope (--proto rr; with --proto raw, where the server
 * relays the data as is, the publisher's `"n":`) and the `"t":`. Per
 * connection the last seq tells duplicates (a seq not above it) and gaps.
 *
 * A step: publishers run --warmup + --duration seconds; deliveries and
 * latencies count when received within the last --duration seconds; then
 * the workers wait until nothing has arrived for 300 ms (at most --drain-ms)
 * and report. missing = published x members - unique deliveries, over the
 * whole step. With --ladder the coordinator stops at the first step that
 * lost messages or did not raise deliveries/s by 5 %.
 *
 * With --server-pid it also reads the server's CPU (utime + stime over the
 * measured seconds, /proc/PID/stat) and VmRSS (/proc/PID/status) before the
 * connections and once they are all open and idle. The result is one JSON
 * object on stdout.
 *
 * With --reconnect (rr), a connection the server moves or closes comes back
 * the way web/roomrelay.js does: after a `migrate`'s reconnect_after_ms, or
 * else after a capped exponential backoff with jitter, with since=<last seq>
 * so the server replays what it missed; a refused handshake (a 503 from a
 * draining backend) backs off and retries. A step then counts as published
 * only the publishes the server acked: one sent into a closing connection is
 * lost, and a real client would resend it. Without --reconnect a connection
 * the server closes is counted and stays closed.
 *
 * --query adds a query string to every handshake (a token through HAProxy:
 * access_token=...). --cpu-pids NAME=PID,... reports the CPU of each named
 * process per step (a cluster's Redis, HAProxy and backends).
 *
 * Not a conformance client: no fragmentation, no permessage-deflate.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/ws_frame.h"
#include "bench/hist.h"
#include "lib/conf.h"

#define MAX_PROCS 16
#define CONNS_PER_PROC 9000ll
#define MAX_RATES 32
#define READ_BUF ((size_t)256 * 1024)
#define DRAIN_QUIET_NS 300000000ull
#define ROOM_NAME_MAX 64
#define QUERY_MAX 2048
#define MAX_CPU_PIDS 16
#define BACKOFF_INITIAL_MS 100
#define BACKOFF_MAX_MS 2000

enum proto_mode { PROTO_RR, PROTO_RAW };

/* C_UPGRADED: the 101 came, the welcome (rr) not yet. */
enum conn_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_UPGRADED, C_OPEN, C_CLOSED };

static struct {
    const char *server, *rates, *proto, *room_prefix, *label, *query, *cpu_pids;
    int64_t connections, rooms, procs, size, warmup, duration, drain_ms, hold, concurrency;
    int64_t server_pid;
    bool ladder, reconnect;
} o;

/* --cpu-pids */
static struct {
    char name[32];
    pid_t pid;
} cpu_pids[MAX_CPU_PIDS];
static size_t n_cpu_pids;

static enum proto_mode proto;
static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static char server_hostport[300];
static double rates[MAX_RATES];
static size_t n_rates;

/* ---- what a worker reports ---- */

enum msg_type { MSG_READY = 1, MSG_STEP = 2 };

struct ready_msg {
    uint32_t type;
    uint32_t opened, failed;
};

/* Per step; followed on the pipe by three arrays of o.rooms uint64_t:
 * members, unique deliveries and publishes of each room. */
struct step_msg {
    uint32_t type;
    uint32_t closed; /* connections the server closed so far */
    uint64_t in_window, duplicates, gaps, errors, bad_frames;
    uint64_t migrates, reconnects, reconnect_failures; /* --reconnect */
    struct hist lat;
};

enum cmd_op { CMD_STEP = 1, CMD_QUIT = 2 };

struct cmd {
    uint32_t op;
    double rate;
    uint64_t t_start; /* CLOCK_MONOTONIC ns: publishing begins */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rr_opts_die("pipe write: %s", strerror(errno));
        b += w;
        len -= (size_t)w;
    }
}

/* False at end of file. */
static bool read_all(int fd, void *p, size_t len)
{
    uint8_t *b = p;
    while (len > 0) {
        ssize_t r = read(fd, b, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        len -= (size_t)r;
    }
    return true;
}

/* ---- one worker ---- */

struct bconn {
    ev_io io;
    ev_timer retry; /* --reconnect: the next attempt */
    int fd;
    uint32_t room;
    uint8_t state;
    bool publisher;
    bool want_write;
    bool reopening;     /* the handshake under way is a reconnect */
    uint8_t failures;   /* reconnects refused in a row (the backoff's exponent) */
    int32_t migrate_ms; /* the last migrate's reconnect_after_ms; -1: none */
    uint32_t npend, pcap;
    uint8_t *pend; /* unparsed input between reads (a partial frame or response) */
    uint64_t last_seq;
    uint64_t pub_n; /* publisher: publishes sent over the whole run (data.n) */
    uint8_t *wbuf;  /* output the socket did not take yet */
    uint32_t wlen, wcap;
};

static struct {
    struct ev_loop *loop;
    struct bconn *conns;
    uint32_t first, n; /* global index of conns[0], count */
    uint32_t next_open, opening, opened, failed, closed;
    uint32_t reopening; /* --reconnect: connections waiting for or in a reconnect */
    int report_fd;
    bool ready_sent;
    uint8_t *rbuf;
    char pad[65536];
    size_t pad_len;
    uint64_t mask_state;
    /* the current step */
    bool publishing, draining;
    double rate;
    uint64_t t_start, t_window, t_end, last_rx;
    uint64_t *room_members, *room_uniq, *room_pub;
    uint64_t *room_sent; /* publishes sent this step (the pacing); room_pub counts
                            them too, or with --reconnect the acks */
    struct step_msg st;
    ev_timer pub_timer, drain_timer;
    ev_io cmd_io;
} w;

static void room_name(char *out, size_t cap, uint32_t room)
{
    snprintf(out, cap, "%s%" PRIu32, o.room_prefix, room);
}

static void conn_io_set(struct bconn *c, int events)
{
    ev_io_stop(w.loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(w.loop, &c->io);
}

static void conn_reopen_later(struct bconn *c);

static void conn_fail(struct bconn *c, bool was_open)
{
    if (c->state == C_CLOSED)
        return;
    bool opening = c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_UPGRADED;
    if (opening && c->reopening) {
        w.st.reconnect_failures++;
        if (c->failures < 30)
            c->failures++;
    } else if (opening) {
        w.opening--;
        w.failed++;
    }
    ev_io_stop(w.loop, &c->io);
    close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    free(c->pend);
    free(c->wbuf);
    c->pend = c->wbuf = NULL;
    c->npend = c->pcap = c->wlen = c->wcap = 0;
    if (was_open)
        w.closed++;
    if (o.reconnect && (was_open || c->reopening))
        conn_reopen_later(c);
}

/* Sends what is queued; arms EV_WRITE while the socket is full. */
static void conn_flush(struct bconn *c)
{
    uint32_t off = 0;
    while (off < c->wlen) {
        ssize_t s = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);
        if (s < 0 && errno == EINTR)
            continue;
        if (s < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (s <= 0) {
            conn_fail(c, c->state == C_OPEN);
            return;
        }
        off += (uint32_t)s;
    }
    memmove(c->wbuf, c->wbuf + off, c->wlen - off);
    c->wlen -= off;
    bool want = c->wlen > 0;
    if (want != c->want_write) {
        c->want_write = want;
        conn_io_set(c, EV_READ | (want ? EV_WRITE : 0));
    }
}

static uint8_t *conn_wreserve(struct bconn *c, size_t n)
{
    if (c->wlen + n > c->wcap) {
        size_t ncap = c->wcap ? c->wcap : 512;
        while (ncap < c->wlen + n)
            ncap *= 2;
        uint8_t *nb = realloc(c->wbuf, ncap);
        if (!nb)
            rr_opts_die("out of memory");
        c->wbuf = nb;
        c->wcap = (uint32_t)ncap;
    }
    return c->wbuf + c->wlen;
}

/* xorshift64: masks and jitter, not security. */
static uint64_t next_rand(void)
{
    uint64_t x = w.mask_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w.mask_state = x;
    return x;
}

static void conn_send_frame(struct bconn *c, uint8_t opcode, const void *payload, size_t len)
{
    uint64_t x = next_rand();
    uint8_t mask[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
    uint8_t *out = conn_wreserve(c, len + WS_CLIENT_HEADER_MAX);
    size_t n =
        ws_frame_build_masked(out, len + WS_CLIENT_HEADER_MAX, true, opcode, payload, len, mask);
    c->wlen += (uint32_t)n;
}

static void open_more(void);

static void conn_opened(struct bconn *c)
{
    c->state = C_OPEN;
    if (c->reopening) {
        c->reopening = false;
        c->failures = 0;
        w.reopening--;
        w.st.reconnects++;
        return;
    }
    w.opening--;
    w.opened++;
    open_more();
}

static uint64_t parse_u64(const uint8_t *p, const uint8_t *end, bool *ok)
{
    uint64_t v = 0;
    const uint8_t *s = p;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *ok = p > s;
    return v;
}

/* The number after `key` (e.g. "\"seq\":") at or after p. */
static bool find_u64(const uint8_t *p, const uint8_t *end, const char *key, size_t klen,
                     uint64_t *v, const uint8_t **after)
{
    const uint8_t *k = memmem(p, (size_t)(end - p), key, klen);
    if (!k)
        return false;
    bool ok;
    *v = parse_u64(k + klen, end, &ok);
    *after = k + klen;
    return ok;
}

static void on_delivery(struct bconn *c, uint64_t seq, uint64_t t, uint64_t now)
{
    if (seq <= c->last_seq) {
        w.st.duplicates++;
        return;
    }
    if (seq > c->last_seq + 1)
        w.st.gaps += seq - c->last_seq - 1;
    c->last_seq = seq;
    w.room_uniq[c->room]++;
    w.last_rx = now;
    if (now >= w.t_window && now < w.t_end) {
        w.st.in_window++;
        hist_add(&w.st.lat, now > t ? now - t : 0);
    }
}

static const char MSG_HEAD[] = "{\"type\":\"message\"";
static const char WELCOME_HEAD[] = "{\"type\":\"welcome\"";
static const char ERROR_HEAD[] = "{\"type\":\"error\"";
static const char ACK_HEAD[] = "{\"type\":\"ack\"";
static const char MIGRATE_HEAD[] = "{\"type\":\"migrate\"";

static bool has_head(const uint8_t *p, size_t len, const char *head, size_t hlen)
{
    return len > hlen && memcmp(p, head, hlen) == 0;
}

static void on_text(struct bconn *c, const uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *end = p + len, *after;
    uint64_t seq, t;
    if (proto == PROTO_RAW) {
        if (find_u64(p, end, "\"t\":", 4, &t, &after) &&
            find_u64(p, end, "\"n\":", 4, &seq, &after))
            on_delivery(c, seq, t, now);
        else
            w.st.bad_frames++;
        return;
    }
    if (has_head(p, len, MSG_HEAD, sizeof(MSG_HEAD) - 1)) {
        if (find_u64(p, end, "\"seq\":", 6, &seq, &after) &&
            find_u64(after, end, "\"t\":", 4, &t, &after))
            on_delivery(c, seq, t, now);
        else
            w.st.bad_frames++;
    } else if (c->state == C_UPGRADED && has_head(p, len, WELCOME_HEAD, sizeof(WELCOME_HEAD) - 1)) {
        /* The welcome's seq is where a first join starts; a reconnect keeps
         * its own last seq: the replay from since= follows. */
        uint64_t head;
        if (!find_u64(p, end, "\"seq\":", 6, &head, &after))
            w.st.bad_frames++;
        else if (!c->reopening)
            c->last_seq = head;
        conn_opened(c);
    } else if (o.reconnect && has_head(p, len, ACK_HEAD, sizeof(ACK_HEAD) - 1)) {
        w.room_pub[c->room]++;
    } else if (has_head(p, len, MIGRATE_HEAD, sizeof(MIGRATE_HEAD) - 1)) {
        uint64_t ms;
        w.st.migrates++;
        c->migrate_ms = find_u64(p, end, "\"reconnect_after_ms\":", 21, &ms, &after) && ms < 60000
                            ? (int32_t)ms
                            : -1;
    } else if (has_head(p, len, ERROR_HEAD, sizeof(ERROR_HEAD) - 1)) {
        if (w.st.errors++ < 3)
            fprintf(stderr, "roomrelay-bench: server error: %.*s\n", (int)(len > 200 ? 200 : len),
                    p);
    }
    /* member, joined, pong (and acks without --reconnect): nothing to count */
}

/* Parses frames from p; returns the bytes consumed (the rest is a partial
 * frame), or -1 when the connection was closed. */
static ssize_t parse_frames(struct bconn *c, const uint8_t *p, size_t len, uint64_t now)
{
    size_t off = 0;
    while (off < len) {
        struct ws_frame_header h;
        int hl = ws_frame_header_parse(p + off, len - off, &h);
        if (hl == 0)
            break;
        if (hl < 0 || h.masked) {
            w.st.bad_frames++;
            conn_fail(c, true);
            return -1;
        }
        if (h.len > len - off - (size_t)hl)
            break;
        const uint8_t *payload = p + off + hl;
        switch (h.opcode) {
        case WS_OP_TEXT:
            on_text(c, payload, (size_t)h.len, now);
            break;
        case WS_OP_PING:
            conn_send_frame(c, WS_OP_PONG, payload, (size_t)h.len);
            conn_flush(c);
            break;
        case WS_OP_CLOSE:
            if (!o.reconnect && w.st.errors++ < 3)
                fprintf(stderr, "roomrelay-bench: server closed a connection: %u\n",
                        h.len >= 2 ? (unsigned)(payload[0] << 8 | payload[1]) : 1005u);
            conn_fail(c, true);
            return -1;
        default:
            break;
        }
        if (c->state == C_CLOSED)
            return -1;
        off += (size_t)hl + (size_t)h.len;
    }
    return (ssize_t)off;
}

/* The 101, then (rr) the welcome that opens the connection. */
static ssize_t parse_handshake(struct bconn *c, const uint8_t *p, size_t len)
{
    const uint8_t *e = memmem(p, len, "\r\n\r\n", 4);
    if (!e)
        return 0;
    if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        size_t l = (size_t)(e - p);
        if (w.failed < 3 && !c->reopening)
            fprintf(stderr, "roomrelay-bench: handshake refused: %.*s\n", (int)(l > 120 ? 120 : l),
                    p);
        conn_fail(c, false);
        return -1;
    }
    c->state = C_UPGRADED;
    if (proto == PROTO_RAW)
        conn_opened(c);
    return e + 4 - p;
}

static void conn_read(struct bconn *c)
{
    uint8_t *buf = w.rbuf;
    size_t have = c->npend;
    if (have)
        memcpy(buf, c->pend, have);
    ssize_t r = recv(c->fd, buf + have, READ_BUF - have, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_fail(c, c->state == C_OPEN);
        return;
    }
    have += (size_t)r;
    uint64_t now = now_ns();
    size_t off = 0;
    ssize_t used;
    if (c->state == C_HANDSHAKE) {
        used = parse_handshake(c, buf, have);
        if (used < 0)
            return;
        if (used == 0) {
            if (have > 8192) {
                conn_fail(c, false);
                return;
            }
            goto keep;
        }
        off = (size_t)used;
    }
    used = parse_frames(c, buf + off, have - off, now);
    if (used < 0)
        return;
    off += (size_t)used;
keep:
    c->npend = (uint32_t)(have - off);
    if (c->npend > c->pcap) {
        uint8_t *np = realloc(c->pend, c->npend);
        if (!np)
            rr_opts_die("out of memory");
        c->pend = np;
        c->pcap = c->npend;
    }
    if (c->npend)
        memcpy(c->pend, buf + off, c->npend);
    else if (c->pcap > 4096) {
        free(c->pend);
        c->pend = NULL;
        c->pcap = 0;
    }
}

static void conn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct bconn *c = io->data;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            if (w.failed < 3 && !c->reopening)
                fprintf(stderr, "roomrelay-bench: connect %s: %s\n", o.server, strerror(err));
            conn_fail(c, false);
            open_more();
            return;
        }
        char room[ROOM_NAME_MAX + 1], since[32] = "";
        room_name(room, sizeof(room), c->room);
        if (c->reopening)
            snprintf(since, sizeof(since), "&since=%" PRIu64, c->last_seq);
        char req[QUERY_MAX + 512];
        int n = snprintf(req, sizeof(req),
                         "GET /ws?room=%s%s%s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         room, since, *o.query ? "&" : "", o.query, server_hostport);
        memcpy(conn_wreserve(c, (size_t)n), req, (size_t)n);
        c->wlen += (uint32_t)n;
        c->state = C_HANDSHAKE;
        c->want_write = true; /* the watcher is armed for writing: conn_flush resets it */
        conn_flush(c);
        return;
    }
    if (revents & EV_WRITE) {
        conn_flush(c);
        if (c->state == C_CLOSED)
            return;
    }
    if (revents & EV_READ) {
        bool was_open = c->state == C_OPEN;
        conn_read(c);
        if (!was_open && c->state == C_CLOSED)
            open_more();
    }
}

static void send_ready(void)
{
    if (w.ready_sent || w.opening > 0 || w.next_open < w.n)
        return;
    w.ready_sent = true;
    struct ready_msg m = {MSG_READY, w.opened, w.failed};
    write_all(w.report_fd, &m, sizeof(m));
}

/* Starts c's TCP connect; the handshake follows in conn_cb. */
static void conn_connect(struct bconn *c)
{
    c->fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        rr_opts_die("socket: %s (open files limit?)", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->state = C_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&server_addr, server_addrlen) < 0 &&
        errno != EINPROGRESS) {
        if (w.failed < 3 && !c->reopening)
            fprintf(stderr, "roomrelay-bench: connect %s: %s\n", o.server, strerror(errno));
        conn_fail(c, false);
        return;
    }
    ev_io_init(&c->io, conn_cb, c->fd, EV_WRITE);
    c->io.data = c;
    ev_io_start(w.loop, &c->io);
}

/* Keeps up to --concurrency handshakes in flight (a burst of 10k SYNs would
 * overflow the server's accept queue). */
static void open_more(void)
{
    while (w.opening < (uint32_t)o.concurrency && w.next_open < w.n) {
        w.opening++;
        conn_connect(&w.conns[w.next_open++]);
    }
    send_ready();
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct bconn *c = t->data;
    conn_connect(c);
}

/* --reconnect: the next attempt after the migrate's delay, or after
 * BACKOFF_INITIAL_MS x 2^failures (capped) with full jitter over its upper
 * half, the way web/roomrelay.js backs off. */
static void conn_reopen_later(struct bconn *c)
{
    double ms;
    if (c->migrate_ms >= 0 && !c->reopening) {
        ms = c->migrate_ms;
    } else {
        double cap = BACKOFF_INITIAL_MS * (double)(1u << (c->failures < 5 ? c->failures : 5));
        if (cap > BACKOFF_MAX_MS)
            cap = BACKOFF_MAX_MS;
        ms = cap / 2 + (cap / 2) * (double)(next_rand() % 1000) / 1000.0;
    }
    c->migrate_ms = -1;
    if (!c->reopening)
        w.reopening++;
    c->reopening = true;
    ev_timer_init(&c->retry, retry_cb, ms / 1000.0, 0);
    c->retry.data = c;
    ev_timer_start(w.loop, &c->retry);
}

static void publish_one(struct bconn *c, uint64_t k)
{
    char room[ROOM_NAME_MAX + 1];
    room_name(room, sizeof(room), c->room);
    char data[128];
    int dl =
        snprintf(data, sizeof(data), "{\"t\":%" PRIu64 ",\"n\":%" PRIu64 ",\"p\":\"", now_ns(), k);
    size_t pad = (size_t)o.size > (size_t)dl + 2 ? (size_t)o.size - (size_t)dl - 2 : 0;
    if (pad > sizeof(w.pad))
        pad = sizeof(w.pad);
    static uint8_t msg[sizeof(w.pad) + 512];
    size_t len;
    if (proto == PROTO_RAW) {
        len = (size_t)snprintf((char *)msg, 512, "%s", data);
        memcpy(msg + len, w.pad, pad);
        len += pad;
        msg[len++] = '"';
        msg[len++] = '}';
    } else {
        len = (size_t)snprintf((char *)msg, 512,
                               "{\"type\":\"publish\",\"room\":\"%s\",\"data\":%s", room, data);
        memcpy(msg + len, w.pad, pad);
        len += pad;
        len += (size_t)snprintf((char *)msg + len, 512, "\"},\"id\":\"%" PRIu64 "\"}", k);
    }
    conn_send_frame(c, WS_OP_TEXT, msg, len);
}

/* Every millisecond: each publisher catches up with rate x elapsed. */
static void pub_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    uint64_t now = now_ns();
    if (now >= w.t_end) {
        w.publishing = false;
        ev_timer_stop(w.loop, &w.pub_timer);
        return;
    }
    double elapsed = (double)(now - w.t_start);
    for (uint32_t i = 0; i < w.n; i++) {
        struct bconn *c = &w.conns[i];
        if (!c->publisher || c->state != C_OPEN)
            continue;
        /* Room r's publishes are offset by r/R of the interval: the rooms take
         * turns instead of all publishing in the same millisecond. */
        double phase = 1e9 / w.rate * (double)c->room / (double)o.rooms;
        if (elapsed < phase)
            continue;
        uint64_t due = (uint64_t)((elapsed - phase) * w.rate / 1e9) + 1;
        uint64_t *sent = &w.room_sent[c->room];
        /* at most a second's worth at once, so a stalled loop cannot burst */
        uint64_t cap = (uint64_t)w.rate + 1;
        for (uint64_t k = 0; *sent < due && k < cap; k++) {
            ++*sent;
            if (!o.reconnect)
                w.room_pub[c->room]++;
            publish_one(c, ++c->pub_n);
        }
        conn_flush(c);
    }
}

static void send_step_result(void)
{
    w.st.type = MSG_STEP;
    w.st.closed = w.closed;
    write_all(w.report_fd, &w.st, sizeof(w.st));
    size_t rb = (size_t)o.rooms * sizeof(uint64_t);
    write_all(w.report_fd, w.room_members, rb);
    write_all(w.report_fd, w.room_uniq, rb);
    write_all(w.report_fd, w.room_pub, rb);
}

/* After publishing: done once nothing has arrived for DRAIN_QUIET_NS, or
 * --drain-ms after the end. */
static void drain_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    uint64_t now = now_ns();
    if (now < w.t_end)
        return;
    uint64_t quiet_from = w.last_rx > w.t_end ? w.last_rx : w.t_end;
    bool waiting = now - quiet_from < DRAIN_QUIET_NS || w.reopening > 0;
    if (waiting && now - w.t_end < (uint64_t)o.drain_ms * 1000000u)
        return;
    ev_timer_stop(w.loop, t);
    w.draining = false;
    send_step_result();
}

static void start_pub_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    ev_timer_stop(w.loop, t);
    ev_timer_set(&w.pub_timer, 0.001, 0.001);
    ev_timer_start(w.loop, &w.pub_timer);
    w.publishing = true;
}

static void start_step(const struct cmd *cmd)
{
    memset(&w.st, 0, sizeof(w.st));
    size_t rb = (size_t)o.rooms * sizeof(uint64_t);
    memset(w.room_uniq, 0, rb);
    memset(w.room_pub, 0, rb);
    memset(w.room_sent, 0, rb);
    memset(w.room_members, 0, rb);
    for (uint32_t i = 0; i < w.n; i++)
        if (w.conns[i].state == C_OPEN)
            w.room_members[w.conns[i].room]++;
    w.rate = cmd->rate;
    w.t_start = cmd->t_start;
    w.t_window = w.t_start + (uint64_t)o.warmup * 1000000000u;
    w.t_end = w.t_window + (uint64_t)o.duration * 1000000000u;
    w.last_rx = 0;
    uint64_t now = now_ns();
    static ev_timer start_timer;
    ev_timer_init(&start_timer, start_pub_cb, w.t_start > now ? (double)(w.t_start - now) / 1e9 : 0,
                  0);
    ev_timer_start(w.loop, &start_timer);
    w.draining = true;
    ev_timer_set(&w.drain_timer, 0.05, 0.05);
    ev_timer_start(w.loop, &w.drain_timer);
}

static void cmd_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct cmd cmd;
    if (!read_all(io->fd, &cmd, sizeof(cmd)) || cmd.op == CMD_QUIT) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    start_step(&cmd);
}

static void worker_main(uint32_t first, uint32_t n, int cmd_fd, int report_fd)
{
    w.loop = ev_default_loop(EVFLAG_AUTO);
    w.first = first;
    w.n = n;
    w.report_fd = report_fd;
    w.mask_state = 0x9E3779B97F4A7C15u ^ first;
    w.rbuf = malloc(READ_BUF);
    w.conns = calloc(n, sizeof(*w.conns));
    size_t rb = (size_t)o.rooms * sizeof(uint64_t);
    w.room_members = malloc(rb);
    w.room_uniq = malloc(rb);
    w.room_pub = malloc(rb);
    w.room_sent = malloc(rb);
    if (!w.rbuf || !w.conns || !w.room_members || !w.room_uniq || !w.room_pub || !w.room_sent)
        rr_opts_die("out of memory");
    memset(w.pad, 'x', sizeof(w.pad));
    for (uint32_t i = 0; i < n; i++) {
        w.conns[i].fd = -1;
        w.conns[i].migrate_ms = -1;
        w.conns[i].room = (first + i) % (uint32_t)o.rooms;
        w.conns[i].publisher = first + i < (uint32_t)o.rooms && n_rates > 0;
    }
    ev_timer_init(&w.pub_timer, pub_timer_cb, 0.001, 0.001);
    ev_timer_init(&w.drain_timer, drain_timer_cb, 0.05, 0.05);
    ev_io_init(&w.cmd_io, cmd_cb, cmd_fd, EV_READ);
    ev_io_start(w.loop, &w.cmd_io);
    open_more();
    ev_run(w.loop, 0);
    /* RST rather than FIN: 10k sockets in TIME_WAIT would use up the
     * loopback's ephemeral ports for the next run. */
    struct linger lg = {1, 0};
    for (uint32_t i = 0; i < n; i++)
        if (w.conns[i].fd >= 0)
            setsockopt(w.conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    _exit(0);
}

/* ---- the coordinator ---- */

struct worker {
    pid_t pid;
    int cmd_fd, report_fd;
    uint32_t first, n;
};

/* utime + stime of a process, in clock ticks; 0 when unreadable. */
static uint64_t proc_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

/* Ticks every core spent busy (user, nice, system, irq, softirq, steal). */
static uint64_t machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long u = 0, n = 0, sy = 0, idle = 0, io = 0, irq = 0, sirq = 0, steal = 0;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &idle, &io,
                     &irq, &sirq, &steal);
    fclose(f);
    return got == 8 ? u + n + sy + irq + sirq + steal : 0;
}

static uint64_t proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void sleep_until(uint64_t t)
{
    uint64_t now = now_ns();
    if (t <= now)
        return;
    struct timespec ts = {(time_t)((t - now) / 1000000000u), (long)((t - now) % 1000000000u)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void resolve_server(void)
{
    char host[256];
    uint16_t port;
    if (rr_parse_hostport(o.server, host, sizeof(host), &port) < 0)
        rr_opts_die("--server '%s': expected HOST:PORT", o.server);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0)
        rr_opts_die("--server %s: %s", o.server, gai_strerror(rc));
    memcpy(&server_addr, res->ai_addr, res->ai_addrlen);
    server_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(server_hostport, sizeof(server_hostport), "%s", o.server);
}

static void parse_cpu_pids(void)
{
    const char *p = o.cpu_pids;
    while (p && *p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        char *num_end = NULL;
        long pid = eq && eq < end ? strtol(eq + 1, &num_end, 10) : 0;
        if (!eq || eq >= end || eq == p || (size_t)(eq - p) >= sizeof(cpu_pids[0].name) ||
            num_end != end || pid <= 0 || n_cpu_pids == MAX_CPU_PIDS)
            rr_opts_die("--cpu-pids '%s': expected up to %d NAME=PID separated by commas",
                        o.cpu_pids, MAX_CPU_PIDS);
        memcpy(cpu_pids[n_cpu_pids].name, p, (size_t)(eq - p));
        cpu_pids[n_cpu_pids].name[eq - p] = 0;
        cpu_pids[n_cpu_pids++].pid = (pid_t)pid;
        p = *end ? end + 1 : end;
    }
}

static void parse_rates(void)
{
    const char *p = o.rates;
    while (p && *p) {
        char *end;
        double r = strtod(p, &end);
        if (end == p || r <= 0 || n_rates == MAX_RATES)
            rr_opts_die("--rates '%s': expected up to %d positive numbers separated by commas",
                        o.rates, MAX_RATES);
        rates[n_rates++] = r;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            rr_opts_die("--rates '%s': expected numbers separated by commas", o.rates);
    }
}

struct step_total {
    double rate;
    uint64_t published, expected, unique, missing, in_window, duplicates, gaps, errors, bad_frames;
    uint64_t migrates, reconnects, reconnect_failures;
    uint32_t closed;
    double server_cpu, gen_cpu, other_cpu;
    double pid_cpu[MAX_CPU_PIDS];
    struct hist lat;
};

static void print_step(const struct step_total *t, bool last)
{
    double dps = (double)t->in_window / (double)o.duration;
    printf("    {\"rate\":%.1f,\"publishes_per_s\":%.1f,\"published\":%" PRIu64
           ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"missing\":%" PRIu64
           ",\"duplicates\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"bad_frames\":%" PRIu64 ",\"closed\":%" PRIu32 ",\"deliveries_in_window\":%" PRIu64
           ",\"deliveries_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"max_us\":%.1f,\"latency_samples\":%" PRIu64
           ",\"server_cpu\":%.3f,\"generator_cpu\":%.3f,\"other_cpu\":%.3f",
           t->rate, t->rate * (double)o.rooms, t->published, t->expected, t->unique, t->missing,
           t->duplicates, t->gaps, t->errors, t->bad_frames, t->closed, t->in_window, dps,
           (double)hist_quantile(&t->lat, 0.50) / 1e3, (double)hist_quantile(&t->lat, 0.99) / 1e3,
           (double)hist_quantile(&t->lat, 0.999) / 1e3, (double)t->lat.max / 1e3, t->lat.count,
           t->server_cpu, t->gen_cpu, t->other_cpu);
    if (o.reconnect)
        printf(",\"migrates\":%" PRIu64 ",\"reconnects\":%" PRIu64
               ",\"reconnect_failures\":%" PRIu64,
               t->migrates, t->reconnects, t->reconnect_failures);
    if (n_cpu_pids) {
        printf(",\"cpu\":{");
        for (size_t i = 0; i < n_cpu_pids; i++)
            printf("%s\"%s\":%.3f", i ? "," : "", cpu_pids[i].name, t->pid_cpu[i]);
        printf("}");
    }
    printf("}%s\n", last ? "" : ",");
}

static double cpu_between(uint64_t t0, uint64_t t1, uint64_t ns)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK);
    return t1 >= t0 ? (double)(t1 - t0) / (double)hz / ((double)ns / 1e9) : 0;
}

int main(int argc, char **argv)
{
    const struct rr_opt opts[] = {
        {"server", RR_OPT_STR, &o.server, "127.0.0.1:8081", "HOST:PORT",
         "the WebSocket server (GET /ws?room=ROOM)", 0, 0},
        {"server-pid", RR_OPT_INT, &o.server_pid, "0", "PID",
         "the server's process, for its CPU and RSS from /proc (0: not measured)", 0, INT32_MAX},
        {"connections", RR_OPT_INT, &o.connections, "100", "N", "WebSocket connections", 1,
         MAX_PROCS * CONNS_PER_PROC},
        {"rooms", RR_OPT_INT, &o.rooms, "1", "R",
         "rooms; connection i joins room i % R, connections 0..R-1 publish", 1, 100000},
        {"procs", RR_OPT_INT, &o.procs, "0", "P", "worker processes (0: one per 9000 connections)",
         0, MAX_PROCS},
        {"rates", RR_OPT_STR, &o.rates, "", "LIST",
         "publishes per second per room, one step each, e.g. 200 or 100,200,400 (empty: idle)", 0,
         0},
        {"ladder", RR_OPT_BOOL, &o.ladder, "false", NULL,
         "stop at the first step that loses messages or does not raise deliveries/s by 5 %", 0, 0},
        {"size", RR_OPT_INT, &o.size, "100", "BYTES", "bytes of each publish's `data` JSON", 1,
         65536},
        {"warmup", RR_OPT_INT, &o.warmup, "1", "SECONDS", "publishing before measuring", 0, 600},
        {"duration", RR_OPT_INT, &o.duration, "5", "SECONDS", "measured publishing per step", 1,
         3600},
        {"drain-ms", RR_OPT_INT, &o.drain_ms, "5000", "MS",
         "longest wait after a step for deliveries still on the way", 0, 600000},
        {"hold", RR_OPT_INT, &o.hold, "2", "SECONDS",
         "idle time with every connection open before the RSS is read", 0, 3600},
        {"concurrency", RR_OPT_INT, &o.concurrency, "256", "N", "handshakes in flight per process",
         1, 10000},
        {"proto", RR_OPT_STR, &o.proto, "rr", "rr|raw",
         "rr: roomrelay's protocol (welcome, publish, message with seq); raw: the server relays "
         "each text frame as is to the room (nchan)",
         0, 0},
        {"room-prefix", RR_OPT_STR, &o.room_prefix, "bench-", "S", "room names are S0, S1...", 0,
         0},
        {"label", RR_OPT_STR, &o.label, "", "S", "copied into the JSON", 0, 0},
        {"query", RR_OPT_STR, &o.query, "", "Q",
         "added to every handshake's query string, e.g. access_token=JWT through HAProxy", 0, 0},
        {"reconnect", RR_OPT_BOOL, &o.reconnect, "false", NULL,
         "rr: follow migrate and reconnect closed connections with since=<last seq> (backoff "
         "with jitter); a step then counts acked publishes",
         0, 0},
        {"cpu-pids", RR_OPT_STR, &o.cpu_pids, "", "NAME=PID,...",
         "processes whose CPU each step reports (e.g. redis=123,haproxy=456)", 0, 0},
        RR_OPT_END,
    };
    rr_opts_parse(
        opts, "roomrelay-bench", "0.1.0",
        "roomrelay-bench: WebSocket fan-out load generator. Prints one JSON object. "
        "Exit status: 0 done, 1 connections failed or messages went missing, 2 bad usage.",
        argc, argv);
    if (strcmp(o.proto, "rr") == 0)
        proto = PROTO_RR;
    else if (strcmp(o.proto, "raw") == 0)
        proto = PROTO_RAW;
    else
        rr_opts_die("--proto '%s': expected rr or raw", o.proto);
    if (strlen(o.room_prefix) + 10 > ROOM_NAME_MAX)
        rr_opts_die("--room-prefix: too long");
    if (o.reconnect && proto != PROTO_RR)
        rr_opts_die("--reconnect: with --proto rr only");
    if (strlen(o.query) >= QUERY_MAX)
        rr_opts_die("--query: longer than %d bytes", QUERY_MAX - 1);
    parse_rates();
    parse_cpu_pids();
    resolve_server();
    uint32_t procs = o.procs ? (uint32_t)o.procs
                             : (uint32_t)((o.connections + CONNS_PER_PROC - 1) / CONNS_PER_PROC);
    if (o.connections / procs < o.rooms && n_rates > 0)
        rr_opts_die("--rooms %" PRId64 ": every room's publisher must be in the first process "
                    "(at most %" PRId64 " rooms)",
                    o.rooms, o.connections / procs);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    pid_t spid = (pid_t)o.server_pid;
    uint64_t rss0 = spid ? proc_rss_kb(spid) : 0;
    uint64_t t_conn0 = now_ns();
    struct worker wk[MAX_PROCS];
    for (uint32_t k = 0; k < procs; k++) {
        int cp[2], rp[2];
        if (pipe(cp) < 0 || pipe(rp) < 0)
            rr_opts_die("pipe: %s", strerror(errno));
        wk[k].first = (uint32_t)((uint64_t)o.connections * k / procs);
        wk[k].n = (uint32_t)((uint64_t)o.connections * (k + 1) / procs) - wk[k].first;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            rr_opts_die("fork: %s", strerror(errno));
        if (pid == 0) {
            for (uint32_t j = 0; j < k; j++) {
                close(wk[j].cmd_fd);
                close(wk[j].report_fd);
            }
            close(cp[1]);
            close(rp[0]);
            worker_main(wk[k].first, wk[k].n, cp[0], rp[1]);
        }
        close(cp[0]);
        close(rp[1]);
        wk[k].pid = pid;
        wk[k].cmd_fd = cp[1];
        wk[k].report_fd = rp[0];
    }
    signal(SIGPIPE, SIG_IGN);

    uint32_t opened = 0, failed = 0;
    for (uint32_t k = 0; k < procs; k++) {
        struct ready_msg m;
        if (!read_all(wk[k].report_fd, &m, sizeof(m)) || m.type != MSG_READY)
            rr_opts_die("worker %u died while connecting", k);
        opened += m.opened;
        failed += m.failed;
    }
    double connect_s = (double)(now_ns() - t_conn0) / 1e9;
    fprintf(stderr, "roomrelay-bench: %u connections open, %u failed, in %.1f s\n", opened, failed,
            connect_s);
    if (opened == 0)
        n_rates = 0; /* nothing to measure */
    sleep_until(now_ns() + (uint64_t)o.hold * 1000000000u);
    uint64_t rss1 = spid ? proc_rss_kb(spid) : 0;

    printf("{\"label\":\"%s\",\"proto\":\"%s\",\"server\":\"%s\",\"connections\":%" PRId64
           ",\"rooms\":%" PRId64 ",\"procs\":%u,\"size\":%" PRId64 ",\"warmup_s\":%" PRId64
           ",\"duration_s\":%" PRId64 ",\n \"opened\":%u,\"failed\":%u,\"connect_s\":%.3f,",
           o.label, o.proto, o.server, o.connections, o.rooms, procs, o.size, o.warmup, o.duration,
           opened, failed, connect_s);
    if (spid)
        printf("\"server_rss_start_kb\":%" PRIu64 ",\"server_rss_idle_kb\":%" PRIu64
               ",\"server_rss_per_conn_bytes\":%.0f,",
               rss0, rss1, opened ? ((double)rss1 - (double)rss0) * 1024.0 / opened : 0.0);
    printf("\n \"steps\":[\n");

    int status = failed ? 1 : 0;
    double best = 0, peak = 0, peak_rate = 0;
    size_t rb = (size_t)o.rooms * sizeof(uint64_t);
    uint64_t *members = malloc(rb), *uniq = malloc(rb), *pub = malloc(rb);
    uint64_t *sum_members = calloc((size_t)o.rooms, 8), *sum_uniq = calloc((size_t)o.rooms, 8),
             *sum_pub = calloc((size_t)o.rooms, 8);
    struct step_msg *m = malloc(sizeof(*m));
    struct step_total *t = malloc(sizeof(*t));
    if (!members || !uniq || !pub || !sum_members || !sum_uniq || !sum_pub || !m || !t)
        rr_opts_die("out of memory");
    for (size_t s = 0; s < n_rates; s++) {
        struct cmd cmd = {CMD_STEP, rates[s], now_ns() + 50000000u};
        for (uint32_t k = 0; k < procs; k++)
            write_all(wk[k].cmd_fd, &cmd, sizeof(cmd));
        uint64_t tw = cmd.t_start + (uint64_t)o.warmup * 1000000000u;
        uint64_t te = tw + (uint64_t)o.duration * 1000000000u;
        sleep_until(tw);
        fprintf(stderr,
                "roomrelay-bench: step %zu (%.1f publishes/s per room): measuring for %" PRId64
                " s\n",
                s + 1, rates[s], o.duration);
        uint64_t s0 = spid ? proc_ticks(spid) : 0, g0 = 0, s1, g1 = 0, b0, b1;
        uint64_t p0[MAX_CPU_PIDS] = {0};
        for (uint32_t k = 0; k < procs; k++)
            g0 += proc_ticks(wk[k].pid);
        for (size_t i = 0; i < n_cpu_pids; i++)
            p0[i] = proc_ticks(cpu_pids[i].pid);
        b0 = machine_busy_ticks();
        sleep_until(te);
        b1 = machine_busy_ticks();
        s1 = spid ? proc_ticks(spid) : 0;
        for (uint32_t k = 0; k < procs; k++)
            g1 += proc_ticks(wk[k].pid);

        memset(t, 0, sizeof(*t));
        memset(sum_members, 0, rb);
        memset(sum_uniq, 0, rb);
        memset(sum_pub, 0, rb);
        t->rate = rates[s];
        t->server_cpu = cpu_between(s0, s1, te - tw);
        t->gen_cpu = cpu_between(g0, g1, te - tw);
        t->other_cpu = cpu_between(b0, b1, te - tw) - t->server_cpu - t->gen_cpu;
        if (t->other_cpu < 0)
            t->other_cpu = 0;
        for (size_t i = 0; i < n_cpu_pids; i++)
            t->pid_cpu[i] = cpu_between(p0[i], proc_ticks(cpu_pids[i].pid), te - tw);
        for (uint32_t k = 0; k < procs; k++) {
            if (!read_all(wk[k].report_fd, m, sizeof(*m)) || m->type != MSG_STEP ||
                !read_all(wk[k].report_fd, members, rb) || !read_all(wk[k].report_fd, uniq, rb) ||
                !read_all(wk[k].report_fd, pub, rb))
                rr_opts_die("worker %u died during a step", k);
            t->in_window += m->in_window;
            t->duplicates += m->duplicates;
            t->gaps += m->gaps;
            t->errors += m->errors;
            t->bad_frames += m->bad_frames;
            t->closed += m->closed;
            t->migrates += m->migrates;
            t->reconnects += m->reconnects;
            t->reconnect_failures += m->reconnect_failures;
            hist_merge(&t->lat, &m->lat);
            for (int64_t r = 0; r < o.rooms; r++) {
                sum_members[r] += members[r];
                sum_uniq[r] += uniq[r];
                sum_pub[r] += pub[r];
            }
        }
        for (int64_t r = 0; r < o.rooms; r++) {
            uint64_t want = sum_pub[r] * sum_members[r];
            t->published += sum_pub[r];
            t->expected += want;
            t->unique += sum_uniq[r];
            t->missing += want > sum_uniq[r] ? want - sum_uniq[r] : 0;
        }
        double dps = (double)t->in_window / (double)o.duration;
        bool lost = t->missing > 0;
        bool last = s + 1 == n_rates || (o.ladder && (lost || dps < best * 1.05));
        print_step(t, last);
        fflush(stdout);
        if (lost)
            status = 1;
        if (!lost && dps > peak) {
            peak = dps;
            peak_rate = rates[s];
        }
        if (dps > best)
            best = dps;
        if (last)
            break;
    }
    printf(" ],\n \"peak_deliveries_per_s\":%.0f,\"peak_rate\":%.1f}\n", peak, peak_rate);
    fflush(stdout);

    struct cmd quit = {CMD_QUIT, 0, 0};
    for (uint32_t k = 0; k < procs; k++) {
        write_all(wk[k].cmd_fd, &quit, sizeof(quit));
        close(wk[k].cmd_fd);
    }
    for (uint32_t k = 0; k < procs; k++)
        waitpid(wk[k].pid, NULL, 0);
    free(members);
    free(uniq);
    free(pub);
    free(sum_members);
    free(sum_uniq);
    free(sum_pub);
    free(m);
    free(t);
    return status;
}
