/*
 * The client protocol (DESIGN.md §4), see proto.h. Parsing is jansson with
 * duplicate keys refused; output is compact JSON written straight into an
 * rr_text, strings and `data` encoded by jansson (so escaping is jansson's:
 * '"', '\\' and control characters escaped, other UTF-8 as is). Numbers in
 * `data` keep their value, not their spelling: 0.1 goes out as
 * 0.10000000000000001, which parses back to the same double. U+0000 is
 * allowed in `data` strings, refused in `id` (bad_request) and `room`.
 *
 * Field order of what the server sends (fixed: tests and the Lua script that
 * splices seq rely on it; `?` fields are left out when absent):
 *   welcome  {"type":"welcome","instance":s,"session":s,"room":s,"seq":n}
 *   joined   {"type":"joined","room":s,"seq":n,"recovered"?:n,"complete":b}
 *   left     {"type":"left","room":s}
 *   message  {"type":"message","room":s,"seq":n,"from":s,"data":any,"ts":n}
 *   ack      {"type":"ack","id":s,"seq":n}
 *   presence {"type":"presence","room":s,"members":[{"sub":s,"instance":s},...]}
 *   member   {"type":"member","room":s,"sub":s,"event":"join"|"leave"}
 *   error    {"type":"error","code":s,"message":s,"id"?:s}
 *   migrate  {"type":"migrate","reconnect_after_ms":n,"reason":s}
 *   pong     {"type":"pong"}
 *
 * Not here: what a message does (server), room access rules (the token).
 */
#include "backend/proto.h"

#include <inttypes.h>
#include <string.h>

#include "backend/room.h"
#include "lib/room_access.h"

#define PROTO_ID_MAX 128

static int append_cb(const char *buffer, size_t size, void *data)
{
    rr_text_append(data, buffer, size);
    return 0;
}

static void put_raw(struct rr_text *out, const char *s)
{
    rr_text_append(out, s, strlen(s));
}

static void put_json(struct rr_text *out, const json_t *v)
{
    if (json_dump_callback(v, append_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) < 0)
        out->oom = 1;
}

/* A JSON string. Text that is not UTF-8 cannot be sent: it spoils the output
 * like an allocation failure does (out->oom). */
static void put_str(struct rr_text *out, const char *s)
{
    json_t *v = json_string(s);
    if (!v) {
        out->oom = 1;
        return;
    }
    put_json(out, v);
    json_decref(v);
}

static void put_u64(struct rr_text *out, uint64_t n)
{
    rr_text_printf(out, "%" PRIu64, n);
}

static void put_i64(struct rr_text *out, int64_t n)
{
    rr_text_printf(out, "%" PRId64, n);
}

static int fail(struct proto_error *err, const char *code, const char *message)
{
    err->code = code;
    err->message = message;
    return -1;
}

static const struct {
    const char *name;
    enum proto_type type;
} types[] = {
    {"join", PROTO_JOIN},         {"leave", PROTO_LEAVE}, {"publish", PROTO_PUBLISH},
    {"presence", PROTO_PRESENCE}, {"ping", PROTO_PING},
};

