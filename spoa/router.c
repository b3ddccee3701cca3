/*
 * Room owners from Redis, see router.h. Three parts, all on one worker's loop:
 *
 * - connections: hiredis async on libev, reconnected with capped exponential
 *   backoff and jitter. hiredis 0.14 has no reply timeout: a request that
 *   waits longer than timeout_ms drops the command connection, which answers
 *   every request in flight "unavailable" (HAProxy then uses its stick table).
 * - the registry snapshot: ZRANGE P instances, then HGETALL P inst:<id> for
 *   each, pipelined; swapped in whole when every answer is in.
 * - the owner cache: direct-mapped (one slot per hash, a collision evicts),
 *   bounded by cache_size, emptied at once by bumping a generation. Used
 *   only while the ctl subscription is up, since that is what invalidates it.
 *
 * Resolving a room: GET P{room}:owner (and EXPIRE it). An owner that is up
 * answers; a draining or vanished one, or none, makes the room placed by
 * lib/placement and claimed with CAS_SCRIPT: set the owner only if it still
 * is what was read. The script answers the owner that won, so a lost race
 * answers the winner's owner, and two agents never disagree.
 */
#include "spoa/router.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/placement.h"
#include "lib/room_access.h"
#include "spoa/stats.h"

#define MAX_INSTANCES 1024
#define MAX_ATTEMPTS 3
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* KEYS[1] owner key; ARGV: expected owner ("" = none), new owner, TTL
 * seconds (0 = none), ctl channel, ctl message. Returns {owner, 1} when it
 * set the owner, {current owner or "", 0} when someone else got there first.
 * A move (an owner replaced) is published so agents drop their cached owner. */
static const char CAS_SCRIPT[] =
    "local cur = redis.call('GET', KEYS[1]) or ''\n"
    "if cur ~= ARGV[1] then return {cur, 0} end\n"
    "if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
    "else redis.call('SET', KEYS[1], ARGV[2]) end\n"
    "if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end\n"
    "return {ARGV[2], 1}\n";

static const char *const result_names[ROUTE_RESULT_COUNT] = {
    [ROUTE_CACHED] = "cached",
    [ROUTE_OWNER] = "owner",
    [ROUTE_PLACED] = "placed",
    [ROUTE_MOVED] = "moved",
    [ROUTE_LOST_RACE] = "lost_race",
    [ROUTE_NO_BACKEND] = "no_backend",
    [ROUTE_UNAVAILABLE] = "unavailable",
    [ROUTE_INVALID_ROOM] = "invalid_room",
    [ROUTE_FORBIDDEN_ROOM] = "forbidden_room",
    [ROUTE_OFF] = "off",
};

const char *spoa_route_result_name(enum spoa_route_result r)
{
    return r < ROUTE_RESULT_COUNT ? result_names[r] : "unknown";
}

struct rconn {
    struct spoa_router *r;
    redisAsyncContext *ac;
    bool up;  /* commands: connected; ctl: subscribed */
    bool sub; /* the SUBSCRIBE connection */
    ev_timer retry;
    uint32_t backoff_ms;
};

struct snapshot {
    struct rr_instance *inst;
    struct rr_place_node *nodes; /* nodes[i].id points to inst[i].id */
    size_t n;
    struct rr_ring ring;
};

struct owner_slot {
    uint32_t gen; /* valid while equal to the router's */
    uint8_t room_len;
    char room[RR_ROOM_NAME_MAX];
    char inst[RR_INSTANCE_ID_MAX + 1];
    ev_tstamp expires;
};

struct refresh;
struct refresh_item {
    struct refresh *rf;
    size_t i;
};

/* One registry read in flight. */
struct refresh {
    struct spoa_router *r;
    size_t n, left;
    bool failed;
    struct rr_instance *inst;
    bool *ok;
    struct refresh_item *items;
};

struct spoa_router {
    struct ev_loop *loop;
    const struct spoa_router_config *cfg;
    struct rconn cmd, ctl;
    bool loaded; /* a snapshot was read since the command connection came up */
    bool ready;  /* as counted in spoa_stats.redis_ready */
    bool closing;
    struct snapshot snap;
    struct refresh *refresh;
    bool reread; /* a registry change was announced during the read in flight */
    ev_tstamp refresh_started;
    ev_timer tick;
    struct route_req *reqs;
    struct owner_slot *cache;
    size_t cache_mask; /* slots - 1; no slots when cache is NULL */
    uint32_t gen;
    unsigned seed;
    char sha[SHA_DIGEST_LENGTH * 2 + 1];
    char key_instances[128], key_ctl[128];
};

