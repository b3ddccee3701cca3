/*
 * SPOP 2.0 codec (HAProxy's Stream Processing Offload Protocol, doc/SPOE.txt).
 *
 * Pure code: no sockets, no clock, no allocation. The caller hands in bytes
 * and gets back decoded frames whose strings point into the caller's buffer;
 * encoders write into a caller-owned buffer. Every length read from the wire
 * is checked against what is left before it is used.
 *
 * This is not the agent: spoa/agent.c owns sockets and the event loop.
 */
#ifndef RR_SPOP_H
#define RR_SPOP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOP_VERSION "2.0"
#define SPOP_MIN_FRAME_SIZE 256u
/* Frame size we accept at most (HAProxy 2.6 announces tune.bufsize - 4 = 16380). */
#define SPOP_MAX_FRAME_SIZE 65532u
#define SPOP_LEN_PREFIX 4u

enum spop_frame_type {
    SPOP_FRAME_UNSET = 0,
    SPOP_FRAME_HAPROXY_HELLO = 1,
    SPOP_FRAME_HAPROXY_DISCONNECT = 2,
    SPOP_FRAME_NOTIFY = 3,
    SPOP_FRAME_AGENT_HELLO = 101,
    SPOP_FRAME_AGENT_DISCONNECT = 102,
    SPOP_FRAME_ACK = 103,
};

#define SPOP_FLAG_FIN 0x00000001u
#define SPOP_FLAG_ABORT 0x00000002u

enum spop_data_type {
    SPOP_DATA_NULL = 0,
    SPOP_DATA_BOOL = 1,
    SPOP_DATA_INT32 = 2,
    SPOP_DATA_UINT32 = 3,
    SPOP_DATA_INT64 = 4,
    SPOP_DATA_UINT64 = 5,
    SPOP_DATA_IPV4 = 6,
    SPOP_DATA_IPV6 = 7,
    SPOP_DATA_STR = 8,
    SPOP_DATA_BIN = 9,
};

/* Status codes of DISCONNECT frames (SPOE.txt 3.5). */
enum spop_status {
    SPOP_ST_NONE = 0,
    SPOP_ST_IO = 1,
    SPOP_ST_TIMEOUT = 2,
    SPOP_ST_TOO_BIG = 3,
    SPOP_ST_INVALID = 4,
    SPOP_ST_NO_VSN = 5,
    SPOP_ST_NO_FRAME_SIZE = 6,
    SPOP_ST_NO_CAP = 7,
    SPOP_ST_BAD_VSN = 8,
    SPOP_ST_BAD_FRAME_SIZE = 9,
    SPOP_ST_FRAG_NOT_SUP = 10,
    SPOP_ST_INTERLACED = 11,
    SPOP_ST_FRAMEID_NOTFOUND = 12,
    SPOP_ST_RES = 13,
    SPOP_ST_UNKNOWN = 99,
};

enum spop_var_scope {
    SPOP_SCOPE_PROC = 0,
    SPOP_SCOPE_SESS = 1,
    SPOP_SCOPE_TXN = 2,
    SPOP_SCOPE_REQ = 3,
    SPOP_SCOPE_RES = 4,
};

enum spop_action_type {
    SPOP_ACT_SET_VAR = 1,
    SPOP_ACT_UNSET_VAR = 2,
};

/* A byte string that points into a buffer owned by someone else. */
struct spop_str {
    const char *ptr;
    size_t len;
};

/* One TYPED-DATA value. STR and BIN point into the decoded buffer. */
struct spop_data {
    uint8_t type; /* enum spop_data_type */
    union {
        bool b;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        struct in_addr v4;
        struct in6_addr v6;
        struct spop_str str; /* STR and BIN */
    } u;
};

/* A frame split into its header and its payload (which points into the input). */
struct spop_frame {
    uint8_t type;
    uint32_t flags;
    uint64_t stream_id;
    uint64_t frame_id;
    const uint8_t *payload;
    size_t payload_len;
};

/* A read cursor over a payload. Decoders advance `off`; they never read past `len`. */
struct spop_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

/* A write cursor into a caller-owned buffer. Once an encoder runs out of room
 * it sets `overflow` and every later call is a no-op, so a caller checks once
 * at the end. */
struct spop_writer {
    uint8_t *p;
    size_t cap;
    size_t off;
    size_t frame_start; /* offset of the current frame's length prefix */
    bool overflow;
};

/* What a HAPROXY-HELLO says. Strings point into the frame's payload. */
struct spop_hello {
    struct spop_str versions;     /* "supported-versions" */
    struct spop_str capabilities; /* "capabilities" */
    struct spop_str engine_id;    /* "engine-id", may be empty */
    uint32_t max_frame_size;      /* "max-frame-size" */
    bool has_versions, has_max_frame_size, has_capabilities;
    bool healthcheck;
};

/* What a DISCONNECT frame says (either direction). */
struct spop_disconnect {
    uint32_t status;
    struct spop_str message;
};

/* ---- varints (HAProxy "peers" encoding) ---- */

