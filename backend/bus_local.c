/*
 * The in-process bus: a room's events are numbered by a counter in the room
 * and delivered at once. For one backend without Redis (--redis none), and
 * the fallback a clustered backend keeps serving its local rooms with while
 * Redis is away. It keeps no history: a member catching up learns the
 * room's seq and nothing else.
 */
#include <stdlib.h>

#include "backend/bus.h"
#include "backend/proto.h"

int bus_local_publish(struct bus *b, struct room *r, const char *sub, const char *id,
                      const json_t *data, int64_t ts_ms, bus_done_cb done, void *ctx)
{
    uint64_t seq;
    if (id && room_dedup_find(r, sub, id, &seq)) {
        done(ctx, seq, true, NULL);
        return 0;
    }
    struct rr_text t = {0};
    seq = r->seq + 1;
    proto_message(&t, r->name, seq, sub, data, ts_ms);
    if (t.oom || (id && room_dedup_add(r, sub, id, seq, b->dedup_size) < 0)) {
        rr_text_free(&t);
        done(ctx, 0, false, "internal_error");
        return -1;
    }
    r->seq = seq;
    b->on_event(b->srv, r, seq, t.p, t.len);
    rr_text_free(&t);
    done(ctx, seq, false, NULL);
    return 0;
}

static void local_history(struct bus *b, struct room *r, bool events, uint64_t after,
                          bus_history_cb cb, void *ctx)
{
    (void)b;
    (void)events;
    (void)after;
    struct bus_history h = {.head = r->seq};
    cb(ctx, &h);
}

static void local_room_noop(struct bus *b, struct room *r)
{
    (void)b;
    (void)r;
}

/* One backend: the caller delivers member events itself. */
static void local_member(struct bus *b, struct room *r, const char *sub, bool present,
                         const char *event, size_t len)
{
    (void)b;
    (void)r;
    (void)sub;
    (void)present;
    (void)event;
    (void)len;
}

/* One backend: the caller's own members are all there is. */
static void local_members(struct bus *b, struct room *r, bus_members_cb cb, void *ctx)
{
    (void)b;
    (void)r;
    cb(ctx, false, NULL, NULL, 0);
}

static void local_presence_refresh(struct bus *b, struct room *r, const char *const *subs, size_t n)
{
    (void)b;
    (void)r;
    (void)subs;
    (void)n;
}

static bool local_degraded(struct bus *b)
{
    (void)b;
    return false;
}

static void local_free(struct bus *b)
{
    free(b);
}

static const struct bus_ops local_ops = {
    .publish = bus_local_publish,
    .history = local_history,
    .room_open = local_room_noop,
    .room_close = local_room_noop,
    .member = local_member,
    .members = local_members,
    .presence_refresh = local_presence_refresh,
    .degraded = local_degraded,
    .free = local_free,
};

struct bus *bus_local_new(bus_event_cb on_event, void *srv, size_t dedup_size)
{
    struct bus *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->ops = &local_ops;
    b->on_event = on_event;
    b->srv = srv;
    b->dedup_size = dedup_size;
    return b;
}
