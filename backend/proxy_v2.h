/*
 * PROXY protocol header reader (HAProxy's proxy-protocol.txt): version 2
 * (binary, what `send-proxy-v2` sends) and version 1 (the text line of
 * `send-proxy`). Sans-I/O and stateless: pass everything received so far;
 * it says how many bytes the header takes once it is whole. Whether a
 * header is required, and from which peers, is the caller's policy.
 */
#ifndef RR_PROXY_V2_H
#define RR_PROXY_V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Bytes after the 16-byte v2 header (addresses and TLVs) accepted; more is an error. */
#define PP2_MAX_PAYLOAD 1024
#define PP2_MAX_HEADER (16 + PP2_MAX_PAYLOAD)
/* The longest v1 line, CRLF included. */
#define PP1_MAX_LINE 107

enum pp2_result {
    PP2_NEED_MORE, /* a header has begun (or nothing yet): read more */
    PP2_OK,        /* header parsed: drop `consumed` bytes */
    PP2_NOT_PROXY, /* the bytes do not begin with a PROXY header */
    PP2_ERROR,     /* a PROXY header that breaks the protocol: close */
};

struct pp2_info {
    size_t consumed; /* length of the header */
    int version;     /* 1 or 2 */
    /* LOCAL command (the proxy's own health check): use the socket's addresses. */
    bool local;
    /* The client's and the proxy's listening addresses; ss_family AF_UNSPEC when the header
     * carries none (LOCAL, v2 UNSPEC/UNIX/UDP families, v1 UNKNOWN): use the socket's. */
    struct sockaddr_storage src, dst;
};

enum pp2_result pp2_parse(const uint8_t *buf, size_t len, struct pp2_info *out);

#endif
