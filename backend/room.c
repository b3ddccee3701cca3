/*
 * Rooms of one backend, see room.h. The table is a chained hash over the room
 * names (FNV-1a) that doubles at load 0.75; each room is allocated inside a
 * node that carries the chain link, so struct room stays the public part.
 * A room's de-duplication memory is a FIFO ring of (sub, id) -> seq with a
 * chained hash index over the ring, grown up to its cap and then recycled:
 * once full, recording an id allocates nothing (unless a longer key needs a
 * larger buffer). Not here: membership of connections (the I/O layer keeps
 * each member's index) and anything timed.
 */
#include "backend/room.h"

#include "lib/room_access.h"

#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define TABLE_MIN_BUCKETS 16
#define MEMBERS_MIN 4
#define DEDUP_MIN 8

struct room_node {
    struct room room; /* first: a struct room * is a struct room_node * */
    struct room_node *next;
    uint64_t hash;
};

struct room_table {
    struct room_node **buckets;
    size_t mask, count;
};

struct dedup_entry {
    char *key; /* sub, '\0', id */
    size_t key_len, key_cap;
    uint64_t hash, seq;
    uint32_t chain; /* next entry in the same bucket */
};

struct room_dedup {
    struct dedup_entry *entries; /* ring: n entries from head, oldest first */
    uint32_t *buckets;
    uint32_t cap, alloc, n, head, mask;
};

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

struct room_table *room_table_new(void)
{
    struct room_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->buckets = calloc(TABLE_MIN_BUCKETS, sizeof(struct room_node *));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->mask = TABLE_MIN_BUCKETS - 1;
    return t;
}

static void dedup_free(struct room_dedup *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->alloc; i++)
        free(d->entries[i].key);
    free(d->entries);
    free(d->buckets);
    free(d);
}

static void node_free(struct room_node *n)
{
    free(n->room.members);
    dedup_free(n->room.dedup);
    free(n);
}

void room_table_free(struct room_table *t)
{
    if (!t)
        return;
    for (size_t b = 0; b <= t->mask; b++) {
        struct room_node *n = t->buckets[b];
        while (n) {
            struct room_node *next = n->next;
            node_free(n);
            n = next;
        }
    }
    free(t->buckets);
    free(t);
}

size_t room_table_count(const struct room_table *t)
{
    return t->count;
}

struct room *room_find(struct room_table *t, const char *name, size_t len)
{
    uint64_t h = fnv1a(FNV_OFFSET, name, len);
    for (struct room_node *n = t->buckets[h & t->mask]; n; n = n->next)
        if (n->hash == h && n->room.name_len == len && memcmp(n->room.name, name, len) == 0)
            return &n->room;
    return NULL;
}

/* Doubles the bucket array; on allocation failure the table stays as it was
 * (only slower), so the caller carries on. */
