/* base64url, checksums, hex and logging. See util.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <xxhash.h>
#include "util.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ck_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = in[i] << 16;
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = in[i] << 16 | in[i + 1] << 8;
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
	}
	out[o] = '\0';
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

long ck_b64_decode(const char *in, size_t n, uint8_t *out, size_t out_size)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1 || ck_b64_declen(n) > out_size)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		int v = b64_val(in[i]);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = acc >> bits & 0xff;
		}
	}
	/* Leftover bits must be zero, so that each byte string has exactly
	 * one encoding (names are compared as strings). */
	if (acc & ((1u << bits) - 1))
		return -EINVAL;
	return (long)o;
}

uint64_t ck_checksum(const void *p, size_t n)
{
	return XXH64(p, n, 0);
}

void ck_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static const char *log_ident = "ckfs";
static int log_syslog, log_debug, log_quiet;

void ck_log_quiet(int quiet)
{
	log_quiet = quiet;
}

void ck_log_init(const char *ident, int to_syslog, int debug)
{
	log_ident = ident;
	log_syslog = to_syslog;
	log_debug = debug;
	if (to_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void ck_log(int level, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	if ((level >= CK_LOG_DEBUG && !log_debug) || (log_quiet && level >= CK_LOG_WARNING))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(level, "%s", buf);
	} else {
		static const char *const names[] = { [3] = "error", [4] = "warning",
			[6] = "info", [7] = "debug" };
		fprintf(stderr, "%s: %s: %s\n", log_ident,
			level >= 3 && level <= 7 && names[level] ? names[level] : "note", buf);
	}
}
