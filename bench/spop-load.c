/*
 * spop-load: plays HAProxy's side of SPOP 2.0 against roomrelay-spoa to
 * measure the agent alone. It opens --connections connections, says
 * HAPROXY-HELLO ("2.0", 16380, "pipelining,async") on each, then keeps
 * --pipeline check-token NOTIFYs in flight per connection, each with its own
 * stream id, and matches every ACK to its NOTIFY by stream and frame id.
 * Tokens come from a file, one per line, used in turn.
 *
 * Each ACK's actions are read: an ACK that sets auth=false, or no auth at all,
 * makes the run invalid (exit status 1), so a setup where every token is
 * refused shows up as an error instead of a fast number.
 *
 * One thread, one libev loop. Latency is from the loop pass that queued a
 * NOTIFY to the pass that read its ACK (CLOCK_MONOTONIC, read once per pass),
 * so it slightly overstates the agent's time, never understates it.
 *
 * This is not the agent's test suite and not HAProxy: no fragmentation, no
 * other messages, no reconnection after an error.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/hist.h"
#include "lib/conf.h"
#include "spoa/spop.h"

#define CLIENT_FRAME_SIZE 16380u /* what HAProxy 2.6 announces */
#define NOTIFY_ARGS 4            /* bearer, qtoken, proto, cookie: as spoe-roomrelay.conf */
/* A connection's read and write buffers start at four of our frames. */
#define CONN_BUF_SIZE ((size_t)4 * (CLIENT_FRAME_SIZE + SPOP_LEN_PREFIX))

struct slot {
    uint64_t stream_id; /* slot i carries stream ids i, i + depth, i + 2 * depth... */
    uint64_t sent_ns;
    bool busy;
};

struct conn {
    ev_io rio, wio;
    int fd;
    uint32_t max_frame; /* the lower of ours and the agent's */
    struct slot *slots;
    size_t inflight;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
};

enum run_phase { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_DONE };

struct result {
    uint64_t requests; /* ACKs counted */
    uint64_t auth_true, auth_false, errors;
    struct hist lat_ns;
};

static struct {
    const char *agent, *tokens_file;
    int64_t connections, pipeline, duration, requests, warmup, ack_timeout;
    bool json;
} o;

static struct {
    char **bearer; /* "Bearer <jwt>" */
    size_t *bearer_len;
    size_t n, next;
} tokens;

