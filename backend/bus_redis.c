/*
 * The Redis bus (DESIGN.md §5; key names from lib/registry.h): a room's
 * events are numbered by a Lua script in Redis, kept in the room's history
 * stream and published on its channel; every backend with members of the
 * room, the publisher's own included, delivers them from its subscription,
 * so every member sees one order.
 *
 * Two connections (redis_link.c): one for commands (the scripts), one for
 * SUBSCRIBE. The bus keeps its own table of the rooms it follows (room.c's
 * table: the name, and in seq the highest seq seen; bus_data is the struct
 * rroom below), because a subscription outlives the room's last local member
 * by --subscribe-linger-ms, so that a member who leaves and comes back does
 * not cost an UNSUBSCRIBE and a SUBSCRIBE.
 *
 * A publish or a history read is sent only once the room's subscription is
 * confirmed: what it returns is then followed by every later event on the
 * subscription. Until then it waits in the room's queue.
 *
 * Redis away (either connection down): the bus is degraded. Publishes are
 * numbered in this process (bus_local_publish) from the highest seq seen, so
 * local members keep talking; a member catching up gets the seq and no
 * history. When both connections are back, a script raises the room's seq in
 * Redis to at least the local one (seqs never go backwards) and the rooms
 * are subscribed again. The locally numbered events are not in the history.
 *
 * Not here: the connection's reconnects (redis_link.c), what a member does
 * with events and history (conn.c).
 */
#include <hiredis/async.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/bus.h"
#include "backend/proto.h"
#include "backend/redis_link.h"
#include "lib/log.h"
#include "lib/registry.h"

#define KEY_MAX 256
#define CALL_ARGS_MAX 10
#define BACKOFF_MIN_MS 100

/* KEYS: seq, hist, ch, ids. ARGV: dedup member ("" for none), message head,
 * message tail, history size, TTL seconds. Returns {seq, duplicate}. */
static const char PUBLISH_LUA[] =
    "local size = tonumber(ARGV[4])\n"
    "if ARGV[1] ~= '' then\n"
    "  local old = redis.call('ZSCORE', KEYS[4], ARGV[1])\n"
    "  if old then return {tonumber(old), 1} end\n"
    "end\n"
    "local seq = redis.call('INCR', KEYS[1])\n"
    "local s = string.format('%d', seq)\n"
    "local msg = ARGV[2] .. s .. ARGV[3]\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, s .. '-0', 'm', msg)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[5])\n"
    "if ARGV[1] ~= '' then\n"
    "  redis.call('ZADD', KEYS[4], seq, ARGV[1])\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', seq - size)\n"
    "  redis.call('EXPIRE', KEYS[4], ARGV[5])\n"
    "end\n"
    "redis.call('PUBLISH', KEYS[3], s .. ' ' .. msg)\n"
    "return {seq, 0}\n";

/* KEYS: seq, hist. ARGV: first stream id to read ("" for the head only).
 * Returns {head, id, text, id, text, ...}. */
static const char FETCH_LUA[] =
    "local head = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if ARGV[1] == '' then return {head} end\n"
    "local out = {head}\n"
    "for _, e in ipairs(redis.call('XRANGE', KEYS[2], ARGV[1], '+')) do\n"
    "  out[#out + 1] = e[1]\n"
    "  out[#out + 1] = e[2][2]\n"
    "end\n"
    "return out\n";

/* KEYS: seq. ARGV: this backend's seq, TTL seconds. Raises seq to ours,
 * never lowers it; returns the result. */
