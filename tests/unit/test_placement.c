/*
 * Unit tests of lib/placement.c: the same inputs give the same room (in any
 * input order), no instance goes above the bound over 10 000 placements,
 * adding or removing one instance moves few rooms, draining instances are
 * never chosen, degraded ones only when nothing else is left, and an empty
 * or all-draining set places nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/placement.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define ROOMS 10000

static const char *const ids[] = {"ws1", "ws2", "ws3", "ws4", "ws5", "ws6", "ws7", "ws8"};

static void nodes_init(struct rr_place_node *nodes, size_t n)
{
    memset(nodes, 0, n * sizeof(*nodes));
    for (size_t i = 0; i < n; i++)
        nodes[i].id = ids[i];
}

static int place(const struct rr_ring *ring, const struct rr_place_node *nodes, size_t n, int room)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "room-%d", room);
    return rr_place(ring, nodes, n, key, (size_t)len, RR_BALANCE_DEFAULT);
}

/* Where each room goes with every load at zero (pure consistent hashing). */
static void owners_of_all_rooms(const struct rr_place_node *nodes, size_t n, const char **out)
{
    struct rr_ring ring;
    assert_int_equal(rr_ring_build(&ring, nodes, n), 0);
    for (int r = 0; r < ROOMS; r++) {
        int i = place(&ring, nodes, n, r);
        assert_true(i >= 0);
        out[r] = nodes[i].id;
    }
    rr_ring_free(&ring);
}

static void same_inputs_in_any_order_give_the_same_instance(void **state)
{
    (void)state;
    struct rr_place_node a[5], b[5];
    nodes_init(a, 5);
    for (size_t i = 0; i < 5; i++)
        a[i].load = i * 3;
    for (size_t i = 0; i < 5; i++)
        b[i] = a[4 - i];
    struct rr_ring ra, rb;
    assert_int_equal(rr_ring_build(&ra, a, 5), 0);
    assert_int_equal(rr_ring_build(&rb, b, 5), 0);
    for (int r = 0; r < 1000; r++) {
        int ia = place(&ra, a, 5, r), ib = place(&rb, b, 5, r);
        assert_true(ia >= 0 && ib >= 0);
        assert_string_equal(a[ia].id, b[ib].id);
        assert_int_equal(place(&ra, a, 5, r), ia);
    }
    rr_ring_free(&ra);
    rr_ring_free(&rb);
}

static void bound_is_ceil_of_c_times_average_after_one_more(void **state)
{
    (void)state;
    struct rr_place_node n[4];
    nodes_init(n, 4);
    n[0].load = 10, n[1].load = 0, n[2].load = 5, n[3].load = 100;
    n[3].draining = true;
    /* (10 + 0 + 5 + 1) / 3 = 5.33, x 1.25 = 6.67 -> 7; the draining node does not count */
    assert_int_equal(rr_place_bound(n, 4, 1.25), 7);
    assert_int_equal(rr_place_bound(n, 4, 1.0), 6);
    assert_int_equal(rr_place_bound(n, 0, 1.25), 0);
}

static void no_instance_exceeds_the_bound_over_10000_placements(void **state)
{
    (void)state;
    static const double factors[] = {1.0, 1.1, 1.25, 2.0};
    for (size_t f = 0; f < N_ELEMS(factors); f++) {
        struct rr_place_node n[7];
        nodes_init(n, 7);
        struct rr_ring ring;
        assert_int_equal(rr_ring_build(&ring, n, 7), 0);
        for (int r = 0; r < ROOMS; r++) {
            char key[32];
            int len = snprintf(key, sizeof(key), "T%d", r);
            uint64_t bound = rr_place_bound(n, 7, factors[f]);
            int i = rr_place(&ring, n, 7, key, (size_t)len, factors[f]);
            assert_true(i >= 0);
            n[i].load++;
            assert_true(n[i].load <= bound);
        }
        uint64_t max = (uint64_t)ceil(factors[f] * ROOMS / 7.0);
        for (size_t i = 0; i < 7; i++)
            assert_true(n[i].load <= max);
        rr_ring_free(&ring);
    }
}

