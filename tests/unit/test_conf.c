/*
 * Unit tests of lib/conf.c: options from defaults, RR_* environment variables
 * and flags, and host:port parsing.
 *
 * rr_opts_parse ends the program on --help and on any error, so every case
 * runs it in a child process with its own environment; the child prints the
 * parsed values, and the test compares the exit status, stdout and stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/conf.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *o_listen, *o_issuer;
static int64_t o_threads;
static bool o_verbose, o_cache;
static struct rr_strlist o_claims;

static const struct rr_opt opts[] = {
    {"listen", RR_OPT_STR, &o_listen, "127.0.0.1:4000", "HOST:PORT", "address to listen on"},
    {"threads", RR_OPT_INT, &o_threads, "2", "N", "worker threads", 1, 64},
    {"verbose", RR_OPT_BOOL, &o_verbose, "false", NULL, "log more"},
    {"cache", RR_OPT_BOOL, &o_cache, "true", NULL, "cache verified tokens"},
    {"claim-var", RR_OPT_LIST, &o_claims, NULL, "NAME", "claim to copy to a variable"},
    {"issuer", RR_OPT_STR, &o_issuer, NULL, "ISS", "expected iss claim"},
    RR_OPT_END,
};

static const char *const env_vars[] = {"RR_LISTEN", "RR_THREADS",   "RR_VERBOSE",
                                       "RR_CACHE",  "RR_CLAIM_VAR", "RR_ISSUER"};

/* What one run of rr_opts_parse ended with. */
struct outcome {
    int status; /* exit status, or -1 if the child did not exit */
    char out[8192];
    char err[2048];
};

static void print_values(void)
{
    printf("listen=%s threads=%" PRId64 " verbose=%s cache=%s claim-var=[", o_listen, o_threads,
           o_verbose ? "true" : "false", o_cache ? "true" : "false");
    for (size_t i = 0; i < o_claims.n; i++)
        printf("%s%s", i ? "," : "", o_claims.v[i]);
    printf("] issuer=%s\n", o_issuer ? o_issuer : "(unset)");
}

static void read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
}

/* Parses argv (NULL-terminated, without the program name) in a child whose
 * environment is `env` ("NAME=value" items) on top of no RR_* variable. */
static void run(const char *const *env, const char *const *args, struct outcome *o)
{
    int out[2], err[2];
    pid_t pid;
    int st;

    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    fflush(NULL); /* or the child's exit would write cmocka's buffered output again */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[16] = {"rrtest"};
        int argc = 1;

        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        for (size_t i = 0; i < N_ELEMS(env_vars); i++)
            unsetenv(env_vars[i]);
        for (; env && *env; env++)
            putenv((char *)*env);
        for (; args && *args && argc < 15; args++)
            argv[argc++] = (char *)*args;
        rr_opts_parse(opts, "rrtest", "1.2.3", "rrtest: options for tests", argc, argv);
        print_values();
        exit(0);
    }
    close(out[1]);
    close(err[1]);
    read_all(out[0], o->out, sizeof(o->out));
    read_all(err[0], o->err, sizeof(o->err));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define DEFAULTS                                                                                   \
    "listen=127.0.0.1:4000 threads=2 verbose=false cache=true claim-var=[] issuer=(unset)\n"