static const char CATCHUP_LUA[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                                  "local mine = tonumber(ARGV[1])\n"
                                  "if mine > cur then\n"
                                  "  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
                                  "  return mine\n"
                                  "end\n"
                                  "return cur\n";

/* KEYS: members. ARGV: the registry's instance key prefix, this backend's
 * id. Returns {sub, instance, ...} of the members whose instance is alive
 * (it, or its registry record exists) and drops the others: what a crashed
 * backend left disappears with its record, not only with the hash's TTL. */
static const char MEMBERS_LUA[] =
    "local out = {}\n"
    "local kv = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #kv, 2 do\n"
    "  local inst = kv[i + 1]\n"
    "  if inst == ARGV[2] or redis.call('EXISTS', ARGV[1] .. inst) == 1 then\n"
    "    out[#out + 1] = kv[i]\n"
    "    out[#out + 1] = inst\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[1], kv[i])\n"
    "  end\n"
    "end\n"
    "return out\n";

struct script {
    const char *body;
    char sha[2 * SHA_DIGEST_LENGTH + 1];
};

enum script_id { SCRIPT_PUBLISH, SCRIPT_FETCH, SCRIPT_CATCHUP, SCRIPT_MEMBERS, SCRIPT_COUNT };

enum sub_state {
    SUB_NONE,      /* not subscribed (the link is down, or was) */
    SUB_PENDING,   /* SUBSCRIBE sent */
    SUB_ON,        /* confirmed: every later event arrives */
    SUB_UNPENDING, /* UNSUBSCRIBE sent after the linger */
};

struct call;

/* The bus's view of one room. */
struct rroom {
    struct rbus *bus;
    struct room *rec;   /* in bus->rooms: the name; rec->seq the highest seq seen */
    struct room *local; /* the server's room while it has members here, else NULL */
    enum sub_state state;
    bool resub; /* subscribed again after a reconnect: counted in bus->resubscribing */
    ev_timer linger;
    struct call *waiting, **waiting_tail; /* calls sent when the subscription is on */
};

struct rbus {
    struct bus base; /* first: a struct bus * is a struct rbus * */
    struct ev_loop *loop;
    struct bus_redis_config cfg;
    char prefix[RR_INSTANCE_ID_MAX + 1];
    char size[24], ttl[24];
    char instance[RR_INSTANCE_ID_MAX + 1];
    char inst_prefix[KEY_MAX]; /* "<prefix>inst:" */
    char presence_ttl[24];     /* ms */
    struct redis_link *cmd, *sub;
    struct script scripts[SCRIPT_COUNT];
    struct room_table *rooms;
    size_t resubscribing; /* rooms not subscribed again yet since the link came back */
    ev_timer refresh;     /* keeps the seq of rooms with members here from expiring */
};

/* One script call, kept until it is answered so that a NOSCRIPT answer can
 * load the script and send it again. Its arguments (keys, then ARGV) live
 * in buf. */
struct call {
    struct rbus *bus;
    enum script_id script;
    bool reloaded;
    struct call *next; /* in a room's waiting queue */
    char room[ROOM_NAME_MAX + 1];
    int nkeys, argc;
    size_t off[CALL_ARGS_MAX], len[CALL_ARGS_MAX];
    struct rr_text buf;
    /* r is Redis's answer, or NULL when there is none (link lost). */
    void (*answer)(struct call *c, const redisReply *r);
    /* What to do instead when the call cannot be sent (Redis away). */
    void (*fallback)(struct call *c);
};

struct pub {
    struct call call; /* first */
    bus_done_cb done;
    void *ctx;
    char *sub;
    char id[129]; /* "" for none */
    json_t *data; /* for the fallback */
    int64_t ts_ms;
};

struct fetch {
    struct call call; /* first */
    bus_history_cb cb;
    void *ctx;
};

struct members_req {
    struct call call; /* first */
    bus_members_cb cb;
    void *ctx;
};

/* ---- rooms ---- */

static struct rroom *find(struct rbus *b, const char *name)
{
    struct room *rec = room_find(b->rooms, name, strlen(name));
    return rec ? rec->bus_data : NULL;
}

static uint64_t known_seq(struct rbus *b, const char *name)
{
    struct rroom *rr = find(b, name);
    return rr ? rr->rec->seq : 0;
}

/* A seq came from Redis or was numbered here: the highest is the room's. */
static void seen(struct rroom *rr, uint64_t seq)
{
    if (seq > rr->rec->seq)
        rr->rec->seq = seq;
    if (rr->local && seq > rr->local->seq)
        rr->local->seq = seq;
}

static size_t room_key(struct rbus *b, char *out, const char *room, const char *what)
{
    return rr_key_room(out, KEY_MAX, b->prefix, room, what);
}

static bool ready(struct rbus *b)
{
    return redis_link_ctx(b->cmd) && redis_link_ctx(b->sub);
}

static void resub_done(struct rroom *rr)
{
    if (rr->resub) {
        rr->resub = false;
        rr->bus->resubscribing--;
    }
}

/* ---- script calls ---- */

static void call_arg(struct call *c, const char *p, size_t len)
{
    c->off[c->argc] = c->buf.len;
    c->len[c->argc] = len;
    c->argc++;
    rr_text_append(&c->buf, p, len);
}

/* Readies a call of `script` about one room; its keys and args follow. */
static void call_init(struct call *c, struct rbus *b, enum script_id script,
                      void (*answer)(struct call *, const redisReply *),
                      void (*fallback)(struct call *), const struct room *r)
{
    c->bus = b;
    c->script = script;
    c->answer = answer;
    c->fallback = fallback;
    memcpy(c->room, r->name, (size_t)r->name_len + 1);
}

static void call_key(struct call *c, const char *what)
{
    char key[KEY_MAX];
    size_t n = room_key(c->bus, key, c->room, what);
    call_arg(c, key, n);
    c->nkeys++;
}

static void call_free(struct call *c)
{
    rr_text_free(&c->buf);
    free(c);
}

static void call_cb(redisAsyncContext *ac, void *reply, void *priv);

static int call_send(struct call *c)
{
    if (c->buf.oom)
        return -1;
    const char *argv[CALL_ARGS_MAX + 3];
    size_t lens[CALL_ARGS_MAX + 3];
    char nkeys[8];
    snprintf(nkeys, sizeof(nkeys), "%d", c->nkeys);
    argv[0] = "EVALSHA";
    argv[1] = c->bus->scripts[c->script].sha;
    argv[2] = nkeys;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < c->argc; i++) {
        argv[3 + i] = c->buf.p + c->off[i];
        lens[3 + i] = c->len[i];
    }
    return redis_link_command_argv(c->bus->cmd, call_cb, c, 3 + c->argc, argv, lens);
}

