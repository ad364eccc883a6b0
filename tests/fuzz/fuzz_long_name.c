/* Fuzz long-name handling as fs/names.c (ck_ename_decode) does it: the
 * input is the content of a ".N" sidecar, read into CK_ENC_NAME_MAX + 1
 * bytes; ck_long_names gives the ".L" entry and ".N" sidecar names it must
 * hash to, then the encoded name is decrypted. ck_long_names is also run on
 * the whole input (any length). Properties: both names are exactly
 * CK_LONG_NAME_LEN characters of base64url after their prefix, are
 * reserved (never user entries), share their hash part, and depend only on
 * the bytes hashed. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "keys/names.h"
#include "keys/util.h"
#include "tests/fuzz/fuzz.h"

static void check_names(const char *entry, const char *side)
{
	FZ_CHECK(strlen(entry) == CK_LONG_NAME_LEN && strlen(side) == CK_LONG_NAME_LEN);
	FZ_CHECK(!strncmp(entry, CK_LONG_PREFIX, 2) && !strncmp(side, CK_SIDE_PREFIX, 2));
	FZ_CHECK(!strcmp(entry + 2, side + 2));
	FZ_CHECK(ck_name_reserved(entry) && ck_name_reserved(side));
	for (const char *p = entry + 2; *p; p++)
		FZ_CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		         (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char full[CK_ENC_NAME_MAX + 1], entry[CK_LONG_NAME_LEN + 1], side[CK_LONG_NAME_LEN + 1];
	char entry2[CK_LONG_NAME_LEN + 1], side2[CK_LONG_NAME_LEN + 1], out[CK_NAME_MAX + 1];
	size_t n = size < sizeof(full) - 1 ? size : sizeof(full) - 1;
	int r;

	FZ_CHECK(ck_long_names((const char *)data, size, entry, side) == 0);
	check_names(entry, side);

	memcpy(full, data, n);
	full[n] = '\0';
	FZ_CHECK(ck_long_names(full, n, entry2, side2) == 0);
	check_names(entry2, side2);
	if (n == size)
		FZ_CHECK(!strcmp(entry, entry2) && !strcmp(side, side2));
	r = ck_name_decrypt(fz_tree(), fz_dir_id, full, strlen(full), out);
	FZ_CHECK(r == -EBADMSG || r == -EINVAL || (r >= 1 && r <= CK_NAME_MAX));
	if (r > 0)
		FZ_CHECK(!memchr(out, '/', (size_t)r) && strlen(out) == (size_t)r);
	return 0;
}
