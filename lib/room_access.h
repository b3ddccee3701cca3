/*
 * Room names and the token's `rooms` claim (DESIGN.md §4): which names are
 * valid, and whether a claim lets a client into a room. Shared by the agent
 * (route-room answers forbidden_room at HAProxy) and the backend (join).
 * Pure; no I/O.
 */
#ifndef RR_ROOM_ACCESS_H
#define RR_ROOM_ACCESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define RR_ROOM_NAME_MAX 64

/* 1 to 64 bytes of [A-Za-z0-9_.:-]. */
bool rr_room_name_valid(const char *name, size_t len);

/* Whether a `rooms` claim (an array of names, or prefixes ending in '*')
 * allows `room`. Items that are not strings allow nothing. NULL: no claim,
 * every room. */
bool rr_room_allowed(const json_t *claim, const char *room, size_t len);

#endif