/* One route-room waiting for Redis. */
struct route_req {
    struct spoa_router *r;
    struct route_req *prev, *next; /* the router's requests */
    spoa_route_cb *cb;
    void *arg;
    ev_timer timer;
    bool inflight; /* a command is outstanding on r->cmd */
    bool evaled;   /* NOSCRIPT seen: the script was sent whole */
    int attempts;
    ev_tstamp t0;
    char room[RR_ROOM_NAME_MAX + 1];
    char owner_key[RR_ROOM_NAME_MAX + 160];
    char expected[RR_INSTANCE_ID_MAX + 1]; /* owner read; "" = none */
    char chosen[RR_INSTANCE_ID_MAX + 1];
    char server[RR_INSTANCE_ID_MAX + 1]; /* an owner not in the snapshot yet */
};

static void rconn_connect(struct rconn *c);
static void refresh_start(struct spoa_router *r);
static void req_get_owner(struct route_req *q);

/* ---- readiness ---- */

static void update_ready(struct spoa_router *r)
{
    bool ready = r->cmd.up && r->loaded && !r->closing;
    if (ready == r->ready)
        return;
    r->ready = ready;
    if (ready)
        rr_inc(&spoa_stats.redis_ready);
    else
        atomic_fetch_sub(&spoa_stats.redis_ready, 1);
}

bool spoa_router_ready(const struct spoa_router *r)
{
    return r->ready;
}

/* ---- connections ---- */

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    rconn_connect(t->data);
}

static void schedule_retry(struct rconn *c)
{
    struct spoa_router *r = c->r;
    if (r->closing)
        return;
    uint32_t b = c->backoff_ms ? c->backoff_ms : BACKOFF_MIN_MS;
    c->backoff_ms = b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
    double jitter = 0.5 + (double)rand_r(&r->seed) / RAND_MAX; /* 0.5 .. 1.5 */
    ev_timer_stop(r->loop, &c->retry);
    ev_timer_set(&c->retry, b * jitter / 1000.0, 0.0);
    ev_timer_start(r->loop, &c->retry);
}

static void lost(struct rconn *c)
{
    c->ac = NULL;
    c->up = false;
    if (c->sub)
        c->r->gen++; /* invalidations may be missed until resubscribed */
    else
        c->r->loaded = false;
    update_ready(c->r);
    schedule_retry(c);
}

/* Drops a connection: every callback still waiting on it runs with a NULL reply. */
static void rconn_drop(struct rconn *c)
{
    redisAsyncContext *ac = c->ac;
    if (!ac)
        return;
    rr_inc(&spoa_stats.redis_disconnects);
    lost(c);
    redisAsyncFree(ac);
}

static void on_ctl_message(redisAsyncContext *ac, void *reply, void *privdata);

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    if (c->ac != ac)
        return;
    if (status != REDIS_OK) {
        rr_debug("redis %s:%u: cannot connect: %s", c->r->cfg->host, c->r->cfg->port, ac->errstr);
        c->ac = NULL; /* hiredis frees it */
        schedule_retry(c);
        return;
    }
    rr_info("redis %s:%u: connected (%s)", c->r->cfg->host, c->r->cfg->port,
            c->sub ? "ctl subscription" : "commands");
    c->backoff_ms = 0;
    if (c->sub) {
        redisAsyncCommand(c->ac, on_ctl_message, c, "SUBSCRIBE %s", c->r->key_ctl);
    } else {
        c->up = true;
        refresh_start(c->r);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    if (c->ac != ac)
        return; /* dropped by rconn_drop, already handled */
    rr_warn("redis %s:%u: connection lost (%s): %s", c->r->cfg->host, c->r->cfg->port,
            c->sub ? "ctl subscription" : "commands", status == REDIS_OK ? "closed" : ac->errstr);
    rr_inc(&spoa_stats.redis_disconnects);
    lost(c);
}

