"""A small SPOP 2.0 peer written from doc/SPOE.txt, independent of the agent's
C codec, to play HAProxy's side in protocol tests (including its bad habits)."""
import socket
import struct

HAPROXY_HELLO, HAPROXY_DISCONNECT, NOTIFY = 1, 2, 3
AGENT_HELLO, AGENT_DISCONNECT, ACK = 101, 102, 103
FIN = 1


def varint(v):
    if v < 240:
        return bytes([v])
    out = [(v | 240) & 0xFF]
    v = (v - 240) >> 4
    while v >= 128:
        out.append((v | 128) & 0xFF)
        v = (v - 128) >> 7
    out.append(v)
    return bytes(out)


def read_varint(b, i):
    v = b[i]
    i += 1
    if v < 240:
        return v, i
    shift = 4
    while True:
        c = b[i]
        i += 1
        v += c << shift
        shift += 7
        if c < 128:
            return v, i


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return varint(len(x)) + x


def t_str(x):
    return b"\x08" + s(x)


def t_uint32(v):
    return b"\x03" + varint(v)


def t_bool(v):
    return b"\x11" if v else b"\x01"


T_NULL = b"\x00"


def kv(items):
    return b"".join(s(k) + v for k, v in items)


def frame(ftype, payload=b"", flags=FIN, sid=0, fid=0):
    body = bytes([ftype]) + struct.pack(">I", flags) + varint(sid) + varint(fid) + payload
    return struct.pack(">I", len(body)) + body


def hello(max_frame=16380, caps="pipelining,async", healthcheck=False, versions="2.0"):
    items = [("supported-versions", t_str(versions)), ("max-frame-size", t_uint32(max_frame)),
             ("capabilities", t_str(caps))]
    if healthcheck:
        items.append(("healthcheck", t_bool(True)))
    return frame(HAPROXY_HELLO, kv(items))


def notify(sid, fid, messages):
    """messages: [(name, [(arg, typed_bytes), ...]), ...]"""
    payload = b"".join(s(name) + bytes([len(args)]) + kv(args) for name, args in messages)
    return frame(NOTIFY, payload, sid=sid, fid=fid)


def check_token(sid, fid, bearer=None, qtoken=None, proto=None, cookie=None):
    args = [(n, t_str(v) if v is not None else T_NULL)
            for n, v in (("bearer", bearer), ("qtoken", qtoken), ("proto", proto),
                         ("cookie", cookie))]
    return notify(sid, fid, [("check-token", args)])


def parse_typed(b, i):
    t = b[i] & 0x0F
    flags = b[i] >> 4
    i += 1
    if t == 0:
        return None, i
    if t == 1:
        return bool(flags & 1), i
    if t in (2, 3, 4, 5):
        v, i = read_varint(b, i)
        if t in (2, 4) and v >= 1 << 63:
            v -= 1 << 64
        return v, i
    if t == 6:
        return b[i:i + 4], i + 4
    if t == 7:
        return b[i:i + 16], i + 16
    n, i = read_varint(b, i)
    v = b[i:i + n]
    return (v.decode() if t == 8 else v), i + n


def parse_kv(b):
    out, i = {}, 0
    while i < len(b):
        n, i = read_varint(b, i)
        k = b[i:i + n].decode()
        i += n
        out[k], i = parse_typed(b, i)
    return out


def parse_actions(b):
    """ACK payload -> {var_name: value} for set-var, value None for unset-var."""
    out, i = {}, 0
    while i < len(b):
        atype, nargs, scope = b[i], b[i + 1], b[i + 2]
        i += 3
        n, i = read_varint(b, i)
        name = b[i:i + n].decode()
        i += n
        if atype == 1:
            out[name], i = parse_typed(b, i)
        else:
            out[name] = None
    return out


class Peer:
    """One SPOP connection to the agent."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_frame(self):
        """Returns (type, flags, sid, fid, payload), or None when the agent closed."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    ftype = body[0]
                    flags = struct.unpack(">I", body[1:5])[0]
                    sid, i = read_varint(body, 5)
                    fid, i = read_varint(body, i)
                    return ftype, flags, sid, fid, body[i:]
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def closed(self):
        """True once the agent has closed its side (reads EOF)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True

    def handshake(self, **kw):
        self.send(hello(**kw))
        f = self.read_frame()
        assert f is not None and f[0] == AGENT_HELLO, f
        return parse_kv(f[4])

    def expect_disconnect(self):
        """Reads frames until AGENT-DISCONNECT; returns (status, message)."""
        while True:
            f = self.read_frame()
            if f is None:
                raise AssertionError("connection closed without AGENT-DISCONNECT")
            if f[0] == AGENT_DISCONNECT:
                d = parse_kv(f[4])
                return d.get("status-code"), d.get("message")

    def close(self):
        self.sock.close()
