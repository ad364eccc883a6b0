/* Key files and the key directory (keys/keyfile.h). Layout from
 * docs/FORMAT.md, "Key file". Each test works in its own mkdtemp dir. */
#include "ck_test.h"
#include "keys/crypto.h"
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/util.h"

static void sample(uint8_t id[CK_ID_LEN], uint8_t key[CK_KEY_LEN])
{
	ck_test_fill(id, CK_ID_LEN, 0x10);
	ck_test_fill(key, CK_KEY_LEN, 0x40);
}

static int tmp_setup(void **state)
{
	*state = ck_test_tmpdir("keyfile");
	return 0;
}

static int tmp_teardown(void **state)
{
	ck_test_rm_rf(*state);
	free(*state);
	return 0;
}

static void keyfile_encode_decode_round_trips(void **state)
{
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], buf[CK_KEYFILE_LEN], id2[CK_ID_LEN], key2[CK_KEY_LEN];

	(void)state;
	sample(id, key);
	assert_int_equal(ck_keyfile_encode(id, key, buf), 0);
	/* docs/FORMAT.md: magic, version 1, flags 0, ID, key, XXH64 */
	assert_memory_equal(buf, "CKFSKEY1", 8);
	assert_int_equal(ck_get32(buf + 8), 1);
	assert_int_equal(ck_get32(buf + 12), 0);
	assert_memory_equal(buf + 16, id, CK_ID_LEN);
	assert_memory_equal(buf + 32, key, CK_KEY_LEN);
	assert_true(ck_get64(buf + 64) == ck_checksum(buf, 64));
	assert_int_equal(ck_keyfile_decode(buf, sizeof(buf), id2, key2), 0);
	assert_memory_equal(id2, id, CK_ID_LEN);
	assert_memory_equal(key2, key, CK_KEY_LEN);
}

static void keyfile_decode_rejects_flipped_byte_anywhere(void **state)
{
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], buf[CK_KEYFILE_LEN];

	(void)state;
	sample(id, key);
	assert_int_equal(ck_keyfile_encode(id, key, buf), 0);
	for (int i = 0; i < CK_KEYFILE_LEN; i++) {
		buf[i] ^= 0x01;
		assert_int_equal(ck_keyfile_decode(buf, sizeof(buf), id, key), -EBADMSG);
		buf[i] ^= 0x01;
	}
	for (size_t n = 0; n < CK_KEYFILE_LEN; n++)
		assert_int_equal(ck_keyfile_decode(buf, n, id, key), -EBADMSG);
}

static void keyfile_decode_rejects_unknown_version_and_flags(void **state)
{
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], buf[CK_KEYFILE_LEN];

	(void)state;
	sample(id, key);
	assert_int_equal(ck_keyfile_encode(id, key, buf), 0);
	ck_put32(buf + 8, 2);
	ck_put64(buf + 64, ck_checksum(buf, 64));
	assert_int_equal(ck_keyfile_decode(buf, sizeof(buf), id, key), -EPROTONOSUPPORT);
	assert_int_equal(ck_keyfile_encode(id, key, buf), 0);
	ck_put32(buf + 12, 4);
	ck_put64(buf + 64, ck_checksum(buf, 64));
	assert_int_equal(ck_keyfile_decode(buf, sizeof(buf), id, key), -EBADMSG);
}

static void check_evil_keyfile(const char *name, const uint8_t *buf, size_t n, int want, void *arg)
{
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN];
	const char *dir = arg;
	char *path = ck_test_path(dir, "evil.key");
	int r;

	r = ck_keyfile_decode(buf, n, id, key);
	if (r != want)
		fail_msg("%s: ck_keyfile_decode returned %d, want %d", name, r, want);
	/* The same bytes in a properly protected file. */
	ck_test_write_file(path, buf, n, 0600);
	r = ck_keyfile_read(path, id, key);
	if (r != want)
		fail_msg("%s: ck_keyfile_read returned %d, want %d", name, r, want);
	unlink(path);
	free(path);
}

static void keyfile_decode_and_read_reject_every_evil_file(void **state)
{
	assert_true(ck_test_evil_each("keyfile", check_evil_keyfile, *state) >= 5);
}

