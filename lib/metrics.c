/*
 * Prometheus text rendering and lock-free metric updates, see metrics.h.
 */
#include "lib/metrics.h"

#include <stdio.h>

static const double hist_bounds[RR_HIST_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
};

void rr_hist_observe_ns(struct rr_hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < RR_HIST_BUCKETS && s > hist_bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void rr_prom_family(struct rr_text *t, const char *name, const char *type, const char *help)
{
    rr_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void rr_prom_sample(struct rr_text *t, const char *name, const char *labels, uint64_t value)
{
    if (labels)
        rr_text_printf(t, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
    else
        rr_text_printf(t, "%s %llu\n", name, (unsigned long long)value);
}

void rr_prom_gauge_f(struct rr_text *t, const char *name, const char *labels, double value)
{
    if (labels)
        rr_text_printf(t, "%s{%s} %.6g\n", name, labels, value);
    else
        rr_text_printf(t, "%s %.6g\n", name, value);
}

void rr_prom_hist(struct rr_text *t, const char *name, const char *help, const struct rr_hist *h)
{
    rr_prom_family(t, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i <= RR_HIST_BUCKETS; i++) {
        cum += rr_load(&h->bucket[i]);
        if (i < RR_HIST_BUCKETS)
            rr_text_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, hist_bounds[i],
                           (unsigned long long)cum);
        else
            rr_text_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    rr_text_printf(t, "%s_sum %.9f\n%s_count %llu\n", name, (double)rr_load(&h->sum_ns) / 1e9, name,
                   (unsigned long long)rr_load(&h->count));
}
