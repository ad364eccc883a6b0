/* Fuzz the key file codec (72 bytes, keys/keyfile.h): ck_keyfile_decode on
 * the raw input and on a copy with its checksum made right; where it
 * accepts, encode must give back the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "keys/keyfile.h"
#include "keys/util.h"
#include "tests/fuzz/fuzz.h"

static void check(const uint8_t *buf, size_t n)
{
	uint8_t id[CK_ID_LEN], key[CK_KEY_LEN], again[CK_KEYFILE_LEN];
	int r = ck_keyfile_decode(buf, n, id, key);

	FZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r < 0)
		return;
	FZ_CHECK(n == CK_KEYFILE_LEN);
	FZ_CHECK(ck_keyfile_encode(id, key, again) == 0);
	FZ_CHECK(memcmp(again, buf, CK_KEYFILE_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fixed[CK_KEYFILE_LEN];

	check(data, size);
	if (size == CK_KEYFILE_LEN) {
		memcpy(fixed, data, sizeof(fixed));
		ck_put64(fixed + 64, ck_checksum(fixed, 64));
		check(fixed, sizeof(fixed));
	}
	return 0;
}