static void keyfile_write_then_read_gives_same_key_mode_0600(void **state)
{
	const char *dir = *state;
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], id2[CK_ID_LEN], key2[CK_KEY_LEN];
	uint8_t raw[CK_KEYFILE_LEN + 8], enc[CK_KEYFILE_LEN];
	char path[4096];
	struct stat st;
	mode_t old = umask(0);   /* the file must be 0600 whatever the umask */

	sample(id, key);
	ck_keyfile_path(dir, id, path, sizeof(path));
	assert_int_equal(ck_keyfile_write(path, id, key), 0);
	umask(old);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, CK_KEYFILE_LEN);
	/* The file is exactly the encoded record. */
	assert_int_equal(ck_test_read_file(path, raw, sizeof(raw)), CK_KEYFILE_LEN);
	assert_int_equal(ck_keyfile_encode(id, key, enc), 0);
	assert_memory_equal(raw, enc, CK_KEYFILE_LEN);
	assert_int_equal(ck_keyfile_read(path, id2, key2), 0);
	assert_memory_equal(id2, id, CK_ID_LEN);
	assert_memory_equal(key2, key, CK_KEY_LEN);
}

static void keyfile_path_is_dir_slash_hex_id_dot_key(void **state)
{
	uint8_t id[CK_ID_LEN];
	char path[256];

	(void)state;
	for (int i = 0; i < CK_ID_LEN; i++)
		id[i] = (uint8_t)(i * 0x11);
	ck_keyfile_path("/k", id, path, sizeof(path));
	assert_string_equal(path, "/k/00112233445566778899aabbccddeeff.key");
	/* truncates instead of overflowing */
	memset(path, 'X', sizeof(path));
	ck_keyfile_path("/k", id, path, 10);
	assert_int_equal(strlen(path), 9);
}

static void keyfile_write_refuses_existing_file(void **state)
{
	const char *dir = *state;
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], other[CK_KEY_LEN], id2[CK_ID_LEN], key2[CK_KEY_LEN];
	char *path = ck_test_path(dir, "k.key"), *link = ck_test_path(dir, "link.key");
	char *target = ck_test_path(dir, "target");

	sample(id, key);
	assert_int_equal(ck_keyfile_write(path, id, key), 0);
	ck_test_fill(other, sizeof(other), 0x99);
	assert_int_equal(ck_keyfile_write(path, id, other), -EEXIST);
	/* the original key is untouched */
	assert_int_equal(ck_keyfile_read(path, id2, key2), 0);
	assert_memory_equal(key2, key, CK_KEY_LEN);
	/* nor does it write through a symlink */
	assert_int_equal(symlink(target, link), 0);
	assert_true(ck_keyfile_write(link, id, key) < 0);
	assert_int_equal(access(target, F_OK), -1);
	free(path);
	free(link);
	free(target);
}

static void keyfile_read_of_group_or_world_readable_file_is_eperm(void **state)
{
	const char *dir = *state;
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], buf[CK_KEYFILE_LEN];
	char *path = ck_test_path(dir, "lax.key");
	const mode_t modes[] = { 0644, 0640, 0604, 0660, 0606, 0610, 0601, 0666, 0620 };

	sample(id, key);
	assert_int_equal(ck_keyfile_encode(id, key, buf), 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ck_test_write_file(path, buf, sizeof(buf), modes[i]);
		assert_int_equal(ck_keyfile_read(path, id, key), -EPERM);
	}
	/* 0400 is fine (owner only) */
	ck_test_write_file(path, buf, sizeof(buf), 0400);
	assert_int_equal(ck_keyfile_read(path, id, key), 0);
	free(path);
}

static void keyfile_read_of_symlink_or_directory_is_refused(void **state)
{
	const char *dir = *state;
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN];
	char *real = ck_test_path(dir, "real.key"), *link = ck_test_path(dir, "link.key");
	char *sub = ck_test_path(dir, "sub.key");

	sample(id, key);
	assert_int_equal(ck_keyfile_write(real, id, key), 0);
	assert_int_equal(symlink(real, link), 0);
	assert_int_equal(ck_keyfile_read(link, id, key), -EPERM);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_true(ck_keyfile_read(sub, id, key) < 0);
	free(real);
	free(link);
	free(sub);
}

static void keyfile_read_of_missing_file_is_enoent(void **state)
{
	const char *dir = *state;
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN];
	char *path = ck_test_path(dir, "nothere.key");

	assert_int_equal(ck_keyfile_read(path, id, key), -ENOENT);
	free(path);
}

