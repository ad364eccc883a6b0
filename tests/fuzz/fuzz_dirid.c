/* Fuzz the directory ID file (.ckfs.dir in every backing directory, 32
 * bytes): ck_dirid_decode on the raw input and on a copy with its checksum
 * made right; where it accepts, encode must give back the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "keys/format.h"
#include "keys/util.h"
#include "tests/fuzz/fuzz.h"

static void check(const uint8_t *buf, size_t n)
{
	uint8_t id[CK_ID_LEN], again[CK_DIRID_LEN];
	int r = ck_dirid_decode(buf, n, id);

	FZ_CHECK(r == 0 || r == -EINVAL || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r < 0)
		return;
	FZ_CHECK(n == CK_DIRID_LEN);
	FZ_CHECK(ck_dirid_encode(id, again) == 0);
	FZ_CHECK(memcmp(again, buf, CK_DIRID_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fixed[CK_DIRID_LEN];

	check(data, size);
	if (size == CK_DIRID_LEN) {
		memcpy(fixed, data, sizeof(fixed));
		ck_put64(fixed + 24, ck_checksum(fixed, 24));
		check(fixed, sizeof(fixed));
	}
	return 0;
}
