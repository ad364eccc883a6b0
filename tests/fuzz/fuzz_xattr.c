/* Fuzz extended attributes as fs/ops.c reads them. Input: a backing xattr
 * name, a NUL byte, then the stored value. ck_xattr_name_decrypt (into the
 * 256-byte buffer fs uses, and into a tight one), ck_xattr_value_decrypt
 * with the name as associated data. Properties: a value that opens has
 * length n - 28; a "user." name round-trips through encrypt and decrypt,
 * and so does a value under it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/format.h"
#include "keys/names.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ck_tree *t = fz_tree();
	char name[CK_XATTR_NAME_MAX + 1], tight[8], enc[CK_XATTR_NAME_MAX + 1];
	const uint8_t *nul = memchr(data, 0, size);
	size_t nlen = nul ? (size_t)(nul - data) : size;
	const uint8_t *val = nul ? nul + 1 : data + size;
	size_t vlen = nul ? size - nlen - 1 : 0;
	char *backing;
	uint8_t *out, *sealed;
	int r;

	if (size > 70000)
		return 0;
	backing = fz_strndup(data, nlen);
	r = ck_xattr_name_decrypt(t, backing, name, sizeof(name));
	FZ_CHECK(r == -EINVAL || r == -EBADMSG || r == -ERANGE || (r >= 1 && r <= CK_XATTR_NAME_MAX));
	if (r > 0) {
		FZ_CHECK(strlen(name) == (size_t)r);
		int r2 = ck_xattr_name_decrypt(t, backing, tight, sizeof(tight));
		FZ_CHECK(r < (int)sizeof(tight) ? r2 == r : r2 == -ERANGE);
	}

	out = malloc(vlen ? vlen : 1);
	r = ck_xattr_value_decrypt(t, backing, val, vlen, out);
	FZ_CHECK(r == -EBADMSG || r == -EIO || r >= 0);
	if (r >= 0)
		FZ_CHECK(vlen >= CK_BLOCK_OVERHEAD && (size_t)r == vlen - CK_BLOCK_OVERHEAD);
	free(out);

	/* The name part as a plaintext name, the value part as its value. */
	r = ck_xattr_name_encrypt(t, backing, enc, sizeof(enc));
	FZ_CHECK(r == 0 || r == -ERANGE || r == -EOPNOTSUPP || r == -ENAMETOOLONG);
	if (r == 0) {
		FZ_CHECK(!strncmp(backing, "user.", 5) && !strncmp(enc, CK_XATTR_PREFIX, 8));
		r = ck_xattr_name_decrypt(t, enc, name, sizeof(name));
		FZ_CHECK(r == (int)nlen && !strcmp(name, backing));
		sealed = malloc(vlen + CK_BLOCK_OVERHEAD);
		out = malloc(vlen ? vlen : 1);
		FZ_CHECK(ck_xattr_value_encrypt(t, enc, val, vlen, sealed) == 0);
		FZ_CHECK(ck_xattr_value_decrypt(t, enc, sealed, vlen + CK_BLOCK_OVERHEAD, out) ==
		         (int)vlen);
		FZ_CHECK(vlen == 0 || memcmp(out, val, vlen) == 0);
		free(sealed);
		free(out);
	}
	free(backing);
	return 0;
}
