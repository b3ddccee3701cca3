/*
 * HTTP/1.1 request reader, see http_req.h. llhttp does the syntax; this file
 * keeps what it reports inside fixed bounds and maps every failure to the
 * status the client is answered with. Arena layout, one allocation:
 * struct, header table, URL, query scratch, header bytes, body.
 */
#include "backend/http_req.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <strings.h>

struct http_hdr {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
    bool dup; /* joined into an earlier entry of the same name */
};

struct http_req {
    llhttp_t parser;
    struct http_limits lim;
    size_t map_size; /* the mapping that holds this reader and its arena */
    enum http_req_status state;
    enum http_req_err err;
    size_t head_wire; /* bytes fed while the head was incomplete */
    bool headers_done;
    bool keep_alive;
    bool in_field; /* the last header callback was a name byte span */

    char *url;
    size_t url_len;
    char *scratch;
    size_t scratch_used;
    char *hbytes;
    size_t hbytes_used;
    char *body;
    size_t body_len;
    size_t nhdrs;
    struct http_hdr hdrs[];
};

static struct http_req *req_of(llhttp_t *p)
{
    return p->data;
}

static int fail(struct http_req *r, enum http_req_err e)
{
    r->err = e;
    return HPE_USER;
}

static int on_method_complete(llhttp_t *p)
{
    switch (llhttp_get_method(p)) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_POST:
        return 0;
    default:
        return fail(req_of(p), HTTP_REQ_ERR_METHOD);
    }
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);
    if (len > r->lim.max_url - r->url_len)
        return fail(r, HTTP_REQ_ERR_URL_TOO_LONG);
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

/* Appends header bytes; the names + values stored count against max_head. */
static int hput(struct http_req *r, const char *at, size_t len)
{
    if (len > r->lim.max_head - r->hbytes_used)
        return fail(r, HTTP_REQ_ERR_HEAD_TOO_LARGE);
    memcpy(r->hbytes + r->hbytes_used, at, len);
    r->hbytes_used += len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);
    if (!r->in_field) {
        if (r->nhdrs == r->lim.max_headers)
            return fail(r, HTTP_REQ_ERR_TOO_MANY_HEADERS);
        r->hdrs[r->nhdrs] = (struct http_hdr){.name = r->hbytes + r->hbytes_used};
        r->nhdrs++;
        r->in_field = true;
    }
    r->hdrs[r->nhdrs - 1].name_len += len;
    return hput(r, at, len);
}

bool http_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* llhttp's loose mode lets white space into a name; RFC 7230 §3.2.4 wants a 400. */
static int on_header_field_complete(llhttp_t *p)
{
    struct http_req *r = req_of(p);
    struct http_hdr *h = &r->hdrs[r->nhdrs - 1];

    r->in_field = false;
    for (size_t i = 0; i < h->name_len; i++) {
        if (!http_tchar(h->name[i]))
            return fail(r, HTTP_REQ_ERR_MALFORMED);
    }
    if (hput(r, "", 1) != 0)
        return HPE_USER;
    h->value = r->hbytes + r->hbytes_used;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);
    r->hdrs[r->nhdrs - 1].value_len += len;
    return hput(r, at, len);
}

/* llhttp hands the value over with its trailing white space: trim both ends. */
static int on_header_value_complete(llhttp_t *p)
{
    struct http_req *r = req_of(p);
    struct http_hdr *h = &r->hdrs[r->nhdrs - 1];
    while (h->value_len > 0 && http_ows(h->value[0])) {
        h->value++;
        h->value_len--;
    }
    while (h->value_len > 0 && http_ows(h->value[h->value_len - 1]))
        h->value_len--;
    if (hput(r, "", 1) != 0)
        return HPE_USER;
    h->value[h->value_len] = '\0';
    return 0;
}

/* Repeated headers become one value joined with ", " (RFC 7230 §3.2.2),
 * copied after the stored headers: lookups then see one entry per name. */
