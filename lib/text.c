/*
 * Growable text buffer, see text.h.
 */
#include "lib/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rr_text_reserve(struct rr_text *t, size_t n)
{
    if (t->oom)
        return NULL;
    if (t->len + n + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4096;
        while (ncap < t->len + n + 1)
            ncap *= 2;
        char *np = realloc(t->p, ncap);
        if (!np) {
            t->oom = 1;
            return NULL;
        }
        t->p = np;
        t->cap = ncap;
    }
    return t->p + t->len;
}

void rr_text_append(struct rr_text *t, const char *s, size_t len)
{
    char *dst = rr_text_reserve(t, len);
    if (!dst)
        return;
    memcpy(dst, s, len);
    t->len += len;
    t->p[t->len] = '\0';
}

void rr_text_printf(struct rr_text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        if (!rr_text_reserve(t, (size_t)n))
            return;
    }
}

void rr_text_free(struct rr_text *t)
{
    free(t->p);
    t->p = NULL;
    t->len = t->cap = 0;
}
