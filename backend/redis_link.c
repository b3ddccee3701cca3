/*
 * A self-reconnecting hiredis async connection, see redis_link.h.
 *
 * hiredis 0.14 owns the context's memory: after a failed connect or a
 * disconnect it frees the context itself (after running every pending
 * callback with a NULL reply), so the link forgets its pointer in the
 * connect/disconnect callbacks and never frees it there. A context the link
 * gives up itself (redis_link_free, a connect timeout) is forgotten before
 * it is freed, so its disconnect callback knows it is not the link's any
 * more. hiredis 0.14 has no connect timeout and no reply timeout of its own;
 * the link's timer is both.
 *
 * The watchdog needs the send time of the oldest unanswered command. On a
 * command link replies come in order, so every command goes out with the
 * link's reply_cb and the link keeps (callback, argument, send time) in a
 * ring that grows by doubling: nothing is allocated per command once it is
 * big enough. On a subscribe link hiredis 0.14 cannot time a PING the usual
 * way: a command on a subscribed context is queued in sub.invalid and its
 * callback is never given the answer (the node stays until the context is
 * freed), and the answer ["pong", X] is routed like a pub/sub message, by
 * its first letter 'p' to the *pattern* callbacks, under name X. So the
 * link PSUBSCRIBEs to ping_channel first (the confirmation is its first
 * answer) and PINGs with that name as argument, written without a callback
 * (redisAppendFormattedCommand): the pong reaches the pattern's callback.
 * The pattern is never unsubscribed, so the context stays subscribed and a
 * pong can never come back as a reply without a callback.
 */
#include "backend/redis_link.h"

#include <hiredis/adapters/libev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/stats.h"
#include "lib/log.h"

#define RING_MIN 64
#define PING_MAX 320

struct pending {
    redisCallbackFn *fn;
    void *priv;
    ev_tstamp sent;
};

struct redis_link {
    struct ev_loop *loop;
    struct redis_link_config cfg;
    char name[16];
    redisAsyncContext *ac; /* NULL while down and between attempts */
    bool up;               /* Redis answered on ac */
    bool timed_out;        /* the watchdog is dropping ac: already logged */
    unsigned attempt;      /* failed attempts since the last success */
    uint32_t rnd;          /* xorshift state for the jitter */
    /* connect timeout while connecting, retry delay while down, watchdog while up */
    ev_timer timer;
    redis_link_cb on_change;
    void *arg;
    struct pending *ring; /* a command link's unanswered commands, oldest at head */
    size_t cap, head, len;
    ev_tstamp last_sent;
    ev_tstamp ping_sent;        /* a subscribe link's unanswered PING; < 0: none */
    char channel[PING_MAX / 2]; /* cfg.ping_channel points here */
    char ping[PING_MAX];        /* a subscribe link's PING, in RESP */
    size_t ping_len;
};

