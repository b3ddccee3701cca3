/*
 * Unit tests of backend/room.c: room names, the table (create, find, remove,
 * growth to 10k rooms, iteration), member index bookkeeping against a simple
 * model, and the publish-id de-duplication ring (find, add, FIFO eviction).
 * Leaks are LeakSanitizer's to find.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/room.h"
#include "lib/room_access.h"

/* The I/O layer's side of membership, as the server keeps it. */
struct room_member {
    int id;
    uint32_t index;
};

#define NAME_64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void room_name_rules(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t len;
        bool valid;
    } cases[] = {
        {"T42", 3, true},         {"a", 1, true},
        {"AZaz09_.:-", 10, true}, {"game:table-7.v2_x", 17, true},
        {NAME_64, 64, true},      {"", 0, false},
        {NAME_64 "0", 65, false}, {"a b", 3, false},
        {"a/b", 3, false},        {"caf\xc3\xa9", 5, false},
        {"a\0b", 3, false},       {"room\n", 5, false},
        {"a?b", 3, false},        {"a#b", 3, false},
        {"a%20", 4, false},       {"a+b", 3, false},
        {"\x7f", 1, false},       {"\xff", 1, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (rr_room_name_valid(cases[i].name, cases[i].len) != cases[i].valid)
            fail_msg("case %zu (\"%s\", %zu): expected %d", i, cases[i].name, cases[i].len,
                     cases[i].valid);
    }
}

static void room_get_creates_then_finds_the_same_room(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    assert_non_null(t);
    assert_null(room_find(t, "T42", 3));

    struct room *r = room_get(t, "T42", 3);
    assert_non_null(r);
    assert_string_equal(r->name, "T42");
    assert_int_equal(r->name_len, 3);
    assert_int_equal(r->seq, 0);
    assert_int_equal(r->n_members, 0);
    assert_null(r->dedup);
    assert_null(r->bus_data);
    assert_int_equal(room_table_count(t), 1);

    assert_ptr_equal(room_get(t, "T42", 3), r);
    assert_ptr_equal(room_find(t, "T42", 3), r);
    assert_ptr_equal(room_find(t, "T42x", 3), r); /* length counts, not the NUL */
    assert_null(room_find(t, "T4", 2));
    assert_null(room_find(t, "t42", 3));
    assert_int_equal(room_table_count(t), 1);
    room_table_free(t);
}

static void room_get_refuses_an_invalid_name(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    assert_null(room_get(t, "", 0));
    assert_null(room_get(t, "a b", 3));
    assert_null(room_get(t, NAME_64 "0", 65));
    assert_int_equal(room_table_count(t), 0);
    room_table_free(t);
}

static void room_remove_forgets_the_room(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *a = room_get(t, "a", 1);
    struct room *b = room_get(t, "b", 1);
    room_remove(t, a);
    assert_null(room_find(t, "a", 1));
    assert_ptr_equal(room_find(t, "b", 1), b);
    assert_int_equal(room_table_count(t), 1);
    room_remove(t, b);
    assert_int_equal(room_table_count(t), 0);
    assert_null(room_next(t, NULL));
    assert_non_null(room_get(t, "a", 1));
    assert_int_equal(room_table_count(t), 1);
    room_table_free(t);
}

static void room_table_holds_10k_rooms(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    static struct room *rooms[10000];
    char name[32];

    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        rooms[i] = room_get(t, name, (size_t)n);
        assert_non_null(rooms[i]);
        rooms[i]->seq = (uint64_t)i;
    }
    assert_int_equal(room_table_count(t), 10000);
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        assert_ptr_equal(room_find(t, name, (size_t)n), rooms[i]);
        assert_int_equal(rooms[i]->seq, i);
    }
    for (int i = 0; i < 10000; i += 2)
        room_remove(t, rooms[i]);
    assert_int_equal(room_table_count(t), 5000);
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        if (i % 2)
            assert_ptr_equal(room_find(t, name, (size_t)n), rooms[i]);
        else
            assert_null(room_find(t, name, (size_t)n));
    }
    room_table_free(t);
}

static void room_next_visits_each_room_once(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    static int visits[10000];
    char name[32];

    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof(name), "r%d", i);
        room_get(t, name, (size_t)n)->seq = (uint64_t)i;
    }
    size_t seen = 0;
    for (struct room *r = room_next(t, NULL); r; r = room_next(t, r)) {
        assert_true(r->seq < 10000);
        visits[r->seq]++;
        seen++;
    }
    assert_int_equal(seen, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(visits[i], 1);
    room_table_free(t);
}

