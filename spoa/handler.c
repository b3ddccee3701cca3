/*
 * NOTIFY -> ACK: walks the frame's messages and hands each to its handler.
 * Unknown messages are acknowledged without actions (HAProxy may be
 * configured with more messages than this agent knows) and counted.
 *
 * A route-room that must ask Redis leaves the ACK open: the caller finishes
 * it with spoa_finish_ack when the answer is in, so one NOTIFY still gets
 * one ACK holding every message's answer.
 */
#include "spoa/handler.h"

#include <string.h>

#include "spoa/stats.h"

static bool str_is(struct spop_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int skip_args(struct spop_reader *r, uint8_t nargs)
{
    for (uint8_t i = 0; i < nargs; i++) {
        struct spop_str k;
        struct spop_data v;
        if (spop_read_kv(r, &k, &v) != 1)
            return -1;
    }
    return 0;
}

/* The ACK sent when the actions do not fit: check-token fails closed, and
 * route-room sets nothing (HAProxy falls back to its stick table). */
static size_t overflow_ack(uint8_t *out, size_t limit, uint64_t stream_id, uint64_t frame_id,
                           bool checked_token, const struct spoa_config *cfg)
{
    rr_inc(&spoa_stats.ack_overflows);
    struct spop_writer w;
    spop_writer_init(&w, out, limit);
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, stream_id, frame_id);
    if (checked_token)
        spoa_check_token_fail_closed(&w, cfg);
    return spop_frame_end(&w);
}

enum spop_status spoa_handle_notify_async(struct spoa_ctx *ctx, const struct spop_frame *f,
                                          uint8_t *out, size_t cap, uint32_t max_frame,
                                          size_t *out_len, struct spoa_deferred *d)
{
    size_t limit = (size_t)max_frame + SPOP_LEN_PREFIX;
    if (limit > cap)
        limit = cap;
    if (d)
        d->pending = false;

    struct spop_writer w;
    spop_writer_init(&w, out, limit);
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, f->stream_id, f->frame_id);

    struct spop_reader r;
    spop_reader_init(&r, f->payload, f->payload_len);
    bool checked_token = false;
    for (;;) {
        struct spop_str name;
        uint8_t nargs;
        int rc = spop_read_message(&r, &name, &nargs);
        if (rc == 0)
            break;
        if (rc < 0)
            return SPOP_ST_INVALID;
        if (str_is(name, "check-token")) {
            if (spoa_check_token(ctx, &r, nargs, &w) < 0)
                return SPOP_ST_INVALID;
            checked_token = true;
        } else if (str_is(name, "route-room")) {
            if (spoa_route_room(ctx, &r, nargs, &w, d) < 0)
                return SPOP_ST_INVALID;
        } else if (str_is(name, "check-drain")) {
            if (spoa_check_drain(ctx, &r, nargs, &w) < 0)
                return SPOP_ST_INVALID;
        } else {
            rr_inc(&spoa_stats.unknown_messages);
            if (skip_args(&r, nargs) < 0)
                return SPOP_ST_INVALID;
        }
    }

    if (d && d->pending) {
        d->checked_token = checked_token;
        d->stream_id = f->stream_id;
        d->frame_id = f->frame_id;
        if (w.overflow) {
            /* Already too big: answer now, without waiting for the route. */
            d->pending = false;
        } else {
            *out_len = w.off;
            return SPOP_ST_NONE;
        }
    }
    size_t n = spop_frame_end(&w);
    if (n == 0) {
        n = overflow_ack(out, limit, f->stream_id, f->frame_id, checked_token, ctx->cfg);
        if (n == 0)
            return SPOP_ST_TOO_BIG;
    }
    *out_len = n;
    return SPOP_ST_NONE;
}

enum spop_status spoa_handle_notify(struct spoa_ctx *ctx, const struct spop_frame *f, uint8_t *out,
                                    size_t cap, uint32_t max_frame, size_t *out_len)
{
    return spoa_handle_notify_async(ctx, f, out, cap, max_frame, out_len, NULL);
}

size_t spoa_finish_ack(uint8_t *buf, size_t len, size_t cap, const struct spoa_deferred *d,
                       const struct spoa_config *cfg, const struct spoa_route_answer *a)
{
    struct spop_writer w;
    spop_writer_init(&w, buf, cap);
    w.off = len;
    w.frame_start = 0;
    spoa_route_write(&w, a);
    size_t n = spop_frame_end(&w);
    if (n == 0)
        n = overflow_ack(buf, cap, d->stream_id, d->frame_id, d->checked_token, cfg);
    return n;
}