static void rconn_connect(struct rconn *c)
{
    struct spoa_router *r = c->r;
    redisAsyncContext *ac = redisAsyncConnect(r->cfg->host, r->cfg->port);
    if (!ac || ac->err) {
        rr_debug("redis %s:%u: %s", r->cfg->host, r->cfg->port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    if (redisLibevAttach(r->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
}

/* ---- the registry snapshot ---- */

static void snapshot_free(struct snapshot *s)
{
    rr_ring_free(&s->ring);
    free(s->inst);
    free(s->nodes);
    memset(s, 0, sizeof(*s));
}

static const struct rr_instance *snap_find(const struct snapshot *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->inst[i].id, id) == 0)
            return &s->inst[i];
    return NULL;
}

static void refresh_free(struct refresh *rf)
{
    if (rf->r->refresh == rf)
        rf->r->refresh = NULL;
    free(rf->inst);
    free(rf->ok);
    free(rf->items);
    free(rf);
}

/* Installs what a complete read found; a failed read keeps the old snapshot. */
static void refresh_finish(struct refresh *rf)
{
    struct spoa_router *r = rf->r;
    struct snapshot s = {0};
    if (rf->failed)
        goto out;
    s.inst = calloc(rf->n ? rf->n : 1, sizeof(*s.inst));
    s.nodes = calloc(rf->n ? rf->n : 1, sizeof(*s.nodes));
    if (!s.inst || !s.nodes)
        goto fail;
    for (size_t i = 0; i < rf->n; i++) {
        if (!rf->ok[i])
            continue;
        s.inst[s.n] = rf->inst[i];
        s.nodes[s.n] = (struct rr_place_node){.id = s.inst[s.n].id,
                                              .load = rf->inst[i].rooms,
                                              .draining = rf->inst[i].state == RR_INST_DRAINING,
                                              .degraded = rf->inst[i].degraded};
        s.n++;
    }
    if (rr_ring_build(&s.ring, s.nodes, s.n) < 0)
        goto fail;
    /* s's arrays move to r->snap (the analyzer loses them across the copy). */
    snapshot_free(&r->snap); // NOLINT(clang-analyzer-unix.Malloc)
    r->snap = s;
    r->loaded = true;
    for (size_t i = 0; i < s.n; i++)
        rr_debug("registry: %s %s", s.inst[i].id, rr_inst_state_name(s.inst[i].state));
    update_ready(r);
    goto out;
fail:
    rr_error("out of memory reading the instance registry");
    snapshot_free(&s);
out:
    refresh_free(rf);
    if (r->reread) {
        r->reread = false;
        refresh_start(r);
    }
}

static void on_instance(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *rep = reply;
    struct refresh_item *it = privdata;
    struct refresh *rf = it->rf;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        rf->failed = true;
    } else if (rep->elements >= 2 && rep->elements % 2 == 0) {
        size_t n = rep->elements / 2;
        const char *fields[32], *values[32];
        if (n > 32)
            n = 32;
        bool strings = true;
        for (size_t i = 0; i < n; i++) {
            redisReply *f = rep->element[2 * i], *v = rep->element[2 * i + 1];
            strings = strings && f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING;
            fields[i] = strings ? f->str : "";
            values[i] = strings ? v->str : "";
        }
        struct rr_instance *in = &rf->inst[it->i];
        char id[sizeof(in->id)];
        memcpy(id, in->id, sizeof(id)); /* parse clears *in first */
        rf->ok[it->i] = strings && rr_instance_parse(in, id, fields, values, n) == 0;
        if (!rf->ok[it->i])
            rr_warn("registry: instance '%s' has a malformed record; ignored", id);
    }
    /* An empty answer: the record expired (the instance stopped heartbeating). */
    if (--rf->left == 0)
        refresh_finish(rf);
}

static void on_instance_ids(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    struct refresh *rf = privdata;
    struct spoa_router *r = rf->r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || !r->cmd.ac) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            rr_warn("registry: ZRANGE %s: %s", r->key_instances, rep->str);
        refresh_free(rf);
        return;
    }
    size_t n = rep->elements;
    rf->inst = calloc(n ? n : 1, sizeof(*rf->inst));
    rf->ok = calloc(n ? n : 1, sizeof(*rf->ok));
    rf->items = calloc(n ? n : 1, sizeof(*rf->items));
    if (!rf->inst || !rf->ok || !rf->items) {
        refresh_free(rf);
        return;
    }
    rf->n = n;
    rf->left = 1; /* held until every HGETALL is sent */
    for (size_t i = 0; i < n; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > RR_INSTANCE_ID_MAX)
            continue;
        memcpy(rf->inst[i].id, e->str, e->len);
        char key[RR_INSTANCE_ID_MAX + 160];
        if (rr_key_instance(key, sizeof(key), r->cfg->prefix, rf->inst[i].id) == 0)
            continue;
        rf->items[i] = (struct refresh_item){rf, i};
        if (redisAsyncCommand(ac, on_instance, &rf->items[i], "HGETALL %s", key) == REDIS_OK)
            rf->left++;
        else
            rf->failed = true;
    }
    if (--rf->left == 0)
        refresh_finish(rf);
}

