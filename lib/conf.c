/*
 * Options from flags and environment, see conf.h.
 */
#include "lib/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/net.h"

static const char *conf_prog = "roomrelay";

void rr_opts_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", conf_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* "hmac-secret-file" -> "RR_HMAC_SECRET_FILE" */
static void env_name(const char *name, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "RR_");
    for (const char *p = name; *p && o + 1 < cap; p++)
        out[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Sets one option from text; `from` names the origin for the error line. */
static void set_value(const struct rr_opt *o, const char *v, const char *from)
{
    switch (o->kind) {
    case RR_OPT_STR:
        *(const char **)o->dst = v;
        break;
    case RR_OPT_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0')
            rr_opts_die("%s: '%s' is not an integer", from, v);
        if (n < o->min || n > o->max)
            rr_opts_die("%s: %lld is out of range (%lld..%lld)", from, n, (long long)o->min,
                        (long long)o->max);
        *(int64_t *)o->dst = n;
        break;
    }
    case RR_OPT_BOOL:
        if (parse_bool(v, (bool *)o->dst) < 0)
            rr_opts_die("%s: '%s' is not a boolean (true/false)", from, v);
        break;
    case RR_OPT_LIST: {
        struct rr_strlist *l = o->dst;
        const char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
        if (!nv)
            rr_opts_die("out of memory");
        nv[l->n++] = v;
        l->v = nv;
        break;
    }
    }
}

/* Copies of environment lists: the pieces are the options' values for the
 * life of the process. */
static char *env_list_copies[64];
static size_t n_env_list_copies;

/* Environment list values are split on spaces. */
static void set_env_list(const struct rr_opt *o, const char *v, const char *from)
{
    if (n_env_list_copies == sizeof(env_list_copies) / sizeof(*env_list_copies))
        rr_opts_die("too many list options in the environment");
    char *copy = strdup(v);
    if (!copy)
        rr_opts_die("out of memory");
    env_list_copies[n_env_list_copies++] = copy;
    for (char *save = NULL, *tok = strtok_r(copy, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save))
        set_value(o, tok, from);
}

static void print_help(const struct rr_opt *opts, const char *prog, const char *about)
{
    printf("%s\n\nUsage: %s [OPTION]...\n\nOptions (each also read from the environment variable "
           "shown; flag beats environment beats default):\n",
           about, prog);
    for (const struct rr_opt *o = opts; o->name; o++) {
        char env[96], left[128];
        env_name(o->name, env, sizeof(env));
        if (o->kind == RR_OPT_BOOL)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        printf("  %-34s %s%s\n", left, o->help, o->kind == RR_OPT_LIST ? " (repeatable)" : "");
        printf("  %-34s [%s]%s%s\n", "", env, o->def ? " default: " : "", o->def ? o->def : "");
    }
    printf("  %-34s %s\n  %-34s %s\n", "--help", "print this help and exit", "--version",
           "print the version and exit");
}

/* Finds the option an argument "--NAME" or "--NAME=VALUE" names. */
static const struct rr_opt *find_opt(const struct rr_opt *opts, const char *arg, const char **eq)
{
    const char *name = arg + 2;
    *eq = strchr(name, '=');
    size_t nlen = *eq ? (size_t)(*eq - name) : strlen(name);
    for (const struct rr_opt *o = opts; o->name; o++)
        if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0)
            return o;
    rr_opts_die("unknown option --%.*s (see --help)", (int)nlen, name);
}

void rr_opts_parse(const struct rr_opt *opts, const char *prog, const char *version,
                   const char *about, int argc, char **argv)
{
    rr_opts_parse_args(opts, prog, version, about, argc, argv, NULL, 0);
}

int rr_opts_parse_args(const struct rr_opt *opts, const char *prog, const char *version,
                       const char *about, int argc, char **argv, const char **args, int max_args)
{
    int nargs = 0;
    conf_prog = prog;
    size_t nopts = 0;
    while (opts[nopts].name)
        nopts++;

    /* First pass over argv: help, version, and which options the command
     * line sets, so that their environment variables are not even read. */
    bool *on_cmdline = calloc(nopts + 1, sizeof(bool));
    if (!on_cmdline)
        rr_opts_die("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            free(on_cmdline);
            print_help(opts, prog, about);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            free(on_cmdline);
            printf("%s %s\n", prog, version);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            if (nargs >= max_args)
                rr_opts_die("unexpected argument '%s' (see --help)", a);
            args[nargs++] = a;
            continue;
        }
        const char *eq;
        const struct rr_opt *o = find_opt(opts, a, &eq);
        on_cmdline[o - opts] = true;
        if (!eq && o->kind != RR_OPT_BOOL)
            i++;
    }

    for (const struct rr_opt *o = opts; o->name; o++) {
        char from[128];
        snprintf(from, sizeof(from), "default of --%s", o->name);
        if (o->def && o->kind != RR_OPT_LIST)
            set_value(o, o->def, from);
    }

    for (const struct rr_opt *o = opts; o->name; o++) {
        char env[96];
        env_name(o->name, env, sizeof(env));
        const char *v = getenv(env);
        if (!v || !*v || on_cmdline[o - opts])
            continue;
        if (o->kind == RR_OPT_LIST)
            set_env_list(o, v, env);
        else
            set_value(o, v, env);
    }
    free(on_cmdline);

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue; /* an argument, collected above */
        const char *eq;
        const struct rr_opt *o = find_opt(opts, argv[i], &eq);
        char from[128];
        snprintf(from, sizeof(from), "--%s", o->name);
        const char *v;
        if (eq)
            v = eq + 1;
        else if (o->kind == RR_OPT_BOOL)
            v = "true";
        else if (i + 1 < argc)
            v = argv[++i];
        else
            rr_opts_die("%s needs a value", from);
        set_value(o, v, from);
    }
    return nargs;
}

void rr_opts_check_hostport(const char *flag, const char *addr)
{
    char host[256];
    uint16_t port;
    if (addr && rr_parse_hostport(addr, host, sizeof(host), &port) < 0)
        rr_opts_die("%s: '%s' is not HOST:PORT", flag, addr);
}

void rr_opts_check_listen(const char *flag, const char *addr)
{
    if (!rr_unix_path(addr))
        rr_opts_check_hostport(flag, addr);
}

int rr_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}
