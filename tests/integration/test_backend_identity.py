"""Who a client is, as roomrelay-backend decides it: its own JWT (four
sources, python3-jwt tokens), X-RR-Sub from a trusted proxy, PROXY headers
(v2 and v1) and the client address they carry, --require-proxy-protocol,
--allow-anonymous, and the refusal to start with no way to tell.

The sub a connection got is read back from the server with `presence`.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402
from wsclient import OP_TEXT  # noqa: E402


class BackendCase(B.BackendTestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = K.KeySet(harness.tmpdir())
        super().setUpClass()


    def presence_subs(self, c):
        """The subs of c's home room, as the server sends them to c (raw client)."""
        c.send_frame(OP_TEXT, B.json.dumps({"type": "presence", "room": c.room}))
        p = c.expect_json(type="presence", room=c.room)
        return sorted(m["sub"] for m in p["members"])

    def assert_refused(self, c, status_line, auth_err=None):
        self.assertEqual(c.status_line, status_line)
        if auth_err is not None:
            self.assertEqual(c.headers["x-rr-auth-err"], auth_err)
        else:
            self.assertNotIn("x-rr-auth-err", c.headers)
        self.assertEqual(c.headers["connection"], "close")
        B.closed_by_server(c.sock)


class OwnToken(BackendCase):
    @classmethod
    def backend_args(cls):
        return ["--hmac-secret-file", cls.keys.hmac_file]

    def token(self, **kw):
        return K.hs256(self.keys, **kw)

    def assert_sub_by_websockets(self, sub, query="", **kw):
        async def body():
            ws, welcome = await B.connect(self.port, self.room(), query=query, **kw)
            self.assertEqual(welcome["room"], self.room())
            await B.send_json(ws, type="presence", room=self.room())
            p = await B.expect_json(ws, type="presence")
            self.assertEqual(p["members"], [{"sub": sub, "instance": "ws1"}])
            await ws.close()
            return ws
        return B.run(body())

    def test_token_in_authorization_header(self):
        self.assert_sub_by_websockets(
            "hdr-user", extra_headers={"Authorization": "Bearer " + self.token(sub="hdr-user")})

    def test_token_in_access_token_query(self):
        self.assert_sub_by_websockets("query-user",
                                      query="access_token=" + self.token(sub="query-user"))

    def test_token_in_rr_token_cookie(self):
        self.assert_sub_by_websockets(
            "cookie-user",
            extra_headers={"Cookie": "theme=dark; rr_token=" + self.token(sub="cookie-user")})

    def test_token_in_bearer_subprotocol_selects_roomrelay_v1(self):
        tok = self.token(sub="proto-user")
        ws = self.assert_sub_by_websockets(
            "proto-user", subprotocols=["roomrelay.v1", "bearer." + tok])
        self.assertEqual(ws.subprotocol, "roomrelay.v1")
        # On the wire: the 101 names roomrelay.v1 alone and never the bearer item.
        c = self.ws(headers=[("Sec-WebSocket-Protocol", f"roomrelay.v1, bearer.{tok}")])
        self.assertEqual(c.status, 101)
        self.assertEqual(c.headers["sec-websocket-protocol"], "roomrelay.v1")
        self.assertEqual(self.presence_subs(c), ["proto-user"])

    def test_bearer_subprotocol_alone_is_not_echoed(self):
        tok = self.token(sub="proto-only")
        c = self.ws(headers=[("Sec-WebSocket-Protocol", f"bearer.{tok}")])
        self.assertEqual(c.status, 101)
        self.assertNotIn("sec-websocket-protocol", c.headers)
        self.assertEqual(self.presence_subs(c), ["proto-only"])

    def test_first_token_source_present_wins(self):
        good = self.token(sub="second")
        c = self.ws(path=f"/ws?room={self.room()}&access_token={good}",
                    headers=[("Authorization", "Bearer " + K.tamper(good))])
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "bad_signature")

    def test_expired_token_is_401_expired(self):
        before = B.rejected(self.port, "unauthorized")
        c = self.ws(path=f"/ws?room={self.room()}&access_token=" + self.token(ttl=-3600))
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "expired")
        self.assertEqual(B.rejected(self.port, "unauthorized"), before + 1)

    def test_bad_signature_is_401_bad_signature(self):
        before = B.rejected(self.port, "unauthorized")
        c = self.ws(headers=[("Authorization", "Bearer " + K.tamper(self.token()))])
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "bad_signature")
        self.assertEqual(B.rejected(self.port, "unauthorized"), before + 1)

    def test_missing_token_is_401_missing(self):
        before = B.rejected(self.port, "unauthorized")
        c = self.ws()
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "missing")
        self.assertEqual(B.rejected(self.port, "unauthorized"), before + 1)

    def test_x_rr_sub_without_a_trusted_proxy_is_ignored(self):
        c = self.ws(headers=[("X-RR-Sub", "mallory")])
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "missing")
        c = self.ws(headers=[("X-RR-Sub", "mallory"),
                             ("Authorization", "Bearer " + self.token(sub="honest"))])
        self.assertEqual(self.presence_subs(c), ["honest"])

    def test_rooms_claim_refuses_another_home_room_with_403(self):
        before = B.rejected(self.port, "forbidden_room")
        tok = self.token(sub="limited", rooms=["T42", "lobby:*"])
        c = self.ws("T43", path="/ws?room=T43&access_token=" + tok)
        self.assert_refused(c, "HTTP/1.1 403 Forbidden")
        self.assertEqual(B.rejected(self.port, "forbidden_room"), before + 1)

    def test_rooms_claim_allows_its_rooms_and_refuses_other_joins(self):
        tok = self.token(sub="limited", rooms=["T42", "lobby:*"])
        c = self.ws("lobby:3", path="/ws?room=lobby:3&access_token=" + tok)
        self.assertEqual(c.status, 101)
        before = B.rejected(self.port, "forbidden_room")
        c.send_frame(OP_TEXT, b'{"type":"join","room":"T4"}')
        c.expect_json(type="error", code="forbidden_room")
        self.assertEqual(B.rejected(self.port, "forbidden_room"), before + 1)
        c.send_frame(OP_TEXT, b'{"type":"join","room":"T42"}')
        self.assertEqual(c.recv_json(), {"type": "joined", "room": "T42", "seq": 0,
                                         "complete": True})


