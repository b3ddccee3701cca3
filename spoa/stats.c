/*
 * The agent's metrics, see stats.h.
 */
#include "spoa/stats.h"

#include <stdio.h>

struct spoa_stats spoa_stats;

void spoa_stats_count_disconnect(uint32_t status)
{
    rr_inc(&spoa_stats.disconnect_sent[status <= SPOP_ST_RES ? status : 0]);
}

void spoa_stats_render(struct rr_text *t)
{
    struct spoa_stats *s = &spoa_stats;
    char lbl[64];

    rr_prom_family(t, "roomrelay_spoa_connections_total", "counter",
                   "SPOP connections accepted from HAProxy.");
    rr_prom_sample(t, "roomrelay_spoa_connections_total", NULL, rr_load(&s->conns_accepted));
    rr_prom_family(t, "roomrelay_spoa_connections_refused_total", "counter",
                   "SPOP connections closed at once because --max-connections was reached.");
    rr_prom_sample(t, "roomrelay_spoa_connections_refused_total", NULL, rr_load(&s->conns_refused));
    rr_prom_family(t, "roomrelay_spoa_connections", "gauge", "SPOP connections open now.");
    rr_prom_sample(t, "roomrelay_spoa_connections", NULL,
                   rr_load(&s->conns_accepted) - rr_load(&s->conns_closed));
    rr_prom_family(t, "roomrelay_spoa_healthchecks_total", "counter",
                   "Health-check HELLOs answered (option spop-check).");
    rr_prom_sample(t, "roomrelay_spoa_healthchecks_total", NULL, rr_load(&s->healthchecks));
    rr_prom_family(t, "roomrelay_spoa_notify_frames_total", "counter", "NOTIFY frames answered.");
    rr_prom_sample(t, "roomrelay_spoa_notify_frames_total", NULL, rr_load(&s->notify_frames));
    rr_prom_family(t, "roomrelay_spoa_unknown_messages_total", "counter",
                   "SPOE messages with a name the agent does not handle (acknowledged, ignored).");
    rr_prom_sample(t, "roomrelay_spoa_unknown_messages_total", NULL, rr_load(&s->unknown_messages));
    rr_prom_family(t, "roomrelay_spoa_ack_overflows_total", "counter",
                   "ACKs whose actions did not fit in max-frame-size (answered with auth=false).");
    rr_prom_sample(t, "roomrelay_spoa_ack_overflows_total", NULL, rr_load(&s->ack_overflows));

    rr_prom_family(t, "roomrelay_spoa_disconnects_sent_total", "counter",
                   "AGENT-DISCONNECT frames sent, by SPOP status code.");
    for (uint32_t i = 0; i <= SPOP_ST_RES; i++) {
        uint64_t v = rr_load(&s->disconnect_sent[i]);
        if (v == 0 && i != 0)
            continue;
        snprintf(lbl, sizeof(lbl), "status=\"%u\"", i);
        rr_prom_sample(t, "roomrelay_spoa_disconnects_sent_total", lbl, v);
    }
    rr_prom_family(t, "roomrelay_spoa_disconnects_received_total", "counter",
                   "HAPROXY-DISCONNECT frames received.");
    rr_prom_sample(t, "roomrelay_spoa_disconnects_received_total", NULL,
                   rr_load(&s->disconnect_recv));

    rr_prom_family(t, "roomrelay_spoa_check_token_total", "counter",
                   "check-token answers, by result (ok or the auth_err reason).");
    for (int i = 0; i < RR_AUTH_ERR_COUNT; i++) {
        snprintf(lbl, sizeof(lbl), "result=\"%s\"", rr_auth_err_name((enum rr_auth_err)i));
        rr_prom_sample(t, "roomrelay_spoa_check_token_total", lbl, rr_load(&s->check_token[i]));
    }
    rr_prom_family(t, "roomrelay_spoa_token_cache_hits_total", "counter",
                   "Tokens answered from the verified-token cache.");
    rr_prom_sample(t, "roomrelay_spoa_token_cache_hits_total", NULL, rr_load(&s->cache_hits));
    rr_prom_family(t, "roomrelay_spoa_token_cache_misses_total", "counter",
                   "Tokens that had to be verified.");
    rr_prom_sample(t, "roomrelay_spoa_token_cache_misses_total", NULL, rr_load(&s->cache_misses));
    rr_prom_family(t, "roomrelay_spoa_key_reloads_total", "counter",
                   "Key reloads (SIGHUP or a changed key file), by result.");
    rr_prom_sample(t, "roomrelay_spoa_key_reloads_total", "result=\"ok\"",
                   rr_load(&s->key_reloads_ok));
    rr_prom_sample(t, "roomrelay_spoa_key_reloads_total", "result=\"failed\"",
                   rr_load(&s->key_reloads_failed));
    rr_prom_hist(t, "roomrelay_spoa_notify_seconds",
                 "Time from a NOTIFY frame's arrival to its ACK being queued.", &s->notify_seconds);

    rr_prom_family(t, "roomrelay_spoa_route_room_total", "counter",
                   "route-room answers, by how the owner was found (or why none was set).");
    for (int i = 0; i < ROUTE_RESULT_COUNT; i++) {
        snprintf(lbl, sizeof(lbl), "result=\"%s\"", spoa_route_result_name(i));
        rr_prom_sample(t, "roomrelay_spoa_route_room_total", lbl, rr_load(&s->route_room[i]));
    }
    rr_prom_hist(t, "roomrelay_spoa_route_seconds",
                 "Time to answer a route-room that had to ask Redis.", &s->route_seconds);
    static const char *const drain[] = {"up", "draining", "unknown"};
    rr_prom_family(t, "roomrelay_spoa_check_drain_total", "counter",
                   "check-drain answers: the server is up, draining, or unknown to the registry.");
    for (int i = 0; i < DRAIN_RESULT_COUNT; i++) {
        snprintf(lbl, sizeof(lbl), "result=\"%s\"", drain[i]);
        rr_prom_sample(t, "roomrelay_spoa_check_drain_total", lbl, rr_load(&s->check_drain[i]));
    }
    rr_prom_family(t, "roomrelay_spoa_redis_ready", "gauge",
                   "Worker threads connected to Redis and holding the instance registry.");
    rr_prom_sample(t, "roomrelay_spoa_redis_ready", NULL, rr_load(&s->redis_ready));
    rr_prom_family(t, "roomrelay_spoa_redis_disconnects_total", "counter",
                   "Redis connections lost or dropped (reconnected with backoff).");
    rr_prom_sample(t, "roomrelay_spoa_redis_disconnects_total", NULL,
                   rr_load(&s->redis_disconnects));
    rr_prom_family(t, "roomrelay_spoa_redis_timeouts_total", "counter",
                   "Redis answers slower than --redis-timeout (the connection is dropped).");
    rr_prom_sample(t, "roomrelay_spoa_redis_timeouts_total", NULL, rr_load(&s->redis_timeouts));
    rr_prom_family(t, "roomrelay_spoa_ctl_messages_total", "counter",
                   "Control messages received on the ctl channel.");
    rr_prom_sample(t, "roomrelay_spoa_ctl_messages_total", NULL, rr_load(&s->ctl_messages));
}
