"""roomrelay-spoa behind a real HAProxy 2.6 with the shipped haproxy/ config.

Each test sends real HTTP requests through HAProxy's frontend to the
protected /demo endpoint; HAProxy asks the agent over SPOP; the verdict
comes back as sess.rr.* variables. Tokens are made by python3-jwt.
"""
import http.client
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402


class Cluster:
    """One agent, one HAProxy, keys in a temporary folder."""

    def __init__(self, agent_args=(), haproxy_env=None, unix=False):
        """unix: the agent listens on a Unix socket in the keys' folder."""
        self.dir = harness.tmpdir()
        self.keys = K.KeySet(self.dir)
        self.metrics_port = harness.free_port()
        self.agent = harness.start_agent(
            self.keys.agent_args() + ["--issuer", "https://issuer.test", "--audience", "rooms",
                                      "--leeway", "5", "--claim-var", "rooms"] + list(agent_args),
            metrics_port=self.metrics_port,
            unix_path=os.path.join(self.dir, "spoa.sock") if unix else None)
        env = dict(haproxy_env or {})
        if unix:
            env["RR_SPOA_ADDR"] = self.agent.listen
        self.haproxy = harness.start_haproxy(self.agent.port, extra_env=env)
        harness.wait_for(lambda: harness.server_state(self.haproxy, "be_spoa", "spoa1") == "UP",
                         what="HAProxy to see the agent UP")

    def get(self, path="/demo", headers=None):
        return harness.http_get(self.haproxy.port, path, headers)

    def token(self, **kw):
        kw.setdefault("iss", "https://issuer.test")
        kw.setdefault("aud", "rooms")
        return K.hs256(self.keys, **kw)

    def stop(self):
        self.haproxy.stop()
        self.agent.stop()

    def spoe_log_lines(self):
        """HAProxy's per-group SPOE log lines for the auth group."""
        return [line for line in self.haproxy.output().splitlines()
                if "SPOE: [roomrelay-agent] <GROUP:auth>" in line]

    def logged_request(self, sub):
        """Makes one authenticated request and waits until HAProxy has logged
        it, so that every log line of its SPOE exchange is written too."""
        st, _, b = self.get(path="/demo?tag=" + sub,
                            headers={"Authorization": "Bearer " + self.token(sub=sub)})
        assert st == 200, b
        harness.wait_for(lambda: "/demo?tag=" + sub in self.haproxy.output(),
                         what="HAProxy to log the request")


class CheckTokenThroughHAProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def assert_ok(self, status, headers, body, sub="alice"):
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("x-rr-sub"), sub)
        self.assertEqual(json.loads(body)["sub"], sub)

    def assert_refused(self, headers, reason, status=None, body=""):
        st, h, b = self.c.get(headers=headers) if status is None else (status, headers, body)
        self.assertEqual(st, 401, b)
        self.assertEqual(h.get("x-rr-auth-err"), reason, b)
        self.assertIn(reason, b)

    def test_valid_bearer_token_passes_with_sub(self):
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + self.c.token(sub="alice")})
        self.assert_ok(st, h, b, "alice")

    def test_exp_claim_is_set_as_integer(self):
        tok = self.c.token(sub="bob", ttl=120)
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + tok})
        self.assert_ok(st, h, b, "bob")
        self.assertGreater(json.loads(b)["exp"], int(time.time()))

    def test_token_from_query_argument(self):
        st, h, b = self.c.get("/demo?room=T1&access_token=" + self.c.token(sub="q"))
        self.assert_ok(st, h, b, "q")

    def test_token_from_websocket_subprotocol_item(self):
        proto = "roomrelay.v1, bearer." + self.c.token(sub="p")
        st, h, b = self.c.get(headers={"Sec-WebSocket-Protocol": proto})
        self.assert_ok(st, h, b, "p")

    def test_token_from_cookie(self):
        st, h, b = self.c.get(headers={"Cookie": "a=1; rr_token=" + self.c.token(sub="c")})
        self.assert_ok(st, h, b, "c")

    def test_bearer_header_wins_over_other_sources(self):
        st, h, b = self.c.get("/demo?access_token=" + self.c.token(sub="second"),
                              headers={"Authorization": "Bearer " + self.c.token(sub="first")})
        self.assert_ok(st, h, b, "first")

    def test_rsa_pem_and_jwks_keys_pass(self):
        for tok, sub in [
            (K.rs256(self.c.keys, sub="rsa", iss="https://issuer.test", aud="rooms"), "rsa"),
            (K.jwks_rs256(self.c.keys, sub="jr", iss="https://issuer.test", aud="rooms"), "jr"),
            (K.jwks_es256(self.c.keys, sub="je", iss="https://issuer.test", aud=["x", "rooms"]),
             "je"),
        ]:
            st, h, b = self.c.get(headers={"Authorization": "Bearer " + tok})
            self.assert_ok(st, h, b, sub)

    def test_client_sent_x_rr_sub_is_replaced(self):
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + self.c.token(sub="real"),
                                       "X-RR-Sub": "forged"})
        self.assert_ok(st, h, b, "real")
        self.assertEqual(json.loads(b)["x_rr_sub"], "real")

    def test_mapped_claim_var_keeps_json_text(self):
        tok = self.c.token(sub="r", rooms=["T1", "lobby:*"])
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + tok})
        self.assert_ok(st, h, b, "r")
        self.assertEqual(json.loads(json.loads(b)["rooms"]), ["T1", "lobby:*"])

    def test_every_refusal_reason_is_a_401_with_its_reason(self):
        keys = self.c.keys
        good = dict(iss="https://issuer.test", aud="rooms")
        cases = {
            "malformed": "not.a-jwt",
            "alg_not_allowed": K.alg_none(**good),
            "unknown_kid": K.jwks_rs256(keys, kid="nope", **good),
            "bad_signature": K.tamper(self.c.token()),
            "expired": self.c.token(ttl=-10),
            "not_yet_valid": self.c.token(nbf=int(time.time()) + 60),
            "bad_issuer": self.c.token(iss="https://evil.test"),
            "bad_audience": self.c.token(aud="other"),
            "too_large": self.c.token(pad="x" * 9000),
        }
        for reason, tok in cases.items():
            with self.subTest(reason=reason):
                self.assert_refused({"Authorization": "Bearer " + tok}, reason)
        self.assert_refused({}, "missing")

    def test_hs256_signed_with_the_rsa_public_key_is_refused(self):
        tok = K.hs256_with_rsa_public_key(self.c.keys, iss="https://issuer.test", aud="rooms")
        self.assert_refused({"Authorization": "Bearer " + tok}, "bad_signature")

    def test_refused_token_on_keepalive_connection_does_not_reuse_earlier_identity(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.c.haproxy.port, timeout=5)
        conn.request("GET", "/demo", headers={"Authorization": "Bearer " + self.c.token(sub="a1")})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["sub"], "a1")
        conn.request("GET", "/demo", headers={"Authorization": "Bearer " + self.c.token(ttl=-60)})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 401)
        self.assertEqual(r.getheader("X-RR-Auth-Err"), "expired")
        conn.request("GET", "/demo")
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 401)
        self.assertEqual(r.getheader("X-RR-Auth-Err"), "missing")
        conn.close()

    def test_repeat_token_is_answered_from_cache(self):
        tok = self.c.token(sub="cached")
        before = harness.metric(self.c.metrics_port, "roomrelay_spoa_token_cache_hits_total")
        for _ in range(5):
            st, h, b = self.c.get(headers={"Authorization": "Bearer " + tok})
            self.assert_ok(st, h, b, "cached")
        after = harness.metric(self.c.metrics_port, "roomrelay_spoa_token_cache_hits_total")
        # Two worker threads each verify once at most; the rest are hits.
        self.assertGreaterEqual(after - before, 3)

    def test_answered_groups_are_not_logged_at_the_default_level(self):
        self.c.logged_request("quiet")
        self.assertEqual(self.c.spoe_log_lines(), [])

    def test_refusals_are_counted_by_reason(self):
        name = 'roomrelay_spoa_check_token_total{result="bad_audience"}'
        before = harness.metric(self.c.metrics_port, name)
        self.c.get(headers={"Authorization": "Bearer " + self.c.token(aud="nope")})
        self.assertEqual(harness.metric(self.c.metrics_port, name), before + 1)