static int join_repeated(struct http_req *r)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        struct http_hdr *h = &r->hdrs[i];
        size_t total = h->value_len;
        bool repeated = false;

        if (h->dup)
            continue;
        for (size_t j = i + 1; j < r->nhdrs; j++) {
            if (strcasecmp(h->name, r->hdrs[j].name) == 0) {
                total += 2 + r->hdrs[j].value_len;
                repeated = true;
            }
        }
        if (!repeated)
            continue;
        if (total + 1 > r->lim.max_head - r->hbytes_used)
            return fail(r, HTTP_REQ_ERR_HEAD_TOO_LARGE);
        char *out = r->hbytes + r->hbytes_used;
        memcpy(out, h->value, h->value_len);
        size_t n = h->value_len;
        for (size_t j = i + 1; j < r->nhdrs; j++) {
            struct http_hdr *d = &r->hdrs[j];
            if (strcasecmp(h->name, d->name) != 0)
                continue;
            memcpy(out + n, ", ", 2);
            memcpy(out + n + 2, d->value, d->value_len);
            n += 2 + d->value_len;
            d->dup = true;
        }
        out[n] = '\0';
        r->hbytes_used += n + 1;
        h->value = out;
        h->value_len = n;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_req *r = req_of(p);
    size_t len;

    r->headers_done = true;
    if (join_repeated(r) != 0)
        return -1;
    /* A final coding other than chunked leaves the body length unknown: 400 (RFC 7230
     * §3.3.3). Any coding before chunked is one this server does not implement (§3.3.1). */
    const char *te = http_req_header(r, "transfer-encoding", &len);
    if (te) {
        const char *last = memrchr(te, ',', len);
        last = last ? last + 1 : te;
        while (http_ows(*last))
            last++;
        if (strcasecmp(last, "chunked") != 0) {
            fail(r, HTTP_REQ_ERR_MALFORMED);
            return -1;
        }
        if (last != te) {
            fail(r, HTTP_REQ_ERR_TRANSFER_ENCODING);
            return -1;
        }
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->lim.max_body) {
        fail(r, HTTP_REQ_ERR_BODY_TOO_LARGE);
        return -1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_req *r = req_of(p);
    if (len > r->lim.max_body - r->body_len)
        return fail(r, HTTP_REQ_ERR_BODY_TOO_LARGE);
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_req *r = req_of(p);
    r->body[r->body_len] = '\0';
    r->keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p);
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_method_complete = on_method_complete,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

struct http_req *http_req_new(const struct http_limits *lim)
{
    static const struct http_limits defaults = HTTP_LIMITS_DEFAULT;
    if (!lim)
        lim = &defaults;
    size_t bytes = 2 * (lim->max_url + 1) + lim->max_head + lim->max_body + 1;
    size_t size = sizeof(struct http_req) + lim->max_headers * sizeof(struct http_hdr) + bytes;
    /* Mapped, not malloc'd: a reader lives only until its handshake is done,
     * and thousands of ~20 KB blocks freed from the heap after a reconnect
     * storm would leave the long-lived small objects allocated meanwhile
     * scattered over their pages (measured: 1.4 KB instead of 1 KB per idle
     * connection). munmap gives the pages back at once. */
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return NULL;
    struct http_req *r = mem;
    r->map_size = size;
    r->lim = *lim;
    r->url = (char *)(r->hdrs + lim->max_headers);
    r->scratch = r->url + lim->max_url + 1;
    r->hbytes = r->scratch + lim->max_url + 1;
    r->body = r->hbytes + lim->max_head;
    llhttp_init(&r->parser, HTTP_REQUEST, &settings);
    r->parser.data = r;
    http_req_reset(r);
    return r;
}

void http_req_free(struct http_req *r)
{
    if (r)
        munmap(r, r->map_size);
}

