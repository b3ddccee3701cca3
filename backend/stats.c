/*
 * The backend's metrics, see stats.h.
 */
#include "backend/stats.h"

#include <stdio.h>

struct backend_stats bstats;

static const char *const reject_names[REJ_COUNT] = {
    [REJ_MAX_CONNECTIONS] = "max_connections",
    [REJ_MAX_CONNS_PER_IP] = "max_conns_per_ip",
    [REJ_DRAINING] = "draining",
    [REJ_BAD_HANDSHAKE] = "bad_handshake",
    [REJ_BAD_ROOM] = "invalid_room",
    [REJ_FORBIDDEN_ROOM] = "forbidden_room",
    [REJ_UNAUTHORIZED] = "unauthorized",
    [REJ_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [REJ_PROXY_PROTOCOL] = "proxy_protocol",
    [REJ_PROTOCOL_ERROR] = "protocol_error",
    [REJ_BAD_UTF8] = "bad_utf8",
    [REJ_TOO_BIG] = "message_too_big",
    [REJ_BINARY] = "binary_frame",
    [REJ_BAD_MESSAGE] = "bad_message",
    [REJ_RATE_LIMITED] = "rate_limited",
    [REJ_RATE_LIMIT_CLOSE] = "rate_limit_close",
    [REJ_TOO_MANY_ROOMS] = "too_many_rooms",
    [REJ_NOT_MEMBER] = "not_member",
    [REJ_SLOW_CONSUMER] = "slow_consumer",
    [REJ_PONG_TIMEOUT] = "pong_timeout",
    [REJ_IDLE_TIMEOUT] = "idle_timeout",
};

const char *reject_reason_name(enum reject_reason r)
{
    return r < REJ_COUNT ? reject_names[r] : "unknown";
}

static void counter(struct rr_text *t, const char *name, const char *help, uint64_t v)
{
    rr_prom_family(t, name, "counter", help);
    rr_prom_sample(t, name, NULL, v);
}

static void gauge(struct rr_text *t, const char *name, const char *help, uint64_t v)
{
    rr_prom_family(t, name, "gauge", help);
    rr_prom_sample(t, name, NULL, v);
}

void backend_stats_render(struct rr_text *t, uint64_t rooms, bool degraded, bool draining)
{
    struct backend_stats *s = &bstats;
    char lbl[64];

    gauge(t, "roomrelay_connections", "WebSocket connections open.", rr_load(&s->ws_open));
    counter(t, "roomrelay_connections_total", "WebSocket connections opened (handshake done).",
            rr_load(&s->ws_opened_total));
    counter(t, "roomrelay_tcp_connections_total", "TCP connections accepted.",
            rr_load(&s->conns_accepted));
    gauge(t, "roomrelay_rooms", "Rooms with members on this backend.", rooms);
    gauge(t, "roomrelay_degraded", "1 while the backend cannot reach Redis.", degraded);
    gauge(t, "roomrelay_draining", "1 while the backend is draining.", draining);

    rr_prom_family(t, "roomrelay_rejected_total", "counter",
                   "Refused connections, messages and closes, by reason.");
    for (int i = 0; i < REJ_COUNT; i++) {
        snprintf(lbl, sizeof(lbl), "reason=\"%s\"", reject_names[i]);
        rr_prom_sample(t, "roomrelay_rejected_total", lbl, rr_load(&s->rejected[i]));
    }
    rr_prom_family(t, "roomrelay_closes_total", "counter", "WebSocket close frames sent, by code.");
    for (int i = 0; i < 16; i++) {
        uint64_t v = rr_load(&s->closes[i]);
        if (v == 0)
            continue;
        snprintf(lbl, sizeof(lbl), "code=\"%d\"", 1000 + i);
        rr_prom_sample(t, "roomrelay_closes_total", lbl, v);
    }
    counter(t, "roomrelay_messages_published_total", "Client publishes numbered.",
            rr_load(&s->published));
    counter(t, "roomrelay_messages_duplicate_total",
            "Publishes with an id seen before, acknowledged with the original seq.",
            rr_load(&s->duplicates));
    counter(t, "roomrelay_room_events_total", "Room events received from the bus.",
            rr_load(&s->events));
    counter(t, "roomrelay_deliveries_total", "Room messages queued to WebSocket connections.",
            rr_load(&s->deliveries));
    counter(t, "roomrelay_redis_timeouts_total",
            "Redis connections dropped because an answer took longer than --redis-timeout.",
            rr_load(&s->redis_timeouts));
    counter(t, "roomrelay_bytes_sent_total", "Bytes written to clients.", rr_load(&s->bytes_out));
    counter(t, "roomrelay_bytes_received_total", "Bytes read from clients.", rr_load(&s->bytes_in));
    rr_prom_hist(t, "roomrelay_flush_seconds",
                 "Time of one pass writing the queued frames of every connection that has some.",
                 &s->flush_seconds);
}
