/*
 * Signature checks with prepared OpenSSL state, see jwt_sig.h.
 *
 * Why prepared: EVP_DigestVerifyInit on a fresh EVP_MD_CTX per token set up
 * an EVP_PKEY_CTX and fetched the signature method each time (~2.3 us of an
 * uncached RS256 check, the RSA operation itself being ~15 us). Here the
 * digest is computed in a reused EVP_MD_CTX with a digest fetched once, and
 * verified with EVP_PKEY_verify on the key's prepared EVP_PKEY_CTX. HMAC uses
 * a reused EVP_MAC_CTX per digest, given the key at each EVP_MAC_init
 * (life_cycle-mac(7) allows init after final), so HMAC state is never tied
 * to a keyset.
 */
#include "lib/jwt_sig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdlib.h>

/* An ECDSA-Sig-Value in DER on P-521: SEQUENCE (3-byte header), two INTEGERs of 1 + 66 bytes. */
#define ECDSA_DER_MAX (3 + 2 * (2 + 1 + 66))

enum hash { SHA256, SHA384, SHA512, N_HASH };

static const char *const hash_names[N_HASH] = {"SHA256", "SHA384", "SHA512"};

/* One key's verify contexts, one per digest it has been used with. */
struct key_ctx {
    EVP_PKEY_CTX *pkey[N_HASH]; /* RSA, EC; NULL until first used, and for HMAC keys */
};

struct rr_jwt_sig_ctx {
    EVP_MD *md[N_HASH];
    EVP_MAC_CTX *mac[N_HASH]; /* HMAC with each digest; keyed at every use */
    EVP_MD_CTX *digest;       /* what RSA and EC keys verify a digest of */
    uint64_t generation;      /* of the keyset keys[] belongs to; 0: none */
    struct key_ctx *keys;     /* n_keys, indexed as that keyset's keys */
    size_t n_keys;
    size_t built;
};

/* The digest of each algorithm, and for ES* the size of R and of S (RFC 7518 §3.4). */
static enum hash alg_hash(enum rr_jwt_alg alg, size_t *ec_coord_len)
{
    switch (alg) {
    case RR_ALG_HS256:
    case RR_ALG_RS256:
        return SHA256;
    case RR_ALG_ES256:
        *ec_coord_len = 32;
        return SHA256;
    case RR_ALG_HS384:
    case RR_ALG_RS384:
        return SHA384;
    case RR_ALG_ES384:
        *ec_coord_len = 48;
        return SHA384;
    case RR_ALG_HS512:
    case RR_ALG_RS512:
        return SHA512;
    case RR_ALG_ES512:
        *ec_coord_len = 66;
        return SHA512;
    default: /* RR_ALG_NONE and RR_ALG_COUNT: no key allows them */
        return SHA256;
    }
}

static void drop_keys(struct rr_jwt_sig_ctx *sc)
{
    for (size_t i = 0; i < sc->n_keys; i++)
        for (int h = 0; h < N_HASH; h++)
            EVP_PKEY_CTX_free(sc->keys[i].pkey[h]);
    free(sc->keys);
    sc->keys = NULL;
    sc->n_keys = 0;
    sc->generation = 0;
}

void rr_jwt_sig_ctx_free(struct rr_jwt_sig_ctx *sc)
{
    if (!sc)
        return;
    drop_keys(sc);
    for (int h = 0; h < N_HASH; h++) {
        EVP_MAC_CTX_free(sc->mac[h]);
        EVP_MD_free(sc->md[h]);
    }
    EVP_MD_CTX_free(sc->digest);
    free(sc);
}

struct rr_jwt_sig_ctx *rr_jwt_sig_ctx_new(void)
{
    struct rr_jwt_sig_ctx *sc = calloc(1, sizeof(*sc));
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    bool ok = sc && hmac;

    for (int h = 0; ok && h < N_HASH; h++) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)hash_names[h], 0),
            OSSL_PARAM_construct_end(),
        };

        sc->md[h] = EVP_MD_fetch(NULL, hash_names[h], NULL);
        sc->mac[h] = EVP_MAC_CTX_new(hmac);
        ok = sc->md[h] && sc->mac[h] && EVP_MAC_CTX_set_params(sc->mac[h], params) == 1;
    }
    if (ok)
        sc->digest = EVP_MD_CTX_new();
    EVP_MAC_free(hmac); /* each EVP_MAC_CTX holds its own reference */
    if (!ok || !sc->digest) {
        rr_jwt_sig_ctx_free(sc);
        ERR_clear_error();
        return NULL;
    }
    return sc;
}

