/* Encrypted names, long names, symlink targets and xattrs (keys/names.h).
 * Expected lengths and limits come from docs/FORMAT.md ("Names", "Long
 * names", "Symbolic links", "Extended attributes"). */
#include <ctype.h>
#include <limits.h>
#include "ck_test.h"
#include "keys/crypto.h"
#include "keys/names.h"
#include "keys/secmem.h"
#include "keys/tree.h"
#include "keys/util.h"

static const uint8_t VOL_ID[CK_ID_LEN] = "volume-id-0123!";
static const uint8_t TREE_ID[CK_ID_LEN] = "tree-id-abcdefg";
static const uint8_t TREE2_ID[CK_ID_LEN] = "tree-id-2222222";

struct fixture {
	struct ck_tree t, t2;       /* t2: another tree (other key and ID) */
	uint8_t dir[CK_ID_LEN], dir2[CK_ID_LEN];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t k[CK_KEY_LEN];

	if (!f)
		return -1;
	ck_test_fill(k, sizeof(k), 1);
	if (ck_tree_init(&f->t, VOL_ID, TREE_ID, k) < 0)
		return -1;
	ck_test_fill(k, sizeof(k), 2);
	if (ck_tree_init(&f->t2, VOL_ID, TREE2_ID, k) < 0)
		return -1;
	ck_test_fill(f->dir, CK_ID_LEN, 3);
	ck_test_fill(f->dir2, CK_ID_LEN, 4);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ck_tree_release(&f->t);
	ck_tree_release(&f->t2);
	free(f);
	return 0;
}

/* A name of n bytes using every byte value except NUL and '/'. */
static void make_name(char *out, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)(1 + (seed + i * 37) % 255);
		out[i] = (char)(c == '/' ? 'x' : c);
	}
	out[n] = '\0';
	/* never "." or ".." */
	if (n <= 2 && out[0] == '.')
		out[0] = 'a';
}

static int is_b64url(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return 0;
	return 1;
}

/* ---------------- names ---------------- */

static void name_round_trips_every_length_1_to_255(void **state)
{
	struct fixture *f = *state;
	char name[CK_NAME_MAX + 1], enc[CK_ENC_NAME_MAX], dec[CK_NAME_MAX + 1];

	for (size_t n = 1; n <= CK_NAME_MAX; n++) {
		make_name(name, n, (unsigned)n);
		memset(enc, 0x7f, sizeof(enc));
		assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, n, enc), 0);
		assert_int_equal(strlen(enc), ck_b64_enclen(n + CK_SIV_TAG_LEN));
		assert_true(strlen(enc) < CK_ENC_NAME_MAX);
		memset(dec, 0x7f, sizeof(dec));
		assert_int_equal(ck_name_decrypt(&f->t, f->dir, enc, strlen(enc), dec), (int)n);
		assert_memory_equal(dec, name, n);
		assert_int_equal(dec[n], '\0');
	}
}

static void name_encrypt_is_deterministic(void **state)
{
	struct fixture *f = *state;
	char a[CK_ENC_NAME_MAX], b[CK_ENC_NAME_MAX];

	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "INBOX", 5, a), 0);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "INBOX", 5, b), 0);
	assert_string_equal(a, b);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "INBOy", 5, b), 0);
	assert_string_not_equal(a, b);
	/* Only the first n bytes count. */
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "INBOX.trash", 5, b), 0);
	assert_string_equal(a, b);
}

static void name_differs_per_directory_and_wrong_directory_fails(void **state)
{
	struct fixture *f = *state;
	char a[CK_ENC_NAME_MAX], b[CK_ENC_NAME_MAX], dec[CK_NAME_MAX + 1];

	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "cur", 3, a), 0);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir2, "cur", 3, b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(ck_name_decrypt(&f->t, f->dir2, a, strlen(a), dec), -EBADMSG);
	assert_int_equal(ck_name_decrypt(&f->t, f->dir, b, strlen(b), dec), -EBADMSG);
	assert_int_equal(ck_name_decrypt(&f->t, f->dir2, b, strlen(b), dec), 3);
	assert_string_equal(dec, "cur");
}