static void load_script(struct rbus *b, enum script_id id)
{
    redis_link_command(b->cmd, NULL, NULL, "SCRIPT LOAD %s", b->scripts[id].body);
}

static void call_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct call *c = priv;
    const redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && !c->reloaded) {
        /* Redis lost its scripts (SCRIPT FLUSH, a restart): load it again,
         * then the call; one connection keeps them in order. */
        rr_info("redis: the bus's script is not loaded any more; loading it again");
        c->reloaded = true;
        load_script(c->bus, c->script);
        if (call_send(c) == 0)
            return;
        r = NULL;
    }
    if (r && r->type == REDIS_REPLY_ERROR)
        rr_warn("redis: room %s: %s", c->room, r->str);
    c->answer(c, r);
}

/* Sends the call when the room's subscription is on, queues it while a
 * SUBSCRIBE is on its way, falls back when Redis is away. */
static void call_submit(struct rroom *rr, struct call *c)
{
    if (rr && ready(rr->bus) && (rr->state == SUB_PENDING || rr->state == SUB_UNPENDING)) {
        c->next = NULL;
        *rr->waiting_tail = c;
        rr->waiting_tail = &c->next;
        return;
    }
    if (!rr || !ready(c->bus) || rr->state != SUB_ON || call_send(c) < 0)
        c->fallback(c);
}

/* Every queued call of the room: sent (the subscription is on), or their
 * fallback (it will not be). */
static void flush_waiting(struct rroom *rr, bool send)
{
    struct call *c = rr->waiting;
    rr->waiting = NULL;
    rr->waiting_tail = &rr->waiting;
    while (c) {
        struct call *next = c->next;
        if (!send || call_send(c) < 0)
            c->fallback(c);
        c = next;
    }
}

/* ---- subscriptions ---- */

static void sub_cb(redisAsyncContext *ac, void *reply, void *priv);

static void channel(struct rroom *rr, char *out, size_t *len)
{
    *len = room_key(rr->bus, out, rr->rec->name, "ch");
}

static void subscribe(struct rroom *rr)
{
    redisAsyncContext *ac = redis_link_ctx(rr->bus->sub);
    char ch[KEY_MAX];
    size_t n;
    channel(rr, ch, &n);
    if (ac && n && redisAsyncCommand(ac, sub_cb, rr->bus, "SUBSCRIBE %b", ch, n) == REDIS_OK)
        rr->state = SUB_PENDING;
}

static void rroom_free(struct rroom *rr)
{
    struct rbus *b = rr->bus;
    flush_waiting(rr, false);
    resub_done(rr);
    ev_timer_stop(b->loop, &rr->linger);
    room_remove(b->rooms, rr->rec);
    free(rr);
}

