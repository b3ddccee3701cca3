/*
 * The route-room and check-drain messages: read their args, refuse what no
 * owner lookup can fix (an invalid room name, a room the token's `rooms`
 * claim does not allow), and answer from the worker's router what it knows
 * without Redis (cached owners, the registry snapshot). Redis round trips
 * are agent.c's, through spoa/router.c.
 *
 * route-room args: room (url_param(room)), sub (var(sess.rr.sub), unused for
 * now), rooms (var(sess.rr.rooms): the claim's JSON text). Sets txn.rr.server,
 * txn.rr.moved, txn.rr.room_err. check-drain args: server, and an optional
 * key to place the replacement by (default: the server name). Sets
 * txn.rr.draining and, when draining, txn.rr.server.
 */
#include <jansson.h>
#include <string.h>

#include "spoa/handler.h"
#include "spoa/stats.h"

static bool str_is(struct spop_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static bool is_text(const struct spop_data *v)
{
    return v->type == SPOP_DATA_STR || v->type == SPOP_DATA_BIN;
}

/* Reads args by name into out[i] for names[i]; absent or non-text args stay empty. */
static int read_args(struct spop_reader *r, uint8_t nargs, const char *const *names, size_t n,
                     struct spop_str *out)
{
    memset(out, 0, n * sizeof(*out));
    for (uint8_t i = 0; i < nargs; i++) {
        struct spop_str k;
        struct spop_data v;
        if (spop_read_kv(r, &k, &v) != 1)
            return -1;
        for (size_t j = 0; j < n; j++)
            if (is_text(&v) && str_is(k, names[j]))
                out[j] = v.u.str;
    }
    return 0;
}

static void set_txn_str(struct spop_writer *w, const char *name, const char *value)
{
    struct spop_data d = spop_str_data(value, strlen(value));
    spop_write_set_var(w, SPOP_SCOPE_TXN, name, &d);
}

void spoa_route_write(struct spop_writer *w, const struct spoa_route_answer *a)
{
    if (a->err) {
        set_txn_str(w, "room_err", a->err);
        return;
    }
    if (!a->server)
        return;
    set_txn_str(w, "server", a->server);
    struct spop_data moved = spop_bool_data(a->moved);
    spop_write_set_var(w, SPOP_SCOPE_TXN, "moved", &moved);
}

/* A `rooms` claim that is not a JSON array is no claim, as in the backend. */
static bool room_allowed(struct spop_str claim, struct spop_str room)
{
    if (claim.len == 0)
        return true;
    json_t *v = json_loadb(claim.ptr, claim.len, 0, NULL);
    bool ok = !json_is_array(v) || rr_room_allowed(v, room.ptr, room.len);
    json_decref(v);
    return ok;
}

static void answer(struct spop_writer *w, const struct spoa_route_answer *a,
                   enum spoa_route_result res)
{
    rr_inc(&spoa_stats.route_room[res]);
    spoa_route_write(w, a);
}

int spoa_route_room(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                    struct spop_writer *w, struct spoa_deferred *d)
{
    static const char *const names[] = {"room", "rooms"};
    struct spop_str arg[2];
    if (read_args(r, nargs, names, 2, arg) < 0)
        return -1;
    struct spop_str room = arg[0];
    struct spoa_route_answer a = {0};

    if (!rr_room_name_valid(room.ptr, room.len)) {
        a.err = "invalid_room";
        answer(w, &a, ROUTE_INVALID_ROOM);
    } else if (!room_allowed(arg[1], room)) {
        a.err = "forbidden_room";
        answer(w, &a, ROUTE_FORBIDDEN_ROOM);
    } else if (!ctx->router) {
        answer(w, &a, ROUTE_OFF);
    } else if (spoa_router_cached(ctx->router, room.ptr, room.len, &a)) {
        answer(w, &a, ROUTE_CACHED);
    } else if (d && !d->pending && spoa_router_ready(ctx->router)) {
        d->pending = true;
        d->room_len = room.len;
        memcpy(d->room, room.ptr, room.len);
        d->room[room.len] = '\0';
    } else {
        answer(w, &a, ROUTE_UNAVAILABLE);
    }
    return 0;
}

int spoa_check_drain(struct spoa_ctx *ctx, struct spop_reader *r, uint8_t nargs,
                     struct spop_writer *w)
{
    static const char *const names[] = {"server", "key"};
    struct spop_str arg[2];
    if (read_args(r, nargs, names, 2, arg) < 0)
        return -1;
    struct spop_str server = arg[0], key = arg[1].len ? arg[1] : arg[0];
    const char *replacement = NULL;
    enum spoa_drain_result res = DRAIN_UNKNOWN;
    if (ctx->router && server.len > 0)
        res = spoa_router_draining(ctx->router, server.ptr, server.len, key.ptr, key.len,
                                   &replacement);
    rr_inc(&spoa_stats.check_drain[res]);
    struct spop_data draining = spop_bool_data(res == DRAIN_DRAINING);
    spop_write_set_var(w, SPOP_SCOPE_TXN, "draining", &draining);
    if (replacement)
        set_txn_str(w, "server", replacement);
    return 0;
}
