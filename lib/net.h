/*
 * Socket helpers shared by the binaries: listening sockets from HOST:PORT,
 * or from a Unix socket path.
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

/* The path of a Unix socket address, "unix@PATH" or an absolute "/PATH"
 * (HAProxy's spellings), or NULL when addr is not one. */
const char *rr_unix_path(const char *addr);

/* Opens a non-blocking listening Unix stream socket at path, mode 0660. A
 * socket file left there by a process that is gone is replaced; a live one
 * (something accepts on it) or a file that is not a socket is an error.
 * Returns the fd, or -1 with err filled as "<what> <path>: <reason>". */
int rr_listen_unix(const char *what, const char *path, int backlog, char *err, size_t errlen);

#endif
