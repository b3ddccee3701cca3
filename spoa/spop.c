/*
 * SPOP 2.0 codec, see spop.h and HAProxy's doc/SPOE.txt section 3.
 *
 * Decoders take a complete frame (spop_frame_parse waits for all of it), so a
 * length that runs past the end is an error, never a request for more bytes.
 * An encoder that runs out of room flags the writer, and spop_frame_end then
 * drops the frame. Nothing here allocates, reads a clock or touches a socket.
 */
#include "spoa/spop.h"

#include <limits.h>
#include <string.h>

/* The longest varint: 4 bits in the first byte and 7 in each of nine more cover 64. */
#define VARINT_MAX_LEN 10u
#define VARINT_ONE_BYTE 240u
#define BOOL_TRUE_FLAG 0x10u
#define TYPE_MASK 0x0Fu
/* type + flags + the shortest stream-id and frame-id */
#define FRAME_MIN_HEADER 7u

/* ---- varints ---- */

/*
 * The first byte holds values below 240 outright, or 240 + the low 4 bits;
 * each following byte adds 7 bits, with 128 meaning "more follows". Taking
 * 240 and 128 off before each shift makes every value's encoding unique.
 */
size_t spop_varint_encode(uint64_t v, uint8_t *out, size_t cap)
{
    uint8_t tmp[VARINT_MAX_LEN];
    size_t n = 0;

    if (v < VARINT_ONE_BYTE) {
        tmp[n++] = (uint8_t)v;
    } else {
        tmp[n++] = (uint8_t)(v | 0xF0);
        v = (v - VARINT_ONE_BYTE) >> 4;
        while (v >= 128) {
            tmp[n++] = (uint8_t)(v | 0x80);
            v = (v - 128) >> 7;
        }
        tmp[n++] = (uint8_t)v;
    }
    if (n > cap)
        return 0;
    memcpy(out, tmp, n);
    return n;
}

int spop_varint_decode(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t acc;
    unsigned shift = 4;

    if (len == 0)
        return 0;
    acc = p[0];
    if (acc < VARINT_ONE_BYTE) {
        *v = acc;
        return 1;
    }
    for (size_t i = 1; i < VARINT_MAX_LEN; i++, shift += 7) {
        uint64_t b, term;

        if (i >= len)
            return 0;
        b = p[i];
        if (b > (UINT64_MAX >> shift))
            return -1;
        term = b << shift;
        if (acc > UINT64_MAX - term)
            return -1;
        acc += term;
        if (b < 128) {
            *v = acc;
            return (int)i + 1;
        }
    }
    return -1;
}

/* ---- frames ---- */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int spop_frame_parse(const uint8_t *buf, size_t len, uint32_t max_frame_size, struct spop_frame *f)
{
    const uint8_t *body = buf + SPOP_LEN_PREFIX;
    uint32_t flen;
    size_t off;
    int n;

    if (len < SPOP_LEN_PREFIX)
        return 0;
    flen = get_be32(buf);
    if (flen > max_frame_size || flen > INT_MAX - SPOP_LEN_PREFIX)
        return -SPOP_ST_TOO_BIG;
    if (flen < FRAME_MIN_HEADER)
        return -SPOP_ST_INVALID;
    if (len - SPOP_LEN_PREFIX < flen)
        return 0;

    f->type = body[0];
    f->flags = get_be32(body + 1);
    off = 5;
    n = spop_varint_decode(body + off, flen - off, &f->stream_id);
    if (n <= 0)
        return -SPOP_ST_INVALID;
    off += (size_t)n;
    n = spop_varint_decode(body + off, flen - off, &f->frame_id);
    if (n <= 0)
        return -SPOP_ST_INVALID;
    off += (size_t)n;
    f->payload = body + off;
    f->payload_len = flen - off;
    return (int)(SPOP_LEN_PREFIX + flen);
}

/* ---- payload decoders ---- */

