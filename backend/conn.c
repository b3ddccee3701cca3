/*
 * The WebSocket session of one connection: frames in (ws_frame.c's reader),
 * the client protocol (proto.c) on top, room membership, publish through the
 * bus, and delivery of room events. Everything a client can get wrong ends
 * here with an `error` message or a close code, and a count in
 * roomrelay_rejected_total.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "backend/proto.h"
#include "backend/server_int.h"
#include "backend/stats.h"
#include "lib/log.h"
#include "lib/room_access.h"

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Frames a JSON text as one unfragmented text frame in a new buffer; rsv1
 * marks it compressed. */
static struct wsbuf *frame_text(const void *text, size_t len, bool rsv1)
{
    uint8_t hdr[WS_SERVER_HEADER_MAX];
    size_t hl = ws_frame_header_build(hdr, true, WS_OP_TEXT, rsv1, len);
    struct wsbuf *b = wsbuf_new(hl + len);
    if (!b)
        return NULL;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, text, len);
    return b;
}

static struct wsbuf *text_frame(const char *text, size_t len)
{
    return frame_text(text, len, false);
}

/* The message compressed once for every member that negotiated
 * permessage-deflate. */
static struct wsbuf *deflated_frame(struct server *s, const char *text, size_t len)
{
    const uint8_t *z;
    size_t zlen;
    if (pmd_compress(&s->deflater, (const uint8_t *)text, len, &z, &zlen) < 0)
        return NULL;
    return frame_text(z, zlen, true);
}

/* Sends one server message built in t to this connection only. */
static int send_text(struct conn *c, struct rr_text *t)
{
    if (t->oom) {
        rr_text_free(t);
        conn_ws_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return -1;
    }
    struct wsbuf *b = text_frame(t->p, t->len);
    rr_text_free(t);
    if (!b) {
        /* Not conn_close_now: bus callbacks send too, and the connection
         * must outlive them. */
        conn_ws_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return -1;
    }
    int rc = conn_queue(c, b);
    wsbuf_unref(b);
    return rc;
}

static int send_error(struct conn *c, const char *code, const char *message, const char *id)
{
    struct rr_text t = {0};
    proto_error(&t, code, message, id && *id ? id : NULL);
    return send_text(c, &t);
}

/* ---- membership ---- */

/* A new member learns where the room stands from the bus: the greeting
 * (welcome for the home room, joined for a join) goes out after the bus's
 * first answer, then the missed events when `since` was given. Live events
 * that arrive meanwhile are held back (server_on_event) and fetched again
 * from the history until the member has caught up with them, so there is no
 * gap and no duplicate at the seam. */
struct sync_req {
    struct room_member *m; /* NULL once the member left */
    bool first;            /* no answer yet: the greeting is still to send */
    bool home;             /* the handshake's room: greet with welcome */
    bool has_since;
    uint64_t since;
};

/* The member event to this backend's members of r but `skip` (NULL: all),
 * when r is small enough here. A member not greeted yet (welcome or joined
 * still to come) gets none: nothing precedes the greeting, and presence
 * tells it who is there. */
static void deliver_member(struct server *s, struct room *r, struct conn *skip, const char *text,
                           size_t len)
{
    int64_t max = s->cfg->presence_max_members;
    if (max <= 0 || r->n_members > (uint64_t)max)
        return;
    struct wsbuf *b = text_frame(text, len);
    if (!b)
        return;
    for (uint32_t i = r->n_members; i-- > 0;) {
        if (i >= r->n_members)
            continue;
        struct room_member *m = r->members[i];
        if (m->conn != skip && !(m->sync && m->sync->first))
            conn_queue(m->conn, b);
    }
    wsbuf_unref(b);
}

static struct room_member *find_member(struct conn *c, const char *room, size_t len)
{
    for (uint16_t i = 0; i < c->n_rooms; i++) {
        struct room *r = c->rooms[i]->room;
        if (r->name_len == len && memcmp(r->name, room, len) == 0)
            return c->rooms[i];
    }
    return NULL;
}

