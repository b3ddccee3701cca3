"""Conformance 3.x: RSV bits. No extension is negotiated, so any RSV bit on
any frame (data, continuation or control) is 1002, also after the
connection was used and in the middle of a fragmented message."""
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2, RSV3,
                      ConformanceCase, add_case, close_payload, frame, next_pid)
import tap


class ReservedBits(ConformanceCase):
    pass


BITS = (("rsv1", RSV1), ("rsv2", RSV2), ("rsv3", RSV3), ("rsv1_rsv3", RSV1 | RSV3),
        ("all_rsv", RSV1 | RSV2 | RSV3))


def rsv_case(self, rsv, kind):
    c = self.ws()
    if kind == "text":
        c.send(frame(OP_TEXT, c.publish_payload("rsv", next_pid()), rsv=rsv))
    elif kind == "text_after_echo":
        self.assert_usable(c)
        c.send(frame(OP_TEXT, c.publish_payload("rsv", next_pid()), rsv=rsv))
    elif kind == "continuation":
        p = c.publish_payload("rsv", next_pid())
        c.send(frame(OP_TEXT, p[:10], fin=False) + frame(OP_CONT, p[10:], rsv=rsv))
    elif kind == "binary":
        c.send(frame(OP_BINARY, b"\x01\x02", rsv=rsv))
    elif kind == "ping":
        c.send(frame(OP_PING, b"rsv", rsv=rsv))
    elif kind == "pong":
        c.send(frame(OP_PONG, b"rsv", rsv=rsv))
    elif kind == "close":
        c.send(frame(OP_CLOSE, close_payload(1000), rsv=rsv))
    c.expect_close(1002)


for bname, bits in BITS:
    for kind in ("text", "ping", "close"):
        add_case(ReservedBits, f"3_01_{bname}_on_{kind}_is_1002", rsv_case, bits, kind)
for bname, bits in BITS[:3]:
    for kind in ("text_after_echo", "continuation", "binary", "pong"):
        add_case(ReservedBits, f"3_02_{bname}_on_{kind}_is_1002", rsv_case, bits, kind)


def rsv_ping_between_fragments_case(self):
    """An RSV ping between two fragments fails the connection: no pong, no message."""
    c = self.ws()
    p = c.publish_payload("never", next_pid())
    c.send(frame(OP_TEXT, p[:10], fin=False) + frame(OP_PING, b"x", rsv=RSV2) +
           frame(OP_CONT, p[10:]))
    c.expect_close(1002)


add_case(ReservedBits, "3_03_rsv_ping_between_fragments_is_1002", rsv_ping_between_fragments_case)


if __name__ == "__main__":
    tap.main()
