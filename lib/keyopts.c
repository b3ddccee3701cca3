/*
 * Key options, keyring loading and the key watch, see keyopts.h.
 */
#include "lib/keyopts.h"

#include <signal.h>

#include "lib/log.h"

bool rr_keyopts_any(const struct rr_keyopts *o)
{
    return o->hmac_secret || o->hmac_files.n + o->pem_keys.n + o->jwks_files.n > 0;
}

void rr_keyopts_policy(const struct rr_keyopts *o, struct rr_jwt_policy *pol)
{
    pol->issuer = o->issuer;
    pol->audience = o->audience;
    pol->leeway = o->leeway;
    pol->allow_no_exp = o->allow_no_exp;
    pol->max_token_bytes = (size_t)o->max_token_bytes;
}

void rr_keyopts_load(const struct rr_keyopts *o, struct rr_keyring *kr)
{
    struct rr_key_sources src = {
        .hmac_secret = o->hmac_secret,
        .hmac_files = o->hmac_files.v,
        .n_hmac = o->hmac_files.n,
        .pem_specs = o->pem_keys.v,
        .n_pem = o->pem_keys.n,
        .jwks_files = o->jwks_files.v,
        .n_jwks = o->jwks_files.n,
    };
    char err[512];
    if (rr_keyring_init(kr, &src, err, sizeof(err)) < 0)
        rr_opts_die("%s", err);
}

static void reload(struct rr_keywatch *w, const char *why, bool only_if_changed)
{
    char err[512];
    int rc = only_if_changed ? rr_keyring_reload_if_changed(w->kr, err, sizeof(err))
                             : rr_keyring_reload(w->kr, err, sizeof(err));
    if (rc == 0)
        return;
    if (rc > 0) {
        struct rr_keyset *ks = rr_keyring_get(w->kr);
        rr_info("keys reloaded (%s): %zu key(s)", why, ks->n);
        rr_keyset_unref(ks);
    } else {
        rr_error("keys not reloaded (%s), keeping the previous keys: %s", why, err);
    }
    if (w->on_reload)
        w->on_reload(rc);
}

static void on_hup(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)revents;
    reload(s->data, "SIGHUP", false);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    reload(t->data, "key file changed", true);
}

void rr_keywatch_start(struct rr_keywatch *w, struct ev_loop *loop, struct rr_keyring *kr,
                       int64_t interval, void (*on_reload)(int result))
{
    w->kr = kr;
    w->on_reload = on_reload;
    ev_signal_init(&w->hup, on_hup, SIGHUP);
    w->hup.data = w;
    ev_signal_start(loop, &w->hup);
    ev_timer_init(&w->timer, on_timer, (double)interval, (double)interval);
    w->timer.data = w;
    if (interval > 0)
        ev_timer_start(loop, &w->timer);
}

void rr_keywatch_stop(struct rr_keywatch *w, struct ev_loop *loop)
{
    ev_signal_stop(loop, &w->hup);
    ev_timer_stop(loop, &w->timer);
}
