/*
 * Shared frame buffers and per-connection output queues, see outq.h.
 * Single-threaded: reference counts are plain integers.
 */
#include "backend/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define OUTQ_IOV 64

struct wsbuf *wsbuf_new(size_t len)
{
    struct wsbuf *b = malloc(sizeof(*b) + len);
    if (!b)
        return NULL;
    b->refcnt = 1;
    b->len = (uint32_t)len;
    return b;
}

void wsbuf_unref(struct wsbuf *b)
{
    if (--b->refcnt == 0)
        free(b);
}

void outq_init(struct outq *q)
{
    memset(q, 0, sizeof(*q));
    q->ring = q->inline_ring;
    q->cap = OUTQ_INLINE;
}

static int outq_grow(struct outq *q)
{
    uint32_t ncap = q->cap * 2;
    struct wsbuf **nr = malloc(ncap * sizeof(struct wsbuf *));
    if (!nr)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        nr[i] = q->ring[(q->head + i) % q->cap];
    if (q->ring != q->inline_ring)
        free(q->ring);
    q->ring = nr;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

int outq_push(struct outq *q, struct wsbuf *b)
{
    if (q->count == q->cap && outq_grow(q) < 0)
        return -1;
    q->ring[(q->head + q->count) % q->cap] = wsbuf_ref(b);
    q->count++;
    q->bytes += b->len;
    return 0;
}

/* Drops the first n written bytes from the front of the queue. */
static void outq_consume(struct outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        struct wsbuf *b = q->ring[q->head];
        size_t left = b->len - q->off;
        if (n < left) {
            q->off += (uint32_t)n;
            return;
        }
        n -= left;
        q->off = 0;
        wsbuf_unref(b);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
}

int outq_flush(struct outq *q, int fd)
{
    while (q->count > 0) {
        struct iovec iov[OUTQ_IOV];
        int n = 0;
        for (uint32_t i = 0; i < q->count && n < OUTQ_IOV; i++, n++) {
            struct wsbuf *b = q->ring[(q->head + i) % q->cap];
            size_t skip = i == 0 ? q->off : 0;
            iov[n].iov_base = b->data + skip;
            iov[n].iov_len = b->len - skip;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        outq_consume(q, (size_t)w);
    }
    /* Back to the inline ring once drained, so a burst does not pin memory. */
    if (q->ring != q->inline_ring) {
        free(q->ring);
        q->ring = q->inline_ring;
        q->cap = OUTQ_INLINE;
    }
    q->head = 0;
    return 1;
}

void outq_clear(struct outq *q)
{
    while (q->count > 0) {
        wsbuf_unref(q->ring[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    if (q->ring != q->inline_ring)
        free(q->ring);
    outq_init(q);
}

void outq_drop_unsent(struct outq *q)
{
    if (q->off == 0) {
        outq_clear(q);
        return;
    }
    while (q->count > 1) {
        struct wsbuf *b = q->ring[(q->head + q->count - 1) % q->cap];
        q->bytes -= b->len;
        wsbuf_unref(b);
        q->count--;
    }
}