static const struct conf_case {
    const char *name;
    const char *env[4];
    const char *args[8];
    int status;
    const char *out; /* stdout, exactly */
    const char *err; /* stderr, exactly */
} cases[] = {
    {"defaults_apply_without_flag_or_environment", {NULL}, {NULL}, 0, DEFAULTS, ""},
    {"environment_sets_string_int_and_bools",
     {"RR_LISTEN=0.0.0.0:5000", "RR_THREADS=8", "RR_VERBOSE=yes", "RR_CACHE=0"},
     {NULL},
     0,
     "listen=0.0.0.0:5000 threads=8 verbose=true cache=false claim-var=[] issuer=(unset)\n",
     ""},
    {"environment_bools_ignore_case",
     {"RR_VERBOSE=ON", "RR_CACHE=False"},
     {NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=true cache=false claim-var=[] issuer=(unset)\n",
     ""},
    {"environment_list_is_split_on_spaces",
     {"RR_CLAIM_VAR=  role rooms\tadmin "},
     {NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=false cache=true claim-var=[role,rooms,admin] "
     "issuer=(unset)\n",
     ""},
    {"empty_environment_value_keeps_the_default",
     {"RR_THREADS=", "RR_LISTEN="},
     {NULL},
     0,
     DEFAULTS,
     ""},
    {"flag_beats_environment",
     {"RR_THREADS=8", "RR_ISSUER=env"},
     {"--threads", "4", NULL},
     0,
     "listen=127.0.0.1:4000 threads=4 verbose=false cache=true claim-var=[] issuer=env\n",
     ""},
    {"bad_environment_value_is_not_read_when_the_flag_is_given",
     {"RR_THREADS=many", "RR_VERBOSE=maybe"},
     {"--threads=4", "--verbose", NULL},
     0,
     "listen=127.0.0.1:4000 threads=4 verbose=true cache=true claim-var=[] issuer=(unset)\n",
     ""},
    {"bad_environment_value_exits_2_naming_the_variable",
     {"RR_THREADS=many"},
     {NULL},
     2,
     "",
     "rrtest: RR_THREADS: 'many' is not an integer\n"},
    {"environment_int_out_of_range_exits_2",
     {"RR_THREADS=100"},
     {NULL},
     2,
     "",
     "rrtest: RR_THREADS: 100 is out of range (1..64)\n"},
    {"bad_environment_bool_exits_2",
     {"RR_CACHE=maybe"},
     {NULL},
     2,
     "",
     "rrtest: RR_CACHE: 'maybe' is not a boolean (true/false)\n"},
    {"name_equals_value_form",
     {NULL},
     {"--listen=[::1]:80", "--issuer=a=b", NULL},
     0,
     "listen=[::1]:80 threads=2 verbose=false cache=true claim-var=[] issuer=a=b\n",
     ""},
    {"name_equals_empty_value_is_an_empty_string",
     {"RR_ISSUER=env"},
     {"--issuer=", NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=false cache=true claim-var=[] issuer=\n",
     ""},
    {"bool_flag_alone_is_true_and_takes_no_value",
     {NULL},
     {"--verbose", "--threads", "3", NULL},
     0,
     "listen=127.0.0.1:4000 threads=3 verbose=true cache=true claim-var=[] issuer=(unset)\n",
     ""},
    {"bool_flag_equals_false",
     {"RR_VERBOSE=1"},
     {"--cache=false", "--verbose=no", NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=false cache=false claim-var=[] issuer=(unset)\n",
     ""},
    {"bool_flag_with_bad_value_exits_2",
     {NULL},
     {"--verbose=maybe", NULL},
     2,
     "",
     "rrtest: --verbose: 'maybe' is not a boolean (true/false)\n"},
    {"list_flag_repeats",
     {NULL},
     {"--claim-var", "role", "--claim-var=rooms", NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=false cache=true claim-var=[role,rooms] "
     "issuer=(unset)\n",
     ""},
    {"list_flag_replaces_the_environment_list",
     {"RR_CLAIM_VAR=a b c"},
     {"--claim-var", "role", NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=false cache=true claim-var=[role] issuer=(unset)\n",
     ""},
    {"value_that_looks_like_a_flag_is_a_value",
     {NULL},
     {"--issuer", "--help", NULL},
     0,
     "listen=127.0.0.1:4000 threads=2 verbose=false cache=true claim-var=[] issuer=--help\n",
     ""},
    {"int_at_its_bounds",
     {NULL},
     {"--threads", "64", NULL},
     0,
     "listen=127.0.0.1:4000 threads=64 verbose=false cache=true claim-var=[] issuer=(unset)\n",
     ""},
    {"int_below_min_exits_2",
     {NULL},
     {"--threads", "0", NULL},
     2,
     "",
     "rrtest: --threads: 0 is out of range (1..64)\n"},
    {"int_above_max_exits_2",
     {NULL},
     {"--threads=65", NULL},
     2,
     "",
     "rrtest: --threads: 65 is out of range (1..64)\n"},
    {"int_with_trailing_text_exits_2",
     {NULL},
     {"--threads", "4x", NULL},
     2,
     "",
     "rrtest: --threads: '4x' is not an integer\n"},
    {"int_empty_exits_2",
     {NULL},
     {"--threads=", NULL},
     2,
     "",
     "rrtest: --threads: '' is not an integer\n"},
    {"int_past_int64_exits_2",
     {NULL},
     {"--threads", "99999999999999999999", NULL},
     2,
     "",
     "rrtest: --threads: '99999999999999999999' is not an integer\n"},
    {"flag_without_its_value_exits_2",
     {NULL},
     {"--threads", NULL},
     2,
     "",
     "rrtest: --threads needs a value\n"},
    {"unknown_option_exits_2",
     {NULL},
     {"--thread", "4", NULL},
     2,
     "",
     "rrtest: unknown option --thread (see --help)\n"},
    {"unknown_option_with_value_is_named_without_it",
     {NULL},
     {"--nope=1", NULL},
     2,
     "",
     "rrtest: unknown option --nope (see --help)\n"},
    {"positional_argument_exits_2",
     {NULL},
     {"extra", NULL},
     2,
     "",
     "rrtest: unexpected argument 'extra' (see --help)\n"},
    {"version_exits_0", {"RR_THREADS=many"}, {"--version", NULL}, 0, "rrtest 1.2.3\n", ""},
};

static void conf_case(void **state)
{
    const struct conf_case *c = *state;
    struct outcome o;

    run(c->env, c->args, &o);
    assert_string_equal(o.err, c->err);
    assert_string_equal(o.out, c->out);
    assert_int_equal(o.status, c->status);
}

/* --help exits 0 before any value is checked, and shows every option with
 * its variable and default. */
static void help_lists_every_option_with_its_variable(void **state)
{
    (void)state;
    static const char *const env[] = {"RR_THREADS=many", NULL};
    static const char *const args[] = {"--threads", "0", "--help", NULL};
    static const char *const lines[] = {
        "rrtest: options for tests\n",
        "  --listen HOST:PORT                 address to listen on\n"
        "                                     [RR_LISTEN] default: 127.0.0.1:4000\n",
        "  --threads N                        worker threads\n"
        "                                     [RR_THREADS] default: 2\n",
        "  --verbose                          log more\n"
        "                                     [RR_VERBOSE] default: false\n",
        "  --cache                            cache verified tokens\n"
        "                                     [RR_CACHE] default: true\n",
        "  --claim-var NAME                   claim to copy to a variable (repeatable)\n"
        "                                     [RR_CLAIM_VAR]\n",
        "  --issuer ISS                       expected iss claim\n"
        "                                     [RR_ISSUER]\n",
        "  --help ",
        "  --version ",
    };
    struct outcome o;

    run(env, args, &o);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.err, "");
    assert_memory_equal(o.out, lines[0], strlen(lines[0]));
    for (size_t i = 1; i < N_ELEMS(lines); i++)
        if (!strstr(o.out, lines[i]))
            fail_msg("--help lacks\n%s\nin\n%s", lines[i], o.out);
}

static void short_h_is_help(void **state)
{
    (void)state;
    static const char *const args[] = {"-h", NULL};
    struct outcome o;

    run(NULL, args, &o);
    assert_int_equal(o.status, 0);
    assert_non_null(strstr(o.out, "[RR_THREADS] default: 2\n"));
}

/* ---- host:port ---- */

static const struct hostport_case {
    const char *in;
    const char *host;
    int rc;
    uint16_t port;
} hostport_cases[] = {
    {"h:1", "h", 0, 1},
    {"127.0.0.1:8080", "127.0.0.1", 0, 8080},
    {"[::1]:80", "::1", 0, 80},
    {"h:0", "h", 0, 0},
    {"h:65535", "h", 0, 65535},
    {"h:70000", NULL, -1, 0},
    {"h:65536", NULL, -1, 0},
    {"h:-1", NULL, -1, 0},
    {"h:80x", NULL, -1, 0},
    {"h:", NULL, -1, 0},
    {"h", NULL, -1, 0},
    {":80", NULL, -1, 0},
    {"[]:80", NULL, -1, 0},
    {"[::1]80", NULL, -1, 0},
    {"[::1", NULL, -1, 0},
    {"", NULL, -1, 0},
    {"a-host-name-longer-than-the-buffer:80", NULL, -1, 0},
};

static void parse_hostport_splits_host_and_port(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(hostport_cases); i++) {
        const struct hostport_case *c = &hostport_cases[i];
        char host[16] = "untouched";
        uint16_t port = 7;
        int rc = rr_parse_hostport(c->in, host, sizeof(host), &port);

        if (rc != c->rc)
            fail_msg("\"%s\": returned %d, want %d", c->in, rc, c->rc);
        assert_string_equal(host, c->rc == 0 ? c->host : "untouched");
        assert_int_equal(port, c->rc == 0 ? c->port : 7);
    }
}

int main(void)
{
    struct CMUnitTest tests[N_ELEMS(cases) + 3];
    size_t n = 0;

    for (size_t i = 0; i < N_ELEMS(cases); i++)
        tests[n++] = (struct CMUnitTest){cases[i].name, conf_case, NULL, NULL, (void *)&cases[i]};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(help_lists_every_option_with_its_variable);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(short_h_is_help);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(parse_hostport_splits_host_and_port);
    return _cmocka_run_group_tests("conf", tests, n, NULL, NULL);
}
