/*
 * Unit tests of lib/net.c's Unix sockets: which addresses name one, and what
 * rr_listen_unix() does with the file already at the path. Real sockets, in
 * a temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/net.h"
#include "tests/unit/cases.h"

static const struct unix_case {
    const char *in;
    const char *path; /* NULL: not a Unix socket address */
} unix_cases[] = {
    {"unix@/run/rr/spoa.sock", "/run/rr/spoa.sock"},
    {"unix@relative.sock", "relative.sock"},
    {"/run/rr/spoa.sock", "/run/rr/spoa.sock"},
    {"127.0.0.1:12345", NULL},
    {"[::1]:12345", NULL},
    {"relative.sock", NULL},
    {"unix:/x", NULL},
    {"", NULL},
};

static void unix_path_recognises_haproxy_spellings(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(unix_cases); i++) {
        const char *got = rr_unix_path(unix_cases[i].in);
        if (unix_cases[i].path == NULL && got != NULL)
            fail_msg("\"%s\": got \"%s\", want NULL", unix_cases[i].in, got);
        if (unix_cases[i].path != NULL && (got == NULL || strcmp(got, unix_cases[i].path) != 0))
            fail_msg("\"%s\": got \"%s\", want \"%s\"", unix_cases[i].in, got ? got : "NULL",
                     unix_cases[i].path);
    }
    assert_null(rr_unix_path(NULL));
}

struct dir {
    char path[64];
    char sock[96];
};

static int dir_setup(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    snprintf(d->path, sizeof(d->path), "/tmp/rr-test-net.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->sock, sizeof(d->sock), "%s/agent.sock", d->path);
    *state = d;
    return 0;
}

static int dir_teardown(void **state)
{
    struct dir *d = *state;
    unlink(d->sock);
    rmdir(d->path);
    free(d);
    return 0;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_at(const struct dir *d)
{
    char err[256] = "";
    int lfd = rr_listen_unix("--listen", d->sock, 8, err, sizeof(err));
    if (lfd < 0)
        fail_msg("%s", err);
    return lfd;
}

/* A client connects to path (and is closed again). */
static void assert_connects(const char *path)
{
    int c = connect_to(path);
    assert_true(c >= 0);
    close(c);
}

static void listens_with_mode_0660(void **state)
{
    struct dir *d = *state;
    int lfd = listen_at(d);
    struct stat st;
    assert_int_equal(stat(d->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
    int c = connect_to(d->sock);
    assert_true(c >= 0);
    int a = accept(lfd, NULL, NULL);
    assert_true(a >= 0);
    close(a);
    close(c);
    close(lfd);
}

static void stale_socket_is_replaced(void **state)
{
    struct dir *d = *state;
    close(listen_at(d)); /* its file stays, and nothing accepts on it */
    assert_true(connect_to(d->sock) < 0);

    int lfd = listen_at(d);
    assert_connects(d->sock);
    close(lfd);
}

static void live_socket_is_refused(void **state)
{
    struct dir *d = *state;
    char err[256] = "";
    int first = listen_at(d);
    assert_int_equal(rr_listen_unix("--listen", d->sock, 8, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--listen "));
    assert_non_null(strstr(err, strerror(EADDRINUSE)));
    assert_connects(d->sock); /* the first one still works */
    close(first);
}

static void regular_file_is_kept_and_refused(void **state)
{
    struct dir *d = *state;
    FILE *f = fopen(d->sock, "w");
    assert_non_null(f);
    fputs("not a socket\n", f);
    fclose(f);
    char err[256] = "";
    assert_int_equal(rr_listen_unix("--listen", d->sock, 8, err, sizeof(err)), -1);
    assert_non_null(strstr(err, strerror(EADDRINUSE)));
    struct stat st;
    assert_int_equal(stat(d->sock, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void too_long_path_is_an_error(void **state)
{
    (void)state;
    char path[200];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    char err[512] = "";
    assert_int_equal(rr_listen_unix("--listen", path, 8, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "a Unix socket path is 1 to"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unix_path_recognises_haproxy_spellings),
        cmocka_unit_test_setup_teardown(listens_with_mode_0660, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(stale_socket_is_replaced, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(live_socket_is_refused, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(regular_file_is_kept_and_refused, dir_setup,
                                        dir_teardown),
        cmocka_unit_test(too_long_path_is_an_error),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