class TrustedProxy(BackendCase):
    args = ["--trusted-proxy", "127.0.0.1/32"]

    def test_x_rr_sub_from_a_trusted_peer_is_the_identity(self):
        c = self.ws(headers=[("X-RR-Sub", "carol")])
        self.assertEqual(c.status, 101)
        self.assertEqual(self.presence_subs(c), ["carol"])

    def test_x_rr_rooms_from_a_trusted_peer_limits_the_rooms(self):
        c = self.ws("T9", headers=[("X-RR-Sub", "dave"), ("X-RR-Rooms", '["T1"]')])
        self.assert_refused(c, "HTTP/1.1 403 Forbidden")
        c = self.ws("T1", headers=[("X-RR-Sub", "dave"), ("X-RR-Rooms", '["T1"]')])
        self.assertEqual(c.status, 101)
        c.send_frame(OP_TEXT, b'{"type":"join","room":"T2"}')
        c.expect_json(type="error", code="forbidden_room")

    def test_no_x_rr_sub_and_no_keys_is_401(self):
        c = self.ws()
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "missing")

    def test_proxy_v2_header_then_x_rr_sub(self):
        c = self.ws(prefix=B.proxy_v2("198.51.100.7"), headers=[("X-RR-Sub", "erin")])
        self.assertEqual(c.status, 101)
        self.assertEqual(self.presence_subs(c), ["erin"])


class ProxyAddresses(BackendCase):
    """PROXY headers from a trusted peer set the address --max-conns-per-ip counts."""

    args = ["--trusted-proxy", "127.0.0.1/32", "--max-conns-per-ip", "1"]

    def test_different_proxy_v2_sources_each_get_their_own_slot(self):
        a = self.ws(prefix=B.proxy_v2("203.0.113.1"), headers=[("X-RR-Sub", "a")])
        b = self.ws(prefix=B.proxy_v2("203.0.113.2"), headers=[("X-RR-Sub", "b")])
        self.assertEqual((a.status, b.status), (101, 101))

    def test_same_proxy_v2_source_twice_gets_503(self):
        a = self.ws(prefix=B.proxy_v2("203.0.113.9", sport=1111), headers=[("X-RR-Sub", "a")])
        self.assertEqual(a.status, 101)
        before = B.rejected(self.port, "max_conns_per_ip")
        b = self.ws(prefix=B.proxy_v2("203.0.113.9", sport=2222), headers=[("X-RR-Sub", "b")])
        self.assert_refused(b, "HTTP/1.1 503 Service Unavailable")
        self.assertEqual(B.rejected(self.port, "max_conns_per_ip"), before + 1)

    def test_proxy_v1_source_is_counted_too(self):
        a = self.ws(prefix=B.proxy_v1("203.0.113.20"), headers=[("X-RR-Sub", "a")])
        self.assertEqual(a.status, 101)
        b = self.ws(prefix=B.proxy_v1("203.0.113.20", sport=40001), headers=[("X-RR-Sub", "b")])
        self.assert_refused(b, "HTTP/1.1 503 Service Unavailable")
        c = self.ws(prefix=B.proxy_v2("203.0.113.21"), headers=[("X-RR-Sub", "c")])
        self.assertEqual(c.status, 101)