void http_req_reset(struct http_req *r)
{
    llhttp_reset(&r->parser);
    r->state = HTTP_REQ_NEED_MORE;
    r->err = HTTP_REQ_ERR_NONE;
    r->head_wire = 0;
    r->headers_done = false;
    r->keep_alive = false;
    r->in_field = false;
    r->url_len = 0;
    r->url[0] = '\0';
    r->scratch_used = 0;
    r->hbytes_used = 0;
    r->body_len = 0;
    r->body[0] = '\0';
    r->nhdrs = 0;
}

static enum http_req_err from_llhttp(llhttp_errno_t e)
{
    switch (e) {
    case HPE_INVALID_METHOD:    /* RFC 7231 §4.1: an unrecognized method is 501 */
    case HPE_PAUSED_H2_UPGRADE: /* the HTTP/2 preface */
        return HTTP_REQ_ERR_METHOD;
    default:
        return HTTP_REQ_ERR_MALFORMED;
    }
}

enum http_req_status http_req_feed(struct http_req *r, const char *data, size_t len,
                                   size_t *consumed)
{
    size_t off = 0;

    while (r->state == HTTP_REQ_NEED_MORE && off < len) {
        size_t n = len - off;
        if (!r->headers_done) {
            size_t room = r->lim.max_head - r->head_wire;
            if (room == 0) {
                r->err = HTTP_REQ_ERR_HEAD_TOO_LARGE;
                r->state = HTTP_REQ_ERROR;
                break;
            }
            if (n > room)
                n = room;
            r->head_wire += n;
        }
        llhttp_errno_t e = llhttp_execute(&r->parser, data + off, n);
        if (e == HPE_OK) {
            off += n;
        } else if (e == HPE_PAUSED && r->err == HTTP_REQ_ERR_NONE) {
            off = (size_t)(llhttp_get_error_pos(&r->parser) - data);
            r->state = HTTP_REQ_COMPLETE;
        } else {
            if (r->err == HTTP_REQ_ERR_NONE)
                r->err = from_llhttp(e);
            r->state = HTTP_REQ_ERROR;
        }
    }
    *consumed = r->state == HTTP_REQ_ERROR ? 0 : off;
    return r->state;
}

enum http_req_err http_req_error(const struct http_req *r)
{
    return r->err;
}

int http_req_error_status(enum http_req_err e)
{
    switch (e) {
    case HTTP_REQ_ERR_NONE:
        return 200;
    case HTTP_REQ_ERR_MALFORMED:
        return 400;
    case HTTP_REQ_ERR_BODY_TOO_LARGE:
        return 413;
    case HTTP_REQ_ERR_URL_TOO_LONG:
        return 414;
    case HTTP_REQ_ERR_HEAD_TOO_LARGE:
    case HTTP_REQ_ERR_TOO_MANY_HEADERS:
        return 431;
    case HTTP_REQ_ERR_METHOD:
    case HTTP_REQ_ERR_TRANSFER_ENCODING:
        return 501;
    }
    return 400;
}

const char *http_req_error_reason(enum http_req_err e)
{
    switch (e) {
    case HTTP_REQ_ERR_NONE:
        return "ok";
    case HTTP_REQ_ERR_MALFORMED:
        return "malformed request";
    case HTTP_REQ_ERR_BODY_TOO_LARGE:
        return "request body too large";
    case HTTP_REQ_ERR_URL_TOO_LONG:
        return "request target too long";
    case HTTP_REQ_ERR_HEAD_TOO_LARGE:
        return "header section too large";
    case HTTP_REQ_ERR_TOO_MANY_HEADERS:
        return "too many header fields";
    case HTTP_REQ_ERR_METHOD:
        return "method not implemented";
    case HTTP_REQ_ERR_TRANSFER_ENCODING:
        return "transfer coding not implemented";
    }
    return "bad request";
}

enum http_method http_req_method(const struct http_req *r)
{
    switch (r->parser.method) {
    case HTTP_GET:
        return HTTP_M_GET;
    case HTTP_HEAD:
        return HTTP_M_HEAD;
    case HTTP_POST:
        return HTTP_M_POST;
    default:
        return HTTP_M_OTHER;
    }
}

int http_req_version(const struct http_req *r)
{
    return r->parser.http_major * 10 + r->parser.http_minor;
}

