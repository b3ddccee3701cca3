/*
 * Unit tests of the benchmarks' log-linear latency histogram (bench/hist.h):
 * bucket layout, the error bound, and percentiles on known distributions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "bench/hist.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct hist h;

static int reset(void **state)
{
    (void)state;
    hist_reset(&h);
    return 0;
}

static void hist_values_below_128_have_their_own_bucket(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 128; v++) {
        assert_int_equal(hist_index(v), v);
        assert_int_equal(hist_bucket_high((unsigned)v), v);
    }
}

/* Each row: a value, its bucket, and the largest value of that bucket. */
static void hist_buckets_split_each_power_of_two_in_64(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        unsigned idx;
        uint64_t high;
    } cases[] = {
        {128, 128, 129}, {129, 128, 129},   {130, 129, 131},         {255, 191, 255},
        {256, 192, 259}, {259, 192, 259},   {260, 193, 263},         {511, 255, 511},
        {512, 256, 519}, {1000, 317, 1007}, {1000000, 954, 1007615},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        assert_int_equal(hist_index(cases[i].v), cases[i].idx);
        assert_int_equal(hist_bucket_high(cases[i].idx), cases[i].high);
    }
}

static void hist_bucket_of_a_value_never_ends_below_it(void **state)
{
    (void)state;
    for (uint64_t v = 1; v < (1ull << 39); v = v * 3 + 1) {
        unsigned i = hist_index(v);
        assert_true(hist_bucket_high(i) >= v);
        assert_true(i == 0 || hist_bucket_high(i - 1) < v);
        /* within 1/64 of the value */
        assert_true((hist_bucket_high(i) - v) * 64 <= v);
    }
}

static void hist_clamps_values_past_2_pow_40_into_the_last_bucket(void **state)
{
    (void)state;
    assert_int_equal(hist_index(1ull << 40), HIST_BUCKETS - 1);
    assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
    assert_int_equal(hist_index((1ull << 40) - 1), HIST_BUCKETS - 1);
}

static void hist_quantile_of_empty_is_zero(void **state)
{
    (void)state;
    assert_int_equal(hist_quantile(&h, 0.5), 0);
    assert_int_equal(hist_quantile(&h, 0.99), 0);
}

static void hist_quantiles_of_1_to_100_are_exact(void **state)
{
    (void)state;
    for (uint64_t v = 1; v <= 100; v++)
        hist_add(&h, v);
    assert_int_equal(h.count, 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
    assert_int_equal(h.sum, 5050);
    assert_int_equal(hist_quantile(&h, 0), 1);
    assert_int_equal(hist_quantile(&h, 0.5), 50);
    assert_int_equal(hist_quantile(&h, 0.99), 99);
    assert_int_equal(hist_quantile(&h, 0.999), 100);
    assert_int_equal(hist_quantile(&h, 1), 100);
}

static void hist_quantile_never_reports_above_the_largest_value(void **state)
{
    (void)state;
    hist_add(&h, 1000); /* bucket 1000..1007 */
    assert_int_equal(hist_quantile(&h, 0.5), 1000);
    assert_int_equal(hist_quantile(&h, 1), 1000);
}

static void hist_p99_sees_a_one_percent_tail(void **state)
{
    (void)state;
    for (int i = 0; i < 990; i++)
        hist_add(&h, 50000); /* 50 us */
    for (int i = 0; i < 10; i++)
        hist_add(&h, 4000000); /* 4 ms */
    assert_int_equal(hist_quantile(&h, 0.5), 50175);
    assert_int_equal(hist_quantile(&h, 0.99), 50175);
    assert_int_equal(hist_quantile(&h, 0.991), 4000000);
}

/* Two halves merged give the same histogram as all values added to one. */
static void hist_merge_equals_adding_every_value_to_one(void **state)
{
    (void)state;
    static struct hist a, b, all;
    hist_reset(&a);
    hist_reset(&b);
    hist_reset(&all);
    for (uint64_t v = 1; v <= 1000; v++) {
        hist_add(v % 2 ? &a : &b, v * 977);
        hist_add(&all, v * 977);
    }
    hist_merge(&a, &b);
    assert_memory_equal(a.n, all.n, sizeof(all.n));
    assert_int_equal(a.count, 1000);
    assert_int_equal(a.min, 977);
    assert_int_equal(a.max, 977000);
    assert_int_equal(a.sum, all.sum);
    assert_int_equal(hist_quantile(&a, 0.99), hist_quantile(&all, 0.99));
}

/* An empty histogram leaves min alone; merging into an empty one copies it. */
static void hist_merge_with_empty_keeps_min_and_max(void **state)
{
    (void)state;
    static struct hist a, empty;
    hist_reset(&a);
    hist_reset(&empty);
    hist_add(&a, 500);
    hist_merge(&a, &empty);
    assert_int_equal(a.min, 500);
    assert_int_equal(a.count, 1);
    hist_merge(&empty, &a);
    assert_int_equal(empty.min, 500);
    assert_int_equal(empty.max, 500);
    assert_int_equal(empty.count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_values_below_128_have_their_own_bucket),
        cmocka_unit_test(hist_buckets_split_each_power_of_two_in_64),
        cmocka_unit_test(hist_bucket_of_a_value_never_ends_below_it),
        cmocka_unit_test(hist_clamps_values_past_2_pow_40_into_the_last_bucket),
        cmocka_unit_test_setup(hist_quantile_of_empty_is_zero, reset),
        cmocka_unit_test_setup(hist_quantiles_of_1_to_100_are_exact, reset),
        cmocka_unit_test_setup(hist_quantile_never_reports_above_the_largest_value, reset),
        cmocka_unit_test_setup(hist_p99_sees_a_one_percent_tail, reset),
        cmocka_unit_test(hist_merge_equals_adding_every_value_to_one),
        cmocka_unit_test(hist_merge_with_empty_keeps_min_and_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
