/* Creating and opening volumes (keys/volume.h), each test in a fresh
 * mkdtemp directory holding VOL (the volume) and KEYS (its key dir). */
#include <ctype.h>
#include <glob.h>
#include "ck_test.h"
#include "keys/crypto.h"
#include "keys/format.h"
#include "keys/kdf_labels.h"
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/util.h"
#include "keys/volume.h"

struct env {
	char *top, *vol, *keys;
	char msg[512];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->top = ck_test_tmpdir("volume");
	e->vol = ck_test_path(e->top, "vol");
	e->keys = ck_test_path(e->top, "keys");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	ck_test_rm_rf(e->top);
	free(e->top);
	free(e->vol);
	free(e->keys);
	free(e);
	return 0;
}

/* STYLE.md: one line, lowercase, names the object at fault. */
static void assert_good_message(const char *msg)
{
	assert_true(msg[0] != '\0');
	if (isupper((unsigned char)msg[0]))
		fail_msg("message starts with a capital: \"%s\"", msg);
	assert_null(strchr(msg, '\n'));
}

static void create_ok(struct env *e, const char *vol, const char *keys)
{
	e->msg[0] = '\0';
	int r = ck_volume_create(vol, keys, 0, e->msg, sizeof(e->msg));
	if (r != 0)
		fail_msg("ck_volume_create(%s): %d: %s", vol, r, e->msg);
}

static void header_path(const char *vol, char *out, size_t n)
{
	snprintf(out, n, "%s/%s/%s", vol, CK_VOLUME_DIR, CK_VOLUME_HDR_NAME);
}

static void read_header(const char *vol, uint8_t buf[CK_VOLUME_HDR_LEN], struct ck_volume_hdr *h)
{
	char p[4096];

	header_path(vol, p, sizeof(p));
	assert_int_equal(ck_test_read_file(p, buf, CK_VOLUME_HDR_LEN), CK_VOLUME_HDR_LEN);
	assert_int_equal(ck_volume_hdr_decode(buf, CK_VOLUME_HDR_LEN, h), 0);
}

static void write_header(const char *vol, const uint8_t *buf, size_t n)
{
	char p[4096];

	header_path(vol, p, sizeof(p));
	ck_test_write_file(p, buf, n, 0600);
}

static int count_key_files(const char *keys)
{
	char pat[4096];
	glob_t g;
	int n;

	snprintf(pat, sizeof(pat), "%s/*.key", keys);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	n = (int)g.gl_pathc;
	globfree(&g);
	return n;
}

static int open_volume(struct env *e, const char *keys)
{
	struct ck_volume v;
	int r;

	e->msg[0] = '\0';
	r = ck_volume_open(e->vol, keys, &v, e->msg, sizeof(e->msg));
	if (r == 0)
		ck_volume_close(&v);
	return r;
}

