/*
 * What the agent answers: turns one NOTIFY frame's messages into the actions
 * of its ACK. No sockets here; the caller passes the clock and a writer.
 * Message handlers live one per file (check_token.c, ...).
 */
#ifndef RR_SPOA_HANDLER_H
#define RR_SPOA_HANDLER_H

#include <stdint.h>

#include "lib/jwt_sig.h"
#include "lib/room_access.h"
#include "lib/token_cache.h"
#include "spoa/agent.h"
#include "spoa/router.h"
#include "spoa/spop.h"

/* What a handler may use: shared read-only config and the worker's own cache,
 * signature state and router. */
struct spoa_ctx {
    const struct spoa_config *cfg;
    struct rr_token_cache *cache;   /* this worker's */
    int64_t now;                    /* unix seconds */
    struct spoa_router *router;     /* this worker's; NULL with --redis none */
    struct rr_jwt_sig_ctx *sig_ctx; /* this worker's */
};

/* A route-room whose answer waits for Redis (spoa_handle_notify_async). */
struct spoa_deferred {
    bool pending;
    bool checked_token; /* the frame also had a check-token */
    uint64_t stream_id, frame_id;
    size_t room_len;
    char room[RR_ROOM_NAME_MAX + 1];
};

/*
 * Writes the whole ACK frame for NOTIFY `f` into w (FIN set, ids echoed).
 * Returns SPOP_ST_NONE, or SPOP_ST_INVALID when the payload is malformed (the
 * caller disconnects). An ACK that would not fit in `max_frame` is replaced by
 * a fail-closed one (auth=false, auth_err=too_large) and counted. route-room
 * is answered from the owner cache only (a miss sets no server).
 */
enum spop_status spoa_handle_notify(struct spoa_ctx *ctx, const struct spop_frame *f, uint8_t *out,
                                    size_t cap, uint32_t max_frame, size_t *out_len);

/*
 * As spoa_handle_notify, but a route-room the owner cache cannot answer is
 * left to the caller: d->pending is set and `out` holds the ACK so far (the
 * other messages' actions, *out_len bytes), not yet ended. The caller asks
 * the router, then ends it with spoa_finish_ack. One route-room per frame
 * waits; another in the same frame is answered without a server.
 */
enum spop_status spoa_handle_notify_async(struct spoa_ctx *ctx, const struct spop_frame *f,
                                          uint8_t *out, size_t cap, uint32_t max_frame,
                                          size_t *out_len, struct spoa_deferred *d);

/* Appends route-room's answer to an ACK left open and ends the frame; if it
 * would not fit in cap, the ACK is rewritten without it (and check-token's
 * answer fails closed). Returns the frame's length. */
size_t spoa_finish_ack(uint8_t *buf, size_t len, size_t cap, const struct spoa_deferred *d,
                       const struct spoa_config *cfg, const struct spoa_route_answer *a);

/* route-room (route_room.c): reads its args and writes txn.rr.room_err for an
 * invalid or forbidden room, the cached owner, or nothing when there is no
 * router (or it is not ready). With d, a cache miss is deferred into d
 * instead. Returns 0, or -1 on malformed args. */
int spoa_route_room(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                    struct spop_writer *w, struct spoa_deferred *d);

/* The actions of a route-room answer: txn.rr.server and txn.rr.moved, or
 * txn.rr.room_err. */
void spoa_route_write(struct spop_writer *w, const struct spoa_route_answer *a);

/* check-drain (route_room.c): txn.rr.draining, and txn.rr.server when the
 * named server is draining and a replacement exists. */
int spoa_check_drain(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                     struct spop_writer *w);

/* check-token (check_token.c): reads nargs KV args from r, writes set-var /
 * unset-var actions to w. Returns 0, or -1 on malformed args. */
int spoa_check_token(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                     struct spop_writer *w);

/* The fail-closed answer used when a check-token answer cannot be sent whole. */
void spoa_check_token_fail_closed(struct spop_writer *w, const struct spoa_config *cfg);

#endif
