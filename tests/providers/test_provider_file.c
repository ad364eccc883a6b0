/* The file: key provider (keys/provider_file.c): create, wrap/unwrap round
 * trip, probe, destroy, and each answer: denied for a missing or
 * inaccessible key file, -EACCES for an unsafe one, -EBADMSG for a corrupt
 * one or a wrap made by another key, -EAGAIN for other errors, -EINVAL for
 * malformed URIs. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "keys/crypto.h"
#include "keys/keyfile.h"
#include "keys/provider.h"
#include "keys/secmem.h"
#include "tests/unit/ck_test.h"

struct fixture {
	char *dir;          /* private 0700 temp directory */
	char *uri;          /* file:<dir>/keys/a.key, created by setup */
	char *path;
	uint8_t *key;       /* CK_WRAP_MAX of secret memory */
	char msg[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = ck_test_tmpdir("pfile");
	assert_true(asprintf(&f->path, "%s/keys/a.key", f->dir) > 0);
	assert_true(asprintf(&f->uri, "file:%s", f->path) > 0);
	f->key = ck_secret_alloc(CK_WRAP_MAX);
	assert_non_null(f->key);
	assert_int_equal(ck_provider_file.create(f->uri, f->msg, sizeof(f->msg)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ck_test_rm_rf(f->dir);
	free(f->dir);
	free(f->uri);
	free(f->path);
	ck_secret_free(f->key, CK_WRAP_MAX);
	free(f);
	return 0;
}

static int wrap(struct fixture *f, const char *uri, const uint8_t *key, size_t n,
                uint8_t *out, size_t *out_len)
{
	f->msg[0] = '\0';
	return ck_provider_file.wrap(uri, key, n, out, out_len, f->msg, sizeof(f->msg));
}

static int unwrap(struct fixture *f, const char *uri, const uint8_t *in, size_t n,
                  size_t *key_len)
{
	size_t dummy;

	f->msg[0] = '\0';
	return ck_provider_file.unwrap(uri, in, n, f->key, key_len ? key_len : &dummy,
	                               f->msg, sizeof(f->msg));
}

static int probe(struct fixture *f, const char *uri)
{
	f->msg[0] = '\0';
	return ck_provider_file.probe(uri, f->msg, sizeof(f->msg));
}

/* A wrap of a fixed 32-byte key under the fixture's key file. */
static size_t wrap_some(struct fixture *f, uint8_t out[CK_WRAP_MAX], uint8_t dek[CK_KEY_LEN])
{
	size_t n = 0;

	ck_test_fill(dek, CK_KEY_LEN, 77);
	assert_int_equal(wrap(f, f->uri, dek, CK_KEY_LEN, out, &n), 0);
	return n;
}

static void create_makes_a_0600_key_in_a_0700_directory(void **state)
{
	struct fixture *f = *state;
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN];
	char *keys = ck_test_path(f->dir, "keys");
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, CK_KEYFILE_LEN);
	assert_int_equal(stat(keys, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* It is an ordinary key file (keys/keyfile.h). */
	assert_int_equal(ck_keyfile_read(f->path, id, key), 0);
	free(keys);
}

static void wrap_unwrap_round_trips_and_probe_answers_ok(void **state)
{
	struct fixture *f = *state;
	uint8_t wrapped[CK_WRAP_MAX], dek[CK_KEY_LEN], kek[CK_KEY_LEN], id[CK_ID_LEN];
	uint8_t check[CK_WRAP_MAX];
	size_t wlen = wrap_some(f, wrapped, dek), klen = 0, clen = 0;

	assert_int_equal(wlen, CK_KEY_LEN + CK_WRAP_OVERHEAD);
	assert_int_equal(unwrap(f, f->uri, wrapped, wlen, &klen), 0);
	assert_int_equal(klen, CK_KEY_LEN);
	assert_memory_equal(f->key, dek, CK_KEY_LEN);
	assert_int_equal(probe(f, f->uri), 0);
	assert_int_equal(ck_provider_file.check_uri(f->uri, f->msg, sizeof(f->msg)), 0);
	/* Plain RFC 5649 under the key in the file. */
	assert_int_equal(ck_keyfile_read(f->path, id, kek), 0);
	assert_int_equal(ck_key_unwrap(kek, wrapped, wlen, check, &clen), 0);
	assert_memory_equal(check, dek, CK_KEY_LEN);
	/* Odd lengths too (padding). */
	for (size_t n = 1; n <= 17; n += 8) {
		assert_int_equal(wrap(f, f->uri, dek, n, wrapped, &wlen), 0);
		assert_int_equal(unwrap(f, f->uri, wrapped, wlen, &klen), 0);
		assert_int_equal(klen, n);
		assert_memory_equal(f->key, dek, n);
	}
}

static void wrap_made_by_another_key_file_is_ebadmsg(void **state)
{
	struct fixture *f = *state;
	uint8_t wrapped[CK_WRAP_MAX], dek[CK_KEY_LEN];
	size_t wlen = wrap_some(f, wrapped, dek);
	char *other;

	assert_true(asprintf(&other, "file:%s/keys/b.key", f->dir) > 0);
	assert_int_equal(ck_provider_file.create(other, f->msg, sizeof(f->msg)), 0);
	assert_int_equal(unwrap(f, other, wrapped, wlen, NULL), -EBADMSG);
	assert_non_null(strstr(f->msg, "wrapped key does not match this key file"));
	/* A flipped bit is the same answer. */
	wrapped[5] ^= 1;
	assert_int_equal(unwrap(f, f->uri, wrapped, wlen, NULL), -EBADMSG);
	/* Lengths that cannot be a wrap. */
	assert_int_equal(unwrap(f, f->uri, wrapped, 8, NULL), -EBADMSG);
	assert_int_equal(unwrap(f, f->uri, wrapped, 41, NULL), -EBADMSG);
	assert_int_equal(unwrap(f, f->uri, wrapped, CK_WRAP_MAX + 8, NULL), -EBADMSG);
	free(other);
}

static void deleted_key_file_is_denied(void **state)
{
	struct fixture *f = *state;
	uint8_t wrapped[CK_WRAP_MAX], dek[CK_KEY_LEN], out[CK_WRAP_MAX];
	size_t wlen = wrap_some(f, wrapped, dek), olen;
	char *keys = ck_test_path(f->dir, "keys"), *gone_dir;

	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(unwrap(f, f->uri, wrapped, wlen, NULL), -EKEYREVOKED);
	assert_non_null(strstr(f->msg, "does not exist"));
	assert_int_equal(probe(f, f->uri), -EKEYREVOKED);
	assert_int_equal(wrap(f, f->uri, dek, sizeof(dek), out, &olen), -EKEYREVOKED);
	/* The whole key directory gone: the same. */
	assert_int_equal(rmdir(keys), 0);
	assert_int_equal(probe(f, f->uri), -EKEYREVOKED);
	assert_true(asprintf(&gone_dir, "file:%s/nowhere/x.key", f->dir) > 0);
	assert_int_equal(probe(f, gone_dir), -EKEYREVOKED);
	free(gone_dir);
	free(keys);
}

/* EACCES (our access taken away) is a denial too. root passes permission
 * checks, so as root the probe runs in a child that drops to nobody
 * (65534), for which the 0700 test directory is closed; as any other user
 * the key file is made mode 000. */
static void key_file_we_may_not_read_is_denied(void **state)
{
	struct fixture *f = *state;
	int r;

	if (geteuid() != 0) {
		assert_int_equal(chmod(f->path, 0), 0);
		assert_int_equal(probe(f, f->uri), -EKEYREVOKED);
		assert_non_null(strstr(f->msg, "permission denied"));
		return;
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(100);
		r = probe(f, f->uri);
		_exit(r == -EKEYREVOKED && strstr(f->msg, "permission denied") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &r, 0), pid);
	assert_true(WIFEXITED(r));
	assert_int_equal(WEXITSTATUS(r), 0);
}

static void unsafe_key_file_is_eacces_with_a_message(void **state)
{
	struct fixture *f = *state;
	uint8_t wrapped[CK_WRAP_MAX], dek[CK_KEY_LEN];
	size_t wlen = wrap_some(f, wrapped, dek);
	char *link_path, *link_uri;

	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(unwrap(f, f->uri, wrapped, wlen, NULL), -EACCES);
	assert_non_null(strstr(f->msg, "chmod 600"));
	assert_int_equal(probe(f, f->uri), -EACCES);
	assert_int_equal(chmod(f->path, 0640), 0);
	assert_int_equal(probe(f, f->uri), -EACCES);
	assert_int_equal(chmod(f->path, 0600), 0);
	assert_int_equal(probe(f, f->uri), 0);
	/* A symlink to the key file is refused, not followed. */
	assert_true(asprintf(&link_path, "%s/link.key", f->dir) > 0);
	assert_true(asprintf(&link_uri, "file:%s", link_path) > 0);
	assert_int_equal(symlink(f->path, link_path), 0);
	assert_int_equal(probe(f, link_uri), -EACCES);
	free(link_uri);
	free(link_path);
}

static void corrupt_key_file_is_ebadmsg(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[CK_KEYFILE_LEN];

	assert_int_equal(ck_test_read_file(f->path, buf, sizeof(buf)), CK_KEYFILE_LEN);
	buf[40] ^= 0x80;
	ck_test_write_file(f->path, buf, sizeof(buf), 0600);
	assert_int_equal(probe(f, f->uri), -EBADMSG);
	assert_non_null(strstr(f->msg, "corrupt"));
	ck_test_write_file(f->path, "not a key\n", 10, 0600);
	assert_int_equal(probe(f, f->uri), -EBADMSG);
	ck_test_write_file(f->path, "", 0, 0600);
	assert_int_equal(probe(f, f->uri), -EBADMSG);
}

static void other_errors_are_unavailable(void **state)
{
	struct fixture *f = *state;
	char *uri;

	/* A path through a regular file: ENOTDIR, neither gone nor refused. */
	assert_true(asprintf(&uri, "file:%s/sub.key", f->path) > 0);
	assert_int_equal(probe(f, uri), -EAGAIN);
	assert_non_null(strstr(f->msg, "cannot be read"));
	free(uri);
}

static void malformed_uris_are_einval(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
		"file:", "file:relative/key", "file:key", "file://host/etc/key",
		"file:///etc/key", "file:/etc/ckfs/keys/", "exec:/bin/true",
		"pkcs11:token=x", "/etc/key", "file:/etc/k\ney",
	};
	uint8_t dek[CK_KEY_LEN] = { 1 }, out[CK_WRAP_MAX];
	size_t olen;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->msg[0] = '\0';
		if (ck_provider_file.check_uri(bad[i], f->msg, sizeof(f->msg)) != -EINVAL)
			fail_msg("check_uri accepted \"%s\"", bad[i]);
		assert_true(f->msg[0] != '\0');
		assert_int_equal(probe(f, bad[i]), -EINVAL);
		assert_int_equal(wrap(f, bad[i], dek, sizeof(dek), out, &olen), -EINVAL);
		assert_int_equal(unwrap(f, bad[i], out, 40, NULL), -EINVAL);
		assert_int_equal(ck_provider_file.create(bad[i], f->msg, sizeof(f->msg)), -EINVAL);
		assert_int_equal(ck_provider_file.destroy(bad[i], f->msg, sizeof(f->msg)), -EINVAL);
	}
	assert_string_equal(ck_provider_file.scheme, "file");
	/* Sizes wrap cannot take. */
	assert_int_equal(wrap(f, f->uri, dek, 0, out, &olen), -EINVAL);
	assert_int_equal(wrap(f, f->uri, dek, CK_WRAP_MAX, out, &olen), -EINVAL);
}

