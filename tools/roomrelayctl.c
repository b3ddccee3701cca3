/*
 * roomrelayctl: the cluster seen through Redis (DESIGN.md §5), and the drain
 * switch. Reads the instance registry and the room owners; `drain` and
 * `undrain` publish a control message every backend listens to.
 *
 *   roomrelayctl [--redis HOST:PORT] [--redis-prefix P] status|rooms|drain ID|undrain ID [--json]
 *
 * Blocking hiredis: a command-line tool, one request at a time.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lib/conf.h"
#include "lib/registry.h"

#ifndef RR_VERSION
#define RR_VERSION "0.1.0"
#endif

static struct {
    const char *redis, *prefix;
    bool json;
} o;

static redisContext *rc;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "roomrelayctl: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

/* Runs one command; exits 1 with Redis's words on an error reply. */
static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (!r)
        die("redis: %s", rc->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        die("redis: %s", r->str);
    return r;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* One registry record; false when the instance's hash has expired (a
 * backend that stopped heartbeating) or does not parse. */
static bool load_instance(const char *id, struct rr_instance *inst)
{
    char key[160];
    rr_key_instance(key, sizeof(key), o.prefix, id);
    redisReply *r = cmd("HGETALL %s", key);
    size_t n = r->elements / 2;
    const char **f = calloc(n + 1, sizeof(*f)), **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; f && v && i < n; i++) {
        f[i] = r->element[2 * i]->str;
        v[i] = r->element[2 * i + 1]->str;
    }
    bool ok = n > 0 && f && v && rr_instance_parse(inst, id, f, v, n) == 0;
    free(f);
    free(v);
    freeReplyObject(r);
    return ok;
}

static int status(void)
{
    char key[160];
    rr_key_global(key, sizeof(key), o.prefix, "instances");
    redisReply *ids = cmd("ZRANGE %s 0 -1 WITHSCORES", key);
    json_t *arr = json_array();
    if (!o.json)
        printf("%-16s %-16s %-9s %8s %6s %-9s %s\n", "INSTANCE", "SERVER", "STATE", "CONNS",
               "ROOMS", "DEGRADED", "LAST SEEN");
    for (size_t i = 0; i + 1 < ids->elements; i += 2) {
        const char *id = ids->element[i]->str;
        double seen = strtod(ids->element[i + 1]->str, NULL);
        double age = ((double)now_ms() - seen) / 1000.0;
        struct rr_instance in;
        bool alive = load_instance(id, &in);
        if (o.json) {
            json_t *e =
                alive
                    ? json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:b, s:f}", "instance", id,
                                "server", in.server, "state", rr_inst_state_name(in.state), "addr",
                                in.addr, "port", in.port, "conns", (json_int_t)in.conns, "rooms",
                                (json_int_t)in.rooms, "degraded", in.degraded, "last_seen_s", age)
                    : json_pack("{s:s, s:s, s:f}", "instance", id, "state", "gone", "last_seen_s",
                                age);
            json_array_append_new(arr, e);
        } else if (alive) {
            printf("%-16s %-16s %-9s %8llu %6llu %-9s %.1fs ago\n", id, in.server,
                   rr_inst_state_name(in.state), (unsigned long long)in.conns,
                   (unsigned long long)in.rooms, in.degraded ? "yes" : "no", age);
        } else {
            printf("%-16s %-16s %-9s %8s %6s %-9s %.1fs ago\n", id, "-", "gone", "-", "-", "-",
                   age);
        }
    }
    if (o.json) {
        char *s = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
    }
    json_decref(arr);
    freeReplyObject(ids);
    return 0;
}

/* Rooms are the owner keys: P{room}:owner. SCAN, so a large cluster is not
 * blocked by KEYS. */
