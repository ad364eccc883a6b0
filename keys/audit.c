/* The volume's audit log. See audit.h; docs/FORMAT.md copies this format.
 *
 * Both files live in <volume>/.ckfs/ and are created with mode 0600.
 *
 * audit.log -- one record per line, ASCII only, at most 4096 bytes per
 * line counting the "\n":
 *
 *   seq=S time=T host=H pid=P event=E dep=D tree=R uri=U result=X actor=A mac=M\n
 *
 *   - The eleven fields appear in exactly this order, as key=value,
 *     separated by exactly one space (0x20); nothing else is on the line.
 *   - seq: decimal, no leading zero, at most 18 digits. The first record
 *     is 1 and each record is the previous one plus 1.
 *   - time: UTC with milliseconds, YYYY-MM-DDTHH:MM:SS.mmmZ (24 bytes).
 *   - pid: decimal process ID of the writer, no leading zero.
 *   - host, event, dep, tree, uri, result, actor: byte strings,
 *     percent-encoded: every byte outside 0x21..0x7e, and '%' (0x25) and
 *     '=' (0x3d), is written as '%' and two upper-case hex digits; every
 *     other byte stands for itself. So a value never holds a space, '=' or
 *     a line break, and no value can forge another field or record.
 *     Non-ASCII text (UTF-8) is therefore stored as %XX sequences.
 *     An empty value means absent (NULL or "" at append time); event is
 *     never empty. A value whose encoding would be longer than its limit
 *     (host 256, event 128, dep 512, tree 1024, uri 1024, result 512,
 *     actor 128 bytes, encoded) is cut before a UTF-8 character that would
 *     not fit and ends in "..." (three literal dots; a value that really
 *     ends in "..." looks the same). Decoders reject lower-case %xx.
 *   - mac: 64 lower-case hex digits,
 *         mac_i = HMAC-SHA256(audit_key, mac_{i-1} || body_i)
 *     where mac_0 is 32 zero bytes, mac_{i-1} is the previous record's MAC
 *     as 32 raw bytes, and body_i is the line's bytes before " mac=" (from
 *     "seq=" to the last byte of the actor value). audit_key is derived
 *     from the service key with the label CK_LABEL_AUDIT (kdf_labels.h).
 *
 * audit.head -- one line, replaced atomically (temp file, fsync, rename)
 * after every append:
 *
 *   count=N mac=M hmac=H\n
 *
 *   - N: the number of records in the log (decimal, no leading zero);
 *     M: mac_N in lower-case hex (64 zeros when N is 0);
 *   - H = HMAC-SHA256(audit_key, "ckfs-audit-head-v1\n" || "count=N mac=M")
 *     in lower-case hex. The label keeps a head MAC input from ever being a
 *     record MAC input: those have "seq=" at offset 32, and a head input
 *     has no 's' after offset 3.
 *
 * Locking: an appender holds an exclusive open-file-description lock
 * (F_OFD_SETLKW, flock() on kernels without it) on audit.log across reading
 * the last record, the append (one write() of the whole line, O_APPEND),
 * fdatasync and the head update; readers (verify, print, head) hold a
 * shared lock. Each call opens its own descriptor, so threads of one
 * process exclude each other as processes do. This is the only lock in
 * this file and no other libck lock is taken while it is held. The
 * descriptors are O_CLOEXEC, but a child forked while another thread is
 * inside a ck_audit_* call shares that descriptor, and so the lock, until
 * it execs or exits: fork only to exec, or before starting threads.
 *
 * Crashes: the head is written after the record, so a crash in between
 * leaves a head that lags the log; that is accepted when the head's MAC is
 * the MAC of record N (only a holder of audit_key can make such a record),
 * and the next append brings the head up to date. Before appending, a
 * writer checks the head against the log and refuses (-EBADMSG) when they
 * disagree, so that a new head never hides a truncation.
 *
 * Not detectable from the volume alone: replacing both files with an
 * earlier consistent copy, or deleting both. The purge certificate records
 * the chain head for that reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "audit.h"
#include "crypto.h"
#include "secmem.h"
#include "util.h"

#define LOG_NAME    "audit.log"
#define HEAD_NAME   "audit.head"
#define HEAD_TMP    ".audit.head.tmp"
#define HEAD_LABEL  "ckfs-audit-head-v1\n"
#define LINE_MAX_B  4096          /* one record, "\n" included */
#define TAIL_READ   8192          /* > LINE_MAX_B: the last line always fits */
#define RD_BUF      65536
#define SEQ_DIGITS  18

enum { F_HOST, F_EVENT, F_DEP, F_TREE, F_URI, F_RESULT, F_ACTOR, NVAL };
static const size_t val_limit[NVAL] = { 256, 128, 512, 1024, 1024, 512, 128 };
static const char *const val_key[NVAL] = {
	"host", "event", "dep", "tree", "uri", "result", "actor"
};

