/*
 * Verified-token cache: a chained hash table over a fixed array of entries,
 * with an LRU list threaded through the same entries. Everything is
 * allocated at creation and a lookup allocates nothing of its own; only
 * OpenSSL 3.0's EVP_DigestInit_ex still mallocs and frees its provider
 * context on every digest, reused context or not. Keys are full SHA-256
 * digests, compared on all 32 bytes.
 */
#include "lib/token_cache.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define DIGEST_LEN 32

struct entry {
    unsigned char digest[DIGEST_LEN];
    uint64_t generation;
    int64_t expires_at;
    json_t *claims;
    uint32_t chain;      /* next in the bucket, or in the free list */
    uint32_t prev, next; /* LRU list, most recently used first */
};

struct rr_token_cache {
    size_t capacity, count;
    struct entry *entries;
    uint32_t *buckets;
    size_t mask;
    uint32_t lru_head, lru_tail, free_head;
    EVP_MD *sha256;
    EVP_MD_CTX *md;
};

struct rr_token_cache *rr_token_cache_new(size_t capacity)
{
    struct rr_token_cache *c = calloc(1, sizeof(*c));
    size_t nbuckets = 1;

    if (!c)
        return NULL;
    c->capacity = capacity;
    c->lru_head = c->lru_tail = c->free_head = NIL;
    if (capacity == 0)
        return c;
    if (capacity >= NIL / 2) {
        free(c);
        return NULL;
    }
    while (nbuckets < capacity * 2)
        nbuckets *= 2;
    c->mask = nbuckets - 1;
    c->entries = calloc(capacity, sizeof(*c->entries));
    c->buckets = malloc(nbuckets * sizeof(*c->buckets));
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    c->md = EVP_MD_CTX_new();
    if (!c->entries || !c->buckets || !c->sha256 || !c->md) {
        rr_token_cache_free(c);
        return NULL;
    }
    memset(c->buckets, 0xff, nbuckets * sizeof(*c->buckets));
    for (size_t i = 0; i < capacity; i++)
        c->entries[i].chain = i + 1 < capacity ? (uint32_t)(i + 1) : NIL;
    c->free_head = 0;
    return c;
}

void rr_token_cache_free(struct rr_token_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->entries && i < c->capacity; i++)
        json_decref(c->entries[i].claims);
    free(c->entries);
    free(c->buckets);
    EVP_MD_CTX_free(c->md);
    EVP_MD_free(c->sha256);
    free(c);
}

size_t rr_token_cache_count(const struct rr_token_cache *c)
{
    return c->count;
}

static bool digest(struct rr_token_cache *c, const char *token, size_t len,
                   unsigned char out[DIGEST_LEN])
{
    return EVP_DigestInit_ex(c->md, c->sha256, NULL) == 1 &&
           EVP_DigestUpdate(c->md, token, len) == 1 && EVP_DigestFinal_ex(c->md, out, NULL) == 1;
}

static uint32_t *bucket(struct rr_token_cache *c, const unsigned char d[DIGEST_LEN])
{
    uint64_t h;

    memcpy(&h, d, sizeof(h));
    return &c->buckets[h & c->mask];
}

static uint32_t find(struct rr_token_cache *c, const unsigned char d[DIGEST_LEN])
{
    for (uint32_t i = *bucket(c, d); i != NIL; i = c->entries[i].chain)
        if (memcmp(c->entries[i].digest, d, DIGEST_LEN) == 0)
            return i;
    return NIL;
}

static void lru_unlink(struct rr_token_cache *c, uint32_t i)
{
    struct entry *e = &c->entries[i];

    if (e->prev != NIL)
        c->entries[e->prev].next = e->next;
    else
        c->lru_head = e->next;
    if (e->next != NIL)
        c->entries[e->next].prev = e->prev;
    else
        c->lru_tail = e->prev;
}

static void lru_push_front(struct rr_token_cache *c, uint32_t i)
{
    struct entry *e = &c->entries[i];

    e->prev = NIL;
    e->next = c->lru_head;
    if (c->lru_head != NIL)
        c->entries[c->lru_head].prev = i;
    else
        c->lru_tail = i;
    c->lru_head = i;
}

static void remove_entry(struct rr_token_cache *c, uint32_t i)
{
    struct entry *e = &c->entries[i];
    uint32_t *link = bucket(c, e->digest);

    while (*link != i)
        link = &c->entries[*link].chain;
    *link = e->chain;
    lru_unlink(c, i);
    json_decref(e->claims);
    e->claims = NULL;
    e->chain = c->free_head;
    c->free_head = i;
    c->count--;
}

json_t *rr_token_cache_get(struct rr_token_cache *c, const char *token, size_t len,
                           uint64_t generation, int64_t now)
{
    unsigned char d[DIGEST_LEN];
    uint32_t i;

    if (c->capacity == 0 || !digest(c, token, len, d))
        return NULL;
    i = find(c, d);
    if (i == NIL)
        return NULL;
    if (c->entries[i].generation != generation || now >= c->entries[i].expires_at) {
        remove_entry(c, i);
        return NULL;
    }
    lru_unlink(c, i);
    lru_push_front(c, i);
    return json_incref(c->entries[i].claims);
}

void rr_token_cache_put(struct rr_token_cache *c, const char *token, size_t len,
                        uint64_t generation, int64_t expires_at, json_t *claims)
{
    unsigned char d[DIGEST_LEN];
    struct entry *e;
    uint32_t i;

    if (c->capacity == 0 || !digest(c, token, len, d))
        return;
    i = find(c, d);
    if (i != NIL) {
        lru_unlink(c, i);
    } else {
        if (c->free_head == NIL)
            remove_entry(c, c->lru_tail);
        i = c->free_head;
        e = &c->entries[i];
        c->free_head = e->chain;
        memcpy(e->digest, d, DIGEST_LEN);
        e->chain = *bucket(c, d);
        *bucket(c, d) = i;
        c->count++;
    }
    e = &c->entries[i];
    json_incref(claims);
    json_decref(e->claims);
    e->claims = claims;
    e->generation = generation;
    e->expires_at = expires_at;
    lru_push_front(c, i);
}