static void room_next_on_an_empty_table_ends_at_once(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    assert_null(room_next(t, NULL));
    room_table_free(t);
}

static void remove_member_moves_the_last_into_the_hole(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "m", 1);
    struct room_member m[3] = {{0, 0}, {1, 0}, {2, 0}};

    for (int i = 0; i < 3; i++)
        assert_int_equal(room_add_member(r, &m[i]), i);
    assert_ptr_equal(room_remove_member(r, 0), &m[2]);
    assert_int_equal(r->n_members, 2);
    assert_ptr_equal(r->members[0], &m[2]);
    assert_ptr_equal(r->members[1], &m[1]);
    assert_null(room_remove_member(r, 1)); /* the last: nothing moves */
    assert_int_equal(r->n_members, 1);
    assert_null(room_remove_member(r, 5)); /* out of range: nothing happens */
    assert_int_equal(r->n_members, 1);
    assert_null(room_remove_member(r, 0));
    assert_int_equal(r->n_members, 0);
    assert_null(room_remove_member(r, 0));
    assert_int_equal(r->n_members, 0);
    room_table_free(t);
}

/* Random joins and leaves, each member keeping its index as the server does,
 * checked against a plain set of who is in. */
static void member_indexes_stay_right_under_random_churn(void **state)
{
    (void)state;
    enum { N = 500 };
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "churn", 5);
    static struct room_member m[N];
    static bool in[N];
    uint32_t count = 0;

    srand(42);
    for (int i = 0; i < N; i++)
        m[i].id = i;
    for (int step = 0; step < 100000; step++) {
        int k = rand() % N;
        if (!in[k]) {
            int idx = room_add_member(r, &m[k]);
            assert_int_equal(idx, count);
            m[k].index = (uint32_t)idx;
            in[k] = true;
            count++;
        } else {
            struct room_member *moved = room_remove_member(r, m[k].index);
            if (m[k].index == count - 1)
                assert_null(moved);
            else
                assert_non_null(moved);
            if (moved)
                moved->index = m[k].index;
            in[k] = false;
            count--;
        }
        assert_int_equal(r->n_members, count);
        assert_true(r->cap_members >= r->n_members);
    }
    uint32_t seen = 0;
    for (int i = 0; i < N; i++) {
        if (in[i]) {
            assert_ptr_equal(r->members[m[i].index], &m[i]);
            seen++;
        }
    }
    assert_int_equal(seen, count);
    room_table_free(t);
}

static void dedup_finds_nothing_in_a_new_room(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    uint64_t seq = 77;
    assert_false(room_dedup_find(r, "alice", "m1", &seq));
    assert_int_equal(seq, 77);
    room_table_free(t);
}

static void dedup_keys_on_sub_and_id(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    uint64_t seq = 0;

    assert_int_equal(room_dedup_add(r, "alice", "m1", 10, 100), 0);
    assert_int_equal(room_dedup_add(r, "bob", "m1", 11, 100), 0);
    assert_int_equal(room_dedup_add(r, "ab", "c", 12, 100), 0);
    assert_true(room_dedup_find(r, "alice", "m1", &seq));
    assert_int_equal(seq, 10);
    assert_true(room_dedup_find(r, "bob", "m1", &seq));
    assert_int_equal(seq, 11);
    assert_true(room_dedup_find(r, "ab", "c", &seq));
    assert_int_equal(seq, 12);
    assert_false(room_dedup_find(r, "a", "bc", &seq));
    assert_false(room_dedup_find(r, "alice", "m2", &seq));
    assert_false(room_dedup_find(r, "alice", "m", &seq));
    assert_false(room_dedup_find(r, "carol", "m1", &seq));
    room_table_free(t);
}

static void dedup_is_per_room(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *a = room_get(t, "a", 1);
    struct room *b = room_get(t, "b", 1);
    uint64_t seq;
    room_dedup_add(a, "alice", "m1", 5, 10);
    assert_false(room_dedup_find(b, "alice", "m1", &seq));
    room_table_free(t);
}

static void dedup_add_again_keeps_the_first_seq(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    uint64_t seq;
    room_dedup_add(r, "alice", "m1", 5, 3);
    assert_int_equal(room_dedup_add(r, "alice", "m1", 9, 3), 0);
    assert_true(room_dedup_find(r, "alice", "m1", &seq));
    assert_int_equal(seq, 5);
    /* It also took no second place: two more fit before it is evicted. */
    room_dedup_add(r, "alice", "m2", 6, 3);
    room_dedup_add(r, "alice", "m3", 7, 3);
    assert_true(room_dedup_find(r, "alice", "m1", &seq));
    assert_int_equal(seq, 5);
    room_table_free(t);
}

