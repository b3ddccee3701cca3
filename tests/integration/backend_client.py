"""Clients for the roomrelay-backend integration tests (test_backend_*.py).

Three ways to talk to a backend, from the most real to the most raw:
- python3-websockets (10.x, asyncio): `connect()` and the JSON helpers;
- a raw handshake on a socket (`raw_ws()`), for what the library hides: the
  exact status line of a refused upgrade, a PROXY header before the request,
  a client that never reads or never answers pings. The frames are read and
  written by the conformance suite's WsClient (tests/conformance/wsclient.py),
  shared, not copied;
- plain HTTP on a socket (`http_raw()`), for keep-alive and methods that
  urllib does not make easy.

BackendTestCase is the base of their test classes: one backend per class,
started through harness.py. The cases themselves live in the test files.
"""
import asyncio
import json
import os
import socket
import struct
import sys
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import harness  # noqa: E402
from wsclient import WsClient, accept_for, new_key  # noqa: E402

TIMEOUT = 5.0


# ---- python3-websockets ----

def url(port, room, query=""):
    return f"ws://127.0.0.1:{port}/ws?room={room}" + (f"&{query}" if query else "")


async def connect(port, room, query="", **kw):
    """Opens a WebSocket with python3-websockets and reads its welcome.
    Returns (ws, welcome). The library's own pings are off: a test that
    counts pings or waits for closes must see only the server's."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", TIMEOUT)
    kw.setdefault("close_timeout", TIMEOUT)
    ws = await websockets.connect(url(port, room, query), **kw)
    welcome = await recv_json(ws)
    if welcome.get("type") != "welcome":
        raise AssertionError(f"expected welcome, got {welcome}")
    return ws, welcome


async def send_json(ws, **msg):
    await ws.send(json.dumps(msg))


async def recv_json(ws, timeout=TIMEOUT):
    text = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(text, str):
        raise AssertionError(f"expected a text frame, got {text!r}")
    return json.loads(text)


async def expect_json(ws, **fields):
    """The next message has these field values; returns it."""
    msg = await recv_json(ws)
    for k, v in fields.items():
        if msg.get(k) != v:
            raise AssertionError(f"expected {fields}, got {msg}")
    return msg


async def publish_acked(ws, room, data, id, seq):
    """Publishes on ws, a member of room, and reads what the publisher gets
    back: its own message, then the ack of `id`, both with `seq`."""
    await send_json(ws, type="publish", room=room, data=data, id=id)
    await expect_json(ws, type="message", seq=seq)
    await expect_json(ws, type="ack", id=id, seq=seq)


async def wait_closed(ws, timeout=TIMEOUT):
    """Reads until the server closes; returns the close code it sent
    (None when no close frame came)."""
    async def drain():
        try:
            while True:
                await ws.recv()
        except websockets.exceptions.ConnectionClosed as e:
            return e.rcvd.code if e.rcvd else None
    return await asyncio.wait_for(drain(), timeout)


async def assert_quiet(ws):
    """Nothing is waiting on ws: a ping sent now is answered by the very
    next message (the server answers in order)."""
    await send_json(ws, type="ping")
    msg = await recv_json(ws)
    if msg.get("type") != "pong":
        raise AssertionError(f"expected nothing before the pong, got {msg}")


def run(coro):
    return asyncio.run(coro)


# ---- raw WebSocket handshakes ----

def ws_request(port, path, headers=()):
    """A valid upgrade request for path, with extra (name, value) headers.
    Returns (bytes, key)."""
    key = new_key()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def tcp(port, source=None, rcvbuf=None):
    """A connected socket; `source` binds another loopback address
    (127.0.0.2, ...) so that it counts as another client address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        sock.bind((source, 0))
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


