/*
 * This backend in the cluster's registry (DESIGN.md §5; key names and the
 * record's fields from lib/registry.h): a heartbeat writes Pinst:<id> with a
 * TTL of 3 heartbeats and the time in Pinstances, a clean exit removes both,
 * and the control channel Pctl brings drain/undrain for this instance and
 * carries its own state changes to the agents.
 * Two Redis links of its own (redis_link.c): commands, and SUBSCRIBE.
 * Not here: what a drain does (server.c), presence (the bus).
 */
#ifndef RR_BACKEND_REGISTRY_IO_H
#define RR_BACKEND_REGISTRY_IO_H

#include <ev.h>
#include <stdint.h>

#include "lib/registry.h"

struct registry_io_config {
    const char *host; /* Redis */
    uint16_t port;
    const char *prefix;
    int64_t heartbeat_ms;
    int64_t backoff_max_ms;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;      /* --redis-timeout (0: off) */
    struct rr_instance self; /* id, server, addr, port, started, version: fixed */
};

/* At each heartbeat: fill in the live fields of inst (state, conns, rooms,
 * degraded). */
typedef void (*registry_beat_cb)(void *arg, struct rr_instance *inst);
/* A control message for this instance (drain, undrain). */
typedef void (*registry_ctl_cb)(void *arg, const struct rr_ctl_msg *m);

struct registry_io;

/* Starts connecting at once; heartbeats as soon as Redis answers. */
struct registry_io *registry_io_new(struct ev_loop *loop, const struct registry_io_config *cfg,
                                    registry_beat_cb beat, registry_ctl_cb ctl, void *arg);
/* A heartbeat now, not waiting for the next one. */
void registry_io_beat(struct registry_io *r);
/* The state changed (drain, undrain): a heartbeat now, then
 * {"op":"state","instance":<id>} on Pctl, so that the agents read the
 * registry at once rather than at their next refresh, whatever the trigger
 * (a SIGTERM or POST /admin/drain tells them nothing otherwise). */
void registry_io_announce(struct registry_io *r);
/* The clean exit: no more heartbeats, the record and the instance removed;
 * done runs once, when Redis confirmed, the link is down, or after a
 * second. */
void registry_io_leave(struct registry_io *r, void (*done)(void *arg), void *arg);
void registry_io_free(struct registry_io *r);

#endif
