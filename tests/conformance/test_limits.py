"""Conformance 9.x: limits. A message of exactly --max-message bytes (the
JSON text, after reassembly) is accepted, whole or in fragments; one byte
more is 1009, and a frame whose declared length is over the limit is 1009
as soon as its header arrives. Many fragments, many messages per write and
repeated large messages all work. An unmasked client frame is 1002."""
from wsclient import (MAX_MESSAGE, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ConformanceCase,
                      add_case, close_payload, fragments, frame, next_pid, publish_of_length,
                      split_at)
import tap


class Limits(ConformanceCase):
    def test_9_05_ten_max_size_messages_on_one_connection(self):
        c = self.ws()
        for _ in range(10):
            pid = next_pid()
            data, payload = publish_of_length(c.room, MAX_MESSAGE, pid)
            c.send_frame(OP_TEXT, payload)
            self.assertEqual(c.read_message(pid), data)

    def test_9_05_max_size_fragmented_then_small_then_max_size(self):
        c = self.ws()
        pid = next_pid()
        data, payload = publish_of_length(c.room, MAX_MESSAGE, pid)
        c.send(fragments(payload, split_at(payload, [1000, 40000])))
        self.assertEqual(c.read_message(pid), data)
        self.assert_usable(c, "small in between")
        pid = next_pid()
        data, payload = publish_of_length(c.room, MAX_MESSAGE, pid)
        c.send(fragments(payload, split_at(payload, [65000])))
        self.assertEqual(c.read_message(pid), data)

    def test_9_06_two_hundred_messages_in_one_write(self):
        c = self.ws()
        pids = [next_pid() for _ in range(200)]
        c.send(b"".join(frame(OP_TEXT, c.publish_payload(f"n{i}", p)) for i, p in enumerate(pids)))
        for i, p in enumerate(pids):
            self.assertEqual(c.read_message(p), f"n{i}")

    def test_9_07_pings_do_not_count_toward_the_message_size(self):
        c = self.ws()
        pid = next_pid()
        data, payload = publish_of_length(c.room, MAX_MESSAGE, pid)
        pieces = split_at(payload, [20000, 40000])
        c.send(frame(OP_TEXT, pieces[0], fin=False) + frame(OP_PING, b"p" * 125) +
               frame(OP_CONT, pieces[1], fin=False) + frame(OP_PING, b"q" * 125) +
               frame(OP_CONT, pieces[2]))
        c.expect_frame(OP_PONG, b"p" * 125)
        c.expect_frame(OP_PONG, b"q" * 125)
        self.assertEqual(c.read_message(pid), data)


def max_size_case(self, cuts):
    c = self.ws()
    pid = next_pid()
    data, payload = publish_of_length(c.room, MAX_MESSAGE, pid)
    c.send(frame(OP_TEXT, payload) if not cuts else fragments(payload, split_at(payload, cuts)))
    self.assertEqual(c.read_message(pid), data)


add_case(Limits, "9_01_max_message_bytes_in_one_frame_accepted", max_size_case, [])
add_case(Limits, "9_01_max_message_bytes_in_16_fragments_accepted", max_size_case,
         [4096 * i for i in range(1, 16)])
add_case(Limits, "9_01_max_message_bytes_as_max_minus_1_plus_1_accepted", max_size_case,
         [MAX_MESSAGE - 1])


def too_big_case(self, total, cuts):
    c = self.ws()
    _, payload = publish_of_length(c.room, total, next_pid())
    c.send(frame(OP_TEXT, payload) if not cuts else fragments(payload, split_at(payload, cuts)))
    c.expect_close(1009)


add_case(Limits, "9_02_max_plus_1_in_one_frame_is_1009", too_big_case, MAX_MESSAGE + 1, [])
add_case(Limits, "9_02_max_plus_1_as_max_then_1_is_1009", too_big_case, MAX_MESSAGE + 1,
         [MAX_MESSAGE])
add_case(Limits, "9_02_max_plus_1_in_two_halves_is_1009", too_big_case, MAX_MESSAGE + 1,
         [MAX_MESSAGE // 2])
add_case(Limits, "9_02_max_plus_1_in_100_fragments_is_1009", too_big_case, MAX_MESSAGE + 1,
         [656 * i for i in range(1, 100)])
add_case(Limits, "9_02_twice_max_in_one_frame_is_1009", too_big_case, 2 * MAX_MESSAGE, [])


def declared_too_big_case(self, length, fragmented):
    """Only the header is sent: the server must close on the declared length
    without waiting for a payload that never comes."""
    c = self.ws()
    head = b""
    if fragmented:
        head = frame(OP_TEXT, b'{"type":', fin=False)
        length -= 8
    c.send(head + frame(OP_CONT if fragmented else OP_TEXT, b"", length=length))
    c.expect_close(1009)


for length in (MAX_MESSAGE + 1, 1 << 20, 1 << 32, (1 << 63) - 1):
    add_case(Limits, f"9_03_declared_length_{length}_header_only_is_1009", declared_too_big_case,
             length, False)
add_case(Limits, "9_03_continuation_declaring_past_the_limit_is_1009", declared_too_big_case,
         MAX_MESSAGE + 1, True)


def many_fragments_case(self, n, size):
    c = self.ws()
    pid = next_pid()
    data, payload = publish_of_length(c.room, n * size, pid)
    c.send(fragments(payload, split_at(payload, [size * i for i in range(1, n)])))
    self.assertEqual(c.read_message(pid), data)


add_case(Limits, "9_04_1000_fragments_of_60_bytes", many_fragments_case, 1000, 60)
add_case(Limits, "9_04_4096_fragments_of_16_bytes_reach_max_message", many_fragments_case, 4096,
         16)
add_case(Limits, "9_04_600_fragments_of_1_byte", many_fragments_case, 600, 1)


def unmasked_case(self, opcode, payload, fin):
    c = self.ws()
    c.send(frame(opcode, payload, fin=fin, masked=False))
    c.expect_close(1002)


add_case(Limits, "9_08_unmasked_text_is_1002", unmasked_case, OP_TEXT, b'{"type":"ping"}', True)
add_case(Limits, "9_08_unmasked_empty_text_is_1002", unmasked_case, OP_TEXT, b"", True)
add_case(Limits, "9_08_unmasked_ping_is_1002", unmasked_case, OP_PING, b"hi", True)
add_case(Limits, "9_08_unmasked_pong_is_1002", unmasked_case, OP_PONG, b"", True)
add_case(Limits, "9_08_unmasked_close_is_1002", unmasked_case, OP_CLOSE, close_payload(1000), True)
add_case(Limits, "9_08_unmasked_first_fragment_is_1002", unmasked_case, OP_TEXT, b"{", False)


def unmasked_continuation_case(self):
    c = self.ws()
    c.send(frame(OP_TEXT, b'{"type"', fin=False) + frame(OP_CONT, b':"ping"}', masked=False))
    c.expect_close(1002)


add_case(Limits, "9_08_unmasked_continuation_is_1002", unmasked_continuation_case)


if __name__ == "__main__":
    tap.main()