static void volume_create_then_open_succeeds(void **state)
{
	struct env *e = *state;
	struct ck_volume v;
	struct stat st;
	char p[4096];
	uint8_t buf[CK_VOLUME_HDR_LEN], dirid[CK_DIRID_LEN + 1], id[CK_ID_LEN];

	create_ok(e, e->vol, e->keys);
	assert_int_equal(ck_volume_open(e->vol, e->keys, &v, e->msg, sizeof(e->msg)), 0);
	assert_non_null(v.path);
	assert_string_equal(v.path, e->vol);
	assert_true(v.fd >= 0);
	assert_int_equal(v.hdr.version, CK_FORMAT_VERSION);
	assert_int_equal(v.hdr.block_size, CK_BLOCK_SIZE);
	assert_int_equal(v.hdr.flags, 0);
	assert_true(v.hdr.created > 1600000000);
	assert_memory_equal(v.service.volume_id, v.hdr.volume_id, CK_ID_LEN);
	assert_memory_equal(v.service.id, v.hdr.service_tree_id, CK_ID_LEN);
	assert_non_null(v.service.key);
	assert_non_null(v.service.name_key);
	assert_non_null(v.service.xname_key);
	assert_non_null(v.service.symlink_key);
	assert_non_null(v.service.xvalue_key);

	/* docs/FORMAT.md, "Volume layout" */
	snprintf(p, sizeof(p), "%s/%s", e->vol, CK_VOLUME_DIR);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	header_path(e->vol, p, sizeof(p));
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_size, CK_VOLUME_HDR_LEN);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/%s", e->vol, CK_DIRID_FILE);
	assert_int_equal(ck_test_read_file(p, dirid, sizeof(dirid)), CK_DIRID_LEN);
	assert_int_equal(ck_dirid_decode(dirid, CK_DIRID_LEN, id), 0);
	read_header(e->vol, buf, &v.hdr);
	ck_keyfile_path(e->keys, v.hdr.kek_id, p, sizeof(p));
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(count_key_files(e->keys), 1);
	assert_int_equal(stat(e->keys, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	ck_volume_close(&v);
	/* closing twice is harmless */
	ck_volume_close(&v);
}

/* The volume's keys are the ones docs/FORMAT.md says, computed here from
 * the key file alone. */
static void volume_keys_follow_documented_hierarchy(void **state)
{
	struct env *e = *state;
	struct ck_volume v;
	struct ck_tree t;
	uint8_t buf[CK_VOLUME_HDR_LEN], kid[CK_ID_LEN], kek[CK_KEY_LEN], service[48];
	uint8_t mac_key[CK_KEY_LEN], tree_key[CK_KEY_LEN];
	const char *l;
	size_t sl = 0;
	char p[4096];

	create_ok(e, e->vol, e->keys);
	assert_int_equal(ck_volume_open(e->vol, e->keys, &v, e->msg, sizeof(e->msg)), 0);
	read_header(e->vol, buf, &v.hdr);
	ck_keyfile_path(e->keys, v.hdr.kek_id, p, sizeof(p));
	assert_int_equal(ck_keyfile_read(p, kid, kek), 0);
	assert_memory_equal(kid, v.hdr.kek_id, CK_ID_LEN);
	assert_int_equal(ck_key_unwrap(kek, v.hdr.wrapped_service_key, CK_WRAPPED_KEY_LEN,
	                               service, &sl), 0);
	assert_int_equal(sl, CK_KEY_LEN);
	l = CK_LABEL_VOLUME_MAC;
	assert_int_equal(ck_hkdf_sha256(service, CK_KEY_LEN, NULL, 0, (const uint8_t *)l,
	                                strlen(l), mac_key, CK_KEY_LEN), 0);
	assert_int_equal(ck_volume_hdr_verify(buf, mac_key), 0);
	l = CK_LABEL_SERVICE_TREE;
	assert_int_equal(ck_hkdf_sha256(service, CK_KEY_LEN, NULL, 0, (const uint8_t *)l,
	                                strlen(l), tree_key, CK_KEY_LEN), 0);
	assert_memory_equal(v.service.key, tree_key, CK_KEY_LEN);
	{
		const char *labels[] = { CK_LABEL_RECORDS, CK_LABEL_AUDIT, CK_LABEL_CERT };
		const uint8_t *keys[] = { v.record_key, v.audit_key, v.cert_key };
		uint8_t want[CK_KEY_LEN];

		for (int i = 0; i < 3; i++) {
			assert_non_null(keys[i]);
			assert_int_equal(ck_hkdf_sha256(service, CK_KEY_LEN, NULL, 0,
			                                (const uint8_t *)labels[i], strlen(labels[i]),
			                                want, CK_KEY_LEN), 0);
			assert_memory_equal(keys[i], want, CK_KEY_LEN);
		}
	}
	assert_int_equal(ck_tree_init(&t, v.hdr.volume_id, v.hdr.service_tree_id, tree_key), 0);
	assert_memory_equal(t.name_key, v.service.name_key, CK_SIV_KEY_LEN);
	assert_memory_equal(t.xname_key, v.service.xname_key, CK_SIV_KEY_LEN);
	assert_memory_equal(t.symlink_key, v.service.symlink_key, CK_KEY_LEN);
	assert_memory_equal(t.xvalue_key, v.service.xvalue_key, CK_KEY_LEN);
	ck_tree_release(&t);
	ck_volume_close(&v);
}

static void volume_create_in_existing_empty_dir_succeeds(void **state)
{
	struct env *e = *state;

	assert_int_equal(mkdir(e->vol, 0755), 0);
	create_ok(e, e->vol, e->keys);
	assert_int_equal(open_volume(e, e->keys), 0);
}

static void volume_create_refuses_non_empty_dir(void **state)
{
	struct env *e = *state;
	char *f = ck_test_path(e->vol, "mail");
	char p[4096];
	int r;

	assert_int_equal(mkdir(e->vol, 0755), 0);
	ck_test_write_file(f, "hello", 5, 0644);
	r = ck_volume_create(e->vol, e->keys, 0, e->msg, sizeof(e->msg));
	assert_true(r < 0);
	assert_good_message(e->msg);
	/* nothing was written: no metadata, no key file */
	snprintf(p, sizeof(p), "%s/%s", e->vol, CK_VOLUME_DIR);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/%s", e->vol, CK_DIRID_FILE);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(count_key_files(e->keys), 0);
	free(f);
}

static void volume_create_refuses_existing_volume(void **state)
{
	struct env *e = *state;
	uint8_t before[CK_VOLUME_HDR_LEN], after[CK_VOLUME_HDR_LEN];
	struct ck_volume_hdr h;
	int r;

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, before, &h);
	r = ck_volume_create(e->vol, e->keys, 0, e->msg, sizeof(e->msg));
	assert_true(r < 0);
	assert_good_message(e->msg);
	read_header(e->vol, after, &h);
	assert_memory_equal(before, after, CK_VOLUME_HDR_LEN);
	assert_int_equal(count_key_files(e->keys), 1);
	assert_int_equal(open_volume(e, e->keys), 0);
}

