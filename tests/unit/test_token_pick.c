/*
 * Unit tests of lib/token_pick.c: which source wins, and how each one is
 * parsed. One cmocka test per case, named after the rule it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "lib/token_pick.h"

static const struct pick_case {
    const char *name;
    const char *bearer, *qtoken, *proto, *cookie; /* NULL: absent */
    const char *want;                             /* NULL: no token */
} cases[] = {
    {"bearer_wins_over_all", "Bearer A", "B", "bearer.C", "D", "A"},
    {"qtoken_wins_over_proto_and_cookie", NULL, "B", "bearer.C", "D", "B"},
    {"proto_wins_over_cookie", NULL, NULL, "bearer.C", "D", "C"},
    {"cookie_last", NULL, NULL, NULL, "D", "D"},
    {"nothing_is_no_token", NULL, NULL, NULL, NULL, NULL},
    {"all_empty_is_no_token", "", "", "", "", NULL},
    {"bearer_scheme_lowercase", "bearer x", NULL, NULL, NULL, "x"},
    {"bearer_scheme_uppercase", "BEARER x", NULL, NULL, NULL, "x"},
    {"bearer_spaces_trimmed", "  Bearer   tok  ", NULL, NULL, NULL, "tok"},
    {"bearer_without_space_is_absent", "Bearerx", "B", NULL, NULL, "B"},
    {"bearer_tab_is_not_the_separator", "Bearer\tx", "B", NULL, NULL, "B"},
    {"bearer_alone_is_absent", "Bearer", "B", NULL, NULL, "B"},
    {"bearer_with_only_spaces_is_absent", "Bearer    ", "B", NULL, NULL, "B"},
    {"basic_auth_is_absent", "Basic dXNlcjpwYXNz", "B", NULL, NULL, "B"},
    {"bearer_prefix_of_longer_scheme_is_absent", "Bearerish x", NULL, NULL, "D", "D"},
    {"qtoken_trimmed", NULL, " tok\t", NULL, NULL, "tok"},
    {"qtoken_of_spaces_is_absent", NULL, "   ", "bearer.C", NULL, "C"},
    {"proto_second_item_with_space", NULL, NULL, "roomrelay.v1, bearer.tok", NULL, "tok"},
    {"proto_second_item_without_space", NULL, NULL, "roomrelay.v1,bearer.tok", NULL, "tok"},
    {"proto_first_item", NULL, NULL, "bearer.tok, roomrelay.v1", NULL, "tok"},
    {"proto_item_spaces_trimmed", NULL, NULL, "  bearer.tok  ,x", NULL, "tok"},
    {"proto_empty_items_skipped", NULL, NULL, ",, bearer.t ,,", NULL, "t"},
    {"proto_empty_bearer_item_skipped", NULL, NULL, "bearer., bearer.tok", NULL, "tok"},
    {"proto_first_bearer_item_wins", NULL, NULL, "bearer.one, bearer.two", NULL, "one"},
    {"proto_prefix_is_case_sensitive", NULL, NULL, "Bearer.tok", "D", "D"},
    {"proto_prefix_must_start_the_item", NULL, NULL, "xbearer.tok", "D", "D"},
    {"proto_without_bearer_item", NULL, NULL, "roomrelay.v1", "D", "D"},
    {"cookie_quotes_stripped", NULL, NULL, NULL, "\"tok\"", "tok"},
    {"cookie_trimmed", NULL, NULL, NULL, " tok ", "tok"},
    {"cookie_empty_quotes_is_absent", NULL, NULL, NULL, "\"\"", NULL},
    {"cookie_lone_quote_kept", NULL, NULL, NULL, "\"", "\""},
};

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

static void pick(void **state)
{
    const struct pick_case *c = *state;
    struct rr_token_inputs in = {
        .bearer = c->bearer,
        .bearer_len = len_of(c->bearer),
        .qtoken = c->qtoken,
        .qtoken_len = len_of(c->qtoken),
        .proto = c->proto,
        .proto_len = len_of(c->proto),
        .cookie = c->cookie,
        .cookie_len = len_of(c->cookie),
    };
    const char *tok = "unset";
    size_t len = 99;

    if (!c->want) {
        assert_false(rr_token_pick(&in, &tok, &len));
        assert_null(tok);
        assert_int_equal(len, 0);
        return;
    }
    assert_true(rr_token_pick(&in, &tok, &len));
    assert_int_equal(len, strlen(c->want));
    assert_memory_equal(tok, c->want, len);
}

/* The token is a pointer into the caller's bytes, which need no NUL. */
static void pick_points_into_unterminated_input(void **state)
{
    (void)state;
    const char proto[] = {'b', 'e', 'a', 'r', 'e', 'r', '.', 'x', 'y', 'Z'};
    struct rr_token_inputs in = {.proto = proto, .proto_len = 9};
    const char *tok;
    size_t len;

    assert_true(rr_token_pick(&in, &tok, &len));
    assert_ptr_equal(tok, proto + 7);
    assert_int_equal(len, 2);
}

int main(void)
{
    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        tests[n++] = (struct CMUnitTest){cases[i].name, pick, NULL, NULL, (void *)&cases[i]};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(pick_points_into_unterminated_input);
    return _cmocka_run_group_tests("token_pick", tests, n, NULL, NULL);
}