static void dedup_forgets_the_oldest_first(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    uint64_t seq;
    char id[16];

    for (int i = 1; i <= 3; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        room_dedup_add(r, "alice", id, (uint64_t)i, 3);
    }
    room_dedup_add(r, "alice", "m4", 4, 3);
    assert_false(room_dedup_find(r, "alice", "m1", &seq));
    for (int i = 2; i <= 4; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        assert_true(room_dedup_find(r, "alice", id, &seq));
        assert_int_equal(seq, i);
    }
    room_dedup_add(r, "bob", "m5", 5, 3);
    assert_false(room_dedup_find(r, "alice", "m2", &seq));
    assert_true(room_dedup_find(r, "alice", "m3", &seq));
    assert_true(room_dedup_find(r, "bob", "m5", &seq));
    assert_int_equal(seq, 5);
    room_table_free(t);
}

static void dedup_with_cap_one_keeps_the_last(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    uint64_t seq;
    room_dedup_add(r, "s", "a", 1, 1);
    room_dedup_add(r, "s", "b", 2, 1);
    assert_false(room_dedup_find(r, "s", "a", &seq));
    assert_true(room_dedup_find(r, "s", "b", &seq));
    assert_int_equal(seq, 2);
    room_table_free(t);
}

static void dedup_with_cap_zero_records_nothing(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    uint64_t seq;
    assert_int_equal(room_dedup_add(r, "s", "a", 1, 0), 0);
    assert_false(room_dedup_find(r, "s", "a", &seq));
    room_table_free(t);
}

/* A large cap, filled several times over with keys of varying length, so the
 * ring grows, wraps and recycles key buffers of other sizes. */
static void dedup_large_cap_keeps_exactly_the_last_cap_ids(void **state)
{
    (void)state;
    enum { CAP = 1000, ADDS = 4321 };
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    char sub[64], id[160];
    uint64_t seq;

    for (int i = 0; i < ADDS; i++) {
        snprintf(sub, sizeof(sub), "user-%d", i % 7);
        snprintf(id, sizeof(id), "%0*d", 1 + (i * 37) % 128, i);
        assert_int_equal(room_dedup_add(r, sub, id, (uint64_t)i + 1, CAP), 0);
    }
    for (int i = 0; i < ADDS; i++) {
        snprintf(sub, sizeof(sub), "user-%d", i % 7);
        snprintf(id, sizeof(id), "%0*d", 1 + (i * 37) % 128, i);
        bool found = room_dedup_find(r, sub, id, &seq);
        if (i < ADDS - CAP) {
            assert_false(found);
        } else {
            assert_true(found);
            assert_int_equal(seq, i + 1);
        }
    }
    room_table_free(t);
}

static void room_remove_frees_members_and_dedup(void **state)
{
    (void)state;
    struct room_table *t = room_table_new();
    struct room *r = room_get(t, "d", 1);
    struct room_member m = {0, 0};
    room_add_member(r, &m);
    room_remove_member(r, 0);
    room_dedup_add(r, "s", "a", 1, 10);
    room_remove(t, r);
    assert_int_equal(room_table_count(t), 0);
    room_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(room_name_rules),
        cmocka_unit_test(room_get_creates_then_finds_the_same_room),
        cmocka_unit_test(room_get_refuses_an_invalid_name),
        cmocka_unit_test(room_remove_forgets_the_room),
        cmocka_unit_test(room_table_holds_10k_rooms),
        cmocka_unit_test(room_next_visits_each_room_once),
        cmocka_unit_test(room_next_on_an_empty_table_ends_at_once),
        cmocka_unit_test(remove_member_moves_the_last_into_the_hole),
        cmocka_unit_test(member_indexes_stay_right_under_random_churn),
        cmocka_unit_test(dedup_finds_nothing_in_a_new_room),
        cmocka_unit_test(dedup_keys_on_sub_and_id),
        cmocka_unit_test(dedup_is_per_room),
        cmocka_unit_test(dedup_add_again_keeps_the_first_seq),
        cmocka_unit_test(dedup_forgets_the_oldest_first),
        cmocka_unit_test(dedup_with_cap_one_keeps_the_last),
        cmocka_unit_test(dedup_with_cap_zero_records_nothing),
        cmocka_unit_test(dedup_large_cap_keeps_exactly_the_last_cap_ids),
        cmocka_unit_test(room_remove_frees_members_and_dedup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
