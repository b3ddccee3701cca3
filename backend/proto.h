/*
 * The client protocol of DESIGN.md §4, as pure code: client JSON text ->
 * struct proto_msg, and the server's messages -> JSON text. JSON is jansson's.
 * No sockets, no clock (timestamps are passed in).
 *
 * A `message` event is built as HEAD + decimal seq + TAIL, so the part that
 * numbers events (the local bus, or a Redis Lua script) can splice the seq in
 * without parsing JSON, and every backend sends the same bytes.
 */
#ifndef RR_PROTO_H
#define RR_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/text.h"

enum proto_type {
    PROTO_JOIN,
    PROTO_LEAVE,
    PROTO_PUBLISH,
    PROTO_PRESENCE,
    PROTO_PING,
};

/* A parsed client message. Strings point into `root`, which the message owns. */
struct proto_msg {
    enum proto_type type;
    const char *room; /* join, leave, publish, presence */
    size_t room_len;
    bool has_since; /* join */
    uint64_t since;
    json_t *data;   /* publish: any JSON value, borrowed from root */
    const char *id; /* publish: client message id (string, 1-128 bytes) */
    size_t id_len;
    json_t *root;
};

/* Why a client message was refused: `code` is error.code on the wire. */
struct proto_error {
    const char *code;    /* "bad_json", "bad_request", "unknown_type", "invalid_room", ... */
    const char *message; /* one human sentence */
    char id[129];        /* the publish id when one could be read ("" otherwise), to echo back */
};

/*
 * Parses one text message. Returns 0 and fills m (free with proto_msg_free),
 * or -1 and fills err. Rules: an object with a string `type`; join/leave/
 * publish/presence need `room` (a valid room name, else invalid_room);
 * `since` is a non-negative integer; publish needs `data` (any JSON) and `id`
 * (a string of 1-128 bytes); unknown fields are ignored.
 */
int proto_parse(const char *text, size_t len, struct proto_msg *m, struct proto_error *err);
void proto_msg_free(struct proto_msg *m);

/* Server -> client messages, appended to out as one JSON object each. A
 * string argument that is not UTF-8 sets out->oom, like an allocation failure. */
void proto_welcome(struct rr_text *out, const char *instance, const char *session, const char *room,
                   uint64_t seq);
/* recovered: how many messages were replayed since `since`, or -1 to leave
 * the field out (a join without since). */
void proto_joined(struct rr_text *out, const char *room, uint64_t seq, int64_t recovered,
                  bool complete);
void proto_left(struct rr_text *out, const char *room);
void proto_ack(struct rr_text *out, const char *id, uint64_t seq);
void proto_member(struct rr_text *out, const char *room, const char *sub, bool joined);
/* id NULL or "" leaves error.id out. */
void proto_error(struct rr_text *out, const char *code, const char *message, const char *id);
void proto_migrate(struct rr_text *out, int64_t reconnect_after_ms, const char *reason);
void proto_pong(struct rr_text *out);

/* presence {room, members: [{sub, instance}...]}: begin, one call per member, end. */
void proto_presence_begin(struct rr_text *out, const char *room);
void proto_presence_member(struct rr_text *out, const char *sub, const char *instance);
void proto_presence_end(struct rr_text *out);

/* The two halves of a `message` event around its seq:
 * head = {"type":"message","room":<room>,"seq":
 * tail = ,"from":<sub>,"data":<data>,"ts":<ts_ms>}            */
void proto_message_head(struct rr_text *out, const char *room);
void proto_message_tail(struct rr_text *out, const char *from, const json_t *data, int64_t ts_ms);
/* head + seq + tail in one go (the local bus, tests). */
void proto_message(struct rr_text *out, const char *room, uint64_t seq, const char *from,
                   const json_t *data, int64_t ts_ms);

#endif
