/* Helpers shared by the libck unit tests: hex decoding, temporary
 * directories, whole-file read/write. Header-only so each test program
 * stays one .c file; everything is static inline to keep -Wunused quiet. */
#ifndef CK_TEST_H
#define CK_TEST_H
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "keys/secmem.h"

static inline int ck_test_hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decode a hex string into out (at most cap bytes); fails the test on a
 * malformed vector, so a typo in a vector file cannot pass silently. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);

	assert_int_equal(n % 2, 0);
	assert_true(n / 2 <= cap);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = ck_test_hexval(hex[2 * i]), lo = ck_test_hexval(hex[2 * i + 1]);
		assert_true(hi >= 0 && lo >= 0);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

/* malloc'ed copy (at least one byte, so n == 0 still gives a pointer). */
static inline uint8_t *unhex_alloc(const char *hex, size_t *n)
{
	size_t cap = strlen(hex) / 2 + 1;
	uint8_t *p = malloc(cap);

	assert_non_null(p);
	*n = unhex(hex, p, cap);
	return p;
}

/* A fresh 0700 directory under $TMPDIR (or /tmp); free() the result. */
static inline char *ck_test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	assert_true(asprintf(&p, "%s/ck-%s-XXXXXX", base, tag) > 0);
	assert_non_null(mkdtemp(p));
	return p;
}

static inline int ck_test_rm_one(const char *path, const struct stat *st, int flag,
                                 struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static inline void ck_test_rm_rf(const char *path)
{
	if (path)
		(void)nftw(path, ck_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void ck_test_write_file(const char *path, const void *buf, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* Reads up to cap bytes; returns the length. */
static inline size_t ck_test_read_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static inline char *ck_test_path(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* A deterministic, recognisable byte pattern (not random, so failures
 * reproduce). */
static inline void ck_test_fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

/* ---- tests/evil: files named KIND-ERRNO-what.bin ---- */
#include <dirent.h>

/* Set by main() from argv[1] (meson passes the directory). */
static const char *ck_test_evil_dir = "tests/evil";

static inline int ck_test_errno_by_name(const char *s, size_t n)
{
	static const struct { const char *name; int e; } t[] = {
		{ "EINVAL", EINVAL }, { "EBADMSG", EBADMSG },
		{ "EPROTONOSUPPORT", EPROTONOSUPPORT }, { "EPERM", EPERM },
		{ "ENOENT", ENOENT }, { "EKEYREJECTED", EKEYREJECTED },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].name) == n && !strncmp(t[i].name, s, n))
			return t[i].e;
	return 0;
}

typedef void (*ck_test_evil_fn)(const char *name, const uint8_t *buf, size_t n,
                                int want, void *arg);

/* Calls fn for every KIND-*.bin file with its contents and the expected
 * negative errno; returns how many files there were. */
static inline int ck_test_evil_each(const char *kind, ck_test_evil_fn fn, void *arg)
{
	DIR *d = opendir(ck_test_evil_dir);
	struct dirent *e;
	size_t kl = strlen(kind);
	int count = 0;

	if (!d)
		fail_msg("cannot open the evil input directory %s: %s", ck_test_evil_dir,
		         strerror(errno));
	while ((e = readdir(d))) {
		const char *name = e->d_name, *en, *dash;
		size_t len = strlen(name);
		uint8_t buf[1024];
		char *path;
		size_t n;
		int want;

		if (len < 4 || strcmp(name + len - 4, ".bin") || strncmp(name, kind, kl) ||
		    name[kl] != '-')
			continue;
		en = name + kl + 1;
		dash = strchr(en, '-');
		assert_non_null(dash);
		want = ck_test_errno_by_name(en, (size_t)(dash - en));
		if (!want)
			fail_msg("%s: unknown errno name in file name", name);
		path = ck_test_path(ck_test_evil_dir, name);
		n = ck_test_read_file(path, buf, sizeof(buf));
		free(path);
		fn(name, buf, n, -want, arg);
		count++;
	}
	closedir(d);
	return count;
}

static inline void ck_test_set_evil_dir(int argc, char **argv)
{
	if (argc > 1)
		ck_test_evil_dir = argv[1];
}

/* Every secret in libck lives in the secure heap; call from main()
 * before cmocka_run_group_tests. */
static inline int ck_test_secmem_init(void)
{
	int r = ck_secmem_init(1 << 20);

	if (r < 0)
		fprintf(stderr, "ck_secmem_init: %s\n", strerror(-r));
	return r;
}

#endif
