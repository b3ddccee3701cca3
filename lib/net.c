/*
 * Socket helpers, see net.h.
 */
#include "lib/net.h"

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/conf.h"

int rr_listen_tcp(const char *what, const char *addr, bool reuseport, int backlog, char *err,
                  size_t errlen)
{
    char host[256];
    uint16_t port;
    if (rr_parse_hostport(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "%s: '%s' is not HOST:PORT", what, addr);
        return -1;
    }
    char pbuf[8];
    snprintf(pbuf, sizeof(pbuf), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host, pbuf, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s %s: %s", what, addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        snprintf(err, errlen, "%s %s: %s", what, addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}