/* The linger ran out with no member back: let the subscription go. */
static void linger_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct rroom *rr = t->data;
    redisAsyncContext *ac = redis_link_ctx(rr->bus->sub);
    char ch[KEY_MAX];
    size_t n;
    channel(rr, ch, &n);
    if ((rr->state == SUB_ON || rr->state == SUB_PENDING) && ac &&
        redisAsyncCommand(ac, NULL, NULL, "UNSUBSCRIBE %b", ch, n) == REDIS_OK) {
        rr->state = SUB_UNPENDING;
        return;
    }
    if (rr->state == SUB_NONE)
        rroom_free(rr);
}

/* "<prefix>{<room>}:ch" -> the bus's room, or NULL. */
static struct rroom *room_of_channel(struct rbus *b, const redisReply *ch)
{
    size_t pl = strlen(b->prefix);
    if (ch->type != REDIS_REPLY_STRING || ch->len < pl + 5 || memcmp(ch->str, b->prefix, pl) != 0 ||
        ch->str[pl] != '{' || memcmp(ch->str + ch->len - 4, "}:ch", 4) != 0)
        return NULL;
    size_t n = ch->len - pl - 5;
    if (n == 0 || n > ROOM_NAME_MAX)
        return NULL;
    struct room *rec = room_find(b->rooms, ch->str + pl + 1, n);
    return rec ? rec->bus_data : NULL;
}

/* A member event "m <instance> <member JSON>" from another backend: to the
 * room's members here. The one that sent it delivered it to its own. */
static void on_member_event(struct rbus *b, struct rroom *rr, const redisReply *m)
{
    const char *inst = m->str + 2;
    const char *sp = memchr(inst, ' ', m->len - 2);
    if (!sp || sp == inst) {
        rr_warn("redis: room %s: a malformed member event, ignored", rr->rec->name);
        return;
    }
    size_t il = (size_t)(sp - inst);
    if (il == strlen(b->instance) && memcmp(inst, b->instance, il) == 0)
        return;
    if (rr->local && b->base.on_member)
        b->base.on_member(b->base.srv, rr->local, sp + 1, m->len - (size_t)(sp + 1 - m->str));
}

/* An event "<seq> <message JSON>": to the room's members here. */
static void on_message(struct rbus *b, struct rroom *rr, const redisReply *m)
{
    if (m->type != REDIS_REPLY_STRING)
        return;
    if (m->len > 2 && m->str[0] == 'm' && m->str[1] == ' ') {
        on_member_event(b, rr, m);
        return;
    }
    const char *sp = memchr(m->str, ' ', m->len);
    char *end = NULL;
    uint64_t seq = sp && m->str[0] >= '0' && m->str[0] <= '9' ? strtoull(m->str, &end, 10) : 0;
    if (!seq || end != sp) {
        rr_warn("redis: room %s: an event without a seq, ignored", rr->rec->name);
        return;
    }
    seen(rr, seq);
    if (rr->local)
        b->base.on_event(b->base.srv, rr->local, seq, sp + 1, m->len - (size_t)(sp + 1 - m->str));
}

static void sub_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct rbus *b = priv;
    const redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    struct rroom *rr = room_of_channel(b, r->element[1]);
    if (!rr)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "message") == 0) {
        on_message(b, rr, r->element[2]);
    } else if (strcmp(kind, "subscribe") == 0 && rr->state == SUB_PENDING) {
        rr->state = SUB_ON;
        resub_done(rr);
        flush_waiting(rr, true);
    } else if (strcmp(kind, "unsubscribe") == 0 && rr->state == SUB_UNPENDING) {
        rr->state = SUB_NONE;
        if (rr->local)
            subscribe(rr);
        else
            rroom_free(rr);
    }
}

/* ---- publish ---- */

static void pub_free(struct pub *p)
{
    free(p->sub);
    json_decref(p->data);
    call_free(&p->call);
}

static void pub_answer(struct call *c, const redisReply *r)
{
    struct pub *p = (struct pub *)c;
    struct rbus *b = c->bus;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0 &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        uint64_t seq = (uint64_t)r->element[0]->integer;
        bool dup = r->element[1]->integer == 1;
        struct rroom *rr = find(b, c->room);
        if (rr) {
            seen(rr, seq);
            /* Remembered here too, for a resend while Redis is away. */
            if (!dup && rr->local && p->id[0])
                room_dedup_add(rr->local, p->sub, p->id, seq, b->base.dedup_size);
        }
        p->done(p->ctx, seq, dup, NULL);
    } else {
        /* Published or not, nobody can tell: the client resends with the
         * same id, and Redis de-duplicates. */
        p->done(p->ctx, 0, false, "unavailable");
    }
    pub_free(p);
}