/* Whether another connection of c's sub is in r here. */
static bool sub_elsewhere(const struct conn *c, const struct room *r)
{
    for (uint32_t i = 0; i < r->n_members; i++) {
        const struct conn *o = r->members[i]->conn;
        if (o != c && strcmp(o->sub, c->sub) == 0)
            return true;
    }
    return false;
}

/* c joined or left r: its presence in the cluster, and the member event to
 * the other members, here and (through the bus) on the other backends. */
static void announce_member(struct conn *c, struct room *r, bool joined)
{
    struct server *s = c->srv;
    int64_t max = s->cfg->presence_max_members;
    bool present = joined || sub_elsewhere(c, r);
    struct rr_text t = {0};
    if (max > 0 && r->n_members <= (uint64_t)max)
        proto_member(&t, r->name, c->sub, joined);
    const char *ev = t.oom ? NULL : t.p;
    s->bus->ops->member(s->bus, r, c->sub, present, ev, ev ? t.len : 0);
    if (ev)
        deliver_member(s, r, c, ev, t.len);
    rr_text_free(&t);
}

void server_on_member(void *srv, struct room *r, const char *text, size_t len)
{
    deliver_member(srv, r, NULL, text, len);
}

void server_presence_refresh(struct server *s)
{
    const char **subs = NULL;
    size_t cap = 0;
    for (struct room *r = room_next(s->rooms, NULL); r; r = room_next(s->rooms, r)) {
        if (r->n_members > cap) {
            const char **ns = realloc(subs, r->n_members * sizeof(*subs));
            if (!ns)
                break;
            subs = ns;
            cap = r->n_members;
        }
        for (uint32_t i = 0; i < r->n_members; i++)
            subs[i] = r->members[i]->conn->sub;
        s->bus->ops->presence_refresh(s->bus, r, subs, r->n_members);
    }
    free(subs);
}

static void member_free(struct conn *c, struct room_member *m)
{
    if (m == &c->home)
        memset(m, 0, sizeof(*m));
    else
        free(m);
}

/* Joins room `name`; returns the membership, or NULL with *why set. */
static struct room_member *join_room(struct conn *c, const char *name, size_t len, const char **why)
{
    struct server *s = c->srv;
    if (c->n_rooms >= s->cfg->max_rooms_per_conn) {
        *why = "too_many_rooms";
        return NULL;
    }
    if (c->n_rooms == c->cap_rooms) {
        uint16_t ncap = c->cap_rooms ? (uint16_t)(c->cap_rooms * 2) : 1;
        struct room_member **nr = realloc(c->rooms, ncap * sizeof(struct room_member *));
        if (!nr) {
            *why = "internal_error";
            return NULL;
        }
        c->rooms = nr;
        c->cap_rooms = ncap;
    }
    /* The first room's membership lives in the connection itself. */
    bool home = c->home.conn == NULL;
    struct room_member *m = home ? &c->home : calloc(1, sizeof(*m));
    struct room *r = m ? room_get(s->rooms, name, len) : NULL;
    if (!r) {
        member_free(c, m);
        *why = "internal_error";
        return NULL;
    }
    bool first = r->n_members == 0;
    int idx = room_add_member(r, m);
    if (idx < 0) {
        if (first)
            room_remove(s->rooms, r);
        member_free(c, m);
        *why = "internal_error";
        return NULL;
    }
    m->conn = c;
    m->room = r;
    m->index = (uint32_t)idx;
    if (first)
        s->bus->ops->room_open(s->bus, r);
    c->rooms[c->n_rooms++] = m;
    announce_member(c, r, true);
    return m;
}

static void leave_room(struct conn *c, uint16_t i)
{
    struct server *s = c->srv;
    struct room_member *m = c->rooms[i];
    struct room *r = m->room;
    if (m->sync)
        m->sync->m = NULL;
    announce_member(c, r, false);
    struct room_member *moved = room_remove_member(r, m->index);
    if (moved)
        moved->index = m->index;
    c->rooms[i] = c->rooms[--c->n_rooms];
    member_free(c, m);
    if (r->n_members == 0) {
        s->bus->ops->room_close(s->bus, r);
        room_remove(s->rooms, r);
    }
}

/* ---- delivery ---- */