/* --force re-initialises but keeps the old header and its key file. */
static void volume_create_force_keeps_old_header_and_key(void **state)
{
	struct env *e = *state;
	uint8_t old[CK_VOLUME_HDR_LEN], now[CK_VOLUME_HDR_LEN], kept[CK_VOLUME_HDR_LEN];
	struct ck_volume_hdr oh, nh;
	char pat[4096];
	glob_t g;

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, old, &oh);
	assert_int_equal(ck_volume_create(e->vol, e->keys, 1, e->msg, sizeof(e->msg)), 0);
	read_header(e->vol, now, &nh);
	assert_memory_not_equal(oh.volume_id, nh.volume_id, CK_ID_LEN);
	assert_int_equal(count_key_files(e->keys), 2);
	snprintf(pat, sizeof(pat), "%s/%s/%s.old-*", e->vol, CK_VOLUME_DIR, CK_VOLUME_HDR_NAME);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 1);
	assert_int_equal(ck_test_read_file(g.gl_pathv[0], kept, sizeof(kept)), CK_VOLUME_HDR_LEN);
	assert_memory_equal(kept, old, CK_VOLUME_HDR_LEN);
	globfree(&g);
	assert_int_equal(open_volume(e, e->keys), 0);
}

/* Each re-initialisation keeps its predecessor's header: two in a row (in
 * the same second, as a script would do) must not overwrite the first
 * kept header, or the first volume's wrapped service key is lost. */
static void volume_create_force_twice_keeps_both_old_headers(void **state)
{
	struct env *e = *state;
	uint8_t first[CK_VOLUME_HDR_LEN], buf[CK_VOLUME_HDR_LEN];
	struct ck_volume_hdr h;
	char pat[4096];
	glob_t g;
	size_t n;
	int found_first = 0;

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, first, &h);
	assert_int_equal(ck_volume_create(e->vol, e->keys, 1, e->msg, sizeof(e->msg)), 0);
	assert_int_equal(ck_volume_create(e->vol, e->keys, 1, e->msg, sizeof(e->msg)), 0);
	assert_int_equal(count_key_files(e->keys), 3);
	snprintf(pat, sizeof(pat), "%s/%s/%s.old-*", e->vol, CK_VOLUME_DIR, CK_VOLUME_HDR_NAME);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		assert_int_equal(ck_test_read_file(g.gl_pathv[i], buf, sizeof(buf)), CK_VOLUME_HDR_LEN);
		found_first |= !memcmp(buf, first, sizeof(buf));
	}
	n = g.gl_pathc;
	globfree(&g);
	if (n != 2 || !found_first)
		fail_msg("after two forced re-initialisations %zu old header(s) kept; the first "
		         "volume's header is %s", n, found_first ? "kept" : "lost");
}

static void volume_create_force_accepts_non_empty_dir(void **state)
{
	struct env *e = *state;
	char *f = ck_test_path(e->vol, "stuff");

	assert_int_equal(mkdir(e->vol, 0755), 0);
	ck_test_write_file(f, "x", 1, 0644);
	assert_int_equal(ck_volume_create(e->vol, e->keys, 1, e->msg, sizeof(e->msg)), 0);
	assert_int_equal(open_volume(e, e->keys), 0);
	assert_int_equal(access(f, F_OK), 0);
	free(f);
}

static void volume_create_refuses_unsafe_key_dir(void **state)
{
	struct env *e = *state;

	assert_int_equal(mkdir(e->keys, 0755), 0);
	assert_int_equal(chmod(e->keys, 0755), 0);
	assert_int_equal(ck_volume_create(e->vol, e->keys, 0, e->msg, sizeof(e->msg)), -EPERM);
	assert_good_message(e->msg);
	assert_int_equal(count_key_files(e->keys), 0);
}

