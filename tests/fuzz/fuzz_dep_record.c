/* Fuzz DEP records (<volume>/.ckfs/deps/<id>): ck_dep_decode with a
 * hand-made volume whose record_key is a fixed test key. Input: one mode
 * byte, then either (mode bit 0 clear) a whole record file, or (bit 0 set)
 * a plaintext payload that the target seals into a record first, so that
 * the payload parser behind the GCM tag is reached. Properties of a record
 * that decodes: its fields are in range, and ck_dep_encode of what was
 * decoded holds exactly the payload that was decoded (one encoding per
 * record) and decodes to the same struct. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/dep.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ck_volume *v = fz_record_volume();
	static struct ck_dep d, d2;
	uint8_t *rec = NULL, *enc = NULL, *pl = NULL;
	size_t rec_n, enc_n, pl_n;
	int r;

	if (size < 1 || size > 65536)
		return 0;
	if (data[0] & 1) {
		FZ_CHECK(fz_record_seal(FZ_KIND_DEP, data + 1, size - 1, &rec, &rec_n) == 0);
	} else {
		rec = malloc(size - 1 ? size - 1 : 1);
		memcpy(rec, data + 1, size - 1);
		rec_n = size - 1;
	}
	r = ck_dep_decode(v, rec, rec_n, &d);
	FZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT || r == -ENOMEM);
	if (r < 0)
		goto out;
	FZ_CHECK(strcmp(ck_dep_state_name(d.state), "unknown") != 0);
	FZ_CHECK(ck_dep_name_valid(d.name) && d.n_wraps <= CK_DEP_MAX_WRAPS);
	for (uint32_t i = 0; i < d.n_wraps; i++) {
		FZ_CHECK(strcmp(ck_role_name(d.wraps[i].role), "unknown") != 0);
		FZ_CHECK(d.wraps[i].len <= CK_WRAP_MAX && strlen(d.wraps[i].uri) < CK_URI_MAX);
	}
	FZ_CHECK(ck_dep_encode(v, &d, &enc, &enc_n) == 0);
	FZ_CHECK(enc_n == rec_n);
	FZ_CHECK(fz_record_open(enc, enc_n, &pl, &pl_n) == 0);
	FZ_CHECK(pl_n == rec_n - FZ_REC_HDR - CK_GCM_TAG_LEN);
	if (data[0] & 1)
		FZ_CHECK(memcmp(pl, data + 1, pl_n) == 0);
	FZ_CHECK(ck_dep_decode(v, enc, enc_n, &d2) == 0);
	FZ_CHECK(memcmp(&d, &d2, sizeof(d)) == 0);
out:
	free(rec);
	free(enc);
	free(pl);
	return 0;
}
