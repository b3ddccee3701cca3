/*
 * The backend's registry record and control channel, see registry_io.h.
 */
#include "backend/registry_io.h"

#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "backend/redis_link.h"
#include "lib/log.h"

#define KEY_MAX 256
#define BACKOFF_MIN_MS 100
#define LEAVE_TIMEOUT_S 1.0

struct registry_io {
    struct ev_loop *loop;
    struct registry_io_config cfg;
    registry_beat_cb beat;
    registry_ctl_cb ctl;
    void *arg;
    struct redis_link *cmd, *sub;
    char key[KEY_MAX];       /* Pinst:<id> */
    char instances[KEY_MAX]; /* Pinstances */
    char ctl_ch[KEY_MAX];    /* Pctl */
    char ttl_ms[24];
    ev_timer timer; /* the heartbeat, then the leave's timeout */
    bool leaving;
    void (*done)(void *arg);
    void *done_arg;
};

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void registry_io_beat(struct registry_io *r)
{
    if (!redis_link_ctx(r->cmd) || r->leaving)
        return;
    struct rr_instance in = r->cfg.self;
    r->beat(r->arg, &in);
    char port[8], conns[24], rooms[24], started[24], now[24];
    snprintf(port, sizeof(port), "%u", (unsigned)in.port);
    snprintf(conns, sizeof(conns), "%" PRIu64, in.conns);
    snprintf(rooms, sizeof(rooms), "%" PRIu64, in.rooms);
    snprintf(started, sizeof(started), "%" PRId64, in.started);
    snprintf(now, sizeof(now), "%" PRId64, now_ms());
    redis_link_command(r->cmd, NULL, NULL,
                       "HSET %s addr %s port %s server %s state %s conns %s rooms %s started %s "
                       "version %s degraded %s",
                       r->key, in.addr, port, in.server, rr_inst_state_name(in.state), conns, rooms,
                       started, in.version, in.degraded ? "1" : "0");
    redis_link_command(r->cmd, NULL, NULL, "PEXPIRE %s %s", r->key, r->ttl_ms);
    redis_link_command(r->cmd, NULL, NULL, "ZADD %s %s %s", r->instances, now, in.id);
}

/* The heartbeat goes first on the same connection, so an agent that reads
 * the registry on this message finds the new state. */
void registry_io_announce(struct registry_io *r)
{
    if (!redis_link_ctx(r->cmd) || r->leaving)
        return;
    registry_io_beat(r);
    struct rr_ctl_msg m = {.op = RR_CTL_STATE};
    memcpy(m.instance, r->cfg.self.id, sizeof(m.instance));
    char msg[256];
    size_t n = rr_ctl_format(msg, sizeof(msg), &m);
    if (n)
        redis_link_command(r->cmd, NULL, NULL, "PUBLISH %s %b", r->ctl_ch, msg, n);
}

static void finish_leave(struct registry_io *r)
{
    void (*done)(void *) = r->done;
    r->done = NULL;
    ev_timer_stop(r->loop, &r->timer);
    if (done)
        done(r->done_arg);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct registry_io *r = t->data;
    if (r->leaving)
        finish_leave(r);
    else
        registry_io_beat(r);
}

static void leave_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)reply;
    finish_leave(priv);
}

void registry_io_leave(struct registry_io *r, void (*done)(void *arg), void *arg)
{
    r->leaving = true;
    r->done = done;
    r->done_arg = arg;
    if (redis_link_command(r->cmd, NULL, NULL, "DEL %s", r->key) < 0 ||
        redis_link_command(r->cmd, leave_cb, r, "ZREM %s %s", r->instances, r->cfg.self.id) < 0) {
        finish_leave(r);
        return;
    }
    ev_timer_stop(r->loop, &r->timer);
    ev_timer_set(&r->timer, LEAVE_TIMEOUT_S, 0.0);
    ev_timer_start(r->loop, &r->timer);
}

static void cmd_change(void *arg, bool up)
{
    if (up)
        registry_io_beat(arg);
}

/* A message on Pctl: ours when it is a drain or undrain naming this instance. */
static void ctl_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct registry_io *r = priv;
    const redisReply *m = reply;
    if (!m || m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
        m->element[0]->type != REDIS_REPLY_STRING || strcmp(m->element[0]->str, "message") != 0 ||
        m->element[2]->type != REDIS_REPLY_STRING)
        return;
    struct rr_ctl_msg msg;
    if (rr_ctl_parse(m->element[2]->str, m->element[2]->len, &msg) < 0) {
        rr_warn("redis: a malformed control message, ignored");
        return;
    }
    if ((msg.op == RR_CTL_DRAIN || msg.op == RR_CTL_UNDRAIN) &&
        strcmp(msg.instance, r->cfg.self.id) == 0)
        r->ctl(r->arg, &msg);
}

static void sub_change(void *arg, bool up)
{
    struct registry_io *r = arg;
    redisAsyncContext *ac = redis_link_ctx(r->sub);
    if (up && ac)
        redisAsyncCommand(ac, ctl_cb, r, "SUBSCRIBE %s", r->ctl_ch);
}

struct registry_io *registry_io_new(struct ev_loop *loop, const struct registry_io_config *cfg,
                                    registry_beat_cb beat, registry_ctl_cb ctl, void *arg)
{
    struct registry_io *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = *cfg;
    r->beat = beat;
    r->ctl = ctl;
    r->arg = arg;
    if (!rr_key_instance(r->key, sizeof(r->key), cfg->prefix, cfg->self.id) ||
        !rr_key_global(r->instances, sizeof(r->instances), cfg->prefix, "instances") ||
        !rr_key_global(r->ctl_ch, sizeof(r->ctl_ch), cfg->prefix, "ctl")) {
        free(r);
        return NULL;
    }
    snprintf(r->ttl_ms, sizeof(r->ttl_ms), "%" PRId64, 3 * cfg->heartbeat_ms);
    ev_timer_init(&r->timer, timer_cb, 0.0, (double)cfg->heartbeat_ms / 1000.0);
    r->timer.data = r;
    ev_timer_again(loop, &r->timer);
    char ping[KEY_MAX];
    struct redis_link_config lc = {
        cfg->host,       cfg->port, BACKOFF_MIN_MS, cfg->backoff_max_ms, cfg->connect_timeout_ms,
        cfg->timeout_ms, NULL};
    r->cmd = redis_link_new(loop, "registry", &lc, cmd_change, r);
    lc.ping_channel = rr_key_global(ping, sizeof(ping), cfg->prefix, "ping") ? ping : NULL;
    r->sub = redis_link_new(loop, "control", &lc, sub_change, r);
    if (!r->cmd || !r->sub) {
        registry_io_free(r);
        return NULL;
    }
    return r;
}

void registry_io_free(struct registry_io *r)
{
    if (!r)
        return;
    r->done = NULL;
    ev_timer_stop(r->loop, &r->timer);
    redis_link_free(r->cmd);
    redis_link_free(r->sub);
    free(r);
}
