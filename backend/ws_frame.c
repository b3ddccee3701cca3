/*
 * RFC 6455 frame codec, see ws_frame.h.
 *
 * The reader is a two-state machine (header, payload) plus the message that
 * is open across frames. A header is parsed only once all its bytes are in
 * the caller's buffer (14 at most), so it is never copied. Payload bytes are
 * consumed as they come: a frame that arrived whole is handed out where it
 * lies; anything else is copied, once, into the reassembly buffer (data) or
 * the 125-byte control buffer. The reassembly buffer is kept between messages
 * so a steady stream of fragmented messages does not allocate, and freed
 * after a message that made it grow past WS_READER_KEEP.
 *
 * Nothing here touches a socket or a clock.
 */
#include "backend/ws_frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define B0_FIN 0x80u
#define B0_RSV1 0x40u
#define B0_RSV2 0x20u
#define B0_RSV3 0x10u
#define B0_OPCODE 0x0Fu
#define B1_MASK 0x80u
#define B1_LEN 0x7Fu
#define LEN7_MAX 125u
#define LEN7_16BIT 126u
#define LEN7_64BIT 127u
#define OP_CONTROL 0x8u
#define MASK_LEN 4u
#define CLOSE_CODE_LEN 2u
#define REASSEMBLY_MIN 1024u

enum reader_state {
    RD_HEADER,
    RD_PAYLOAD,
    RD_CLOSED,
    RD_FAILED,
};

static const struct {
    uint16_t code;
    const char *text;
} errors[] = {
    [WS_ERR_NONE] = {WS_CLOSE_NORMAL, "no error"},
    [WS_ERR_UNMASKED] = {WS_CLOSE_PROTOCOL, "unmasked frame"},
    [WS_ERR_RSV_BITS] = {WS_CLOSE_PROTOCOL, "rsv bits set"},
    [WS_ERR_RESERVED_OPCODE] = {WS_CLOSE_PROTOCOL, "reserved opcode"},
    [WS_ERR_CONTROL_TOO_LONG] = {WS_CLOSE_PROTOCOL, "control frame too long"},
    [WS_ERR_CONTROL_FRAGMENTED] = {WS_CLOSE_PROTOCOL, "fragmented control frame"},
    [WS_ERR_LENGTH_TOP_BIT] = {WS_CLOSE_PROTOCOL, "64-bit length with top bit set"},
    [WS_ERR_LENGTH_NOT_MINIMAL] = {WS_CLOSE_PROTOCOL, "non-minimal length encoding"},
    [WS_ERR_CONT_WITHOUT_START] = {WS_CLOSE_PROTOCOL, "continuation without start"},
    [WS_ERR_DATA_IN_FRAGMENTED] = {WS_CLOSE_PROTOCOL, "new message inside a fragmented one"},
    [WS_ERR_CLOSE_ONE_BYTE] = {WS_CLOSE_PROTOCOL, "close payload of 1 byte"},
    [WS_ERR_CLOSE_BAD_CODE] = {WS_CLOSE_PROTOCOL, "bad close code"},
    [WS_ERR_CLOSE_BAD_UTF8] = {WS_CLOSE_BAD_DATA, "invalid utf-8 in close reason"},
    [WS_ERR_BAD_UTF8] = {WS_CLOSE_BAD_DATA, "invalid utf-8"},
    [WS_ERR_TOO_BIG] = {WS_CLOSE_TOO_BIG, "message too big"},
    [WS_ERR_NO_MEMORY] = {WS_CLOSE_INTERNAL, "out of memory"},
};

#define N_ERRORS (sizeof(errors) / sizeof(errors[0]))

uint16_t ws_err_close_code(enum ws_err err)
{
    return (size_t)err < N_ERRORS ? errors[err].code : WS_CLOSE_INTERNAL;
}

const char *ws_err_text(enum ws_err err)
{
    return (size_t)err < N_ERRORS ? errors[err].text : "unknown error";
}

bool ws_close_code_receivable(uint16_t code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    if (code < 1000 || code > 1014)
        return false;
    return code != 1004 && code != 1005 && code != 1006;
}

/* ---- frame headers ---- */

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

static bool opcode_known(uint8_t op)
{
    return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY || op == WS_OP_CLOSE ||
           op == WS_OP_PING || op == WS_OP_PONG;
}

/* Rules are checked as soon as the bytes they need are in, so a bad opcode
 * or control length fails on the first two bytes. */
