"""Conformance 6.x: UTF-8. Valid text (every sequence length, the boundary
code points) comes back exactly, whole or split across fragments at any
byte; invalid text (overlong forms, surrogates, code points over U+10FFFF,
stray continuation bytes, truncated sequences, 0xFE/0xFF) is 1007, also
when it is split across fragments, and before the message is complete.

The data travels inside a JSON string: the server's jansson writes UTF-8
as is, so the raw bytes are looked for in the server's frame as well as in
the decoded string."""
import json

from wsclient import (OP_CONT, OP_PING, OP_PONG, OP_TEXT, ConformanceCase, add_case, fragments,
                      frame, next_pid, publish_bytes, split_at)
import tap


class Utf8(ConformanceCase):
    pass


def valid_case(self, text):
    c = self.ws()
    pid = next_pid()
    c.send_frame(OP_TEXT, c.publish_payload(text, pid))
    raw = c.recv_text()
    self.assertIn(text.encode("utf-8"), raw)
    msg = json.loads(raw)
    self.assertEqual((msg["type"], msg["data"]), ("message", text))
    c.expect_json(type="ack", id=pid)


VALID = {
    "1_byte_ascii": "A",
    "1_byte_max_U+007F": "\u007f",
    "2_byte_min_U+0080": "\u0080",
    "2_byte_U+00E9": "\u00e9",
    "2_byte_max_U+07FF": "\u07ff",
    "3_byte_min_U+0800": "\u0800",
    "3_byte_euro_U+20AC": "\u20ac",
    "3_byte_before_surrogates_U+D7FF": "\ud7ff",
    "3_byte_after_surrogates_U+E000": "\ue000",
    "3_byte_bom_U+FEFF": "\ufeff",
    "3_byte_replacement_U+FFFD": "\ufffd",
    "3_byte_noncharacter_U+FFFE": "\ufffe",
    "3_byte_max_U+FFFF": "\uffff",
    "4_byte_min_U+10000": "\U00010000",
    "4_byte_emoji_U+1F600": "\U0001f600",
    "4_byte_max_U+10FFFF": "\U0010ffff",
    "greek_kosme": "\u03ba\u1f79\u03c3\u03bc\u03b5",
    "mixed_lengths": "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!\u20ac\U0001f600",
    "every_boundary_in_one_string": "\u007f\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
    "1000_three_byte_chars": "\u20ac" * 1000,
}

for name, text in VALID.items():
    add_case(Utf8, f"6_01_valid_{name}_echoed", valid_case, text)


def escaped_control_case(self):
    """Control characters travel escaped in JSON and come back decoded.
    (U+0000 is left out: jansson refuses "\\u0000" without JSON_ALLOW_NUL,
    so the server answers bad_json; a JSON-level choice, not RFC 6455.)"""
    c = self.ws()
    text = "".join(chr(i) for i in range(1, 32)) + "\"\\"
    self.assertEqual(c.echo(text), text)


add_case(Utf8, "6_02_control_characters_and_quotes_round_trip", escaped_control_case)


def raw_nul_case(self):
    """A NUL byte is valid UTF-8: no 1007. Raw in a JSON string it is not
    JSON, so the answer is the bad_json error and the connection lives."""
    c = self.ws()
    c.send_frame(OP_TEXT, publish_bytes(c.room, b"a\x00b", next_pid()))
    c.expect_json(type="error", code="bad_json")
    self.assert_usable(c)


add_case(Utf8, "6_02_raw_nul_byte_is_valid_utf8_but_bad_json", raw_nul_case)


def invalid_case(self, raw, split):
    c = self.ws()
    payload = publish_bytes(c.room, b"ok" + raw + b"ok", next_pid())
    if split is None:
        c.send_frame(OP_TEXT, payload)
    else:
        at = payload.index(b"ok" + raw) + 2 + split
        c.send(fragments(payload, split_at(payload, [at])))
    c.expect_close(1007)


INVALID = {
    "overlong_2_byte_nul_C0_80": b"\xc0\x80",
    "overlong_2_byte_slash_C0_AF": b"\xc0\xaf",
    "overlong_2_byte_max_C1_BF": b"\xc1\xbf",
    "overlong_3_byte_nul_E0_80_80": b"\xe0\x80\x80",
    "overlong_3_byte_slash_E0_80_AF": b"\xe0\x80\xaf",
    "overlong_3_byte_max_E0_9F_BF": b"\xe0\x9f\xbf",
    "overlong_4_byte_nul_F0_80_80_80": b"\xf0\x80\x80\x80",
    "overlong_4_byte_max_F0_8F_BF_BF": b"\xf0\x8f\xbf\xbf",
    "five_byte_form_F8": b"\xf8\x88\x80\x80\x80",
    "six_byte_form_FC": b"\xfc\x84\x80\x80\x80\x80",
    "surrogate_U+D800": b"\xed\xa0\x80",
    "surrogate_U+DB7F": b"\xed\xad\xbf",
    "surrogate_U+DB80": b"\xed\xae\x80",
    "surrogate_U+DBFF": b"\xed\xaf\xbf",
    "surrogate_U+DC00": b"\xed\xb0\x80",
    "surrogate_U+DFFF": b"\xed\xbf\xbf",
    "surrogate_pair_D800_DC00": b"\xed\xa0\x80\xed\xb0\x80",
    "over_max_U+110000_F4_90": b"\xf4\x90\x80\x80",
    "over_max_F5": b"\xf5\x80\x80\x80",
    "over_max_F7_BF_BF_BF": b"\xf7\xbf\xbf\xbf",
    "lone_continuation_80": b"\x80",
    "lone_continuation_BF": b"\xbf",
    "two_continuations_80_BF": b"\x80\xbf",
    "continuation_after_complete_char": b"\xc3\xa9\x80",
    "truncated_2_byte_then_ascii": b"\xc2A",
    "truncated_3_byte_then_ascii": b"\xe2\x82A",
    "truncated_4_byte_then_ascii": b"\xf0\x9f\x98A",
    "start_byte_then_start_byte": b"\xc3\xc3\xa9",
    "byte_FE": b"\xfe",
    "byte_FF": b"\xff",
    "bytes_FE_FE_FF_FF": b"\xfe\xfe\xff\xff",
}

