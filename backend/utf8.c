/*
 * Incremental UTF-8 validator, see utf8.h.
 *
 * Written here because no Debian library validates incrementally: glib's
 * g_utf8_validate, ICU and iconv all want a whole string, and a WebSocket
 * text message arrives in fragments cut at arbitrary bytes.
 *
 * A small automaton: after a lead byte, each state names the range the next
 * byte must fall in (RFC 3629 §4). The narrow ranges after E0, ED, F0 and F4
 * are what reject overlong forms, surrogates and code points past U+10FFFF;
 * C0, C1 and F5..FF can never lead. Between characters, ASCII is skipped
 * eight bytes at a time.
 */
#include "backend/utf8.h"

#include <string.h>

enum utf8_state {
    U_ACCEPT = 0, /* between characters */
    U_CONT1,      /* one more 80..BF */
    U_CONT2,      /* two more 80..BF */
    U_CONT3,      /* three more 80..BF */
    U_AFTER_E0,   /* A0..BF, then one more: no overlong 3-byte forms */
    U_AFTER_ED,   /* 80..9F, then one more: no surrogates */
    U_AFTER_F0,   /* 90..BF, then two more: no overlong 4-byte forms */
    U_AFTER_F4,   /* 80..8F, then two more: nothing past U+10FFFF */
    U_REJECT,
};

struct utf8_step {
    uint8_t lo, hi, next;
};

/* Indexed by enum utf8_state, for every state that waits for a continuation byte. */
static const struct utf8_step steps[] = {
    [U_CONT1] = {0x80, 0xBF, U_ACCEPT},   [U_CONT2] = {0x80, 0xBF, U_CONT1},
    [U_CONT3] = {0x80, 0xBF, U_CONT2},    [U_AFTER_E0] = {0xA0, 0xBF, U_CONT1},
    [U_AFTER_ED] = {0x80, 0x9F, U_CONT1}, [U_AFTER_F0] = {0x90, 0xBF, U_CONT2},
    [U_AFTER_F4] = {0x80, 0x8F, U_CONT2},
};

#define HIGH_BITS 0x8080808080808080ull

/* The state after a byte that is not ASCII, read between characters. */
static uint32_t lead_state(uint8_t b)
{
    if (b < 0xC2)
        return U_REJECT; /* a continuation byte, or an overlong 2-byte lead */
    if (b < 0xE0)
        return U_CONT1;
    if (b == 0xE0)
        return U_AFTER_E0;
    if (b == 0xED)
        return U_AFTER_ED;
    if (b < 0xF0)
        return U_CONT2;
    if (b == 0xF0)
        return U_AFTER_F0;
    if (b < 0xF4)
        return U_CONT3;
    if (b == 0xF4)
        return U_AFTER_F4;
    return U_REJECT;
}

void ws_utf8_init(struct ws_utf8 *u)
{
    u->state = U_ACCEPT;
}

bool ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t len)
{
    uint32_t s = u->state;
    size_t i = 0;

    while (i < len && s != U_REJECT) {
        if (s == U_ACCEPT) {
            uint64_t w;

            while (len - i >= 8) {
                memcpy(&w, p + i, 8);
                if (w & HIGH_BITS)
                    break;
                i += 8;
            }
            while (i < len && p[i] < 0x80)
                i++;
            if (i < len)
                s = lead_state(p[i++]);
        } else {
            const struct utf8_step *st = &steps[s];
            uint8_t b = p[i++];

            s = (b >= st->lo && b <= st->hi) ? st->next : U_REJECT;
        }
    }
    u->state = s;
    return s != U_REJECT;
}

bool ws_utf8_complete(const struct ws_utf8 *u)
{
    return u->state == U_ACCEPT;
}

bool ws_utf8_valid(const uint8_t *p, size_t len)
{
    struct ws_utf8 u;

    ws_utf8_init(&u);
    return ws_utf8_feed(&u, p, len) && ws_utf8_complete(&u);
}