static void name_differs_per_tree_and_wrong_tree_fails(void **state)
{
	struct fixture *f = *state;
	char a[CK_ENC_NAME_MAX], b[CK_ENC_NAME_MAX], dec[CK_NAME_MAX + 1];

	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "new", 3, a), 0);
	assert_int_equal(ck_name_encrypt(&f->t2, f->dir, "new", 3, b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(ck_name_decrypt(&f->t2, f->dir, a, strlen(a), dec), -EBADMSG);
}

static void encoded_name_is_base64url_and_never_starts_with_dot(void **state)
{
	struct fixture *f = *state;
	char name[CK_NAME_MAX + 1], enc[CK_ENC_NAME_MAX];

	for (unsigned seed = 0; seed < 64; seed++)
		for (size_t n = 1; n <= CK_NAME_MAX; n += 23) {
			make_name(name, n, seed * 1000 + (unsigned)n);
			assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, n, enc), 0);
			assert_true(is_b64url(enc));
			assert_true(enc[0] != '.');
			assert_int_equal(ck_name_reserved(enc), 0);
		}
	/* Plaintext names starting with '.' are ordinary names. */
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, ".ckfs", 5, enc), 0);
	assert_true(is_b64url(enc) && enc[0] != '.');
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, ".Lfoo", 5, enc), 0);
	assert_true(is_b64url(enc) && enc[0] != '.');
}

static void name_encrypt_rejects_empty_too_long_slash_and_nul(void **state)
{
	struct fixture *f = *state;
	char name[CK_NAME_MAX + 2], enc[CK_ENC_NAME_MAX + 8];

	memset(name, 'a', sizeof(name));
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, 0, enc), -EINVAL);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, CK_NAME_MAX + 1, enc), -EINVAL);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "a/b", 3, enc), -EINVAL);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "/", 1, enc), -EINVAL);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "a\0b", 3, enc), -EINVAL);
}

/* names.h and docs/FORMAT.md: a name is "not . or ..". */
static void name_encrypt_rejects_dot_and_dotdot(void **state)
{
	struct fixture *f = *state;
	char enc[CK_ENC_NAME_MAX];

	assert_int_equal(ck_name_encrypt(&f->t, f->dir, ".", 1, enc), -EINVAL);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "..", 2, enc), -EINVAL);
	/* but "..." and ".a" are fine */
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "...", 3, enc), 0);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, ".a", 2, enc), 0);
}

static void name_decrypt_rejects_tampered_truncated_and_garbage(void **state)
{
	struct fixture *f = *state;
	char enc[CK_ENC_NAME_MAX], bad[CK_ENC_NAME_MAX + 8], dec[CK_NAME_MAX + 1];
	size_t n;
	int r;

	assert_int_equal(ck_name_encrypt(&f->t, f->dir, "message-0001", 12, enc), 0);
	n = strlen(enc);
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, enc, n + 1);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		r = ck_name_decrypt(&f->t, f->dir, bad, n, dec);
		/* A change in the last character may only touch padding bits,
		 * which base64url decoding must refuse (-EINVAL) as well. */
		assert_true(r == -EBADMSG || r == -EINVAL);
	}
	for (size_t k = 0; k < n; k++) {
		r = ck_name_decrypt(&f->t, f->dir, enc, k, dec);
		assert_true(r == -EBADMSG || r == -EINVAL);
	}
	memcpy(bad, enc, n + 1);
	bad[3] = '.';
	r = ck_name_decrypt(&f->t, f->dir, bad, n, dec);
	assert_true(r == -EBADMSG || r == -EINVAL);
	bad[3] = '/';
	r = ck_name_decrypt(&f->t, f->dir, bad, n, dec);
	assert_true(r == -EBADMSG || r == -EINVAL);
	/* Reserved backing names are not names. */
	r = ck_name_decrypt(&f->t, f->dir, ".ckfs.dir", 9, dec);
	assert_true(r == -EBADMSG || r == -EINVAL);
	/* Longer than any encoded name. */
	memset(bad, 'A', sizeof(bad));
	r = ck_name_decrypt(&f->t, f->dir, bad, CK_ENC_NAME_MAX + 4, dec);
	assert_true(r == -EBADMSG || r == -EINVAL);
}

