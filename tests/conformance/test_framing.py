"""Conformance 1.x: framing. Text messages of every length class (7-bit,
16-bit, 64-bit) arrive whole; a frame written one byte per TCP write or in
odd chunks still works; lengths not in their shortest encoding are 1002.
The server's own frames are checked by wsclient (minimal lengths, unmasked)."""
from wsclient import (OP_PING, OP_PONG, OP_TEXT, ConformanceCase, add_case, frame,
                      next_pid, publish_of_length)
import tap


class Framing(ConformanceCase):
    def test_1_00_handshake_and_first_frame_in_one_write(self):
        c = self.ws(read_welcome=False, extra=frame(OP_PING, b"early"))
        c.expect_json(type="welcome", room=c.room)
        c.expect_frame(OP_PONG, b"early")
        self.assert_usable(c)

    def test_1_00_three_publishes_in_one_write(self):
        c = self.ws()
        pids = [next_pid() for _ in range(3)]
        c.send(b"".join(frame(OP_TEXT, c.publish_payload(f"m{i}", p)) for i, p in enumerate(pids)))
        for i, p in enumerate(pids):
            self.assertEqual(c.read_message(p), f"m{i}")

    def test_1_00_all_zero_mask_key(self):
        c = self.ws()
        pid = next_pid()
        c.send(frame(OP_TEXT, c.publish_payload("zero mask", pid), mask=b"\0\0\0\0"))
        self.assertEqual(c.read_message(pid), "zero mask")


def frame_length_case(self, total):
    """A publish whose frame payload is exactly `total` bytes, as one frame."""
    c = self.ws()
    pid = next_pid()
    data, payload = publish_of_length(c.room, total, pid)
    c.send(frame(OP_TEXT, payload))
    self.assertEqual(c.read_message(pid), data)


# Frame payload lengths at each edge of the 7-bit, 16-bit and 64-bit encodings,
# up to --max-message (65536 is the only 64-bit length under the limit).
for n in (80, 125, 126, 127, 128, 1000, 4096, 65535, 65536):
    enc = "7bit" if n <= 125 else "16bit" if n <= 0xFFFF else "64bit"
    add_case(Framing, f"1_01_frame_payload_{n:05d}_bytes_{enc}_length", frame_length_case, n)


def data_length_case(self, n):
    c = self.ws()
    text = "x" * n
    self.assertEqual(c.echo(text), text)


for n in (0, 1, 125, 126, 127, 128, 65535 - 100):
    add_case(Framing, f"1_02_data_string_{n:05d}_chars_echoed", data_length_case, n)


def tiny_text_case(self, payload):
    """A text message too short to be JSON is an error event, not a close."""
    c = self.ws()
    c.send(frame(OP_TEXT, payload))
    c.expect_json(type="error", code="bad_json")
    self.assert_usable(c)


add_case(Framing, "1_03_empty_text_message_is_bad_json", tiny_text_case, b"")
add_case(Framing, "1_03_one_byte_text_message_is_bad_json", tiny_text_case, b"x")


def chunked_case(self, total, chunk):
    """The whole frame written `chunk` bytes per TCP write."""
    c = self.ws()
    pid = next_pid()
    data, payload = publish_of_length(c.room, total, pid)
    c.send_slow(frame(OP_TEXT, payload), chunk)
    self.assertEqual(c.read_message(pid), data)


for total, chunk in ((100, 1), (125, 1), (126, 1), (300, 1), (1000, 3), (5000, 7), (65536, 1021)):
    add_case(Framing, f"1_04_frame_{total:05d}_bytes_in_{chunk}_byte_writes", chunked_case, total,
             chunk)


def slow_header_case(self, total):
    """Header (up to 14 bytes) one byte per write, then the payload at once."""
    c = self.ws()
    pid = next_pid()
    data, payload = publish_of_length(c.room, total, pid)
    f = frame(OP_TEXT, payload)
    head = 6 if total <= 125 else 8 if total <= 0xFFFF else 14
    c.send_slow(f[:head], 1)
    c.send(f[head:])
    self.assertEqual(c.read_message(pid), data)


for total in (100, 126, 65536):
    add_case(Framing, f"1_05_header_of_{total:05d}_byte_frame_one_byte_per_write", slow_header_case,
             total)


def non_minimal_case(self, opcode, n, form):
    c = self.ws()
    c.send(frame(opcode, b"p" * n, length_form=form))
    c.expect_close(1002)


for n, form in ((0, 16), (1, 16), (125, 16), (0, 64), (125, 64), (126, 64), (65535, 64)):
    add_case(Framing, f"1_06_text_length_{n:05d}_in_{form}_bits_is_1002", non_minimal_case,
             OP_TEXT, n, form)


def top_bit_length_case(self):
    c = self.ws()
    c.send(frame(OP_TEXT, b"", length_form=64, length=1 << 63))
    c.expect_close(1002)


add_case(Framing, "1_07_64bit_length_with_top_bit_set_is_1002", top_bit_length_case)


if __name__ == "__main__":
    tap.main()