for name, raw in INVALID.items():
    add_case(Utf8, f"6_03_invalid_{name}_is_1007", invalid_case, raw, None)

# The same bytes with a fragment boundary inside the bad sequence.
SPLIT_INVALID = ("overlong_3_byte_nul_E0_80_80", "surrogate_U+D800", "over_max_U+110000_F4_90",
                 "surrogate_pair_D800_DC00", "truncated_4_byte_then_ascii",
                 "overlong_2_byte_nul_C0_80")
for name in SPLIT_INVALID:
    raw = INVALID[name]
    for at in range(1, len(raw)):
        add_case(Utf8, f"6_04_invalid_{name}_split_after_{at}_is_1007", invalid_case, raw, at)


def truncated_at_end_case(self, tail, fragmented):
    """The message's last bytes are an incomplete sequence."""
    c = self.ws()
    payload = c.publish_payload("x", next_pid()) + tail
    if fragmented:
        c.send(fragments(payload, split_at(payload, [len(payload) - len(tail)])))
    else:
        c.send_frame(OP_TEXT, payload)
    c.expect_close(1007)


for tail, name in ((b"\xc2", "C2"), (b"\xe0\xa0", "E0_A0"), (b"\xf0\x90\x80", "F0_90_80")):
    add_case(Utf8, f"6_05_truncated_{name}_at_message_end_is_1007", truncated_at_end_case, tail,
             False)
    add_case(Utf8, f"6_05_truncated_{name}_alone_in_last_fragment_is_1007", truncated_at_end_case,
             tail, True)


def fail_fast_case(self):
    """Bad UTF-8 in the first fragment closes at once: the server does not
    wait for the rest of the message (it never comes here)."""
    c = self.ws()
    c.send_frame(OP_TEXT, b'{"type":"publish","data":"\xff', fin=False)
    c.expect_close(1007)


add_case(Utf8, "6_06_invalid_in_first_fragment_closes_before_message_ends", fail_fast_case)


def valid_prefix_then_ping_case(self):
    """A fragment ending in the middle of a valid sequence is not an error:
    a ping after it is answered, and the completed message echoed."""
    c = self.ws()
    pid = next_pid()
    payload = c.publish_payload("\U0001f600", pid)
    at = payload.index("\U0001f600".encode()) + 2
    c.send(frame(OP_TEXT, payload[:at], fin=False) + frame(OP_PING, b"mid"))
    c.expect_frame(OP_PONG, b"mid")
    c.send_frame(OP_CONT, payload[at:])
    self.assertEqual(c.read_message(pid), "\U0001f600")


add_case(Utf8, "6_07_fragment_ending_mid_character_is_not_an_error", valid_prefix_then_ping_case)


def split_valid_case(self, char, cuts):
    """A valid multi-byte character cut across fragments at the given
    offsets inside it."""
    c = self.ws()
    pid = next_pid()
    text = "<" + char + ">"
    payload = c.publish_payload(text, pid)
    start = payload.index(char.encode())
    c.send(fragments(payload, split_at(payload, [start + k for k in cuts])))
    self.assertEqual(c.read_message(pid), text)


for char, name in (("\u00e9", "2_byte_U+00E9"), ("\u07ff", "2_byte_U+07FF"),
                   ("\u20ac", "3_byte_U+20AC"), ("\uffff", "3_byte_U+FFFF"),
                   ("\U0001f600", "4_byte_U+1F600"), ("\U0010ffff", "4_byte_U+10FFFF")):
    n = len(char.encode())
    for k in range(1, n):
        add_case(Utf8, f"6_08_valid_{name}_split_after_byte_{k}", split_valid_case, char, [k])
for cuts in ([1, 2], [1, 3], [2, 3], [1, 2, 3], [1, 1, 2, 2, 3, 3]):
    label = "_".join(map(str, cuts))
    add_case(Utf8, f"6_09_valid_4_byte_U+1F600_split_at_{label}", split_valid_case, "\U0001f600",
             cuts)


if __name__ == "__main__":
    tap.main()
