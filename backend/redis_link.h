/*
 * One hiredis async connection to Redis on the backend's libev loop that
 * stays up by itself: a non-blocking connect with a timeout, and after a
 * failure or a disconnect a new attempt on a libev timer, with capped
 * exponential backoff and jitter. The owner is told when the link goes up
 * and down, and sends its commands on redis_link_ctx() while it is up.
 * Not here: what is sent (bus_redis.c).
 */
#ifndef RR_REDIS_LINK_H
#define RR_REDIS_LINK_H

#include <ev.h>
#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>

struct redis_link_config {
    const char *host;
    uint16_t port;
    int64_t backoff_min_ms;     /* first retry delay */
    int64_t backoff_max_ms;     /* --redis-backoff-max-ms */
    int64_t connect_timeout_ms; /* a connect that takes longer is abandoned */
};

/* up: the link just connected (true) or was lost (false). Called from the
 * loop, never from inside redis_link_free(). */
typedef void (*redis_link_cb)(void *arg, bool up);

struct redis_link;

/* Starts connecting at once. name is for the logs ("command", "subscribe"). */
struct redis_link *redis_link_new(struct ev_loop *loop, const char *name,
                                  const struct redis_link_config *cfg, redis_link_cb on_change,
                                  void *arg);
/* The connected context, or NULL while the link is down. */
redisAsyncContext *redis_link_ctx(const struct redis_link *l);
/* Drops the connection: pending callbacks run with a NULL reply; on_change
 * is not called. */
void redis_link_free(struct redis_link *l);

/* The delay before retry number `attempt` (0-based): min * 2^attempt capped
 * at max, then a uniform pick in [delay/2, delay] from rnd (jitter, so that
 * backends do not reconnect in step). */
int64_t redis_backoff_ms(unsigned attempt, int64_t min, int64_t max, uint32_t rnd);

#endif