static struct {
    struct ev_loop *loop;
    struct conn *conns;
    enum run_phase phase;
    uint64_t now_ns, start_ns, last_ack_ns;
    uint64_t last_counted_ns; /* the measured time ends with the last counted ACK */
    uint64_t issued;          /* NOTIFYs sent during the measured phase */
    size_t inflight;
    struct result r;
    char first_error[256];
} run;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts n errors; the first one's text is kept to be reported. */
static void run_error(uint64_t n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_error(uint64_t n, const char *fmt, ...)
{
    run.r.errors += n;
    if (run.first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run.first_error, sizeof(run.first_error), fmt, ap);
    va_end(ap);
}

static bool str_is(struct spop_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void load_tokens(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        rr_opts_die("--tokens %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (n == 0)
            continue;
        /* name, 4 args with their keys and types, frame header: 128 bytes is plenty */
        if ((size_t)n + 128 > CLIENT_FRAME_SIZE)
            rr_opts_die("--tokens %s: a %zd-byte token does not fit in one %u-byte frame", path, n,
                        CLIENT_FRAME_SIZE);
        if (tokens.n == alloc) {
            alloc = alloc ? alloc * 2 : 1024;
            tokens.bearer = realloc(tokens.bearer, alloc * sizeof(*tokens.bearer));
            tokens.bearer_len = realloc(tokens.bearer_len, alloc * sizeof(*tokens.bearer_len));
            if (!tokens.bearer || !tokens.bearer_len)
                rr_opts_die("out of memory");
        }
        size_t len = strlen("Bearer ") + (size_t)n;
        char *b = malloc(len + 1);
        if (!b)
            rr_opts_die("out of memory");
        snprintf(b, len + 1, "Bearer %s", line);
        tokens.bearer[tokens.n] = b;
        tokens.bearer_len[tokens.n] = len;
        tokens.n++;
    }
    free(line);
    fclose(f);
    if (tokens.n == 0)
        rr_opts_die("--tokens %s: no token in the file", path);
}

static void free_tokens(void)
{
    for (size_t i = 0; i < tokens.n; i++)
        free(tokens.bearer[i]);
    free(tokens.bearer);
    free(tokens.bearer_len);
}

static int connect_agent(const char *addr)
{
    char host[256];
    uint16_t port;
    if (rr_parse_hostport(addr, host, sizeof(host), &port) < 0)
        rr_opts_die("--agent '%s': expected HOST:PORT", addr);
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0)
        rr_opts_die("--agent %s: %s", addr, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        rr_opts_die("--agent %s: %s", addr, strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rr_opts_die("--agent %s: send: %s", o.agent, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Reads until one whole frame is buffered; blocking (the handshake only). */
static void read_frame_blocking(struct conn *c, struct spop_frame *f, int *flen)
{
    for (;;) {
        *flen = spop_frame_parse(c->rbuf, c->rlen, CLIENT_FRAME_SIZE, f);
        if (*flen > 0)
            return;
        if (*flen < 0)
            rr_opts_die("--agent %s: bad frame in the handshake: %s", o.agent,
                        spop_status_text((uint32_t)(-*flen)));
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rr_opts_die("--agent %s: connection closed during the handshake", o.agent);
        c->rlen += (size_t)n;
    }
}

static void drop_frame(struct conn *c, size_t flen)
{
    memmove(c->rbuf, c->rbuf + flen, c->rlen - flen);
    c->rlen -= flen;
}

/* HAPROXY-HELLO, then AGENT-HELLO: its max-frame-size bounds our NOTIFYs. */
static void handshake(struct conn *c)
{
    uint8_t buf[256];
    struct spop_writer w;
    spop_writer_init(&w, buf, sizeof(buf));
    size_t n = spop_write_haproxy_hello(&w, SPOP_VERSION, CLIENT_FRAME_SIZE, "pipelining,async",
                                        false, "spop-load");
    write_all(c->fd, buf, n);

    struct spop_frame f;
    int flen;
    read_frame_blocking(c, &f, &flen);
    if (f.type == SPOP_FRAME_AGENT_DISCONNECT) {
        struct spop_disconnect d = {0};
        spop_disconnect_parse(f.payload, f.payload_len, &d);
        rr_opts_die("--agent %s: AGENT-DISCONNECT after HELLO, status %u (%s): %.*s", o.agent,
                    d.status, spop_status_text(d.status), (int)d.message.len, d.message.ptr);
    }
    if (f.type != SPOP_FRAME_AGENT_HELLO)
        rr_opts_die("--agent %s: expected AGENT-HELLO, got frame type %u", o.agent, f.type);

    struct spop_reader r;
    spop_reader_init(&r, f.payload, f.payload_len);
    struct spop_str key;
    struct spop_data val;
    uint64_t mfs = 0;
    int rc;
    while ((rc = spop_read_kv(&r, &key, &val)) == 1) {
        if (str_is(key, "max-frame-size") && val.type == SPOP_DATA_UINT32)
            mfs = val.u.u32;
    }
    if (rc < 0 || mfs < SPOP_MIN_FRAME_SIZE)
        rr_opts_die("--agent %s: AGENT-HELLO without a usable max-frame-size", o.agent);
    c->max_frame = mfs < CLIENT_FRAME_SIZE ? (uint32_t)mfs : CLIENT_FRAME_SIZE;
    drop_frame(c, (size_t)flen);
}

/* Makes room for one more frame in the send buffer. */
static void wbuf_reserve(struct conn *c, size_t need)
{
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + need <= c->wcap)
        return;
    memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
    c->wlen -= c->woff;
    c->woff = 0;
    while (c->wlen + need > c->wcap)
        c->wcap *= 2;
    c->wbuf = realloc(c->wbuf, c->wcap);
    if (!c->wbuf)
        rr_opts_die("out of memory");
}

/* Queues the next NOTIFY on slot i; it goes out with the pass's single send. */
static void queue_notify(struct conn *c, size_t i)
{
    struct slot *s = &c->slots[i];
    const char *tok = tokens.bearer[tokens.next];
    size_t tlen = tokens.bearer_len[tokens.next];
    tokens.next = (tokens.next + 1) % tokens.n;

    wbuf_reserve(c, c->max_frame + SPOP_LEN_PREFIX);
    struct spop_writer w;
    spop_writer_init(&w, c->wbuf + c->wlen, c->max_frame + SPOP_LEN_PREFIX);
    spop_frame_begin(&w, SPOP_FRAME_NOTIFY, SPOP_FLAG_FIN, s->stream_id, 1);
    spop_write_message(&w, "check-token", NOTIFY_ARGS);
    struct spop_data bearer = spop_str_data(tok, tlen);
    struct spop_data absent = {.type = SPOP_DATA_NULL};
    spop_write_kv(&w, "bearer", &bearer);
    spop_write_kv(&w, "qtoken", &absent);
    spop_write_kv(&w, "proto", &absent);
    spop_write_kv(&w, "cookie", &absent);
    size_t n = spop_frame_end(&w);
    if (n == 0)
        rr_opts_die("a NOTIFY does not fit in the agent's %u-byte frames", c->max_frame);
    c->wlen += n;
    s->sent_ns = run.now_ns;
    s->busy = true;
    c->inflight++;
    run.inflight++;
    if (run.phase == PHASE_MEASURE)
        run.issued++;
}

static bool may_issue(void)
{
    if (run.phase == PHASE_WARMUP)
        return true;
    if (run.phase != PHASE_MEASURE)
        return false;
    return o.requests == 0 || run.issued < (uint64_t)o.requests;
}

static void finish_if_drained(void)
{
    if (run.phase != PHASE_WARMUP && !may_issue() && run.inflight == 0) {
        run.phase = PHASE_DONE;
        ev_break(run.loop, EVBREAK_ALL);
    }
}

static void conn_flush(struct conn *c)
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
            ev_io_start(run.loop, &c->wio);
            return;
        }
        rr_opts_die("--agent %s: send: %s", o.agent, strerror(errno));
    }
    c->woff = c->wlen = 0;
    ev_io_stop(run.loop, &c->wio);
}

/* Reads an ACK's actions: the verdict is the `auth` set-var. */
static void on_ack(struct conn *c, const struct spop_frame *f)
{
    uint64_t depth = (uint64_t)o.pipeline;
    struct slot *s = &c->slots[f->stream_id % depth];
    if (!s->busy || s->stream_id != f->stream_id || f->frame_id != 1) {
        run_error(1, "ACK for unknown stream %llu frame %llu", (unsigned long long)f->stream_id,
                  (unsigned long long)f->frame_id);
        return;
    }
    s->busy = false;
    s->stream_id += depth;
    c->inflight--;
    run.inflight--;
    run.last_ack_ns = run.now_ns;

    struct spop_reader r;
    spop_reader_init(&r, f->payload, f->payload_len);
    uint8_t type, scope;
    struct spop_str name;
    struct spop_data val;
    int verdict = -1, rc;
    while ((rc = spop_read_action(&r, &type, &scope, &name, &val)) == 1) {
        if (type == SPOP_ACT_SET_VAR && str_is(name, "auth") && val.type == SPOP_DATA_BOOL)
            verdict = val.u.b;
    }
    if (run.phase != PHASE_WARMUP && s->sent_ns >= run.start_ns) {
        run.r.requests++;
        run.last_counted_ns = run.now_ns;
        hist_add(&run.r.lat_ns, run.now_ns - s->sent_ns);
        if (rc < 0)
            run_error(1, "malformed ACK actions");
        else if (verdict < 0)
            run_error(1, "ACK without an auth variable");
        else if (verdict)
            run.r.auth_true++;
        else
            run.r.auth_false++;
    }
    if (may_issue())
        queue_notify(c, f->stream_id % depth);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = io->data;
    run.now_ns = mono_ns();
    for (;;) {
        /* Never full here: what stays after parsing is less than one frame. */
        size_t room = c->rcap - c->rlen;
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            rr_opts_die("--agent %s: connection closed with %zu NOTIFYs in flight", o.agent,
                        c->inflight);
        c->rlen += (size_t)n;

        size_t off = 0;
        for (;;) {
            struct spop_frame f;
            int flen = spop_frame_parse(c->rbuf + off, c->rlen - off, c->max_frame, &f);
            if (flen == 0)
                break;
            if (flen < 0)
                rr_opts_die("--agent %s: bad frame: %s", o.agent,
                            spop_status_text((uint32_t)(-flen)));
            off += (size_t)flen;
            if (f.type == SPOP_FRAME_ACK) {
                on_ack(c, &f);
            } else if (f.type == SPOP_FRAME_AGENT_DISCONNECT) {
                struct spop_disconnect d = {0};
                spop_disconnect_parse(f.payload, f.payload_len, &d);
                rr_opts_die("--agent %s: AGENT-DISCONNECT status %u (%s): %.*s", o.agent, d.status,
                            spop_status_text(d.status), (int)d.message.len, d.message.ptr);
            } else {
                run_error(1, "unexpected frame type %u", f.type);
            }
        }
        if (off > 0)
            drop_frame(c, off);
        if ((size_t)n < room)
            break;
    }
    conn_flush(c);
    finish_if_drained();
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(io->data);
}

/* Connects c to the agent with depth idle slots and says HELLO; then reads
 * and writes are the loop's. */
static void conn_open(struct conn *c, size_t depth)
{
    c->fd = connect_agent(o.agent);
    c->rcap = CONN_BUF_SIZE;
    c->wcap = CONN_BUF_SIZE;
    c->rbuf = malloc(c->rcap);
    c->wbuf = malloc(c->wcap);
    c->slots = calloc(depth, sizeof(*c->slots));
    if (!c->rbuf || !c->wbuf || !c->slots)
        rr_opts_die("out of memory");
    for (size_t i = 0; i < depth; i++)
        c->slots[i].stream_id = i;
    handshake(c);
    if (c->rlen > 0)
        rr_opts_die("--agent %s: frames before any NOTIFY", o.agent);
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
        rr_opts_die("fcntl: %s", strerror(errno));
    ev_io_init(&c->rio, conn_read_cb, c->fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, c->fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_io_start(run.loop, &c->rio);
}

static void conn_close(struct conn *c)
{
    ev_io_stop(run.loop, &c->rio);
    ev_io_stop(run.loop, &c->wio);
    close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    free(c->slots);
}

/* From here on, NOTIFYs count; with --duration, the timer now ends the run. */
static void start_measuring(ev_timer *t)
{
    run.phase = PHASE_MEASURE;
    run.start_ns = run.last_counted_ns = run.now_ns;
    if (o.requests == 0) {
        ev_timer_set(t, (double)o.duration, 0);
        ev_timer_start(run.loop, t);
    }
}

static void phase_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    run.now_ns = mono_ns();
    if (run.phase == PHASE_WARMUP) {
        start_measuring(t);
    } else if (run.phase == PHASE_MEASURE) {
        run.phase = PHASE_DRAIN;
        finish_if_drained();
    }
}

/* Ends a run whose ACKs stopped coming: what is still in flight is lost. */
static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    uint64_t now = mono_ns();
    if (run.inflight > 0 && now - run.last_ack_ns > (uint64_t)o.ack_timeout * 1000000000u) {
        run_error(run.inflight, "%zu NOTIFYs unanswered for %llds", run.inflight,
                  (long long)o.ack_timeout);
        run.phase = PHASE_DONE;
        ev_break(loop, EVBREAK_ALL);
    }
}