static void volume_open_fails_with_missing_key_file(void **state)
{
	struct env *e = *state;
	uint8_t buf[CK_VOLUME_HDR_LEN];
	struct ck_volume_hdr h;
	char p[4096];
	int r;

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, buf, &h);
	ck_keyfile_path(e->keys, h.kek_id, p, sizeof(p));
	assert_int_equal(unlink(p), 0);
	r = open_volume(e, e->keys);
	assert_true(r < 0);
	assert_good_message(e->msg);
	/* The message names the key file it looked for. */
	assert_non_null(strstr(e->msg, p));
}

static void volume_open_fails_with_empty_or_missing_key_dir(void **state)
{
	struct env *e = *state;
	char *other = ck_test_path(e->top, "otherkeys"), *missing = ck_test_path(e->top, "nokeys");

	create_ok(e, e->vol, e->keys);
	assert_int_equal(mkdir(other, 0700), 0);
	assert_true(open_volume(e, other) < 0);
	assert_good_message(e->msg);
	assert_true(open_volume(e, missing) < 0);
	assert_good_message(e->msg);
	free(other);
	free(missing);
}

static void volume_open_refuses_lax_key_file_and_key_dir(void **state)
{
	struct env *e = *state;
	uint8_t buf[CK_VOLUME_HDR_LEN];
	struct ck_volume_hdr h;
	char p[4096];

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, buf, &h);
	ck_keyfile_path(e->keys, h.kek_id, p, sizeof(p));
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(open_volume(e, e->keys), -EPERM);
	assert_good_message(e->msg);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(chmod(e->keys, 0755), 0);
	assert_int_equal(open_volume(e, e->keys), -EPERM);
	assert_good_message(e->msg);
	assert_int_equal(chmod(e->keys, 0700), 0);
	assert_int_equal(open_volume(e, e->keys), 0);
}

static void volume_open_fails_with_corrupt_header(void **state)
{
	struct env *e = *state;
	uint8_t good[CK_VOLUME_HDR_LEN], buf[CK_VOLUME_HDR_LEN + 1];
	struct ck_volume_hdr h;

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, good, &h);

	/* a flipped bit anywhere after the magic: checksum */
	for (int i = 8; i < CK_VOLUME_HDR_LEN; i += 17) {
		memcpy(buf, good, sizeof(good));
		buf[i] ^= 0x10;
		write_header(e->vol, buf, CK_VOLUME_HDR_LEN);
		assert_int_equal(open_volume(e, e->keys), -EBADMSG);
		assert_good_message(e->msg);
	}
	/* truncated, and with a trailing byte */
	write_header(e->vol, good, 200);
	assert_int_equal(open_volume(e, e->keys), -EBADMSG);
	assert_good_message(e->msg);
	memcpy(buf, good, sizeof(good));
	buf[CK_VOLUME_HDR_LEN] = 0;
	write_header(e->vol, buf, CK_VOLUME_HDR_LEN + 1);
	assert_int_equal(open_volume(e, e->keys), -EBADMSG);
	assert_good_message(e->msg);
	/* empty / not a volume header */
	write_header(e->vol, good, 0);
	assert_true(open_volume(e, e->keys) < 0);
	assert_good_message(e->msg);
	memset(buf, 0x5a, sizeof(buf));
	write_header(e->vol, buf, CK_VOLUME_HDR_LEN);
	assert_int_equal(open_volume(e, e->keys), -EINVAL);
	assert_good_message(e->msg);
	/* unknown version with a valid checksum: the message names it */
	memcpy(buf, good, sizeof(good));
	ck_put32(buf + 8, 7);
	ck_put64(buf + 248, ck_checksum(buf, 248));
	write_header(e->vol, buf, CK_VOLUME_HDR_LEN);
	assert_int_equal(open_volume(e, e->keys), -EPROTONOSUPPORT);
	assert_good_message(e->msg);
	assert_non_null(strstr(e->msg, "7"));
	/* the good header still works */
	write_header(e->vol, good, CK_VOLUME_HDR_LEN);
	assert_int_equal(open_volume(e, e->keys), 0);
}

/* Edits with a recomputed checksum get past decode; the MAC (or the key
 * unwrap) must stop them. */
static void volume_open_fails_with_forged_header(void **state)
{
	struct env *e = *state;
	uint8_t good[CK_VOLUME_HDR_LEN], buf[CK_VOLUME_HDR_LEN];
	struct ck_volume_hdr h;
	/* created, volume ID, service tree ID, wrapped key, MAC */
	const int offsets[] = { 24, 32, 47, 48, 63, 80, 119, 120, 151 };

	create_ok(e, e->vol, e->keys);
	read_header(e->vol, good, &h);
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		memcpy(buf, good, sizeof(buf));
		buf[offsets[i]] ^= 0x01;
		ck_put64(buf + 248, ck_checksum(buf, 248));
		write_header(e->vol, buf, CK_VOLUME_HDR_LEN);
		assert_true(open_volume(e, e->keys) < 0);
		assert_good_message(e->msg);
	}
}