/* Redis is away: numbered here, if the room still has members here. */
static void pub_fallback(struct call *c)
{
    struct pub *p = (struct pub *)c;
    struct rroom *rr = find(c->bus, c->room);
    if (rr && rr->local) {
        bus_local_publish(&c->bus->base, rr->local, p->sub, p->id[0] ? p->id : NULL, p->data,
                          p->ts_ms, p->done, p->ctx);
        seen(rr, rr->local->seq);
    } else {
        p->done(p->ctx, 0, false, "unavailable");
    }
    pub_free(p);
}

static int redis_publish(struct bus *bb, struct room *r, const char *sub, const char *id,
                         const json_t *data, int64_t ts_ms, bus_done_cb done, void *ctx)
{
    struct rbus *b = (struct rbus *)bb;
    struct rroom *rr = r->bus_data;
    if (!rr || !ready(b) || rr->state == SUB_NONE) {
        int rc = bus_local_publish(bb, r, sub, id, data, ts_ms, done, ctx);
        if (rr)
            seen(rr, r->seq);
        return rc;
    }
    struct pub *p = calloc(1, sizeof(*p));
    if (!p || !(p->sub = strdup(sub))) {
        free(p);
        done(ctx, 0, false, "internal_error");
        return -1;
    }
    struct call *c = &p->call;
    call_init(c, b, SCRIPT_PUBLISH, pub_answer, pub_fallback, r);
    p->done = done;
    p->ctx = ctx;
    p->ts_ms = ts_ms;
    p->data = json_incref((json_t *)data);
    snprintf(p->id, sizeof(p->id), "%s", id ? id : "");

    call_key(c, "seq");
    call_key(c, "hist");
    call_key(c, "ch");
    call_key(c, "ids");
    struct rr_text t = {0};
    if (id)
        rr_text_printf(&t, "%s\n%s", sub, id);
    call_arg(c, t.p ? t.p : "", t.len);
    rr_text_free(&t);
    proto_message_head(&t, r->name);
    call_arg(c, t.p ? t.p : "", t.len);
    c->buf.oom |= t.oom;
    rr_text_free(&t);
    proto_message_tail(&t, sub, data, ts_ms);
    call_arg(c, t.p ? t.p : "", t.len);
    c->buf.oom |= t.oom;
    rr_text_free(&t);
    call_arg(c, b->size, strlen(b->size));
    call_arg(c, b->ttl, strlen(b->ttl));
    if (c->buf.oom) {
        pub_free(p);
        done(ctx, 0, false, "internal_error");
        return -1;
    }
    call_submit(rr, c);
    return 0;
}

/* ---- history ---- */

static void fetch_local(struct fetch *f)
{
    struct bus_history h = {.head = known_seq(f->call.bus, f->call.room)};
    f->cb(f->ctx, &h);
}

static void fetch_answer(struct call *c, const redisReply *r)
{
    struct fetch *f = (struct fetch *)c;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements % 2 != 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        fetch_local(f);
        call_free(c);
        return;
    }
    size_t n = (r->elements - 1) / 2;
    struct bus_event *ev = n ? calloc(n, sizeof(*ev)) : NULL;
    struct bus_history h = {.head = (uint64_t)r->element[0]->integer, .events = ev};
    for (size_t i = 0; ev && i < n; i++) {
        const redisReply *id = r->element[1 + 2 * i], *m = r->element[2 + 2 * i];
        if (id->type != REDIS_REPLY_STRING || m->type != REDIS_REPLY_STRING)
            break;
        uint64_t seq = strtoull(id->str, NULL, 10);
        if (seq == 0 || (h.n > 0 && seq <= ev[h.n - 1].seq))
            break;
        ev[h.n++] = (struct bus_event){seq, m->str, m->len};
    }
    struct rroom *rr = find(c->bus, c->room);
    if (rr)
        seen(rr, h.head);
    f->cb(f->ctx, &h);
    free(ev);
    call_free(c);
}

static void fetch_fallback(struct call *c)
{
    fetch_local((struct fetch *)c);
    call_free(c);
}