class ForwardedFor(BackendCase):
    """X-Forwarded-For from a trusted peer that sent no PROXY header names the
    client --max-conns-per-ip counts: its last address, the proxy's own."""

    args = ["--trusted-proxy", "127.0.0.1/32", "--max-conns-per-ip", "1"]

    def test_different_forwarded_clients_each_get_their_own_slot(self):
        a = self.ws(headers=[("X-RR-Sub", "a"), ("X-Forwarded-For", "198.51.100.7, 203.0.113.31")])
        b = self.ws(headers=[("X-RR-Sub", "b"), ("X-Forwarded-For", "203.0.113.32")])
        self.assertEqual((a.status, b.status), (101, 101))

    def test_the_last_address_is_the_client(self):
        a = self.ws(headers=[("X-RR-Sub", "a"), ("X-Forwarded-For", "10.9.9.9, 203.0.113.40")])
        self.assertEqual(a.status, 101)
        # Same last address, another first one: the same client, over the limit.
        b = self.ws(headers=[("X-RR-Sub", "b"), ("X-Forwarded-For", "10.1.1.1, 203.0.113.40")])
        self.assert_refused(b, "HTTP/1.1 503 Service Unavailable")

    def test_without_the_header_the_proxy_itself_is_counted(self):
        a = self.ws(headers=[("X-RR-Sub", "a"), ("X-Forwarded-For", "2001:db8::50")])
        self.assertEqual(a.status, 101)
        b = self.ws(headers=[("X-RR-Sub", "b")])
        self.assertEqual(b.status, 101)
        c = self.ws(headers=[("X-RR-Sub", "c")])
        self.assert_refused(c, "HTTP/1.1 503 Service Unavailable")


class ForwardedForFromAnUntrustedPeer(BackendCase):
    """From a peer that is not a --trusted-proxy, X-Forwarded-For is ignored:
    both connections are the test client's own address."""

    args = ["--allow-anonymous", "--trusted-proxy", "10.0.0.0/8", "--max-conns-per-ip", "1"]

    def test_header_does_not_give_a_new_slot(self):
        a = self.ws(headers=[("X-Forwarded-For", "203.0.113.51")])
        self.assertEqual(a.status, 101)
        b = self.ws(headers=[("X-Forwarded-For", "203.0.113.52")])
        self.assert_refused(b, "HTTP/1.1 503 Service Unavailable")


class UntrustedPeer(BackendCase):
    """Only 10.0.0.0/8 is trusted: the test client on 127.0.0.1 is not."""

    args = ["--trusted-proxy", "10.0.0.0/8"]

    def test_x_rr_sub_from_an_untrusted_peer_is_ignored(self):
        c = self.ws(headers=[("X-RR-Sub", "mallory")])
        self.assert_refused(c, "HTTP/1.1 401 Unauthorized", "missing")

    def test_proxy_header_from_an_untrusted_peer_closes_the_connection(self):
        for header in (B.proxy_v2("198.51.100.1"), B.proxy_v1("198.51.100.1")):
            before = B.rejected(self.port, "proxy_protocol")
            s = B.tcp(self.port)
            self.addCleanup(s.close)
            req, _ = B.ws_request(self.port, "/ws?room=x", [("X-RR-Sub", "mallory")])
            s.sendall(header + req)
            self.assertEqual(B.closed_by_server(s), b"")
            self.assertEqual(B.rejected(self.port, "proxy_protocol"), before + 1)


class RequireProxyProtocol(BackendCase):
    args = ["--trusted-proxy", "127.0.0.1/32", "--require-proxy-protocol"]
    pp = B.proxy_v2("192.0.2.1")

    def test_connection_without_a_proxy_header_is_closed(self):
        before = B.rejected(self.port, "proxy_protocol", prefix=self.pp)
        s = B.tcp(self.port)
        self.addCleanup(s.close)
        req, _ = B.ws_request(self.port, "/ws?room=x", [("X-RR-Sub", "f")])
        s.sendall(req)
        self.assertEqual(B.closed_by_server(s), b"")
        self.assertEqual(B.rejected(self.port, "proxy_protocol", prefix=self.pp), before + 1)

    def test_connection_with_a_proxy_header_is_served(self):
        c = self.ws(prefix=self.pp, headers=[("X-RR-Sub", "frank")])
        self.assertEqual(c.status, 101)
        self.assertEqual(self.presence_subs(c), ["frank"])


class Anonymous(BackendCase):
    args = ["--allow-anonymous"]

    def test_anonymous_sub_is_anon_and_the_session(self):
        c = self.ws()
        self.assertEqual(c.status, 101)
        self.assertRegex(c.welcome["session"], r"^[0-9a-f]{16}$")
        self.assertEqual(self.presence_subs(c), ["anon-" + c.welcome["session"]])


class RefusesToStart(unittest.TestCase):
    def test_no_keys_no_trusted_proxy_no_anonymous_exits_2_with_one_line(self):
        p = subprocess.run([harness.binary("roomrelay-backend"), "--listen",
                            f"127.0.0.1:{harness.free_port()}", "--instance-id", "ws1"],
                           capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, **harness.SANITIZER_ENV))
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("--allow-anonymous", lines[0])
        self.assertIn("--trusted-proxy", lines[0])


if __name__ == "__main__":
    tap.main()
