/*
 * The agent's /metrics and /health, see ops_http.h. Requests are parsed with
 * llhttp; a request that is not complete within 5 s or 8 KiB is dropped.
 */
#include "spoa/ops_http.h"

#include <errno.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "spoa/stats.h"

#define OPS_MAX_REQUEST 8192

struct ops_conn {
    ev_io io;
    ev_timer timer;
    int fd;
    llhttp_t parser;
    char url[256];
    size_t url_len;
    size_t received;
    bool complete;
};

static ev_io ops_listen_io;
static int ops_lfd = -1;
static llhttp_settings_t ops_settings;

static void ops_close(struct ev_loop *loop, struct ops_conn *c)
{
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    close(c->fd);
    free(c);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct ops_conn *c = p->data;
    if (c->url_len + len >= sizeof(c->url))
        return -1;
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_complete(llhttp_t *p)
{
    struct ops_conn *c = p->data;
    c->complete = true;
    return HPE_PAUSED;
}

/* Blocking-free best effort: responses are small and the socket is fresh. */
static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *reason, const char *ctype, const char *body,
                    size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, ctype, len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void serve(struct ops_conn *c)
{
    const char *path = c->url;
    size_t plen = strcspn(path, "?");
    int method = llhttp_get_method(&c->parser);
    bool get = method == HTTP_GET || method == HTTP_HEAD;
    if (plen == 8 && strncmp(path, "/metrics", 8) == 0 && get) {
        struct rr_text t = {0};
        spoa_stats_render(&t);
        if (t.oom) {
            respond(c->fd, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
        } else {
            respond(c->fd, 200, "OK", "text/plain; version=0.0.4", t.p, t.len);
        }
        rr_text_free(&t);
    } else if (plen == 7 && strncmp(path, "/health", 7) == 0 && get) {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        respond(c->fd, 200, "OK", "application/json", ok, sizeof(ok) - 1);
    } else if ((plen == 8 && strncmp(path, "/metrics", 8) == 0) ||
               (plen == 7 && strncmp(path, "/health", 7) == 0)) {
        respond(c->fd, 405, "Method Not Allowed", "text/plain", "method not allowed\n", 19);
    } else {
        respond(c->fd, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

static void ops_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct ops_conn *c = io->data;
    char buf[2048];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        ops_close(loop, c);
        return;
    }
    c->received += (size_t)n;
    llhttp_errno_t e = llhttp_execute(&c->parser, buf, (size_t)n);
    if (c->complete) {
        serve(c);
        ops_close(loop, c);
    } else if (e != HPE_OK || c->received > OPS_MAX_REQUEST) {
        respond(c->fd, 400, "Bad Request", "text/plain", "bad request\n", 12);
        ops_close(loop, c);
    }
}

static void ops_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    ops_close(loop, t->data);
}

static void ops_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)io;
    (void)revents;
    for (;;) {
        int fd = accept4(ops_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct ops_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        llhttp_init(&c->parser, HTTP_REQUEST, &ops_settings);
        c->parser.data = c;
        ev_io_init(&c->io, ops_read_cb, fd, EV_READ);
        c->io.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_init(&c->timer, ops_timeout_cb, 5.0, 0.0);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
    }
}

int spoa_ops_start(struct ev_loop *loop, const char *addr, char *err, size_t errlen)
{
    int fd = rr_listen_tcp("--metrics-listen", addr, false, 128, err, errlen);
    if (fd < 0)
        return -1;
    llhttp_settings_init(&ops_settings);
    ops_settings.on_url = on_url;
    ops_settings.on_message_complete = on_complete;
    ops_lfd = fd;
    ev_io_init(&ops_listen_io, ops_accept_cb, fd, EV_READ);
    ev_io_start(loop, &ops_listen_io);
    return 0;
}

void spoa_ops_stop(struct ev_loop *loop)
{
    if (ops_lfd < 0)
        return;
    ev_io_stop(loop, &ops_listen_io);
    close(ops_lfd);
    ops_lfd = -1;
}
