/*
 * The agent's operations endpoint (--metrics-listen): GET /metrics
 * (Prometheus text) and GET /health, one request per connection, on the main
 * thread's loop. Not a general HTTP server.
 */
#ifndef RR_SPOA_OPS_HTTP_H
#define RR_SPOA_OPS_HTTP_H

#include <ev.h>
#include <stddef.h>

/* Listens on addr (HOST:PORT). Returns 0, or -1 with err filled. */
int spoa_ops_start(struct ev_loop *loop, const char *addr, char *err, size_t errlen);
void spoa_ops_stop(struct ev_loop *loop);

#endif
