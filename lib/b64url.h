/*
 * base64url (RFC 4648 §5) as JWS uses it: URL-safe alphabet, no padding.
 * Decoding only; what a verifier needs for JWT segments and JWK members.
 */
#ifndef RR_B64URL_H
#define RR_B64URL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Room for the bytes of len input characters: rr_b64url_decode writes
 * len * 3 / 4 of them, this rounds up to whole 3-byte groups. */
#define RR_B64URL_DECODED_MAX(len) (((len) + 3) / 4 * 3)

/* True when in is unpadded base64url: only [A-Za-z0-9_-] and a length that is not 4n+1. */
bool rr_b64url_valid(const char *in, size_t len);

/* True when in is valid and the one spelling of its bytes: the bits of the last
 * character beyond the data are zero (RFC 4648 §3.5). Decoding ignores them. */
bool rr_b64url_canonical(const char *in, size_t len);

/* Decodes into out (RR_B64URL_DECODED_MAX(len) bytes). Returns the decoded
 * length, or -1 when !rr_b64url_valid(in, len). */
ssize_t rr_b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