size_t rr_jwt_sig_ctx_built(const struct rr_jwt_sig_ctx *sc)
{
    return sc->built;
}

/* Makes keys[] ks's: the contexts of any other keyset are freed first. */
static bool bind_keyset(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks)
{
    if (sc->generation == ks->generation)
        return true;
    drop_keys(sc);
    sc->keys = calloc(ks->n ? ks->n : 1, sizeof(*sc->keys));
    if (!sc->keys)
        return false;
    sc->n_keys = ks->n;
    sc->generation = ks->generation;
    return true;
}

/* The key's context for digest h: PKCS#1 v1.5 padding for RSA, the digest set. */
static EVP_PKEY_CTX *key_pkey_ctx(struct rr_jwt_sig_ctx *sc, const struct rr_key *k,
                                  struct key_ctx *kc, enum hash h)
{
    EVP_PKEY_CTX *c = kc->pkey[h];

    if (c)
        return c;
    c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (!c || EVP_PKEY_verify_init(c) != 1 ||
        (k->kind == RR_KEY_RSA && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1) ||
        EVP_PKEY_CTX_set_signature_md(c, sc->md[h]) != 1) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    sc->built++;
    kc->pkey[h] = c;
    return c;
}

static bool hmac_ok(struct rr_jwt_sig_ctx *sc, const struct rr_key *k, enum hash h,
                    const unsigned char *in, size_t in_len, const unsigned char *sig,
                    size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;

    if (EVP_MAC_init(sc->mac[h], k->material, k->material_len, NULL) != 1 ||
        EVP_MAC_update(sc->mac[h], in, in_len) != 1 ||
        EVP_MAC_final(sc->mac[h], mac, &mac_len, sizeof(mac)) != 1)
        return false;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

static bool pkey_ok(struct rr_jwt_sig_ctx *sc, EVP_PKEY_CTX *c, enum hash h,
                    const unsigned char *in, size_t in_len, const unsigned char *sig,
                    size_t sig_len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    return EVP_DigestInit_ex(sc->digest, sc->md[h], NULL) == 1 &&
           EVP_DigestUpdate(sc->digest, in, in_len) == 1 &&
           EVP_DigestFinal_ex(sc->digest, md, &md_len) == 1 &&
           EVP_PKEY_verify(c, sig, sig_len, md, md_len) == 1;
}

/* JWS carries R || S, each of exactly coord_len bytes; OpenSSL verifies an
 * ECDSA-Sig-Value, so the pair is re-encoded as DER first. */
static bool ecdsa_ok(struct rr_jwt_sig_ctx *sc, EVP_PKEY_CTX *c, enum hash h, size_t coord_len,
                     const unsigned char *in, size_t in_len, const unsigned char *sig,
                     size_t sig_len)
{
    unsigned char der[ECDSA_DER_MAX], *p = der;
    ECDSA_SIG *es;
    BIGNUM *r, *s;
    int der_len = 0;

    if (sig_len != 2 * coord_len)
        return false;
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, (int)coord_len, NULL);
    s = BN_bin2bn(sig + coord_len, (int)coord_len, NULL);
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them now */
        der_len = i2d_ECDSA_SIG(es, NULL);
        der_len = der_len <= (int)sizeof(der) ? i2d_ECDSA_SIG(es, &p) : 0;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der_len > 0 && pkey_ok(sc, c, h, in, in_len, der, (size_t)der_len);
}

bool rr_jwt_sig_check(struct rr_jwt_sig_ctx *sc, const struct rr_keyset *ks, size_t key,
                      enum rr_jwt_alg alg, const unsigned char *in, size_t in_len,
                      const unsigned char *sig, size_t sig_len)
{
    const struct rr_key *k = &ks->keys[key];
    size_t coord_len = 0;
    enum hash h = alg_hash(alg, &coord_len);
    EVP_PKEY_CTX *c = NULL;
    bool ok = false;

    if (!bind_keyset(sc, ks))
        return false;
    if (k->kind == RR_KEY_HMAC)
        ok = hmac_ok(sc, k, h, in, in_len, sig, sig_len);
    else if ((c = key_pkey_ctx(sc, k, &sc->keys[key], h)))
        ok = k->kind == RR_KEY_RSA ? pkey_ok(sc, c, h, in, in_len, sig, sig_len)
                                   : ecdsa_ok(sc, c, h, coord_len, in, in_len, sig, sig_len);
    ERR_clear_error(); /* a refused signature leaves errors on this thread's queue */
    return ok;
}
