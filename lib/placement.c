/*
 * Consistent hashing with bounded loads, see placement.h.
 */
#include "lib/placement.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    return h;
}

/* splitmix64's finalizer: FNV alone leaves nearby strings ("T1", "T2") close
 * on the ring. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static int cmp_points(const void *a, const void *b, void *arg)
{
    const struct rr_ring_point *x = a, *y = b;
    const struct rr_place_node *nodes = arg;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return strcmp(nodes[x->node].id, nodes[y->node].id);
}

int rr_ring_build(struct rr_ring *ring, const struct rr_place_node *nodes, size_t n)
{
    ring->points = NULL;
    ring->npoints = 0;
    if (n == 0)
        return 0;
    ring->points = calloc(n * RR_RING_POINTS, sizeof(*ring->points));
    if (!ring->points)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = fnv1a(nodes[i].id, strlen(nodes[i].id));
        for (uint64_t k = 0; k < RR_RING_POINTS; k++) {
            struct rr_ring_point *p = &ring->points[i * RR_RING_POINTS + k];
            p->hash = mix(h + (k + 1) * 0x9e3779b97f4a7c15u);
            p->node = (uint32_t)i;
        }
    }
    ring->npoints = n * RR_RING_POINTS;
    qsort_r(ring->points, ring->npoints, sizeof(*ring->points), cmp_points, (void *)nodes);
    return 0;
}

void rr_ring_free(struct rr_ring *ring)
{
    free(ring->points);
    ring->points = NULL;
    ring->npoints = 0;
}

/* Degraded nodes are candidates only when every non-draining node is degraded. */
static bool allow_degraded(const struct rr_place_node *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!nodes[i].draining && !nodes[i].degraded)
            return false;
    return true;
}

static bool candidate(const struct rr_place_node *node, bool degraded_ok)
{
    return !node->draining && (degraded_ok || !node->degraded);
}

uint64_t rr_place_bound(const struct rr_place_node *nodes, size_t n, double c)
{
    bool degraded_ok = allow_degraded(nodes, n);
    uint64_t total = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!candidate(&nodes[i], degraded_ok))
            continue;
        total += nodes[i].load;
        m++;
    }
    if (m == 0)
        return 0;
    return (uint64_t)ceil(c * (double)(total + 1) / (double)m);
}

int rr_place(const struct rr_ring *ring, const struct rr_place_node *nodes, size_t n,
             const char *key, size_t keylen, double c)
{
    uint64_t bound = rr_place_bound(nodes, n, c);
    if (bound == 0 || ring->npoints == 0)
        return -1;
    bool degraded_ok = allow_degraded(nodes, n);
    uint64_t h = mix(fnv1a(key, keylen));

    size_t lo = 0, hi = ring->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* The bound leaves room on at least one candidate (their capacities add
     * up to at least total + 1), so one lap of the ring always finds it. */
    for (size_t k = 0; k < ring->npoints; k++) {
        uint32_t i = ring->points[(lo + k) % ring->npoints].node;
        if (i < n && candidate(&nodes[i], degraded_ok) && nodes[i].load + 1 <= bound)
            return (int)i;
    }
    return -1;
}
