/*
 * RFC 6455 framing, as pure code: frame headers, a server-side message reader
 * fed with bytes, and frame builders. No sockets, no clock; the reader's only
 * allocation is its reassembly buffer.
 *
 * Not here: the HTTP upgrade, permessage-deflate (the reader reports RSV1 and
 * leaves the inflating to its caller) and the connection's I/O (ws_conn.c).
 */
#ifndef RR_WS_FRAME_H
#define RR_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/utf8.h"

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 §7.4.1, IANA registry). */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never on the wire: a close frame without a code */
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_RESTART = 1012,
};

#define WS_CONTROL_MAX 125u      /* payload of a control frame */
#define WS_CLOSE_REASON_MAX 123u /* WS_CONTROL_MAX minus the 2-byte code */
#define WS_SERVER_HEADER_MAX 10u /* unmasked: 2 + 8-byte length */
#define WS_CLIENT_HEADER_MAX 14u /* masked: 2 + 8-byte length + 4-byte key */
/* A whole server control frame. */
#define WS_CONTROL_FRAME_MAX (2u + WS_CONTROL_MAX)

/*
 * Why a peer's bytes were refused. ws_err_close_code gives the close code to
 * send, ws_err_text a short reason for logs, metrics and the close frame.
 */
enum ws_err {
    WS_ERR_NONE = 0,
    WS_ERR_UNMASKED,           /* 1002: a client frame without a mask */
    WS_ERR_RSV_BITS,           /* 1002: an RSV bit no extension gave a meaning */
    WS_ERR_RESERVED_OPCODE,    /* 1002: opcodes 3-7 and 0xB-0xF */
    WS_ERR_CONTROL_TOO_LONG,   /* 1002: control payload over 125 bytes */
    WS_ERR_CONTROL_FRAGMENTED, /* 1002: control frame without FIN */
    WS_ERR_LENGTH_TOP_BIT,     /* 1002: 64-bit length with its top bit set */
    WS_ERR_LENGTH_NOT_MINIMAL, /* 1002: length not in its shortest encoding */
    WS_ERR_CONT_WITHOUT_START, /* 1002: continuation frame with no message open */
    WS_ERR_DATA_IN_FRAGMENTED, /* 1002: text/binary frame while a message is open */
    WS_ERR_CLOSE_ONE_BYTE,     /* 1002: close payload of exactly 1 byte */
    WS_ERR_CLOSE_BAD_CODE,     /* 1002: close code a peer may not send */
    WS_ERR_CLOSE_BAD_UTF8,     /* 1007: close reason not UTF-8 */
    WS_ERR_BAD_UTF8,           /* 1007: text message not UTF-8 */
    WS_ERR_TOO_BIG,            /* 1009: message over max_message */
    WS_ERR_NO_MEMORY,          /* 1011: the reassembly buffer could not grow */
};

uint16_t ws_err_close_code(enum ws_err err);
const char *ws_err_text(enum ws_err err);

/* True for the codes a close frame may carry (RFC 6455 §7.4): 1000-1003,
 * 1007-1014 and 3000-4999. 1004-1006, 1015 and the rest are refused. */
bool ws_close_code_receivable(uint16_t code);

/* ---- frame headers ---- */

struct ws_frame_header {
    bool fin, rsv1, rsv2, rsv3, masked;
    uint8_t opcode;
    uint8_t mask[4];
    uint64_t len; /* payload bytes */
};

/*
 * Parses the header at the start of p. Returns its length (2..14) and fills
 * h, 0 when more bytes are needed, or -(enum ws_err) for a header that breaks
 * a rule of every role: reserved opcode, fragmented or over-long control
 * frame, 64-bit length with the top bit set, or a length that does not use
 * its minimal encoding (RFC 6455 §5.2 says "MUST"; we hold peers to it).
 * Masking and RSV bits depend on the role and extensions: see ws_reader.
 */
int ws_frame_header_parse(const uint8_t *p, size_t len, struct ws_frame_header *h);

/* XORs len bytes with the mask, p[0] being byte `offset` of the payload (so a
 * payload unmasked in pieces gets the right key bytes). */
void ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

/* ---- the server's message reader ---- */

