/*
 * Feeding backend/http_req.c a whole request from a C string, for the unit
 * tests that read requests (test_http_req.c, test_ws_handshake.c).
 * Header-only, like cases.h.
 */
#ifndef RR_TESTS_UNIT_HTTP_FEED_H
#define RR_TESTS_UNIT_HTTP_FEED_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "backend/http_req.h"

/* Feeds all of s at once; returns what the reader answers. */
static inline enum http_req_status feed_str(struct http_req *r, const char *s)
{
    size_t used;
    return http_req_feed(r, s, strlen(s), &used);
}

/* A reader with the default limits that has read s, which must be one whole
 * request. The caller frees it with http_req_free(). */
static inline struct http_req *parse(const char *s)
{
    struct http_req *r = http_req_new(NULL);

    assert_non_null(r);
    assert_int_equal(feed_str(r, s), HTTP_REQ_COMPLETE);
    return r;
}

#endif