/* One event to one member (a replay from the history). */
static void deliver_one(struct room_member *m, uint64_t seq, const char *text, size_t len)
{
    struct conn *c = m->conn;
    struct wsbuf *b = c->pmd ? deflated_frame(c->srv, text, len) : text_frame(text, len);
    if (!b) {
        conn_ws_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    m->last_seq = seq;
    conn_queue(c, b);
    wsbuf_unref(b);
}

/* A numbered room event from the bus: framed once, queued to every member
 * that has not had this seq yet. A member still catching up gets it from
 * the history instead (sync_cb): only the highest such seq is noted. */
void server_on_event(void *srv, struct room *r, uint64_t seq, const char *text, size_t len)
{
    struct server *s = srv;
    rr_inc(&bstats.events);
    if (r->n_members == 0)
        return;
    struct wsbuf *b = text_frame(text, len);
    struct wsbuf *z = NULL; /* made when the first deflate member needs it */
    if (!b) {
        rr_error("out of memory framing a message of room %s", r->name);
        return;
    }
    /* conn_queue may close a slow member, which removes it from the room:
     * walk from the end so the swap-with-last removal skips nobody. */
    uint64_t queued = 0;
    for (uint32_t i = r->n_members; i-- > 0;) {
        if (i >= r->n_members)
            continue;
        struct room_member *m = r->members[i];
        if (m->sync) {
            if (seq > m->held_max)
                m->held_max = seq;
            continue;
        }
        if (seq <= m->last_seq)
            continue;
        m->last_seq = seq;
        if (m->conn->pmd && !z)
            z = deflated_frame(s, text, len);
        if (conn_queue(m->conn, m->conn->pmd && z ? z : b) == 0)
            queued++;
    }
    rr_add(&bstats.deliveries, queued);
    wsbuf_unref(b);
    if (z)
        wsbuf_unref(z);
}

/* ---- catching up ---- */

/* Whether the history answer gives everything after `since`. */
static bool history_complete(uint64_t since, const struct bus_history *h)
{
    if (since >= h->head)
        return since == h->head;
    uint64_t want = since + 1;
    for (size_t i = 0; i < h->n; i++) {
        if (h->events[i].seq > since && h->events[i].seq != want++)
            return false;
    }
    return want - 1 == h->head;
}

static void sync_greet(struct sync_req *q, const struct bus_history *h)
{
    struct room_member *m = q->m;
    struct conn *c = m->conn;
    const char *room = m->room->name;
    size_t recovered = 0;
    for (size_t i = 0; i < h->n; i++)
        recovered += h->events[i].seq > m->last_seq;
    struct rr_text t = {0};
    if (q->home) {
        char session[17];
        snprintf(session, sizeof(session), "%016" PRIx64, c->session);
        proto_welcome(&t, c->srv->cfg->instance_id, session, room, h->head);
        if (send_text(c, &t) < 0 || !q->has_since)
            return;
    }
    proto_joined(&t, room, h->head, q->has_since ? (int64_t)recovered : -1,
                 !q->has_since || history_complete(q->since, h));
    send_text(c, &t);
}

static void sync_cb(void *ctx, const struct bus_history *h);

static void sync_step(struct sync_req *q, bool events, uint64_t after)
{
    struct bus *b = q->m->conn->srv->bus;
    b->ops->history(b, q->m->room, events, after, sync_cb, q);
}

static void sync_cb(void *ctx, const struct bus_history *h)
{
    struct sync_req *q = ctx;
    struct room_member *m = q->m;
    if (!m) {
        free(q);
        return;
    }
    bool progress = q->first;
    if (q->first) {
        m->last_seq = q->has_since && q->since < h->head ? q->since : h->head;
        sync_greet(q, h);
        q->first = false;
    }
    for (size_t i = 0; i < h->n && m->conn->state == CONN_WS; i++) {
        if (h->events[i].seq > m->last_seq) {
            deliver_one(m, h->events[i].seq, h->events[i].text, h->events[i].len);
            progress = true;
        }
    }
    /* Held-back live events the history did not cover yet: ask again. No
     * progress means the history lost them (trimmed): go live. */
    if (m->conn->state == CONN_WS && progress && m->held_max > m->last_seq) {
        sync_step(q, true, m->last_seq);
        return;
    }
    m->sync = NULL;
    free(q);
}

static void sync_start(struct room_member *m, bool home, bool has_since, uint64_t since)
{
    struct sync_req *q = calloc(1, sizeof(*q));
    if (!q) {
        conn_ws_close(m->conn, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    *q = (struct sync_req){
        .m = m, .first = true, .home = home, .has_since = has_since, .since = since};
    m->sync = q;
    m->held_max = 0;
    sync_step(q, has_since, since);
}

/* ---- client messages ---- */

/* A publish or presence request the bus has not answered yet. The bus may
 * answer after the connection is gone: ws_session_end() then clears c. */
struct bus_req {
    struct bus_req *next, **pprev; /* in c->reqs */
    struct conn *c;
    char id[129]; /* publish: the client's id; presence: the room */
};

static struct bus_req *req_new(struct conn *c, const char *id, size_t len)
{
    struct bus_req *p = malloc(sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->id, sizeof(p->id), "%.*s", (int)len, id);
    p->c = c;
    p->next = c->reqs;
    p->pprev = &c->reqs;
    if (p->next)
        p->next->pprev = &p->next;
    c->reqs = p;
    return p;
}

/* The request's connection (NULL if gone), now that it is answered. */
static struct conn *req_done(struct bus_req *p)
{
    struct conn *c = p->c;
    if (c) {
        *p->pprev = p->next;
        if (p->next)
            p->next->pprev = p->pprev;
    }
    return c;
}

static void publish_done(void *ctx, uint64_t seq, bool duplicate, const char *err)
{
    struct bus_req *p = ctx;
    struct conn *c = req_done(p);
    if (c && err) {
        send_error(c, err, "the message could not be published", p->id);
    } else if (c) {
        rr_inc(duplicate ? &bstats.duplicates : &bstats.published);
        struct rr_text t = {0};
        proto_ack(&t, p->id, seq);
        send_text(c, &t);
    }
    free(p);
}

static int on_publish(struct conn *c, struct proto_msg *m)
{
    struct server *s = c->srv;
    char id[129];
    snprintf(id, sizeof(id), "%.*s", (int)m->id_len, m->id);
    struct room_member *mem = find_member(c, m->room, m->room_len);
    if (!mem) {
        stats_reject(REJ_NOT_MEMBER);
        return send_error(c, "not_member", "join the room before publishing to it", id);
    }
    if (!rr_bucket_take(&c->bucket, mono_ns())) {
        if (++c->strikes > s->cfg->rate_limit_strikes) {
            stats_reject(REJ_RATE_LIMIT_CLOSE);
            conn_ws_close(c, WS_CLOSE_POLICY, "publish rate limit exceeded");
            return -1;
        }
        stats_reject(REJ_RATE_LIMITED);
        return send_error(c, "rate_limited", "too many messages; slow down", id);
    }
    c->strikes = 0;
    struct bus_req *p = req_new(c, id, strlen(id));
    if (!p)
        return send_error(c, "internal_error", "out of memory", id);
    s->bus->ops->publish(s->bus, mem->room, c->sub, id, m->data, wall_ms(), publish_done, p);
    return c->state == CONN_WS ? 0 : -1;
}

static int on_join(struct conn *c, struct proto_msg *m)
{
    char room[ROOM_NAME_MAX + 1];
    snprintf(room, sizeof(room), "%.*s", (int)m->room_len, m->room);
    if (!rr_room_allowed(c->rooms_claim, m->room, m->room_len)) {
        stats_reject(REJ_FORBIDDEN_ROOM);
        return send_error(c, "forbidden_room", "your token does not allow this room", NULL);
    }
    struct room_member *mem = find_member(c, m->room, m->room_len);
    if (mem) {
        /* Already a member: where this connection stands. */
        uint64_t seq = mem->last_seq;
        struct rr_text t = {0};
        proto_joined(&t, room, seq, m->has_since ? 0 : -1, !m->has_since || m->since >= seq);
        return send_text(c, &t);
    }
    const char *why = NULL;
    mem = join_room(c, m->room, m->room_len, &why);
    if (!mem) {
        if (strcmp(why, "too_many_rooms") == 0)
            stats_reject(REJ_TOO_MANY_ROOMS);
        return send_error(c, why, "cannot join the room", NULL);
    }
    sync_start(mem, false, m->has_since, m->since);
    return c->state == CONN_WS ? 0 : -1;
}

static int on_leave(struct conn *c, struct proto_msg *m)
{
    for (uint16_t i = 0; i < c->n_rooms; i++) {
        struct room *r = c->rooms[i]->room;
        if (r->name_len == m->room_len && memcmp(r->name, m->room, m->room_len) == 0) {
            leave_room(c, i);
            return 0;
        }
    }
    stats_reject(REJ_NOT_MEMBER);
    return send_error(c, "not_member", "not a member of this room", NULL);
}

/* The bus's answer (cluster-wide), or this backend's own members when it
 * has none. */
static void presence_done(void *ctx, bool ok, const char *const *subs, const char *const *insts,
                          size_t n)
{
    struct bus_req *p = ctx;
    struct conn *c = req_done(p);
    struct room_member *mem = c ? find_member(c, p->id, strlen(p->id)) : NULL;
    free(p);
    if (!c || c->state != CONN_WS)
        return;
    if (!mem) {
        stats_reject(REJ_NOT_MEMBER);
        send_error(c, "not_member", "join the room to see who is in it", NULL);
        return;
    }
    struct room *r = mem->room;
    struct rr_text t = {0};
    proto_presence_begin(&t, r->name);
    for (size_t i = 0; ok && i < n; i++)
        proto_presence_member(&t, subs[i], insts[i]);
    for (uint32_t i = 0; !ok && i < r->n_members; i++)
        proto_presence_member(&t, r->members[i]->conn->sub, c->srv->cfg->instance_id);
    proto_presence_end(&t);
    send_text(c, &t);
}

static int on_presence(struct conn *c, struct proto_msg *m)
{
    struct server *s = c->srv;
    struct room_member *mem = find_member(c, m->room, m->room_len);
    if (!mem) {
        stats_reject(REJ_NOT_MEMBER);
        return send_error(c, "not_member", "join the room to see who is in it", NULL);
    }
    struct bus_req *p = req_new(c, m->room, m->room_len);
    if (!p)
        return send_error(c, "internal_error", "out of memory", NULL);
    s->bus->ops->members(s->bus, mem->room, presence_done, p);
    return c->state == CONN_WS ? 0 : -1;
}

static int on_text(struct conn *c, const uint8_t *data, size_t len)
{
    c->last_msg_ns = mono_ns();
    struct proto_msg m;
    struct proto_error err;
    if (proto_parse((const char *)data, len, &m, &err) < 0) {
        stats_reject(strcmp(err.code, "invalid_room") == 0 ? REJ_BAD_ROOM : REJ_BAD_MESSAGE);
        return send_error(c, err.code, err.message, err.id);
    }
    int rc;
    switch (m.type) {
    case PROTO_JOIN:
        rc = on_join(c, &m);
        break;
    case PROTO_LEAVE:
        rc = on_leave(c, &m);
        break;
    case PROTO_PUBLISH:
        rc = on_publish(c, &m);
        break;
    case PROTO_PRESENCE:
        rc = on_presence(c, &m);
        break;
    case PROTO_PING: {
        struct rr_text t = {0};
        proto_pong(&t);
        rc = send_text(c, &t);
        break;
    }
    default:
        rc = 0;
    }
    proto_msg_free(&m);
    return rc;
}

/* ---- frames ---- */

/* A text message compressed with permessage-deflate: --max-message limits
 * what it inflates to, and the inflated text must be UTF-8. */
static int on_compressed_text(struct conn *c, const uint8_t *data, size_t len)
{
    struct server *s = c->srv;
    size_t cap = (size_t)(s->cfg->max_message > 0 ? s->cfg->max_message : 1 << 24);
    size_t n = 0;
    switch (pmd_inflate(c->pmd, data, len, s->inflate_buf, cap, &n)) {
    case PMD_OK:
        break;
    case PMD_TOO_BIG:
        stats_reject(REJ_TOO_BIG);
        conn_ws_close(c, WS_CLOSE_TOO_BIG, "message too big");
        return -1;
    case PMD_BAD_DATA:
        stats_reject(REJ_PROTOCOL_ERROR);
        conn_ws_close(c, WS_CLOSE_PROTOCOL, "bad compressed data");
        return -1;
    case PMD_NO_MEMORY:
        conn_ws_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return -1;
    }
    if (!ws_utf8_valid(s->inflate_buf, n)) {
        stats_reject(REJ_BAD_UTF8);
        conn_ws_close(c, WS_CLOSE_BAD_DATA, "invalid utf-8");
        return -1;
    }
    return on_text(c, s->inflate_buf, n);
}

static enum reject_reason reject_for(enum ws_err e)
{
    switch (ws_err_close_code(e)) {
    case WS_CLOSE_BAD_DATA:
        return REJ_BAD_UTF8;
    case WS_CLOSE_TOO_BIG:
        return REJ_TOO_BIG;
    default:
        return REJ_PROTOCOL_ERROR;
    }
}

int ws_session_read(struct conn *c, uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (c->state == CONN_WS) {
        struct ws_event ev;
        size_t used = 0;
        enum ws_ev t = ws_reader_next(c->rd, buf + off, len - off, &used, &ev);
        off += used;
        switch (t) {
        case WS_EV_NONE: {
            size_t rest = len - off;
            memcpy(c->pending, buf + off, rest); /* a partial header: < 14 bytes */
            c->npending = (uint8_t)rest;
            return 0;
        }
        case WS_EV_TEXT:
            if (ev.rsv1 ? on_compressed_text(c, ev.data, ev.len) < 0
                        : on_text(c, ev.data, ev.len) < 0)
                return -1;
            break;
        case WS_EV_BINARY:
            stats_reject(REJ_BINARY);
            conn_ws_close(c, WS_CLOSE_UNSUPPORTED, "binary frames are not supported");
            return -1;
        case WS_EV_PING: {
            uint8_t f[WS_CONTROL_FRAME_MAX];
            size_t n = ws_frame_build_control(f, sizeof(f), WS_OP_PONG, ev.data, ev.len);
            if (n && conn_queue_bytes(c, f, n) < 0)
                return -1;
            break;
        }
        case WS_EV_PONG:
            c->awaiting_pong = false;
            break;
        case WS_EV_CLOSE: {
            /* Echo the peer's code (RFC 6455 §5.5.1), then close. */
            uint16_t code = ev.code == WS_CLOSE_NO_STATUS ? 0 : ev.code;
            conn_ws_close(c, code, NULL);
            return -1;
        }
        case WS_EV_ERROR:
            stats_reject(reject_for(ev.err));
            rr_debug("connection fd=%d sub=%s: %s, closing with %u", c->fd, c->sub,
                     ws_err_text(ev.err), ev.code);
            conn_ws_close(c, ev.code, ws_err_text(ev.err));
            return -1;
        }
    }
    return -1;
}

/* ---- open, timer, end ---- */

static void arm_timer(struct conn *c, int64_t seconds)
{
    ev_timer_stop(c->srv->loop, &c->timer);
    if (seconds > 0) {
        ev_timer_set(&c->timer, (double)seconds, 0.0);
        ev_timer_start(c->srv->loop, &c->timer);
    }
}

/* Ping when the client has been quiet for --ping-interval; close when the
 * pong does not come within --pong-timeout. Any frame counts as a sign of life. */
void ws_session_timer(struct conn *c)
{
    const struct backend_config *cfg = c->srv->cfg;
    uint64_t now = mono_ns();
    uint64_t quiet_s = (now - c->last_rx_ns) / 1000000000u;
    int64_t idle_left = INT64_MAX;
    if (cfg->idle_timeout_s > 0) {
        /* --idle-timeout: a client that sends no message at all (pongs do not
         * count) is closed. */
        int64_t silent_s = (int64_t)((now - c->last_msg_ns) / 1000000000u);
        if (silent_s >= cfg->idle_timeout_s) {
            stats_reject(REJ_IDLE_TIMEOUT);
            conn_ws_close(c, WS_CLOSE_GOING_AWAY, "idle timeout");
            return;
        }
        idle_left = cfg->idle_timeout_s - silent_s;
    }
    if (c->awaiting_pong) {
        stats_reject(REJ_PONG_TIMEOUT);
        rr_debug("connection fd=%d sub=%s: no pong in %llds, closing", c->fd, c->sub,
                 (long long)cfg->pong_timeout_s);
        conn_ws_close(c, WS_CLOSE_GOING_AWAY, "ping timeout");
        return;
    }
    if (quiet_s < (uint64_t)cfg->ping_interval_s) {
        int64_t ping_left = cfg->ping_interval_s - (int64_t)quiet_s;
        arm_timer(c, ping_left < idle_left ? ping_left : idle_left);
        return;
    }
    uint8_t f[WS_CONTROL_FRAME_MAX];
    size_t n = ws_frame_build_control(f, sizeof(f), WS_OP_PING, (const uint8_t *)"rr", 2);
    if (conn_queue_bytes(c, f, n) < 0)
        return;
    c->awaiting_pong = true;
    arm_timer(c, cfg->pong_timeout_s);
}

void ws_session_migrate(struct conn *c, int64_t after_ms)
{
    struct rr_text t = {0};
    proto_migrate(&t, after_ms, "draining");
    if (send_text(c, &t) == 0)
        conn_ws_close(c, WS_CLOSE_RESTART, "server draining");
}

int ws_session_open(struct conn *c, const char *room, char *sub, const struct wsh_deflate *pmd,
                    bool has_since, uint64_t since)
{
    struct server *s = c->srv;
    const struct backend_config *cfg = s->cfg;
    c->sub = sub;
    c->rd = malloc(sizeof(*c->rd));
    if (pmd)
        c->pmd = malloc(sizeof(*c->pmd));
    if (!c->rd || (pmd && !c->pmd)) {
        conn_close_now(c);
        return -1;
    }
    ws_reader_init(c->rd, (size_t)cfg->max_message, pmd != NULL);
    if (pmd)
        pmd_inflater_init(c->pmd, pmd->client_max_window_bits ? pmd->client_max_window_bits : 15,
                          pmd->client_no_context_takeover);
    c->session = ++s->session_seed * 0x9E3779B97F4A7C15u;
    if (!*c->sub) {
        /* --allow-anonymous: the identity is the session. */
        char *anon = malloc(24);
        if (!anon) {
            conn_close_now(c);
            return -1;
        }
        snprintf(anon, 24, "anon-%016" PRIx64, c->session);
        free(c->sub);
        c->sub = anon;
    }
    c->state = CONN_WS;
    c->ws_counted = true;
    s->nws++;
    rr_inc(&bstats.ws_opened_total);
    rr_inc(&bstats.ws_open);
    rr_bucket_init(&c->bucket, (double)cfg->publish_rate, (double)cfg->publish_burst, mono_ns());
    c->last_rx_ns = mono_ns();
    c->last_msg_ns = c->last_rx_ns;
    arm_timer(c, cfg->ping_interval_s);

    const char *why = NULL;
    struct room_member *m = join_room(c, room, strlen(room), &why);
    if (!m) {
        conn_ws_close(c, WS_CLOSE_INTERNAL, why);
        return -1;
    }
    sync_start(m, true, has_since, since);
    return c->state == CONN_WS ? 0 : -1;
}

void ws_session_end(struct conn *c)
{
    for (struct bus_req *p = c->reqs; p; p = p->next)
        p->c = NULL;
    c->reqs = NULL;
    while (c->n_rooms > 0)
        leave_room(c, (uint16_t)(c->n_rooms - 1));
    free(c->rooms);
    c->rooms = NULL;
    c->cap_rooms = 0;
    if (c->rd) {
        ws_reader_free(c->rd);
        free(c->rd);
        c->rd = NULL;
    }
    if (c->pmd) {
        pmd_inflater_free(c->pmd);
        free(c->pmd);
        c->pmd = NULL;
    }
    free(c->sub);
    c->sub = NULL;
    json_decref(c->rooms_claim);
    c->rooms_claim = NULL;
    if (c->ws_counted) {
        c->ws_counted = false;
        c->srv->nws--;
        atomic_fetch_sub_explicit(&bstats.ws_open, 1, memory_order_relaxed);
    }
}