int ws_frame_header_parse(const uint8_t *p, size_t len, struct ws_frame_header *h)
{
    size_t ext, need;
    uint8_t len7;

    if (len < 2)
        return 0;
    h->fin = p[0] & B0_FIN;
    h->rsv1 = p[0] & B0_RSV1;
    h->rsv2 = p[0] & B0_RSV2;
    h->rsv3 = p[0] & B0_RSV3;
    h->opcode = p[0] & B0_OPCODE;
    h->masked = p[1] & B1_MASK;
    len7 = p[1] & B1_LEN;
    if (!opcode_known(h->opcode))
        return -WS_ERR_RESERVED_OPCODE;
    if (h->opcode & OP_CONTROL) {
        if (!h->fin)
            return -WS_ERR_CONTROL_FRAGMENTED;
        if (len7 > LEN7_MAX)
            return -WS_ERR_CONTROL_TOO_LONG;
    }
    ext = len7 == LEN7_16BIT ? 2 : len7 == LEN7_64BIT ? 8 : 0;
    if (len < 2 + ext)
        return 0;
    h->len = ext ? get_be(p + 2, ext) : len7;
    if (ext == 8 && h->len >> 63)
        return -WS_ERR_LENGTH_TOP_BIT;
    if ((ext == 2 && h->len <= LEN7_MAX) || (ext == 8 && h->len <= UINT16_MAX))
        return -WS_ERR_LENGTH_NOT_MINIMAL;
    need = 2 + ext + (h->masked ? MASK_LEN : 0);
    if (len < need)
        return 0;
    if (h->masked)
        memcpy(h->mask, p + 2 + ext, MASK_LEN);
    else
        memset(h->mask, 0, MASK_LEN);
    return (int)need;
}

/* Eight bytes per step with the key repeated twice; memcpy keeps the loads
 * legal at any alignment and compiles to plain moves. */
void ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
    uint8_t key[8];
    uint64_t k, w;
    size_t i = 0;

    for (size_t j = 0; j < sizeof(key); j++)
        key[j] = mask[(offset + j) & 3];
    memcpy(&k, key, sizeof(k));
    for (; len - i >= 8; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++)
        p[i] ^= key[i & 3];
}

/* ---- the reader ---- */

static const uint8_t empty[1];

void ws_reader_init(struct ws_reader *r, size_t max_message, bool allow_rsv1)
{
    memset(r, 0, sizeof(*r));
    r->max_message = max_message;
    r->allow_rsv1 = allow_rsv1;
    r->state = RD_HEADER;
}

void ws_reader_free(struct ws_reader *r)
{
    free(r->ctl);
    r->ctl = NULL;
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->msg_len = 0;
}

static enum ws_ev fail(struct ws_reader *r, struct ws_event *ev, enum ws_err err)
{
    r->state = RD_FAILED;
    r->err = err;
    memset(ev, 0, sizeof(*ev));
    ev->type = WS_EV_ERROR;
    ev->err = err;
    ev->code = ws_err_close_code(err);
    return WS_EV_ERROR;
}

/* The rules that depend on our role (server: frames are masked), on the
 * extensions, and on the message already open. */
static enum ws_err frame_rule(const struct ws_reader *r, const struct ws_frame_header *h)
{
    bool control = h->opcode & OP_CONTROL;

    if (!h->masked)
        return WS_ERR_UNMASKED;
    if (h->rsv2 || h->rsv3)
        return WS_ERR_RSV_BITS;
    /* RFC 7692 §6: RSV1 marks a compressed message on its first frame only. */
    if (h->rsv1 && (!r->allow_rsv1 || control || h->opcode == WS_OP_CONT))
        return WS_ERR_RSV_BITS;
    if (control)
        return WS_ERR_NONE;
    if (h->opcode == WS_OP_CONT && !r->in_message)
        return WS_ERR_CONT_WITHOUT_START;
    if (h->opcode != WS_OP_CONT && r->in_message)
        return WS_ERR_DATA_IN_FRAGMENTED;
    if (h->len > SIZE_MAX - r->msg_len)
        return WS_ERR_TOO_BIG;
    if (r->max_message && h->len > r->max_message - r->msg_len)
        return WS_ERR_TOO_BIG;
    return WS_ERR_NONE;
}

static bool checks_utf8(uint8_t opcode, bool rsv1)
{
    return opcode == WS_OP_TEXT && !rsv1;
}

static void start_message(struct ws_reader *r)
{
    r->in_message = true;
    r->msg_opcode = r->fh.opcode;
    r->msg_rsv1 = r->fh.rsv1;
    ws_utf8_init(&r->utf8);
}

/* Grows by doubling, so a long message costs O(log n) reallocations, and
 * stops at max_message (frame_rule keeps need within it). */
static bool reserve(struct ws_reader *r, size_t need)
{
    size_t cap = r->cap ? r->cap : REASSEMBLY_MIN;
    uint8_t *p;

    if (need <= r->cap)
        return true;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (r->max_message && cap > r->max_message && need <= r->max_message)
        cap = r->max_message;
    p = realloc(r->buf, cap);
    if (!p)
        return false;
    r->buf = p;
    r->cap = cap;
    return true;
}