static void redis_history(struct bus *bb, struct room *r, bool events, uint64_t after,
                          bus_history_cb cb, void *ctx)
{
    struct rbus *b = (struct rbus *)bb;
    struct fetch *f = calloc(1, sizeof(*f));
    if (!f) {
        struct bus_history h = {.head = r->seq};
        cb(ctx, &h);
        return;
    }
    struct call *c = &f->call;
    call_init(c, b, SCRIPT_FETCH, fetch_answer, fetch_fallback, r);
    f->cb = cb;
    f->ctx = ctx;
    call_key(c, "seq");
    call_key(c, "hist");
    char start[32] = "";
    if (events)
        snprintf(start, sizeof(start), "%" PRIu64 "-0", after + 1);
    call_arg(c, start, strlen(start));
    call_submit(r->bus_data, c);
}

/* ---- presence ---- */

/* The sub's field in the room's members hash (set while it has a
 * connection in the room here, TTL 3 heartbeats), and the event to the
 * other backends on the room's channel, without a seq: not numbered, not in
 * the history. */
static void redis_member(struct bus *bb, struct room *r, const char *sub, bool present,
                         const char *event, size_t len)
{
    struct rbus *b = (struct rbus *)bb;
    char key[KEY_MAX], ch[KEY_MAX];
    if (!redis_link_ctx(b->cmd) || !room_key(b, key, r->name, "members") ||
        !room_key(b, ch, r->name, "ch"))
        return;
    if (present) {
        redis_link_command(b->cmd, NULL, NULL, "HSET %s %s %s", key, sub, b->instance);
        redis_link_command(b->cmd, NULL, NULL, "PEXPIRE %s %s", key, b->presence_ttl);
    } else {
        redis_link_command(b->cmd, NULL, NULL, "HDEL %s %s", key, sub);
    }
    if (!event)
        return;
    struct rr_text t = {0};
    rr_text_printf(&t, "m %s ", b->instance);
    rr_text_append(&t, event, len);
    if (!t.oom)
        redis_link_command(b->cmd, NULL, NULL, "PUBLISH %s %b", ch, t.p, t.len);
    rr_text_free(&t);
}

static void members_answer(struct call *c, const redisReply *r)
{
    struct members_req *q = (struct members_req *)c;
    size_t n = r && r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0 ? r->elements / 2 : 0;
    const char **subs = calloc(n + 1, sizeof(*subs)), **insts = calloc(n + 1, sizeof(*insts));
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0 && subs && insts;
    for (size_t i = 0; ok && i < n; i++) {
        const redisReply *s = r->element[2 * i], *v = r->element[2 * i + 1];
        ok = s->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING;
        subs[i] = s->str;
        insts[i] = v->str;
    }
    q->cb(q->ctx, ok, ok ? subs : NULL, ok ? insts : NULL, ok ? n : 0);
    free(subs);
    free(insts);
    call_free(c);
}

static void members_fallback(struct call *c)
{
    struct members_req *q = (struct members_req *)c;
    q->cb(q->ctx, false, NULL, NULL, 0);
    call_free(c);
}

static void redis_members(struct bus *bb, struct room *r, bus_members_cb cb, void *ctx)
{
    struct rbus *b = (struct rbus *)bb;
    struct members_req *q = calloc(1, sizeof(*q));
    if (!q) {
        cb(ctx, false, NULL, NULL, 0);
        return;
    }
    struct call *c = &q->call;
    call_init(c, b, SCRIPT_MEMBERS, members_answer, members_fallback, r);
    q->cb = cb;
    q->ctx = ctx;
    call_key(c, "members");
    call_arg(c, b->inst_prefix, strlen(b->inst_prefix));
    call_arg(c, b->instance, strlen(b->instance));
    if (call_send(c) < 0)
        members_fallback(c);
}

static void redis_presence_refresh(struct bus *bb, struct room *r, const char *const *subs,
                                   size_t n)
{
    struct rbus *b = (struct rbus *)bb;
    char key[KEY_MAX];
    if (!redis_link_ctx(b->cmd) || n == 0 || !room_key(b, key, r->name, "members"))
        return;
    const char **argv = malloc((2 + 2 * n) * sizeof(*argv));
    size_t *lens = malloc((2 + 2 * n) * sizeof(*lens));
    if (argv && lens) {
        argv[0] = "HSET";
        argv[1] = key;
        for (size_t i = 0; i < n; i++) {
            argv[2 + 2 * i] = subs[i];
            argv[3 + 2 * i] = b->instance;
        }
        for (size_t i = 0; i < 2 + 2 * n; i++)
            lens[i] = strlen(argv[i]);
        redis_link_command_argv(b->cmd, NULL, NULL, (int)(2 + 2 * n), argv, lens);
        redis_link_command(b->cmd, NULL, NULL, "PEXPIRE %s %s", key, b->presence_ttl);
    }
    free(argv);
    free(lens);
}

