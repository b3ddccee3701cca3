/*
 * roomrelay-backend: the WebSocket room server. This file is the process:
 * options, keys, the admin token, signals (SIGTERM drains then exits, SIGINT
 * stops now, SIGHUP reloads keys) and the agent-check port. The server is in
 * server.c.
 */
#include <arpa/inet.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/agent_check.h"
#include "backend/server.h"
#include "lib/conf.h"
#include "lib/jwt_keys.h"
#include "lib/keyopts.h"
#include "lib/log.h"
#include "lib/registry.h"

#ifndef RR_VERSION
#define RR_VERSION "0.1.0"
#endif

static struct backend_config cfg;
static struct bus_redis_config redis_cfg;
static char redis_host[256];
static struct rr_keyring keyring;
static struct server *server;
static bool exiting;

static struct rr_keyopts keyopts;
static struct {
    struct rr_strlist trusted;
    const char *admin_token_file, *redis, *log_format, *log_level;
} o;

/* "10.0.0.0/8", "::1", "127.0.0.1" -> struct cidr; exits 2 on a bad one. */
static void parse_cidr(const char *s, struct cidr *out)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen >= sizeof(addr))
        rr_opts_die("--trusted-proxy: '%s' is not an address or CIDR", s);
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    int max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        rr_opts_die("--trusted-proxy: '%s' is not an address or CIDR", s);
    }
    long bits = max;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || bits < 0 || bits > max)
            rr_opts_die("--trusted-proxy: '%s' has a bad prefix length", s);
    }
    out->bits = (uint8_t)bits;
}

/* A listen address that cannot parse is a bad value (exit 2), not a failure
 * to listen later. */
static void check_hostport(const char *flag, const char *addr)
{
    char host[256];
    uint16_t port;
    if (addr && rr_parse_hostport(addr, host, sizeof(host), &port) < 0)
        rr_opts_die("%s: '%s' is not HOST:PORT", flag, addr);
}

/* The admin token: the file's first line. */
static const char *read_admin_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        rr_opts_die("--admin-token-file %s: cannot read it", path);
    static char tok[512];
    if (!fgets(tok, sizeof(tok), f))
        tok[0] = '\0';
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    if (strlen(tok) < 16)
        rr_opts_die("--admin-token-file %s: the token must be at least 16 characters", path);
    return tok;
}

static void on_exit_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    if (server_connections(server) == 0)
        ev_break(loop, EVBREAK_ALL);
}

static ev_timer exit_timer;

static void begin_exit(struct ev_loop *loop)
{
    if (exiting)
        return;
    exiting = true;
    ev_timer_init(&exit_timer, on_exit_check, 0.05, 0.05);
    ev_timer_start(loop, &exit_timer);
}

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    rr_info("SIGTERM: draining, exiting when the last connection is gone (at most %llds)",
            (long long)cfg.drain_timeout_s);
    server_drain(server, "SIGTERM");
    begin_exit(loop);
}

static void on_sigint(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    rr_info("SIGINT: closing every connection with 1001 and exiting");
    server_stop(server);
    begin_exit(loop);
}