/* Reads the fields of m->type from m->root; the type is known. */
static int parse_fields(struct proto_msg *m, struct proto_error *err)
{
    json_t *v;

    if (m->type == PROTO_PING)
        return 0;
    if (m->type == PROTO_PUBLISH) {
        v = json_object_get(m->root, "id");
        if (!v)
            return fail(err, "bad_request", "publish needs an id.");
        if (!json_is_string(v))
            return fail(err, "bad_request", "id must be a string.");
        m->id = json_string_value(v);
        m->id_len = json_string_length(v);
        if (m->id_len == 0 || m->id_len > PROTO_ID_MAX)
            return fail(err, "bad_request", "id must be 1 to 128 bytes long.");
        /* JSON allows U+0000 (JSON_ALLOW_NUL below, for data); an id is a C string. */
        if (memchr(m->id, '\0', m->id_len))
            return fail(err, "bad_request", "id must not contain U+0000.");
        memcpy(err->id, m->id, m->id_len + 1);
    }
    v = json_object_get(m->root, "room");
    if (!v)
        return fail(err, "invalid_room", "This message needs a room.");
    if (!json_is_string(v))
        return fail(err, "bad_request", "room must be a string.");
    m->room = json_string_value(v);
    m->room_len = json_string_length(v);
    if (!rr_room_name_valid(m->room, m->room_len))
        return fail(err, "invalid_room", "A room name is 1 to 64 bytes of A-Z a-z 0-9 _ . : -");
    if (m->type == PROTO_JOIN && (v = json_object_get(m->root, "since"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return fail(err, "bad_request", "since must be a non-negative integer.");
        m->has_since = true;
        m->since = (uint64_t)json_integer_value(v);
    }
    if (m->type == PROTO_PUBLISH && !(m->data = json_object_get(m->root, "data")))
        return fail(err, "bad_request", "publish needs data.");
    return 0;
}

int proto_parse(const char *text, size_t len, struct proto_msg *m, struct proto_error *err)
{
    json_error_t jerr;

    memset(m, 0, sizeof(*m));
    err->id[0] = '\0';
    m->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!m->root || !json_is_object(m->root)) {
        proto_msg_free(m);
        return fail(err, "bad_json", "A message is one JSON object.");
    }
    json_t *type = json_object_get(m->root, "type");
    if (!json_is_string(type)) {
        proto_msg_free(m);
        return fail(err, "bad_request", "A message needs a string type.");
    }
    size_t i = 0;
    while (i < sizeof(types) / sizeof(types[0]) &&
           strcmp(types[i].name, json_string_value(type)) != 0)
        i++;
    if (i == sizeof(types) / sizeof(types[0])) {
        proto_msg_free(m);
        return fail(err, "unknown_type", "This message type is not known.");
    }
    m->type = types[i].type;
    if (parse_fields(m, err) < 0) {
        proto_msg_free(m);
        return -1;
    }
    return 0;
}

void proto_msg_free(struct proto_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

void proto_welcome(struct rr_text *out, const char *instance, const char *session, const char *room,
                   uint64_t seq)
{
    put_raw(out, "{\"type\":\"welcome\",\"instance\":");
    put_str(out, instance);
    put_raw(out, ",\"session\":");
    put_str(out, session);
    put_raw(out, ",\"room\":");
    put_str(out, room);
    put_raw(out, ",\"seq\":");
    put_u64(out, seq);
    put_raw(out, "}");
}

void proto_joined(struct rr_text *out, const char *room, uint64_t seq, int64_t recovered,
                  bool complete)
{
    put_raw(out, "{\"type\":\"joined\",\"room\":");
    put_str(out, room);
    put_raw(out, ",\"seq\":");
    put_u64(out, seq);
    if (recovered >= 0) {
        put_raw(out, ",\"recovered\":");
        put_i64(out, recovered);
    }
    put_raw(out, complete ? ",\"complete\":true}" : ",\"complete\":false}");
}

void proto_left(struct rr_text *out, const char *room)
{
    put_raw(out, "{\"type\":\"left\",\"room\":");
    put_str(out, room);
    put_raw(out, "}");
}

void proto_ack(struct rr_text *out, const char *id, uint64_t seq)
{
    put_raw(out, "{\"type\":\"ack\",\"id\":");
    put_str(out, id);
    put_raw(out, ",\"seq\":");
    put_u64(out, seq);
    put_raw(out, "}");
}

void proto_member(struct rr_text *out, const char *room, const char *sub, bool joined)
{
    put_raw(out, "{\"type\":\"member\",\"room\":");
    put_str(out, room);
    put_raw(out, ",\"sub\":");
    put_str(out, sub);
    put_raw(out, joined ? ",\"event\":\"join\"}" : ",\"event\":\"leave\"}");
}

void proto_error(struct rr_text *out, const char *code, const char *message, const char *id)
{
    put_raw(out, "{\"type\":\"error\",\"code\":");
    put_str(out, code);
    put_raw(out, ",\"message\":");
    put_str(out, message);
    if (id && id[0]) {
        put_raw(out, ",\"id\":");
        put_str(out, id);
    }
    put_raw(out, "}");
}

void proto_migrate(struct rr_text *out, int64_t reconnect_after_ms, const char *reason)
{
    put_raw(out, "{\"type\":\"migrate\",\"reconnect_after_ms\":");
    put_i64(out, reconnect_after_ms);
    put_raw(out, ",\"reason\":");
    put_str(out, reason);
    put_raw(out, "}");
}

void proto_pong(struct rr_text *out)
{
    put_raw(out, "{\"type\":\"pong\"}");
}

void proto_presence_begin(struct rr_text *out, const char *room)
{
    put_raw(out, "{\"type\":\"presence\",\"room\":");
    put_str(out, room);
    put_raw(out, ",\"members\":[");
}

/* The first member follows the '[' that begin wrote; the others a comma. */
void proto_presence_member(struct rr_text *out, const char *sub, const char *instance)
{
    if (out->len && out->p[out->len - 1] != '[')
        put_raw(out, ",");
    put_raw(out, "{\"sub\":");
    put_str(out, sub);
    put_raw(out, ",\"instance\":");
    put_str(out, instance);
    put_raw(out, "}");
}

void proto_presence_end(struct rr_text *out)
{
    put_raw(out, "]}");
}

void proto_message_head(struct rr_text *out, const char *room)
{
    put_raw(out, "{\"type\":\"message\",\"room\":");
    put_str(out, room);
    put_raw(out, ",\"seq\":");
}

void proto_message_tail(struct rr_text *out, const char *from, const json_t *data, int64_t ts_ms)
{
    put_raw(out, ",\"from\":");
    put_str(out, from);
    put_raw(out, ",\"data\":");
    put_json(out, data);
    put_raw(out, ",\"ts\":");
    put_i64(out, ts_ms);
    put_raw(out, "}");
}

void proto_message(struct rr_text *out, const char *room, uint64_t seq, const char *from,
                   const json_t *data, int64_t ts_ms)
{
    proto_message_head(out, room);
    put_u64(out, seq);
    proto_message_tail(out, from, data, ts_ms);
}