static enum ws_err append(struct ws_reader *r, const uint8_t *p, size_t n)
{
    if (checks_utf8(r->msg_opcode, r->msg_rsv1) && !ws_utf8_feed(&r->utf8, p, n))
        return WS_ERR_BAD_UTF8;
    if (!reserve(r, r->msg_len + n))
        return WS_ERR_NO_MEMORY;
    memcpy(r->buf + r->msg_len, p, n);
    r->msg_len += n;
    return WS_ERR_NONE;
}

/* Called on the next call after a message was handed out of buf. */
static void release_message(struct ws_reader *r)
{
    r->delivered = false;
    r->msg_len = 0;
    if (r->cap > WS_READER_KEEP)
        ws_reader_free(r);
}

static enum ws_ev data_event(struct ws_event *ev, uint8_t opcode, bool rsv1, const uint8_t *p,
                             size_t len)
{
    ev->type = opcode == WS_OP_TEXT ? WS_EV_TEXT : WS_EV_BINARY;
    ev->rsv1 = rsv1;
    ev->data = p;
    ev->len = len;
    return ev->type;
}

/* A one-frame message lying whole in the caller's buffer. */
static enum ws_ev frame_message(struct ws_reader *r, const uint8_t *p, struct ws_event *ev)
{
    size_t len = (size_t)r->fh.len;

    if (checks_utf8(r->fh.opcode, r->fh.rsv1) && !ws_utf8_valid(p, len))
        return fail(r, ev, WS_ERR_BAD_UTF8);
    return data_event(ev, r->fh.opcode, r->fh.rsv1, p, len);
}

/* The message gathered in buf, its last frame just read. */
static enum ws_ev buffered_message(struct ws_reader *r, struct ws_event *ev)
{
    if (checks_utf8(r->msg_opcode, r->msg_rsv1) && !ws_utf8_complete(&r->utf8))
        return fail(r, ev, WS_ERR_BAD_UTF8);
    r->in_message = false;
    r->delivered = true;
    return data_event(ev, r->msg_opcode, r->msg_rsv1, r->buf ? r->buf : empty, r->msg_len);
}

static enum ws_ev control_event(struct ws_reader *r, const uint8_t *p, size_t len,
                                struct ws_event *ev)
{
    ev->data = p;
    ev->len = len;
    if (r->fh.opcode == WS_OP_PING)
        return ev->type = WS_EV_PING;
    if (r->fh.opcode == WS_OP_PONG)
        return ev->type = WS_EV_PONG;
    if (len == 1)
        return fail(r, ev, WS_ERR_CLOSE_ONE_BYTE);
    if (len == 0) {
        ev->code = WS_CLOSE_NO_STATUS;
    } else {
        ev->code = (uint16_t)get_be(p, CLOSE_CODE_LEN);
        if (!ws_close_code_receivable(ev->code))
            return fail(r, ev, WS_ERR_CLOSE_BAD_CODE);
        if (!ws_utf8_valid(p + CLOSE_CODE_LEN, len - CLOSE_CODE_LEN))
            return fail(r, ev, WS_ERR_CLOSE_BAD_UTF8);
        ev->data = p + CLOSE_CODE_LEN;
        ev->len = len - CLOSE_CODE_LEN;
    }
    r->state = RD_CLOSED;
    return ev->type = WS_EV_CLOSE;
}

enum ws_ev ws_reader_next(struct ws_reader *r, uint8_t *buf, size_t len, size_t *used,
                          struct ws_event *ev)
{
    size_t off = 0;

