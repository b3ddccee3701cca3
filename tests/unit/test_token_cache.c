/*
 * Unit tests of lib/token_cache.c: hits, the three kinds of miss (absent,
 * expired, other generation), LRU eviction, the disabled cache, and what a
 * lookup allocates (OpenSSL's and jansson's allocators are counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/token_cache.h"

static size_t openssl_allocations, json_allocations;

static void *count_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    openssl_allocations++;
    return malloc(n);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    openssl_allocations++;
    return realloc(p, n);
}

static void count_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

static void *json_count_malloc(size_t n)
{
    json_allocations++;
    return malloc(n);
}

static json_t *claims_for(const char *sub)
{
    return json_pack("{s:s}", "sub", sub);
}

static void put(struct rr_token_cache *c, const char *tok, uint64_t gen, int64_t exp)
{
    json_t *claims = claims_for(tok);

    rr_token_cache_put(c, tok, strlen(tok), gen, exp, claims);
    json_decref(claims);
}

/* Whether tok hits; a hit must carry tok's own claims. */
static bool hit(struct rr_token_cache *c, const char *tok, uint64_t gen, int64_t now)
{
    json_t *claims = rr_token_cache_get(c, tok, strlen(tok), gen, now);
    bool found = claims != NULL;

    if (claims) {
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), tok);
        json_decref(claims);
    }
    return found;
}

static void hit_returns_a_new_reference_to_the_same_claims(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(4);
    json_t *claims = claims_for("a"), *got;

    rr_token_cache_put(c, "a", 1, 7, 1000, claims);
    assert_int_equal(claims->refcount, 2);
    got = rr_token_cache_get(c, "a", 1, 7, 999);
    assert_ptr_equal(got, claims);
    assert_int_equal(claims->refcount, 3);
    json_decref(got);
    assert_int_equal(rr_token_cache_count(c), 1);
    rr_token_cache_free(c);
    assert_int_equal(claims->refcount, 1);
    json_decref(claims);
}

static void miss_for_a_token_never_put(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(4);

    put(c, "abc", 7, 1000);
    assert_false(hit(c, "abd", 7, 0));
    assert_false(hit(c, "ab", 7, 0));
    assert_true(hit(c, "abc", 7, 0));
    rr_token_cache_free(c);
}

static void miss_from_exp_on_and_entry_dropped(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(4);

    put(c, "a", 7, 1000);
    assert_true(hit(c, "a", 7, 999));
    assert_false(hit(c, "a", 7, 1000));
    assert_int_equal(rr_token_cache_count(c), 0);
    assert_false(hit(c, "a", 7, 999));
    rr_token_cache_free(c);
}

static void no_exp_is_cached_until_int64_max(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(4);

    put(c, "a", 7, INT64_MAX);
    assert_true(hit(c, "a", 7, INT64_MAX - 1));
    rr_token_cache_free(c);
}

static void miss_after_generation_change_and_entry_dropped(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(4);

    put(c, "a", 7, 1000);
    assert_false(hit(c, "a", 8, 0));
    assert_int_equal(rr_token_cache_count(c), 0);
    assert_false(hit(c, "a", 7, 0));
    rr_token_cache_free(c);
}

static void put_again_replaces_generation_and_exp(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(4);

    put(c, "a", 7, 1000);
    put(c, "a", 8, 2000);
    assert_int_equal(rr_token_cache_count(c), 1);
    assert_true(hit(c, "a", 8, 1500));
    assert_false(hit(c, "a", 7, 0));
    rr_token_cache_free(c);
}

static void full_cache_evicts_least_recently_used(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(3);

    put(c, "a", 1, 1000);
    put(c, "b", 1, 1000);
    put(c, "c", 1, 1000);
    assert_true(hit(c, "a", 1, 0)); /* order now, most recent first: a c b */
    put(c, "d", 1, 1000);           /* evicts b */
    assert_int_equal(rr_token_cache_count(c), 3);
    assert_false(hit(c, "b", 1, 0));
    put(c, "e", 1, 1000); /* order was d a c: evicts c */
    assert_false(hit(c, "c", 1, 0));
    assert_true(hit(c, "a", 1, 0));
    assert_true(hit(c, "d", 1, 0));
    assert_true(hit(c, "e", 1, 0));
    rr_token_cache_free(c);
}

static void put_again_counts_as_use(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(2);

    put(c, "a", 1, 1000);
    put(c, "b", 1, 1000);
    put(c, "a", 1, 1000);
    put(c, "c", 1, 1000); /* evicts b, not a */
    assert_true(hit(c, "a", 1, 0));
    assert_false(hit(c, "b", 1, 0));
    rr_token_cache_free(c);
}

static void many_tokens_keep_only_the_most_recent(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(64);
    char tok[32];

    for (int i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        put(c, tok, 1, 1000);
    }
    assert_int_equal(rr_token_cache_count(c), 64);
    for (int i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        assert_int_equal(hit(c, tok, 1, 0), i >= 1000 - 64);
    }
    rr_token_cache_free(c);
}

static void capacity_zero_disables(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(0);
    json_t *claims = claims_for("a");

    assert_non_null(c);
    rr_token_cache_put(c, "a", 1, 1, 1000, claims);
    assert_int_equal(claims->refcount, 1);
    assert_int_equal(rr_token_cache_count(c), 0);
    assert_null(rr_token_cache_get(c, "a", 1, 1, 0));
    json_decref(claims);
    rr_token_cache_free(c);
}

/* OpenSSL 3.0 allocates one provider context per EVP_DigestInit_ex, reused
 * EVP_MD_CTX or not: that one is allowed, nothing else. */
static void lookup_allocates_nothing_beyond_openssl_digest_init(void **state)
{
    (void)state;
    struct rr_token_cache *c = rr_token_cache_new(8);

    put(c, "a", 1, 1000);
    assert_true(hit(c, "a", 1, 0));
    openssl_allocations = json_allocations = 0;
    for (int i = 0; i < 100; i++) {
        json_t *claims = rr_token_cache_get(c, "a", 1, 1, 0);
        assert_non_null(claims);
        json_decref(claims);
        assert_null(rr_token_cache_get(c, "zz", 2, 1, 0));
    }
    assert_int_equal(json_allocations, 0);
    assert_in_range(openssl_allocations, 0, 200);
    rr_token_cache_free(c);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(hit_returns_a_new_reference_to_the_same_claims),
        cmocka_unit_test(miss_for_a_token_never_put),
        cmocka_unit_test(miss_from_exp_on_and_entry_dropped),
        cmocka_unit_test(no_exp_is_cached_until_int64_max),
        cmocka_unit_test(miss_after_generation_change_and_entry_dropped),
        cmocka_unit_test(put_again_replaces_generation_and_exp),
        cmocka_unit_test(full_cache_evicts_least_recently_used),
        cmocka_unit_test(put_again_counts_as_use),
        cmocka_unit_test(many_tokens_keep_only_the_most_recent),
        cmocka_unit_test(capacity_zero_disables),
        cmocka_unit_test(lookup_allocates_nothing_beyond_openssl_digest_init),
    };

    /* Before anything makes OpenSSL allocate. */
    if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free))
        return 1;
    json_set_alloc_funcs(json_count_malloc, free);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