static void key_dir_check_creates_0700_directory(void **state)
{
	const char *dir = *state;
	char *kd = ck_test_path(dir, "a/b/keys");
	struct stat st;
	mode_t old = umask(0);

	assert_int_equal(ck_key_dir_check(kd, 1), 0);
	umask(old);
	assert_int_equal(stat(kd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	/* checking again (exists already) is fine, with or without create */
	assert_int_equal(ck_key_dir_check(kd, 1), 0);
	assert_int_equal(ck_key_dir_check(kd, 0), 0);
	free(kd);
}

static void key_dir_check_refuses_group_or_world_accessible_dir(void **state)
{
	const char *dir = *state;
	char *kd = ck_test_path(dir, "keys");
	const mode_t modes[] = { 0755, 0777, 0750, 0705, 0770, 0701, 0710 };

	assert_int_equal(mkdir(kd, 0700), 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(kd, modes[i]), 0);
		assert_int_equal(ck_key_dir_check(kd, 0), -EPERM);
		assert_int_equal(ck_key_dir_check(kd, 1), -EPERM);
	}
	/* and it does not "fix" the mode behind the user's back */
	{
		struct stat st;
		assert_int_equal(stat(kd, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0710);
	}
	assert_int_equal(chmod(kd, 0700), 0);
	assert_int_equal(ck_key_dir_check(kd, 0), 0);
	free(kd);
}

static void key_dir_check_reports_missing_and_non_directory(void **state)
{
	const char *dir = *state;
	char *missing = ck_test_path(dir, "missing");
	char *file = ck_test_path(dir, "file");
	char *link = ck_test_path(dir, "link");
	char *real = ck_test_path(dir, "real");

	assert_int_equal(ck_key_dir_check(missing, 0), -ENOENT);
	assert_int_equal(access(missing, F_OK), -1);
	ck_test_write_file(file, "x", 1, 0600);
	assert_int_equal(ck_key_dir_check(file, 0), -ENOTDIR);
	assert_true(ck_key_dir_check(file, 1) < 0);
	/* A symlink to a good directory is not a key directory. */
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, link), 0);
	assert_true(ck_key_dir_check(link, 0) < 0);
	free(missing);
	free(file);
	free(link);
	free(real);
}

static void key_dir_prefers_explicit_then_env_then_default(void **state)
{
	const char *saved = getenv("CKFS_KEY_DIR");
	char *copy = saved ? strdup(saved) : NULL;

	(void)state;
	assert_int_equal(setenv("CKFS_KEY_DIR", "/env/keys", 1), 0);
	assert_string_equal(ck_key_dir(NULL), "/env/keys");
	assert_string_equal(ck_key_dir("/explicit"), "/explicit");
	assert_int_equal(unsetenv("CKFS_KEY_DIR"), 0);
	assert_string_equal(ck_key_dir(NULL), CK_KEY_DIR_DEFAULT);
	assert_string_equal(CK_KEY_DIR_DEFAULT, "/var/lib/ckfs/keys");
	assert_string_equal(ck_key_dir("/explicit"), "/explicit");
	/* an empty variable is no setting */
	assert_int_equal(setenv("CKFS_KEY_DIR", "", 1), 0);
	assert_string_equal(ck_key_dir(NULL), CK_KEY_DIR_DEFAULT);
	if (copy)
		setenv("CKFS_KEY_DIR", copy, 1);
	else
		unsetenv("CKFS_KEY_DIR");
	free(copy);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmp_setup, tmp_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keyfile_encode_decode_round_trips),
		cmocka_unit_test(keyfile_decode_rejects_flipped_byte_anywhere),
		cmocka_unit_test(keyfile_decode_rejects_unknown_version_and_flags),
		T(keyfile_decode_and_read_reject_every_evil_file),
		T(keyfile_write_then_read_gives_same_key_mode_0600),
		cmocka_unit_test(keyfile_path_is_dir_slash_hex_id_dot_key),
		T(keyfile_write_refuses_existing_file),
		T(keyfile_read_of_group_or_world_readable_file_is_eperm),
		T(keyfile_read_of_symlink_or_directory_is_refused),
		T(keyfile_read_of_missing_file_is_enoent),
		T(key_dir_check_creates_0700_directory),
		T(key_dir_check_refuses_group_or_world_accessible_dir),
		T(key_dir_check_reports_missing_and_non_directory),
		cmocka_unit_test(key_dir_prefers_explicit_then_env_then_default),
	};

	ck_test_set_evil_dir(argc, argv);
	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("keyfile", tests, NULL, NULL);
}