    memset(ev, 0, sizeof(*ev));
    *used = 0;
    if (r->delivered)
        release_message(r);
    if (r->state == RD_FAILED)
        return fail(r, ev, r->err);
    if (r->state == RD_CLOSED) {
        *used = len;
        return WS_EV_NONE;
    }
    for (;;) {
        bool control;
        uint64_t pos;
        size_t n;
        uint8_t *p;

        if (r->state == RD_HEADER) {
            int hl = ws_frame_header_parse(buf + off, len - off, &r->fh);
            enum ws_err err;

            if (hl == 0)
                break;
            err = hl < 0 ? (enum ws_err)(-hl) : frame_rule(r, &r->fh);
            if (err) {
                *used = off;
                return fail(r, ev, err);
            }
            off += (size_t)hl;
            control = r->fh.opcode & OP_CONTROL;
            if (r->fh.len <= len - off && (control || (r->fh.fin && !r->in_message))) {
                p = buf + off;
                ws_mask(p, (size_t)r->fh.len, r->fh.mask, 0);
                *used = off + (size_t)r->fh.len;
                return control ? control_event(r, p, (size_t)r->fh.len, ev)
                               : frame_message(r, p, ev);
            }
            if (!control && !r->in_message)
                start_message(r);
            r->left = r->fh.len;
            r->state = RD_PAYLOAD;
        }
        control = r->fh.opcode & OP_CONTROL;
        pos = r->fh.len - r->left;
        n = r->left < len - off ? (size_t)r->left : len - off;
        p = buf + off;
        if (n > 0) {
            ws_mask(p, n, r->fh.mask, pos);
            if (control) {
                if (!r->ctl && !(r->ctl = malloc(WS_CONTROL_MAX))) {
                    *used = off + n;
                    return fail(r, ev, WS_ERR_NO_MEMORY);
                }
                memcpy(r->ctl + pos, p, n);
            } else {
                enum ws_err err = append(r, p, n);

                if (err) {
                    *used = off + n;
                    return fail(r, ev, err);
                }
            }
            off += n;
            r->left -= n;
        }
        if (r->left > 0)
            break;
        r->state = RD_HEADER;
        if (control) {
            *used = off;
            return control_event(r, r->ctl, (size_t)r->fh.len, ev);
        }
        if (r->fh.fin) {
            *used = off;
            return buffered_message(r, ev);
        }
    }
    *used = off;
    return WS_EV_NONE;
}

/* ---- builders ---- */

static size_t header_build(uint8_t *out, uint8_t b0, uint8_t b1_mask, uint64_t len)
{
    out[0] = b0;
    if (len <= LEN7_MAX) {
        out[1] = b1_mask | (uint8_t)len;
        return 2;
    }
    if (len <= UINT16_MAX) {
        out[1] = b1_mask | LEN7_16BIT;
        put_be(out + 2, len, 2);
        return 4;
    }
    out[1] = b1_mask | LEN7_64BIT;
    put_be(out + 2, len, 8);
    return 10;
}

static uint8_t first_byte(bool fin, uint8_t opcode, bool rsv1)
{
    return (uint8_t)((fin ? B0_FIN : 0) | (rsv1 ? B0_RSV1 : 0) | (opcode & B0_OPCODE));
}

size_t ws_frame_header_build(uint8_t out[WS_SERVER_HEADER_MAX], bool fin, uint8_t opcode, bool rsv1,
                             uint64_t payload_len)
{
    return header_build(out, first_byte(fin, opcode, rsv1), 0, payload_len);
}

static size_t control_build(uint8_t *out, size_t cap, uint8_t opcode, const uint8_t *payload,
                            size_t len)
{
    size_t hl;

    if (len > WS_CONTROL_MAX || cap < 2 + len)
        return 0;
    hl = header_build(out, first_byte(true, opcode, false), 0, len);
    if (len > 0)
        memcpy(out + hl, payload, len);
    return hl + len;
}

size_t ws_frame_build_control(uint8_t *out, size_t cap, uint8_t opcode, const uint8_t *payload,
                              size_t len)
{
    if (opcode != WS_OP_PING && opcode != WS_OP_PONG)
        return 0;
    return control_build(out, cap, opcode, payload, len);
}

size_t ws_frame_build_close(uint8_t *out, size_t cap, uint16_t code, const char *reason)
{
    uint8_t payload[WS_CONTROL_MAX];
    size_t rlen = reason ? strnlen(reason, WS_CLOSE_REASON_MAX + 1) : 0;

    if (code == 0)
        return rlen ? 0 : control_build(out, cap, WS_OP_CLOSE, NULL, 0);
    if (rlen > WS_CLOSE_REASON_MAX)
        return 0;
    put_be(payload, code, CLOSE_CODE_LEN);
    if (rlen > 0)
        memcpy(payload + CLOSE_CODE_LEN, reason, rlen);
    return control_build(out, cap, WS_OP_CLOSE, payload, CLOSE_CODE_LEN + rlen);
}

size_t ws_frame_build_masked(uint8_t *out, size_t cap, bool fin, uint8_t opcode,
                             const uint8_t *payload, size_t len, const uint8_t mask[4])
{
    uint8_t hdr[WS_CLIENT_HEADER_MAX];
    size_t hl = header_build(hdr, first_byte(fin, opcode, false), B1_MASK, len);

    memcpy(hdr + hl, mask, MASK_LEN);
    hl += MASK_LEN;
    if (cap < hl || len > cap - hl)
        return 0;
    memcpy(out, hdr, hl);
    if (len > 0) {
        memcpy(out + hl, payload, len);
        ws_mask(out + hl, len, mask, 0);
    }
    return hl + len;
}
