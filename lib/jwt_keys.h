/*
 * JWT verification keys: HMAC secrets, PEM public keys (RSA, EC) and JWKS
 * files, each key with the algorithms it may verify.
 *
 * A keyset is immutable once loaded and reference-counted, so a reload builds
 * a new one and swaps it in (see rr_keyring) while requests in flight keep the
 * old one. Shared by roomrelay-spoa and roomrelay-backend.
 */
#ifndef RR_JWT_KEYS_H
#define RR_JWT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>
#include <sys/types.h>
#include <time.h>

/* The JWS algorithms we verify (RFC 7518 §3.1: HS, RS, ES). RR_ALG_NONE is never allowed. */
enum rr_jwt_alg {
    RR_ALG_NONE = 0,
    RR_ALG_HS256,
    RR_ALG_HS384,
    RR_ALG_HS512,
    RR_ALG_RS256,
    RR_ALG_RS384,
    RR_ALG_RS512,
    RR_ALG_ES256,
    RR_ALG_ES384,
    RR_ALG_ES512,
    RR_ALG_COUNT,
};

/* "HS256" -> RR_ALG_HS256; RR_ALG_NONE for anything unknown (and for "none"). */
enum rr_jwt_alg rr_jwt_alg_parse(const char *s, size_t len);
const char *rr_jwt_alg_name(enum rr_jwt_alg alg);

enum rr_key_kind { RR_KEY_HMAC, RR_KEY_RSA, RR_KEY_EC };

/* One verification key, parsed once at load into what OpenSSL verifies with:
 * the raw secret for HMAC, an EVP_PKEY for RSA and EC (from PEM or JWK). The
 * worker threads share it read-only; OpenSSL 3 lets them verify with one
 * EVP_PKEY concurrently, each with its own EVP_MD_CTX. */
struct rr_key {
    enum rr_key_kind kind;
    char *kid;               /* NULL when the key has none (HMAC and PEM keys, JWKs without kid) */
    uint32_t allowed;        /* bitmask of (1u << enum rr_jwt_alg) */
    unsigned char *material; /* RR_KEY_HMAC: the secret; NULL for RSA and EC */
    size_t material_len;
    EVP_PKEY *pkey; /* RR_KEY_RSA, RR_KEY_EC: the public key; NULL for HMAC */
    char *source;   /* file it came from, for logs */
};

/* Where keys come from (the command-line flags). */
struct rr_key_sources {
    const char *hmac_secret;       /* the secret itself (--hmac-secret / RR_HMAC_SECRET), or NULL */
    const char *const *hmac_files; /* --hmac-secret-file, raw secret, one trailing \n ignored */
    size_t n_hmac;
    const char *const *pem_specs; /* --pem-key FILE[:ALG,ALG]; FILE holds no ':' */
    size_t n_pem;
    const char *const *jwks_files; /* --jwks FILE */
    size_t n_jwks;
};

struct rr_keyset {
    struct rr_key *keys; /* in configuration order: HMAC secret, HMAC files, PEM keys, JWKS keys */
    size_t n;
    uint64_t generation; /* changes on every successful reload; token caches key on it */
    int refcnt;          /* atomic */
    size_t n_skipped;    /* JWKs left out (use "enc", kty not RSA/EC, alg not ours); logged */
};

/* Loads every source. On failure returns NULL and writes one line to err
 * naming the file and the reason; nothing is half-loaded. A PEM file must
 * hold a public key (a private key is refused); an --pem-key algorithm list
 * that does not fit the key (HS* on any PEM, ES* on RSA, another curve's ES*)
 * is an error; a JWKS needs at least one usable key. */
struct rr_keyset *rr_keyset_load(const struct rr_key_sources *src, char *err, size_t errlen);
struct rr_keyset *rr_keyset_ref(struct rr_keyset *ks);
void rr_keyset_unref(struct rr_keyset *ks);

/* What tells a rewritten key file apart: the nanoseconds of the mtime catch a
 * rewrite within the same second, size and inode catch a rename over it. */
struct rr_file_stamp {
    struct timespec mtime;
    off_t size;
    ino_t ino;
    bool present;
};

/* The keyset now in force, swapped atomically on reload. The keyring keeps
 * src's pointers (the parsed command line): they must outlive it. */
struct rr_keyring {
    struct rr_key_sources src;
    struct rr_keyset *current;    /* guarded by lock */
    void *lock;                   /* pthread_mutex_t *, opaque here */
    struct rr_file_stamp *stamps; /* each source file at the last (re)load attempt */
    size_t n_files;
};

/* Loads the first keyset. Returns 0, or -1 with err filled. */
int rr_keyring_init(struct rr_keyring *kr, const struct rr_key_sources *src, char *err,
                    size_t errlen);
/* Reference to the current keyset; the caller unrefs it when done. */
struct rr_keyset *rr_keyring_get(struct rr_keyring *kr);
/* Reloads from the sources. On success swaps and returns 1; on failure keeps
 * the old keys, fills err and returns -1. */
int rr_keyring_reload(struct rr_keyring *kr, char *err, size_t errlen);
/* Reloads only if a source file changed (mtime, size or inode) since the last
 * attempt: returns 0 (nothing changed), 1 (reloaded) or -1 (changed but bad;
 * old keys kept, and the bad files are not retried until they change again). */
int rr_keyring_reload_if_changed(struct rr_keyring *kr, char *err, size_t errlen);
void rr_keyring_free(struct rr_keyring *kr);

#endif
