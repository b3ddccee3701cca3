"""A raw-socket RFC 6455 client for the conformance suite, stdlib only.

It writes whatever bytes a case asks for (bad lengths, RSV bits, unmasked
frames, a frame one byte per TCP write) and parses the server's frames
strictly: a server frame must be unmasked, without RSV bits, with a known
opcode and its length in the shortest encoding, or the case fails.

roomrelay is not an echo server: "echo" publishes to the connection's own
home room and reads back the `message` event (then the `ack`).

Not here: the cases themselves (test_*.py) and starting processes
(tests/integration/harness.py, shared, not copied).
"""
import base64
import hashlib
import itertools
import json
import os
import random
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
KNOWN_OPCODES = (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
MAX_MESSAGE = 65536
TIMEOUT = 5.0
# Masks are random but reproducible: a failing run fails the same way again.
_rng = random.Random(6455)
_room_ids = itertools.count(1)
_publish_ids = itertools.count(1)


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(bytes(_rng.getrandbits(8) for _ in range(16))).decode()


def new_room():
    return f"conf-{os.getpid()}-{next(_room_ids)}"


def mask_bytes(data, key):
    return bytes(b ^ key[i & 3] for i, b in enumerate(data))


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, mask=None, length_form=None,
          length=None):
    """One client frame. length_form forces the length encoding: 7, 16 or 64
    (the default is the shortest); length overrides the declared length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    if length_form is None:
        length_form = 7 if n <= 125 else 16 if n <= 0xFFFF else 64
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if masked else 0
    if length_form == 7:
        head = struct.pack("!BB", b0, mbit | n)
    elif length_form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    key = mask if mask is not None else bytes(_rng.getrandbits(8) for _ in range(4))
    return head + key + mask_bytes(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


def publish_bytes(room, data, pid):
    """The JSON text of a publish; data is a str (JSON-encoded, UTF-8 kept
    raw) or bytes put verbatim between the quotes of the data string (for
    invalid UTF-8)."""
    if isinstance(data, bytes):
        head = json.dumps({"type": "publish", "room": room, "id": pid},
                          separators=(",", ":"))[:-1]
        return head.encode() + b',"data":"' + data + b'"}'
    return json.dumps({"type": "publish", "room": room, "data": data, "id": pid},
                      ensure_ascii=False, separators=(",", ":")).encode()


def split_at(data, points):
    """data cut at the given offsets: split_at(b"abcd", [1, 3]) -> [a, bc, d]."""
    cuts = [0] + list(points) + [len(data)]
    return [data[a:b] for a, b in zip(cuts, cuts[1:])]


def fragments(payload, pieces, opcode=OP_TEXT):
    """Frames carrying payload in the given pieces (a list of bytes)."""
    out = b""
    for i, p in enumerate(pieces):
        out += frame(opcode if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1)
    assert b"".join(pieces) == payload
    return out


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        return (f"Frame(fin={self.fin}, rsv={self.rsv:#x}, op={self.opcode:#x}, "
                f"{self.payload[:80]!r})")


class ProtocolViolation(AssertionError):
    """The server sent something RFC 6455 does not allow a server to send."""


class WsClient:
    """One connection. connect() does the handshake and reads `welcome`."""

    def __init__(self, port, room=None, timeout=TIMEOUT):
        self.port = port
        self.room = room or new_room()
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.status = None
        self.headers = {}
        self.welcome = None
        self.send_failed = False

    # ---- handshake ----

    def connect(self, protocols=None, extra=b"", read_welcome=True):
        """Handshake; `extra` bytes go in the same TCP write as the request."""
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = new_key()
        req = (f"GET /ws?room={self.room} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        if protocols:
            req += f"Sec-WebSocket-Protocol: {protocols}\r\n"
        self.sock.sendall(req.encode() + b"\r\n" + extra)
        self.status, self.headers = self.read_http_head()
        if self.status != 101:
            raise AssertionError(f"handshake answered {self.status}: {self.headers}")
        if self.headers.get("sec-websocket-accept") != accept_for(key):
            raise ProtocolViolation(f"bad Sec-WebSocket-Accept for {key}: {self.headers}")
        if read_welcome:
            self.welcome = self.recv_json()
            if self.welcome.get("type") != "welcome" or self.welcome.get("room") != self.room:
                raise AssertionError(f"expected welcome to {self.room}, got {self.welcome}")
        return self

    def read_http_head(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    # ---- sending ----

    def send(self, data):
        """Writes bytes; a server that already closed (after an error it
        found in earlier bytes) is noted, not an error: the case then reads
        the close frame the server sent."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True

    def send_slow(self, data, chunk=1):
        """One TCP write per `chunk` bytes (TCP_NODELAY is set)."""
        for i in range(0, len(data), chunk):
            self.send(data[i:i + chunk])

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, payload, **kw))

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    # ---- receiving ----

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise AssertionError(f"connection closed with {len(self.buf)} of {n} bytes read")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self.read_exact(2)
        fin, rsv, opcode = bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F
        if b1 & 0x80:
            raise ProtocolViolation("server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.read_exact(2))
            if n <= 125:
                raise ProtocolViolation(f"server used a 16-bit length for {n}")
        elif n == 127:
            (n,) = struct.unpack("!Q", self.read_exact(8))
            if n <= 0xFFFF or n >> 63:
                raise ProtocolViolation(f"server used a 64-bit length for {n}")
        if rsv:
            raise ProtocolViolation(f"server frame with RSV bits {rsv:#x}")
        if opcode not in KNOWN_OPCODES:
            raise ProtocolViolation(f"server frame with opcode {opcode:#x}")
        if opcode >= OP_CLOSE and (not fin or n > 125):
            raise ProtocolViolation("server control frame fragmented or over 125 bytes")
        return Frame(fin, rsv, opcode, self.read_exact(n))

    def recv_text(self):
        f = self.recv_frame()
        if f.opcode != OP_TEXT or not f.fin:
            raise AssertionError(f"expected a whole text frame, got {f}")
        return f.payload

    def recv_json(self):
        return json.loads(self.recv_text().decode("utf-8"))

    def expect_frame(self, opcode, payload=None):
        f = self.recv_frame()
        if f.opcode != opcode or (payload is not None and f.payload != payload):
            raise AssertionError(f"expected opcode {opcode:#x} with {payload!r}, got {f}")
        return f

    def expect_json(self, **fields):
        """The next frame is a JSON text whose given fields have these values."""
        msg = self.recv_json()
        for k, v in fields.items():
            if msg.get(k) != v:
                raise AssertionError(f"expected {fields}, got {msg}")
        return msg

    def expect_close(self, code):
        """The next frame is a close with this code (None: empty payload),
        and then the server closes the TCP connection. Returns the reason."""
        f = self.recv_frame()
        if f.opcode != OP_CLOSE:
            raise AssertionError(f"expected a close with {code}, got {f}")
        if code is None:
            if f.payload != b"":
                raise AssertionError(f"expected an empty close, got {f.payload!r}")
            reason = b""
        else:
            if len(f.payload) < 2:
                raise AssertionError(f"expected a close with {code}, got {f.payload!r}")
            (got,) = struct.unpack("!H", f.payload[:2])
            if got != code:
                raise AssertionError(f"expected close {code}, got {got} {f.payload[2:]!r}")
            reason = f.payload[2:]
            reason.decode("utf-8")  # a server's reason must be UTF-8 too
        self.expect_eof()
        return reason

    def expect_eof(self):
        """The server closes the TCP connection (a reset counts: it had
        unread bytes of ours) and sends nothing more."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.buf:
                raise AssertionError(f"bytes after the close frame: {self.buf[:80]!r}")
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return
            except socket.timeout:
                break
            if not chunk:
                return
            self.buf += chunk
        raise AssertionError("the server did not close the TCP connection")

    # ---- roomrelay helpers ----

    def publish_payload(self, data, pid=None):
        return publish_bytes(self.room, data, pid or str(next(_publish_ids)))

    def read_message(self, pid):
        """Reads the `message` event of our publish, then its `ack`; returns
        the event's data."""
        msg = self.expect_json(type="message", room=self.room)
        self.expect_json(type="ack", id=pid)
        return msg["data"]

    def echo(self, text):
        """Publishes text to the home room and returns the data that comes back."""
        pid = str(next(_publish_ids))
        self.send_frame(OP_TEXT, publish_bytes(self.room, text, pid))
        return self.read_message(pid)

    def ping_roundtrip(self, payload):
        self.send_frame(OP_PING, payload)
        return self.expect_frame(OP_PONG, payload).payload

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def publish_of_length(room, total, pid):
    """(data, payload) with the publish JSON text exactly `total` bytes long."""
    overhead = len(publish_bytes(room, "", pid))
    if total < overhead:
        raise ValueError(f"a publish is at least {overhead} bytes")
    data = "".join(chr(ord("a") + i % 26) for i in range(total - overhead))
    payload = publish_bytes(room, data, pid)
    assert len(payload) == total
    return data, payload


def next_pid():
    return str(next(_publish_ids))


class ConformanceCase(unittest.TestCase):
    """One backend for the whole file (its class), a fresh connection per case.
    A case fails if the backend died during it; the class fails at its end if
    a sanitizer reported anything."""

    backend = None
    backend_args = ["--allow-anonymous", "--max-message", str(MAX_MESSAGE),
                    "--publish-rate", "0", "--ping-interval", "300"]

    @classmethod
    def setUpClass(cls):
        cls.backend = harness.start_backend(cls.backend_args)

    @classmethod
    def tearDownClass(cls):
        # SIGINT closes what is left and exits at once (SIGTERM would drain);
        # stop() raises on any sanitizer report, a non-zero status fails too.
        rc = cls.backend.stop(signal.SIGINT)
        if rc != 0:
            raise AssertionError(f"backend exited with {rc}:\n" + cls.backend.output()[-4000:])

    def tearDown(self):
        if not self.backend.alive():
            raise AssertionError("backend died:\n" + self.backend.output()[-4000:])

    def ws(self, room=None, **kw):
        c = WsClient(self.backend.port, room=room)
        self.addCleanup(c.close)
        return c.connect(**kw)

    def assert_usable(self, c, text="still here"):
        """The connection still works: a publish comes back intact."""
        self.assertEqual(c.echo(text), text)


def add_case(cls, name, fn, *args):
    """Adds test_<name> running fn(self, *args): one TAP line per case."""
    attr = "test_" + name
    if hasattr(cls, attr):
        raise ValueError(f"duplicate case {attr}")

    def case(self):
        fn(self, *args)

    case.__name__ = attr
    case.__qualname__ = f"{cls.__name__}.{attr}"
    setattr(cls, attr, case)
