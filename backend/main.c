/*
 * roomrelay-backend: the WebSocket room server. This file is the process:
 * options, keys, the admin token, signals (SIGTERM drains then exits, SIGINT
 * stops now, SIGHUP reloads keys), the agent-check port, and with --redis
 * the registry (registry_io.c: heartbeats, drain/undrain from roomrelayctl).
 * The server is in server.c.
 */
#include <arpa/inet.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/agent_check.h"
#include "backend/registry_io.h"
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
static struct registry_io *registry;
static struct registry_io_config reg_cfg;
static bool exiting;

static struct rr_keyopts keyopts;
static struct {
    struct rr_strlist trusted;
    const char *admin_token_file, *redis, *log_format, *log_level, *advertise, *server_name;
    int64_t heartbeat_s;
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

static void leave_done(void *arg)
{
    ev_break(arg, EVBREAK_ALL);
}

/* The last connection is gone: out of the registry, then out of the loop. */
static void on_exit_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    if (server_connections(server) != 0)
        return;
    ev_timer_stop(loop, w);
    if (registry)
        registry_io_leave(registry, leave_done, loop);
    else
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

static void on_state(void *arg)
{
    registry_io_announce(arg);
}

static void on_beat(void *arg, struct rr_instance *inst)
{
    (void)arg;
    inst->state = server_draining(server) ? RR_INST_DRAINING : RR_INST_UP;
    inst->conns = server_websockets(server);
    inst->rooms = server_rooms(server);
    inst->degraded = server_degraded(server);
    /* Presence rides on the heartbeat: the members hash's TTL is 3 of them. */
    server_presence_refresh(server);
}

static void on_ctl(void *arg, const struct rr_ctl_msg *m)
{
    (void)arg;
    if (m->op == RR_CTL_DRAIN) {
        server_drain(server, "roomrelayctl drain");
    } else if (exiting) {
        rr_warn("undrain ignored: exiting");
    } else {
        server_undrain(server);
    }
}

/* The registry's fixed fields: --advertise, else --listen. */
static void registry_setup(void)
{
    struct rr_instance *self = &reg_cfg.self;
    char host[256];
    const char *adv = o.advertise ? o.advertise : cfg.listen;
    if (rr_parse_hostport(adv, host, sizeof(host), &self->port) < 0 ||
        strlen(host) >= sizeof(self->addr) || !host[0])
        rr_opts_die("%s: '%s' is not HOST:PORT", o.advertise ? "--advertise" : "--listen", adv);
    memcpy(self->addr, host, strlen(host) + 1);
    const char *srvname = o.server_name ? o.server_name : cfg.instance_id;
    if (!srvname[0] || strlen(srvname) > RR_INSTANCE_ID_MAX || strpbrk(srvname, " \t\r\n"))
        rr_opts_die("--haproxy-server-name '%s': 1 to %d characters, no spaces", srvname,
                    RR_INSTANCE_ID_MAX);
    snprintf(self->id, sizeof(self->id), "%s", cfg.instance_id);
    snprintf(self->server, sizeof(self->server), "%s", srvname);
    snprintf(self->version, sizeof(self->version), "%s", RR_VERSION);
    self->started = (int64_t)time(NULL);
    reg_cfg.host = redis_cfg.host;
    reg_cfg.port = redis_cfg.port;
    reg_cfg.prefix = redis_cfg.prefix;
    reg_cfg.heartbeat_ms = o.heartbeat_s * 1000;
    reg_cfg.backoff_max_ms = redis_cfg.backoff_max_ms;
    reg_cfg.connect_timeout_ms = redis_cfg.connect_timeout_ms;
    reg_cfg.timeout_ms = redis_cfg.timeout_ms;
    redis_cfg.instance_id = cfg.instance_id;
    redis_cfg.presence_ttl_ms = 3 * reg_cfg.heartbeat_ms;
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
        {"advertise", RR_OPT_STR, &o.advertise, NULL, "HOST:PORT",
         "address the registry gives for this backend (default: --listen; set it in "
         "containers)",
         0, 0},
        {"haproxy-server-name", RR_OPT_STR, &o.server_name, NULL, "NAME",
         "HAProxy's server name for this backend, in the registry (default: the instance id)", 0,
         0},
        {"heartbeat-interval", RR_OPT_INT, &o.heartbeat_s, "2", "SECONDS",
         "registry heartbeat; the record and the presence of its members expire after 3", 1, 3600},
        {"redis-prefix", RR_OPT_STR, &redis_cfg.prefix, RR_PREFIX_DEFAULT, "PREFIX",
         "prefix of every Redis key and channel (one cluster per prefix)", 0, 0},
        {"history-size", RR_OPT_INT, &redis_cfg.history_size, "1000", "N",
         "messages kept per room in Redis for resume (and publish ids for de-duplication)", 1,
         10000000},
        {"history-ttl", RR_OPT_INT, &redis_cfg.history_ttl_s, "3600", "SECONDS",
         "a room's history, ids and seq expire this long after its last publish", 1, 365LL * 86400},
        {"subscribe-linger-ms", RR_OPT_INT, &redis_cfg.subscribe_linger_ms, "2000", "MS",
         "keep a room's subscription this long after its last member here left", 0, 3600000},
        {"redis-backoff-max-ms", RR_OPT_INT, &redis_cfg.backoff_max_ms, "5000", "MS",
         "longest wait between two attempts to reconnect to Redis", 100, 3600000},
        {"redis-connect-timeout-ms", RR_OPT_INT, &redis_cfg.connect_timeout_ms, "2000", "MS",
         "give up a connection attempt to Redis after this long", 100, 600000},
        {"redis-timeout", RR_OPT_INT, &redis_cfg.timeout_ms, "2000", "MS",
         "a Redis answer slower than this drops the connection as if Redis had closed it; a quiet "
         "connection is PINGed as often (0: wait forever)",
         0, 600000},
        {"admin-token-file", RR_OPT_STR, &o.admin_token_file, NULL, "FILE",
         "bearer token for POST /admin/drain and /admin/undrain (unset: admin endpoints off)", 0,
         0},
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
        {"idle-timeout", RR_OPT_INT, &cfg.idle_timeout_s, "0", "SECONDS",
         "close (1001) a client that sends no message for this long; pings and pongs do not count "
         "(0: never)",
         0, 86400LL * 365},
        {"pong-timeout", RR_OPT_INT, &cfg.pong_timeout_s, "10", "SECONDS",
         "close a client that does not answer a ping in this time", 1, 86400},
        {"presence-max-members", RR_OPT_INT, &cfg.presence_max_members, "100", "N",
         "send member join/leave events only in rooms up to this size", 0, 1000000},
        {"dedup-size", RR_OPT_INT, &cfg.dedup_size, "1024", "N",
         "publish ids remembered per room for de-duplication", 0, 1000000},
        {"drain-timeout", RR_OPT_INT, &cfg.drain_timeout_s, "60", "SECONDS",
         "after a drain starts, close the connections left with 1001", 0, 86400},
        {"drain-rate", RR_OPT_INT, &cfg.drain_rate, "0", "CONNS_PER_S",
         "a drain sends migrate (then closes 1012) to this many connections a second (0: all "
         "at once; --redis only)",
         0, 10000000},
        {"permessage-deflate", RR_OPT_BOOL, &cfg.deflate, "false", NULL,
         "accept permessage-deflate (RFC 7692); room messages are compressed once for all", 0, 0},
        {"deflate-level", RR_OPT_INT, &cfg.deflate_level, "6", "1-9",
         "zlib compression level for permessage-deflate", 1, 9},
        {"log-format", RR_OPT_STR, &o.log_format, "text", "text|json", "log line format", 0, 0},
        {"log-level", RR_OPT_STR, &o.log_level, "info", "LEVEL", "debug, info, warn or error", 0,
         0},
        RR_OPT_END,
    };
    rr_opts_parse(opts, "roomrelay-backend", RR_VERSION,
                  "roomrelay-backend: WebSocket room server (RFC 6455) for roomrelay.", argc, argv);
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
    size_t il = strlen(cfg.instance_id);
    if (il == 0 || il > RR_INSTANCE_ID_MAX || strpbrk(cfg.instance_id, " \t\r\n"))
        rr_opts_die("--instance-id '%s': 1 to %d characters, no spaces", cfg.instance_id,
                    RR_INSTANCE_ID_MAX);
    rr_opts_check_hostport("--listen", cfg.listen);
    rr_opts_check_hostport("--advertise", o.advertise);
    if (cfg.redis)
        registry_setup();
    rr_opts_check_hostport("--agent-check-listen", cfg.agent_check_listen);

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
    if (cfg.redis) {
        registry = registry_io_new(loop, &reg_cfg, on_beat, on_ctl, NULL);
        if (!registry) {
            rr_error("out of memory (registry)");
            return 1;
        }
        server_on_state(server, on_state, registry);
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
    registry_io_free(registry);
    if (cfg.keys) {
        rr_keywatch_stop(&keywatch, loop);
        rr_keyring_free(&keyring);
    }
    free(cfg.trusted);
    rr_info("stopped");
    return 0;
}
