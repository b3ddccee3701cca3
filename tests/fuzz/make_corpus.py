#!/usr/bin/python3
"""Writes the fuzzers' seed corpus: tests/fuzz/corpus/fuzz_spop/ gets SPOP
frames as HAProxy and the agent send them (built with the integration
tests' spop_client.py, which is independent of the C codec), and
tests/fuzz/corpus/fuzz_jwt/ gets tokens from tests/fixtures/jwt/vectors.json.
Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py"""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import spop_client as sp  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
VECTORS = json.load(open(os.path.join(ROOT, "tests", "fixtures", "jwt", "vectors.json")))
TOKENS = {v["name"]: v["token"] for v in VECTORS["vectors"]}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def set_var(scope, name, typed):
    return bytes([1, 3, scope]) + sp.s(name) + typed


def unset_var(scope, name):
    return bytes([2, 2, scope]) + sp.s(name)


def spop_seeds():
    tok = TOKENS["hs256_secret_file_ok"]
    notify = sp.check_token(0, 1, bearer="Bearer " + tok)
    yield "hello", sp.hello()
    yield "hello-healthcheck", sp.hello(caps="", healthcheck=True)
    yield "notify-check-token-bearer", notify
    yield "notify-check-token-all-sources", sp.check_token(
        2, 1, bearer="Bearer a.b.c", qtoken="q.r.s", proto="roomrelay.v1, bearer.x.y.z",
        cookie="c.d.e")
    yield "notify-two-messages", sp.notify(4, 300, [
        ("check-token", [("cookie", sp.t_str(tok))]),
        ("route-room", [("room", sp.t_str("T42")), ("n", sp.t_uint32(70000)),
                        ("ok", sp.t_bool(True)), ("none", sp.T_NULL)]),
    ])
    yield "haproxy-disconnect", sp.frame(sp.HAPROXY_DISCONNECT, sp.kv([
        ("status-code", sp.t_uint32(3)), ("message", sp.t_str("frame is too big"))]))
    yield "ack-actions", sp.frame(sp.ACK, set_var(1, "auth", sp.t_bool(True)) +
                                  unset_var(1, "auth_err") + set_var(1, "sub", sp.t_str("alice")) +
                                  set_var(1, "exp", b"\x04" + sp.varint(1900000600)), sid=0, fid=1)
    yield "pipelined", sp.hello() + notify + sp.check_token(2, 2, cookie=tok)


JWT_SEEDS = [
    "hs256_secret_file_ok", "rs256_pem_without_kid_ok", "es256_pem_by_curve_ok",
    "es384_jwks_by_kid_ok", "rs256_jwks_by_kid_ok", "alg_none_is_alg_not_allowed",
    "unknown_kid", "hs256_signed_with_rsa_pem_is_bad_signature_beside_hmac_key",
    "aud_array_containing_it_ok", "header_crit_is_malformed", "fractional_exp_within_leeway_ok",
]


def main():
    for name, data in spop_seeds():
        write("fuzz_spop", name, data)
    for name in JWT_SEEDS:
        write("fuzz_jwt", name, TOKENS[name])


if __name__ == "__main__":
    main()
