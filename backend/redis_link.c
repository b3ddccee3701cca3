/*
 * A self-reconnecting hiredis async connection, see redis_link.h.
 *
 * hiredis 0.14 owns the context's memory: after a failed connect or a
 * disconnect it frees the context itself (after running every pending
 * callback with a NULL reply), so the link forgets its pointer in the
 * connect/disconnect callbacks and never frees it there. hiredis 0.14 has no
 * connect timeout of its own; the link's timer is it.
 */
#include "backend/redis_link.h"

#include <hiredis/adapters/libev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

struct redis_link {
    struct ev_loop *loop;
    struct redis_link_config cfg;
    char name[16];
    redisAsyncContext *ac; /* NULL while down and between attempts */
    bool up;
    unsigned attempt; /* failed attempts since the last success */
    uint32_t rnd;     /* xorshift state for the jitter */
    ev_timer timer;   /* connect timeout while connecting, retry delay while down */
    redis_link_cb on_change;
    void *arg;
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

static uint32_t next_rnd(struct redis_link *l)
{
    uint32_t x = l->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return l->rnd = x;
}

static void try_connect(struct redis_link *l);

static void schedule_retry(struct redis_link *l)
{
    int64_t ms =
        redis_backoff_ms(l->attempt++, l->cfg.backoff_min_ms, l->cfg.backoff_max_ms, next_rnd(l));
    ev_timer_stop(l->loop, &l->timer);
    ev_timer_set(&l->timer, (double)ms / 1000.0, 0.0);
    ev_timer_start(l->loop, &l->timer);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    ev_timer_stop(l->loop, &l->timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        if (l->attempt == 0)
            rr_warn("redis %s link: cannot connect to %s:%u: %s", l->name, l->cfg.host, l->cfg.port,
                    ac->errstr);
        l->ac = NULL;
        schedule_retry(l);
        return;
    }
    rr_info("redis %s link: connected to %s:%u", l->name, l->cfg.host, l->cfg.port);
    l->attempt = 0;
    l->up = true;
    l->on_change(l->arg, true);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    (void)status;
    l->ac = NULL;
    if (!l->up)
        return; /* redis_link_free() */
    rr_warn("redis %s link: lost %s:%u: %s", l->name, l->cfg.host, l->cfg.port,
            ac->errstr[0] ? ac->errstr : "closed");
    l->up = false;
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
    ev_timer_stop(l->loop, &l->timer);
    ev_timer_set(&l->timer, (double)l->cfg.connect_timeout_ms / 1000.0, 0.0);
    ev_timer_start(l->loop, &l->timer);
}

/* The retry delay ran out, or a connect took too long. */
static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct redis_link *l = t->data;
    if (l->ac && !l->up) {
        rr_debug("redis %s link: connect timed out", l->name);
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac); /* not connected: no disconnect callback */
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
    free(l);
}
