/*
 * roomrelay-spoa: the SPOE agent HAProxy consults. This file is the process:
 * options, keys, signals (SIGTERM/SIGINT stop gracefully, SIGHUP reloads keys),
 * the key-file watch, the Redis options, and the ops endpoint. The protocol
 * work is in agent.c, routing in router.c.
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conf.h"
#include "lib/jwt_keys.h"
#include "lib/keyopts.h"
#include "lib/log.h"
#include "lib/registry.h"
#include "spoa/agent.h"
#include "spoa/handler.h"
#include "spoa/ops_http.h"
#include "spoa/spop.h"
#include "spoa/stats.h"

#ifndef RR_VERSION
#define RR_VERSION "0.1.0"
#endif

/* Variables the agent sets itself; a --claim-var may not reuse them. */
static const char *const reserved_vars[] = {"auth", "auth_err", "sub", "exp"};

static struct spoa_config cfg;
static struct rr_keyring keyring;

static struct rr_keyopts keyopts;
static struct {
    const char *metrics_listen, *log_format, *log_level;
    const char *redis, *balance_factor;
    int64_t owner_cache_size;
} o;
static char redis_host[256];

/* --redis HOST:PORT|none and --balance-factor into cfg.router. */
static void check_redis_options(void)
{
    char *end;
    double c = strtod(o.balance_factor, &end);
    if (end == o.balance_factor || *end || !(c >= 1.0 && c <= 100.0))
        rr_opts_die("--balance-factor: '%s' must be a number from 1 to 100", o.balance_factor);
    cfg.router.balance = c;
    cfg.redis = strcmp(o.redis, "none") != 0;
    if (cfg.redis &&
        rr_parse_hostport(o.redis, redis_host, sizeof(redis_host), &cfg.router.port) < 0)
        rr_opts_die("--redis: '%s' must be HOST:PORT or none", o.redis);
    cfg.router.host = redis_host;
    if (o.owner_cache_size > 0) {
        cfg.router.cache_size = o.owner_cache_size / cfg.threads;
        if (cfg.router.cache_size == 0)
            cfg.router.cache_size = 1;
    }
}

static void check_var_name(const char *name)
{
    if (!*name || strlen(name) > 64)
        rr_opts_die("--claim-var: '%s' must be 1 to 64 characters", name);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            rr_opts_die("--claim-var: '%s' may only use letters, digits and '_' (HAProxy variable "
                        "names)",
                        name);
    for (size_t i = 0; i < sizeof(reserved_vars) / sizeof(*reserved_vars); i++)
        if (strcmp(name, reserved_vars[i]) == 0)
            rr_opts_die("--claim-var: '%s' is set by the agent already", name);
}

/* The fail-closed answer (auth=false and an unset per claim variable) must
 * fit in the smallest frame HAProxy may negotiate, or an overflowing answer
 * could leave a session's earlier verdict in place. */
static void check_fail_closed_fits(void)
{
    uint8_t buf[SPOP_MIN_FRAME_SIZE + SPOP_LEN_PREFIX];
    struct spop_writer w;
    spop_writer_init(&w, buf, sizeof(buf));
    spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, UINT64_MAX, UINT64_MAX);
    spoa_check_token_fail_closed(&w, &cfg);
    if (spop_frame_end(&w) == 0)
        rr_opts_die("--claim-var: %zu names are too many to unset in one %u-byte SPOP frame; "
                    "use fewer or shorter names",
                    cfg.claim_vars.n, SPOP_MIN_FRAME_SIZE);
}

