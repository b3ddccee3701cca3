/*
 * Unit tests of backend/redis_link.c's reconnect delay: doubling from the
 * minimum, the cap, and the jitter's range (half the delay to all of it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backend/redis_link.h"

/* rnd 0 gives the lowest pick (delay / 2); rnd = delay - delay / 2 the highest. */
static void backoff_doubles_from_min_until_the_cap(void **state)
{
    (void)state;
    static const struct {
        unsigned attempt;
        int64_t lowest, highest;
    } cases[] = {
        {0, 50, 100},    {1, 100, 200},   {2, 200, 400},   {3, 400, 800},    {4, 800, 1600},
        {5, 1600, 3200}, {6, 2500, 5000}, {7, 2500, 5000}, {40, 2500, 5000}, {1000, 2500, 5000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t high = cases[i].highest, low = cases[i].lowest;
        assert_int_equal(redis_backoff_ms(cases[i].attempt, 100, 5000, 0), low);
        assert_int_equal(redis_backoff_ms(cases[i].attempt, 100, 5000, (uint32_t)(high - low)),
                         high);
        /* One more wraps around to the lowest: the pick is modulo the range. */
        assert_int_equal(redis_backoff_ms(cases[i].attempt, 100, 5000, (uint32_t)(high - low + 1)),
                         low);
    }
}

static void backoff_jitter_stays_within_half_to_full_delay(void **state)
{
    (void)state;
    uint32_t x = 12345;
    for (int i = 0; i < 10000; i++) {
        x = x * 1103515245u + 12345u;
        int64_t d = redis_backoff_ms((unsigned)(i % 12), 100, 5000, x);
        int64_t full = 100LL << (i % 12);
        if (full > 5000)
            full = 5000;
        assert_in_range(d, full / 2, full);
    }
}

static void backoff_with_min_above_max_is_max(void **state)
{
    (void)state;
    assert_int_equal(redis_backoff_ms(0, 9000, 5000, 0), 2500);
    assert_int_equal(redis_backoff_ms(0, 9000, 5000, 2500), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_from_min_until_the_cap),
        cmocka_unit_test(backoff_jitter_stays_within_half_to_full_delay),
        cmocka_unit_test(backoff_with_min_above_max_is_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
