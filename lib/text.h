/*
 * A growable text buffer: what the Prometheus renderer and the JSON builders
 * write into. Once an allocation fails, `oom` is set and writes are dropped,
 * so a caller checks once at the end.
 */
#ifndef RR_TEXT_H
#define RR_TEXT_H

#include <stddef.h>

struct rr_text {
    char *p;
    size_t len, cap;
    int oom;
};

void rr_text_printf(struct rr_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rr_text_append(struct rr_text *t, const char *s, size_t len);
/* Makes room for n more bytes; returns a pointer to them, or NULL (oom). */
char *rr_text_reserve(struct rr_text *t, size_t n);
void rr_text_free(struct rr_text *t);

#endif