/* ---- rooms opening and closing ---- */

static void redis_room_open(struct bus *bb, struct room *r)
{
    struct rbus *b = (struct rbus *)bb;
    struct room *rec = room_get(b->rooms, r->name, r->name_len);
    struct rroom *rr = rec ? rec->bus_data : NULL;
    if (rec && !rr) {
        rr = calloc(1, sizeof(*rr));
        if (!rr) {
            room_remove(b->rooms, rec);
            rec = NULL;
        } else {
            rr->bus = b;
            rr->rec = rec;
            rr->waiting_tail = &rr->waiting;
            ev_timer_init(&rr->linger, linger_cb, 0.0, 0.0);
            rr->linger.data = rr;
            rec->bus_data = rr;
        }
    }
    if (!rr) {
        rr_error("out of memory: room %s is served without Redis", r->name);
        return;
    }
    ev_timer_stop(b->loop, &rr->linger);
    rr->local = r;
    r->bus_data = rr;
    seen(rr, rec->seq);
    if (rr->state == SUB_NONE)
        subscribe(rr);
}

static void redis_room_close(struct bus *bb, struct room *r)
{
    struct rbus *b = (struct rbus *)bb;
    struct rroom *rr = r->bus_data;
    if (!rr)
        return;
    r->bus_data = NULL;
    rr->local = NULL;
    ev_timer_set(&rr->linger, (double)b->cfg.subscribe_linger_ms / 1000.0, 0.0);
    ev_timer_start(b->loop, &rr->linger);
}

/* ---- the links ---- */

/* Each of the bus's rooms, in an array: the walk may free rooms. */
static struct rroom **all_rooms(struct rbus *b, size_t *n)
{
    *n = 0;
    struct rroom **v = malloc((room_table_count(b->rooms) + 1) * sizeof(struct rroom *));
    for (struct room *rec = room_next(b->rooms, NULL); v && rec; rec = room_next(b->rooms, rec))
        v[(*n)++] = rec->bus_data;
    return v;
}

static void catchup_answer(struct call *c, const redisReply *r)
{
    struct rroom *rr = find(c->bus, c->room);
    if (rr && r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        seen(rr, (uint64_t)r->integer);
    call_free(c);
}

static void catch_up(struct rbus *b, struct rroom *rr)
{
    struct call *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    call_init(c, b, SCRIPT_CATCHUP, catchup_answer, NULL, rr->rec);
    call_key(c, "seq");
    char seq[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, rr->rec->seq);
    call_arg(c, seq, strlen(seq));
    call_arg(c, b->ttl, strlen(b->ttl));
    if (call_send(c) < 0)
        call_free(c);
}

/* Redis is reachable again (or for the first time): make its seqs at least
 * ours before any publish goes there. */
static void on_ready(struct rbus *b)
{
    size_t n;
    struct rroom **v = all_rooms(b, &n);
    for (size_t i = 0; v && i < n; i++)
        if (v[i]->rec->seq > 0)
            catch_up(b, v[i]);
    free(v);
    rr_info("redis: connected; the bus is up");
}

static void cmd_change(void *arg, bool up)
{
    struct rbus *b = arg;
    if (!up) {
        rr_warn("redis: command link down: numbering rooms here until it is back");
        return;
    }
    for (int i = 0; i < SCRIPT_COUNT; i++)
        load_script(b, (enum script_id)i);
    if (ready(b))
        on_ready(b);
}

static void sub_change(void *arg, bool up)
{
    struct rbus *b = arg;
    size_t n;
    struct rroom **v = all_rooms(b, &n);
    for (size_t i = 0; v && i < n; i++) {
        struct rroom *rr = v[i];
        if (up) {
            if (rr->local && rr->state == SUB_NONE)
                subscribe(rr);
            if (rr->state == SUB_PENDING && !rr->resub) {
                rr->resub = true;
                b->resubscribing++;
            }
            continue;
        }
        resub_done(rr);
        rr->state = SUB_NONE;
        flush_waiting(rr, false);
        if (!rr->local)
            rroom_free(rr);
    }
    free(v);
    if (!up)
        rr_warn("redis: subscribe link down: numbering rooms here until it is back");
    else if (ready(b))
        on_ready(b);
}

/* Every third of the TTL: the seq of each room with members here must
 * outlive idle spells, or it would start again at 1 under their feet. */
static void refresh_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct rbus *b = t->data;
    for (struct room *rec = room_next(b->rooms, NULL); redis_link_ctx(b->cmd) && rec;
         rec = room_next(b->rooms, rec)) {
        char key[KEY_MAX];
        if (room_key(b, key, rec->name, "seq"))
            redis_link_command(b->cmd, NULL, NULL, "EXPIRE %s %s", key, b->ttl);
    }
}

