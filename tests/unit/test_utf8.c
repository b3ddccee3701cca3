/*
 * Unit tests of the incremental UTF-8 validator (backend/utf8.c) against
 * RFC 3629: the boundary code points, overlong forms, surrogates, code points
 * past U+10FFFF, and the same verdict however the input is cut. A small
 * decoder written from RFC 3629 §3 is the oracle for every short sequence.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/utf8.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1

enum verdict { VALID, INCOMPLETE, INVALID };

struct utf8_case {
    const char *name;
    const uint8_t *p;
    size_t len;
    enum verdict verdict;
    size_t fail_at; /* INVALID: index of the first byte that makes it so */
};

static const struct utf8_case cases[] = {
    {"empty", BYTES(""), VALID, 0},
    {"ascii", BYTES("hello, world: {\"type\":\"ping\"}"), VALID, 0},
    {"U+0080 smallest 2-byte", BYTES("\xC2\x80"), VALID, 0},
    {"U+07FF largest 2-byte", BYTES("\xDF\xBF"), VALID, 0},
    {"U+0800 smallest 3-byte", BYTES("\xE0\xA0\x80"), VALID, 0},
    {"U+D7FF below the surrogates", BYTES("\xED\x9F\xBF"), VALID, 0},
    {"U+E000 above the surrogates", BYTES("\xEE\x80\x80"), VALID, 0},
    {"U+FFFD", BYTES("\xEF\xBF\xBD"), VALID, 0},
    {"U+FFFF", BYTES("\xEF\xBF\xBF"), VALID, 0},
    {"U+10000 smallest 4-byte", BYTES("\xF0\x90\x80\x80"), VALID, 0},
    {"U+10FFFF largest code point", BYTES("\xF4\x8F\xBF\xBF"), VALID, 0},
    {"greek kosme", BYTES("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"), VALID, 0},
    {"mixed widths", BYTES("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"), VALID, 0},
    {"overlong 2-byte NUL", BYTES("\xC0\x80"), INVALID, 0},
    {"overlong 2-byte U+007F", BYTES("\xC1\xBF"), INVALID, 0},
    {"overlong 3-byte NUL", BYTES("\xE0\x80\x80"), INVALID, 1},
    {"overlong 3-byte U+07FF", BYTES("\xE0\x9F\xBF"), INVALID, 1},
    {"overlong 4-byte NUL", BYTES("\xF0\x80\x80\x80"), INVALID, 1},
    {"overlong 4-byte U+FFFF", BYTES("\xF0\x8F\xBF\xBF"), INVALID, 1},
    {"surrogate U+D800", BYTES("\xED\xA0\x80"), INVALID, 1},
    {"surrogate U+DFFF", BYTES("\xED\xBF\xBF"), INVALID, 1},
    {"surrogate pair", BYTES("\xED\xA0\x80\xED\xB0\x80"), INVALID, 1},
    {"U+110000 past the last code point", BYTES("\xF4\x90\x80\x80"), INVALID, 1},
    {"lead F5", BYTES("\xF5\x80\x80\x80"), INVALID, 0},
    {"5-byte lead F8", BYTES("\xF8\x88\x80\x80\x80"), INVALID, 0},
    {"byte FE", BYTES("\xFE"), INVALID, 0},
    {"byte FF", BYTES("\xFF"), INVALID, 0},
    {"lone continuation 80", BYTES("\x80"), INVALID, 0},
    {"lone continuation BF", BYTES("\xBF"), INVALID, 0},
    {"continuation after ascii", BYTES("ab\x80"), INVALID, 2},
    {"extra continuation", BYTES("\xC2\x80\x80"), INVALID, 2},
    {"2-byte cut by ascii", BYTES("\xC2\x41"), INVALID, 1},
    {"3-byte cut by ascii", BYTES("\xE1\x80\x41"), INVALID, 2},
    {"4-byte cut by ascii", BYTES("\xF1\x80\x80\x41"), INVALID, 3},
    {"4-byte cut by a new lead", BYTES("\xF1\x80\x80\xC2\x80"), INVALID, 3},
    {"bad byte after a long ascii run", BYTES("0123456789abcdefghij\xC0"), INVALID, 20},
    {"truncated 2-byte", BYTES("\xC2"), INCOMPLETE, 0},
    {"truncated 3-byte", BYTES("\xE0\xA0"), INCOMPLETE, 0},
    {"truncated 4-byte", BYTES("\xF0\x90\x80"), INCOMPLETE, 0},
    {"truncated after text", BYTES("abc\xE2\x82"), INCOMPLETE, 0},
};

static void utf8_table_gives_each_verdict(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        const struct utf8_case *c = &cases[i];
        struct ws_utf8 u;

        print_message("%s\n", c->name);
        ws_utf8_init(&u);
        assert_int_equal(ws_utf8_feed(&u, c->p, c->len), c->verdict != INVALID);
        assert_int_equal(ws_utf8_complete(&u), c->verdict == VALID);
        assert_int_equal(ws_utf8_valid(c->p, c->len), c->verdict == VALID);
    }
}

