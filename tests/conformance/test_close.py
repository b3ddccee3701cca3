"""Conformance 7.x: the closing handshake. A client close with a code a
peer may send (1000-1003, 1007-1014, 3000-4999) is echoed with that code
and no reason; an empty close is echoed empty; then the server closes the
TCP connection. A 1-byte payload, a code a peer may not send (0-999, 1004,
1005, 1006, 1015, 1016-2999, 5000+) or a reason over 123 bytes is 1002; a
reason that is not UTF-8 is 1007. Anything after the close is ignored."""
import socket
import time

from wsclient import (OP_CLOSE, OP_PING, OP_TEXT, ConformanceCase, add_case, close_payload, frame,
                      next_pid)
import tap


class Close(ConformanceCase):
    def test_7_01_empty_close_echoed_empty(self):
        c = self.ws()
        c.send_close()
        c.expect_close(None)

    def test_7_01_close_after_a_message(self):
        c = self.ws()
        self.assert_usable(c)
        c.send_close(1000)
        c.expect_close(1000)

    def test_7_04_one_byte_close_payload_is_1002(self):
        c = self.ws()
        c.send_frame(OP_CLOSE, b"\x03")
        c.expect_close(1002)

    def test_7_06_data_after_close_is_ignored(self):
        """A publish and a ping after the close get no answer: the close
        echo is the next (and last) frame."""
        c = self.ws()
        c.send(frame(OP_CLOSE, close_payload(1000)) +
               frame(OP_TEXT, c.publish_payload("after close", next_pid())) +
               frame(OP_PING, b"after close"))
        c.expect_close(1000)

    def test_7_06_garbage_after_close_is_ignored(self):
        """Even bytes that are no frame at all (unmasked, reserved opcode)."""
        c = self.ws()
        c.send(frame(OP_CLOSE, close_payload(1001)) + b"\x83\x05hello" + b"\xff" * 20)
        c.expect_close(1001)

    def test_7_07_close_one_byte_per_write(self):
        c = self.ws()
        c.send_slow(frame(OP_CLOSE, close_payload(3001, "slow")))
        c.expect_close(3001)

    def test_7_08_server_closes_tcp_promptly_without_the_client_answering(self):
        """After its close frame the server closes the TCP connection as soon
        as the frame is written, not on its 2-second fallback timer."""
        c = self.ws()
        c.send_frame(0x3)
        self.assertEqual(c.expect_frame(OP_CLOSE).payload[:2], b"\x03\xea")  # 1002
        t0 = time.monotonic()
        c.expect_eof()
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_7_08_connection_refuses_new_frames_after_close(self):
        """Once the server has closed, writing more fails (the peer is gone)."""
        c = self.ws()
        c.send_close(1000)
        c.expect_close(1000)
        with self.assertRaises(OSError):
            for _ in range(50):
                c.sock.sendall(frame(OP_PING, b"x"))
                c.sock.settimeout(0.05)
                try:
                    c.sock.recv(1)
                except socket.timeout:
                    pass


def echoed_code_case(self, code, reason):
    c = self.ws()
    c.send_close(code, reason)
    self.assertEqual(c.expect_close(code), b"")


for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
             4000, 4999):
    add_case(Close, f"7_02_code_{code}_echoed", echoed_code_case, code, b"")
for code, reason in ((1000, b"bye"), (1001, "\u00e9t\u00e9 \u20ac \U0001f600".encode()),
                     (4000, b"r" * 123), (3000, b"\x00\x01 nul and control bytes")):
    add_case(Close, f"7_03_code_{code}_with_{len(reason)}_byte_reason_echoed_without_reason",
             echoed_code_case, code, reason)


def bad_code_case(self, code):
    c = self.ws()
    c.send_close(code)
    c.expect_close(1002)


for code in (0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
    add_case(Close, f"7_05_code_{code:05d}_is_1002", bad_code_case, code)


def bad_reason_case(self, reason):
    c = self.ws()
    c.send_close(1000, reason)
    c.expect_close(1007)


BAD_REASONS = (("byte_FF", b"\xff"), ("overlong_C0_80", b"ok\xc0\x80"),
               ("surrogate_ED_A0_80", b"\xed\xa0\x80"), ("truncated_E2_82", b"euro\xe2\x82"),
               ("lone_continuation", b"\x80abc"), ("over_max_F4_90_80_80", b"\xf4\x90\x80\x80"))
for name, reason in BAD_REASONS:
    add_case(Close, f"7_09_reason_invalid_utf8_{name}_is_1007", bad_reason_case, reason)


def long_reason_case(self, n):
    """124 reason bytes make a 126-byte close payload: over the control limit."""
    c = self.ws()
    c.send_close(1000, b"r" * n)
    c.expect_close(1002)


add_case(Close, "7_10_reason_of_124_bytes_is_1002", long_reason_case, 124)
add_case(Close, "7_10_reason_of_200_bytes_is_1002", long_reason_case, 200)


def bad_code_with_bad_reason_case(self):
    """The code is checked first: a bad code with a bad reason is 1002."""
    c = self.ws()
    c.send_close(1005, b"\xff")
    c.expect_close(1002)


add_case(Close, "7_11_bad_code_wins_over_bad_reason", bad_code_with_bad_reason_case)


if __name__ == "__main__":
    tap.main()
