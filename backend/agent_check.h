/*
 * HAProxy's agent-check port (--agent-check-listen): each connection gets one
 * line, "up" or "drain", and is closed. HAProxy's `agent-check` reads it to
 * stop sending new connections to a draining backend.
 */
#ifndef RR_AGENT_CHECK_H
#define RR_AGENT_CHECK_H

#include <ev.h>
#include <stddef.h>

#include "backend/server.h"

int agent_check_start(struct ev_loop *loop, const char *addr, struct server *s, char *err,
                      size_t errlen);
void agent_check_stop(struct ev_loop *loop);

#endif
