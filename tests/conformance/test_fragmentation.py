"""Conformance 5.x: fragmentation. A text message in any number of
fragments of any sizes (empty ones included) is delivered whole; control
frames between fragments are answered and leave the message intact; a
continuation with nothing open, or a new data frame inside an open message,
is 1002; a close in the middle of a message ends it undelivered."""
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ConformanceCase,
                      add_case, close_payload, fragments, frame, next_pid, split_at)
import tap


class Fragmentation(ConformanceCase):
    pass


def even_points(total, n):
    return [total * i // n for i in range(1, n)]


def fragmented_echo_case(self, n, text, separate_writes):
    c = self.ws()
    pid = next_pid()
    payload = c.publish_payload(text, pid)
    pieces = split_at(payload, even_points(len(payload), n))
    if separate_writes:
        for i, p in enumerate(pieces):
            c.send_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1)
    else:
        c.send(fragments(payload, pieces))
    self.assertEqual(c.read_message(pid), text)


for n in (2, 3, 4, 7, 16, 64):
    add_case(Fragmentation, f"5_01_{n:03d}_fragments_one_write", fragmented_echo_case, n,
             "fragmented " * 20, False)
    add_case(Fragmentation, f"5_02_{n:03d}_fragments_separate_writes", fragmented_echo_case, n,
             "fragmented " * 20, True)
for n in (2, 5, 40):
    add_case(Fragmentation, f"5_03_{n:03d}_fragments_of_a_20000_byte_message",
             fragmented_echo_case, n, "y" * 20000, False)


def split_points_case(self, points):
    """Fragment sizes chosen by where the cuts fall (offsets from the end
    when negative): a repeated cut is an empty fragment."""
    c = self.ws()
    pid = next_pid()
    payload = c.publish_payload("cut here and there", pid)
    c.send(fragments(payload, split_at(payload, [p % (len(payload) + 1) for p in points])))
    self.assertEqual(c.read_message(pid), "cut here and there")


SPLITS = (("first_fragment_empty", [0]), ("last_fragment_empty", [-1]),
          ("first_and_last_empty", [0, -1]), ("three_empty_in_the_middle", [20, 20, 20, 20]),
          ("one_byte_then_rest", [1]), ("last_byte_alone", [-2]),
          ("cut_inside_the_type_key", [3, 5]), ("cut_around_quotes", [1, 2, 8, 9]))
for name, pts in SPLITS:
    add_case(Fragmentation, f"5_04_split_{name}", split_points_case, pts)


def every_byte_a_fragment_case(self):
    c = self.ws()
    pid = next_pid()
    payload = c.publish_payload("one byte each", pid)
    c.send(fragments(payload, [payload[i:i + 1] for i in range(len(payload))]))
    self.assertEqual(c.read_message(pid), "one byte each")


add_case(Fragmentation, "5_05_every_byte_its_own_fragment", every_byte_a_fragment_case)


def bad_sequence_case(self, frames):
    c = self.ws()
    c.send(b"".join(frames(c)))
    c.expect_close(1002)


def continuation_after_complete_message_case(self):
    c = self.ws()
    c.send(frame(OP_TEXT, b'{"type":"ping"}') + frame(OP_CONT, b"more"))
    c.expect_json(type="pong")
    c.expect_close(1002)


add_case(Fragmentation, "5_06_continuation_after_complete_message_is_1002",
         continuation_after_complete_message_case)


def _pub(c, text="x"):
    return c.publish_payload(text, next_pid())


BAD = {
    "continuation_without_start_fin": lambda c: [frame(OP_CONT, _pub(c))],
    "continuation_without_start_no_fin": lambda c: [frame(OP_CONT, b"abc", fin=False)],
    "empty_continuation_without_start": lambda c: [frame(OP_CONT, b"")],
    "text_fin_inside_open_message": lambda c: [frame(OP_TEXT, _pub(c)[:10], fin=False),
                                              frame(OP_TEXT, _pub(c))],
    "text_no_fin_inside_open_message": lambda c: [frame(OP_TEXT, b'{"ty', fin=False),
                                                 frame(OP_TEXT, b'pe"', fin=False)],
    "binary_inside_open_text_message": lambda c: [frame(OP_TEXT, b'{"ty', fin=False),
                                                 frame(OP_BINARY, b"x")],
    "text_inside_open_binary_message": lambda c: [frame(OP_BINARY, b"x", fin=False),
                                                 frame(OP_TEXT, b"y")],
    "empty_text_inside_open_message": lambda c: [frame(OP_TEXT, b'{"ty', fin=False),
                                                frame(OP_TEXT, b"")],
}

