/*
 * The bus numbers room events and carries them to every backend that has
 * members of the room. The server publishes through it and receives every
 * event back through on_event, its own included, so that delivery has one
 * path and one order. bus_local.c numbers events in this process (one
 * backend, --redis none); bus_redis.c numbers them in Redis and fans them
 * out through its pub/sub (the cluster).
 *
 * Every request (publish, history) is answered exactly once through its
 * callback, perhaps before the call returns (the local bus always does), and
 * also when the bus is freed with requests in flight.
 */
#ifndef RR_BUS_H
#define RR_BUS_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/room.h"

struct bus;

/* The publish is numbered: seq is its sequence number; duplicate says the
 * (sub, id) was published before and seq is the original one. err is NULL on
 * success, else an error.code for the client. */
typedef void (*bus_done_cb)(void *ctx, uint64_t seq, bool duplicate, const char *err);

/* One numbered event of a room: the whole JSON text of the `message`. */
typedef void (*bus_event_cb)(void *srv, struct room *r, uint64_t seq, const char *text, size_t len);

struct bus_event {
    uint64_t seq;
    const char *text;
    size_t len;
};

/* Where a room stands, for a member catching up: head is the room's last
 * seq; events are the ones after the asked seq that the history still holds,
 * in seq order (none from the local bus, which keeps no history). Valid
 * during the callback only. */
struct bus_history {
    uint64_t head;
    const struct bus_event *events;
    size_t n;
};

typedef void (*bus_history_cb)(void *ctx, const struct bus_history *h);

/* A member event of room r from another backend: the whole `member` JSON. */
typedef void (*bus_member_cb)(void *srv, struct room *r, const char *text, size_t len);

/* The room's members cluster-wide: subs[i] is connected to insts[i]. ok
 * false: not known (Redis away), the caller lists its own. Valid during the
 * callback only. */
typedef void (*bus_members_cb)(void *ctx, bool ok, const char *const *subs,
                               const char *const *insts, size_t n);

struct bus_ops {
    int (*publish)(struct bus *b, struct room *r, const char *sub, const char *id,
                   const json_t *data, int64_t ts_ms, bus_done_cb done, void *ctx);
    /* The room's head, and with `events` the events after seq `after`. The
     * answer reflects every event that reaches on_event after it. */
    void (*history)(struct bus *b, struct room *r, bool events, uint64_t after, bus_history_cb cb,
                    void *ctx);
    /* The first local member joined / the last one left. */
    void (*room_open)(struct bus *b, struct room *r);
    void (*room_close)(struct bus *b, struct room *r);
    /* sub joined or left r here; present: sub still has a connection in r
     * here afterwards. event (NULL: none) is the `member` JSON for the
     * members on the other backends, which get it through on_member; the
     * caller delivers it to its own. */
    void (*member)(struct bus *b, struct room *r, const char *sub, bool present, const char *event,
                   size_t len);
    /* The room's members cluster-wide, answered exactly once. */
    void (*members)(struct bus *b, struct room *r, bus_members_cb cb, void *ctx);
    /* The heartbeat: these subs are still in r here, so their presence
     * outlives its TTL (and comes back after Redis lost it). */
    void (*presence_refresh)(struct bus *b, struct room *r, const char *const *subs, size_t n);
    /* True while the bus cannot reach what it needs (Redis down). */
    bool (*degraded)(struct bus *b);
    void (*free)(struct bus *b);
};

struct bus {
    const struct bus_ops *ops;
    bus_event_cb on_event;
    bus_member_cb on_member; /* set by the owner; the local bus never calls it */
    void *srv;
    size_t dedup_size; /* publish ids remembered per room */
};

/* The in-process bus. */
struct bus *bus_local_new(bus_event_cb on_event, void *srv, size_t dedup_size);
/* Numbers an event with the room's own counter (r->seq) and delivers it at
 * once: the local bus's publish, and the Redis bus's while Redis is away. */
int bus_local_publish(struct bus *b, struct room *r, const char *sub, const char *id,
                      const json_t *data, int64_t ts_ms, bus_done_cb done, void *ctx);

struct bus_redis_config {
    const char *host;
    uint16_t port;
    const char *prefix;          /* --redis-prefix */
    int64_t history_size;        /* --history-size: entries kept per room */
    int64_t history_ttl_s;       /* --history-ttl */
    int64_t subscribe_linger_ms; /* --subscribe-linger-ms */
    int64_t backoff_max_ms;      /* --redis-backoff-max-ms */
    int64_t connect_timeout_ms;  /* --redis-connect-timeout-ms */
    int64_t timeout_ms;          /* --redis-timeout (0: off) */
    const char *instance_id;     /* the value of this backend's presence fields */
    int64_t presence_ttl_ms;     /* a room's members hash: 3 heartbeats */
};

/* The Redis bus: starts connecting at once; degraded until both of its
 * connections (commands, subscriptions) are up. */
struct bus *bus_redis_new(struct ev_loop *loop, const struct bus_redis_config *cfg,
                          bus_event_cb on_event, void *srv, size_t dedup_size);

#endif
