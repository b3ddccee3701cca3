/*
 * Token bucket: `rate` tokens per second, at most `burst` saved up. Pure: the
 * caller passes the time. Used for the per-connection publish rate and the
 * drain pace.
 */
#ifndef RR_RATELIMIT_H
#define RR_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rr_bucket {
    double tokens;
    double rate;  /* tokens per second; 0 = no limit */
    double burst; /* bucket size */
    uint64_t last_ns;
};

void rr_bucket_init(struct rr_bucket *b, double rate, double burst, uint64_t now_ns);
/* Takes one token if there is one. Always true when rate is 0. */
bool rr_bucket_take(struct rr_bucket *b, uint64_t now_ns);
/* Nanoseconds until one token is available (0 if now). */
uint64_t rr_bucket_wait_ns(const struct rr_bucket *b, uint64_t now_ns);

#endif
