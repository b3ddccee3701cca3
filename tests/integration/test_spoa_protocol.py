"""roomrelay-spoa's SPOP side, driven by a raw-socket peer (spop_client.py)
that plays HAProxy: the handshake, pipelined NOTIFYs, and every kind of bad
input, each with the AGENT-DISCONNECT status it must get. After each bad
peer, a good peer must still be served: the agent never crashes or blocks."""
import os
import signal
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import keys as K  # noqa: E402
import spop_client as S  # noqa: E402
import tap  # noqa: E402

ST_NONE, ST_TIMEOUT, ST_TOO_BIG, ST_INVALID = 0, 2, 3, 4
ST_NO_VSN, ST_NO_FRAME_SIZE, ST_NO_CAP, ST_BAD_VSN, ST_BAD_FRAME_SIZE = 5, 6, 7, 8, 9
ST_FRAG_NOT_SUP = 10


class Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = harness.tmpdir()
        cls.keys = K.KeySet(cls.dir)
        cls.agent = harness.start_agent(cls.keys.agent_args() + ["--hello-timeout", "400",
                                                                 "--idle-timeout", "600"])

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def peer(self):
        p = S.Peer(self.agent.port)
        self.addCleanup(p.close)
        return p

    def assert_agent_serves(self):
        """A well-behaved peer still gets a correct answer."""
        p = self.peer()
        p.handshake()
        p.send(S.check_token(1, 1, bearer="Bearer " + K.hs256(self.keys, sub="ok")))
        f = p.read_frame()
        self.assertEqual(f[0], S.ACK)
        self.assertEqual(S.parse_actions(f[4])["sub"], "ok")
        self.assertTrue(self.agent.alive())

    def assert_disconnected(self, p, status):
        st, msg = p.expect_disconnect()
        self.assertEqual(st, status, msg)
        self.assertTrue(p.closed())
        self.assert_agent_serves()

    # --- handshake ---

    def test_hello_negotiates_version_frame_size_and_capabilities(self):
        p = self.peer()
        h = p.handshake(max_frame=16380, caps="pipelining,async,fragmentation")
        self.assertEqual(h["version"], "2.0")
        self.assertEqual(h["max-frame-size"], 16380)
        self.assertEqual(sorted(h["capabilities"].split(",")), ["async", "pipelining"])

    def test_hello_without_async_does_not_announce_async(self):
        p = self.peer()
        h = p.handshake(caps="pipelining")
        self.assertEqual(h["capabilities"], "pipelining")

    def test_hello_takes_the_lower_frame_size(self):
        p = self.peer()
        self.assertEqual(p.handshake(max_frame=1000)["max-frame-size"], 1000)

    def test_agent_hello_frame_has_fin_and_zero_ids(self):
        p = self.peer()
        p.send(S.hello())
        ftype, flags, sid, fid, _ = p.read_frame()
        self.assertEqual((ftype, flags & S.FIN, sid, fid), (S.AGENT_HELLO, S.FIN, 0, 0))

    def test_healthcheck_hello_is_answered_then_closed(self):
        p = self.peer()
        p.send(S.hello(caps="", healthcheck=True))
        f = p.read_frame()
        self.assertEqual(f[0], S.AGENT_HELLO)
        self.assertTrue(p.closed())

    def test_unsupported_version_is_refused(self):
        p = self.peer()
        p.send(S.hello(versions="1.0"))
        self.assert_disconnected(p, ST_BAD_VSN)

    def test_frame_size_below_256_is_refused(self):
        p = self.peer()
        p.send(S.hello(max_frame=100))
        self.assert_disconnected(p, ST_BAD_FRAME_SIZE)

    def test_hello_missing_each_mandatory_item(self):
        items = {"supported-versions": S.t_str("2.0"), "max-frame-size": S.t_uint32(16380),
                 "capabilities": S.t_str("")}
        for missing, status in [("supported-versions", ST_NO_VSN),
                                ("max-frame-size", ST_NO_FRAME_SIZE), ("capabilities", ST_NO_CAP)]:
            with self.subTest(missing=missing):
                p = self.peer()
                p.send(S.frame(S.HAPROXY_HELLO,
                               S.kv([(k, v) for k, v in items.items() if k != missing])))
                self.assert_disconnected(p, status)

    # --- NOTIFY / ACK ---

    def test_pipelined_notifies_are_all_acked_with_their_ids(self):
        p = self.peer()
        p.handshake()
        tok = K.hs256(self.keys, sub="pipe")
        batch = b"".join(S.check_token(sid, 1, bearer="Bearer " + tok) for sid in range(0, 40, 2))
        p.send(batch)
        seen = set()
        for _ in range(20):
            ftype, flags, sid, fid, payload = p.read_frame()
            self.assertEqual((ftype, flags & S.FIN, fid), (S.ACK, S.FIN, 1))
            self.assertEqual(S.parse_actions(payload)["auth"], True)
            seen.add(sid)
        self.assertEqual(seen, set(range(0, 40, 2)))

    def test_refusal_sets_reason_and_unsets_identity(self):
        p = self.peer()
        p.handshake()
        p.send(S.check_token(7, 3, bearer="Bearer not-a-token"))
        ftype, _, sid, fid, payload = p.read_frame()
        self.assertEqual((ftype, sid, fid), (S.ACK, 7, 3))
        acts = S.parse_actions(payload)
        self.assertEqual(acts["auth"], False)
        self.assertEqual(acts["auth_err"], "malformed")
        self.assertIn("sub", acts)
        self.assertIsNone(acts["sub"])

    def test_unknown_message_is_acked_without_actions(self):
        p = self.peer()
        p.handshake()
        p.send(S.notify(5, 1, [("something-else", [("x", S.t_str("y"))])]))
        ftype, _, sid, _, payload = p.read_frame()
        self.assertEqual((ftype, sid, payload), (S.ACK, 5, b""))

    def test_haproxy_disconnect_is_answered_with_status_0(self):
        p = self.peer()
        p.handshake()
        p.send(S.frame(S.HAPROXY_DISCONNECT,
                       S.kv([("status-code", S.t_uint32(0)), ("message", S.t_str("bye"))])))
        self.assert_disconnected(p, ST_NONE)

    # --- bad input ---

    def test_notify_before_hello_is_invalid(self):
        p = self.peer()
        p.send(S.check_token(1, 1, bearer="Bearer x"))
        self.assert_disconnected(p, ST_INVALID)

    def test_garbage_bytes_are_invalid(self):
        p = self.peer()
        p.send(struct.pack(">I", 12) + b"\xff" * 12)
        self.assert_disconnected(p, ST_INVALID)

    def test_frame_length_over_max_frame_size_is_too_big(self):
        p = self.peer()
        p.handshake(max_frame=1024)
        p.send(struct.pack(">I", 5000) + b"\x03")
        self.assert_disconnected(p, ST_TOO_BIG)

    def test_huge_length_prefix_is_too_big(self):
        p = self.peer()
        p.send(b"\xff\xff\xff\xff")
        self.assert_disconnected(p, ST_TOO_BIG)

    def test_truncated_notify_payload_is_invalid(self):
        p = self.peer()
        p.handshake()
        good = S.check_token(1, 1, bearer="Bearer abc")
        body = good[4:-3]
        p.send(struct.pack(">I", len(body)) + body)
        self.assert_disconnected(p, ST_INVALID)

    def test_unknown_frame_type_is_invalid(self):
        p = self.peer()
        p.handshake()
        p.send(S.frame(42, b"", sid=1, fid=1))
        self.assert_disconnected(p, ST_INVALID)

    def test_fragmented_notify_without_capability_is_refused(self):
        p = self.peer()
        p.handshake()
        p.send(S.frame(S.NOTIFY, b"\x0bcheck-token\x00", flags=0, sid=1, fid=1))
        self.assert_disconnected(p, ST_FRAG_NOT_SUP)

    def test_silent_peer_gets_hello_timeout(self):
        p = self.peer()
        self.assert_disconnected(p, ST_TIMEOUT)

    def test_slow_sender_of_a_partial_frame_gets_idle_timeout(self):
        p = self.peer()
        p.handshake()
        p.send(S.check_token(1, 1, bearer="Bearer abc")[:10])
        self.assert_disconnected(p, ST_TIMEOUT)

    def test_peer_that_vanishes_mid_frame_does_not_hurt_others(self):
        p = S.Peer(self.agent.port)
        p.handshake()
        p.send(S.check_token(1, 1, bearer="Bearer abc")[:15])
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        p.close()
        self.assert_agent_serves()