/* ---- the bus ---- */

/* Degraded until both links are up and every room with members here is
 * subscribed again: only then does every event reach them. */
static bool redis_degraded(struct bus *bb)
{
    struct rbus *b = (struct rbus *)bb;
    return !ready(b) || b->resubscribing > 0;
}

static void redis_free(struct bus *bb)
{
    struct rbus *b = (struct rbus *)bb;
    ev_timer_stop(b->loop, &b->refresh);
    /* Calls in flight are answered (with no reply) while the links go. */
    redis_link_free(b->cmd);
    redis_link_free(b->sub);
    b->cmd = b->sub = NULL;
    size_t n;
    struct rroom **v = all_rooms(b, &n);
    for (size_t i = 0; v && i < n; i++)
        rroom_free(v[i]);
    free(v);
    room_table_free(b->rooms);
    free(b);
}

static const struct bus_ops redis_ops = {
    .publish = redis_publish,
    .history = redis_history,
    .room_open = redis_room_open,
    .room_close = redis_room_close,
    .member = redis_member,
    .members = redis_members,
    .presence_refresh = redis_presence_refresh,
    .degraded = redis_degraded,
    .free = redis_free,
};

struct bus *bus_redis_new(struct ev_loop *loop, const struct bus_redis_config *cfg,
                          bus_event_cb on_event, void *srv, size_t dedup_size)
{
    struct rbus *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->base.ops = &redis_ops;
    b->base.on_event = on_event;
    b->base.srv = srv;
    b->base.dedup_size = dedup_size;
    b->loop = loop;
    b->cfg = *cfg;
    snprintf(b->prefix, sizeof(b->prefix), "%s", cfg->prefix);
    snprintf(b->size, sizeof(b->size), "%" PRId64, cfg->history_size);
    snprintf(b->ttl, sizeof(b->ttl), "%" PRId64, cfg->history_ttl_s);
    snprintf(b->instance, sizeof(b->instance), "%s", cfg->instance_id);
    rr_key_instance(b->inst_prefix, sizeof(b->inst_prefix), b->prefix, "");
    snprintf(b->presence_ttl, sizeof(b->presence_ttl), "%" PRId64, cfg->presence_ttl_ms);
    const char *bodies[SCRIPT_COUNT] = {PUBLISH_LUA, FETCH_LUA, CATCHUP_LUA, MEMBERS_LUA};
    for (int i = 0; i < SCRIPT_COUNT; i++) {
        unsigned char md[SHA_DIGEST_LENGTH];
        b->scripts[i].body = bodies[i];
        SHA1((const unsigned char *)bodies[i], strlen(bodies[i]), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            snprintf(b->scripts[i].sha + (size_t)2 * j, 3, "%02x", md[j]);
    }
    b->rooms = room_table_new();
    if (!b->rooms) {
        free(b);
        return NULL;
    }
    ev_timer_init(&b->refresh, refresh_cb, 0.0, (double)cfg->history_ttl_s / 3.0 + 1.0);
    b->refresh.data = b;
    ev_timer_again(loop, &b->refresh);
    char ping[KEY_MAX];
    struct redis_link_config lc = {
        cfg->host,       cfg->port, BACKOFF_MIN_MS, cfg->backoff_max_ms, cfg->connect_timeout_ms,
        cfg->timeout_ms, NULL};
    b->cmd = redis_link_new(loop, "command", &lc, cmd_change, b);
    lc.ping_channel = rr_key_global(ping, sizeof(ping), b->prefix, "ping") ? ping : NULL;
    b->sub = redis_link_new(loop, "subscribe", &lc, sub_change, b);
    if (!b->cmd || !b->sub) {
        redis_free(&b->base);
        return NULL;
    }
    return &b->base;
}