/* One parsed line. Values stay percent-encoded and point into the line. */
struct rec {
	long long seq;
	long pid;
	char time[25];
	const char *val[NVAL];
	size_t val_len[NVAL];
	uint8_t mac[CK_HASH_LEN];
	size_t body_len;              /* bytes covered by the MAC */
};

struct head {
	int present;
	long long count;
	uint8_t mac[CK_HASH_LEN];
};

static int bad(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

/* ---- encoding and parsing ---- */

static int must_escape(unsigned char c)
{
	return c < 0x21 || c > 0x7e || c == '%' || c == '=';
}

/* Upper-case hex digit of a %XX escape: one spelling per byte. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-encodes s (may be NULL) into out, which holds limit + 1 bytes.
 * A UTF-8 character is never split: it is the unit that fits or not. */
static size_t val_encode(const char *s, size_t limit, char *out)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t len = s ? strlen(s) : 0, total = 0, budget, n = 0, i = 0;

	for (size_t k = 0; k < len; k++)
		total += must_escape((unsigned char)s[k]) ? 3 : 1;
	budget = total > limit ? limit - 3 : limit;
	while (i < len) {
		size_t j = i + 1, need = must_escape((unsigned char)s[i]) ? 3 : 1;

		while (j < len && j - i < 4 && ((unsigned char)s[j] & 0xc0) == 0x80)
			need += 3, j++;
		if (n + need > budget)
			break;
		for (; i < j; i++) {
			unsigned char c = (unsigned char)s[i];

			if (must_escape(c)) {
				out[n++] = '%';
				out[n++] = hx[c >> 4];
				out[n++] = hx[c & 15];
			} else {
				out[n++] = (char)c;
			}
		}
	}
	if (total > limit) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return n;
}

/* Decodes a value that rec_parse accepted; out holds at least n bytes. */
static size_t val_decode(const char *s, size_t n, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n) {
			out[o++] = (uint8_t)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = (uint8_t)s[i];
		}
	}
	return o;
}

/* Decimal, no sign, no leading zero; "0" only when zero_ok. */
static int parse_num(const char *s, size_t n, size_t max_digits, int zero_ok, long long *out)
{
	long long v = 0;

	if (n == 1 && s[0] == '0' && zero_ok) {
		*out = 0;
		return 0;
	}
	if (n == 0 || n > max_digits || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_time(const char *s, size_t n)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (n != sizeof(pat) - 1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return -1;
	return 0;
}

static int parse_val(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return -1;
			i += 2;
		} else if (must_escape(c)) {
			return -1;
		}
	}
	return 0;
}

/* Exactly 64 lower-case hex digits: one spelling per MAC. */
static int parse_mac(const char *s, size_t n, uint8_t mac[CK_HASH_LEN])
{
	static const char hx[] = "0123456789abcdef";
	const char *hi, *lo;

	if (n != 2 * CK_HASH_LEN)
		return -1;
	for (size_t i = 0; i < CK_HASH_LEN; i++) {
		if (!s[2 * i] || !s[2 * i + 1] || !(hi = strchr(hx, s[2 * i])) ||
		    !(lo = strchr(hx, s[2 * i + 1])))
			return -1;
		mac[i] = (uint8_t)((hi - hx) << 4 | (lo - hx));
	}
	return 0;
}

/* Strict parse of one line without its "\n". 0, or -EBADMSG with why. */
static int rec_parse(const char *line, size_t n, struct rec *r, char *why, size_t why_len)
{
	enum { K_SEQ, K_TIME, K_PID, K_VAL, K_MAC };
	static const struct { const char *key; int kind, idx; } f[] = {
		{ "seq", K_SEQ, 0 }, { "time", K_TIME, 0 }, { "host", K_VAL, F_HOST },
		{ "pid", K_PID, 0 }, { "event", K_VAL, F_EVENT }, { "dep", K_VAL, F_DEP },
		{ "tree", K_VAL, F_TREE }, { "uri", K_VAL, F_URI },
		{ "result", K_VAL, F_RESULT }, { "actor", K_VAL, F_ACTOR },
		{ "mac", K_MAC, 0 },
	};
	size_t p = 0;
	long long pid;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		size_t kl = strlen(f[i].key), s;

		if (i > 0) {
			if (p >= n || line[p] != ' ')
				return bad(why, why_len, "field %s is not preceded by one space", f[i].key);
			if (f[i].kind == K_MAC)
				r->body_len = p;
			p++;
		}
		if (n - p < kl + 1 || memcmp(line + p, f[i].key, kl) || line[p + kl] != '=')
			return bad(why, why_len, "field %s is missing or out of order", f[i].key);
		p += kl + 1;
		for (s = p; p < n && line[p] != ' '; p++)
			;
		switch (f[i].kind) {
		case K_SEQ:
			if (parse_num(line + s, p - s, SEQ_DIGITS, 0, &r->seq) < 0)
				return bad(why, why_len, "bad seq");
			break;
		case K_TIME:
			if (parse_time(line + s, p - s) < 0)
				return bad(why, why_len, "bad time");
			memcpy(r->time, line + s, p - s);
			r->time[p - s] = '\0';
			break;
		case K_PID:
			if (parse_num(line + s, p - s, 10, 0, &pid) < 0)
				return bad(why, why_len, "bad pid");
			r->pid = (long)pid;
			break;
		case K_VAL:
			if (parse_val(line + s, p - s) < 0 || (f[i].idx == F_EVENT && p == s))
				return bad(why, why_len, "bad %s value", f[i].key);
			r->val[f[i].idx] = line + s;
			r->val_len[f[i].idx] = p - s;
			break;
		case K_MAC:
			if (parse_mac(line + s, p - s, r->mac) < 0)
				return bad(why, why_len, "bad mac");
			break;
		}
	}
	if (p != n)
		return bad(why, why_len, "trailing data after mac");
	return 0;
}