static void volume_open_fails_with_other_volumes_key_file(void **state)
{
	struct env *e = *state;
	char *vol2 = ck_test_path(e->top, "vol2"), *keys2 = ck_test_path(e->top, "keys2");
	uint8_t buf[CK_VOLUME_HDR_LEN], kid[CK_ID_LEN], key[CK_KEY_LEN];
	struct ck_volume_hdr h1, h2;
	char p1[4096], p2[4096];
	uint8_t raw[CK_KEYFILE_LEN];

	create_ok(e, e->vol, e->keys);
	create_ok(e, vol2, keys2);
	read_header(e->vol, buf, &h1);
	read_header(vol2, buf, &h2);
	ck_keyfile_path(e->keys, h1.kek_id, p1, sizeof(p1));
	ck_keyfile_path(keys2, h2.kek_id, p2, sizeof(p2));

	/* volume 2's key directory has no key for volume 1 */
	assert_true(open_volume(e, keys2) < 0);
	assert_good_message(e->msg);

	/* volume 2's key file renamed to volume 1's name */
	assert_int_equal(ck_test_read_file(p2, raw, sizeof(raw)), CK_KEYFILE_LEN);
	assert_int_equal(unlink(p1), 0);
	ck_test_write_file(p1, raw, sizeof(raw), 0600);
	assert_true(open_volume(e, e->keys) < 0);
	assert_good_message(e->msg);

	/* the right key ID but another key (a wrong KEK) */
	assert_int_equal(unlink(p1), 0);
	assert_int_equal(ck_keyfile_read(p2, kid, key), 0);
	assert_int_equal(ck_keyfile_write(p1, h1.kek_id, key), 0);
	assert_true(open_volume(e, e->keys) < 0);
	assert_good_message(e->msg);

	/* volume 1's header copied over volume 2's: opens only with keys
	 * for volume 1, never with volume 2's */
	read_header(e->vol, buf, &h1);
	write_header(vol2, buf, CK_VOLUME_HDR_LEN);
	{
		struct ck_volume v;
		assert_true(ck_volume_open(vol2, keys2, &v, e->msg, sizeof(e->msg)) < 0);
		assert_good_message(e->msg);
	}
	free(vol2);
	free(keys2);
}

static void volume_open_fails_on_non_volume(void **state)
{
	struct env *e = *state;

	assert_int_equal(mkdir(e->vol, 0755), 0);
	assert_true(open_volume(e, e->keys) < 0);
	assert_good_message(e->msg);
	assert_int_equal(rmdir(e->vol), 0);
	assert_true(open_volume(e, e->keys) < 0);
	assert_good_message(e->msg);
}

/* A failed open leaves the struct closed, so a cleanup path that closes
 * it anyway is harmless; a tiny message buffer is truncated, not overrun. */
static void volume_open_failure_is_safe_to_close_and_truncates_message(void **state)
{
	struct env *e = *state;
	struct ck_volume v;
	char small[12];

	memset(small, 'Z', sizeof(small));
	assert_true(ck_volume_open(e->vol, e->keys, &v, small, 8) < 0);
	assert_int_equal(small[7], '\0');
	assert_int_equal(small[8], 'Z');
	ck_volume_close(&v);
	ck_volume_close(&v);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(volume_create_then_open_succeeds),
		T(volume_keys_follow_documented_hierarchy),
		T(volume_create_in_existing_empty_dir_succeeds),
		T(volume_create_refuses_non_empty_dir),
		T(volume_create_refuses_existing_volume),
		T(volume_create_force_keeps_old_header_and_key),
		T(volume_create_force_twice_keeps_both_old_headers),
		T(volume_create_force_accepts_non_empty_dir),
		T(volume_create_refuses_unsafe_key_dir),
		T(volume_open_fails_with_missing_key_file),
		T(volume_open_fails_with_empty_or_missing_key_dir),
		T(volume_open_refuses_lax_key_file_and_key_dir),
		T(volume_open_fails_with_corrupt_header),
		T(volume_open_fails_with_forged_header),
		T(volume_open_fails_with_other_volumes_key_file),
		T(volume_open_fails_on_non_volume),
		T(volume_open_failure_is_safe_to_close_and_truncates_message),
	};

	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("volume", tests, NULL, NULL);
}