/* Prints the result; returns whether the run is valid. */
static bool report(void)
{
    const struct result *r = &run.r;
    double secs = (double)(run.last_counted_ns - run.start_ns) / 1e9;
    double rps = secs > 0 ? (double)r->requests / secs : 0;
    double p50 = (double)hist_quantile(&r->lat_ns, 0.50) / 1000.0;
    double p99 = (double)hist_quantile(&r->lat_ns, 0.99) / 1000.0;
    double p999 = (double)hist_quantile(&r->lat_ns, 0.999) / 1000.0;
    double max = (double)r->lat_ns.max / 1000.0;
    bool valid = r->errors == 0 && r->auth_false == 0 && r->auth_true > 0;
    if (o.json) {
        printf("{\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,\"auth_true\":%llu,"
               "\"auth_false\":%llu,\"connections\":%lld,\"pipeline\":%lld,\"tokens\":%zu,"
               "\"valid\":%s",
               (unsigned long long)r->requests, secs, rps, p50, p99, p999, max,
               (unsigned long long)r->errors, (unsigned long long)r->auth_true,
               (unsigned long long)r->auth_false, (long long)o.connections, (long long)o.pipeline,
               tokens.n, valid ? "true" : "false");
        if (run.first_error[0]) {
            printf(",\"first_error\":\"");
            for (const char *p = run.first_error; *p; p++)
                if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                    putchar(*p);
            putchar('"');
        }
        printf("}\n");
    } else {
        printf("requests   %llu in %.3f s, %.0f check-token/s\n", (unsigned long long)r->requests,
               secs, rps);
        printf("latency    p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", p50, p99, p999,
               max);
        printf("verdicts   auth=true %llu, auth=false %llu, errors %llu\n",
               (unsigned long long)r->auth_true, (unsigned long long)r->auth_false,
               (unsigned long long)r->errors);
        if (run.first_error[0])
            printf("first error: %s\n", run.first_error);
        if (!valid)
            printf("INVALID: %s\n",
                   r->auth_true == 0 ? "no token was accepted" : "refusals or errors");
    }
    fflush(stdout);
    return valid;
}

