/*
 * roomrelay-backend's server: one libev loop (like Redis, one thread owns
 * every connection and every room, so nothing locks; run more backends to use
 * more cores). Accepts TCP, reads an optional PROXY header, answers plain
 * HTTP (ops.c) or upgrades to WebSocket (conn.c), and delivers room events.
 */
#ifndef RR_BACKEND_SERVER_H
#define RR_BACKEND_SERVER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/bus.h"
#include "backend/room.h"
#include "lib/conf.h"
#include "lib/jwt_keys.h"
#include "lib/jwt_verify.h"
#include "lib/token_cache.h"

struct cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;
    uint8_t addr[16];
};

struct backend_config {
    const char *listen;
    const char *instance_id;
    const char *admin_token; /* contents of --admin-token-file, NULL: admin endpoints off */
    const char *agent_check_listen;
    struct cidr *trusted; /* --trusted-proxy */
    size_t n_trusted;
    bool require_proxy; /* --require-proxy-protocol */
    bool allow_anonymous;
    struct rr_keyring *keys; /* NULL without key options */
    struct rr_jwt_policy policy;
    struct rr_strlist origins;
    int64_t max_connections;
    int64_t max_conns_per_ip;
    int64_t publish_rate;
    int64_t publish_burst;
    int64_t rate_limit_strikes;
    int64_t max_message;
    int64_t max_rooms_per_conn;
    int64_t max_backlog;
    int64_t max_header_bytes;
    int64_t handshake_timeout_ms;
    int64_t idle_timeout_s;
    int64_t ping_interval_s;
    int64_t pong_timeout_s;
    int64_t presence_max_members;
    int64_t dedup_size;
    int64_t drain_timeout_s;
    int64_t drain_rate; /* --drain-rate: migrates per second, 0: all at once */
    bool deflate;       /* --permessage-deflate */
    int64_t deflate_level;
    const struct bus_redis_config *redis; /* NULL: --redis none */
};

struct server;

struct server *server_new(struct ev_loop *loop, const struct backend_config *cfg, char *err,
                          size_t errlen);
/* Stops accepting and closes every connection with 1001 (SIGTERM without drain). */
void server_stop(struct server *s);
void server_free(struct server *s);

/* Drain (DESIGN.md §6): refuse new WebSockets (503), /health says
 * draining; in a cluster (--redis), send each WebSocket `migrate` and close
 * it with 1012, --drain-rate per second; after --drain-timeout, close what
 * is left with 1001. undrain reverses it (what was migrated stays gone). */
void server_drain(struct server *s, const char *why);
void server_undrain(struct server *s);
bool server_draining(const struct server *s);
/* Called after every change of the drain state (the registry heartbeats at once). */
void server_on_state(struct server *s, void (*cb)(void *arg), void *arg);
/* TCP connections open (WebSocket or not). */
uint64_t server_connections(const struct server *s);
uint64_t server_websockets(const struct server *s);
uint64_t server_rooms(const struct server *s);
bool server_degraded(const struct server *s);
/* The heartbeat's part in presence: this backend's members of each of its
 * rooms are written again, with a fresh TTL (conn.c). */
void server_presence_refresh(struct server *s);

#endif
