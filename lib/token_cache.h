/*
 * Cache of verified tokens: bounded, keyed by the SHA-256 of the token, each
 * entry dropped at the token's exp and ignored once the keyset generation it
 * was verified under is replaced. Not thread-safe: one cache per worker
 * thread. Only successes are cached (a refusal is cheap to redo and must not
 * pin memory for an attacker).
 */
#ifndef RR_TOKEN_CACHE_H
#define RR_TOKEN_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct rr_token_cache;

/* capacity 0 disables the cache (every lookup misses, inserts do nothing). */
struct rr_token_cache *rr_token_cache_new(size_t capacity);
void rr_token_cache_free(struct rr_token_cache *c);

/* Returns a new reference to the cached claims, or NULL on a miss (absent,
 * now >= expires_at, or verified under another keyset generation). */
json_t *rr_token_cache_get(struct rr_token_cache *c, const char *token, size_t len,
                           uint64_t generation, int64_t now);

/* Remembers claims (takes its own reference) until `expires_at` (the token's
 * exp; INT64_MAX when it has none). Evicts the least recently used entry when full. */
void rr_token_cache_put(struct rr_token_cache *c, const char *token, size_t len,
                        uint64_t generation, int64_t expires_at, json_t *claims);

size_t rr_token_cache_count(const struct rr_token_cache *c);

#endif