/* Writes v at out; returns the number of bytes written (1..10), or 0 if cap is too small. */
size_t spop_varint_encode(uint64_t v, uint8_t *out, size_t cap);

/* Reads a varint; returns bytes consumed (>0), 0 if more bytes are needed,
 * -1 if the encoding is malformed (longer than 10 bytes or overflowing 64 bits). */
int spop_varint_decode(const uint8_t *p, size_t len, uint64_t *v);

/* ---- frames ---- */

/*
 * Looks at the start of a receive buffer. Returns the number of bytes the
 * whole frame takes (length prefix included) and fills *f, 0 if the frame is
 * not complete yet, or -(enum spop_status) when the bytes can never become a
 * valid frame: length over max_frame_size (-SPOP_ST_TOO_BIG), header that does
 * not fit in its length or malformed varints (-SPOP_ST_INVALID).
 * max_frame_size counts the frame without its 4-byte prefix.
 */
int spop_frame_parse(const uint8_t *buf, size_t len, uint32_t max_frame_size, struct spop_frame *f);

/* Reader over a decoded frame's payload. */
void spop_reader_init(struct spop_reader *r, const uint8_t *p, size_t len);
bool spop_reader_done(const struct spop_reader *r);

/* Decoders return 1 on success, 0 at the end of the input (only where an item
 * could start), -1 on malformed or truncated input. */
int spop_read_data(struct spop_reader *r, struct spop_data *d);
int spop_read_kv(struct spop_reader *r, struct spop_str *key, struct spop_data *val);
/* LIST-OF-MESSAGES: the next message's name and argument count; its args are
 * then read with spop_read_kv, nargs times. */
int spop_read_message(struct spop_reader *r, struct spop_str *name, uint8_t *nargs);
/* LIST-OF-ACTIONS (used by tests and the bench client): the next action with
 * its scope, var name, and value (value type NULL for unset-var). */
int spop_read_action(struct spop_reader *r, uint8_t *type, uint8_t *scope, struct spop_str *name,
                     struct spop_data *val);

/* Decodes a HAPROXY-HELLO payload. Returns SPOP_ST_NONE, or the status to
 * disconnect with: SPOP_ST_INVALID, SPOP_ST_NO_VSN, SPOP_ST_NO_FRAME_SIZE,
 * SPOP_ST_NO_CAP, or SPOP_ST_BAD_FRAME_SIZE for a max-frame-size that is not
 * an integer in 0..UINT32_MAX (the caller checks the 256 minimum). Unknown
 * keys are ignored. */
enum spop_status spop_hello_parse(const uint8_t *payload, size_t len, struct spop_hello *h);

/* True if a comma-separated list (spaces ignored) contains `item`. */
bool spop_list_has(struct spop_str list, const char *item);

/* True if "supported-versions" names a 2.x major version. */
bool spop_versions_support_2(struct spop_str versions);

enum spop_status spop_disconnect_parse(const uint8_t *payload, size_t len,
                                       struct spop_disconnect *d);

/* Human text for a status code ("frame is too big"). */
const char *spop_status_text(uint32_t status);

/* ---- encoders ---- */

void spop_writer_init(struct spop_writer *w, uint8_t *buf, size_t cap);

/* Starts a frame (reserves the 4-byte length, writes type, flags, ids). */
void spop_frame_begin(struct spop_writer *w, uint8_t type, uint32_t flags, uint64_t stream_id,
                      uint64_t frame_id);
/* Ends the current frame: fills its length prefix. Returns the frame's total
 * size (prefix included), or 0 if the writer overflowed. */
size_t spop_frame_end(struct spop_writer *w);

void spop_write_varint(struct spop_writer *w, uint64_t v);
void spop_write_str(struct spop_writer *w, const char *s, size_t len); /* <len varint><bytes> */
void spop_write_data(struct spop_writer *w, const struct spop_data *d);
void spop_write_kv(struct spop_writer *w, const char *key, const struct spop_data *val);

/* NOTIFY payload item (tests and the bench client): a message name and its
 * argument count; the args follow as spop_write_kv. */
void spop_write_message(struct spop_writer *w, const char *name, uint8_t nargs);

/* ACK payload items. */
void spop_write_set_var(struct spop_writer *w, uint8_t scope, const char *name,
                        const struct spop_data *val);
void spop_write_unset_var(struct spop_writer *w, uint8_t scope, const char *name);

/* Whole frames. */
size_t spop_write_agent_hello(struct spop_writer *w, uint32_t max_frame_size,
                              const char *capabilities);
size_t spop_write_disconnect(struct spop_writer *w, uint8_t type, uint32_t status,
                             const char *message);
/* Used by tests and the bench client to play HAProxy's side. */
size_t spop_write_haproxy_hello(struct spop_writer *w, const char *versions,
                                uint32_t max_frame_size, const char *capabilities, bool healthcheck,
                                const char *engine_id);

/* Convenience constructors for typed data. */
struct spop_data spop_str_data(const char *s, size_t len);
struct spop_data spop_bool_data(bool b);
struct spop_data spop_int64_data(int64_t v);
struct spop_data spop_uint32_data(uint32_t v);

#endif
