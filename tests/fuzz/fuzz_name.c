/* Fuzz encrypted names (backing directory entries) and the base64url codec.
 * The input is used three ways:
 *  1. as a backing entry name: ck_name_decrypt with the fixed tree and
 *     directory ID (out holds CK_NAME_MAX + 1 bytes, as in fs/names.c);
 *  2. as base64url: ck_b64_decode into a buffer of exactly the size it
 *     claims to need, and into a smaller one; what decodes must encode back
 *     to the same text (one encoding per byte string);
 *  3. as a plaintext name: ck_name_encrypt then ck_name_decrypt must give
 *     it back; and sealed with the name key directly (bypassing the checks
 *     of encrypt), decrypt must refuse exactly the names encrypt refuses
 *     ('/', NUL, ".", "..") -- the checks after authentication. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/names.h"
#include "keys/util.h"
#include "tests/fuzz/fuzz.h"

static int name_ok(const uint8_t *s, size_t n)
{
	return n >= 1 && n <= CK_NAME_MAX && !memchr(s, '/', n) && !memchr(s, 0, n) &&
	       !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ck_tree *t = fz_tree();
	char out[CK_NAME_MAX + 1], enc[CK_ENC_NAME_MAX];
	uint8_t sealed[CK_NAME_MAX + CK_SIV_TAG_LEN];
	const uint8_t *ad[] = { fz_dir_id };
	size_t ad_len[] = { CK_ID_LEN };
	int r;

	/* 1: a backing name */
	r = ck_name_decrypt(t, fz_dir_id, (const char *)data, size, out);
	FZ_CHECK(r == -EBADMSG || r == -EINVAL || (r >= 1 && r <= CK_NAME_MAX));
	if (r > 0)
		FZ_CHECK(name_ok((const uint8_t *)out, (size_t)r) && out[r] == '\0');

	/* 2: base64url */
	if (size <= 8192) {
		size_t need = ck_b64_declen(size);
		uint8_t *buf = malloc(need ? need : 1);
		long l = ck_b64_decode((const char *)data, size, buf, need);

		FZ_CHECK(l == -EINVAL || (l >= 0 && (size_t)l == need));
		if (l >= 0) {
			char *back = malloc(ck_b64_enclen((size_t)l) + 1);
			ck_b64_encode(buf, (size_t)l, back);
			FZ_CHECK(strlen(back) == size && memcmp(back, data, size) == 0);
			free(back);
			if (need > 0)
				FZ_CHECK(ck_b64_decode((const char *)data, size, buf, need - 1) == -EINVAL);
		}
		free(buf);
	}

	/* 3: a plaintext name */
	if (size == 0 || size > CK_NAME_MAX)
		return 0;
	r = ck_name_encrypt(t, fz_dir_id, (const char *)data, size, enc);
	FZ_CHECK(r == 0 || r == -EINVAL);
	FZ_CHECK((r == 0) == name_ok(data, size));
	if (r == 0) {
		FZ_CHECK(strlen(enc) == ck_b64_enclen(size + CK_SIV_TAG_LEN));
		FZ_CHECK(ck_name_is_long(strlen(enc)) == (strlen(enc) > CK_NAME_MAX));
		FZ_CHECK(!ck_name_reserved(enc));
		r = ck_name_decrypt(t, fz_dir_id, enc, strlen(enc), out);
		FZ_CHECK(r == (int)size && memcmp(out, data, size) == 0);
		return 0;
	}
	FZ_CHECK(ck_siv_seal(t->name_key, CK_SIV_KEY_LEN, ad, ad_len, 1, data, size, sealed) == 0);
	ck_b64_encode(sealed, size + CK_SIV_TAG_LEN, enc);
	FZ_CHECK(ck_name_decrypt(t, fz_dir_id, enc, strlen(enc), out) == -EBADMSG);
	return 0;
}