void spop_reader_init(struct spop_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

bool spop_reader_done(const struct spop_reader *r)
{
    return r->off >= r->len;
}

static int read_byte(struct spop_reader *r, uint8_t *b)
{
    if (spop_reader_done(r))
        return -1;
    *b = r->p[r->off++];
    return 1;
}

static int read_varint(struct spop_reader *r, uint64_t *v)
{
    int n = spop_varint_decode(r->p + r->off, r->len - r->off, v);

    if (n <= 0)
        return -1;
    r->off += (size_t)n;
    return 1;
}

static int read_bytes(struct spop_reader *r, void *out, size_t n)
{
    if (n > r->len - r->off)
        return -1;
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return 1;
}

/* <LENGTH:varint><BYTES>, as used for strings, binaries, and every name. */
static int read_str(struct spop_reader *r, struct spop_str *s)
{
    uint64_t n;

    if (read_varint(r, &n) < 0 || n > r->len - r->off)
        return -1;
    s->ptr = (const char *)r->p + r->off;
    s->len = (size_t)n;
    r->off += (size_t)n;
    return 1;
}

/*
 * Flags other than BOOL's are ignored, as HAProxy does. Integers must fit
 * their type; signed ones arrive as the two's complement of the 64-bit value
 * (HAProxy's encode_varint of a sint), so -1 takes ten bytes.
 */
int spop_read_data(struct spop_reader *r, struct spop_data *d)
{
    uint8_t b;
    uint64_t v;

    if (spop_reader_done(r))
        return 0;
    b = r->p[r->off++];
    memset(d, 0, sizeof(*d));
    d->type = b & TYPE_MASK;
    switch (d->type) {
    case SPOP_DATA_NULL:
        return 1;
    case SPOP_DATA_BOOL:
        d->u.b = (b & BOOL_TRUE_FLAG) != 0;
        return 1;
    case SPOP_DATA_INT32:
        if (read_varint(r, &v) < 0 || (int64_t)v < INT32_MIN || (int64_t)v > INT32_MAX)
            return -1;
        d->u.i32 = (int32_t)(int64_t)v;
        return 1;
    case SPOP_DATA_UINT32:
        if (read_varint(r, &v) < 0 || v > UINT32_MAX)
            return -1;
        d->u.u32 = (uint32_t)v;
        return 1;
    case SPOP_DATA_INT64:
        if (read_varint(r, &v) < 0)
            return -1;
        d->u.i64 = (int64_t)v;
        return 1;
    case SPOP_DATA_UINT64:
        return read_varint(r, &d->u.u64);
    case SPOP_DATA_IPV4:
        return read_bytes(r, &d->u.v4, 4);
    case SPOP_DATA_IPV6:
        return read_bytes(r, &d->u.v6, 16);
    case SPOP_DATA_STR:
    case SPOP_DATA_BIN:
        return read_str(r, &d->u.str);
    default:
        return -1;
    }
}

int spop_read_kv(struct spop_reader *r, struct spop_str *key, struct spop_data *val)
{
    if (spop_reader_done(r))
        return 0;
    if (read_str(r, key) < 0)
        return -1;
    return spop_read_data(r, val) == 1 ? 1 : -1;
}

int spop_read_message(struct spop_reader *r, struct spop_str *name, uint8_t *nargs)
{
    if (spop_reader_done(r))
        return 0;
    if (read_str(r, name) < 0)
        return -1;
    return read_byte(r, nargs);
}

/* Scope is a raw byte and the var name has no type byte (SPOE.txt 3.4 and
 * HAProxy's spoe_decode_action_set_var). */
int spop_read_action(struct spop_reader *r, uint8_t *type, uint8_t *scope, struct spop_str *name,
                     struct spop_data *val)
{
    uint8_t nargs;

    if (spop_reader_done(r))
        return 0;
    if (read_byte(r, type) < 0 || read_byte(r, &nargs) < 0 || read_byte(r, scope) < 0)
        return -1;
    if (*scope > SPOP_SCOPE_RES || read_str(r, name) < 0)
        return -1;
    switch (*type) {
    case SPOP_ACT_SET_VAR:
        if (nargs != 3)
            return -1;
        return spop_read_data(r, val) == 1 ? 1 : -1;
    case SPOP_ACT_UNSET_VAR:
        if (nargs != 2)
            return -1;
        memset(val, 0, sizeof(*val));
        val->type = SPOP_DATA_NULL;
        return 1;
    default:
        return -1;
    }
}

static bool str_is(struct spop_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* An integer of any of the four integer types, if it fits in 32 unsigned bits. */
static bool data_to_u32(const struct spop_data *d, uint32_t *out)
{
    int64_t s;
    uint64_t u;

    switch (d->type) {
    case SPOP_DATA_INT32:
        s = d->u.i32;
        break;
    case SPOP_DATA_INT64:
        s = d->u.i64;
        break;
    case SPOP_DATA_UINT32:
        *out = d->u.u32;
        return true;
    case SPOP_DATA_UINT64:
        u = d->u.u64;
        if (u > UINT32_MAX)
            return false;
        *out = (uint32_t)u;
        return true;
    default:
        return false;
    }
    if (s < 0 || s > (int64_t)UINT32_MAX)
        return false;
    *out = (uint32_t)s;
    return true;
}

enum spop_status spop_hello_parse(const uint8_t *payload, size_t len, struct spop_hello *h)
{
    struct spop_reader r;
    struct spop_str key;
    struct spop_data val;
    int ret;

    memset(h, 0, sizeof(*h));
    spop_reader_init(&r, payload, len);
    while ((ret = spop_read_kv(&r, &key, &val)) == 1) {
        if (str_is(key, "supported-versions")) {
            if (val.type != SPOP_DATA_STR)
                return SPOP_ST_INVALID;
            h->versions = val.u.str;
            h->has_versions = true;
        } else if (str_is(key, "max-frame-size")) {
            if (!data_to_u32(&val, &h->max_frame_size))
                return SPOP_ST_BAD_FRAME_SIZE;
            h->has_max_frame_size = true;
        } else if (str_is(key, "capabilities")) {
            if (val.type != SPOP_DATA_STR)
                return SPOP_ST_INVALID;
            h->capabilities = val.u.str;
            h->has_capabilities = true;
        } else if (str_is(key, "healthcheck")) {
            if (val.type != SPOP_DATA_BOOL)
                return SPOP_ST_INVALID;
            h->healthcheck = val.u.b;
        } else if (str_is(key, "engine-id")) {
            if (val.type != SPOP_DATA_STR)
                return SPOP_ST_INVALID;
            h->engine_id = val.u.str;
        }
    }
    if (ret < 0)
        return SPOP_ST_INVALID;
    if (!h->has_versions)
        return SPOP_ST_NO_VSN;
    if (!h->has_max_frame_size)
        return SPOP_ST_NO_FRAME_SIZE;
    if (!h->has_capabilities)
        return SPOP_ST_NO_CAP;
    return SPOP_ST_NONE;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits the next comma-separated item off *list, without its spaces. */
static bool next_item(struct spop_str *list, struct spop_str *item)
{
    const char *p = list->ptr, *end = list->ptr + list->len;
    const char *comma;

    if (list->len == 0)
        return false;
    comma = memchr(p, ',', list->len);
    if (comma == NULL)
        comma = end;
    list->ptr = comma < end ? comma + 1 : end;
    list->len = (size_t)(end - list->ptr);
    while (p < comma && is_space(*p))
        p++;
    while (comma > p && is_space(comma[-1]))
        comma--;
    item->ptr = p;
    item->len = (size_t)(comma - p);
    return true;
}

bool spop_list_has(struct spop_str list, const char *item)
{
    struct spop_str it;

    while (next_item(&list, &it)) {
        if (str_is(it, item))
            return true;
    }
    return false;
}

/* An item "2.<digits>": announcing a major version covers all its minors. */
bool spop_versions_support_2(struct spop_str versions)
{
    struct spop_str it;

    while (next_item(&versions, &it)) {
        size_t i;

        if (it.len < 3 || it.ptr[0] != '2' || it.ptr[1] != '.')
            continue;
        for (i = 2; i < it.len && it.ptr[i] >= '0' && it.ptr[i] <= '9'; i++)
            ;
        if (i == it.len)
            return true;
    }
    return false;
}

enum spop_status spop_disconnect_parse(const uint8_t *payload, size_t len,
                                       struct spop_disconnect *d)
{
    struct spop_reader r;
    struct spop_str key;
    struct spop_data val;
    bool has_status = false;
    int ret;

    memset(d, 0, sizeof(*d));
    spop_reader_init(&r, payload, len);
    while ((ret = spop_read_kv(&r, &key, &val)) == 1) {
        if (str_is(key, "status-code")) {
            if (!data_to_u32(&val, &d->status))
                return SPOP_ST_INVALID;
            has_status = true;
        } else if (str_is(key, "message")) {
            if (val.type != SPOP_DATA_STR)
                return SPOP_ST_INVALID;
            d->message = val.u.str;
        }
    }
    if (ret < 0 || !has_status)
        return SPOP_ST_INVALID;
    return SPOP_ST_NONE;
}

const char *spop_status_text(uint32_t status)
{
    static const char *const text[] = {
        [SPOP_ST_NONE] = "normal",
        [SPOP_ST_IO] = "I/O error",
        [SPOP_ST_TIMEOUT] = "a timeout occurred",
        [SPOP_ST_TOO_BIG] = "frame is too big",
        [SPOP_ST_INVALID] = "invalid frame received",
        [SPOP_ST_NO_VSN] = "version value not found",
        [SPOP_ST_NO_FRAME_SIZE] = "max-frame-size value not found",
        [SPOP_ST_NO_CAP] = "capabilities value not found",
        [SPOP_ST_BAD_VSN] = "unsupported version",
        [SPOP_ST_BAD_FRAME_SIZE] = "max-frame-size too big or too small",
        [SPOP_ST_FRAG_NOT_SUP] = "payload fragmentation is not supported",
        [SPOP_ST_INTERLACED] = "invalid interlaced frames",
        [SPOP_ST_FRAMEID_NOTFOUND] = "frame-id not found",
        [SPOP_ST_RES] = "resource allocation error",
    };

    if (status < sizeof(text) / sizeof(text[0]))
        return text[status];
    return "unknown error";
}

/* ---- encoders ---- */

void spop_writer_init(struct spop_writer *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->cap = cap;
    w->off = 0;
    w->frame_start = 0;
    w->overflow = false;
}

static void put(struct spop_writer *w, const void *src, size_t n)
{
    if (w->overflow || n == 0)
        return;
    if (n > w->cap - w->off) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->off, src, n);
    w->off += n;
}

static void put_byte(struct spop_writer *w, uint8_t b)
{
    put(w, &b, 1);
}

void spop_frame_begin(struct spop_writer *w, uint8_t type, uint32_t flags, uint64_t stream_id,
                      uint64_t frame_id)
{
    uint8_t hdr[SPOP_LEN_PREFIX + 5] = {0};

    w->frame_start = w->off;
    hdr[SPOP_LEN_PREFIX] = type;
    put_be32(hdr + SPOP_LEN_PREFIX + 1, flags);
    put(w, hdr, sizeof(hdr));
    spop_write_varint(w, stream_id);
    spop_write_varint(w, frame_id);
}

size_t spop_frame_end(struct spop_writer *w)
{
    size_t total;

    if (w->overflow)
        return 0;
    total = w->off - w->frame_start;
    if (total - SPOP_LEN_PREFIX > UINT32_MAX) {
        w->overflow = true;
        return 0;
    }
    put_be32(w->p + w->frame_start, (uint32_t)(total - SPOP_LEN_PREFIX));
    return total;
}

void spop_write_varint(struct spop_writer *w, uint64_t v)
{
    uint8_t tmp[VARINT_MAX_LEN];

    put(w, tmp, spop_varint_encode(v, tmp, sizeof(tmp)));
}

void spop_write_str(struct spop_writer *w, const char *s, size_t len)
{
    spop_write_varint(w, len);
    put(w, s, len);
}

/* A value of no known type fails the writer like an overflow: a frame that
 * HAProxy would misread must not go out. */
void spop_write_data(struct spop_writer *w, const struct spop_data *d)
{
    switch (d->type) {
    case SPOP_DATA_NULL:
        put_byte(w, SPOP_DATA_NULL);
        break;
    case SPOP_DATA_BOOL:
        put_byte(w, SPOP_DATA_BOOL | (d->u.b ? BOOL_TRUE_FLAG : 0));
        break;
    case SPOP_DATA_INT32:
        put_byte(w, SPOP_DATA_INT32);
        spop_write_varint(w, (uint64_t)(int64_t)d->u.i32);
        break;
    case SPOP_DATA_UINT32:
        put_byte(w, SPOP_DATA_UINT32);
        spop_write_varint(w, d->u.u32);
        break;
    case SPOP_DATA_INT64:
        put_byte(w, SPOP_DATA_INT64);
        spop_write_varint(w, (uint64_t)d->u.i64);
        break;
    case SPOP_DATA_UINT64:
        put_byte(w, SPOP_DATA_UINT64);
        spop_write_varint(w, d->u.u64);
        break;
    case SPOP_DATA_IPV4:
        put_byte(w, SPOP_DATA_IPV4);
        put(w, &d->u.v4, 4);
        break;
    case SPOP_DATA_IPV6:
        put_byte(w, SPOP_DATA_IPV6);
        put(w, &d->u.v6, 16);
        break;
    case SPOP_DATA_STR:
    case SPOP_DATA_BIN:
        put_byte(w, d->type);
        spop_write_str(w, d->u.str.ptr, d->u.str.len);
        break;
    default:
        w->overflow = true;
        break;
    }
}

void spop_write_kv(struct spop_writer *w, const char *key, const struct spop_data *val)
{
    spop_write_str(w, key, strlen(key));
    spop_write_data(w, val);
}

void spop_write_message(struct spop_writer *w, const char *name, uint8_t nargs)
{
    spop_write_str(w, name, strlen(name));
    put_byte(w, nargs);
}

void spop_write_set_var(struct spop_writer *w, uint8_t scope, const char *name,
                        const struct spop_data *val)
{
    const uint8_t head[] = {SPOP_ACT_SET_VAR, 3, scope};

    put(w, head, sizeof(head));
    spop_write_str(w, name, strlen(name));
    spop_write_data(w, val);
}

void spop_write_unset_var(struct spop_writer *w, uint8_t scope, const char *name)
{
    const uint8_t head[] = {SPOP_ACT_UNSET_VAR, 2, scope};

    put(w, head, sizeof(head));
    spop_write_str(w, name, strlen(name));
}

static void write_kv_str(struct spop_writer *w, const char *key, const char *s)
{
    struct spop_data d = spop_str_data(s, strlen(s));

    spop_write_kv(w, key, &d);
}

static void write_kv_u32(struct spop_writer *w, const char *key, uint32_t v)
{
    struct spop_data d = spop_uint32_data(v);

    spop_write_kv(w, key, &d);
}

size_t spop_write_agent_hello(struct spop_writer *w, uint32_t max_frame_size,
                              const char *capabilities)
{
    spop_frame_begin(w, SPOP_FRAME_AGENT_HELLO, SPOP_FLAG_FIN, 0, 0);
    write_kv_str(w, "version", SPOP_VERSION);
    write_kv_u32(w, "max-frame-size", max_frame_size);
    write_kv_str(w, "capabilities", capabilities);
    return spop_frame_end(w);
}

size_t spop_write_disconnect(struct spop_writer *w, uint8_t type, uint32_t status,
                             const char *message)
{
    spop_frame_begin(w, type, SPOP_FLAG_FIN, 0, 0);
    write_kv_u32(w, "status-code", status);
    write_kv_str(w, "message", message);
    return spop_frame_end(w);
}

/* Keys in HAProxy 2.6's order; "healthcheck" only when true and "engine-id"
 * only when given, as 2.6 does, so tests can rebuild its frames byte for byte. */
size_t spop_write_haproxy_hello(struct spop_writer *w, const char *versions,
                                uint32_t max_frame_size, const char *capabilities, bool healthcheck,
                                const char *engine_id)
{
    spop_frame_begin(w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
    write_kv_str(w, "supported-versions", versions);
    write_kv_u32(w, "max-frame-size", max_frame_size);
    write_kv_str(w, "capabilities", capabilities);
    if (healthcheck) {
        struct spop_data t = spop_bool_data(true);

        spop_write_kv(w, "healthcheck", &t);
    }
    if (engine_id != NULL)
        write_kv_str(w, "engine-id", engine_id);
    return spop_frame_end(w);
}

struct spop_data spop_str_data(const char *s, size_t len)
{
    struct spop_data d = {.type = SPOP_DATA_STR};

    d.u.str.ptr = s;
    d.u.str.len = len;
    return d;
}

struct spop_data spop_bool_data(bool b)
{
    struct spop_data d = {.type = SPOP_DATA_BOOL};

    d.u.b = b;
    return d;
}

struct spop_data spop_int64_data(int64_t v)
{
    struct spop_data d = {.type = SPOP_DATA_INT64};

    d.u.i64 = v;
    return d;
}

struct spop_data spop_uint32_data(uint32_t v)
{
    struct spop_data d = {.type = SPOP_DATA_UINT32};

    d.u.u32 = v;
    return d;
}
