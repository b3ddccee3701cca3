/*
 * roomrelay-spoa's server: SPOP connections from HAProxy, one libev loop per
 * worker thread, each worker with its own SO_REUSEPORT listener so the kernel
 * spreads connections and no lock sits on the request path.
 */
#ifndef RR_SPOA_AGENT_H
#define RR_SPOA_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/conf.h"
#include "lib/jwt_keys.h"
#include "lib/jwt_verify.h"
#include "spoa/router.h"

struct spoa_config {
    const char *listen;        /* HOST:PORT */
    int64_t threads;           /* worker threads */
    int64_t max_frame_size;    /* upper bound we announce */
    int64_t max_connections;   /* per agent, 0 = no limit */
    int64_t hello_timeout_ms;  /* HELLO must arrive within */
    int64_t idle_timeout_ms;   /* no complete frame for this long: disconnect */
    int64_t stop_timeout_ms;   /* graceful stop: wait this long for peers to go */
    int64_t max_write_backlog; /* bytes queued for a peer that does not read */
    int64_t cache_size;        /* verified tokens, all threads together */
    struct rr_jwt_policy policy;
    struct rr_strlist claim_vars;
    struct rr_keyring *keys;
    bool redis;                       /* false: --redis none, route-room sets no server */
    struct spoa_router_config router; /* with redis */
};

/* Starts the workers. Returns 0, or -1 with err filled (bad address, bind). */
int spoa_agent_start(const struct spoa_config *cfg, char *err, size_t errlen);
/* Graceful stop: stop accepting, AGENT-DISCONNECT every connection once its
 * pending frames are answered, and return when the workers have ended. */
void spoa_agent_stop(void);

#endif