/* docs/FORMAT.md: up to 175 plaintext bytes fit in 255 characters. */
static void name_is_long_from_176_plaintext_bytes(void **state)
{
	struct fixture *f = *state;
	char name[CK_NAME_MAX + 1], enc[CK_ENC_NAME_MAX];

	for (size_t n = 1; n <= CK_NAME_MAX; n++) {
		make_name(name, n, 5);
		assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, n, enc), 0);
		assert_int_equal(ck_name_is_long(strlen(enc)), n >= 176);
		if (n == 175)
			assert_int_equal(strlen(enc), 255);
	}
	assert_int_equal(ck_name_is_long(255), 0);
	assert_int_equal(ck_name_is_long(256), 1);
}

static void long_names_are_prefixed_sha256_of_encoded_name(void **state)
{
	struct fixture *f = *state;
	char name[CK_NAME_MAX + 1], enc[CK_ENC_NAME_MAX];
	char entry[CK_LONG_NAME_LEN + 1], side[CK_LONG_NAME_LEN + 1];
	char entry2[CK_LONG_NAME_LEN + 1], side2[CK_LONG_NAME_LEN + 1];
	char want[CK_LONG_NAME_LEN + 1];
	uint8_t h[CK_HASH_LEN];

	make_name(name, 200, 9);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, 200, enc), 0);
	assert_true(ck_name_is_long(strlen(enc)));
	memset(entry, 0x7f, sizeof(entry));
	memset(side, 0x7f, sizeof(side));
	assert_int_equal(ck_long_names(enc, strlen(enc), entry, side), 0);
	assert_int_equal(strlen(entry), CK_LONG_NAME_LEN);
	assert_int_equal(strlen(side), CK_LONG_NAME_LEN);
	assert_int_equal(CK_LONG_NAME_LEN, 45);
	assert_memory_equal(entry, CK_LONG_PREFIX, 2);
	assert_memory_equal(side, CK_SIDE_PREFIX, 2);
	assert_string_equal(entry + 2, side + 2);
	assert_true(is_b64url(entry + 2));
	/* ".L" || base64url(SHA-256(encoded name)) */
	assert_int_equal(ck_sha256(enc, strlen(enc), h), 0);
	memcpy(want, ".L", 2);
	ck_b64_encode(h, sizeof(h), want + 2);
	assert_string_equal(entry, want);
	/* deterministic, and another name gives another hash */
	assert_int_equal(ck_long_names(enc, strlen(enc), entry2, side2), 0);
	assert_string_equal(entry, entry2);
	assert_string_equal(side, side2);
	make_name(name, 200, 10);
	assert_int_equal(ck_name_encrypt(&f->t, f->dir, name, 200, enc), 0);
	assert_int_equal(ck_long_names(enc, strlen(enc), entry2, side2), 0);
	assert_string_not_equal(entry, entry2);
	/* Both are ckfs-reserved backing names (docs/FORMAT.md). */
	assert_int_equal(ck_name_reserved(entry), 1);
	assert_int_equal(ck_name_reserved(side), 1);
}

static void name_reserved_for_ckfs_dot_names_only(void **state)
{
	(void)state;
	assert_int_equal(ck_name_reserved(".ckfs"), 1);
	assert_int_equal(ck_name_reserved(CK_DIRID_FILE), 1);
	assert_int_equal(ck_name_reserved(".Labc"), 1);
	assert_int_equal(ck_name_reserved(".Nabc"), 1);
	assert_int_equal(ck_name_reserved(".volume.tmp"), 1);
	assert_int_equal(ck_name_reserved("."), 1);
	assert_int_equal(ck_name_reserved(".."), 1);
	assert_int_equal(ck_name_reserved("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
	assert_int_equal(ck_name_reserved("abc-_09"), 0);
	assert_int_equal(ck_name_reserved("L.x"), 0);
}

/* ---------------- symlinks ---------------- */

static void symlink_round_trips_lengths_up_to_max(void **state)
{
	struct fixture *f = *state;
	static char target[CK_SYMLINK_MAX + 1], enc[PATH_MAX], dec[CK_SYMLINK_MAX + 1];
	static const size_t lens[] = { 1, 2, 3, 27, 28, 29, 100, 255, 1024, 2048,
	                               CK_SYMLINK_MAX - 1, CK_SYMLINK_MAX };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i], el = ck_b64_enclen(n + 28);

		make_name(target, n, (unsigned)i);
		assert_int_equal(ck_symlink_encrypt(&f->t, target, n, enc, sizeof(enc)), 0);
		assert_int_equal(strlen(enc), el);
		assert_true(is_b64url(enc));
		assert_int_equal(ck_symlink_plain_len(strlen(enc)), (long)n);
		assert_int_equal(ck_symlink_decrypt(&f->t, enc, strlen(enc), dec, sizeof(dec)), (int)n);
		assert_memory_equal(dec, target, n);
		assert_int_equal(dec[n], '\0');
		/* an output buffer of exactly the needed size is enough */
		assert_int_equal(ck_symlink_encrypt(&f->t, target, n, enc, el + 1), 0);
		assert_int_equal(ck_symlink_decrypt(&f->t, enc, el, dec, n + 1), (int)n);
		assert_memory_equal(dec, target, n);
	}
}

