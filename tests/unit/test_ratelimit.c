/*
 * Unit tests of lib/ratelimit.c: the burst, the steady rate after it, the
 * refill arithmetic, the cap at burst, a clock that steps back, and how long
 * wait_ns says to wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/ratelimit.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define T0 (1000 * S)

static int take_all(struct rr_bucket *b, uint64_t now)
{
    int n = 0;
    while (rr_bucket_take(b, now))
        n++;
    return n;
}

static void bucket_starts_full_and_gives_its_burst(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 10, 5, T0);
    assert_int_equal(take_all(&b, T0), 5);
    assert_false(rr_bucket_take(&b, T0));
}

static void bucket_after_burst_gives_rate_per_second(void **state)
{
    (void)state;
    struct rr_bucket b;
    int taken = 0;
    rr_bucket_init(&b, 10, 5, T0);
    take_all(&b, T0);
    /* One attempt per millisecond for 10 s: exactly one token per 100 ms. */
    for (uint64_t t = T0 + MS; t <= T0 + 10 * S; t += MS)
        taken += rr_bucket_take(&b, t);
    assert_int_equal(taken, 100);
}

static void bucket_refills_elapsed_times_rate(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 4, 10, T0);
    take_all(&b, T0);
    assert_true(b.tokens == 0.0);
    assert_false(rr_bucket_take(&b, T0 + 249 * MS));
    assert_true(b.tokens > 0.995 && b.tokens < 0.997); /* 0.249 s * 4/s = 0.996 */
    assert_true(rr_bucket_take(&b, T0 + 250 * MS));
    assert_true(b.tokens > -1e-9 && b.tokens < 1e-9); /* 0.996 + 0.001 s * 4/s - 1 */
    assert_int_equal(b.last_ns, T0 + 250 * MS);
    assert_int_equal(take_all(&b, T0 + 1250 * MS), 4);
}

static void bucket_never_holds_more_than_burst(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 100, 3, T0);
    take_all(&b, T0);
    assert_int_equal(take_all(&b, T0 + 3600 * S), 3);
    assert_true(b.tokens < 1);
}

static void bucket_burst_below_one_is_one(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 1, 0, T0);
    assert_true(b.burst == 1.0);
    assert_int_equal(take_all(&b, T0), 1);
    assert_int_equal(take_all(&b, T0 + 10 * S), 1);
}

static void bucket_fractional_burst_keeps_the_fraction(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 1, 2.5, T0);
    assert_int_equal(take_all(&b, T0), 2);
    assert_true(b.tokens == 0.5);
    assert_int_equal(take_all(&b, T0 + 500 * MS), 1);
}

static void bucket_rate_zero_is_unlimited(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 0, 1, T0);
    for (int i = 0; i < 100000; i++)
        assert_true(rr_bucket_take(&b, T0));
    assert_int_equal(rr_bucket_wait_ns(&b, T0), 0);
}

static void bucket_clock_stepping_back_refills_nothing(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 10, 2, T0);
    take_all(&b, T0);
    assert_false(rr_bucket_take(&b, T0 - 5 * S));
    assert_int_equal(b.last_ns, T0);
    /* Refill still counts from T0, not from the earlier reading. */
    assert_false(rr_bucket_take(&b, T0 + 99 * MS));
    assert_true(rr_bucket_take(&b, T0 + 100 * MS));
}

static void wait_is_zero_while_a_token_is_there(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 10, 2, T0);
    assert_int_equal(rr_bucket_wait_ns(&b, T0), 0);
    rr_bucket_take(&b, T0);
    assert_int_equal(rr_bucket_wait_ns(&b, T0), 0);
}

static void wait_is_time_to_the_next_token(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 10, 1, T0);
    rr_bucket_take(&b, T0);
    assert_int_equal(rr_bucket_wait_ns(&b, T0), 100 * MS);
    assert_int_equal(rr_bucket_wait_ns(&b, T0 + 30 * MS), 70 * MS);
    assert_int_equal(rr_bucket_wait_ns(&b, T0 + 100 * MS), 0);
    /* A clock behind last_ns waits for last_ns too. */
    assert_int_equal(rr_bucket_wait_ns(&b, T0 - 50 * MS), 150 * MS);
}

static void wait_then_take_always_succeeds(void **state)
{
    (void)state;
    static const double rates[] = {3, 7, 0.3, 1e6, 123.456, 1.0 / 3};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        struct rr_bucket b;
        uint64_t now = T0 + 17;
        rr_bucket_init(&b, rates[i], 1, now);
        for (int k = 0; k < 200; k++) {
            assert_true(rr_bucket_take(&b, now));
            uint64_t w = rr_bucket_wait_ns(&b, now);
            assert_true(w > 0);
            assert_false(rr_bucket_take(&b, now + w - 1));
            now += w;
        }
    }
}

/* A case found by search where ceil((1 - tokens) / rate) alone falls one
 * nanosecond short after a partial refill. */
static void wait_covers_rounding_after_a_partial_refill(void **state)
{
    (void)state;
    struct rr_bucket b;
    const uint64_t t0 = 1173898837235ULL, t1 = t0 + 96145271ULL;
    rr_bucket_init(&b, 0x1.db6e44436ae33p-14, 1, t0);
    assert_true(rr_bucket_take(&b, t0));
    assert_false(rr_bucket_take(&b, t1));
    uint64_t w = rr_bucket_wait_ns(&b, t1);
    struct rr_bucket early = b;
    assert_false(rr_bucket_take(&early, t1 + w - 1));
    assert_true(rr_bucket_take(&b, t1 + w));
}

static void wait_on_a_very_slow_rate_saturates(void **state)
{
    (void)state;
    struct rr_bucket b;
    rr_bucket_init(&b, 1e-12, 1, T0);
    rr_bucket_take(&b, T0);
    assert_int_equal(rr_bucket_wait_ns(&b, T0), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_starts_full_and_gives_its_burst),
        cmocka_unit_test(bucket_after_burst_gives_rate_per_second),
        cmocka_unit_test(bucket_refills_elapsed_times_rate),
        cmocka_unit_test(bucket_never_holds_more_than_burst),
        cmocka_unit_test(bucket_burst_below_one_is_one),
        cmocka_unit_test(bucket_fractional_burst_keeps_the_fraction),
        cmocka_unit_test(bucket_rate_zero_is_unlimited),
        cmocka_unit_test(bucket_clock_stepping_back_refills_nothing),
        cmocka_unit_test(wait_is_zero_while_a_token_is_there),
        cmocka_unit_test(wait_is_time_to_the_next_token),
        cmocka_unit_test(wait_then_take_always_succeeds),
        cmocka_unit_test(wait_covers_rounding_after_a_partial_refill),
        cmocka_unit_test(wait_on_a_very_slow_rate_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
