/*
 * JWS signatures (RFC 7518 §3: HS*, RS*, ES*) checked with OpenSSL contexts
 * that one thread prepares once and reuses: the digests and HMAC fetched once,
 * and for each RSA or EC key an EVP_PKEY_CTX after EVP_PKEY_verify_init with
 * its padding and digest set (EVP_PKEY_verify(3): it "can be called more than
 * once on the same context"). Which keys a token may try is jwt_verify.c's
 * decision, not this file's.
 */
#ifndef RR_JWT_SIG_H
#define RR_JWT_SIG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/jwt_keys.h"

/*
 * One thread's verification state. Not thread-safe: OpenSSL contexts must not
 * be shared between threads, so each worker thread owns one. Its key contexts
 * belong to the keyset it last verified with (by generation): a keyset of
 * another generation drops them all before any is used, so a context never
 * verifies with a key of another keyset. The dropped contexts' keys stay
 * referenced (OpenSSL counts them) until then, or until rr_jwt_sig_ctx_free.
 */
struct rr_jwt_sig_ctx;

/* NULL when OpenSSL has no SHA-2 or HMAC (or out of memory). */
struct rr_jwt_sig_ctx *rr_jwt_sig_ctx_new(void);
void rr_jwt_sig_ctx_free(struct rr_jwt_sig_ctx *sc);

/*
 * Whether sig is ks->keys[key]'s signature of in with alg: an HMAC, PKCS#1
 * v1.5, or ECDSA given as R || S of the curve's size. The caller has checked
 * that the key allows alg. Failures of any kind (allocation included) are
 * false; they leave no error on OpenSSL's queue.
 */
bool rr_jwt_sig_check(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks, size_t key,
                      enum rr_jwt_alg alg, const unsigned char *in, size_t in_len,
                      const unsigned char *sig, size_t sig_len);

/* How many key contexts sc has set up since it was made: reuse shows as none. */
size_t rr_jwt_sig_ctx_built(const struct rr_jwt_sig_ctx *sc);

#endif
