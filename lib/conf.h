/*
 * Command-line and environment configuration, table-driven.
 *
 * Each option is a --kebab-case flag and an RR_UPPER_SNAKE environment
 * variable; the flag beats the environment, which beats the default. A bad
 * value ends the program with exit status 2 and one line naming the option.
 * --help prints every option with its variable and default.
 */
#ifndef RR_CONF_H
#define RR_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rr_opt_kind {
    RR_OPT_STR,  /* const char ** */
    RR_OPT_INT,  /* int64_t *, within [min, max] */
    RR_OPT_BOOL, /* bool *: "--x" alone is true; values 1/0, true/false, yes/no, on/off */
    RR_OPT_LIST, /* struct rr_strlist *: repeat the flag; in the environment, items
                  * separated by spaces */
};

struct rr_strlist {
    const char **v;
    size_t n;
};

struct rr_opt {
    const char *name; /* without the leading "--" */
    enum rr_opt_kind kind;
    void *dst;
    const char *def;     /* default, as it would be written on the command line; NULL = unset */
    const char *metavar; /* shown in --help, e.g. "FILE" */
    const char *help;
    int64_t min, max; /* RR_OPT_INT bounds */
};

#define RR_OPT_END                                                                                 \
    {                                                                                              \
        NULL, RR_OPT_STR, NULL, NULL, NULL, NULL, 0, 0                                             \
    }

/* Parses defaults, environment and argv into the options' destinations.
 * Prints help or version and exits 0 for --help / --version; exits 2 on any
 * error. `about` is the first line of --help. */
void rr_opts_parse(const struct rr_opt *opts, const char *prog, const char *version,
                   const char *about, int argc, char **argv);

/* The same for a program that also takes arguments (words not starting with
 * "--", anywhere on the line): up to max_args of them are stored in args, in
 * order; more exits 2. Returns how many there were. */
int rr_opts_parse_args(const struct rr_opt *opts, const char *prog, const char *version,
                       const char *about, int argc, char **argv, const char **args, int max_args);

/* Exits 2 with "prog: msg" (for checks across options, after parsing). */
void rr_opts_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Exits 2 with "<flag>: '<addr>' is not HOST:PORT" unless addr (NULL: unset)
 * parses: a listen address is checked with the options, not when binding. */
void rr_opts_check_hostport(const char *flag, const char *addr);

/* The same, for a listening address that may also be a Unix socket path
 * ("unix@PATH" or "/PATH"). */
void rr_opts_check_listen(const char *flag, const char *addr);

/* Splits "host:port" ("[v6]:port" too) into host and port; returns 0 or -1. */
int rr_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
