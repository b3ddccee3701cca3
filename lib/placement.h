/*
 * Where a new room goes: consistent hashing with bounded loads (Mirrokni,
 * Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018).
 *
 * Every instance has RR_RING_POINTS points on a 64-bit hash ring. A room
 * hashes to a point; walking clockwise, it goes to the first instance that
 * may take rooms and whose load after taking it stays within ceil(c x the
 * average load), c being the balance factor (1.25 by default). Adding or
 * removing one instance moves only the rooms that hashed to it (plus the few
 * pushed on by the load bound), and no instance ends above the bound.
 *
 * Who may take rooms: instances that are not draining and not degraded; when
 * every non-draining instance is degraded, those (a degraded backend still
 * serves its local rooms, which beats no backend). Draining ones never.
 *
 * Pure and deterministic: the ring depends only on the instance ids (not on
 * their order in the input), so two agents with the same registry agree.
 * No I/O, no clock. Not here: reading the registry (spoa/router.c).
 */
#ifndef RR_PLACEMENT_H
#define RR_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RR_RING_POINTS 100
#define RR_BALANCE_DEFAULT 1.25

/* One instance as placement sees it. */
struct rr_place_node {
    const char *id; /* what the ring hashes; unique */
    uint64_t load;  /* rooms it holds now */
    bool draining;
    bool degraded;
};

struct rr_ring_point {
    uint64_t hash;
    uint32_t node; /* index into the nodes the ring was built from */
};

struct rr_ring {
    struct rr_ring_point *points;
    size_t npoints;
};

/* Builds the ring of n nodes (n may be 0). Returns 0, or -1 when out of
 * memory. The ring keeps indexes, not pointers: pass the same array (same
 * order, loads and states may change) to rr_place. */
int rr_ring_build(struct rr_ring *ring, const struct rr_place_node *nodes, size_t n);
void rr_ring_free(struct rr_ring *ring);

/* The most rooms a node may hold once one more room is placed:
 * ceil(c x (sum of the candidates' loads + 1) / candidates); 0 without candidates. */
uint64_t rr_place_bound(const struct rr_place_node *nodes, size_t n, double c);

/* The node for room `key`: an index into nodes, or -1 when no node may take
 * rooms. The caller adds 1 to the chosen node's load if it keeps the room. */
int rr_place(const struct rr_ring *ring, const struct rr_place_node *nodes, size_t n,
             const char *key, size_t keylen, double c);

#endif
