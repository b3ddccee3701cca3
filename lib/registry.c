/*
 * Redis key names, the instance record and control messages, see registry.h.
 */
#include "lib/registry.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t fit(int n, size_t cap)
{
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t rr_key_room(char *out, size_t cap, const char *prefix, const char *room, const char *what)
{
    return fit(snprintf(out, cap, "%s{%s}:%s", prefix, room, what), cap);
}

size_t rr_key_instance(char *out, size_t cap, const char *prefix, const char *id)
{
    return fit(snprintf(out, cap, "%sinst:%s", prefix, id), cap);
}

size_t rr_key_global(char *out, size_t cap, const char *prefix, const char *name)
{
    return fit(snprintf(out, cap, "%s%s", prefix, name), cap);
}

const char *rr_inst_state_name(enum rr_inst_state s)
{
    return s == RR_INST_DRAINING ? "draining" : "up";
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-')
        return -1;
    *out = n;
    return 0;
}

/* Copies a non-empty value that fits; -1 otherwise. */
static int copy(char *dst, size_t cap, const char *v)
{
    return fit(snprintf(dst, cap, "%s", v), cap) > 0 ? 0 : -1;
}

int rr_instance_parse(struct rr_instance *inst, const char *id, const char *const *fields,
                      const char *const *values, size_t n)
{
    memset(inst, 0, sizeof(*inst));
    if (copy(inst->id, sizeof(inst->id), id) < 0)
        return -1;
    bool have_state = false, have_addr = false;
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i], *v = values[i];
        uint64_t u = 0;
        if (strcmp(f, "state") == 0) {
            if (strcmp(v, "up") == 0)
                inst->state = RR_INST_UP;
            else if (strcmp(v, "draining") == 0)
                inst->state = RR_INST_DRAINING;
            else
                return -1;
            have_state = true;
        } else if (strcmp(f, "addr") == 0) {
            if (copy(inst->addr, sizeof(inst->addr), v) < 0)
                return -1;
            have_addr = true;
        } else if (strcmp(f, "server") == 0) {
            if (copy(inst->server, sizeof(inst->server), v) < 0)
                return -1;
        } else if (strcmp(f, "version") == 0) {
            if (copy(inst->version, sizeof(inst->version), v) < 0)
                return -1;
        } else if (strcmp(f, "port") == 0) {
            if (parse_u64(v, &u) < 0 || u > 65535)
                return -1;
            inst->port = (uint16_t)u;
        } else if (strcmp(f, "degraded") == 0) {
            if (parse_u64(v, &u) < 0 || u > 1)
                return -1;
            inst->degraded = u == 1;
        } else if (strcmp(f, "conns") == 0) {
            if (parse_u64(v, &inst->conns) < 0)
                return -1;
        } else if (strcmp(f, "rooms") == 0) {
            if (parse_u64(v, &inst->rooms) < 0)
                return -1;
        } else if (strcmp(f, "started") == 0) {
            if (parse_u64(v, &u) < 0)
                return -1;
            inst->started = (int64_t)u;
        }
    }
    if (!inst->server[0])
        memcpy(inst->server, inst->id, sizeof(inst->id));
    return have_state && have_addr ? 0 : -1;
}

static const char *const ctl_ops[] = {"drain", "undrain", "owner", "state"};

size_t rr_ctl_format(char *out, size_t cap, const struct rr_ctl_msg *m)
{
    json_t *o = json_pack("{s:s, s:s}", "op", ctl_ops[m->op], "instance", m->instance);
    if (o && m->op == RR_CTL_OWNER)
        json_object_set_new(o, "room", json_string(m->room));
    size_t n = o ? json_dumpb(o, out, cap, JSON_COMPACT) : 0;
    json_decref(o);
    if (n >= cap)
        return 0;
    out[n] = '\0';
    return n;
}

int rr_ctl_parse(const char *text, size_t len, struct rr_ctl_msg *m)
{
    memset(m, 0, sizeof(*m));
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *op = json_string_value(json_object_get(o, "op"));
    const char *inst = json_string_value(json_object_get(o, "instance"));
    int rc = -1;
    for (int i = 0; op && inst && i < (int)(sizeof(ctl_ops) / sizeof(ctl_ops[0])); i++) {
        if (strcmp(op, ctl_ops[i]) != 0)
            continue;
        m->op = (enum rr_ctl_op)i;
        if (copy(m->instance, sizeof(m->instance), inst) < 0)
            break;
        if (m->op == RR_CTL_OWNER) {
            const char *room = json_string_value(json_object_get(o, "room"));
            if (!room || copy(m->room, sizeof(m->room), room) < 0)
                break;
        }
        rc = 0;
        break;
    }
    json_decref(o);
    return rc;
}