static void refresh_start(struct spoa_router *r)
{
    if (!r->cmd.up || r->refresh)
        return;
    struct refresh *rf = calloc(1, sizeof(*rf));
    if (!rf)
        return;
    rf->r = r;
    if (redisAsyncCommand(r->cmd.ac, on_instance_ids, rf, "ZRANGE %s 0 %d", r->key_instances,
                          MAX_INSTANCES - 1) != REDIS_OK) {
        free(rf);
        return;
    }
    r->refresh = rf;
    r->refresh_started = ev_now(r->loop);
}

/* Every refresh period: read the registry again; a read stuck for three
 * periods means a dead connection that TCP has not noticed. */
static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct spoa_router *r = t->data;
    if (r->refresh) {
        if (ev_now(loop) - r->refresh_started > 3.0 * (double)r->cfg->refresh_ms / 1000.0) {
            rr_warn("redis: the registry read is not answered; reconnecting");
            rr_inc(&spoa_stats.redis_timeouts);
            rconn_drop(&r->cmd);
        }
        return;
    }
    refresh_start(r);
}

/* ---- the owner cache ---- */

static uint64_t room_hash(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    return h ^ (h >> 29);
}

static struct owner_slot *cache_slot(struct spoa_router *r, const char *room, size_t len)
{
    return r->cache ? &r->cache[room_hash(room, len) & r->cache_mask] : NULL;
}

static struct owner_slot *cache_find(struct spoa_router *r, const char *room, size_t len)
{
    struct owner_slot *s = cache_slot(r, room, len);
    if (!s || s->gen != r->gen || s->room_len != len || memcmp(s->room, room, len) != 0)
        return NULL;
    return s;
}

static void cache_put(struct spoa_router *r, const char *room, size_t len, const char *inst)
{
    struct owner_slot *s = cache_slot(r, room, len);
    if (!s || !r->ctl.up)
        return;
    s->gen = r->gen;
    s->room_len = (uint8_t)len;
    memcpy(s->room, room, len);
    snprintf(s->inst, sizeof(s->inst), "%s", inst);
    s->expires = ev_now(r->loop) + (double)r->cfg->cache_ttl_ms / 1000.0;
}

bool spoa_router_cached(struct spoa_router *r, const char *room, size_t len,
                        struct spoa_route_answer *a)
{
    if (!r->ready || !r->ctl.up)
        return false;
    struct owner_slot *s = cache_find(r, room, len);
    if (!s || s->expires < ev_now(r->loop))
        return false;
    const struct rr_instance *in = snap_find(&r->snap, s->inst);
    if (!in || in->state != RR_INST_UP)
        return false;
    *a = (struct spoa_route_answer){.server = in->server};
    return true;
}

/* {"op":"owner",...} drops the room's cached owner (unless it already is the
 * new one); drain, undrain and state read the registry again now, or once
 * the read in flight is done (it may have read the record before the change). */