class KeyRotation(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(agent_args=["--key-check-interval", "1"])

    def tearDown(self):
        self.c.stop()

    def test_new_hmac_secret_file_is_picked_up_without_restart(self):
        old = self.c.token(sub="old")
        st, _, _ = self.c.get(headers={"Authorization": "Bearer " + old})
        self.assertEqual(st, 200)
        self.c.keys.hmac_secret = b"rotated-" + os.urandom(8).hex().encode()
        tmp = self.c.keys.hmac_file + ".new"
        with open(tmp, "wb") as f:
            f.write(self.c.keys.hmac_secret)
        os.replace(tmp, self.c.keys.hmac_file)
        new = self.c.token(sub="new")
        harness.wait_for(
            lambda: self.c.get(headers={"Authorization": "Bearer " + new})[0] == 200,
            what="the rotated secret to be accepted")
        st, h, _ = self.c.get(headers={"Authorization": "Bearer " + old})
        self.assertEqual(st, 401)
        self.assertEqual(h.get("x-rr-auth-err"), "bad_signature")

    def test_jwks_key_added_on_sighup(self):
        from cryptography.hazmat.primitives.asymmetric import rsa
        k2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        n = k2.public_key().public_numbers()
        tok = K.jwt.encode(K.claims(sub="k2", iss="https://issuer.test", aud="rooms"), k2,
                           algorithm="RS256", headers={"kid": "rsa-2"})
        st, h, _ = self.c.get(headers={"Authorization": "Bearer " + tok})
        self.assertEqual((st, h.get("x-rr-auth-err")), (401, "unknown_kid"))
        self.c.keys.write_jwks(extra=[{"kty": "RSA", "kid": "rsa-2", "n": K._b64u(n.n),
                                       "e": K._b64u(n.e)}])
        self.c.agent.kill(signal.SIGHUP)
        harness.wait_for(lambda: self.c.get(headers={"Authorization": "Bearer " + tok})[0] == 200,
                         what="the new JWKS key to be accepted")

    def test_broken_key_file_keeps_old_keys(self):
        tok = self.c.token(sub="keep")
        with open(self.c.keys.jwks_file, "w") as f:
            f.write("{not json")
        self.c.agent.kill(signal.SIGHUP)
        harness.wait_for(lambda: harness.metric(self.c.metrics_port,
                                                'roomrelay_spoa_key_reloads_total{result="failed"}') >= 1,
                         what="the failed reload to be counted")
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + tok})
        self.assertEqual(st, 200, b)
        self.assertIn("keeping the previous keys", self.c.agent.output())