for name, frames in BAD.items():
    add_case(Fragmentation, f"5_06_{name}_is_1002", bad_sequence_case, frames)


def first_message_delivered_before_bad_continuation_case(self):
    c = self.ws()
    pid = next_pid()
    c.send(frame(OP_TEXT, c.publish_payload("ok", pid)) + frame(OP_CONT, b"stray"))
    self.assertEqual(c.read_message(pid), "ok")
    c.expect_close(1002)


add_case(Fragmentation, "5_06_message_before_a_stray_continuation_still_delivered",
         first_message_delivered_before_bad_continuation_case)


def control_between_fragments_case(self, n, opcode, gaps):
    """Control frames in the given gaps of an n-fragment message: each ping
    is answered at once (before the message completes), the message arrives
    whole after the last fragment."""
    c = self.ws()
    pid = next_pid()
    text = "interleaved control frames"
    payload = c.publish_payload(text, pid)
    pieces = split_at(payload, even_points(len(payload), n))
    out = b""
    for i, p in enumerate(pieces):
        out += frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == n - 1)
        if i in gaps:
            out += frame(opcode, f"gap{i}")
    c.send(out)
    if opcode == OP_PING:
        for i in sorted(gaps):
            c.expect_frame(OP_PONG, f"gap{i}".encode())
    self.assertEqual(c.read_message(pid), text)


add_case(Fragmentation, "5_07_ping_between_two_fragments", control_between_fragments_case, 2,
         OP_PING, {0})
add_case(Fragmentation, "5_07_ping_in_every_gap_of_five_fragments",
         control_between_fragments_case, 5, OP_PING, {0, 1, 2, 3})
add_case(Fragmentation, "5_07_ping_in_last_gap_only", control_between_fragments_case, 4, OP_PING,
         {2})
add_case(Fragmentation, "5_07_pong_between_fragments_ignored", control_between_fragments_case, 3,
         OP_PONG, {0, 1})


def ping_answered_before_message_completes_case(self):
    """The pong comes while the message is still open (not held back)."""
    c = self.ws()
    pid = next_pid()
    payload = c.publish_payload("held open", pid)
    c.send(frame(OP_TEXT, payload[:12], fin=False) + frame(OP_PING, b"now"))
    c.expect_frame(OP_PONG, b"now")
    c.send(frame(OP_CONT, payload[12:]))
    self.assertEqual(c.read_message(pid), "held open")


add_case(Fragmentation, "5_08_pong_sent_while_message_still_open",
         ping_answered_before_message_completes_case)


def close_mid_message_case(self, code):
    c = self.ws()
    payload = c.publish_payload("never delivered", next_pid())
    c.send(frame(OP_TEXT, payload[:15], fin=False) + frame(OP_CLOSE, close_payload(code)) +
           frame(OP_CONT, payload[15:]))
    c.expect_close(code)


add_case(Fragmentation, "5_09_close_1000_mid_message_ends_it_undelivered", close_mid_message_case,
         1000)
add_case(Fragmentation, "5_09_empty_close_mid_message_ends_it_undelivered",
         close_mid_message_case, None)


def messages_back_to_back_case(self):
    """Fragmented, whole, fragmented: the reassembly state resets each time."""
    c = self.ws()
    pids = [next_pid() for _ in range(3)]
    texts = ["first " * 50, "second", "third " * 3000]
    out = b""
    for i, (p, t) in enumerate(zip(pids, texts)):
        payload = c.publish_payload(t, p)
        out += (frame(OP_TEXT, payload) if i == 1 else
                fragments(payload, split_at(payload, even_points(len(payload), 6))))
    c.send(out)
    for p, t in zip(pids, texts):
        self.assertEqual(c.read_message(p), t)


add_case(Fragmentation, "5_10_fragmented_whole_fragmented_back_to_back", messages_back_to_back_case)


def fragments_slow_case(self):
    """Every fragment header and payload arriving one byte per TCP write."""
    c = self.ws()
    pid = next_pid()
    payload = c.publish_payload("slow fragments", pid)
    c.send_slow(fragments(payload, split_at(payload, [10, 30, 31])))
    self.assertEqual(c.read_message(pid), "slow fragments")


add_case(Fragmentation, "5_11_fragments_one_byte_per_write", fragments_slow_case)


if __name__ == "__main__":
    tap.main()
