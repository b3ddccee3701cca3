/*
 * The bus numbers room events and carries them to every backend that has
 * members of the room. The server publishes through it and receives every
 * event back through on_event, its own included, so that delivery has one
 * path and one order. bus_local.c numbers events in this process (one
 * backend, --redis none); the Redis bus plugs in behind the same interface.
 */
#ifndef RR_BUS_H
#define RR_BUS_H

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
typedef void (*bus_event_cb)(void *srv, struct room *r, uint64_t seq, const char *text,
                             size_t len);

struct bus_ops {
    int (*publish)(struct bus *b, struct room *r, const char *sub, const char *id,
                   const json_t *data, int64_t ts_ms, bus_done_cb done, void *ctx);
    /* The first local member joined / the last one left. */
    void (*room_open)(struct bus *b, struct room *r);
    void (*room_close)(struct bus *b, struct room *r);
    /* The room's last sequence number as far as this backend knows. */
    uint64_t (*room_seq)(struct bus *b, struct room *r);
    /* True while the bus cannot reach what it needs (Redis down). */
    bool (*degraded)(struct bus *b);
    void (*free)(struct bus *b);
};

struct bus {
    const struct bus_ops *ops;
    bus_event_cb on_event;
    void *srv;
    size_t dedup_size; /* publish ids remembered per room */
};

/* The in-process bus. */
struct bus *bus_local_new(bus_event_cb on_event, void *srv, size_t dedup_size);

#endif
