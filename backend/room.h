/*
 * Rooms of one backend: name -> room, each with its members (opaque member
 * pointers owned by the I/O layer), its sequence number, and the recent
 * publish ids for de-duplication. Pure data structure: no I/O, no clock.
 *
 * Room names are 1-64 bytes of [A-Za-z0-9_.:-] (rr_room_name_valid, lib/room_access.h).
 */
#ifndef RR_ROOM_H
#define RR_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROOM_NAME_MAX 64

struct room_member; /* the I/O layer's connection, opaque here */

struct room {
    char name[ROOM_NAME_MAX + 1];
    uint8_t name_len;
    uint64_t seq;                 /* last sequence number numbered here (local bus) */
    struct room_member **members; /* unordered; index kept by the member side */
    uint32_t n_members, cap_members;
    struct room_dedup *dedup; /* recent (sub, id) -> seq; NULL until first publish with id */
    void *bus_data;           /* the bus's per-room state (subscription, ...) */
    uint64_t empty_since_ns;  /* when the last member left (linger), 0 while occupied */
};

struct room_table;

struct room_table *room_table_new(void);
void room_table_free(struct room_table *t);
size_t room_table_count(const struct room_table *t);

struct room *room_find(struct room_table *t, const char *name, size_t len);
/* Finds or creates; NULL on allocation failure or an invalid name. */
struct room *room_get(struct room_table *t, const char *name, size_t len);
/* Removes and frees an empty room. */
void room_remove(struct room_table *t, struct room *r);

/* Adds a member; returns its index in r->members (the caller keeps it for
 * O(1) removal), or -1 on allocation failure. */
int room_add_member(struct room *r, struct room_member *m);
/* Removes the member at index i by moving the last member into its place;
 * returns the member that moved (so the caller can update its stored index),
 * or NULL if none moved. */
struct room_member *room_remove_member(struct room *r, uint32_t i);

/* Iterates all rooms: returns the next room after `prev` (NULL starts). The
 * table must not change during an iteration. */
struct room *room_next(struct room_table *t, struct room *prev);

/* De-duplication of client publish ids, per (sub, id), bounded to `cap`
 * entries per room (oldest forgotten first; the room's first add fixes its
 * cap, 0 records nothing). Adding a pair already recorded keeps its first seq.
 * room_dedup_add returns 0, or -1 on allocation failure. */
bool room_dedup_find(struct room *r, const char *sub, const char *id, uint64_t *seq);
int room_dedup_add(struct room *r, const char *sub, const char *id, uint64_t seq, size_t cap);

#endif
