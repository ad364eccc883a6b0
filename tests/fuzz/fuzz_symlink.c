/* Fuzz symlink targets. The input as a stored (encrypted, base64url)
 * target: ck_symlink_decrypt into the buffer fs/ops.c uses and into one of
 * exactly ck_symlink_plain_len + 1 bytes (the size fs reports in st_size):
 * a target that opens has exactly that length. The input as a plaintext
 * target: encrypt then decrypt gives it back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/names.h"
#include "keys/util.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ck_tree *t = fz_tree();
	static char out[CK_SYMLINK_MAX + 1];
	char *exact, *enc;
	long plen;
	int r;

	if (size > 8192)
		return 0;
	r = ck_symlink_decrypt(t, (const char *)data, size, out, sizeof(out));
	FZ_CHECK(r == -EBADMSG || r == -ERANGE || r == -EIO || (r >= 0 && r <= CK_SYMLINK_MAX));
	plen = ck_symlink_plain_len(size);
	if (r >= 0) {
		FZ_CHECK(r == plen && out[r] == '\0');
		exact = malloc((size_t)plen + 1);
		FZ_CHECK(ck_symlink_decrypt(t, (const char *)data, size, exact, (size_t)plen + 1) == r);
		FZ_CHECK(memcmp(exact, out, (size_t)r + 1) == 0);
		if (plen > 0)
			FZ_CHECK(ck_symlink_decrypt(t, (const char *)data, size, exact, (size_t)plen) == -ERANGE);
		free(exact);
	}

	if (size == 0 || size > CK_SYMLINK_MAX)
		return 0;
	size_t cap = ck_b64_enclen(size + CK_BLOCK_OVERHEAD) + 1;
	enc = malloc(cap);
	FZ_CHECK(ck_symlink_encrypt(t, (const char *)data, size, enc, cap) == 0);
	FZ_CHECK(ck_symlink_encrypt(t, (const char *)data, size, enc, cap - 1) == -ERANGE);
	FZ_CHECK(ck_symlink_plain_len(strlen(enc)) == (long)size);
	r = ck_symlink_decrypt(t, enc, strlen(enc), out, sizeof(out));
	FZ_CHECK(r == (int)size && memcmp(out, data, size) == 0);
	free(enc);
	return 0;
}