static void symlink_max_encoding_fits_path_max(void **state)
{
	struct fixture *f = *state;
	static char target[CK_SYMLINK_MAX + 2], enc[PATH_MAX + 64];

	memset(target, 'p', sizeof(target));
	assert_int_equal(ck_symlink_encrypt(&f->t, target, CK_SYMLINK_MAX, enc, sizeof(enc)), 0);
	assert_int_equal(strlen(enc), 4038);
	assert_true(strlen(enc) < PATH_MAX);
	/* 3001 bytes is over the limit; so is nothing at all */
	assert_int_equal(ck_symlink_encrypt(&f->t, target, CK_SYMLINK_MAX + 1, enc, sizeof(enc)),
	                 -ENAMETOOLONG);
	assert_true(ck_symlink_encrypt(&f->t, target, 0, enc, sizeof(enc)) < 0);
}

static void symlink_encrypt_refuses_small_output_buffer(void **state)
{
	struct fixture *f = *state;
	char enc[64], dec[8];

	/* 10 bytes -> 38 -> 51 characters + NUL */
	assert_true(ck_symlink_encrypt(&f->t, "0123456789", 10, enc, 51) < 0);
	assert_int_equal(ck_symlink_encrypt(&f->t, "0123456789", 10, enc, 52), 0);
	assert_true(ck_symlink_decrypt(&f->t, enc, strlen(enc), dec, sizeof(dec)) < 0);
}

static void symlink_plain_len_of_short_input_is_zero(void **state)
{
	(void)state;
	assert_int_equal(ck_symlink_plain_len(0), 0);
	assert_int_equal(ck_symlink_plain_len(10), 0);
	assert_int_equal(ck_symlink_plain_len(ck_b64_enclen(28)), 0);
	assert_int_equal(ck_symlink_plain_len(ck_b64_enclen(29)), 1);
}

static void symlink_encrypt_is_randomized(void **state)
{
	struct fixture *f = *state;
	char a[128], b[128];

	assert_int_equal(ck_symlink_encrypt(&f->t, "../target", 9, a, sizeof(a)), 0);
	assert_int_equal(ck_symlink_encrypt(&f->t, "../target", 9, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
}

static void symlink_decrypt_rejects_tampered_and_other_tree(void **state)
{
	struct fixture *f = *state;
	char enc[256], bad[256], dec[256];
	size_t n;
	int r;

	assert_int_equal(ck_symlink_encrypt(&f->t, "/etc/passwd", 11, enc, sizeof(enc)), 0);
	n = strlen(enc);
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, enc, n + 1);
		bad[i] = bad[i] == 'z' ? 'y' : 'z';
		r = ck_symlink_decrypt(&f->t, bad, n, dec, sizeof(dec));
		assert_true(r == -EBADMSG || r == -EINVAL);
	}
	for (size_t k = 0; k < n; k += 3) {
		r = ck_symlink_decrypt(&f->t, enc, k, dec, sizeof(dec));
		assert_true(r == -EBADMSG || r == -EINVAL);
	}
	assert_int_equal(ck_symlink_decrypt(&f->t2, enc, n, dec, sizeof(dec)), -EBADMSG);
	r = ck_symlink_decrypt(&f->t, "not/base64", 10, dec, sizeof(dec));
	assert_true(r == -EBADMSG || r == -EINVAL);
}