static void count_reload(int result)
{
    rr_inc(result > 0 ? &spoa_stats.key_reloads_ok : &spoa_stats.key_reloads_failed);
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    rr_info("signal %d: stopping", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    const struct rr_opt opts[] = {
        {"listen", RR_OPT_STR, &cfg.listen, "127.0.0.1:12345", "HOST:PORT|unix@PATH",
         "address for HAProxy's SPOP connections: TCP, or a Unix socket (mode 0660)", 0, 0},
        {"threads", RR_OPT_INT, &cfg.threads, "0", "N",
         "worker threads, each with its own event loop (0: one per core)", 0, 256},
        RR_KEYOPTS_ENTRIES(keyopts),
        {"claim-var", RR_OPT_LIST, &cfg.claim_vars, NULL, "NAME",
         "copy claim NAME of a verified token into sess.rr.NAME", 0, 0},
        {"cache-size", RR_OPT_INT, &cfg.cache_size, "65536", "N",
         "verified tokens kept, all threads together (0: no cache)", 0, 1 << 26},
        {"max-frame-size", RR_OPT_INT, &cfg.max_frame_size, "16380", "BYTES",
         "largest SPOP frame the agent accepts (the lower of this and HAProxy's is used)",
         SPOP_MIN_FRAME_SIZE, SPOP_MAX_FRAME_SIZE},
        {"max-connections", RR_OPT_INT, &cfg.max_connections, "1024", "N",
         "SPOP connections open at once; more are closed at accept (0: no limit)", 0, 1000000},
        {"hello-timeout", RR_OPT_INT, &cfg.hello_timeout_ms, "5000", "MS",
         "time a new connection has to send HAPROXY-HELLO", 1, 3600000},
        {"idle-timeout", RR_OPT_INT, &cfg.idle_timeout_ms, "300000", "MS",
         "a connection with no complete frame for this long is disconnected (keep it above "
         "HAProxy's `timeout idle`)",
         1, 86400000},
        {"stop-timeout", RR_OPT_INT, &cfg.stop_timeout_ms, "5000", "MS",
         "on SIGTERM, how long to wait for HAProxy to close after AGENT-DISCONNECT", 0, 600000},
        {"max-write-backlog", RR_OPT_INT, &cfg.max_write_backlog, "1048576", "BYTES",
         "answers queued for a peer that does not read before it is disconnected", 65536, 1 << 30},
        {"redis", RR_OPT_STR, &o.redis, "none", "HOST:PORT|none",
         "Redis holding room owners and the instance registry, for route-room and check-drain "
         "(none: route-room sets no server and HAProxy uses its stick table)",
         0, 0},
        {"redis-prefix", RR_OPT_STR, &cfg.router.prefix, RR_PREFIX_DEFAULT, "PREFIX",
         "prefix of every Redis key (the backends' --redis-prefix)", 0, 0},
        {"redis-timeout", RR_OPT_INT, &cfg.router.timeout_ms, "250", "MS",
         "a Redis answer slower than this drops the connection; the route falls back (keep it "
         "below the SPOE `timeout processing`)",
         10, 60000},
        {"balance-factor", RR_OPT_STR, &o.balance_factor, "1.25", "C",
         "a new room goes to no backend above C x the average rooms per backend (>= 1)", 0, 0},
        {"owner-ttl", RR_OPT_INT, &cfg.router.owner_ttl_s, "86400", "SECONDS",
         "a room's owner is forgotten after this long without a lookup (0: never)", 0, 100000000},
        {"owner-cache-size", RR_OPT_INT, &o.owner_cache_size, "65536", "N",
         "room owners cached, all threads together (0: ask Redis every time)", 0, 1 << 26},
        {"owner-cache-ttl", RR_OPT_INT, &cfg.router.cache_ttl_ms, "60000", "MS",
         "a cached owner is read from Redis again after this long", 1, 86400000},
        {"registry-refresh", RR_OPT_INT, &cfg.router.refresh_ms, "1000", "MS",
         "how often the instance registry is read (drain and undrain messages read it at once)",
         100, 60000},
        {"metrics-listen", RR_OPT_STR, &o.metrics_listen, NULL, "HOST:PORT",
         "serve /metrics and /health over HTTP here (unset: off)", 0, 0},
        {"log-format", RR_OPT_STR, &o.log_format, "text", "text|json", "log line format", 0, 0},
        {"log-level", RR_OPT_STR, &o.log_level, "info", "LEVEL", "debug, info, warn or error", 0,
         0},
        RR_OPT_END,
    };
    rr_opts_parse(opts, "roomrelay-spoa", RR_VERSION,
                  "roomrelay-spoa: SPOE agent for HAProxy that checks JWTs (kid/JWKS, claims, key "
                  "rotation) and routes rooms to their owner backend (Redis).",
                  argc, argv);

    if (rr_log_setup("roomrelay-spoa", o.log_format, o.log_level) < 0)
        rr_opts_die("--log-format must be text or json, --log-level debug, info, warn or error");
    for (size_t i = 0; i < cfg.claim_vars.n; i++)
        check_var_name(cfg.claim_vars.v[i]);
    check_fail_closed_fits();
    rr_opts_check_listen("--listen", cfg.listen);
    rr_opts_check_hostport("--metrics-listen", o.metrics_listen);
    if (!rr_keyopts_any(&keyopts))
        rr_opts_die("no keys: give at least one of --hmac-secret (RR_HMAC_SECRET), "
                    "--hmac-secret-file, --pem-key or --jwks");
    if (cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = n > 0 ? n : 1;
    }
    check_redis_options();

    rr_keyopts_policy(&keyopts, &cfg.policy);
    rr_keyopts_load(&keyopts, &keyring);
    char err[512];
    cfg.keys = &keyring;

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (o.metrics_listen && spoa_ops_start(loop, o.metrics_listen, err, sizeof(err)) < 0) {
        rr_error("%s", err);
        return 1;
    }
    if (spoa_agent_start(&cfg, err, sizeof(err)) < 0) {
        rr_error("%s", err);
        return 1;
    }
    struct rr_keyset *ks = rr_keyring_get(&keyring);
    rr_info("listening on %s with %lld thread(s), %zu key(s), redis %s%s%s", cfg.listen,
            (long long)cfg.threads, ks->n, o.redis, o.metrics_listen ? ", metrics on " : "",
            o.metrics_listen ? o.metrics_listen : "");
    rr_keyset_unref(ks);

    ev_signal sig_term, sig_int;
    ev_signal_init(&sig_term, on_stop, SIGTERM);
    ev_signal_init(&sig_int, on_stop, SIGINT);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    struct rr_keywatch keywatch;
    rr_keywatch_start(&keywatch, loop, &keyring, keyopts.key_check_interval, count_reload);

    ev_run(loop, 0);

    rr_keywatch_stop(&keywatch, loop);
    spoa_ops_stop(loop);
    spoa_agent_stop();
    rr_keyring_free(&keyring);
    rr_info("stopped");
    return 0;
}
