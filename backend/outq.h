/*
 * Output of the backend: frames framed once into reference-counted buffers
 * (a room message is one wsbuf shared by all its recipients), and a queue of
 * buffer references per connection that is written with one writev per loop
 * pass. The queue keeps two references inline so an idle connection costs no
 * heap for it.
 */
#ifndef RR_OUTQ_H
#define RR_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wsbuf {
    uint32_t refcnt;
    uint32_t len;
    uint8_t data[];
};

/* A buffer with room for len bytes and one reference, or NULL. */
struct wsbuf *wsbuf_new(size_t len);

static inline struct wsbuf *wsbuf_ref(struct wsbuf *b)
{
    b->refcnt++;
    return b;
}

void wsbuf_unref(struct wsbuf *b);

#define OUTQ_INLINE 2

struct outq {
    struct wsbuf **ring; /* points at `inline_ring` until more is needed */
    uint32_t head, count, cap;
    uint32_t off; /* bytes of ring[head] already written */
    size_t bytes; /* bytes queued and not yet written */
    struct wsbuf *inline_ring[OUTQ_INLINE];
};

void outq_init(struct outq *q);
/* Queues a reference (taken here). Returns -1 on allocation failure. */
int outq_push(struct outq *q, struct wsbuf *b);
/* Writes as much as the socket takes, one writev of up to 64 buffers at a
 * time. Returns 1 when the queue is empty, 0 when the socket is full (wait
 * for EV_WRITE), -1 on a socket error (errno set). */
int outq_flush(struct outq *q, int fd);
/* Drops everything queued and frees the ring. */
void outq_clear(struct outq *q);
/* Drops what has not begun to be written; a frame partly written stays, so
 * that what follows on the wire (a close frame) starts on a frame boundary. */
void outq_drop_unsent(struct outq *q);

#endif
