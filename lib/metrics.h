/*
 * Prometheus text exposition: atomic counters and fixed-bucket histograms
 * that worker threads update without locks, and the helpers that render them.
 * Each binary declares its own metrics (spoa/stats.c, backend/stats.c); this
 * file only knows the format.
 */
#ifndef RR_METRICS_H
#define RR_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/text.h"

#define RR_HIST_BUCKETS 14

/* Latency histogram in seconds, buckets from 50 µs to 5 s. */
struct rr_hist {
    _Atomic uint64_t bucket[RR_HIST_BUCKETS + 1]; /* last one is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

void rr_hist_observe_ns(struct rr_hist *h, uint64_t ns);

/* "# HELP" and "# TYPE" lines of one metric family. */
void rr_prom_family(struct rr_text *t, const char *name, const char *type, const char *help);
/* One sample; labels is e.g. `reason="expired"` or NULL. */
void rr_prom_sample(struct rr_text *t, const char *name, const char *labels, uint64_t value);
void rr_prom_gauge_f(struct rr_text *t, const char *name, const char *labels, double value);
/* A whole histogram family (HELP, TYPE, buckets, sum, count). */
void rr_prom_hist(struct rr_text *t, const char *name, const char *help, const struct rr_hist *h);

static inline void rr_inc(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void rr_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t rr_load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