def raw_ws(port, room, headers=(), prefix=b"", rcvbuf=None, path=None, read_welcome=True,
           source=None):
    """A handshake on a raw socket: `prefix` (a PROXY header) goes first in
    the same write. Returns the WsClient; c.status and c.headers hold the
    answer, c.status_line its first line; c.welcome the welcome on a 101."""
    c = WsClient(port, room=room)
    sock = tcp(port, source, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sock = sock
    req, key = ws_request(port, path or f"/ws?room={room}", headers)
    sock.sendall(prefix + req)
    while b"\r\n\r\n" not in c.buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed during the handshake: {c.buf!r}")
        c.buf += chunk
    c.status_line = c.buf.split(b"\r\n", 1)[0].decode("latin-1")
    c.status, c.headers = c.read_http_head()
    if c.status == 101:
        if c.headers.get("sec-websocket-accept") != accept_for(key):
            raise AssertionError(f"bad Sec-WebSocket-Accept: {c.headers}")
        if read_welcome:
            c.welcome = c.recv_json()
    else:
        n = int(c.headers.get("content-length", "0"))
        c.body = c.read_exact(n)
    return c


def closed_by_server(sock, timeout=TIMEOUT):
    """Reads and discards until the server closes the TCP connection (EOF or
    reset). Returns the bytes read. Fails if it stays open."""
    sock.settimeout(timeout)
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return got
        except socket.timeout:
            raise AssertionError("the server did not close the connection")
        if not chunk:
            return got
        got += chunk


# ---- PROXY protocol ----

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst="127.0.0.1", sport=40000, dport=8081):
    """A PROXY v2 PROXY/TCP4 header, as HAProxy's send-proxy-v2 makes it."""
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return PP2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr


def proxy_v1(src, dst="127.0.0.1", sport=40000, dport=8081):
    return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()


# ---- plain HTTP ----

def read_response(sock, buf=b""):
    """One HTTP response from sock. Returns (status_line, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a whole response: {buf!r}")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed inside a response body")
        buf += chunk
    return lines[0], headers, buf[:n].decode(), buf[n:]


def http_raw(port, method, path, headers=(), body=b"", source=None, prefix=b""):
    """One request on a new connection (after `prefix`, a PROXY header).
    Returns (status, headers, body)."""
    with tcp(port, source) as s:
        hs = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
              f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers]
        s.sendall(prefix + ("\r\n".join(hs) + "\r\n\r\n").encode() + body)
        line, h, b, _ = read_response(s)
        return int(line.split(" ")[1]), h, b


# ---- metrics ----

def metrics(port, **kw):
    """The backend's /metrics as {sample name with labels: value}; kw go
    to http_raw (source, prefix)."""
    status, _, body = http_raw(port, "GET", "/metrics", **kw)
    if status != 200:
        raise AssertionError(f"/metrics answered {status}")
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def rejected(port, reason, **kw):
    key = f'roomrelay_rejected_total{{reason="{reason}"}}'
    m = metrics(port, **kw)
    if key not in m:
        raise AssertionError(f"no sample {key} in /metrics")
    return int(m[key])


class BackendTestCase(unittest.TestCase):
    """One backend per test class, started with backend_args(); a test fails
    if the backend died during it, and the class fails if the backend does not
    stop cleanly (exit 0, no sanitizer report)."""

    args = []
    instance = "ws1"

    @classmethod
    def backend_args(cls):
        return list(cls.args)

    @classmethod
    def setUpClass(cls):
        cls.backend = harness.start_backend(cls.backend_args(), instance=cls.instance)
        cls.port = cls.backend.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.backend.stop()
        if rc != 0:
            raise AssertionError(f"backend exited with {rc}:\n" + cls.backend.output()[-4000:])

    def tearDown(self):
        if not self.backend.alive():
            raise AssertionError("backend died:\n" + self.backend.output()[-4000:])

    def room(self):
        """A room named after the test."""
        return self.id().rsplit(".", 1)[-1][5:].replace("_", "-")

    def ws(self, room=None, **kw):
        c = raw_ws(self.port, room or self.room(), **kw)
        self.addCleanup(c.close)
        return c