static void removing_an_instance_moves_only_its_rooms(void **state)
{
    (void)state;
    static const char *before[ROOMS], *after[ROOMS];
    struct rr_place_node n[6];
    nodes_init(n, 6);
    owners_of_all_rooms(n, 6, before);
    /* ws4 leaves: the others keep their order, as a registry read would give them. */
    memmove(&n[3], &n[4], 2 * sizeof(*n));
    owners_of_all_rooms(n, 5, after);
    int moved = 0, had = 0;
    for (int r = 0; r < ROOMS; r++) {
        if (strcmp(before[r], "ws4") == 0) {
            had++;
            assert_string_not_equal(after[r], "ws4");
        } else {
            assert_string_equal(before[r], after[r]);
        }
        moved += strcmp(before[r], after[r]) != 0;
    }
    assert_int_equal(moved, had);
    assert_true(had > ROOMS / 6 / 2 && had < ROOMS / 6 * 2);
}

static void adding_an_instance_moves_rooms_only_to_it(void **state)
{
    (void)state;
    static const char *before[ROOMS], *after[ROOMS];
    struct rr_place_node n[6];
    nodes_init(n, 6);
    owners_of_all_rooms(n, 5, before);
    owners_of_all_rooms(n, 6, after);
    int moved = 0;
    for (int r = 0; r < ROOMS; r++) {
        if (strcmp(before[r], after[r]) != 0) {
            moved++;
            assert_string_equal(after[r], "ws6");
        }
    }
    /* About 1/6 of the rooms; twice that would not be consistent hashing. */
    assert_true(moved > ROOMS / 6 / 2 && moved < ROOMS / 6 * 2);
}

static void draining_instances_are_never_chosen(void **state)
{
    (void)state;
    struct rr_place_node n[4];
    nodes_init(n, 4);
    n[1].draining = true;
    n[2].draining = true;
    n[2].degraded = true;
    struct rr_ring ring;
    assert_int_equal(rr_ring_build(&ring, n, 4), 0);
    for (int r = 0; r < ROOMS; r++) {
        int i = place(&ring, n, 4, r);
        assert_true(i == 0 || i == 3);
        n[i].load++;
    }
    assert_int_equal(n[0].load + n[3].load, ROOMS);
    rr_ring_free(&ring);
}

static void degraded_instances_only_when_no_healthy_one_is_left(void **state)
{
    (void)state;
    struct rr_place_node n[3];
    nodes_init(n, 3);
    n[0].degraded = true;
    n[1].draining = true;
    struct rr_ring ring;
    assert_int_equal(rr_ring_build(&ring, n, 3), 0);
    for (int r = 0; r < 100; r++)
        assert_int_equal(place(&ring, n, 3, r), 2);
    n[2].degraded = true;
    for (int r = 0; r < 100; r++) {
        int i = place(&ring, n, 3, r);
        assert_true(i == 0 || i == 2);
    }
    rr_ring_free(&ring);
}

static void empty_or_all_draining_places_nothing(void **state)
{
    (void)state;
    struct rr_ring ring;
    assert_int_equal(rr_ring_build(&ring, NULL, 0), 0);
    assert_int_equal(rr_place(&ring, NULL, 0, "T1", 2, 1.25), -1);
    rr_ring_free(&ring);

    struct rr_place_node n[2];
    nodes_init(n, 2);
    n[0].draining = n[1].draining = true;
    assert_int_equal(rr_ring_build(&ring, n, 2), 0);
    assert_int_equal(rr_place(&ring, n, 2, "T1", 2, 1.25), -1);
    rr_ring_free(&ring);
}

static void single_instance_takes_every_room_whatever_its_load(void **state)
{
    (void)state;
    struct rr_place_node n[1];
    nodes_init(n, 1);
    n[0].load = 1000000;
    struct rr_ring ring;
    assert_int_equal(rr_ring_build(&ring, n, 1), 0);
    assert_int_equal(rr_place(&ring, n, 1, "T1", 2, 1.0), 0);
    rr_ring_free(&ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_inputs_in_any_order_give_the_same_instance),
        cmocka_unit_test(bound_is_ceil_of_c_times_average_after_one_more),
        cmocka_unit_test(no_instance_exceeds_the_bound_over_10000_placements),
        cmocka_unit_test(removing_an_instance_moves_only_its_rooms),
        cmocka_unit_test(adding_an_instance_moves_rooms_only_to_it),
        cmocka_unit_test(draining_instances_are_never_chosen),
        cmocka_unit_test(degraded_instances_only_when_no_healthy_one_is_left),
        cmocka_unit_test(empty_or_all_draining_places_nothing),
        cmocka_unit_test(single_instance_takes_every_room_whatever_its_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
