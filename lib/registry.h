/*
 * The Redis data model shared by the backend, the agent and roomrelayctl
 * (DESIGN.md §5): key names, the instance registry record, and the control
 * channel's messages. Pure: formatting and parsing only; the I/O is each
 * binary's own (hiredis).
 *
 * Keys (prefix P, default "rr:"; room keys hash-tagged so one room's keys
 * share a cluster slot):
 *   P{room}:seq      string   last sequence number of the room
 *   P{room}:hist     stream   recent message events, field "m" = the event's JSON text,
 *                             entry id "<seq>-0" so XRANGE can start at a seq
 *   P{room}:ch       channel  live events: "<seq> <JSON text>"
 *   P{room}:ids      zset     "<sub>\n<id>" scored by its seq, for de-duplication; trimmed
 *                             to the history size, TTL = history TTL
 *   P{room}:owner    string   instance id owning the room (claimed by the agent)
 *   P{room}:members  hash     sub -> instance (presence), refreshed by heartbeats
 *   Pinst:<id>       hash     the instance record below; TTL 3 heartbeats
 *   Pinstances       zset     instance id -> last heartbeat (unix ms)
 *   Pctl             channel  control messages (below)
 */
#ifndef RR_REGISTRY_H
#define RR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RR_PREFIX_DEFAULT "rr:"
#define RR_INSTANCE_ID_MAX 64

/* "<prefix>{<room>}:<what>" into out; returns the length or 0 if cap is too small. */
size_t rr_key_room(char *out, size_t cap, const char *prefix, const char *room, const char *what);
/* "<prefix>inst:<id>" */
size_t rr_key_instance(char *out, size_t cap, const char *prefix, const char *id);
/* "<prefix><name>" (instances, ctl) */
size_t rr_key_global(char *out, size_t cap, const char *prefix, const char *name);

enum rr_inst_state { RR_INST_UP, RR_INST_DRAINING };

/* One backend as the registry holds it (fields of Pinst:<id>). */
struct rr_instance {
    char id[RR_INSTANCE_ID_MAX + 1];
    char server[RR_INSTANCE_ID_MAX + 1]; /* HAProxy's server name ("server" field) */
    char addr[64];                       /* "addr" */
    uint16_t port;                       /* "port" */
    enum rr_inst_state state;            /* "state": up | draining */
    bool degraded;                       /* "degraded": 0 | 1 */
    uint64_t conns;                      /* "conns" */
    uint64_t rooms;                      /* "rooms" */
    int64_t started;                     /* "started", unix seconds */
    char version[32];                    /* "version" */
};

/* Fills inst from HGETALL's field/value pairs (fields[i], values[i]).
 * Unknown fields are ignored; returns -1 when "state" or "addr" is missing
 * or a number does not parse. */
int rr_instance_parse(struct rr_instance *inst, const char *id, const char *const *fields,
                      const char *const *values, size_t n);
const char *rr_inst_state_name(enum rr_inst_state s);

/* Control messages on Pctl: one JSON object each.
 *   {"op":"drain","instance":"ws2"}
 *   {"op":"undrain","instance":"ws2"}
 *   {"op":"owner","room":"T42","instance":"ws3"}   (an owner moved: drop cached owners)
 *   {"op":"state","instance":"ws2"}   (ws2 itself changed its record's state: read the
 *                                      registry again now; the backends act on nothing) */
enum rr_ctl_op { RR_CTL_DRAIN, RR_CTL_UNDRAIN, RR_CTL_OWNER, RR_CTL_STATE };

struct rr_ctl_msg {
    enum rr_ctl_op op;
    char instance[RR_INSTANCE_ID_MAX + 1];
    char room[65]; /* RR_CTL_OWNER only */
};

/* Writes a control message; returns its length or 0 if cap is too small. */
size_t rr_ctl_format(char *out, size_t cap, const struct rr_ctl_msg *m);
/* Parses one; returns -1 on anything malformed or unknown. */
int rr_ctl_parse(const char *text, size_t len, struct rr_ctl_msg *m);

#endif
