/*
 * The agent-check responder, see agent_check.h. The answer fits in one
 * segment of a fresh socket, so it is written at accept and the socket closed.
 */
#include "backend/agent_check.h"

#include <sys/socket.h>
#include <unistd.h>

#include "lib/net.h"

static ev_io ac_io;
static int ac_fd = -1;

static void ac_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct server *s = io->data;
    for (;;) {
        int fd = accept4(ac_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        const char *line = server_draining(s) ? "drain\n" : "up\n";
        ssize_t w = send(fd, line, line[0] == 'd' ? 6 : 3, MSG_NOSIGNAL);
        (void)w;
        close(fd);
    }
}

int agent_check_start(struct ev_loop *loop, const char *addr, struct server *s, char *err,
                      size_t errlen)
{
    ac_fd = rr_listen_tcp("--agent-check-listen", addr, false, 128, err, errlen);
    if (ac_fd < 0)
        return -1;
    ev_io_init(&ac_io, ac_accept_cb, ac_fd, EV_READ);
    ac_io.data = s;
    ev_io_start(loop, &ac_io);
    return 0;
}

void agent_check_stop(struct ev_loop *loop)
{
    if (ac_fd < 0)
        return;
    ev_io_stop(loop, &ac_io);
    close(ac_fd);
    ac_fd = -1;
}
