/*
 * libFuzzer target for the SPOP codec (spoa/spop.c). The input is a receive
 * buffer: it is cut into frames as the agent does, and each frame's payload
 * is read as a HELLO, a DISCONNECT, a list of messages and a list of actions,
 * whatever its type says. Oracles besides the sanitizers: a reader never moves
 * past its payload, a varint re-encodes to the bytes it came from, and every
 * decoded value encodes and decodes back to itself.
 * Not fuzzed here: the agent's answers and token checks (fuzz_jwt.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spoa/spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Reads every byte of a decoded string, so ASan sees one pointing outside the input. */
static void touch(struct spop_str s)
{
    volatile uint8_t sum = 0;

    for (size_t i = 0; i < s.len; i++)
        sum = (uint8_t)(sum + (uint8_t)s.ptr[i]);
    (void)sum;
}

static bool same_data(const struct spop_data *a, const struct spop_data *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case SPOP_DATA_NULL:
        return true;
    case SPOP_DATA_BOOL:
        return a->u.b == b->u.b;
    case SPOP_DATA_INT32:
        return a->u.i32 == b->u.i32;
    case SPOP_DATA_UINT32:
        return a->u.u32 == b->u.u32;
    case SPOP_DATA_INT64:
        return a->u.i64 == b->u.i64;
    case SPOP_DATA_UINT64:
        return a->u.u64 == b->u.u64;
    case SPOP_DATA_IPV4:
        return memcmp(&a->u.v4, &b->u.v4, sizeof(a->u.v4)) == 0;
    case SPOP_DATA_IPV6:
        return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
    case SPOP_DATA_STR:
    case SPOP_DATA_BIN:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    default:
        return false;
    }
}

static void round_trip(const struct spop_data *d)
{
    static uint8_t buf[SPOP_MAX_FRAME_SIZE + 16];
    struct spop_writer w;
    struct spop_reader r;
    struct spop_data back;

    if (d->type == SPOP_DATA_STR || d->type == SPOP_DATA_BIN)
        touch(d->u.str);
    spop_writer_init(&w, buf, sizeof(buf));
    spop_write_data(&w, d);
    check(!w.overflow);
    spop_reader_init(&r, buf, w.off);
    check(spop_read_data(&r, &back) == 1 && spop_reader_done(&r) && same_data(d, &back));
}

static void read_messages(const struct spop_frame *f)
{
    struct spop_reader r;
    struct spop_str name, key;
    struct spop_data val;
    uint8_t nargs;

    spop_reader_init(&r, f->payload, f->payload_len);
    while (spop_read_message(&r, &name, &nargs) == 1) {
        touch(name);
        for (uint8_t i = 0; i < nargs; i++) {
            if (spop_read_kv(&r, &key, &val) != 1)
                return;
            touch(key);
            round_trip(&val);
        }
        check(r.off <= r.len);
    }
    check(r.off <= r.len);
}

static void read_actions(const struct spop_frame *f)
{
    struct spop_reader r;
    struct spop_str name;
    struct spop_data val;
    uint8_t type, scope;

    spop_reader_init(&r, f->payload, f->payload_len);
    while (spop_read_action(&r, &type, &scope, &name, &val) == 1) {
        check(scope <= SPOP_SCOPE_RES);
        touch(name);
        round_trip(&val);
        check(r.off <= r.len);
    }
    check(r.off <= r.len);
}

static void read_frame(const struct spop_frame *f)
{
    struct spop_hello h;
    struct spop_disconnect d;

    if (spop_hello_parse(f->payload, f->payload_len, &h) == SPOP_ST_NONE) {
        touch(h.versions);
        touch(h.capabilities);
        touch(h.engine_id);
        spop_versions_support_2(h.versions);
        spop_list_has(h.capabilities, "pipelining");
    }
    if (spop_disconnect_parse(f->payload, f->payload_len, &d) == SPOP_ST_NONE) {
        touch(d.message);
        check(spop_status_text(d.status) != NULL);
    }
    read_messages(f);
    read_actions(f);
}

/* The encoding is one-to-one: decoding then encoding gives back the same bytes. */
static void varint_round_trip(const uint8_t *data, size_t size)
{
    uint8_t again[10];
    uint64_t v;
    int n = spop_varint_decode(data, size, &v);

    check(n <= 10 && (size_t)(n < 0 ? 0 : n) <= size);
    if (n > 0)
        check(spop_varint_encode(v, again, sizeof(again)) == (size_t)n &&
              memcmp(again, data, (size_t)n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    varint_round_trip(data, size);
    while (off < size) {
        struct spop_frame f;
        int n = spop_frame_parse(data + off, size - off, SPOP_MAX_FRAME_SIZE, &f);

        if (n <= 0)
            break;
        check((size_t)n <= size - off && f.payload >= data + off &&
              f.payload + f.payload_len == data + off + (size_t)n);
        read_frame(&f);
        off += (size_t)n;
    }
    return 0;
}