static void utf8_fails_on_the_first_impossible_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        const struct utf8_case *c = &cases[i];
        size_t good = c->verdict == INVALID ? c->fail_at : c->len;
        struct ws_utf8 u;

        print_message("%s\n", c->name);
        ws_utf8_init(&u);
        for (size_t k = 0; k < good; k++)
            assert_true(ws_utf8_feed(&u, c->p + k, 1));
        if (c->verdict == INVALID)
            assert_false(ws_utf8_feed(&u, c->p + good, 1));
    }
}

static void utf8_split_at_every_position_gives_the_same_verdict(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(cases); i++) {
        const struct utf8_case *c = &cases[i];

        print_message("%s\n", c->name);
        for (size_t k = 0; k <= c->len; k++) {
            struct ws_utf8 u;
            bool ok;

            ws_utf8_init(&u);
            ok = ws_utf8_feed(&u, c->p, k);
            ok = ws_utf8_feed(&u, c->p + k, c->len - k) && ok;
            assert_int_equal(ok, c->verdict != INVALID);
            assert_int_equal(ws_utf8_complete(&u), c->verdict == VALID);
        }
    }
}

static void utf8_rejection_is_sticky(void **state)
{
    struct ws_utf8 u;

    (void)state;
    ws_utf8_init(&u);
    assert_false(ws_utf8_feed(&u, BYTES("\xC0")));
    assert_false(ws_utf8_feed(&u, BYTES("plain ascii")));
    assert_false(ws_utf8_feed(&u, BYTES("")));
    assert_false(ws_utf8_complete(&u));
    ws_utf8_init(&u);
    assert_true(ws_utf8_feed(&u, BYTES("plain ascii")));
    assert_true(ws_utf8_complete(&u));
}

/* The 8-byte ASCII skip must see a non-ASCII byte wherever it lies, at any alignment. */
static void utf8_ascii_fast_path_sees_every_byte_at_every_alignment(void **state)
{
    uint8_t buf[8 + 48];

    (void)state;
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 1; len <= 40; len++) {
            uint8_t *p = buf + align;

            for (size_t at = 0; at < len; at++) {
                memset(p, 'a', len);
                p[at] = 0x80;
                assert_false(ws_utf8_valid(p, len));
                p[at] = 0xFF;
                assert_false(ws_utf8_valid(p, len));
                if (at + 1 < len) {
                    p[at] = 0xC3;
                    p[at + 1] = 0xA9;
                    assert_true(ws_utf8_valid(p, len));
                } else {
                    p[at] = 0xC3;
                    assert_false(ws_utf8_valid(p, len));
                }
            }
            memset(p, 'a', len);
            assert_true(ws_utf8_valid(p, len));
        }
    }
}

/* RFC 3629 §3 decoding, the long way: the oracle for the exhaustive test. */
static bool oracle_valid(const uint8_t *p, size_t len)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0;

    while (i < len) {
        uint8_t b = p[i];
        size_t n = b < 0x80             ? 1
                   : (b & 0xE0) == 0xC0 ? 2
                   : (b & 0xF0) == 0xE0 ? 3
                   : (b & 0xF8) == 0xF0 ? 4
                                        : 0;
        uint32_t cp;

        if (n == 0 || len - i < n)
            return false;
        cp = n == 1 ? b : b & (0x7Fu >> n);
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3Fu);
        }
        if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

static void utf8_agrees_with_rfc3629_decoding_on_short_sequences(void **state)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                    0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    uint8_t s[4];

    (void)state;
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        assert_int_equal(ws_utf8_valid(s, 1), oracle_valid(s, 1));
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            assert_int_equal(ws_utf8_valid(s, 2), oracle_valid(s, 2));
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                if (ws_utf8_valid(s, 3) != oracle_valid(s, 3))
                    fail_msg("3-byte %02x %02x %02x", a, b, c);
            }
            for (size_t c = 0; c < LEN(tails); c++) {
                s[2] = tails[c];
                for (size_t d = 0; d < LEN(tails); d++) {
                    s[3] = tails[d];
                    if (ws_utf8_valid(s, 4) != oracle_valid(s, 4))
                        fail_msg("4-byte %02x %02x %02x %02x", a, b, s[2], s[3]);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_table_gives_each_verdict),
        cmocka_unit_test(utf8_fails_on_the_first_impossible_byte),
        cmocka_unit_test(utf8_split_at_every_position_gives_the_same_verdict),
        cmocka_unit_test(utf8_rejection_is_sticky),
        cmocka_unit_test(utf8_ascii_fast_path_sees_every_byte_at_every_alignment),
        cmocka_unit_test(utf8_agrees_with_rfc3629_decoding_on_short_sequences),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
