/*
 * PROXY protocol v2 and v1 headers, see proxy_v2.h. TLVs after the v2
 * addresses are skipped unread: nothing here needs them, and their total
 * length is bounded by PP2_MAX_PAYLOAD.
 */
#include "backend/proxy_v2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t pp2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void set_in4(struct sockaddr_storage *ss, const uint8_t addr[4], uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, 4);
    sin->sin_port = htons(port);
}

static void set_in6(struct sockaddr_storage *ss, const uint8_t addr[16], uint16_t port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, 16);
    sin6->sin6_port = htons(port);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static enum pp2_result parse_v2(const uint8_t *buf, size_t len, struct pp2_info *out)
{
    uint8_t cmd = buf[12] & 0x0f, fam = buf[13];
    size_t plen = be16(buf + 14);
    const uint8_t *a = buf + 16;

    if (buf[12] >> 4 != 2 || cmd > 1 || plen > PP2_MAX_PAYLOAD)
        return PP2_ERROR;
    if (len < 16 + plen)
        return PP2_NEED_MORE;
    out->version = 2;
    out->consumed = 16 + plen;
    if (cmd == 0) {
        out->local = true; /* the family is ignored for LOCAL */
        return PP2_OK;
    }
    if (fam >> 4 > 3 || (fam & 0x0f) > 2)
        return PP2_ERROR;
    if (fam == 0x11) {
        if (plen < 12)
            return PP2_ERROR;
        set_in4(&out->src, a, be16(a + 8));
        set_in4(&out->dst, a + 4, be16(a + 10));
    } else if (fam == 0x21) {
        if (plen < 36)
            return PP2_ERROR;
        set_in6(&out->src, a, be16(a + 32));
        set_in6(&out->dst, a + 16, be16(a + 34));
    }
    /* other valid families fall back to UNSPEC, as the spec lets a receiver do */
    return PP2_OK;
}

/* Next space-separated field of a v1 line: exactly one space before each. */
static bool v1_field(const char **p, const char *end, char *out, size_t cap)
{
    if (*p >= end || **p != ' ')
        return false;
    (*p)++;
    const char *sp = memchr(*p, ' ', (size_t)(end - *p));
    size_t n = (size_t)((sp ? sp : end) - *p);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

/* A port: decimal 0..65535 without leading zeros. */
static bool v1_port(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    unsigned long v = 0;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static enum pp2_result parse_v1(const uint8_t *buf, size_t len, struct pp2_info *out)
{
    const char *s = (const char *)buf, *eol = NULL;
    /* the CR may be at most at PP1_MAX_LINE - 2, so that the line with its LF fits */
    size_t scan = min_size(len, PP1_MAX_LINE - 1);

    for (size_t i = 0; i < scan; i++) {
        if (s[i] == '\n')
            return PP2_ERROR;
        if (s[i] == '\r') {
            if (i + 1 == len)
                return PP2_NEED_MORE;
            if (s[i + 1] != '\n')
                return PP2_ERROR;
            eol = s + i;
            break;
        }
    }
    if (!eol)
        return len >= PP1_MAX_LINE - 1 ? PP2_ERROR : PP2_NEED_MORE;

    const char *p = s + 5; /* after "PROXY" */
    char proto[8], src[46], dst[46], sport[8], dport[8];
    uint8_t a[16], b[16];
    uint16_t ps, pd;

    if (!v1_field(&p, eol, proto, sizeof(proto)))
        return PP2_ERROR;
    out->version = 1;
    out->consumed = (size_t)(eol + 2 - s);
    if (strcmp(proto, "UNKNOWN") == 0)
        return PP2_OK; /* the rest of the line is to be ignored */
    int af = strcmp(proto, "TCP4") == 0 ? AF_INET : strcmp(proto, "TCP6") == 0 ? AF_INET6 : 0;
    if (!af || !v1_field(&p, eol, src, sizeof(src)) || !v1_field(&p, eol, dst, sizeof(dst)) ||
        !v1_field(&p, eol, sport, sizeof(sport)) || !v1_field(&p, eol, dport, sizeof(dport)) ||
        p != eol || inet_pton(af, src, a) != 1 || inet_pton(af, dst, b) != 1 ||
        !v1_port(sport, &ps) || !v1_port(dport, &pd))
        return PP2_ERROR;
    if (af == AF_INET) {
        set_in4(&out->src, a, ps);
        set_in4(&out->dst, b, pd);
    } else {
        set_in6(&out->src, a, ps);
        set_in6(&out->dst, b, pd);
    }
    return PP2_OK;
}

enum pp2_result pp2_parse(const uint8_t *buf, size_t len, struct pp2_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return PP2_NEED_MORE;
    if (memcmp(buf, pp2_sig, min_size(len, sizeof(pp2_sig))) == 0)
        return len < 16 ? PP2_NEED_MORE : parse_v2(buf, len, out);
    if (memcmp(buf, "PROXY ", min_size(len, 6)) == 0)
        return len < 6 ? PP2_NEED_MORE : parse_v1(buf, len, out);
    return PP2_NOT_PROXY;
}