class GracefulStop(unittest.TestCase):
    def test_sigterm_sends_agent_disconnect_to_open_connections_and_exits_0(self):
        d = harness.tmpdir()
        keys = K.KeySet(d)
        agent = harness.start_agent(keys.agent_args())
        p = S.Peer(agent.port)
        p.handshake()
        p.send(S.check_token(1, 1, bearer="Bearer " + K.hs256(keys)))
        self.assertEqual(p.read_frame()[0], S.ACK)
        agent.kill(signal.SIGTERM)
        st, msg = p.expect_disconnect()
        self.assertEqual(st, ST_NONE)
        self.assertIn("stopping", msg)
        p.close()
        self.assertEqual(agent.wait_exit(10), 0)


class SecretFromEnvironment(unittest.TestCase):
    def test_hmac_secret_from_rr_hmac_secret_verifies_tokens(self):
        secret = "env-secret-" + os.urandom(8).hex()
        agent = harness.start_agent([], env={"RR_HMAC_SECRET": secret})
        self.addCleanup(agent.stop)
        p = S.Peer(agent.port)
        self.addCleanup(p.close)
        p.handshake()
        good = K.jwt.encode(K.claims(sub="env"), secret, algorithm="HS256")
        bad = K.jwt.encode(K.claims(sub="env"), "other", algorithm="HS256")
        p.send(S.check_token(1, 1, bearer="Bearer " + good) +
               S.check_token(2, 1, bearer="Bearer " + bad))
        answers = {}
        for _ in range(2):
            f = p.read_frame()
            answers[f[2]] = S.parse_actions(f[4])
        self.assertEqual(answers[1]["sub"], "env")
        self.assertEqual(answers[2]["auth_err"], "bad_signature")