static void table_grow(struct room_table *t)
{
    size_t nb = (t->mask + 1) * 2;
    struct room_node **buckets = calloc(nb, sizeof(struct room_node *));
    if (!buckets)
        return;
    for (size_t b = 0; b <= t->mask; b++) {
        struct room_node *n = t->buckets[b];
        while (n) {
            struct room_node *next = n->next;
            n->next = buckets[n->hash & (nb - 1)];
            buckets[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->mask = nb - 1;
}

struct room *room_get(struct room_table *t, const char *name, size_t len)
{
    struct room *r = room_find(t, name, len);
    if (r)
        return r;
    if (!rr_room_name_valid(name, len))
        return NULL;
    struct room_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    memcpy(n->room.name, name, len);
    n->room.name_len = (uint8_t)len;
    n->hash = fnv1a(FNV_OFFSET, name, len);
    if ((t->count + 1) * 4 > (t->mask + 1) * 3)
        table_grow(t);
    n->next = t->buckets[n->hash & t->mask];
    t->buckets[n->hash & t->mask] = n;
    t->count++;
    return &n->room;
}

void room_remove(struct room_table *t, struct room *r)
{
    struct room_node *node = (struct room_node *)r;
    for (struct room_node **pp = &t->buckets[node->hash & t->mask]; *pp; pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            t->count--;
            node_free(node);
            return;
        }
    }
}

int room_add_member(struct room *r, struct room_member *m)
{
    if (r->n_members == r->cap_members) {
        if (r->cap_members >= (uint32_t)INT32_MAX / 2)
            return -1;
        uint32_t ncap = r->cap_members ? r->cap_members * 2 : MEMBERS_MIN;
        struct room_member **members = realloc(r->members, ncap * sizeof(struct room_member *));
        if (!members)
            return -1;
        r->members = members;
        r->cap_members = ncap;
    }
    r->members[r->n_members] = m;
    return (int)r->n_members++;
}

struct room_member *room_remove_member(struct room *r, uint32_t i)
{
    if (i >= r->n_members)
        return NULL;
    uint32_t last = --r->n_members;
    if (i == last)
        return NULL;
    r->members[i] = r->members[last];
    return r->members[i];
}

struct room *room_next(struct room_table *t, struct room *prev)
{
    size_t b = 0;
    if (prev) {
        struct room_node *n = (struct room_node *)prev;
        if (n->next)
            return &n->next->room;
        b = (n->hash & t->mask) + 1;
    }
    for (; b <= t->mask; b++)
        if (t->buckets[b])
            return &t->buckets[b]->room;
    return NULL;
}

static uint64_t dedup_hash(const char *sub, size_t sub_len, const char *id, size_t id_len)
{
    return fnv1a(fnv1a(FNV_OFFSET, sub, sub_len + 1), id, id_len);
}

static struct dedup_entry *dedup_lookup(const struct room_dedup *d, uint64_t h, const char *sub,
                                        size_t sub_len, const char *id, size_t id_len)
{
    size_t key_len = sub_len + 1 + id_len;
    for (uint32_t e = d->buckets[h & d->mask]; e != NIL; e = d->entries[e].chain) {
        struct dedup_entry *x = &d->entries[e];
        if (x->hash == h && x->key_len == key_len && memcmp(x->key, sub, sub_len + 1) == 0 &&
            memcmp(x->key + sub_len + 1, id, id_len) == 0)
            return x;
    }
    return NULL;
}

bool room_dedup_find(struct room *r, const char *sub, const char *id, uint64_t *seq)
{
    struct room_dedup *d = r->dedup;
    if (!d || d->n == 0)
        return false;
    size_t sub_len = strlen(sub), id_len = strlen(id);
    struct dedup_entry *x =
        dedup_lookup(d, dedup_hash(sub, sub_len, id, id_len), sub, sub_len, id, id_len);
    if (!x)
        return false;
    *seq = x->seq;
    return true;
}

static struct room_dedup *dedup_new(size_t cap)
{
    struct room_dedup *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cap = (uint32_t)cap;
    return d;
}

/* Grows the ring (which has not wrapped yet: it only wraps once at cap) and
 * rebuilds the index with one bucket per entry. */
static int dedup_grow(struct room_dedup *d)
{
    uint32_t alloc = d->alloc ? d->alloc * 2 : DEDUP_MIN;
    if (alloc > d->cap)
        alloc = d->cap;
    uint32_t nb = 1;
    while (nb < alloc)
        nb *= 2;
    struct dedup_entry *entries = realloc(d->entries, alloc * sizeof(*entries));
    if (!entries)
        return -1;
    d->entries = entries;
    memset(entries + d->alloc, 0, (alloc - d->alloc) * sizeof(*entries));
    d->alloc = alloc;
    uint32_t *buckets = malloc(nb * sizeof(*buckets));
    if (!buckets)
        return -1;
    free(d->buckets);
    d->buckets = buckets;
    d->mask = nb - 1;
    memset(buckets, 0xff, nb * sizeof(*buckets));
    for (uint32_t e = 0; e < d->n; e++) {
        entries[e].chain = buckets[entries[e].hash & d->mask];
        buckets[entries[e].hash & d->mask] = e;
    }
    return 0;
}

static void dedup_unlink(struct room_dedup *d, uint32_t e)
{
    uint32_t *pp = &d->buckets[d->entries[e].hash & d->mask];
    while (*pp != e)
        pp = &d->entries[*pp].chain;
    *pp = d->entries[e].chain;
}

int room_dedup_add(struct room *r, const char *sub, const char *id, uint64_t seq, size_t cap)
{
    if (cap == 0)
        return 0;
    if (cap > NIL / 2)
        cap = NIL / 2;
    if (!r->dedup && !(r->dedup = dedup_new(cap)))
        return -1;
    struct room_dedup *d = r->dedup;
    size_t sub_len = strlen(sub), id_len = strlen(id);
    uint64_t h = dedup_hash(sub, sub_len, id, id_len);
    if (d->n && dedup_lookup(d, h, sub, sub_len, id, id_len))
        return 0;
    if (d->n == d->alloc && d->alloc < d->cap && dedup_grow(d) < 0)
        return -1;

    uint32_t e;
    if (d->n == d->cap) {
        e = d->head;
        dedup_unlink(d, e);
        if (++d->head == d->cap)
            d->head = 0;
        d->n--;
    } else {
        e = d->head + d->n;
        if (e >= d->cap)
            e -= d->cap;
    }
    struct dedup_entry *x = &d->entries[e];
    size_t key_len = sub_len + 1 + id_len;
    if (key_len > x->key_cap) {
        char *key = realloc(x->key, key_len);
        if (!key)
            return -1;
        x->key = key;
        x->key_cap = key_len;
    }
    memcpy(x->key, sub, sub_len + 1);
    memcpy(x->key + sub_len + 1, id, id_len);
    x->key_len = key_len;
    x->hash = h;
    x->seq = seq;
    x->chain = d->buckets[h & d->mask];
    d->buckets[h & d->mask] = e;
    d->n++;
    return 0;
}