static void on_ctl_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *rep = reply;
    struct rconn *c = privdata;
    struct spoa_router *r = c->r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = rep->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        c->up = true;
        r->gen++;
        return;
    }
    redisReply *payload = rep->element[2];
    if (strcmp(kind, "message") != 0 || payload->type != REDIS_REPLY_STRING)
        return;
    struct rr_ctl_msg m;
    if (rr_ctl_parse(payload->str, payload->len, &m) < 0) {
        rr_debug("ctl: ignoring '%.*s'", (int)(payload->len > 200 ? 200 : payload->len),
                 payload->str);
        return;
    }
    rr_inc(&spoa_stats.ctl_messages);
    rr_debug("ctl: %.*s", (int)(payload->len > 200 ? 200 : payload->len), payload->str);
    if (m.op == RR_CTL_OWNER) {
        struct owner_slot *s = cache_find(r, m.room, strlen(m.room));
        if (s && strcmp(s->inst, m.instance) != 0)
            s->gen = r->gen - 1;
    } else if (!r->refresh) {
        refresh_start(r);
    } else {
        r->reread = true;
    }
}

/* ---- resolving one room ---- */

static void req_finish(struct route_req *q, const struct spoa_route_answer *a,
                       enum spoa_route_result res)
{
    struct spoa_router *r = q->r;
    ev_timer_stop(r->loop, &q->timer);
    if (q->prev)
        q->prev->next = q->next;
    else
        r->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    rr_inc(&spoa_stats.route_room[res]);
    double took = ev_time() - q->t0;
    rr_hist_observe_ns(&spoa_stats.route_seconds, took > 0 ? (uint64_t)(took * 1e9) : 0);
    q->cb(q->arg, a, res);
    free(q);
}

static void req_unavailable(struct route_req *q)
{
    struct spoa_route_answer a = {0};
    req_finish(q, &a, ROUTE_UNAVAILABLE);
}

/* Fails a request whose command could not be sent, from the loop rather
 * than from inside the caller. */
static void req_fail_soon(struct route_req *q)
{
    q->inflight = false;
    ev_timer_stop(q->r->loop, &q->timer);
    ev_timer_set(&q->timer, 0.0, 0.0);
    ev_timer_start(q->r->loop, &q->timer);
}

static void req_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct route_req *q = t->data;
    if (!q->inflight) {
        req_unavailable(q);
        return;
    }
    rr_warn("redis: no answer in %lldms; reconnecting", (long long)q->r->cfg->timeout_ms);
    rr_inc(&spoa_stats.redis_timeouts);
    rconn_drop(&q->r->cmd); /* runs this request's callback with NULL */
}

/* Answers instance `id` (the owner now), caching it. */
static void req_answer(struct route_req *q, const char *id, bool moved, enum spoa_route_result res)
{
    struct spoa_router *r = q->r;
    const struct rr_instance *in = snap_find(&r->snap, id);
    struct spoa_route_answer a = {.server = in ? in->server : q->server, .moved = moved};
    rr_debug("route: room '%s' -> '%s' (%d)", q->room, id, (int)res);
    cache_put(r, q->room, strlen(q->room), id);
    req_finish(q, &a, res);
}

static void on_claim(redisAsyncContext *ac, void *reply, void *privdata);

static void req_claim(struct route_req *q)
{
    struct spoa_router *r = q->r;
    struct snapshot *s = &r->snap;
    int i = rr_place(&s->ring, s->nodes, s->n, q->room, strlen(q->room), r->cfg->balance);
    if (i < 0) {
        struct spoa_route_answer a = {.err = "no_backend"};
        req_finish(q, &a, ROUTE_NO_BACKEND);
        return;
    }
    snprintf(q->chosen, sizeof(q->chosen), "%s", s->inst[i].id);
    struct rr_ctl_msg m = {.op = RR_CTL_OWNER};
    snprintf(m.instance, sizeof(m.instance), "%s", q->chosen);
    snprintf(m.room, sizeof(m.room), "%s", q->room);
    char msg[256];
    size_t mlen = rr_ctl_format(msg, sizeof(msg), &m);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)r->cfg->owner_ttl_s);
    int rc;
    if (!r->cmd.ac) {
        rc = REDIS_ERR;
    } else if (q->evaled) {
        rc = redisAsyncCommand(r->cmd.ac, on_claim, q, "EVAL %s 1 %s %b %s %s %s %b", CAS_SCRIPT,
                               q->owner_key, q->expected, strlen(q->expected), q->chosen, ttl,
                               r->key_ctl, msg, mlen);
    } else {
        rc = redisAsyncCommand(r->cmd.ac, on_claim, q, "EVALSHA %s 1 %s %b %s %s %s %b", r->sha,
                               q->owner_key, q->expected, strlen(q->expected), q->chosen, ttl,
                               r->key_ctl, msg, mlen);
    }
    if (rc != REDIS_OK) {
        req_fail_soon(q);
        return;
    }
    q->inflight = true;
}