const char *http_req_url(const struct http_req *r, size_t *len)
{
    *len = r->url_len;
    return r->url;
}

const char *http_req_path(const struct http_req *r, size_t *len)
{
    const char *q = memchr(r->url, '?', r->url_len);
    *len = q ? (size_t)(q - r->url) : r->url_len;
    return r->url;
}

bool http_req_keep_alive(const struct http_req *r)
{
    return r->keep_alive;
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

const char *http_req_header(const struct http_req *r, const char *name, size_t *len)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        const struct http_hdr *h = &r->hdrs[i];
        if (!h->dup && strcasecmp(h->name, name) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    *len = 0;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one form-urlencoded byte at s[*i] (< end); -1 on a bad escape. */
static int decode_at(const char *s, size_t *i, size_t end)
{
    char c = s[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return (unsigned char)c;
    }
    if (end - *i < 3)
        return -1;
    int hi = hexval(s[*i + 1]), lo = hexval(s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 3;
    return hi << 4 | lo;
}

static bool key_is(const char *k, size_t klen, const char *name)
{
    size_t i = 0, j = 0;
    while (i < klen) {
        int c = decode_at(k, &i, klen);
        if (c < 0 || name[j] == '\0' || (unsigned char)name[j] != c)
            return false;
        j++;
    }
    return name[j] == '\0';
}

enum http_qarg http_query_arg(const char *query, size_t qlen, const char *name, char *out,
                              size_t cap, size_t *out_len)
{
    const char *p = query, *end = query + qlen;

    *out_len = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;

        if (key_is(p, (size_t)(ke - p), name)) {
            const char *v = eq ? eq + 1 : pe;
            size_t vlen = (size_t)(pe - v), i = 0, n = 0;
            while (i < vlen) {
                int c = decode_at(v, &i, vlen);
                if (c < 0)
                    return HTTP_QARG_MALFORMED;
                if (n + 1 >= cap)
                    return HTTP_QARG_TOO_LONG;
                out[n++] = (char)c;
            }
            if (cap == 0)
                return HTTP_QARG_TOO_LONG;
            out[n] = '\0';
            *out_len = n;
            return HTTP_QARG_FOUND;
        }
        p = pe + 1;
    }
    return HTTP_QARG_ABSENT;
}

enum http_qarg http_req_query_arg(struct http_req *r, const char *name, const char **val,
                                  size_t *len)
{
    const char *q = memchr(r->url, '?', r->url_len);
    char *out = r->scratch + r->scratch_used;

    *val = NULL;
    *len = 0;
    if (!q)
        return HTTP_QARG_ABSENT;
    q++;
    enum http_qarg res = http_query_arg(q, (size_t)(r->url + r->url_len - q), name, out,
                                        r->lim.max_url + 1 - r->scratch_used, len);
    if (res == HTTP_QARG_FOUND) {
        *val = out;
        r->scratch_used += *len + 1;
    }
    return res;
}

bool http_cookie(const char *hdr, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = hdr, *end = hdr + len;

    while (p < end) {
        const char *pe = p;
        while (pe < end && *pe != ';' && *pe != ',')
            pe++;
        while (p < pe && http_ows(*p))
            p++;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq) {
            const char *ke = eq;
            while (ke > p && http_ows(ke[-1]))
                ke--;
            if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
                const char *v = eq + 1, *ve = pe;
                while (v < ve && http_ows(*v))
                    v++;
                while (ve > v && http_ows(ve[-1]))
                    ve--;
                *val = v;
                *vlen = (size_t)(ve - v);
                return true;
            }
        }
        p = pe + 1;
    }
    *val = NULL;
    *vlen = 0;
    return false;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}

size_t http_error_response(char *buf, size_t cap, int status, const char *extra_headers,
                           const char *reason)
{
    int n = snprintf(buf, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n%s\n",
                     status, http_status_text(status), strlen(reason) + 1,
                     extra_headers ? extra_headers : "", reason);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