enum ws_ev {
    WS_EV_NONE = 0, /* more bytes needed */
    WS_EV_TEXT,
    WS_EV_BINARY,
    WS_EV_PING,
    WS_EV_PONG,
    WS_EV_CLOSE,
    WS_EV_ERROR,
};

/*
 * One event. `data` is never NULL for TEXT, BINARY, PING, PONG and CLOSE
 * (the close reason), and stays valid until the next ws_reader_next call
 * (and as long as the caller leaves the consumed bytes of its buffer alone).
 */
struct ws_event {
    enum ws_ev type;
    const uint8_t *data;
    size_t len;
    bool rsv1;       /* TEXT/BINARY: the message is compressed (not UTF-8 checked) */
    uint16_t code;   /* CLOSE: the peer's code, WS_CLOSE_NO_STATUS if none; ERROR: code to send */
    enum ws_err err; /* ERROR */
};

/* Reassembly buffers larger than this are freed once their message is read. */
#define WS_READER_KEEP 16384u

/* Fields are the reader's own; embed it in the connection. */
struct ws_reader {
    size_t max_message; /* bytes of a message's payload, 0 = no limit */
    bool allow_rsv1;    /* permessage-deflate was negotiated */
    uint8_t state;
    enum ws_err err;
    struct ws_frame_header fh; /* the frame being read */
    uint64_t left;             /* its payload bytes not consumed yet */
    bool in_message;           /* a text/binary message is open */
    bool delivered;            /* the last event pointed into buf */
    uint8_t msg_opcode;
    bool msg_rsv1;
    struct ws_utf8 utf8;
    uint8_t *buf; /* reassembly: message bytes that did not arrive in one piece */
    size_t msg_len, cap;
    uint8_t *ctl; /* a control frame that arrived in pieces (WS_CONTROL_MAX bytes,
                   * allocated the first time one does: most connections never
                   * need it, and an idle connection should cost little) */
};

void ws_reader_init(struct ws_reader *r, size_t max_message, bool allow_rsv1);
void ws_reader_free(struct ws_reader *r);

/*
 * Reads from buf[0..len), the caller's unread input, and returns the next
 * event (also in ev->type). *used is how many bytes were consumed, for every
 * event including WS_EV_NONE: the caller drops them and offers the rest,
 * with more input appended, on the next call. WS_EV_NONE leaves fewer than
 * WS_CLIENT_HEADER_MAX bytes unconsumed: only an incomplete frame header is
 * ever left to the caller. The reader unmasks consumed bytes in place and
 * never writes the unconsumed ones.
 *
 * A frame wholly inside buf that is a whole message (or a control frame) is
 * handed out pointing into buf, with no copy. Other messages are gathered in
 * the reader's buffer, and text is UTF-8 checked as the bytes arrive.
 * max_message is checked against each frame's declared length as soon as
 * its header is read.
 *
 * After WS_EV_ERROR every call returns the same error; after WS_EV_CLOSE the
 * reader consumes and ignores all input (RFC 6455 §1.4).
 */
enum ws_ev ws_reader_next(struct ws_reader *r, uint8_t *buf, size_t len, size_t *used,
                          struct ws_event *ev);

/* ---- frame builders ---- */

/* Writes an unmasked (server) frame header; returns its length (2, 4 or 10). */
size_t ws_frame_header_build(uint8_t out[WS_SERVER_HEADER_MAX], bool fin, uint8_t opcode, bool rsv1,
                             uint64_t payload_len);

/* A whole server close frame: the code and reason (NUL-terminated, may be
 * NULL), or an empty payload when code is 0. Returns the frame's length, or 0
 * when it does not fit in cap or the reason is over WS_CLOSE_REASON_MAX. */
size_t ws_frame_build_close(uint8_t *out, size_t cap, uint16_t code, const char *reason);

/* A whole server ping or pong. Returns the frame's length, or 0 when opcode
 * is not PING/PONG, len is over WS_CONTROL_MAX, or it does not fit in cap. */
size_t ws_frame_build_control(uint8_t *out, size_t cap, uint8_t opcode, const uint8_t *payload,
                              size_t len);

/* A whole masked (client) frame, for the load generator and tests. Returns
 * its length, or 0 when it does not fit in cap. */
size_t ws_frame_build_masked(uint8_t *out, size_t cap, bool fin, uint8_t opcode,
                             const uint8_t *payload, size_t len, const uint8_t mask[4]);

#endif