int64_t redis_backoff_ms(unsigned attempt, int64_t min, int64_t max, uint32_t rnd)
{
    int64_t d = min > 0 ? min : 1;
    for (unsigned i = 0; i < attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    int64_t half = d / 2;
    return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}

enum redis_watch redis_watch_check(double now, double oldest, double last, double timeout,
                                   double *next)
{
    if (oldest >= 0) {
        *next = oldest + timeout;
        return now >= *next ? REDIS_WATCH_DROP : REDIS_WATCH_WAIT;
    }
    *next = last + timeout;
    return now >= *next ? REDIS_WATCH_PING : REDIS_WATCH_WAIT;
}

static uint32_t next_rnd(struct redis_link *l)
{
    uint32_t x = l->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return l->rnd = x;
}

static void arm(struct redis_link *l, double seconds)
{
    ev_timer_stop(l->loop, &l->timer);
    ev_timer_set(&l->timer, seconds, 0.0);
    ev_timer_start(l->loop, &l->timer);
}

static void schedule_retry(struct redis_link *l)
{
    int64_t ms =
        redis_backoff_ms(l->attempt++, l->cfg.backoff_min_ms, l->cfg.backoff_max_ms, next_rnd(l));
    arm(l, (double)ms / 1000.0);
}

/* Redis answered on a new connection: the link is up. */
static void become_up(struct redis_link *l)
{
    ev_timer_stop(l->loop, &l->timer);
    rr_info("redis %s link: connected to %s:%u", l->name, l->cfg.host, l->cfg.port);
    l->attempt = 0;
    l->up = true;
    l->last_sent = ev_now(l->loop);
    if (l->cfg.timeout_ms > 0)
        arm(l, (double)l->cfg.timeout_ms / 1000.0);
    l->on_change(l->arg, true);
}

/* ---- timed commands ---- */

/* Room in the ring for one more, before the command goes to hiredis. */
static int ring_reserve(struct redis_link *l)
{
    if (l->len < l->cap)
        return 0;
    size_t cap = l->cap ? 2 * l->cap : RING_MIN;
    struct pending *r = malloc(cap * sizeof(*r));
    if (!r)
        return -1;
    for (size_t i = 0; l->cap && i < l->len; i++)
        r[i] = l->ring[(l->head + i) % l->cap];
    free(l->ring);
    l->ring = r;
    l->cap = cap;
    l->head = 0;
    return 0;
}

/* After ring_reserve: the command hiredis just took. */
static void ring_push(struct redis_link *l, redisCallbackFn *fn, void *priv)
{
    ev_tstamp now = ev_now(l->loop);
    l->ring[(l->head + l->len) % l->cap] = (struct pending){fn, priv, now};
    l->len++;
    l->last_sent = now;
}

/* Every reply on a command link, in order: the oldest command's. */
static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis_link *l = priv;
    if (l->len == 0)
        return;
    struct pending p = l->ring[l->head];
    l->head = (l->head + 1) % l->cap;
    l->len--;
    if (reply && !l->up && l->ac == ac)
        become_up(l);
    if (p.fn)
        p.fn(ac, reply, p.priv);
}

int redis_link_command(struct redis_link *l, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    if (!l->up || l->cfg.ping_channel || ring_reserve(l) < 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(l->ac, reply_cb, l, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return -1;
    ring_push(l, fn, priv);
    return 0;
}

int redis_link_command_argv(struct redis_link *l, redisCallbackFn *fn, void *priv, int argc,
                            const char **argv, const size_t *lens)
{
    if (!l->up || l->cfg.ping_channel || ring_reserve(l) < 0 ||
        redisAsyncCommandArgv(l->ac, reply_cb, l, argc, argv, lens) != REDIS_OK)
        return -1;
    ring_push(l, fn, priv);
    return 0;
}

/* ---- the subscribe link's PINGs ---- */

/* Anything on the link's own pattern: its subscription confirmed (the first
 * answer), or a pong. */
static void pattern_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis_link *l = priv;
    if (!reply || l->ac != ac)
        return;
    l->ping_sent = -1;
    if (!l->up)
        become_up(l);
}

static void ping(struct redis_link *l)
{
    ev_tstamp now = ev_now(l->loop);
    if (!l->cfg.ping_channel) {
        redis_link_command(l, NULL, NULL, "PING");
        return;
    }
    if (!(l->ac->c.flags & REDIS_SUBSCRIBED) ||
        redisAppendFormattedCommand(&l->ac->c, l->ping, l->ping_len) != REDIS_OK)
        return;
    if (l->ac->ev.addWrite)
        l->ac->ev.addWrite(l->ac->ev.data);
    l->ping_sent = now;
    l->last_sent = now;
}

/* ---- connecting ---- */

static void try_connect(struct redis_link *l);

/* TCP is up. A stopped Redis still completes TCP handshakes, so the link is
 * up only when Redis answers, within the connect timeout. */
static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        if (l->attempt == 0)
            rr_warn("redis %s link: cannot connect to %s:%u: %s", l->name, l->cfg.host, l->cfg.port,
                    ac->errstr);
        l->ac = NULL;
        schedule_retry(l);
        return;
    }
    if (l->cfg.ping_channel)
        redisAsyncCommand(l->ac, pattern_cb, l, "PSUBSCRIBE %s", l->cfg.ping_channel);
    else if (ring_reserve(l) == 0 && redisAsyncCommand(l->ac, reply_cb, l, "PING") == REDIS_OK)
        ring_push(l, NULL, NULL);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    (void)status;
    if (l->ac != ac)
        return; /* given up by the link itself */
    bool was_up = l->up, logged = l->timed_out;
    l->ac = NULL;
    l->up = false;
    l->timed_out = false;
    l->head = l->len = 0;
    l->ping_sent = -1;
    if (!logged && (was_up || l->attempt == 0))
        rr_warn("redis %s link: lost %s:%u: %s", l->name, l->cfg.host, l->cfg.port,
                ac->errstr[0] ? ac->errstr : "closed");
    if (was_up)
        l->on_change(l->arg, false);
    schedule_retry(l);
}

