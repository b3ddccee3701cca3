/*
 * What the agent answers: turns one NOTIFY frame's messages into the actions
 * of its ACK. No sockets here; the caller passes the clock and a writer.
 * Message handlers live one per file (check_token.c, ...).
 */
#ifndef RR_SPOA_HANDLER_H
#define RR_SPOA_HANDLER_H

#include <stdint.h>

#include "spoa/agent.h"
#include "spoa/spop.h"
#include "lib/token_cache.h"

/* What a handler may use: shared read-only config and the worker's own cache. */
struct spoa_ctx {
    const struct spoa_config *cfg;
    struct rr_token_cache *cache; /* this worker's */
    int64_t now;                  /* unix seconds */
};

/*
 * Writes the whole ACK frame for NOTIFY `f` into w (FIN set, ids echoed).
 * Returns SPOP_ST_NONE, or SPOP_ST_INVALID when the payload is malformed (the
 * caller disconnects). An ACK that would not fit in `max_frame` is replaced by
 * a fail-closed one (auth=false, auth_err=too_large) and counted.
 */
enum spop_status spoa_handle_notify(struct spoa_ctx *ctx, const struct spop_frame *f,
                                    uint8_t *out, size_t cap, uint32_t max_frame,
                                    size_t *out_len);

/* check-token (check_token.c): reads nargs KV args from r, writes set-var /
 * unset-var actions to w. Returns 0, or -1 on malformed args. */
int spoa_check_token(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                     struct spop_writer *w);

/* The fail-closed answer used when a check-token answer cannot be sent whole. */
void spoa_check_token_fail_closed(struct spop_writer *w, const struct spoa_config *cfg);

#endif