class Configuration(unittest.TestCase):
    def run_agent(self, *args):
        import subprocess
        return subprocess.run([harness.binary("roomrelay-spoa"), *args],
                              capture_output=True, text=True, timeout=10)

    def test_no_keys_exits_2_with_one_line(self):
        r = self.run_agent("--listen", "127.0.0.1:1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no keys", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_bad_integer_exits_2_naming_the_flag(self):
        r = self.run_agent("--leeway", "soon")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--leeway", r.stderr)

    def test_env_var_is_read_and_flag_beats_it(self):
        import subprocess
        exe = harness.binary("roomrelay-spoa")
        env = dict(os.environ, RR_LEEWAY="abc")
        r = subprocess.run([exe, "--threads", "1"], env=env, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("RR_LEEWAY", r.stderr)
        # The same bad variable is never read when the flag is given.
        r = subprocess.run([exe, "--leeway", "5"], env=env, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertNotIn("RR_LEEWAY", r.stderr)
        self.assertIn("no keys", r.stderr)

    def test_missing_key_file_exits_2_naming_it(self):
        r = self.run_agent("--hmac-secret-file", "/nonexistent/secret")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/secret", r.stderr)

    def test_help_lists_every_flag_with_its_env_var(self):
        r = self.run_agent("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ["--listen", "--threads", "--hmac-secret-file", "--pem-key", "--jwks",
                     "--issuer", "--audience", "--leeway", "--claim-var", "--cache-size",
                     "--max-token-bytes", "--metrics-listen"]:
            self.assertIn(flag, r.stdout)
            self.assertIn("RR_" + flag[2:].upper().replace("-", "_"), r.stdout)


if __name__ == "__main__":
    tap.main()