static void try_connect(struct redis_link *l)
{
    redisAsyncContext *ac = redisAsyncConnect(l->cfg.host, l->cfg.port);
    if (!ac || ac->err) {
        if (l->attempt == 0)
            rr_warn("redis %s link: cannot connect to %s:%u: %s", l->name, l->cfg.host, l->cfg.port,
                    ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    ac->data = l;
    if (redisLibevAttach(l->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    arm(l, (double)l->cfg.connect_timeout_ms / 1000.0);
}

/* ---- the watchdog ---- */

/* No answer in time: the link goes as if Redis had closed it (every pending
 * callback gets NULL, then on_disconnect tells the owner and retries). */
static void drop(struct redis_link *l)
{
    rr_warn("redis %s link: no answer from %s:%u in %lldms; reconnecting", l->name, l->cfg.host,
            l->cfg.port, (long long)l->cfg.timeout_ms);
    rr_inc(&bstats.redis_timeouts);
    l->timed_out = true;
    redisAsyncFree(l->ac);
}

static void watch(struct redis_link *l)
{
    ev_tstamp now = ev_now(l->loop);
    double oldest = l->len ? l->ring[l->head].sent : -1;
    if (l->ping_sent >= 0 && (oldest < 0 || l->ping_sent < oldest))
        oldest = l->ping_sent;
    double timeout = (double)l->cfg.timeout_ms / 1000.0, next;
    switch (redis_watch_check(now, oldest, l->last_sent, timeout, &next)) {
    case REDIS_WATCH_DROP:
        drop(l);
        return;
    case REDIS_WATCH_PING:
        ping(l);
        next = now + timeout;
        break;
    case REDIS_WATCH_WAIT:
        break;
    }
    arm(l, next > now ? next - now : timeout);
}

/* The retry delay ran out, a connect took too long, or the watchdog. */
static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct redis_link *l = t->data;
    if (l->up) {
        watch(l);
        return;
    }
    if (l->ac) {
        rr_debug("redis %s link: connect timed out", l->name);
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    try_connect(l);
}

struct redis_link *redis_link_new(struct ev_loop *loop, const char *name,
                                  const struct redis_link_config *cfg, redis_link_cb on_change,
                                  void *arg)
{
    struct redis_link *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->loop = loop;
    l->cfg = *cfg;
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->on_change = on_change;
    l->arg = arg;
    l->ping_sent = -1;
    if (cfg->ping_channel) {
        size_t cl = strlen(cfg->ping_channel);
        int n = snprintf(l->ping, sizeof(l->ping), "*2\r\n$4\r\nPING\r\n$%zu\r\n%s\r\n", cl,
                         cfg->ping_channel);
        if (cl >= sizeof(l->channel) || n < 0 || (size_t)n >= sizeof(l->ping)) {
            free(l);
            return NULL;
        }
        memcpy(l->channel, cfg->ping_channel, cl + 1);
        l->cfg.ping_channel = l->channel;
        l->ping_len = (size_t)n;
    }
    l->rnd = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ (uint32_t)(uintptr_t)l;
    if (!l->rnd)
        l->rnd = 1;
    ev_timer_init(&l->timer, timer_cb, 0.0, 0.0);
    l->timer.data = l;
    try_connect(l);
    return l;
}

redisAsyncContext *redis_link_ctx(const struct redis_link *l)
{
    return l->up ? l->ac : NULL;
}

void redis_link_free(struct redis_link *l)
{
    if (!l)
        return;
    ev_timer_stop(l->loop, &l->timer);
    l->up = false;
    if (l->ac) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac);
    }
    free(l->ring);
    free(l);
}