int main(int argc, char **argv)
{
    static char default_id[64];
    if (gethostname(default_id, sizeof(default_id) - 1) != 0)
        snprintf(default_id, sizeof(default_id), "backend");

    const struct rr_opt opts[] = {
        {"listen", RR_OPT_STR, &cfg.listen, "127.0.0.1:8081", "HOST:PORT",
         "address for clients (WebSocket on /ws) and the HTTP endpoints", 0, 0},
        {"instance-id", RR_OPT_STR, &cfg.instance_id, default_id, "ID",
         "this backend's name: HAProxy's server name for it (default: the host name)", 0, 0},
        {"redis", RR_OPT_STR, &o.redis, "none", "HOST:PORT|none",
         "Redis for the cluster; none: a single backend numbering rooms itself", 0, 0},
        {"redis-prefix", RR_OPT_STR, &redis_cfg.prefix, RR_PREFIX_DEFAULT, "PREFIX",
         "prefix of every Redis key and channel (one cluster per prefix)", 0, 0},
        {"history-size", RR_OPT_INT, &redis_cfg.history_size, "1000", "N",
         "messages kept per room in Redis for resume (and publish ids for de-duplication)", 1,
         10000000},
        {"history-ttl", RR_OPT_INT, &redis_cfg.history_ttl_s, "3600", "SECONDS",
         "a room's history, ids and seq expire this long after its last publish", 1,
         365 * 86400},
        {"subscribe-linger-ms", RR_OPT_INT, &redis_cfg.subscribe_linger_ms, "2000", "MS",
         "keep a room's subscription this long after its last member here left", 0, 3600000},
        {"redis-backoff-max-ms", RR_OPT_INT, &redis_cfg.backoff_max_ms, "5000", "MS",
         "longest wait between two attempts to reconnect to Redis", 100, 3600000},
        {"redis-connect-timeout-ms", RR_OPT_INT, &redis_cfg.connect_timeout_ms, "2000", "MS",
         "give up a connection attempt to Redis after this long", 100, 600000},
        {"admin-token-file", RR_OPT_STR, &o.admin_token_file, NULL, "FILE",
         "bearer token for POST /admin/drain and /admin/undrain (unset: admin endpoints off)",
         0, 0},
        {"agent-check-listen", RR_OPT_STR, &cfg.agent_check_listen, NULL, "HOST:PORT",
         "answer HAProxy's agent-check here: \"up\" or \"drain\" (unset: off)", 0, 0},
        {"trusted-proxy", RR_OPT_LIST, &o.trusted, NULL, "CIDR",
         "peer allowed to send a PROXY header and X-RR-Sub / X-RR-Rooms (HAProxy)", 0, 0},
        {"require-proxy-protocol", RR_OPT_BOOL, &cfg.require_proxy, "false", NULL,
         "close connections that do not start with a PROXY header", 0, 0},
        {"allow-anonymous", RR_OPT_BOOL, &cfg.allow_anonymous, "false", NULL,
         "without keys or a trusted proxy, accept everyone as anon-<session>", 0, 0},
        RR_KEYOPTS_ENTRIES(keyopts),
        {"origin", RR_OPT_LIST, &cfg.origins, NULL, "ORIGIN",
         "allowed Origin of WebSocket handshakes (unset: any)", 0, 0},
        {"max-connections", RR_OPT_INT, &cfg.max_connections, "10000", "N",
         "WebSockets open at once; more get 503 at the handshake (0: no limit)", 0, 10000000},
        {"max-conns-per-ip", RR_OPT_INT, &cfg.max_conns_per_ip, "0", "N",
         "connections from one client address (after PROXY); more get 503 (0: no limit)", 0,
         10000000},
        {"publish-rate", RR_OPT_INT, &cfg.publish_rate, "50", "MSGS_PER_S",
         "publishes per second per connection (0: no limit)", 0, 1000000},
        {"publish-burst", RR_OPT_INT, &cfg.publish_burst, "100", "N",
         "publishes a connection may send at once above the rate", 1, 1000000},
        {"rate-limit-strikes", RR_OPT_INT, &cfg.rate_limit_strikes, "20", "N",
         "publishes refused in a row (error rate_limited) before closing with 1008", 1, 1000000},
        {"max-message", RR_OPT_INT, &cfg.max_message, "65536", "BYTES",
         "largest client message after reassembly; larger closes with 1009 (0: no limit)", 0,
         1 << 30},
        {"max-rooms-per-conn", RR_OPT_INT, &cfg.max_rooms_per_conn, "16", "N",
         "rooms one connection may be in", 1, 65535},
        {"max-backlog", RR_OPT_INT, &cfg.max_backlog, "4194304", "BYTES",
         "bytes queued for a client that does not read before it is closed with 1008 (0: no "
         "limit)",
         0, 1LL << 40},
        {"max-header-bytes", RR_OPT_INT, &cfg.max_header_bytes, "8192", "BYTES",
         "HTTP request line and headers; larger gets 431", 1024, 1 << 20},
        {"handshake-timeout", RR_OPT_INT, &cfg.handshake_timeout_ms, "10000", "MS",
         "time to send a whole HTTP request (and between keep-alive requests)", 100, 3600000},
        {"ping-interval", RR_OPT_INT, &cfg.ping_interval_s, "25", "SECONDS",
         "ping a client that has been quiet this long", 1, 86400},
        {"pong-timeout", RR_OPT_INT, &cfg.pong_timeout_s, "10", "SECONDS",
         "close a client that does not answer a ping in this time", 1, 86400},
        {"presence-max-members", RR_OPT_INT, &cfg.presence_max_members, "100", "N",
         "send member join/leave events only in rooms up to this size", 0, 1000000},
        {"dedup-size", RR_OPT_INT, &cfg.dedup_size, "1024", "N",
         "publish ids remembered per room for de-duplication", 0, 1000000},
        {"drain-timeout", RR_OPT_INT, &cfg.drain_timeout_s, "60", "SECONDS",
         "after a drain starts, close the connections left with 1001", 0, 86400},
        {"permessage-deflate", RR_OPT_BOOL, &cfg.deflate, "false", NULL,
         "accept permessage-deflate (RFC 7692); room messages are compressed once for all", 0,
         0},
        {"deflate-level", RR_OPT_INT, &cfg.deflate_level, "6", "1-9",
         "zlib compression level for permessage-deflate", 1, 9},
        {"log-format", RR_OPT_STR, &o.log_format, "text", "text|json", "log line format", 0, 0},
        {"log-level", RR_OPT_STR, &o.log_level, "info", "LEVEL", "debug, info, warn or error", 0,
         0},
        RR_OPT_END,
    };
    rr_opts_parse(opts, "roomrelay-backend", RR_VERSION,
                  "roomrelay-backend: WebSocket room server (RFC 6455) for roomrelay.", argc,
                  argv);
    if (rr_log_setup("roomrelay-backend", o.log_format, o.log_level) < 0)
        rr_opts_die("--log-format must be text or json, --log-level debug, info, warn or error");
    if (strcmp(o.redis, "none") != 0) {
        if (rr_parse_hostport(o.redis, redis_host, sizeof(redis_host), &redis_cfg.port) < 0 ||
            redis_cfg.port == 0)
            rr_opts_die("--redis %s: expected HOST:PORT or none", o.redis);
        size_t pl = strlen(redis_cfg.prefix);
        if (pl == 0 || pl > RR_INSTANCE_ID_MAX || strpbrk(redis_cfg.prefix, " \t\r\n{}"))
            rr_opts_die("--redis-prefix '%s': 1 to %d characters, no spaces or braces",
                        redis_cfg.prefix, RR_INSTANCE_ID_MAX);
        redis_cfg.host = redis_host;
        cfg.redis = &redis_cfg;
    }
    check_hostport("--listen", cfg.listen);
    check_hostport("--agent-check-listen", cfg.agent_check_listen);

    cfg.n_trusted = o.trusted.n;
    cfg.trusted = calloc(o.trusted.n + 1, sizeof(*cfg.trusted));
    for (size_t i = 0; i < o.trusted.n; i++)
        parse_cidr(o.trusted.v[i], &cfg.trusted[i]);
    if (o.admin_token_file)
        cfg.admin_token = read_admin_token(o.admin_token_file);

    bool have_keys = rr_keyopts_any(&keyopts);
    if (!have_keys && cfg.n_trusted == 0 && !cfg.allow_anonymous)
        rr_opts_die("no way to know who clients are: give keys (--hmac-secret-file, --pem-key, "
                    "--jwks), a --trusted-proxy that sets X-RR-Sub, or --allow-anonymous");
    rr_keyopts_policy(&keyopts, &cfg.policy);
    if (have_keys) {
        rr_keyopts_load(&keyopts, &keyring);
        cfg.keys = &keyring;
    }

    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    char err[512];
    server = server_new(loop, &cfg, err, sizeof(err));
    if (!server) {
        rr_error("%s", err);
        return 1;
    }
    if (cfg.agent_check_listen &&
        agent_check_start(loop, cfg.agent_check_listen, server, err, sizeof(err)) < 0) {
        rr_error("%s", err);
        return 1;
    }
    rr_info("instance %s listening on %s (WebSocket on /ws)%s, redis %s", cfg.instance_id,
            cfg.listen, cfg.keys ? ", verifying tokens" : "", o.redis);

    ev_signal sig_term, sig_int;
    ev_signal_init(&sig_term, on_sigterm, SIGTERM);
    ev_signal_init(&sig_int, on_sigint, SIGINT);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    struct rr_keywatch keywatch;
    if (cfg.keys)
        rr_keywatch_start(&keywatch, loop, &keyring, keyopts.key_check_interval, NULL);

    ev_run(loop, 0);

    agent_check_stop(loop);
    server_free(server);
    if (cfg.keys) {
        rr_keywatch_stop(&keywatch, loop);
        rr_keyring_free(&keyring);
    }
    free(cfg.trusted);
    rr_info("stopped");
    return 0;
}
