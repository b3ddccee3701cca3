/*
 * What server.c, conn.c and ops.c share: the connection and server structs.
 * Not a public interface; the rest of the program uses server.h.
 */
#ifndef RR_BACKEND_SERVER_INT_H
#define RR_BACKEND_SERVER_INT_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/http_req.h"
#include "backend/outq.h"
#include "backend/pmd.h"
#include "backend/server.h"
#include "backend/stats.h"
#include "backend/ws_frame.h"
#include "backend/ws_handshake.h"
#include "lib/jwt_sig.h"
#include "lib/ratelimit.h"

enum conn_state {
    CONN_PROXY,   /* waiting for a PROXY protocol header */
    CONN_HTTP,    /* reading an HTTP request (ops endpoint or WebSocket upgrade) */
    CONN_WS,      /* WebSocket open */
    CONN_CLOSING, /* last bytes queued; close once they are written */
};

struct conn;
struct sync_req;
struct bus_req;

/* A connection's membership of a room: what room->members points to. */
struct room_member {
    struct conn *conn;
    struct room *room;
    uint32_t index;        /* in room->members */
    uint64_t last_seq;     /* last seq delivered to this connection: never twice */
    struct sync_req *sync; /* catching up (conn.c): live events are held back */
    uint64_t held_max;     /* the highest live seq held back while catching up */
};

/* Allocated 64-byte aligned: the first cache line holds what a delivery
 * touches (the output queue, the dirty-list link, the state), the home
 * room's membership follows it, so fanning a message out to thousands of
 * members costs about two cache lines each. */
struct conn {
    struct outq outq;
    struct conn *dirty_next; /* connections with frames to write this loop pass */
    uint8_t state;
    bool dirty;
    bool want_write; /* EV_WRITE armed: the socket was full */
    struct server *srv;
    struct room_member home; /* the membership of the first room joined */
    ev_io io;
    ev_timer timer;           /* handshake timeout, then ping / pong timeout */
    struct conn *prev, *next; /* every connection */
    int fd;
    bool awaiting_pong;
    bool counted_ip;   /* holds a slot in the per-IP table */
    bool ws_counted;   /* counted in bstats.ws_open */
    bool via_proxy;    /* the client address came from a PROXY header */
    bool peer_trusted; /* the TCP peer is a --trusted-proxy (may send X-RR-Sub) */
    uint8_t npending;
    uint8_t pending[WS_CLIENT_HEADER_MAX]; /* a partial frame header between reads */
    uint8_t ip_family;                     /* client address (from PROXY when present) */
    uint8_t ip[16];
    uint16_t strikes; /* publishes refused in a row by the rate limit */
    uint16_t n_rooms, cap_rooms;
    struct room_member **rooms;
    struct http_req *req; /* CONN_PROXY / CONN_HTTP */
    uint8_t *spill;       /* a partial PROXY header between reads */
    uint16_t nspill;
    struct ws_reader *rd;     /* CONN_WS */
    struct pmd_inflater *pmd; /* permessage-deflate negotiated: the client's compressor's peer */
    char *sub;
    json_t *rooms_claim; /* the token's `rooms` claim; NULL: every room allowed */
    uint64_t session;
    uint64_t last_rx_ns;     /* any bytes */
    uint64_t last_msg_ns;    /* a message (pings and pongs do not count) */
    struct rr_bucket bucket; /* publish rate */
    struct bus_req *reqs;    /* in flight on the bus, answered after the conn may be gone */
};

struct ip_table; /* connections per client address (server.c) */

struct server {
    struct ev_loop *loop;
    const struct backend_config *cfg;
    int lfd;
    ev_io accept_io;
    ev_prepare flush_prepare; /* writes every dirty connection before the loop sleeps */
    ev_timer drain_timer;
    ev_timer migrate_timer; /* paces the migrates of a drain */
    int64_t migrate_credit; /* thousandths of a migrate due and not sent (--drain-rate) */
    uint64_t migrate_rnd;   /* picks each migrate's reconnect_after_ms */
    void (*state_cb)(void *arg);
    void *state_arg;
    struct conn *conns;
    struct conn *dirty;
    uint64_t nconns; /* TCP connections */
    uint64_t nws;    /* WebSocket connections */
    struct room_table *rooms;
    struct bus *bus;
    struct rr_token_cache *token_cache;
    struct rr_jwt_sig_ctx *sig_ctx; /* NULL without keys */
    struct ip_table *per_ip;
    bool draining;
    bool stopping;
    uint64_t started_ns;
    int64_t started_unix;
    uint64_t session_seed;
    uint8_t *rbuf; /* one read buffer for every connection */
    size_t rbuf_cap;
    struct pmd_deflater deflater; /* --permessage-deflate: compresses each room message once */
    uint8_t *inflate_buf;         /* inflated client messages, --max-message + 1 bytes */
};

uint64_t mono_ns(void);

/* server.c */
void conn_close_now(struct conn *c);
/* Queues a frame; marks the connection for this pass's flush. Returns -1 if
 * the connection was closed (slow consumer). */
int conn_queue(struct conn *c, struct wsbuf *b);
/* Queues raw bytes (HTTP answers, control frames) as their own buffer. */
int conn_queue_bytes(struct conn *c, const void *p, size_t len);
/* Answers an HTTP error (status, one-line reason, extra "Name: value\r\n"
 * headers or NULL), counts why, and closes once it is written. */
int conn_refuse(struct conn *c, int status, const char *reason, const char *extra,
                enum reject_reason why);
/* Queues a close frame and closes once it is written. */
void conn_ws_close(struct conn *c, uint16_t code, const char *reason);
bool server_ip_trusted(const struct server *s, int family, const uint8_t *ip);
bool conn_set_client_ip(struct conn *c, int family, const uint8_t *ip);

/* conn.c: the WebSocket session */
/* Opens the session: takes ownership of sub (malloc'd), joins the home room,
 * sends welcome once the bus says where the room stands (with since: then
 * joined and the missed messages). c->rooms_claim is set by the caller. */
int ws_session_open(struct conn *c, const char *room, char *sub, const struct wsh_deflate *pmd,
                    bool has_since, uint64_t since);
/* Handles the bytes of an open WebSocket. Returns -1 if the connection closed. */
int ws_session_read(struct conn *c, uint8_t *buf, size_t len);
void ws_session_end(struct conn *c);
void ws_session_timer(struct conn *c);
/* Drain: tells the client to come back through another backend after
 * after_ms, and closes with 1012. */
void ws_session_migrate(struct conn *c, int64_t after_ms);
void server_on_event(void *srv, struct room *r, uint64_t seq, const char *text, size_t len);
void server_on_member(void *srv, struct room *r, const char *text, size_t len);

/* ops.c: plain HTTP endpoints. Returns -1 if the connection closed. */
int ops_serve(struct conn *c);

/* handshake.c: the WebSocket upgrade. Returns -1 if the connection closed. */
int ws_upgrade(struct conn *c);

#endif
