"""Conformance hs: the opening handshake (RFC 6455 §4.2). A valid request
gets 101 with the right Sec-WebSocket-Accept, then `welcome`; each rule
broken gets its status: 400 (HTTP version, Host, Upgrade, Connection, key,
room), 405 with Allow: GET (501 for a method the server does not know),
426 with Sec-WebSocket-Version: 13, 404 for another path, and the server
closes the connection after an error.
Subprotocol: roomrelay.v1 is selected when offered, nothing else is echoed."""
import base64
import socket

from wsclient import ConformanceCase, WsClient, accept_for, add_case, new_key, new_room
import tap

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


class Handshake(ConformanceCase):
    def request(self, method="GET", path=None, version="HTTP/1.1", headers=None, drop=(),
                key=None):
        """Sends one request built from the valid defaults with `headers`
        changed and `drop` removed; returns (status, headers, client, key)."""
        key = key or new_key()
        path = path or f"/ws?room={new_room()}"
        h = {"Host": f"127.0.0.1:{self.backend.port}", "Upgrade": "websocket",
             "Connection": "Upgrade", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        h.update(headers or {})
        for d in drop:
            h.pop(d)
        text = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        c = WsClient(self.backend.port)
        self.addCleanup(c.close)
        c.sock = socket.create_connection(("127.0.0.1", self.backend.port), timeout=5)
        c.sock.sendall(text.encode() + b"\r\n")
        status, rh = c.read_http_head()
        return status, rh, c, key

    def refused(self, status, **kw):
        """The request is answered with `status` and the connection closed."""
        got, rh, c, _ = self.request(**kw)
        self.assertEqual(got, status, rh)
        self.assertNotIn("sec-websocket-accept", rh)
        n = int(rh.get("content-length", "0"))
        c.read_exact(n)
        c.expect_eof()
        return rh

    def accepted(self, **kw):
        got, rh, c, key = self.request(**kw)
        self.assertEqual(got, 101, rh)
        self.assertEqual(rh.get("upgrade", "").lower(), "websocket")
        self.assertEqual(rh.get("connection", "").lower(), "upgrade")
        self.assertEqual(rh.get("sec-websocket-accept"), accept_for(key))
        self.assertEqual(c.recv_json()["type"], "welcome")
        return rh

    def test_hs_01_rfc_example_key_gives_rfc_accept(self):
        self.assertEqual(accept_for(RFC_KEY), RFC_ACCEPT)
        rh = self.accepted(key=RFC_KEY)
        self.assertEqual(rh["sec-websocket-accept"], RFC_ACCEPT)

    def test_hs_02_welcome_names_the_home_room(self):
        room = new_room()
        c = self.ws(room=room)
        self.assertEqual(c.welcome["room"], room)
        self.assertEqual(c.welcome["instance"], "ws1")
        self.assertEqual(c.welcome["seq"], 0)

    def test_hs_07_version_8_is_426_with_version_13(self):
        rh = self.refused(426, headers={"Sec-WebSocket-Version": "8"})
        self.assertEqual(rh.get("sec-websocket-version"), "13")

    def test_hs_09_post_is_405_with_allow_get(self):
        rh = self.refused(405, method="POST")
        self.assertEqual(rh.get("allow"), "GET")

    def test_hs_09_head_is_405_without_a_body(self):
        got, rh, c, _ = self.request(method="HEAD")
        self.assertEqual((got, rh.get("allow")), (405, "GET"))
        self.assertGreater(int(rh["content-length"]), 0)
        c.expect_eof()  # no body bytes after the head (RFC 9110 §9.3.2)

    def test_hs_13_bearer_item_never_echoed(self):
        rh = self.accepted(headers={"Sec-WebSocket-Protocol": "roomrelay.v1, bearer.abc.def.ghi"})
        self.assertEqual(rh.get("sec-websocket-protocol"), "roomrelay.v1")
        self.assertNotIn("bearer", " ".join(f"{k}: {v}" for k, v in rh.items()))

    def test_hs_05_two_key_headers_is_400(self):
        """Repeated headers are joined with a comma: two keys are no key."""
        self.refused(400, headers={"Sec-WebSocket-Key": new_key() + "\r\nSec-WebSocket-Key: " +
                                   new_key()})


def random_key_case(self, raw):
    self.accepted(key=base64.b64encode(raw).decode())


for i, raw in enumerate((bytes(16), b"\xff" * 16, bytes(range(16)), b"roomrelay-key-16",
                         bytes(range(240, 256)), b"\x00\xff" * 8)):
    add_case(Handshake, f"hs_01_accept_correct_for_key_{i}", random_key_case, raw)


def refused_case(self, status, kw):
    self.refused(status, **kw)


def accepted_case(self, kw):
    self.accepted(**kw)


REFUSED = {
    "hs_03_missing_upgrade_is_400": (400, {"drop": ["Upgrade"]}),
    "hs_03_upgrade_h2c_is_400": (400, {"headers": {"Upgrade": "h2c"}}),
    "hs_04_missing_connection_is_400": (400, {"drop": ["Connection"]}),
    "hs_04_connection_keep_alive_only_is_400": (400, {"headers": {"Connection": "keep-alive"}}),
    "hs_05_missing_key_is_400": (400, {"drop": ["Sec-WebSocket-Key"]}),
    "hs_05_key_23_chars_is_400": (400, {"headers": {"Sec-WebSocket-Key": "A" * 21 + "=="}}),
    "hs_05_key_25_chars_is_400": (400, {"headers": {"Sec-WebSocket-Key": "A" * 23 + "=="}}),
    "hs_05_key_of_15_bytes_is_400": (400, {"headers": {"Sec-WebSocket-Key": "A" * 20}}),
    "hs_05_key_of_20_bytes_is_400": (400, {"headers": {"Sec-WebSocket-Key": "A" * 27 + "="}}),
    "hs_05_key_not_base64_is_400": (400, {"headers": {"Sec-WebSocket-Key": "A" * 21 + "!=="}}),
    "hs_05_key_without_padding_is_400": (400, {"headers": {"Sec-WebSocket-Key": "A" * 24}}),
    "hs_05_key_non_canonical_last_char_is_400": (400, {"headers": {"Sec-WebSocket-Key":
                                                                   "A" * 21 + "B=="}}),
    "hs_06_missing_version_is_426": (426, {"drop": ["Sec-WebSocket-Version"]}),
    "hs_06_version_12_is_426": (426, {"headers": {"Sec-WebSocket-Version": "12"}}),
    "hs_06_version_14_is_426": (426, {"headers": {"Sec-WebSocket-Version": "14"}}),
    "hs_08_http_1_0_is_400": (400, {"version": "HTTP/1.0"}),
    "hs_08_missing_host_is_400": (400, {"drop": ["Host"]}),
    # http_req.c implements GET, HEAD and POST only: any other method is 501.
    "hs_09_put_is_501": (501, {"method": "PUT"}),
    "hs_10_missing_room_is_400": (400, {"path": "/ws"}),
    "hs_10_empty_room_is_400": (400, {"path": "/ws?room="}),
    "hs_10_room_of_65_bytes_is_400": (400, {"path": "/ws?room=" + "r" * 65}),
    "hs_10_room_with_space_is_400": (400, {"path": "/ws?room=a%20b"}),
    "hs_10_room_with_slash_is_400": (400, {"path": "/ws?room=a%2Fb"}),
    "hs_10_room_not_ascii_is_400": (400, {"path": "/ws?room=%C3%A9t%C3%A9"}),
    "hs_11_path_wss_is_404": (404, {"path": "/wss?room=r"}),
    "hs_11_path_ws_slash_is_404": (404, {"path": "/ws/?room=r"}),
    "hs_11_path_websocket_is_404": (404, {"path": "/websocket?room=r"}),
}

for name, (status, kw) in REFUSED.items():
    add_case(Handshake, name, refused_case, status, kw)

ACCEPTED = {
    "hs_12_connection_list_with_upgrade_is_101": {"headers": {"Connection": "keep-alive, Upgrade"}},
    "hs_12_upgrade_value_any_case_is_101": {"headers": {"Upgrade": "WebSocket"}},
    "hs_12_connection_value_any_case_is_101": {"headers": {"Connection": "UPGRADE"}},
    "hs_12_room_of_64_bytes_is_101": {"path": "/ws?room=" + "r" * 64},
    "hs_12_room_of_every_allowed_class_is_101": {"path": "/ws?room=Az09_.:-"},
    "hs_12_room_of_one_byte_is_101": {"path": "/ws?room=z"},
}

for name, kw in ACCEPTED.items():
    add_case(Handshake, name, accepted_case, kw)


def subprotocol_case(self, offer, selected):
    rh = self.accepted(headers={"Sec-WebSocket-Protocol": offer})
    self.assertEqual(rh.get("sec-websocket-protocol"), selected)


for name, offer, selected in (
        ("only_roomrelay", "roomrelay.v1", "roomrelay.v1"),
        ("roomrelay_after_unknown", "chat, roomrelay.v1", "roomrelay.v1"),
        ("roomrelay_before_bearer", "roomrelay.v1, bearer.eyJhbGciOi", "roomrelay.v1"),
        ("bearer_before_roomrelay", "bearer.eyJhbGciOi, roomrelay.v1", "roomrelay.v1"),
        ("only_unknown", "chat, superchat", None),
        ("only_bearer", "bearer.eyJhbGciOi", None),
        ("other_case_is_another_protocol", "ROOMRELAY.V1", None),
        ("other_version", "roomrelay.v2", None)):
    add_case(Handshake, f"hs_14_subprotocol_{name}", subprotocol_case, offer, selected)


def no_subprotocol_offered_case(self):
    rh = self.accepted()
    self.assertNotIn("sec-websocket-protocol", rh)


add_case(Handshake, "hs_14_subprotocol_none_offered_none_answered", no_subprotocol_offered_case)


if __name__ == "__main__":
    tap.main()
