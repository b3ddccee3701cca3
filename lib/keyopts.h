/*
 * The key options both binaries take (--hmac-secret, --hmac-secret-file,
 * --pem-key, --jwks, --issuer, --audience, --leeway, --allow-no-exp,
 * --max-token-bytes, --key-check-interval), what they become (a keyring and
 * a policy), and the watch that reloads the keys on SIGHUP and when a key
 * file changes.
 */
#ifndef RR_KEYOPTS_H
#define RR_KEYOPTS_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/conf.h"
#include "lib/jwt_keys.h"
#include "lib/jwt_verify.h"

struct rr_keyopts {
    const char *hmac_secret;
    struct rr_strlist hmac_files, pem_keys, jwks_files;
    const char *issuer, *audience;
    int64_t leeway, max_token_bytes, key_check_interval;
    bool allow_no_exp;
};

/* The option table entries, for a binary's own table (o is a struct rr_keyopts). */
#define RR_KEYOPTS_ENTRIES(o)                                                                       \
    {"hmac-secret",                                                                                 \
     RR_OPT_STR,                                                                                    \
     &(o).hmac_secret,                                                                              \
     NULL,                                                                                          \
     "SECRET",                                                                                      \
     "HMAC secret itself; allows HS256. Prefer the environment variable: a flag shows in ps",       \
     0,                                                                                             \
     0},                                                                                            \
        {"hmac-secret-file",                                                                        \
         RR_OPT_LIST,                                                                               \
         &(o).hmac_files,                                                                           \
         NULL,                                                                                      \
         "FILE",                                                                                    \
         "HMAC secret (raw bytes, one trailing newline ignored); allows HS256",                     \
         0,                                                                                         \
         0},                                                                                        \
        {"pem-key",                                                                                 \
         RR_OPT_LIST,                                                                               \
         &(o).pem_keys,                                                                             \
         NULL,                                                                                      \
         "FILE[:ALG,...]",                                                                          \
         "RSA or EC public key in PEM; allowed algorithms (default RS256, or ES256/384/512 by "     \
         "curve)",                                                                                  \
         0,                                                                                         \
         0},                                                                                        \
        {"jwks",                                                                                    \
         RR_OPT_LIST,                                                                               \
         &(o).jwks_files,                                                                           \
         NULL,                                                                                      \
         "FILE",                                                                                    \
         "JWKS file of RSA and EC public keys, chosen by kid",                                      \
         0,                                                                                         \
         0},                                                                                        \
        {"issuer", RR_OPT_STR, &(o).issuer, NULL, "S", "required `iss` claim (unset: not checked)", \
         0,        0},                                                                              \
        {"audience", RR_OPT_STR, &(o).audience,                                                     \
         NULL,       "S",        "required `aud` claim, string or array (unset: not checked)",      \
         0,          0},                                                                            \
        {"leeway", RR_OPT_INT, &(o).leeway, "30", "SECONDS", "clock skew allowed on exp and nbf",   \
         0,        86400},                                                                          \
        {"allow-no-exp",                                                                            \
         RR_OPT_BOOL,                                                                               \
         &(o).allow_no_exp,                                                                         \
         "false",                                                                                   \
         NULL,                                                                                      \
         "accept tokens without an `exp` claim",                                                    \
         0,                                                                                         \
         0},                                                                                        \
        {"max-token-bytes",                                                                         \
         RR_OPT_INT,                                                                                \
         &(o).max_token_bytes,                                                                      \
         "8192",                                                                                    \
         "BYTES",                                                                                   \
         "longer tokens are refused as too_large",                                                  \
         16,                                                                                        \
         1 << 20},                                                                                  \
    {                                                                                               \
        "key-check-interval", RR_OPT_INT, &(o).key_check_interval, "2", "SECONDS",                  \
            "how often key files are checked for changes (0: only on SIGHUP)", 0, 3600              \
    }

/* True when at least one key source is given. */
bool rr_keyopts_any(const struct rr_keyopts *o);
void rr_keyopts_policy(const struct rr_keyopts *o, struct rr_jwt_policy *pol);
/* Loads the keyring; exits 2 with one line on a bad key file. */
void rr_keyopts_load(const struct rr_keyopts *o, struct rr_keyring *kr);

/* Reloads kr on SIGHUP and every interval seconds when a file changed;
 * logs each reload and calls on_reload(1) or on_reload(-1) (may be NULL). */
struct rr_keywatch {
    ev_signal hup;
    ev_timer timer;
    struct rr_keyring *kr;
    void (*on_reload)(int result);
};

void rr_keywatch_start(struct rr_keywatch *w, struct ev_loop *loop, struct rr_keyring *kr,
                       int64_t interval, void (*on_reload)(int result));
void rr_keywatch_stop(struct rr_keywatch *w, struct ev_loop *loop);

#endif