/* ---------------- xattrs ---------------- */

static void xattr_name_round_trips_and_is_deterministic(void **state)
{
	struct fixture *f = *state;
	char a[256], b[256], dec[256];
	const char *names[] = { "user.a", "user.mime_type", "user.dovecot.guid", "user." };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r = ck_xattr_name_encrypt(&f->t, names[i], a, sizeof(a));

		assert_int_equal(r, 0);
		assert_memory_equal(a, CK_XATTR_PREFIX, strlen(CK_XATTR_PREFIX));
		assert_true(is_b64url(a + strlen(CK_XATTR_PREFIX)));
		assert_true(strlen(a) <= CK_XATTR_NAME_MAX);
		assert_int_equal(ck_xattr_name_encrypt(&f->t, names[i], b, sizeof(b)), 0);
		assert_string_equal(a, b);
		r = ck_xattr_name_decrypt(&f->t, a, dec, sizeof(dec));
		assert_int_equal(r, (int)strlen(names[i]));
		assert_string_equal(dec, names[i]);
	}
	assert_int_equal(ck_xattr_name_encrypt(&f->t, "user.a", a, sizeof(a)), 0);
	assert_int_equal(ck_xattr_name_encrypt(&f->t, "user.b", b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(ck_xattr_name_encrypt(&f->t2, "user.a", b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
}

/* docs/FORMAT.md: NAME may be at most 169 bytes so that the backing name
 * fits in 255. */
static void xattr_name_limit_is_169_bytes(void **state)
{
	struct fixture *f = *state;
	char name[CK_XATTR_NAME_MAX + 2], enc[512], dec[512];

	memcpy(name, "user.", 5);
	memset(name + 5, 'n', sizeof(name) - 5);
	name[169] = '\0';
	assert_int_equal(ck_xattr_name_encrypt(&f->t, name, enc, sizeof(enc)), 0);
	assert_int_equal(strlen(enc), 255);
	assert_int_equal(ck_xattr_name_decrypt(&f->t, enc, dec, sizeof(dec)), 169);
	assert_string_equal(dec, name);
	name[169] = 'n';
	name[170] = '\0';
	assert_int_equal(ck_xattr_name_encrypt(&f->t, name, enc, sizeof(enc)), -ENAMETOOLONG);
	assert_true(ck_xattr_name_encrypt(&f->t, "", enc, sizeof(enc)) < 0);
}

/* names.h: only "user." names are accepted (docs/FORMAT.md: others are
 * EOPNOTSUPP). */
static void xattr_name_encrypt_rejects_non_user_namespaces(void **state)
{
	struct fixture *f = *state;
	char enc[256];
	const char *names[] = { "trusted.overlay.opaque", "security.selinux",
	                        "system.posix_acl_access", "user", "usera", "foo" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r = ck_xattr_name_encrypt(&f->t, names[i], enc, sizeof(enc));
		if (r >= 0)
			fail_msg("ck_xattr_name_encrypt accepted \"%s\" (returned %d)", names[i], r);
	}
}

static void xattr_name_decrypt_rejects_foreign_and_tampered(void **state)
{
	struct fixture *f = *state;
	char enc[256], bad[256], dec[256];
	size_t n, pl = strlen(CK_XATTR_PREFIX);
	int r;

	assert_int_equal(ck_xattr_name_decrypt(&f->t, "user.plain", dec, sizeof(dec)), -EINVAL);
	assert_int_equal(ck_xattr_name_decrypt(&f->t, "security.selinux", dec, sizeof(dec)),
	                 -EINVAL);
	assert_int_equal(ck_xattr_name_encrypt(&f->t, "user.comment", enc, sizeof(enc)), 0);
	n = strlen(enc);
	for (size_t i = pl; i < n; i++) {
		memcpy(bad, enc, n + 1);
		bad[i] = bad[i] == 'Q' ? 'R' : 'Q';
		r = ck_xattr_name_decrypt(&f->t, bad, dec, sizeof(dec));
		assert_true(r == -EBADMSG || r == -EINVAL);
	}
	assert_int_equal(ck_xattr_name_decrypt(&f->t2, enc, dec, sizeof(dec)), -EBADMSG);
	r = ck_xattr_name_decrypt(&f->t, "user.ck.", dec, sizeof(dec));
	assert_true(r == -EBADMSG || r == -EINVAL);
}

static void xattr_value_round_trips_and_detects_tampering(void **state)
{
	struct fixture *f = *state;
	static uint8_t v[4000], ct[4000 + CK_BLOCK_OVERHEAD], back[4000];
	static const size_t lens[] = { 0, 1, 16, 100, 4000 };
	char bn[256], bn2[256];

	assert_int_equal(ck_xattr_name_encrypt(&f->t, "user.a", bn, sizeof(bn)), 0);
	assert_int_equal(ck_xattr_name_encrypt(&f->t, "user.b", bn2, sizeof(bn2)), 0);
	ck_test_fill(v, sizeof(v), 17);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i], cn = n + CK_BLOCK_OVERHEAD;

		assert_int_equal(ck_xattr_value_encrypt(&f->t, bn, v, n, ct), 0);
		assert_int_equal(ck_xattr_value_decrypt(&f->t, bn, ct, cn, back), (int)n);
		if (n)
			assert_memory_equal(back, v, n);
		/* moved to another attribute name, or another tree */
		assert_int_equal(ck_xattr_value_decrypt(&f->t, bn2, ct, cn, back), -EBADMSG);
		assert_int_equal(ck_xattr_value_decrypt(&f->t2, bn, ct, cn, back), -EBADMSG);
		/* flipped bytes */
		for (size_t k = 0; k < cn; k += (cn > 200 ? 97 : 1)) {
			ct[k] ^= 1;
			assert_int_equal(ck_xattr_value_decrypt(&f->t, bn, ct, cn, back), -EBADMSG);
			ct[k] ^= 1;
		}
		/* truncated */
		assert_int_equal(ck_xattr_value_decrypt(&f->t, bn, ct, cn - 1, back), -EBADMSG);
	}
	assert_int_equal(ck_xattr_value_decrypt(&f->t, bn, ct, CK_BLOCK_OVERHEAD - 1, back),
	                 -EBADMSG);
	assert_int_equal(ck_xattr_value_decrypt(&f->t, bn, ct, 0, back), -EBADMSG);
}

static void xattr_value_encrypt_is_randomized(void **state)
{
	struct fixture *f = *state;
	uint8_t v[8] = "value!!", a[8 + CK_BLOCK_OVERHEAD], b[8 + CK_BLOCK_OVERHEAD];

	assert_int_equal(ck_xattr_value_encrypt(&f->t, "user.ck.x", v, sizeof(v), a), 0);
	assert_int_equal(ck_xattr_value_encrypt(&f->t, "user.ck.x", v, sizeof(v), b), 0);
	assert_memory_not_equal(a, b, sizeof(a));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(name_round_trips_every_length_1_to_255),
		T(name_encrypt_is_deterministic),
		T(name_differs_per_directory_and_wrong_directory_fails),
		T(name_differs_per_tree_and_wrong_tree_fails),
		T(encoded_name_is_base64url_and_never_starts_with_dot),
		T(name_encrypt_rejects_empty_too_long_slash_and_nul),
		T(name_encrypt_rejects_dot_and_dotdot),
		T(name_decrypt_rejects_tampered_truncated_and_garbage),
		T(name_is_long_from_176_plaintext_bytes),
		T(long_names_are_prefixed_sha256_of_encoded_name),
		cmocka_unit_test(name_reserved_for_ckfs_dot_names_only),
		T(symlink_round_trips_lengths_up_to_max),
		T(symlink_max_encoding_fits_path_max),
		T(symlink_encrypt_refuses_small_output_buffer),
		cmocka_unit_test(symlink_plain_len_of_short_input_is_zero),
		T(symlink_encrypt_is_randomized),
		T(symlink_decrypt_rejects_tampered_and_other_tree),
		T(xattr_name_round_trips_and_is_deterministic),
		T(xattr_name_limit_is_169_bytes),
		T(xattr_name_encrypt_rejects_non_user_namespaces),
		T(xattr_name_decrypt_rejects_foreign_and_tampered),
		T(xattr_value_round_trips_and_detects_tampering),
		T(xattr_value_encrypt_is_randomized),
	};

	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
