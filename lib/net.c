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
#include <sys/stat.h>
#include <sys/un.h>
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

const char *rr_unix_path(const char *addr)
{
    if (!addr)
        return NULL;
    if (strncmp(addr, "unix@", 5) == 0)
        return addr + 5;
    return addr[0] == '/' ? addr : NULL;
}

/* A socket file at path that nothing accepts on any more. */
static bool stale_socket(const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool stale = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

int rr_listen_unix(const char *what, const char *path, int backlog, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%s %s: a Unix socket path is 1 to %zu bytes", what, path,
                 sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, len + 1);
    if (stale_socket(&sa))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(path, 0660) < 0 || listen(fd, backlog) < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}