int main(int argc, char **argv)
{
    const struct rr_opt opts[] = {
        {"agent", RR_OPT_STR, &o.agent, "127.0.0.1:12345", "HOST:PORT",
         "roomrelay-spoa's SPOP address", 0, 0},
        {"connections", RR_OPT_INT, &o.connections, "4", "N", "SPOP connections", 1, 1000},
        {"pipeline", RR_OPT_INT, &o.pipeline, "20", "DEPTH",
         "NOTIFYs in flight per connection (HAProxy 2.6's max-waiting-frames is 20)", 1, 10000},
        {"duration", RR_OPT_INT, &o.duration, "10", "SECONDS",
         "measured time, after the warmup (unless --requests is given)", 1, 3600},
        {"requests", RR_OPT_INT, &o.requests, "0", "N",
         "stop after N measured requests instead of --duration (0: use --duration)", 0, INT64_MAX},
        {"warmup", RR_OPT_INT, &o.warmup, "1", "SECONDS",
         "load before measuring (connections warm, cache filled); not counted", 0, 600},
        {"tokens", RR_OPT_STR, &o.tokens_file, NULL, "FILE",
         "JWTs, one per line, used in turn: one token = cache hits, many unique tokens "
         "against --cache-size 0 = misses",
         0, 0},
        {"ack-timeout", RR_OPT_INT, &o.ack_timeout, "5", "SECONDS",
         "no ACK for this long with NOTIFYs in flight ends the run with errors", 1, 600},
        {"json", RR_OPT_BOOL, &o.json, "false", NULL,
         "print one JSON line: requests, seconds, rps, p50/p99/p999 in us, errors, verdicts", 0, 0},
        RR_OPT_END,
    };
    rr_opts_parse(opts, "spop-load", "0.1.0",
                  "spop-load: SPOP load generator for roomrelay-spoa's check-token. Exit status: "
                  "0 valid run, 1 refusals or errors, 2 bad usage or broken connection.",
                  argc, argv);
    if (!o.tokens_file)
        rr_opts_die("--tokens FILE is required");
    load_tokens(o.tokens_file);

    run.loop = ev_default_loop(EVFLAG_AUTO);
    size_t depth = (size_t)o.pipeline;
    run.conns = calloc((size_t)o.connections, sizeof(*run.conns));
    if (!run.conns)
        rr_opts_die("out of memory");
    for (size_t k = 0; k < (size_t)o.connections; k++)
        conn_open(&run.conns[k], depth);

    ev_timer phase, watchdog;
    ev_timer_init(&phase, phase_timer_cb, (double)o.warmup, 0);
    ev_timer_init(&watchdog, watchdog_cb, 1.0, 1.0);
    ev_timer_start(run.loop, &watchdog);

    run.phase = PHASE_WARMUP;
    run.now_ns = run.last_ack_ns = mono_ns();
    if (o.warmup > 0)
        ev_timer_start(run.loop, &phase);
    else
        start_measuring(&phase);
    for (size_t k = 0; k < (size_t)o.connections; k++) {
        for (size_t i = 0; i < depth && may_issue(); i++)
            queue_notify(&run.conns[k], i);
        conn_flush(&run.conns[k]);
    }
    ev_run(run.loop, 0);

    bool valid = report();
    ev_timer_stop(run.loop, &phase);
    ev_timer_stop(run.loop, &watchdog);
    for (size_t k = 0; k < (size_t)o.connections; k++)
        conn_close(&run.conns[k]);
    free(run.conns);
    free_tokens();
    return valid ? 0 : 1;
}
