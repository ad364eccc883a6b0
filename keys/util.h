/* Little helpers shared by libck and the tools: little-endian fields,
 * base64url (names on disk), logging. No secrets pass through ck_log. */
#ifndef CK_UTIL_H
#define CK_UTIL_H
#include <stddef.h>
#include <stdint.h>

static inline void ck_put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void ck_put32(uint8_t *p, uint32_t v)
{ for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static inline void ck_put64(uint8_t *p, uint64_t v)
{ for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }
static inline uint16_t ck_get16(const uint8_t *p) { return p[0] | (uint16_t)p[1] << 8; }
static inline uint32_t ck_get32(const uint8_t *p)
{ uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static inline uint64_t ck_get64(const uint8_t *p)
{ uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* base64url without padding (RFC 4648 section 5). */
static inline size_t ck_b64_enclen(size_t n) { return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0); }
static inline size_t ck_b64_declen(size_t n) { return (n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0); }
/* Writes ck_b64_enclen(n) characters and a NUL. */
void ck_b64_encode(const uint8_t *in, size_t n, char *out);
/* Returns the decoded length, or -EINVAL on a bad character or length. */
long ck_b64_decode(const char *in, size_t n, uint8_t *out, size_t out_size);

/* 64-bit checksum (XXH64, seed 0) for corruption detection of headers;
 * never used where an attacker must be stopped. */
uint64_t ck_checksum(const void *p, size_t n);

void ck_hex(const uint8_t *in, size_t n, char *out);

enum { CK_LOG_ERR = 3, CK_LOG_WARNING = 4, CK_LOG_INFO = 6, CK_LOG_DEBUG = 7 };
/* ident prefixes stderr lines; to_syslog switches to syslog (daemon mode). */
void ck_log_init(const char *ident, int to_syslog, int debug);
/* Drop warnings and less (the command-line tools: the reason of a failure
 * is in their own one-line error, which a library warning would repeat). */
void ck_log_quiet(int quiet);
void ck_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
