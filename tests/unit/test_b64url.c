/*
 * Unit tests of lib/b64url.c against RFC 4648 §10's vectors in the URL-safe
 * alphabet, the inputs it must refuse, the room it writes into, and which
 * spellings are canonical.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
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

/* Many quanta, then a partial one. */
static void decodes_long_input(void **state)
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

/* Callers size buffers with RR_B64URL_DECODED_MAX: a canary right after it
 * must survive, for every length mod 4, short and long inputs alike. */
static void decoded_max_holds_every_byte_written(void **state)
{
    (void)state;
    static const size_t lens[] = {0,   2,   3,   4,   6,   7,   8,   10,  11,  12, 254,
                                  255, 256, 258, 259, 260, 510, 511, 512, 514, 515};
    char in[520];
    unsigned char out[RR_B64URL_DECODED_MAX(sizeof(in)) + 1];

    memset(in, '_', sizeof(in)); /* bytes 0xff, then the zeros of the padding: never 0xa5 */
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i], room = RR_B64URL_DECODED_MAX(len);

        memset(out, 0xa5, sizeof(out));
        assert_int_equal(rr_b64url_decode(in, len, out), len * 3 / 4);
        assert_int_equal(out[room], 0xa5);
    }
}

static void canonical_means_no_bits_beyond_the_data(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool canonical;
    } cases[] = {
        {"", true},         {"Zg", true},   {"Zh", false},    {"Zm8", true},     {"Zm9", false},
        {"Zm9v", true},     {"Zm9_", true}, {"Zm9vYg", true}, {"Zm9vYv", false}, {"Zm9vYmE", true},
        {"Zm9vYmF", false}, {"_w", true},   {"_x", false},    {"__8", true},     {"___", false},
        {"Zg==", false},    {"Z", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rr_b64url_canonical(cases[i].in, strlen(cases[i].in)), cases[i].canonical);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors_decode),
        cmocka_unit_test(refuses_padding_standard_alphabet_and_length_4n_plus_1),
        cmocka_unit_test(decodes_long_input),
        cmocka_unit_test(decoded_max_holds_every_byte_written),
        cmocka_unit_test(canonical_means_no_bits_beyond_the_data),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
