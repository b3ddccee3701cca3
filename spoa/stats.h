/*
 * The agent's metrics (Prometheus names roomrelay_spoa_*). Updated lock-free
 * from the worker threads, rendered by the ops HTTP endpoint.
 */
#ifndef RR_SPOA_STATS_H
#define RR_SPOA_STATS_H

#include "lib/jwt_verify.h"
#include "lib/metrics.h"
#include "spoa/router.h"
#include "spoa/spop.h"

struct spoa_stats {
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_refused; /* over --max-connections */
    _Atomic uint64_t conns_closed;
    _Atomic uint64_t healthchecks;
    _Atomic uint64_t notify_frames;
    _Atomic uint64_t unknown_messages;
    _Atomic uint64_t ack_overflows;
    _Atomic uint64_t disconnect_sent[SPOP_ST_RES + 1]; /* by status; UNKNOWN counted at 0 */
    _Atomic uint64_t disconnect_recv;
    _Atomic uint64_t check_token[RR_AUTH_ERR_COUNT]; /* by result */
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t cache_misses;
    _Atomic uint64_t key_reloads_ok;
    _Atomic uint64_t key_reloads_failed;
    struct rr_hist notify_seconds;                    /* time to answer one NOTIFY */
    _Atomic uint64_t route_room[ROUTE_RESULT_COUNT];  /* by result */
    _Atomic uint64_t check_drain[DRAIN_RESULT_COUNT]; /* by result */
    _Atomic uint64_t redis_ready;                     /* workers connected with a registry */
    _Atomic uint64_t redis_disconnects;
    _Atomic uint64_t redis_timeouts;
    _Atomic uint64_t ctl_messages;
    struct rr_hist route_seconds; /* route-room answers that waited for Redis */
};

extern struct spoa_stats spoa_stats;

void spoa_stats_count_disconnect(uint32_t status);
void spoa_stats_render(struct rr_text *t);

#endif
