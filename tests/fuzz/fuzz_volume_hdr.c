/* Fuzz the volume header codec (<volume>/.ckfs/volume, 256 bytes):
 * ck_volume_hdr_decode on the raw input, then on a copy whose XXH64
 * checksum is made right (the fuzzer cannot guess it) so that the field
 * checks are reached; where decode accepts, ck_volume_hdr_verify with a
 * fixed MAC key, and where that accepts, encode must give back the very
 * same bytes (one encoding per header). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "keys/format.h"
#include "keys/util.h"
#include "tests/fuzz/fuzz.h"

static void check(const uint8_t *buf, size_t n)
{
	struct ck_volume_hdr h;
	uint8_t again[CK_VOLUME_HDR_LEN];
	int r = ck_volume_hdr_decode(buf, n, &h);

	FZ_CHECK(r == 0 || r == -EINVAL || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r < 0)
		return;
	FZ_CHECK(n == CK_VOLUME_HDR_LEN);
	FZ_CHECK(h.version == CK_FORMAT_VERSION && h.flags == 0 && h.block_size == CK_BLOCK_SIZE);
	if (ck_volume_hdr_verify(buf, fz_volume_mac_key) < 0)
		return;
	FZ_CHECK(ck_volume_hdr_encode(&h, fz_volume_mac_key, again) == 0);
	FZ_CHECK(memcmp(again, buf, CK_VOLUME_HDR_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fixed[CK_VOLUME_HDR_LEN];

	check(data, size);
	if (size == CK_VOLUME_HDR_LEN) {
		memcpy(fixed, data, sizeof(fixed));
		ck_put64(fixed + 248, ck_checksum(fixed, 248));
		check(fixed, sizeof(fixed));
	}
	return 0;
}
