"""Conformance 2.x: ping and pong. A client ping gets a pong with the same
payload (any bytes, 0 to 125 of them); a longer or fragmented control frame
is 1002; a pong nobody asked for is ignored."""
from wsclient import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ConformanceCase, add_case,
                      close_payload, frame, next_pid)
import tap


class PingPong(ConformanceCase):
    def test_2_02_every_length_0_to_125_on_one_connection(self):
        c = self.ws()
        for n in range(126):
            c.ping_roundtrip(bytes((n + i) & 0xFF for i in range(n)))
        self.assert_usable(c)

    def test_2_03_binary_payload_all_byte_values(self):
        c = self.ws()
        c.ping_roundtrip(bytes(range(125)))
        c.ping_roundtrip(bytes(range(131, 256)))

    def test_2_03_payload_not_utf8_is_fine_in_a_ping(self):
        c = self.ws()
        c.ping_roundtrip(b"\xff\xfe\xc0\x80\xed\xa0\x80")
        self.assert_usable(c)

    def test_2_04_ten_pings_in_one_write_answered_in_order(self):
        c = self.ws()
        c.send(b"".join(frame(OP_PING, f"ping-{i}") for i in range(10)))
        for i in range(10):
            c.expect_frame(OP_PONG, f"ping-{i}".encode())
        self.assert_usable(c)

    def test_2_04_ten_pings_in_separate_writes_answered_in_order(self):
        c = self.ws()
        for i in range(10):
            c.send_frame(OP_PING, f"p{i}")
        for i in range(10):
            c.expect_frame(OP_PONG, f"p{i}".encode())

    def test_2_04_pings_and_publishes_interleaved_keep_order(self):
        c = self.ws()
        pid = next_pid()
        c.send(frame(OP_PING, b"before") + frame(OP_TEXT, c.publish_payload("mid", pid)) +
               frame(OP_PING, b"after"))
        c.expect_frame(OP_PONG, b"before")
        self.assertEqual(c.read_message(pid), "mid")
        c.expect_frame(OP_PONG, b"after")

    def test_2_05_ping_one_byte_per_write(self):
        c = self.ws()
        c.send_slow(frame(OP_PING, b"slowly"))
        c.expect_frame(OP_PONG, b"slowly")

    def test_2_06_ping_after_close_is_not_answered(self):
        c = self.ws()
        c.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_PING, b"too late"))
        c.expect_close(1000)

    def test_2_07_json_ping_gets_json_pong(self):
        c = self.ws()
        c.send_frame(OP_TEXT, b'{"type":"ping"}')
        c.expect_json(type="pong")


def ping_case(self, n):
    c = self.ws()
    payload = bytes(ord("a") + i % 26 for i in range(n))
    self.assertEqual(c.ping_roundtrip(payload), payload)
    self.assert_usable(c)


for n in (0, 1, 2, 3, 4, 5, 8, 16, 64, 124, 125):
    add_case(PingPong, f"2_01_ping_{n:03d}_bytes_gets_same_pong", ping_case, n)


def control_too_long_case(self, opcode, n, form):
    c = self.ws()
    c.send(frame(opcode, b"z" * n, length_form=form))
    c.expect_close(1002)


for op, name in ((OP_PING, "ping"), (OP_PONG, "pong"), (OP_CLOSE, "close")):
    add_case(PingPong, f"2_08_{name}_126_bytes_is_1002", control_too_long_case, op, 126, None)
    add_case(PingPong, f"2_08_{name}_1000_bytes_is_1002", control_too_long_case, op, 1000, None)
    add_case(PingPong, f"2_08_{name}_10_bytes_in_64bit_length_is_1002", control_too_long_case,
             op, 10, 64)


def fragmented_control_case(self, opcode, payload):
    c = self.ws()
    c.send(frame(opcode, payload, fin=False))
    c.expect_close(1002)


for op, name, payload in ((OP_PING, "ping", b"frag"), (OP_PONG, "pong", b"frag"),
                          (OP_CLOSE, "close", close_payload(1000)), (OP_PING, "empty_ping", b"")):
    add_case(PingPong, f"2_09_fragmented_{name}_is_1002", fragmented_control_case, op, payload)


def fragmented_ping_completed_case(self):
    """A ping split in two frames (the second a continuation) is still 1002."""
    c = self.ws()
    c.send(frame(OP_PING, b"ab", fin=False) + frame(0, b"cd"))
    c.expect_close(1002)


add_case(PingPong, "2_09_ping_split_with_continuation_is_1002", fragmented_ping_completed_case)


def unsolicited_pong_case(self, payload):
    c = self.ws()
    c.send_frame(OP_PONG, payload)
    self.assert_usable(c)
    c.ping_roundtrip(b"after pong")


for n in (0, 10, 125):
    add_case(PingPong, f"2_10_unsolicited_pong_{n:03d}_bytes_ignored", unsolicited_pong_case,
             b"u" * n)


if __name__ == "__main__":
    tap.main()
