"""roomrelay-backend's limits, each met on purpose and seen from the client
side (status line, close code, a closed socket) and in
roomrelay_rejected_total{reason}: --max-connections, --max-conns-per-ip,
--max-message, binary frames, the publish rate, a slow consumer, pings
without pongs, a handshake that never ends, a header too large.

Raw sockets (backend_client.raw_ws) where the exact bytes matter or where a
client must misbehave; python3-websockets for the well-behaved members.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import tap  # noqa: E402
from wsclient import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, frame,  # noqa: E402
                      publish_bytes, publish_of_length)


class BackendCase(B.BackendTestCase):
    @classmethod
    def backend_args(cls):
        return ["--allow-anonymous"] + list(cls.args)


    def open_count(self, source=None):
        """WebSockets open, from /status (asked from `source`, when given)."""
        status, _, body = B.http_raw(self.port, "GET", "/status", source=source)
        self.assertEqual(status, 200)
        return B.json.loads(body)["connections"]


class MaxConnections(BackendCase):
    args = ["--max-connections", "3"]

    def test_fourth_websocket_gets_503_and_is_counted(self):
        held = [self.ws() for _ in range(3)]
        self.assertEqual([c.status for c in held], [101, 101, 101])
        before = B.rejected(self.port, "max_connections")
        c = self.ws()
        self.assertEqual(c.status_line, "HTTP/1.1 503 Service Unavailable")
        self.assertEqual(c.headers["retry-after"], "1")
        self.assertEqual(c.headers["connection"], "close")
        B.closed_by_server(c.sock)
        self.assertEqual(B.rejected(self.port, "max_connections"), before + 1)
        # Plain HTTP is not a WebSocket: the ops endpoints still answer.
        self.assertEqual(harness.http_get(self.port, "/health")[0], 200)
        # A slot freed is a slot again.
        held[0].close()
        harness.wait_for(lambda: self.open_count() == 2, what="the closed WebSocket to go")
        self.assertEqual(self.ws().status, 101)


class MaxConnsPerIp(BackendCase):
    args = ["--max-conns-per-ip", "2"]

    def test_third_connection_from_one_address_gets_503(self):
        a = self.ws()
        b = self.ws()
        self.assertEqual((a.status, b.status), (101, 101))
        # Metrics are read from another loopback address: this one is full.
        before = B.rejected(self.port, "max_conns_per_ip", source="127.0.0.2")
        c = self.ws()
        self.assertEqual(c.status_line, "HTTP/1.1 503 Service Unavailable")
        B.closed_by_server(c.sock)
        self.assertEqual(B.rejected(self.port, "max_conns_per_ip", source="127.0.0.2"),
                         before + 1)
        # Another address is not limited by this one's count.
        self.assertEqual(self.ws(source="127.0.0.3").status, 101)
        a.close()
        harness.wait_for(lambda: self.open_count(source="127.0.0.2") == 2,
                         what="the closed WebSocket to go")
        self.assertEqual(self.ws().status, 101)


class Messages(BackendCase):
    args = ["--max-message", "1024", "--publish-rate", "5", "--publish-burst", "5",
            "--rate-limit-strikes", "3", "--handshake-timeout", "300"]

    def test_message_of_max_message_bytes_is_accepted(self):
        c = self.ws()
        data, payload = publish_of_length(c.room, 1024, "exact")
        c.send_frame(OP_TEXT, payload)
        self.assertEqual(c.read_message("exact"), data)

    def test_message_one_byte_over_max_message_closes_1009(self):
        c = self.ws()
        before = B.rejected(self.port, "message_too_big")
        _, payload = publish_of_length(c.room, 1025, "over")
        c.send_frame(OP_TEXT, payload)
        c.expect_close(1009)
        self.assertEqual(B.rejected(self.port, "message_too_big"), before + 1)

    def test_binary_frame_closes_1003(self):
        c = self.ws()
        before = B.rejected(self.port, "binary_frame")
        c.send_frame(OP_BINARY, b'{"type":"ping"}')
        c.expect_close(1003)
        self.assertEqual(B.rejected(self.port, "binary_frame"), before + 1)

    def test_publish_rate_burst_then_rate_limited_then_close_1008(self):
        c = self.ws()
        limited = B.rejected(self.port, "rate_limited")
        closed = B.rejected(self.port, "rate_limit_close")
        # Twelve publishes in one write: the burst of 5 is numbered, the next
        # 3 are refused (the strikes), the 4th refusal in a row closes.
        c.send(b"".join(frame(OP_TEXT, publish_bytes(c.room, i, f"p{i}"))
                        for i in range(12)))
        for i in range(5):
            c.expect_json(type="message", seq=i + 1, data=i)
            self.assertEqual(c.recv_json(), {"type": "ack", "id": f"p{i}", "seq": i + 1})
        for i in range(5, 8):
            err = c.expect_json(type="error", code="rate_limited", id=f"p{i}")
            self.assertEqual(set(err), {"type", "code", "message", "id"})
        c.expect_close(1008)
        self.assertEqual(B.rejected(self.port, "rate_limited"), limited + 3)
        self.assertEqual(B.rejected(self.port, "rate_limit_close"), closed + 1)

    def test_half_a_request_is_closed_at_the_handshake_timeout(self):
        before = B.rejected(self.port, "handshake_timeout")
        s = B.tcp(self.port)
        self.addCleanup(s.close)
        s.sendall(f"GET /ws?room=half HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode())
        self.assertEqual(B.closed_by_server(s), b"")
        self.assertEqual(B.rejected(self.port, "handshake_timeout"), before + 1)

    def test_silent_connection_is_closed_at_the_handshake_timeout(self):
        before = B.rejected(self.port, "handshake_timeout")
        s = B.tcp(self.port)
        self.addCleanup(s.close)
        self.assertEqual(B.closed_by_server(s), b"")
        self.assertEqual(B.rejected(self.port, "handshake_timeout"), before + 1)

    def test_header_over_max_header_bytes_gets_431(self):
        before = B.rejected(self.port, "bad_handshake")
        s = B.tcp(self.port)
        self.addCleanup(s.close)
        s.sendall(f"GET /ws?room=big HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                  f"X-Filler: {'f' * 9000}\r\n\r\n".encode())
        line, headers, _, _ = B.read_response(s)
        self.assertEqual(line, "HTTP/1.1 431 Request Header Fields Too Large")
        self.assertEqual(headers["connection"], "close")
        B.closed_by_server(s)
        self.assertEqual(B.rejected(self.port, "bad_handshake"), before + 1)


class SlowConsumer(BackendCase):
    args = ["--max-backlog", "65536", "--publish-rate", "0"]

    def test_reader_that_never_reads_is_closed_and_the_others_get_everything(self):
        room = self.room()
        slow = self.ws(room, rcvbuf=4096)
        before = B.rejected(self.port, "slow_consumer")
        closes_before = B.metrics(self.port).get('roomrelay_closes_total{code="1008"}', 0)
        chunk = "x" * 2000
        batch = 20

        async def body():
            pub, _ = await B.connect(self.port, room)
            fast, _ = await B.connect(self.port, room)
            await B.expect_json(pub, type="member", event="join")
            sent = 0
            fast_seqs = []

            async def read_fast(upto):
                while len(fast_seqs) < upto:
                    m = await B.recv_json(fast)
                    if m["type"] == "message":
                        fast_seqs.append(m["seq"])

            # Publish in batches until the server gives up on the slow reader
            # (bounded: 64 KiB of backlog plus the kernel's buffers is far less).
            while B.rejected(self.port, "slow_consumer") == before:
                self.assertLess(sent, 20000, "the slow reader was never closed")
                for i in range(batch):
                    await B.send_json(pub, type="publish", room=room, data=chunk,
                                      id=f"s{sent + i}")
                acks = 0
                while acks < batch:
                    m = await B.recv_json(pub)
                    acks += m["type"] == "ack"
                sent += batch
                await read_fast(sent)
            # The room goes on for the others.
            for i in range(batch):
                await B.send_json(pub, type="publish", room=room, data=i, id=f"after{i}")
            await read_fast(sent + batch)
            self.assertEqual(fast_seqs, list(range(1, sent + batch + 1)))
            await pub.close()
            await fast.close()

        B.run(body())
        self.assertEqual(B.rejected(self.port, "slow_consumer"), before + 1)
        self.assertEqual(B.metrics(self.port)['roomrelay_closes_total{code="1008"}'],
                         closes_before + 1)
        # What reached its socket before the queue was dropped is readable, then
        # the server closes the connection.
        data = slow.buf + B.closed_by_server(slow.sock, timeout=15)
        frames, rest = split_frames(data)
        # Whole messages, in order, none skipped: only the tail was dropped.
        texts = [p for op, p in frames if op == OP_TEXT]
        seqs = [B.json.loads(p)["seq"] for p in texts if b'"type":"message"' in p]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertGreater(len(seqs), 0)
        # The close frame arrives when the reader reads before the server's
        # 2 s grace ends (it normally does here); it then ends the stream on
        # a frame boundary. Otherwise the stream stops inside the frame that
        # was being written, and nothing else is sent.
        ops = [op for op, _ in frames]
        self.assertTrue(set(ops) <= {OP_TEXT, OP_CLOSE}, ops)
        if OP_CLOSE in ops:
            self.assertEqual(ops.index(OP_CLOSE), len(ops) - 1)
            self.assertEqual(frames[-1][1][:2], (1008).to_bytes(2, "big"))
            self.assertEqual(rest, b"")
        harness.wait_for(lambda: self.open_count() == 0, what="every connection gone")


def split_frames(data):
    """Server frames (unmasked) in data: ([(opcode, payload)], the bytes of
    an incomplete last frame)."""
    out, off = [], 0
    while off + 2 <= len(data):
        n, h = data[off + 1] & 0x7F, 2
        if n == 126:
            n, h = int.from_bytes(data[off + 2:off + 4], "big"), 4
        elif n == 127:
            n, h = int.from_bytes(data[off + 2:off + 10], "big"), 10
        if off + h + n > len(data):
            break
        out.append((data[off] & 0x0F, data[off + h:off + h + n]))
        off += h + n
    return out, data[off:]


class KeepAlive(BackendCase):
    args = ["--ping-interval", "1", "--pong-timeout", "1"]

    def test_client_that_never_answers_pings_is_closed(self):
        c = self.ws()
        before = B.rejected(self.port, "pong_timeout")
        c.timeout = 10
        c.sock.settimeout(10)
        c.expect_frame(OP_PING, b"rr")
        c.expect_close(1001)
        self.assertEqual(B.rejected(self.port, "pong_timeout"), before + 1)

    def test_client_that_answers_pings_stays_through_three_rounds(self):
        c = self.ws()
        before = B.rejected(self.port, "pong_timeout")
        c.sock.settimeout(10)
        for _ in range(3):
            f = c.expect_frame(OP_PING, b"rr")
            c.send_frame(OP_PONG, f.payload)
        self.assertEqual(c.echo("still here"), "still here")
        self.assertEqual(B.rejected(self.port, "pong_timeout"), before)


class IdleTimeout(BackendCase):
    """--idle-timeout counts messages only: answering pings does not keep a
    silent client open."""

    args = ["--idle-timeout", "2", "--ping-interval", "1", "--pong-timeout", "5"]

    def test_client_that_only_answers_pings_is_closed_as_idle(self):
        c = self.ws()
        before = B.rejected(self.port, "idle_timeout")
        pong_before = B.rejected(self.port, "pong_timeout")
        c.sock.settimeout(15)
        # Answer every ping, send no message: the next thing that is not a
        # ping is the idle close.
        while True:
            f = c.recv_frame()
            if f.opcode != OP_PING:
                break
            c.send_frame(OP_PONG, f.payload)
        self.assertEqual(f.opcode, OP_CLOSE)
        self.assertEqual(f.payload, b"\x03\xe9idle timeout")
        c.expect_eof()
        self.assertEqual(B.rejected(self.port, "idle_timeout"), before + 1)
        self.assertEqual(B.rejected(self.port, "pong_timeout"), pong_before)

if __name__ == "__main__":
    tap.main()
