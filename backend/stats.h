/*
 * The backend's metrics (Prometheus names roomrelay_*), and the one place
 * where every rejection reason is named: roomrelay_rejected_total{reason}.
 */
#ifndef RR_BACKEND_STATS_H
#define RR_BACKEND_STATS_H

#include <stdbool.h>

#include "lib/metrics.h"

enum reject_reason {
    REJ_MAX_CONNECTIONS,   /* 503 at the handshake */
    REJ_MAX_CONNS_PER_IP,  /* 503 at the handshake */
    REJ_DRAINING,          /* 503 at the handshake */
    REJ_BAD_HANDSHAKE,     /* 400/426/403 ... */
    REJ_BAD_ROOM,          /* 400 at the handshake, error invalid_room after */
    REJ_FORBIDDEN_ROOM,    /* 403 / error forbidden_room */
    REJ_UNAUTHORIZED,      /* 401 */
    REJ_HANDSHAKE_TIMEOUT, /* closed before the handshake completed */
    REJ_PROXY_PROTOCOL,    /* missing or bad PROXY header */
    REJ_PROTOCOL_ERROR,    /* close 1002 */
    REJ_BAD_UTF8,          /* close 1007 */
    REJ_TOO_BIG,           /* close 1009 */
    REJ_BINARY,            /* close 1003 */
    REJ_BAD_MESSAGE,       /* error bad_json / bad_request / unknown_type */
    REJ_RATE_LIMITED,      /* error rate_limited */
    REJ_RATE_LIMIT_CLOSE,  /* close 1008 after sustained excess */
    REJ_TOO_MANY_ROOMS,    /* error too_many_rooms */
    REJ_NOT_MEMBER,        /* error not_member */
    REJ_SLOW_CONSUMER,     /* close 1008, backlog over --max-backlog */
    REJ_PONG_TIMEOUT,      /* no pong in time */
    REJ_IDLE_TIMEOUT,      /* no message for --idle-timeout: close 1001 */
    REJ_COUNT,
};

const char *reject_reason_name(enum reject_reason r);

struct backend_stats {
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_closed;
    _Atomic uint64_t ws_open; /* gauge maintained by the server */
    _Atomic uint64_t ws_opened_total;
    _Atomic uint64_t rejected[REJ_COUNT];
    _Atomic uint64_t published;  /* messages numbered by a publish from here */
    _Atomic uint64_t duplicates; /* publishes answered with the original seq */
    _Atomic uint64_t events;     /* room events received from the bus */
    _Atomic uint64_t deliveries; /* frames queued to connections */
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t closes[16]; /* by close code - 1000 (1000..1015) */
    _Atomic uint64_t
        redis_timeouts; /* Redis links dropped for an answer slower than --redis-timeout */
    struct rr_hist flush_seconds; /* time of one pass flushing dirty connections */
};

extern struct backend_stats bstats;

static inline void stats_reject(enum reject_reason r)
{
    rr_inc(&bstats.rejected[r]);
}

/* Appends every backend metric; gauges are passed in by the server. */
void backend_stats_render(struct rr_text *t, uint64_t rooms, bool degraded, bool draining);

#endif