static int rec_mac(const struct ck_volume *v, const uint8_t prev[CK_HASH_LEN],
                   const char *body, size_t n, uint8_t out[CK_HASH_LEN])
{
	const void *parts[2] = { prev, body };
	size_t lens[2] = { CK_HASH_LEN, n };

	return ck_hmac_sha256(v->audit_key, parts, lens, 2, out);
}

/* ---- files and locks ---- */

static int lock_fd(int fd, int excl)
{
	struct flock fl = { .l_type = excl ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };

	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EINVAL)
			return -errno;
		/* No OFD locks (before Linux 3.15): flock() is also per open
		 * file description, so threads still exclude each other. */
		while (flock(fd, excl ? LOCK_EX : LOCK_SH) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	return 0;
}

/* Opens .ckfs (*dfd) and audit.log (*fd), the log locked. excl: for
 * appending, created if missing, exclusive lock. Otherwise read-only with
 * a shared lock, and *fd is -1 when there is no log. The caller closes
 * both (when >= 0) whatever the result. */
static int log_open(const struct ck_volume *v, int excl, int *dfd, int *fd)
{
	int flags = excl ? O_RDWR | O_APPEND | O_CREAT : O_RDONLY, r;

	*fd = -1;
	*dfd = openat(v->fd, CK_VOLUME_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (*dfd < 0)
		return -errno;
	for (int tries = 0; tries < 100; tries++) {
		struct stat a, b;

		*fd = openat(*dfd, LOG_NAME, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
		if (*fd < 0)
			return errno == ENOENT && !excl ? 0 : -errno;
		if (fstat(*fd, &a) < 0)
			return -errno;
		if (!S_ISREG(a.st_mode))
			return -EINVAL;
		if ((r = lock_fd(*fd, excl)) < 0)
			return r;
		/* The log may have been moved aside while we waited for it. */
		if (fstatat(*dfd, LOG_NAME, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			return 0;
		close(*fd);
		*fd = -1;
	}
	return -EAGAIN;
}

static int head_hmac(const struct ck_volume *v, const char *text, size_t n,
                     uint8_t out[CK_HASH_LEN])
{
	const void *parts[2] = { HEAD_LABEL, text };
	size_t lens[2] = { sizeof(HEAD_LABEL) - 1, n };

	return ck_hmac_sha256(v->audit_key, parts, lens, 2, out);
}

/* 0 (h->present says whether there is one), -EBADMSG with why, or an
 * errno from reading. */
static int head_read(const struct ck_volume *v, int dfd, struct head *h,
                     char *why, size_t why_len)
{
	char buf[256], *sp, *sp2;
	uint8_t want[CK_HASH_LEN], got[CK_HASH_LEN];
	struct stat st;
	ssize_t n;
	int fd, r;

	memset(h, 0, sizeof(*h));
	fd = openat(dfd, HEAD_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	h->present = 1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		n = 0;                  /* not a regular file: malformed */
	} else {
		do
			n = read(fd, buf, sizeof(buf) - 1);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	buf[n] = '\0';
	/* count=N mac=<64> hmac=<64>\n */
	if (n < 2 || buf[n - 1] != '\n' || memchr(buf, '\0', (size_t)n) ||
	    strncmp(buf, "count=", 6) || !(sp = strchr(buf, ' ')) ||
	    parse_num(buf + 6, (size_t)(sp - buf - 6), SEQ_DIGITS, 1, &h->count) < 0 ||
	    strncmp(sp, " mac=", 5) || !(sp2 = strchr(sp + 1, ' ')) ||
	    parse_mac(sp + 5, (size_t)(sp2 - sp - 5), h->mac) < 0 ||
	    strncmp(sp2, " hmac=", 6) ||
	    parse_mac(sp2 + 6, (size_t)(buf + n - 1 - sp2 - 6), got) < 0)
		return bad(why, why_len, "the audit head (.ckfs/" HEAD_NAME ") is malformed, so "
		           "the log may have been truncated");
	if ((r = head_hmac(v, buf, (size_t)(sp2 - buf), want)) < 0)
		return r;
	if (!ck_memeq(want, got, CK_HASH_LEN))
		return bad(why, why_len, "the audit head (.ckfs/" HEAD_NAME ") was edited (its MAC "
		           "does not match), so the log may have been truncated");
	return 0;
}

/* sync_dir: make the rename itself durable. Only needed when the head is
 * created; losing a later rename in a crash leaves an older genuine head,
 * which merely lags the log (accepted, see the top of this file). */
static int head_write(const struct ck_volume *v, int dfd, long long count,
                      const uint8_t mac[CK_HASH_LEN], int sync_dir)
{
	char text[256], hex[2 * CK_HASH_LEN + 1];
	uint8_t hm[CK_HASH_LEN];
	int fd, r = 0, n;

	ck_hex(mac, CK_HASH_LEN, hex);
	n = snprintf(text, sizeof(text), "count=%lld mac=%s", count, hex);
	if ((r = head_hmac(v, text, (size_t)n, hm)) < 0)
		return r;
	ck_hex(hm, CK_HASH_LEN, hex);
	n += snprintf(text + n, sizeof(text) - (size_t)n, " hmac=%s\n", hex);
	fd = openat(dfd, HEAD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dfd, HEAD_TMP, dfd, HEAD_NAME) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dfd, HEAD_TMP, 0);
	else if (sync_dir && fsync(dfd) < 0)
		r = -errno;
	return r;
}

/* For readers: the log (locked, or -1 when there is none) and its head as
 * one consistent pair. A log is created before its head, so a head without
 * a log means the log was deleted -- unless an appender created both
 * between our two looks, in which case look again. */
static int open_read(const struct ck_volume *v, int *dfd, int *fd, struct head *h,
                     char *why, size_t why_len)
{
	struct stat st;
	int r;

	for (int tries = 0;; tries++) {
		if ((r = log_open(v, 0, dfd, fd)) < 0 ||
		    (r = head_read(v, *dfd, h, why, why_len)) < 0)
			return r;
		if (*fd >= 0 || !h->present || tries == 3 ||
		    fstatat(*dfd, LOG_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		close(*dfd);
		*dfd = -1;
	}
}

/* ---- reading lines ---- */

enum { RD_EOF, RD_LINE, RD_LONG, RD_PARTIAL };

struct rd {
	int fd;
	off_t base;                   /* file offset of buf[0] */
	size_t pos, len;
	int eof;
	char *buf;                    /* RD_BUF bytes */
};

static int rd_init(struct rd *r, int fd, off_t off)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->base = off;
	r->eof = fd < 0;
	r->buf = malloc(RD_BUF);
	return r->buf ? 0 : -ENOMEM;
}

static void rd_release(struct rd *r)
{
	free(r->buf);
	r->buf = NULL;
}

static off_t rd_tell(const struct rd *r)
{
	return r->base + (off_t)r->pos;
}

static int rd_fill(struct rd *r)
{
	ssize_t k;

	if (r->pos) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->base += (off_t)r->pos;
		r->len -= r->pos;
		r->pos = 0;
	}
	do
		k = pread(r->fd, r->buf + r->len, RD_BUF - r->len, r->base + (off_t)r->len);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if (k == 0)
		r->eof = 1;
	r->len += (size_t)k;
	return 0;
}

/* RD_LINE (line, n without "\n"), RD_EOF, RD_LONG (a line longer than
 * LINE_MAX_B, consumed), RD_PARTIAL (bytes without "\n" at the end, in
 * line/n), or a negative errno. */
static int rd_next(struct rd *r, const char **line, size_t *n)
{
	int skipping = 0, k;

	for (;;) {
		char *s = r->buf + r->pos, *nl;
		size_t avail = r->len - r->pos;

		if ((nl = memchr(s, '\n', avail))) {
			size_t l = (size_t)(nl - s);

			r->pos += l + 1;
			if (skipping || l + 1 > LINE_MAX_B)
				return RD_LONG;
			*line = s;
			*n = l;
			return RD_LINE;
		}
		if (avail >= LINE_MAX_B) {
			skipping = 1;
			r->pos = r->len;
			avail = 0;
		}
		if (r->eof) {
			if (skipping)
				return RD_LONG;
			if (avail == 0)
				return RD_EOF;
			*line = s;
			*n = avail;
			r->pos = r->len;
			return RD_PARTIAL;
		}
		if ((k = rd_fill(r)) < 0)
			return k;
	}
}

/* The last record of a log of size bytes, read from its tail. */
static int tail_last(int fd, off_t size, long long *seq, uint8_t mac[CK_HASH_LEN],
                     char *why, size_t why_len)
{
	char buf[TAIL_READ];
	size_t want = size < TAIL_READ ? (size_t)size : TAIL_READ, got = 0, start;
	struct rec rec;
	ssize_t k;

	*seq = 0;
	memset(mac, 0, CK_HASH_LEN);
	if (size == 0)
		return 0;
	while (got < want) {
		k = pread(fd, buf + got, want - got, size - (off_t)want + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		got += (size_t)k;
	}
	if (buf[want - 1] != '\n')
		return bad(why, why_len, "the last record of the audit log is truncated (no end of line)");
	for (start = want - 1; start > 0 && buf[start - 1] != '\n'; start--)
		;
	if ((start == 0 && (off_t)want < size) || want - start > LINE_MAX_B)
		return bad(why, why_len, "the last record of the audit log is too long");
	if (rec_parse(buf + start, want - 1 - start, &rec, why, why_len) < 0)
		return -EBADMSG;
	*seq = rec.seq;
	memcpy(mac, rec.mac, CK_HASH_LEN);
	return 0;
}

/* ---- verification ---- */

/* Looks from offset off (line number line0 there) for the genuine record
 * seq: a line with that seq whose MAC chains from prev. Returns its line
 * number and MAC, 0 when there is none, or a negative errno. */
static long long find_record(const struct ck_volume *v, int fd, off_t off, long long line0,
                             long long seq, const uint8_t prev[CK_HASH_LEN],
                             uint8_t mac[CK_HASH_LEN])
{
	struct rd rd;
	struct rec rec;
	const char *line;
	size_t n;
	long long at = line0, found = 0;
	char why[8];
	int k;

	if ((k = rd_init(&rd, fd, off)) < 0)
		return k;
	while ((k = rd_next(&rd, &line, &n)) != RD_EOF) {
		if (k < 0) {
			found = k;
			break;
		}
		if (k == RD_LINE && rec_parse(line, n, &rec, why, sizeof(why)) == 0 &&
		    rec.seq == seq) {
			if ((k = rec_mac(v, prev, line, rec.body_len, mac)) < 0) {
				found = k;
				break;
			}
			if (ck_memeq(mac, rec.mac, CK_HASH_LEN)) {
				found = at;
				break;
			}
		}
		at++;
	}
	rd_release(&rd);
	return found;
}

/* The seq of the line at offset off, or -1 if there is none or it is bad. */
static long long seq_at(int fd, off_t off)
{
	struct rd rd;
	struct rec rec;
	const char *line;
	size_t n;
	long long seq = -1;
	char why[8];

	if (rd_init(&rd, fd, off) < 0)
		return -1;
	if (rd_next(&rd, &line, &n) == RD_LINE && rec_parse(line, n, &rec, why, sizeof(why)) == 0)
		seq = rec.seq;
	rd_release(&rd);
	return seq;
}

/* Line i is the first that does not continue the chain (prev = mac_{i-1}):
 * say what happened to it. next is the offset of line i + 1. */
static int classify(const struct ck_volume *v, int fd, off_t next, long long i,
                    const uint8_t prev[CK_HASH_LEN], const struct rec *cur,
                    const char *cur_line, const struct head *h, char *msg, size_t len)
{
	uint8_t mac_i[CK_HASH_LEN], m[CK_HASH_LEN];
	long long at;
	int r;

	at = find_record(v, fd, next, i + 1, i, prev, mac_i);
	if (at < 0)
		return (int)at;
	if (at == i + 1) {
		/* The genuine record i follows this line. */
		if (cur->seq == i + 1) {
			if ((r = rec_mac(v, mac_i, cur_line, cur->body_len, m)) < 0)
				return r;
			if (ck_memeq(m, cur->mac, CK_HASH_LEN))
				return bad(msg, len, "record %lld of the audit log is out of order: records "
				           "%lld and %lld were swapped (reordered)", i, i, i + 1);
		}
		return bad(msg, len, "record %lld of the audit log is preceded by an inserted line "
		           "(line %lld is not part of the chain; it claims to be record %lld)",
		           i, i, cur->seq);
	}
	if (at > 0)
		return bad(msg, len, "record %lld of the audit log is out of order: it was moved to "
		           "line %lld (reordered)", i, at);
	if (cur->seq == i && h->present && i > h->count)
		return bad(msg, len, "record %lld of the audit log is not genuine (edited or forged; "
		           "the head counts %lld records)", i, h->count);
	/* In place (its successor follows) but not genuine: edited, seq too. */
	if (cur->seq == i || seq_at(fd, next) == i + 1)
		return bad(msg, len, "record %lld of the audit log was edited (its MAC does not "
		           "match the chain%s)", i, cur->seq == i ? "" : "; its seq was changed");
	if (cur->seq > i && i == 1)
		return bad(msg, len, "record%s 1%s of the audit log %s removed (the log starts at "
		           "record %lld)", cur->seq > 2 ? "s" : "", cur->seq > 2 ? " and later" : "",
		           cur->seq > 2 ? "were" : "was", cur->seq);
	if (cur->seq == i + 1)
		return bad(msg, len, "record %lld of the audit log was removed (the log goes from "
		           "record %lld to %lld)", i, i - 1, cur->seq);
	if (cur->seq > i)
		return bad(msg, len, "record %lld of the audit log was removed, with records up to "
		           "%lld (the log goes from record %lld to %lld)", i, cur->seq - 1, i - 1, cur->seq);
	return bad(msg, len, "record %lld of the audit log is missing: line %lld repeats record %lld "
	           "(inserted or reordered)", i, i, cur->seq);
}

/* Walks the locked log (fd -1: no log) and checks it against the head.
 * *good receives the number of records found intact. */
static int walk(const struct ck_volume *v, int fd, const struct head *h, long long *good,
                char *msg, size_t len)
{
	uint8_t prev[CK_HASH_LEN] = { 0 }, m[CK_HASH_LEN], at_head[CK_HASH_LEN] = { 0 };
	char why[96];
	struct rd rd;
	struct rec rec;
	const char *line;
	size_t n;
	long long i = 0;
	int k, r;

	*good = 0;
	if ((r = rd_init(&rd, fd, 0)) < 0)
		return r;
	for (;;) {
		if ((k = rd_next(&rd, &line, &n)) < 0) {
			r = k;
			goto out;
		}
		if (k == RD_EOF)
			break;
		i++;
		if (k == RD_LONG) {
			r = bad(msg, len, "record %lld of the audit log is malformed (longer than %d bytes)",
			        i, LINE_MAX_B);
			goto out;
		}
		if (k == RD_PARTIAL) {
			r = bad(msg, len, "record %lld of the audit log is truncated (it has no end of line)", i);
			goto out;
		}
		if (rec_parse(line, n, &rec, why, sizeof(why)) < 0) {
			r = bad(msg, len, "record %lld of the audit log is malformed (%s)", i, why);
			goto out;
		}
		if (rec.seq == i) {
			if ((r = rec_mac(v, prev, line, rec.body_len, m)) < 0)
				goto out;
			if (ck_memeq(m, rec.mac, CK_HASH_LEN)) {
				memcpy(prev, m, CK_HASH_LEN);
				if (h->present && h->count == i)
					memcpy(at_head, m, CK_HASH_LEN);
				*good = i;
				continue;
			}
		}
		r = classify(v, fd, rd_tell(&rd), i, prev, &rec, line, h, msg, len);
		goto out;
	}
	if (!h->present) {
		if (i > 0)
			r = bad(msg, len, "the audit head (.ckfs/" HEAD_NAME ") is missing while the log "
			        "holds %lld records, so the log may have been truncated after record %lld", i, i);
	} else if (h->count > i && i == 0) {
		r = bad(msg, len, "the audit log is truncated: it is %s but its head counts %lld records "
		        "(records 1 to %lld are missing)", fd < 0 ? "missing" : "empty", h->count, h->count);
	} else if (h->count > i) {
		if (h->count == i + 1)
			r = bad(msg, len, "the audit log is truncated: its head counts %lld records but the "
			        "log ends at record %lld (record %lld is missing)", h->count, i, h->count);
		else
			r = bad(msg, len, "the audit log is truncated: its head counts %lld records but the "
			        "log ends at record %lld (records %lld to %lld are missing)", h->count, i,
			        i + 1, h->count);
	} else if (!ck_memeq(at_head, h->mac, CK_HASH_LEN)) {
		r = bad(msg, len, "record %lld of the audit log does not match the audit head (the log "
		        "was truncated and rewritten, or the head was replaced)", h->count);
	}
out:
	rd_release(&rd);
	return r;
}

static int usable(const struct ck_volume *v)
{
	return v && v->fd >= 0 && v->audit_key;
}

int ck_audit_verify(const struct ck_volume *v, long *count, char *msg, size_t msg_len)
{
	struct head h;
	long long good = 0;
	int dfd = -1, fd = -1, r;

	if (msg && msg_len)
		msg[0] = '\0';
	if (!usable(v))
		return -EINVAL;
	if ((r = open_read(v, &dfd, &fd, &h, msg, msg_len)) < 0)
		goto out;
	r = walk(v, fd, &h, &good, msg, msg_len);
out:
	if (count)
		*count = (long)good;
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* ---- appending ---- */

static void now_utc(char out[40])
{
	struct timespec ts;
	struct tm tm;
	char day[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%03dZ", day, (int)(ts.tv_nsec / 1000000) % 1000);
}

int ck_audit_append(const struct ck_volume *v, const struct ck_audit_event *e)
{
	const char *in[NVAL];
	char enc[NVAL][1025], host[257], tm[40], why[192], line[LINE_MAX_B + 1], hex[2 * CK_HASH_LEN + 1];
	uint8_t last_mac[CK_HASH_LEN], mac[CK_HASH_LEN];
	struct head h;
	struct stat st;
	long long last_seq, good;
	int dfd = -1, fd = -1, r, n;
	ssize_t w;

	if (!usable(v) || !e || !e->event || !*e->event)
		return -EINVAL;
	if (gethostname(host, sizeof(host) - 1) < 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	in[F_HOST] = host;
	in[F_EVENT] = e->event;
	in[F_DEP] = e->dep;
	in[F_TREE] = e->tree;
	in[F_URI] = e->uri;
	in[F_RESULT] = e->result;
	in[F_ACTOR] = e->actor;
	for (int i = 0; i < NVAL; i++)
		val_encode(in[i], val_limit[i], enc[i]);

	why[0] = '\0';
	if ((r = log_open(v, 1, &dfd, &fd)) < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = tail_last(fd, st.st_size, &last_seq, last_mac, why, sizeof(why))) < 0 ||
	    (r = head_read(v, dfd, &h, why, sizeof(why))) < 0)
		goto out;
	/* Never write a head that would hide a truncation or an edit. */
	if (!h.present) {
		if (last_seq != 0) {
			r = bad(why, sizeof(why), "the audit head is missing while the log is not empty");
			goto out;
		}
		/* A crash after the first record must leave a head that lags. */
		if ((r = head_write(v, dfd, 0, last_mac, 1)) < 0)
			goto out;
	} else if (h.count > last_seq) {
		r = bad(why, sizeof(why), "the log is truncated (its head counts %lld records, the "
		        "last is record %lld)", h.count, last_seq);
		goto out;
	} else if (h.count == last_seq) {
		if (!ck_memeq(h.mac, last_mac, CK_HASH_LEN)) {
			r = bad(why, sizeof(why), "record %lld does not match the head", last_seq);
			goto out;
		}
	} else if ((r = walk(v, fd, &h, &good, why, sizeof(why))) < 0) {
		/* The head lags (a writer crashed before updating it): only a
		 * whole intact chain may move it forward. */
		goto out;
	}

	now_utc(tm);
	n = snprintf(line, sizeof(line), "seq=%lld time=%s host=%s pid=%ld event=%s dep=%s tree=%s "
	             "uri=%s result=%s actor=%s", last_seq + 1, tm, enc[F_HOST], (long)getpid(),
	             enc[F_EVENT], enc[F_DEP], enc[F_TREE], enc[F_URI], enc[F_RESULT], enc[F_ACTOR]);
	if (n < 0 || (size_t)n + 6 + 2 * CK_HASH_LEN > LINE_MAX_B) {
		r = -EOVERFLOW;
		goto out;
	}
	if ((r = rec_mac(v, last_mac, line, (size_t)n, mac)) < 0)
		goto out;
	ck_hex(mac, CK_HASH_LEN, hex);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " mac=%s\n", hex);
	/* One write() of the whole line: O_APPEND and the lock keep records whole. */
	do
		w = write(fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	if (w != n) {
		r = w < 0 ? -errno : -ENOSPC;
		if (w > 0 && ftruncate(fd, st.st_size) < 0)
			ck_log(CK_LOG_ERR, "audit log of %s: could not remove a partial record: %s",
			       v->path ? v->path : "?", strerror(errno));
		goto out;
	}
	if (fdatasync(fd) < 0) {
		r = -errno;
		goto out;
	}
	r = head_write(v, dfd, last_seq + 1, mac, 0);
out:
	if (r == -EBADMSG)
		ck_log(CK_LOG_ERR, "audit log of %s: refusing to append: %s; run 'ck-dep %s audit "
		       "--verify' and keep the files as evidence", v->path ? v->path : "?", why,
		       v->path ? v->path : "VOLUME");
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

int ck_audit_head(const struct ck_volume *v, char hex[65], long *count)
{
	struct head h;
	struct stat st;
	uint8_t last_mac[CK_HASH_LEN] = { 0 };
	long long last_seq = 0, good;
	char why[192];
	int dfd = -1, fd = -1, r;

	hex[0] = '\0';
	if (count)
		*count = 0;
	if (!usable(v))
		return -EINVAL;
	if ((r = open_read(v, &dfd, &fd, &h, why, sizeof(why))) < 0)
		goto out;
	if (fd >= 0) {
		if (fstat(fd, &st) < 0) {
			r = -errno;
			goto out;
		}
		if ((r = tail_last(fd, st.st_size, &last_seq, last_mac, why, sizeof(why))) < 0)
			goto out;
	}
	if (!h.present) {
		r = last_seq ? -EBADMSG : 0;
		goto out;
	}
	if (h.count > last_seq || (h.count == last_seq && !ck_memeq(h.mac, last_mac, CK_HASH_LEN))) {
		r = -EBADMSG;
		goto out;
	}
	/* A head that lags (a writer crashed) vouches for the records after
	 * it only once the whole chain is checked. */
	if (h.count < last_seq && (r = walk(v, fd, &h, &good, why, sizeof(why))) < 0)
		goto out;
	if (last_seq > 0)
		ck_hex(last_mac, CK_HASH_LEN, hex);
	if (count)
		*count = (long)last_seq;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* ---- printing ---- */

/* Length of the valid UTF-8 character at s (1 to 4), 0 if invalid. */
static size_t utf8_char(const uint8_t *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, c = s[0] & 0x1f, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, c = s[0] & 0x0f, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, c = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static void json_str(FILE *out, const char *enc, size_t enc_len)
{
	uint8_t s[LINE_MAX_B];
	size_t n = val_decode(enc, enc_len, s), l;
	uint32_t cp;

	if (n == 0) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; i < n; i += l) {
		l = utf8_char(s + i, n - i, &cp);
		if (l == 0) {
			fputs("\\ufffd", out);  /* not UTF-8: replacement character */
			l = 1;
		} else if (cp == '"' || cp == '\\') {
			fprintf(out, "\\%c", (char)cp);
		} else if (cp == '\n') {
			fputs("\\n", out);
		} else if (cp == '\t') {
			fputs("\\t", out);
		} else if (cp < 0x20 || cp == 0x7f) {
			fprintf(out, "\\u%04x", (unsigned)cp);
		} else {
			fwrite(s + i, 1, l, out);
		}
	}
	fputc('"', out);
}

/* Terminal-safe: control characters, bidirectional overrides and bytes
 * that are not UTF-8 are shown escaped; a value that holds them, a space,
 * a quote or is "-" is quoted. Absent values print as -. */
static void human_str(FILE *out, const char *enc, size_t enc_len)
{
	uint8_t s[LINE_MAX_B];
	size_t n = val_decode(enc, enc_len, s), l;
	uint32_t cp;
	int quote = n == 1 && s[0] == '-';

	if (n == 0) {
		fputc('-', out);
		return;
	}
	for (size_t i = 0; i < n && !quote; i++)
		if (s[i] <= 0x20 || s[i] == '"' || s[i] == '\\' || s[i] >= 0x7f)
			quote = 1;
	if (quote)
		fputc('"', out);
	for (size_t i = 0; i < n; i += l) {
		l = utf8_char(s + i, n - i, &cp);
		if (l == 0) {
			fprintf(out, "\\x%02x", s[i]);
			l = 1;
		} else if (cp == '"' || cp == '\\') {
			fprintf(out, "\\%c", (char)cp);
		} else if (cp == '\n') {
			fputs("\\n", out);
		} else if (cp == '\t') {
			fputs("\\t", out);
		} else if (cp < 0x20 || cp == 0x7f) {
			fprintf(out, "\\x%02x", (unsigned)cp);
		} else if ((cp >= 0x80 && cp < 0xa0) || (cp >= 0x200b && cp <= 0x200f) ||
		           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
			fprintf(out, "\\u{%04x}", (unsigned)cp);
		} else {
			fwrite(s + i, 1, l, out);
		}
	}
	if (quote)
		fputc('"', out);
}

static void print_rec(FILE *out, const struct rec *r, int json, int first)
{
	char hex[2 * CK_HASH_LEN + 1];

	if (!json) {
		fprintf(out, "%lld %s ", r->seq, r->time);
		human_str(out, r->val[F_HOST], r->val_len[F_HOST]);
		fprintf(out, " pid=%ld ", r->pid);
		human_str(out, r->val[F_EVENT], r->val_len[F_EVENT]);
		for (int i = F_DEP; i < NVAL; i++) {
			fprintf(out, " %s=", val_key[i]);
			human_str(out, r->val[i], r->val_len[i]);
		}
		fputc('\n', out);
		return;
	}
	ck_hex(r->mac, CK_HASH_LEN, hex);
	fprintf(out, "%s\n  {\"version\": 1, \"seq\": %lld, \"time\": \"%s\", \"host\": ",
	        first ? "" : ",", r->seq, r->time);
	json_str(out, r->val[F_HOST], r->val_len[F_HOST]);
	fprintf(out, ", \"pid\": %ld", r->pid);
	for (int i = F_EVENT; i < NVAL; i++) {
		fprintf(out, ", \"%s\": ", val_key[i]);
		json_str(out, r->val[i], r->val_len[i]);
	}
	fprintf(out, ", \"mac\": \"%s\"}", hex);
}

int ck_audit_print(const struct ck_volume *v, FILE *out, int json)
{
	struct rd rd = { .buf = NULL };
	struct rec rec;
	const char *line;
	char why[96];
	size_t n;
	long long i = 0, printed = 0;
	int dfd = -1, fd = -1, r, k, malformed = 0;

	if (!v || v->fd < 0 || !out)
		return -EINVAL;
	if ((r = log_open(v, 0, &dfd, &fd)) < 0 || (r = rd_init(&rd, fd, 0)) < 0)
		goto out;
	if (json)
		fputc('[', out);
	while ((k = rd_next(&rd, &line, &n)) != RD_EOF) {
		if (k < 0) {
			r = k;
			break;
		}
		i++;
		if (k == RD_LINE && rec_parse(line, n, &rec, why, sizeof(why)) == 0) {
			print_rec(out, &rec, json, printed++ == 0);
			continue;
		}
		/* JSON output stays valid and holds only records; the caller
		 * learns of the bad lines from the result. */
		malformed = 1;
		if (!json)
			fprintf(out, "(line %lld of the audit log is malformed: %s)\n", i,
			        k == RD_LONG ? "too long" : k == RD_PARTIAL ? "no end of line" : why);
	}
	if (json)
		fputs(printed ? "\n]\n" : "]\n", out);
	if (r == 0 && malformed)
		r = -EBADMSG;
	if (r == 0 && (fflush(out) == EOF || ferror(out)))
		r = -EIO;
out:
	rd_release(&rd);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}
