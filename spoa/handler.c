/*
 * NOTIFY -> ACK: walks the frame's messages and hands each to its handler.
 * Unknown messages are acknowledged without actions (HAProxy may be
 * configured with more messages than this agent knows) and counted.
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

enum spop_status spoa_handle_notify(struct spoa_ctx *ctx, const struct spop_frame *f,
                                    uint8_t *out, size_t cap, uint32_t max_frame,
                                    size_t *out_len)
{
    size_t limit = (size_t)max_frame + SPOP_LEN_PREFIX;
    if (limit > cap)
        limit = cap;

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
        } else {
            rr_inc(&spoa_stats.unknown_messages);
            if (skip_args(&r, nargs) < 0)
                return SPOP_ST_INVALID;
        }
    }

    size_t n = spop_frame_end(&w);
    if (n == 0) {
        /* The actions did not fit: answer so that HAProxy fails closed. */
        rr_inc(&spoa_stats.ack_overflows);
        spop_writer_init(&w, out, limit);
        spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, f->stream_id, f->frame_id);
        if (checked_token)
            spoa_check_token_fail_closed(&w, ctx->cfg);
        n = spop_frame_end(&w);
        if (n == 0)
            return SPOP_ST_TOO_BIG;
    }
    *out_len = n;
    return SPOP_ST_NONE;
}