class AgentFailure(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(haproxy_env={"RR_SPOE_TIMEOUT_PROCESSING": "300ms"})

    def tearDown(self):
        self.c.stop()

    def test_agent_stopped_fails_closed_then_recovers_without_reload(self):
        tok = self.c.token(sub="dur")
        self.assertEqual(self.c.get(headers={"Authorization": "Bearer " + tok})[0], 200)
        port = self.c.agent.port
        self.assertEqual(self.c.agent.stop(), 0)
        st, h, _ = self.c.get(headers={"Authorization": "Bearer " + tok})
        self.assertEqual(st, 401)
        self.assertEqual(h.get("x-rr-auth-err"), "agent_unavailable")
        # The unanswered group is logged at warning level (<4>), with a
        # non-zero status.
        harness.wait_for(lambda: any(line.startswith("<4>") and " st=0 " not in line
                                     for line in self.c.spoe_log_lines()),
                         what="HAProxy to log the unanswered SPOE group")
        self.c.agent = harness.start_agent(
            self.c.keys.agent_args() + ["--issuer", "https://issuer.test", "--audience", "rooms"],
            port=port)
        harness.wait_for(lambda: self.c.get(headers={"Authorization": "Bearer " + tok})[0] == 200,
                         what="HAProxy to use the restarted agent")

    def test_agent_sigterm_exits_zero_and_says_goodbye(self):
        self.assertEqual(self.c.get(headers={"Authorization": "Bearer " + self.c.token()})[0],
                         200)
        self.assertEqual(self.c.agent.stop(signal.SIGTERM), 0)
        self.assertIn("stopped", self.c.agent.output())


class SpoeLogEveryGroup(unittest.TestCase):
    """The debugging recipe of docs/spoa.md: without `option dontlog-normal`,
    HAProxy logs every group it sends, answered ones at notice level."""

    def setUp(self):
        d = harness.tmpdir()
        with open(os.path.join(harness.HAPROXY_DIR, "spoe-roomrelay.conf")) as f:
            conf = f.read()
        self.assertIn("    option dontlog-normal\n", conf)
        with open(os.path.join(d, "spoe-roomrelay.conf"), "w") as f:
            f.write(conf.replace("    option dontlog-normal\n", ""))
        self.c = Cluster(haproxy_env={"RR_HAPROXY_DIR": d})

    def tearDown(self):
        self.c.stop()

    def test_answered_group_is_logged_at_notice(self):
        self.c.logged_request("loud")
        lines = self.c.spoe_log_lines()
        self.assertTrue(any(line.startswith("<5>") and " st=0 " in line for line in lines), lines)


class UnixSocket(unittest.TestCase):
    """--listen unix@PATH, and HAProxy's be_spoa server at that path."""

    def setUp(self):
        self.c = Cluster(unix=True)

    def tearDown(self):
        self.c.stop()

    def test_tokens_are_checked_over_the_unix_socket(self):
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + self.c.token(sub="sock")})
        self.assertEqual(st, 200, b)
        self.assertEqual(h.get("x-rr-sub"), "sock")
        st, h, b = self.c.get(headers={"Authorization": "Bearer " + self.c.token(aud="nope")})
        self.assertEqual((st, h.get("x-rr-auth-err")), (401, "bad_audience"), b)

    def test_socket_file_is_removed_on_stop(self):
        path = self.c.agent.listen[len("unix@"):]
        self.assertTrue(os.path.exists(path))
        self.assertEqual(self.c.agent.stop(signal.SIGTERM), 0)
        self.assertFalse(os.path.exists(path))


class OversizedPayload(unittest.TestCase):
    """HAProxy 2.6 trap: a NOTIFY larger than max-frame-size must cost one
    request a 401, not the agent connection with every request in flight."""

    def setUp(self):
        self.c = Cluster(haproxy_env={"RR_SPOE_MAX_FRAME_SIZE": "1024"})

    def tearDown(self):
        self.c.stop()

    def test_huge_cookie_costs_one_request_only(self):
        tok = self.c.token(sub="small")
        results = []

        def small():
            for _ in range(20):
                results.append(self.c.get(headers={"Authorization": "Bearer " + tok})[0])

        threads = [threading.Thread(target=small) for _ in range(4)]
        for t in threads:
            t.start()
        big = []
        for _ in range(10):
            big.append(self.c.get(headers={"Cookie": "rr_token=" + "x" * 4000})[0])
        for t in threads:
            t.join()
        self.assertEqual(big, [401] * 10)
        self.assertEqual(results, [200] * 80)
        self.assertEqual(harness.metric(self.c.metrics_port, "roomrelay_spoa_disconnects_received_total"), 0)


if __name__ == "__main__":
    tap.main()