static void on_claim(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *rep = reply;
    struct route_req *q = privdata;
    struct spoa_router *r = q->r;
    q->inflight = false;
    if (!rep) {
        req_unavailable(q);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 && !q->evaled) {
        q->evaled = true;
        req_claim(q);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_INTEGER) {
        rr_warn("redis: owner claim of '%s': %s", q->room,
                rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        req_unavailable(q);
        return;
    }
    const char *owner = rep->element[0]->str;
    bool moved_from = q->expected[0] != '\0';
    if (rep->element[1]->integer == 1) {
        for (size_t i = 0; i < r->snap.n; i++)
            if (strcmp(r->snap.inst[i].id, q->chosen) == 0)
                r->snap.nodes[i].load++;
        if (moved_from)
            rr_info("room '%s' moved from '%s' to '%s'", q->room, q->expected, q->chosen);
        req_answer(q, q->chosen, moved_from, moved_from ? ROUTE_MOVED : ROUTE_PLACED);
        return;
    }
    /* Someone else changed the owner since it was read. */
    const struct rr_instance *in = snap_find(&r->snap, owner);
    if (in && in->state == RR_INST_UP) {
        req_answer(q, owner, moved_from && strcmp(owner, q->expected) != 0, ROUTE_LOST_RACE);
        return;
    }
    if (++q->attempts >= MAX_ATTEMPTS) {
        req_unavailable(q);
        return;
    }
    req_get_owner(q);
}

/* An owner the snapshot does not know (registered since it was read): the
 * registry decides whether it is up. */
static void on_owner_record(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redisReply *rep = reply;
    struct route_req *q = privdata;
    q->inflight = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        req_unavailable(q);
        return;
    }
    redisReply *state = rep->element[0], *server = rep->element[1];
    if (state->type == REDIS_REPLY_STRING && strcmp(state->str, "up") == 0) {
        snprintf(q->server, sizeof(q->server), "%s",
                 server->type == REDIS_REPLY_STRING && server->len > 0 ? server->str : q->expected);
        req_answer(q, q->expected, false, ROUTE_OWNER);
        return;
    }
    req_claim(q);
}

static void on_owner(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    struct route_req *q = privdata;
    struct spoa_router *r = q->r;
    q->inflight = false;
    if (!rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL)) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            rr_warn("redis: GET %s: %s", q->owner_key, rep->str);
        req_unavailable(q);
        return;
    }
    q->expected[0] = '\0';
    if (rep->type == REDIS_REPLY_STRING && rep->len > 0 && rep->len <= RR_INSTANCE_ID_MAX)
        memcpy(q->expected, rep->str, rep->len + 1);
    if (!q->expected[0]) {
        req_claim(q);
        return;
    }
    const struct rr_instance *in = snap_find(&r->snap, q->expected);
    if (in) {
        if (in->state == RR_INST_UP)
            req_answer(q, q->expected, false, ROUTE_OWNER);
        else
            req_claim(q);
        return;
    }
    char key[RR_INSTANCE_ID_MAX + 160];
    rr_key_instance(key, sizeof(key), r->cfg->prefix, q->expected);
    if (redisAsyncCommand(ac, on_owner_record, q, "HMGET %s state server", key) != REDIS_OK) {
        req_fail_soon(q);
        return;
    }
    q->inflight = true;
}

static void req_get_owner(struct route_req *q)
{
    struct spoa_router *r = q->r;
    if (!r->cmd.ac ||
        redisAsyncCommand(r->cmd.ac, on_owner, q, "GET %s", q->owner_key) != REDIS_OK) {
        req_fail_soon(q);
        return;
    }
    q->inflight = true;
    /* Owner keys of rooms still in use are kept alive by being read. */
    if (r->cfg->owner_ttl_s > 0)
        redisAsyncCommand(r->cmd.ac, NULL, NULL, "EXPIRE %s %lld", q->owner_key,
                          (long long)r->cfg->owner_ttl_s);
}

