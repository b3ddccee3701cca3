/*
 * Log-linear latency histogram for the load generators: fixed memory, O(1)
 * add, percentiles within 1/64 (1.6 %) of the true value. Values below 128
 * are exact; above, each power of two is split into 64 equal buckets (the
 * layout of HdrHistogram with 7 significant bits). Units are the caller's
 * (the benchmarks use nanoseconds); values at or above 2^40 are clamped.
 *
 * Header-only because every bench/X.c is its own program in the Makefile;
 * pure, so tests/unit/test_bench_hist.c checks it. Not thread-safe: one
 * histogram per thread, merged by the caller if needed.
 */
#ifndef RR_BENCH_HIST_H
#define RR_BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS) /* 128: values below are exact */
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
#define HIST_MAX_BITS 40 /* values up to 2^40 - 1 (18 min in ns) */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_HALF + HIST_HALF)

struct hist {
    uint64_t n[HIST_BUCKETS];
    uint64_t count;
    uint64_t min, max;
    uint64_t sum;
};

static inline void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

static inline unsigned hist_index(uint64_t v)
{
    if (v >= (1ull << HIST_MAX_BITS))
        v = (1ull << HIST_MAX_BITS) - 1;
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS + 1;
    return shift * HIST_HALF + (unsigned)(v >> shift);
}

/* The largest value that lands in bucket i (what a percentile reports, so a
 * percentile never understates a latency). */
static inline uint64_t hist_bucket_high(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_HALF - 1;
    uint64_t sub = i - shift * HIST_HALF;
    return ((sub + 1) << shift) - 1;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
}

/* Adds every value of `from` to `into`: the histograms of several load
 * processes, merged by their coordinator. */
static inline void hist_merge(struct hist *into, const struct hist *from)
{
    if (from->count == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->n[i] += from->n[i];
    if (into->count == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
}

/* The value at quantile q (0..1): the smallest bucket bound at or below which
 * at least q of the values lie, never above the largest value seen. 0 when empty. */
static inline uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min;
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            uint64_t high = hist_bucket_high(i);
            return high < h->max ? high : h->max;
        }
    }
    return h->max;
}

#endif