static void create_refuses_an_existing_file(void **state)
{
	struct fixture *f = *state;
	uint8_t before[CK_KEYFILE_LEN], after[CK_KEYFILE_LEN];
	char *other, *other_uri;

	ck_test_read_file(f->path, before, sizeof(before));
	assert_int_equal(ck_provider_file.create(f->uri, f->msg, sizeof(f->msg)), -EEXIST);
	assert_non_null(strstr(f->msg, "already exists"));
	ck_test_read_file(f->path, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	/* Not even over a file that is not a key. */
	other = ck_test_path(f->dir, "notes.txt");
	assert_true(asprintf(&other_uri, "file:%s", other) > 0);
	ck_test_write_file(other, "hello\n", 6, 0600);
	assert_int_equal(ck_provider_file.create(other_uri, f->msg, sizeof(f->msg)), -EEXIST);
	free(other_uri);
	free(other);
}

static void create_refuses_an_unsafe_directory(void **state)
{
	struct fixture *f = *state;
	char *open_dir = ck_test_path(f->dir, "open"), *uri;
	struct stat st;

	assert_int_equal(mkdir(open_dir, 0755), 0);
	assert_int_equal(chmod(open_dir, 0755), 0);
	assert_true(asprintf(&uri, "file:%s/x.key", open_dir) > 0);
	assert_int_equal(ck_provider_file.create(uri, f->msg, sizeof(f->msg)), -EPERM);
	assert_non_null(strstr(f->msg, "chmod 700"));
	assert_int_equal(lstat(uri + 5, &st), -1);
	free(uri);
	free(open_dir);
}

static void destroy_removes_the_key_and_is_idempotent(void **state)
{
	struct fixture *f = *state;
	uint8_t wrapped[CK_WRAP_MAX], dek[CK_KEY_LEN];
	size_t wlen = wrap_some(f, wrapped, dek);
	struct stat st;
	int fd;
	uint8_t seen[CK_KEYFILE_LEN], zeros[CK_KEYFILE_LEN] = { 0 };

	/* Hold the file open across destroy to see what is left in its
	 * blocks: zeros. */
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ck_provider_file.destroy(f->uri, f->msg, sizeof(f->msg)), 0);
	assert_int_equal(lstat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(pread(fd, seen, sizeof(seen), 0), (ssize_t)sizeof(seen));
	assert_memory_equal(seen, zeros, sizeof(seen));
	close(fd);
	assert_int_equal(unwrap(f, f->uri, wrapped, wlen, NULL), -EKEYREVOKED);
	/* A purge re-run after a crash finds nothing to do. */
	assert_int_equal(ck_provider_file.destroy(f->uri, f->msg, sizeof(f->msg)), 0);
}

static void destroy_refuses_a_file_that_is_not_a_key(void **state)
{
	struct fixture *f = *state;
	char *other = ck_test_path(f->dir, "notes.txt"), *uri, buf[16] = "";

	ck_test_write_file(other, "precious data\n", 14, 0600);
	assert_true(asprintf(&uri, "file:%s", other) > 0);
	assert_int_equal(ck_provider_file.destroy(uri, f->msg, sizeof(f->msg)), -EBADMSG);
	assert_non_null(strstr(f->msg, "not a ckfs key file"));
	ck_test_read_file(other, buf, sizeof(buf) - 1);
	assert_string_equal(buf, "precious data\n");
	free(uri);
	free(other);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(create_makes_a_0600_key_in_a_0700_directory),
		T(wrap_unwrap_round_trips_and_probe_answers_ok),
		T(wrap_made_by_another_key_file_is_ebadmsg),
		T(deleted_key_file_is_denied),
		T(key_file_we_may_not_read_is_denied),
		T(unsafe_key_file_is_eacces_with_a_message),
		T(corrupt_key_file_is_ebadmsg),
		T(other_errors_are_unavailable),
		T(malformed_uris_are_einval),
		T(create_refuses_an_existing_file),
		T(create_refuses_an_unsafe_directory),
		T(destroy_removes_the_key_and_is_idempotent),
		T(destroy_refuses_a_file_that_is_not_a_key),
	};

	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("provider_file", tests, NULL, NULL);
}
