/*
 * One hiredis async connection to Redis on the backend's libev loop that
 * stays up by itself: a non-blocking connect with a timeout, and after a
 * failure or a disconnect a new attempt on a libev timer, with capped
 * exponential backoff and jitter. The owner is told when the link goes up
 * and down, and sends its commands through the link while it is up.
 *
 * hiredis 0.14 has no reply timeout, so a Redis that hangs with its
 * connections open (SIGSTOP, a network black hole) would never be noticed.
 * The link is up only once Redis has answered on it, and while it is up a
 * watchdog (one timer per link) drops it, exactly as if Redis had closed it,
 * when the oldest command sent through redis_link_command*() has waited
 * longer than timeout_ms, or when a PING sent on a link quiet for that long
 * is not answered in that time. A subscribe link holds a pattern
 * subscription of its own for those PINGs (see redis_link.c).
 *
 * Not here: what is sent (bus_redis.c, registry_io.c).
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
    int64_t backoff_min_ms; /* first retry delay */
    int64_t backoff_max_ms; /* --redis-backoff-max-ms */
    int64_t
        connect_timeout_ms; /* a connect (and its first answer) that takes longer is abandoned */
    int64_t timeout_ms; /* --redis-timeout: an answer slower than this drops the link (0: never) */
    /* A subscribe link: the name of the pattern it subscribes to for its
     * PINGs (nothing is published there). NULL: a command link. */
    const char *ping_channel;
};

/* up: the link just connected (true) or was lost (false). Called from the
 * loop, never from inside redis_link_free(). */
typedef void (*redis_link_cb)(void *arg, bool up);

struct redis_link;

/* Starts connecting at once. name is for the logs ("command", "subscribe"). */
struct redis_link *redis_link_new(struct ev_loop *loop, const char *name,
                                  const struct redis_link_config *cfg, redis_link_cb on_change,
                                  void *arg);
/* The connected context, or NULL while the link is down. On a subscribe
 * link the owner sends its (UN)SUBSCRIBEs there, never a PUNSUBSCRIBE of
 * every pattern. */
redisAsyncContext *redis_link_ctx(const struct redis_link *l);
/* A command on a command link, timed by the watchdog: fn (may be NULL) gets
 * the reply, or NULL when the link is lost first. 0: sent; -1: not (down). */
int redis_link_command(struct redis_link *l, redisCallbackFn *fn, void *priv, const char *fmt, ...);
int redis_link_command_argv(struct redis_link *l, redisCallbackFn *fn, void *priv, int argc,
                            const char **argv, const size_t *lens);
/* Drops the connection: pending callbacks run with a NULL reply; on_change
 * is not called. Not from inside a reply callback. */
void redis_link_free(struct redis_link *l);

/* The delay before retry number `attempt` (0-based): min * 2^attempt capped
 * at max, then a uniform pick in [delay/2, delay] from rnd (jitter, so that
 * backends do not reconnect in step). */
int64_t redis_backoff_ms(unsigned attempt, int64_t min, int64_t max, uint32_t rnd);

enum redis_watch {
    REDIS_WATCH_WAIT, /* look again at *next */
    REDIS_WATCH_PING, /* the link has been quiet for a timeout: send a PING */
    REDIS_WATCH_DROP, /* an answer is late: drop the link */
};

/* The watchdog's decision at `now` for a link that is up (times in seconds
 * on one clock): oldest is when the oldest unanswered command or PING was
 * sent (< 0: none), last when anything was last sent. */
enum redis_watch redis_watch_check(double now, double oldest, double last, double timeout,
                                   double *next);

#endif
