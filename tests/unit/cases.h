/*
 * Table-driven cmocka tests: each row of a case table (a struct with a
 * `name` member, named after the rule the row checks) runs as one test of
 * that name. Header-only because every tests/unit/test_X.c is its own
 * program in the Makefile.
 */
#ifndef RR_TESTS_UNIT_CASES_H
#define RR_TESTS_UNIT_CASES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Appends one test per row of the table tbl to tests[*n], each running fn
 * with a pointer to its row as *state. */
/* clang-format off */
#define ADD_CASES(tests, n, tbl, fn)                                                               \
    for (size_t i_ = 0; i_ < COUNT(tbl); i_++)                                                     \
        add_case((tests), (n), (tbl)[i_].name, (fn), &(tbl)[i_])
/* clang-format on */

static inline void add_case(struct CMUnitTest *tests, size_t *n, const char *name,
                            CMUnitTestFunction fn, const void *c)
{
    tests[(*n)++] = (struct CMUnitTest){name, fn, NULL, NULL, (void *)c};
}

#endif
