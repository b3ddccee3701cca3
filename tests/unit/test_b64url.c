/*
 * Unit tests of lib/b64url.c against RFC 4648 §10's vectors in the URL-safe
 * alphabet, and the inputs it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "lib/b64url.h"

static const struct {
    const char *in, *out;
} good[] = {
    {"", ""},
    {"Zg", "f"},
    {"Zm8", "fo"},
    {"Zm9v", "foo"},
    {"Zm9vYg", "foob"},
    {"Zm9vYmE", "fooba"},
    {"Zm9vYmFy", "foobar"},
    {"-_-_", "\xfb\xff\xbf"}, /* the two characters that differ from base64 */
};

static void rfc4648_vectors_decode(void **state)
{
    (void)state;
    unsigned char out[16];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t len = strlen(good[i].in);
        assert_true(rr_b64url_valid(good[i].in, len));
        assert_int_equal(rr_b64url_decode(good[i].in, len, out), strlen(good[i].out));
        assert_memory_equal(out, good[i].out, strlen(good[i].out));
    }
}

static void refuses_padding_standard_alphabet_and_length_4n_plus_1(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zg==", "Zm8=",  "+/+/",  "Zm9v\n", "Zm 9v",
                                      "Z",    "Zm9vY", "Zm9v.", "Zm9v\0"};
    unsigned char out[16];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]) + (i == 8); /* the last one holds a NUL */
        assert_false(rr_b64url_valid(bad[i], len));
        assert_int_equal(rr_b64url_decode(bad[i], len, out), -1);
    }
}

/* Longer than one translation chunk, and not a multiple of it. */
static void decodes_across_chunks(void **state)
{
    (void)state;
    char in[1003];
    unsigned char out[RR_B64URL_DECODED_MAX(sizeof(in))];

    for (size_t i = 0; i < sizeof(in); i += 4)
        memcpy(in + i, "Zm9v", sizeof(in) - i < 4 ? sizeof(in) - i : 4);
    /* 250 quanta of "foo", then "Zm9" = "fo" */
    assert_int_equal(rr_b64url_decode(in, sizeof(in), out), 752);
    for (size_t i = 0; i < 750; i += 3)
        assert_memory_equal(out + i, "foo", 3);
    assert_memory_equal(out + 750, "fo", 2);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors_decode),
        cmocka_unit_test(refuses_padding_standard_alphabet_and_length_4n_plus_1),
        cmocka_unit_test(decodes_across_chunks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
