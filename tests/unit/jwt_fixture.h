/*
 * The JWT fixtures (tests/fixtures/jwt, or $RR_FIXTURES/jwt) as the unit
 * tests of the verifier and of the SPOE handler read them: a fixture's path,
 * vectors.json, and the policy it names. Header-only, like cases.h.
 */
#ifndef RR_TESTS_UNIT_JWT_FIXTURE_H
#define RR_TESTS_UNIT_JWT_FIXTURE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/jwt_verify.h"

/* The path of fixture `name` (which may carry a ":ALG,..." suffix). */
static inline void fixture(char *buf, size_t len, const char *name)
{
    const char *dir = getenv("RR_FIXTURES");

    snprintf(buf, len, "%s/jwt/%s", dir && *dir ? dir : "tests/fixtures", name);
}

/* vectors.json, or NULL after saying on stderr why it could not be read. */
static inline json_t *fixture_vectors(void)
{
    char path[512];
    json_error_t jerr;
    json_t *doc;

    fixture(path, sizeof(path), "vectors.json");
    doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fprintf(stderr, "%s: %s\n", path, jerr.text);
    return doc;
}

/* The policy of vectors.json; its strings belong to doc. */
static inline struct rr_jwt_policy fixture_policy(const json_t *doc)
{
    const json_t *pol = json_object_get(doc, "policy");

    return (struct rr_jwt_policy){
        .issuer = json_string_value(json_object_get(pol, "issuer")),
        .audience = json_string_value(json_object_get(pol, "audience")),
        .leeway = json_integer_value(json_object_get(pol, "leeway")),
        .max_token_bytes = (size_t)json_integer_value(json_object_get(pol, "max_token_bytes")),
        .allow_no_exp = json_is_true(json_object_get(pol, "allow_no_exp")),
    };
}

#endif
