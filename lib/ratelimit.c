/*
 * Token bucket, see ratelimit.h. Tokens are doubles refilled from the time
 * elapsed since the last refill; a clock that steps back refills nothing.
 */
#include "lib/ratelimit.h"

#include <math.h>

#define NS_PER_S 1e9

void rr_bucket_init(struct rr_bucket *b, double rate, double burst, uint64_t now_ns)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst >= 1 ? burst : 1;
    b->tokens = b->burst;
    b->last_ns = now_ns;
}

/* The tokens the bucket holds at now_ns, without changing it. */
static double tokens_at(const struct rr_bucket *b, uint64_t now_ns)
{
    if (now_ns <= b->last_ns)
        return b->tokens;
    double t = b->tokens + (double)(now_ns - b->last_ns) * b->rate / NS_PER_S;
    return t < b->burst ? t : b->burst;
}

bool rr_bucket_take(struct rr_bucket *b, uint64_t now_ns)
{
    if (b->rate == 0)
        return true;
    b->tokens = tokens_at(b, now_ns);
    if (now_ns > b->last_ns)
        b->last_ns = now_ns;
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

uint64_t rr_bucket_wait_ns(const struct rr_bucket *b, uint64_t now_ns)
{
    if (b->rate == 0)
        return 0;
    /* Refill counts from last_ns, also when the clock stepped back before it. */
    uint64_t from = now_ns > b->last_ns ? now_ns : b->last_ns;
    double tokens = tokens_at(b, from);
    if (tokens >= 1)
        return 0;
    double ns = ceil((1 - tokens) * NS_PER_S / b->rate) + (double)(from - now_ns);
    if (ns >= 0x1p63) /* a slow rate and a far clock: "never" */
        return UINT64_MAX;
    uint64_t wait = (uint64_t)ns;
    /* The division can round down by one ulp: make sure take() succeeds
     * after the wait, by the arithmetic take() uses. */
    if (tokens_at(b, now_ns + wait) < 1)
        wait++;
    return wait;
}
