/*
 * Unit tests of backend/redis_link.c's reconnect delay (doubling from the
 * minimum, the cap, and the jitter's range: half the delay to all of it) and
 * of its watchdog's decision (drop on a late answer, PING a quiet link).
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

/* Times in seconds, timeout 2; -1: nothing unanswered. */
static void watchdog_drops_late_answers_and_pings_quiet_links(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        double now, oldest, last;
        enum redis_watch want;
        double next;
    } cases[] = {
        {"an answer awaited less than the timeout: wait for it", 11.0, 10.0, 10.5, REDIS_WATCH_WAIT,
         12.0},
        {"an answer awaited exactly the timeout: drop", 12.0, 10.0, 11.5, REDIS_WATCH_DROP, 12.0},
        {"an answer awaited longer: drop", 30.0, 10.0, 29.0, REDIS_WATCH_DROP, 12.0},
        {"later commands do not move the oldest one's deadline", 11.5, 10.0, 11.5, REDIS_WATCH_WAIT,
         12.0},
        {"nothing unanswered, sent recently: wait until quiet for a timeout", 11.0, -1, 10.5,
         REDIS_WATCH_WAIT, 12.5},
        {"nothing unanswered, quiet for the timeout: ping", 12.5, -1, 10.5, REDIS_WATCH_PING, 12.5},
        {"nothing unanswered, quiet for long: ping", 100.0, -1, 10.5, REDIS_WATCH_PING, 12.5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double next = 0;
        enum redis_watch got =
            redis_watch_check(cases[i].now, cases[i].oldest, cases[i].last, 2.0, &next);
        if (got != cases[i].want || next != cases[i].next)
            fail_msg("%s: got %d next %g", cases[i].rule, (int)got, next);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_from_min_until_the_cap),
        cmocka_unit_test(backoff_jitter_stays_within_half_to_full_delay),
        cmocka_unit_test(backoff_with_min_above_max_is_max),
        cmocka_unit_test(watchdog_drops_late_answers_and_pings_quiet_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
