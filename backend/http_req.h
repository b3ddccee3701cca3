/*
 * HTTP/1.1 request reader on llhttp, sans-I/O: feed it the bytes read from a
 * socket, it says "need more", "complete" or which error to answer with. The
 * request line, the headers and a small body land in one arena allocated
 * once per connection; nothing else is allocated per request. Keep-alive:
 * the reader stops at the end of each request, and http_req_reset() readies
 * it for the next one. Not a router, not a response writer beyond the
 * one-line error answers every endpoint shares.
 */
#ifndef RR_HTTP_REQ_H
#define RR_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

/* Limits of one request. Each error below names the limit it enforces. */
struct http_limits {
    size_t max_head;    /* request line + header lines on the wire, and the names + values
                           (repeated headers joined) as stored: HTTP_REQ_ERR_HEAD_TOO_LARGE */
    size_t max_headers; /* header lines: HTTP_REQ_ERR_TOO_MANY_HEADERS */
    size_t max_url;     /* request target: HTTP_REQ_ERR_URL_TOO_LONG */
    size_t max_body;    /* body after de-chunking: HTTP_REQ_ERR_BODY_TOO_LARGE */
};

#define HTTP_LIMITS_DEFAULT                                                                        \
    {                                                                                              \
        .max_head = 8192, .max_headers = 64, .max_url = 2048, .max_body = 4096                     \
    }

enum http_req_status {
    HTTP_REQ_NEED_MORE, /* every byte fed was consumed; feed more */
    HTTP_REQ_COMPLETE,  /* one request is complete; bytes after it were not consumed */
    HTTP_REQ_ERROR,     /* answer http_req_error_status() and close */
};

enum http_req_err {
    HTTP_REQ_ERR_NONE = 0,
    HTTP_REQ_ERR_MALFORMED,         /* 400: not HTTP/1.x syntax */
    HTTP_REQ_ERR_BODY_TOO_LARGE,    /* 413 */
    HTTP_REQ_ERR_URL_TOO_LONG,      /* 414 */
    HTTP_REQ_ERR_HEAD_TOO_LARGE,    /* 431 */
    HTTP_REQ_ERR_TOO_MANY_HEADERS,  /* 431 */
    HTTP_REQ_ERR_METHOD,            /* 501: not GET, HEAD or POST */
    HTTP_REQ_ERR_TRANSFER_ENCODING, /* 501: a transfer coding other than chunked */
};

enum http_method { HTTP_M_OTHER, HTTP_M_GET, HTTP_M_HEAD, HTTP_M_POST };

struct http_req;

/* One allocation for the reader and its arena; NULL limits means
 * HTTP_LIMITS_DEFAULT. Returns NULL when out of memory. */
struct http_req *http_req_new(const struct http_limits *lim);
void http_req_free(struct http_req *r);

/* Forgets the current request (after COMPLETE, for keep-alive). */
void http_req_reset(struct http_req *r);

/* Parses len more bytes. *consumed says how many were used: all of them on
 * NEED_MORE, up to the end of the request on COMPLETE. After COMPLETE or
 * ERROR, further calls return the same result until http_req_reset(). */
enum http_req_status http_req_feed(struct http_req *r, const char *data, size_t len,
                                   size_t *consumed);

enum http_req_err http_req_error(const struct http_req *r);
int http_req_error_status(enum http_req_err e);
/* A one-line reason for the error answer's body ("header section too large"). */
const char *http_req_error_reason(enum http_req_err e);

/* After COMPLETE: */
enum http_method http_req_method(const struct http_req *r);
/* 10 for HTTP/1.0, 11 for HTTP/1.1. */
int http_req_version(const struct http_req *r);
/* The request target as sent, NUL-terminated: path, then '?' and the query when present. */
const char *http_req_url(const struct http_req *r, size_t *len);
/* The path part of the URL (not decoded, no query). */
const char *http_req_path(const struct http_req *r, size_t *len);
/* Whether the connection may carry another request (HTTP/1.1 without "Connection: close",
 * no upgrade). */
bool http_req_keep_alive(const struct http_req *r);
const char *http_req_body(const struct http_req *r, size_t *len);

/* The value of header `name` (any case), trimmed, NUL-terminated; repeated
 * headers are joined with ", " (RFC 7230 §3.2.2). NULL when absent. */
const char *http_req_header(const struct http_req *r, const char *name, size_t *len);

enum http_qarg {
    HTTP_QARG_FOUND,
    HTTP_QARG_ABSENT,
    HTTP_QARG_MALFORMED, /* a '%' not followed by two hex digits */
    HTTP_QARG_TOO_LONG,  /* the decoded value does not fit */
};

/* The first `name` argument of a query string (the part after '?'),
 * percent-decoded with '+' as a space (as browsers' URLSearchParams write
 * it). "a&name&b" finds name with an empty value. The key is matched after
 * decoding too. out receives the value and a NUL: cap must leave room for it. */
enum http_qarg http_query_arg(const char *query, size_t qlen, const char *name, char *out,
                              size_t cap, size_t *out_len);

/* http_query_arg() on the request's own query, decoded into the request's
 * arena: *val stays valid until http_req_reset(). The arena holds one URL's
 * worth of decoded bytes, so each distinct argument can be read once. */
enum http_qarg http_req_query_arg(struct http_req *r, const char *name, const char **val,
                                  size_t *len);

/* The value of cookie `name` in a Cookie header value (pairs separated by ';'
 * or, when headers were joined, ','), as sent: quotes are left for the
 * caller. The first match wins. */
bool http_cookie(const char *hdr, size_t len, const char *name, const char **val, size_t *vlen);

/* Writes an error answer: status line, Content-Type: text/plain,
 * Content-Length, Connection: close, extra_headers (whole "Name: value\r\n"
 * lines, or NULL), and `reason` plus a newline as the body. Returns the
 * length, or 0 when cap is too small. */
size_t http_error_response(char *buf, size_t cap, int status, const char *extra_headers,
                           const char *reason);

/* RFC 7230 grammar: a token character (§3.2.6), optional white space (§3.2.3). */
bool http_tchar(char c);
static inline bool http_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The reason phrase of a status code this server sends ("Bad Request"). */
const char *http_status_text(int status);

#endif
