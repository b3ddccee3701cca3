/*
 * Socket helpers shared by the binaries: listening sockets from HOST:PORT.
 */
#ifndef RR_NET_H
#define RR_NET_H

#include <stdbool.h>
#include <stddef.h>

/* Opens a non-blocking listening TCP socket on addr ("HOST:PORT" or
 * "[V6]:PORT"). With reuseport, several sockets may listen on the same port
 * (one per worker thread). Returns the fd, or -1 with err filled as
 * "<what> <addr>: <reason>". */
int rr_listen_tcp(const char *what, const char *addr, bool reuseport, int backlog, char *err,
                  size_t errlen);

#endif