void spoa_router_resolve(struct spoa_router *r, const char *room, size_t len, spoa_route_cb *cb,
                         void *arg)
{
    struct route_req *q = calloc(1, sizeof(*q));
    if (!q) {
        /* Nothing to answer from the loop with: answer now. */
        struct spoa_route_answer a = {0};
        cb(arg, &a, ROUTE_UNAVAILABLE);
        return;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->t0 = ev_time();
    q->next = r->reqs;
    if (r->reqs)
        r->reqs->prev = q;
    r->reqs = q;
    memcpy(q->room, room, len < RR_ROOM_NAME_MAX ? len : RR_ROOM_NAME_MAX);
    rr_key_room(q->owner_key, sizeof(q->owner_key), r->cfg->prefix, q->room, "owner");
    ev_timer_init(&q->timer, req_timer_cb, (double)r->cfg->timeout_ms / 1000.0, 0.0);
    q->timer.data = q;
    ev_timer_start(r->loop, &q->timer);
    if (!r->ready) {
        req_fail_soon(q);
        return;
    }
    req_get_owner(q);
}

/* ---- check-drain ---- */

enum spoa_drain_result spoa_router_draining(struct spoa_router *r, const char *server, size_t len,
                                            const char *key, size_t keylen,
                                            const char **replacement)
{
    *replacement = NULL;
    struct snapshot *s = &r->snap;
    if (!r->ready)
        return DRAIN_UNKNOWN;
    for (size_t i = 0; i < s->n; i++) {
        const struct rr_instance *in = &s->inst[i];
        if (strlen(in->server) != len || memcmp(in->server, server, len) != 0)
            continue;
        if (in->state != RR_INST_DRAINING)
            return DRAIN_UP;
        int k = rr_place(&s->ring, s->nodes, s->n, key, keylen, r->cfg->balance);
        if (k >= 0)
            *replacement = s->inst[k].server;
        return DRAIN_DRAINING;
    }
    return DRAIN_UNKNOWN;
}

/* ---- life ---- */

struct spoa_router *spoa_router_new(struct ev_loop *loop, const struct spoa_router_config *cfg)
{
    struct spoa_router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = cfg;
    r->gen = 1;
    r->seed = (unsigned)(uintptr_t)r ^ (unsigned)ev_time();
    if (cfg->cache_size > 0) {
        size_t slots = 1;
        while (slots < (size_t)cfg->cache_size)
            slots <<= 1;
        r->cache = calloc(slots, sizeof(*r->cache));
        if (!r->cache) {
            free(r);
            return NULL;
        }
        r->cache_mask = slots - 1;
    }
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)CAS_SCRIPT, sizeof(CAS_SCRIPT) - 1, digest);
    for (size_t i = 0; i < sizeof(digest); i++)
        snprintf(r->sha + 2 * i, 3, "%02x", digest[i]);
    rr_key_global(r->key_instances, sizeof(r->key_instances), cfg->prefix, "instances");
    rr_key_global(r->key_ctl, sizeof(r->key_ctl), cfg->prefix, "ctl");

    struct rconn *conns[] = {&r->cmd, &r->ctl};
    for (size_t i = 0; i < 2; i++) {
        conns[i]->r = r;
        conns[i]->sub = conns[i] == &r->ctl;
        ev_init(&conns[i]->retry, retry_cb);
        conns[i]->retry.data = conns[i];
        rconn_connect(conns[i]);
    }
    ev_timer_init(&r->tick, tick_cb, (double)cfg->refresh_ms / 1000.0,
                  (double)cfg->refresh_ms / 1000.0);
    r->tick.data = r;
    ev_timer_start(loop, &r->tick);
    return r;
}

void spoa_router_free(struct spoa_router *r)
{
    if (!r)
        return;
    r->closing = true;
    update_ready(r);
    ev_timer_stop(r->loop, &r->tick);
    ev_timer_stop(r->loop, &r->cmd.retry);
    ev_timer_stop(r->loop, &r->ctl.retry);
    rconn_drop(&r->cmd);
    rconn_drop(&r->ctl);
    for (struct route_req *q = r->reqs, *next; q; q = next) {
        next = q->next;
        req_unavailable(q);
    }
    snapshot_free(&r->snap);
    free(r->cache);
    free(r);
}
