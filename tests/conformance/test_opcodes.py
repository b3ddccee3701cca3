"""Conformance 4.x: opcodes. Reserved data opcodes 3-7 and control opcodes
0xB-0xF are 1002 with or without payload; a binary message is 1003 (the
protocol is JSON text), once it is complete."""
from wsclient import (OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ConformanceCase, add_case,
                      frame, next_pid)
import tap


class Opcodes(ConformanceCase):
    def test_4_03_reserved_opcode_after_a_good_message_is_1002(self):
        c = self.ws()
        self.assert_usable(c)
        c.send_frame(0x5, b"late")
        c.expect_close(1002)

    def test_4_03_reserved_opcode_inside_fragmented_message_is_1002(self):
        c = self.ws()
        p = c.publish_payload("never", next_pid())
        c.send(frame(OP_TEXT, p[:8], fin=False) + frame(0x3, b"x"))
        c.expect_close(1002)

    def test_4_03_reserved_opcode_after_a_ping_in_same_write(self):
        c = self.ws()
        c.send(frame(OP_PING, b"first") + frame(0xB, b""))
        c.expect_frame(OP_PONG, b"first")
        c.expect_close(1002)

    def test_4_03_reserved_opcode_without_fin_is_1002(self):
        c = self.ws()
        c.send_frame(0x4, b"x", fin=False)
        c.expect_close(1002)


def reserved_opcode_case(self, opcode, payload):
    c = self.ws()
    c.send_frame(opcode, payload)
    c.expect_close(1002)


for op in list(range(0x3, 0x8)) + list(range(0xB, 0x10)):
    kind = "data" if op < 8 else "control"
    add_case(Opcodes, f"4_01_reserved_{kind}_opcode_{op:#x}_empty_is_1002", reserved_opcode_case,
             op, b"")
    add_case(Opcodes, f"4_02_reserved_{kind}_opcode_{op:#x}_with_payload_is_1002",
             reserved_opcode_case, op, b"reserved payload")


def binary_case(self, pieces):
    c = self.ws()
    for i, p in enumerate(pieces):
        c.send_frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1)
    c.expect_close(1003)


add_case(Opcodes, "4_04_binary_empty_is_1003", binary_case, [b""])
add_case(Opcodes, "4_04_binary_json_is_1003", binary_case, [b'{"type":"ping"}'])
add_case(Opcodes, "4_04_binary_not_utf8_is_1003_not_1007", binary_case, [b"\xff\xfe\x00"])
add_case(Opcodes, "4_04_binary_1000_bytes_is_1003", binary_case, [bytes(range(250)) * 4])
add_case(Opcodes, "4_04_binary_in_three_fragments_is_1003", binary_case, [b"ab", b"\xff", b"cd"])


def binary_fragment_then_ping_case(self):
    """The first fragment of a binary message does not close yet: a ping
    after it is answered, the close comes with the last fragment."""
    c = self.ws()
    c.send_frame(OP_BINARY, b"part", fin=False)
    c.send_frame(OP_PING, b"still open")
    c.expect_frame(OP_PONG, b"still open")
    c.send_frame(OP_CONT, b"end")
    c.expect_close(1003)


add_case(Opcodes, "4_05_binary_closes_when_its_message_completes", binary_fragment_then_ping_case)


def text_after_binary_case(self):
    c = self.ws()
    c.send(frame(OP_BINARY, b"bin") + frame(OP_TEXT, c.publish_payload("x", next_pid())))
    c.expect_close(1003)


add_case(Opcodes, "4_06_text_after_binary_not_delivered", text_after_binary_case)


if __name__ == "__main__":
    tap.main()
