/* Fuzz the audit log readers (keys/audit.c): ck_audit_verify,
 * ck_audit_print (human and JSON, to /dev/null) and ck_audit_head, on a
 * real volume made once (ck_volume_create + ck_volume_open in a mkdtemp
 * directory) whose .ckfs/audit.log and .ckfs/audit.head are rewritten from
 * the input every run.
 *
 * Input: mode byte | k byte | log bytes [| NUL | head bytes]
 *   mode bit 0: fix the chain: every line holding " mac=" and 64 more
 *               bytes gets the right MAC (HMAC-SHA256 under the volume's
 *               audit key over the previous line's MAC and the line up to
 *               " mac="), so that verify walks past record 1;
 *   mode bit 1: no audit.head at all (otherwise the bytes after the first
 *               NUL are the head, or an empty head if there is no NUL);
 *   mode bit 2: instead, a correct head for record k % (lines + 1);
 *   mode bit 3: also ck_audit_append one record (it must refuse or keep a
 *               chain that verifies).
 * Property: when the log verified, an append that succeeds leaves a log
 * that still verifies. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "keys/audit.h"
#include "keys/util.h"
#include "keys/volume.h"
#include "tests/fuzz/fuzz.h"

#define HEAD_LABEL "ckfs-audit-head-v1\n"

static struct ck_volume vol;
static char base[4096];
static int meta = -1;
static FILE *devnull;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void cleanup(void)
{
	if (meta >= 0)
		close(meta);
	ck_volume_close(&vol);
	if (base[0])
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char vpath[4200], kpath[4200], msg[512];
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/ckfs-fuzz-audit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("fuzz_audit_log: mkdtemp");
		exit(1);
	}
	snprintf(vpath, sizeof(vpath), "%s/vol", base);
	snprintf(kpath, sizeof(kpath), "%s/keys", base);
	if (mkdir(kpath, 0700) < 0 ||
	    ck_volume_create(vpath, kpath, 0, msg, sizeof(msg)) < 0 ||
	    ck_volume_open(vpath, kpath, &vol, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "fuzz_audit_log: cannot make a volume in %s: %s\n", base, msg);
		exit(1);
	}
	meta = openat(vol.fd, CK_VOLUME_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	devnull = fopen("/dev/null", "w");
	if (meta < 0 || !devnull) {
		perror("fuzz_audit_log: open");
		exit(1);
	}
	/* ck_audit_append logs refusals; keep them off the fuzzer's stderr. */
	ck_log_init("ckfs-fuzz", 1, 0);
	atexit(cleanup);
	return 0;
}

static void put_file(const char *name, const void *p, size_t n)
{
	int fd = openat(meta, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	FZ_CHECK(fd >= 0);
	FZ_CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
	close(fd);
}

/* Makes every MAC in the log right; macs[i] receives the chain value after
 * line i + 1 (the fixed MAC, or the previous one for a line without one). */
static size_t fix_chain(char *log, size_t n, int fix, uint8_t (*macs)[CK_HASH_LEN], size_t max)
{
	uint8_t prev[CK_HASH_LEN] = { 0 }, m[CK_HASH_LEN];
	char hex[2 * CK_HASH_LEN + 1];
	size_t lines = 0, s = 0;

	while (s < n && lines < max) {
		char *nl = memchr(log + s, '\n', n - s);
		size_t e = nl ? (size_t)(nl - log) : n, at = (size_t)-1;

		for (size_t i = s; i + 5 <= e; i++)
			if (!memcmp(log + i, " mac=", 5))
				at = i;
		if (fix && at != (size_t)-1 && e - (at + 5) >= 2 * CK_HASH_LEN) {
			const void *parts[2] = { prev, log + s };
			size_t lens[2] = { CK_HASH_LEN, at - s };
			FZ_CHECK(ck_hmac_sha256(vol.audit_key, parts, lens, 2, m) == 0);
			ck_hex(m, CK_HASH_LEN, hex);
			memcpy(log + at + 5, hex, 2 * CK_HASH_LEN);
			memcpy(prev, m, CK_HASH_LEN);
		}
		memcpy(macs[lines++], prev, CK_HASH_LEN);
		s = e + 1;
	}
	return lines;
}

static void good_head(long long count, const uint8_t mac[CK_HASH_LEN])
{
	char text[256], hex[2 * CK_HASH_LEN + 1];
	uint8_t hm[CK_HASH_LEN];
	int n;

	ck_hex(mac, CK_HASH_LEN, hex);
	n = snprintf(text, sizeof(text), "count=%lld mac=%s", count, hex);
	const void *parts[2] = { HEAD_LABEL, text };
	size_t lens[2] = { sizeof(HEAD_LABEL) - 1, (size_t)n };
	FZ_CHECK(ck_hmac_sha256(vol.audit_key, parts, lens, 2, hm) == 0);
	ck_hex(hm, CK_HASH_LEN, hex);
	n += snprintf(text + n, sizeof(text) - (size_t)n, " hmac=%s\n", hex);
	put_file("audit.head", text, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t macs[4096][CK_HASH_LEN];
	static const uint8_t zero[CK_HASH_LEN];
	const uint8_t *nul;
	char *log, msg[512], hex[65];
	size_t log_n, lines;
	long count;
	int mode, k, r, verified;

	if (size < 2 || size > 200000)
		return 0;
	mode = data[0];
	k = data[1];
	data += 2;
	size -= 2;
	nul = memchr(data, 0, size);
	log_n = nul ? (size_t)(nul - data) : size;
	log = malloc(log_n ? log_n : 1);
	memcpy(log, data, log_n);
	lines = fix_chain(log, log_n, mode & 1, macs, sizeof(macs) / sizeof(macs[0]));
	put_file("audit.log", log, log_n);
	if (mode & 4) {
		long long c = lines ? k % (long long)(lines + 1) : 0;
		good_head(c, c ? macs[c - 1] : zero);
	} else if (mode & 2) {
		unlinkat(meta, "audit.head", 0);
	} else {
		put_file("audit.head", nul ? nul + 1 : data, nul ? size - log_n - 1 : 0);
	}
	free(log);

	r = ck_audit_verify(&vol, &count, msg, sizeof(msg));
	FZ_CHECK(r == 0 || r == -EBADMSG);
	verified = r == 0;
	FZ_CHECK(count >= 0);
	r = ck_audit_print(&vol, devnull, 0);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	r = ck_audit_print(&vol, devnull, 1);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	r = ck_audit_head(&vol, hex, &count);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	if (mode & 8) {
		struct ck_audit_event e = { .event = "fuzz", .dep = "d", .result = "ok",
		                            .actor = "fuzzer" };
		r = ck_audit_append(&vol, &e);
		FZ_CHECK(r == 0 || r == -EBADMSG);
		if (r == 0 && verified)
			FZ_CHECK(ck_audit_verify(&vol, &count, msg, sizeof(msg)) == 0);
	}
	return 0;
}