static int rooms(void)
{
    char pattern[160];
    snprintf(pattern, sizeof(pattern), "%s{*}:owner", o.prefix);
    size_t plen = strlen(o.prefix);
    json_t *obj = json_object();
    if (!o.json)
        printf("%-40s %-16s %s\n", "ROOM", "OWNER", "MEMBERS");
    char cursor[32] = "0";
    do {
        redisReply *r = cmd("SCAN %s MATCH %s COUNT 500", cursor, pattern);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            const char *open = k + plen + 1, *close = strrchr(k, '}');
            if (!close || close < open)
                continue;
            char room[128];
            snprintf(room, sizeof(room), "%.*s", (int)(close - open), open);
            redisReply *owner = cmd("GET %s", k);
            char mkey[200];
            rr_key_room(mkey, sizeof(mkey), o.prefix, room, "members");
            redisReply *n = cmd("HLEN %s", mkey);
            const char *who = owner->type == REDIS_REPLY_STRING ? owner->str : "-";
            if (o.json)
                json_object_set_new(
                    obj, room,
                    json_pack("{s:s, s:I}", "owner", who, "members", (json_int_t)n->integer));
            else
                printf("%-40s %-16s %lld\n", room, who, n->integer);
            freeReplyObject(owner);
            freeReplyObject(n);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (o.json) {
        char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
    }
    json_decref(obj);
    return 0;
}

/* Publishes drain/undrain; says how many backends heard it. */
static int control(enum rr_ctl_op op, const char *id)
{
    struct rr_ctl_msg m = {.op = op};
    if (strlen(id) > RR_INSTANCE_ID_MAX)
        die("instance id too long: %s", id);
    snprintf(m.instance, sizeof(m.instance), "%s", id);
    char text[256], key[160];
    if (!rr_ctl_format(text, sizeof(text), &m))
        die("cannot format the control message for %s", id);
    rr_key_global(key, sizeof(key), o.prefix, "ctl");
    redisReply *r = cmd("PUBLISH %s %s", key, text);
    long long heard = r->integer;
    freeReplyObject(r);
    struct rr_instance in;
    bool known = load_instance(id, &in);
    if (o.json)
        printf("{\"op\":\"%s\",\"instance\":\"%s\",\"receivers\":%lld,\"known\":%s}\n",
               op == RR_CTL_DRAIN ? "drain" : "undrain", id, heard, known ? "true" : "false");
    else
        printf("%s %s: sent to %lld listener(s)%s\n", op == RR_CTL_DRAIN ? "drain" : "undrain", id,
               heard, known ? "" : " (no live instance of that id in the registry)");
    return known ? 0 : 3;
}

int main(int argc, char **argv)
{
    const struct rr_opt opts[] = {
        {"redis", RR_OPT_STR, &o.redis, "127.0.0.1:6379", "HOST:PORT", "the cluster's Redis", 0, 0},
        {"redis-prefix", RR_OPT_STR, &o.prefix, RR_PREFIX_DEFAULT, "P",
         "key prefix the backends and agents use", 0, 0},
        {"json", RR_OPT_BOOL, &o.json, "false", NULL, "print JSON instead of a table", 0, 0},
        RR_OPT_END,
    };
    const char *words[2] = {0};
    int nwords = rr_opts_parse_args(
        opts, "roomrelayctl", RR_VERSION,
        "roomrelayctl: status of a roomrelay cluster, its rooms, and drain/undrain.\n\n"
        "Commands: status | rooms | drain ID | undrain ID",
        argc, argv, words, 2);

    bool ok = nwords == 1 && (strcmp(words[0], "status") == 0 || strcmp(words[0], "rooms") == 0);
    ok =
        ok || (nwords == 2 && (strcmp(words[0], "drain") == 0 || strcmp(words[0], "undrain") == 0));
    if (!ok)
        rr_opts_die("usage: roomrelayctl [--redis HOST:PORT] status|rooms|drain ID|undrain ID "
                    "[--json]");

    char host[256];
    uint16_t port;
    if (rr_parse_hostport(o.redis, host, sizeof(host), &port) < 0)
        rr_opts_die("--redis: '%s' is not HOST:PORT", o.redis);
    struct timeval tv = {5, 0};
    rc = redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err)
        die("cannot reach Redis at %s", o.redis);
    redisSetTimeout(rc, tv);

    int rcode;
    if (strcmp(words[0], "status") == 0)
        rcode = status();
    else if (strcmp(words[0], "rooms") == 0)
        rcode = rooms();
    else
        rcode = control(strcmp(words[0], "drain") == 0 ? RR_CTL_DRAIN : RR_CTL_UNDRAIN, words[1]);
    redisFree(rc);
    return rcode;
}
