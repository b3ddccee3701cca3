/*
 * Room owners from Redis, for route-room and check-drain: one router per
 * worker thread, on that worker's libev loop, so nothing here locks.
 *
 * A router keeps two hiredis async connections (commands, and a SUBSCRIBE to
 * P ctl), a snapshot of the instance registry (P instances + P inst:<id>,
 * read every second and at once on a drain/undrain message), and a cache of
 * room owners that P ctl owner messages invalidate. A room without a usable
 * owner is placed with lib/placement and claimed with a compare-and-set
 * script, so every agent answers the same owner.
 *
 * Not here: SPOP (handler.c, route_room.c) and sockets to HAProxy (agent.c).
 */
#ifndef RR_SPOA_ROUTER_H
#define RR_SPOA_ROUTER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/registry.h"

struct spoa_router_config {
    const char *host; /* Redis */
    uint16_t port;
    const char *prefix;   /* key prefix, "rr:" */
    double balance;       /* bounded-load factor c */
    int64_t timeout_ms;   /* a Redis answer slower than this drops the connection */
    int64_t owner_ttl_s;  /* TTL of P{room}:owner, refreshed on each read; 0: none */
    int64_t cache_size;   /* owners cached by this worker */
    int64_t cache_ttl_ms; /* a cached owner is read again from Redis after this */
    int64_t refresh_ms;   /* registry snapshot period */
};

/* What route-room answers. `server` points into the router (valid until the
 * caller returns to the loop); NULL with err NULL: no opinion, HAProxy falls
 * back to its stick table. */
struct spoa_route_answer {
    const char *server;
    bool moved;
    const char *err; /* "no_backend", or NULL */
};

/* Why an answer was what it was, for roomrelay_spoa_route_room_total. */
enum spoa_route_result {
    ROUTE_CACHED,      /* owner from this worker's cache */
    ROUTE_OWNER,       /* owner read from Redis */
    ROUTE_PLACED,      /* new room claimed by this agent */
    ROUTE_MOVED,       /* owner was draining or gone: moved by this agent */
    ROUTE_LOST_RACE,   /* another agent claimed it first: its owner answered */
    ROUTE_NO_BACKEND,  /* no instance may take rooms */
    ROUTE_UNAVAILABLE, /* Redis down, slow or not ready: no server set */
    ROUTE_INVALID_ROOM,
    ROUTE_FORBIDDEN_ROOM,
    ROUTE_OFF, /* --redis none */
    ROUTE_RESULT_COUNT,
};

const char *spoa_route_result_name(enum spoa_route_result r);

struct spoa_router;

/* Creates the router of one worker and starts connecting. NULL when out of memory. */
struct spoa_router *spoa_router_new(struct ev_loop *loop, const struct spoa_router_config *cfg);
/* Closes the connections; requests still waiting are answered "unavailable" first. */
void spoa_router_free(struct spoa_router *r);

/* Connected and holding a registry snapshot: route-room can be answered. */
bool spoa_router_ready(const struct spoa_router *r);

/* Answers from the owner cache alone. Returns false on a miss. */
bool spoa_router_cached(struct spoa_router *r, const char *room, size_t len,
                        struct spoa_route_answer *a);

typedef void spoa_route_cb(void *arg, const struct spoa_route_answer *a,
                           enum spoa_route_result result);

/* Finds or claims the owner of a valid room and calls cb exactly once, also
 * when Redis fails: later, from the loop (from inside this call only when
 * out of memory). */
void spoa_router_resolve(struct spoa_router *r, const char *room, size_t len, spoa_route_cb *cb,
                         void *arg);

enum spoa_drain_result { DRAIN_UP, DRAIN_DRAINING, DRAIN_UNKNOWN, DRAIN_RESULT_COUNT };

/* check-drain from the registry snapshot: whether HAProxy server `server` is
 * draining, and if so a replacement placed by `key` (*replacement, NULL when
 * there is none). UNKNOWN: not in the registry, or no registry yet. */
enum spoa_drain_result spoa_router_draining(struct spoa_router *r, const char *server, size_t len,
                                            const char *key, size_t keylen,
                                            const char **replacement);

#endif
