/*
 * roomrelay-spoa: the SPOE agent HAProxy consults. This file is the process:
 * options, keys, signals (SIGTERM/SIGINT stop gracefully, SIGHUP reloads keys),
 * the key-file watch, and the ops endpoint. The protocol work is in agent.c.
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conf.h"
#include "lib/jwt_keys.h"
#include "lib/log.h"
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

static struct {
    struct rr_strlist hmac_files, pem_keys, jwks_files;
    const char *hmac_secret, *issuer, *audience, *metrics_listen, *log_format, *log_level;
    int64_t leeway, max_token_bytes, key_check_interval;
    bool allow_no_exp;
} o;

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

static void reload_keys(const char *why, bool only_if_changed)
{
    char err[512];
    int rc = only_if_changed ? rr_keyring_reload_if_changed(&keyring, err, sizeof(err))
                             : rr_keyring_reload(&keyring, err, sizeof(err));
    if (rc > 0) {
        rr_inc(&spoa_stats.key_reloads_ok);
        struct rr_keyset *ks = rr_keyring_get(&keyring);
        rr_info("keys reloaded (%s): %zu key(s)", why, ks->n);
        rr_keyset_unref(ks);
    } else if (rc < 0) {
        rr_inc(&spoa_stats.key_reloads_failed);
        rr_error("keys not reloaded (%s), keeping the previous keys: %s", why, err);
    }
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    reload_keys("SIGHUP", false);
}

static void on_key_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    reload_keys("key file changed", true);
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
        {"listen", RR_OPT_STR, &cfg.listen, "127.0.0.1:12345", "HOST:PORT",
         "address for HAProxy's SPOP connections", 0, 0},
        {"threads", RR_OPT_INT, &cfg.threads, "0", "N",
         "worker threads, each with its own event loop (0: one per core)", 0, 256},
        {"hmac-secret", RR_OPT_STR, &o.hmac_secret, NULL, "SECRET",
         "HMAC secret itself; allows HS256. Prefer the environment variable: a flag shows in ps",
         0, 0},
        {"hmac-secret-file", RR_OPT_LIST, &o.hmac_files, NULL, "FILE",
         "HMAC secret (raw bytes, one trailing newline ignored); allows HS256", 0, 0},
        {"pem-key", RR_OPT_LIST, &o.pem_keys, NULL, "FILE[:ALG,...]",
         "RSA or EC public key in PEM; allowed algorithms (default RS256, or ES256/384/512 by "
         "curve)",
         0, 0},
        {"jwks", RR_OPT_LIST, &o.jwks_files, NULL, "FILE",
         "JWKS file of RSA and EC public keys, chosen by kid", 0, 0},
        {"issuer", RR_OPT_STR, &o.issuer, NULL, "S", "required `iss` claim (unset: not checked)",
         0, 0},
        {"audience", RR_OPT_STR, &o.audience, NULL, "S",
         "required `aud` claim, string or array (unset: not checked)", 0, 0},
        {"leeway", RR_OPT_INT, &o.leeway, "30", "SECONDS", "clock skew allowed on exp and nbf", 0,
         86400},
        {"allow-no-exp", RR_OPT_BOOL, &o.allow_no_exp, "false", NULL,
         "accept tokens without an `exp` claim", 0, 0},
        {"max-token-bytes", RR_OPT_INT, &o.max_token_bytes, "8192", "BYTES",
         "longer tokens are refused as too_large", 16, 1 << 20},
        {"claim-var", RR_OPT_LIST, &cfg.claim_vars, NULL, "NAME",
         "copy claim NAME of a verified token into sess.rr.NAME", 0, 0},
        {"cache-size", RR_OPT_INT, &cfg.cache_size, "65536", "N",
         "verified tokens kept, all threads together (0: no cache)", 0, 1 << 26},
        {"key-check-interval", RR_OPT_INT, &o.key_check_interval, "2", "SECONDS",
         "how often key files are checked for changes (0: only on SIGHUP)", 0, 3600},
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
         "answers queued for a peer that does not read before it is disconnected", 65536,
         1 << 30},
        {"metrics-listen", RR_OPT_STR, &o.metrics_listen, NULL, "HOST:PORT",
         "serve /metrics and /health over HTTP here (unset: off)", 0, 0},
        {"log-format", RR_OPT_STR, &o.log_format, "text", "text|json", "log line format", 0, 0},
        {"log-level", RR_OPT_STR, &o.log_level, "info", "LEVEL", "debug, info, warn or error", 0,
         0},
        RR_OPT_END,
    };
    rr_opts_parse(opts, "roomrelay-spoa", RR_VERSION,
                  "roomrelay-spoa: SPOE agent for HAProxy that checks JWTs (kid/JWKS, claims, key "
                  "rotation).",
                  argc, argv);

    if (rr_log_setup("roomrelay-spoa", o.log_format, o.log_level) < 0)
        rr_opts_die("--log-format must be text or json, --log-level debug, info, warn or error");
    for (size_t i = 0; i < cfg.claim_vars.n; i++)
        check_var_name(cfg.claim_vars.v[i]);
    check_fail_closed_fits();
    if (!o.hmac_secret && o.hmac_files.n + o.pem_keys.n + o.jwks_files.n == 0)
        rr_opts_die("no keys: give at least one of --hmac-secret (RR_HMAC_SECRET), "
                    "--hmac-secret-file, --pem-key or --jwks");
    if (cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = n > 0 ? n : 1;
    }

    cfg.policy.issuer = o.issuer;
    cfg.policy.audience = o.audience;
    cfg.policy.leeway = o.leeway;
    cfg.policy.allow_no_exp = o.allow_no_exp;
    cfg.policy.max_token_bytes = (size_t)o.max_token_bytes;

    struct rr_key_sources src = {
        .hmac_secret = o.hmac_secret,
        .hmac_files = o.hmac_files.v, .n_hmac = o.hmac_files.n,
        .pem_specs = o.pem_keys.v,    .n_pem = o.pem_keys.n,
        .jwks_files = o.jwks_files.v, .n_jwks = o.jwks_files.n,
    };
    char err[512];
    if (rr_keyring_init(&keyring, &src, err, sizeof(err)) < 0)
        rr_opts_die("%s", err);
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
    rr_info("listening on %s with %lld thread(s), %zu key(s)%s%s", cfg.listen,
            (long long)cfg.threads, ks->n, o.metrics_listen ? ", metrics on " : "",
            o.metrics_listen ? o.metrics_listen : "");
    rr_keyset_unref(ks);

    ev_signal sig_term, sig_int, sig_hup;
    ev_signal_init(&sig_term, on_stop, SIGTERM);
    ev_signal_init(&sig_int, on_stop, SIGINT);
    ev_signal_init(&sig_hup, on_sighup, SIGHUP);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    ev_signal_start(loop, &sig_hup);
    ev_timer key_timer;
    if (o.key_check_interval > 0) {
        ev_timer_init(&key_timer, on_key_timer, (double)o.key_check_interval,
                      (double)o.key_check_interval);
        ev_timer_start(loop, &key_timer);
    }

    ev_run(loop, 0);

    spoa_ops_stop(loop);
    spoa_agent_stop();
    rr_keyring_free(&keyring);
    rr_info("stopped");
    return 0;
}
