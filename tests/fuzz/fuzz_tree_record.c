/* Fuzz tree records (<volume>/.ckfs/trees/<id>): ck_tree_rec_decode with a
 * hand-made volume whose record_key is a fixed test key. Input: one mode
 * byte, then either (bit 0 clear) a whole record file or (bit 0 set) a
 * plaintext payload that the target seals into a record first. Properties
 * of a record that decodes: fields in range, and ck_tree_rec_encode of what
 * was decoded holds exactly the decoded payload and decodes the same. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/dep.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ck_volume *v = fz_record_volume();
	static struct ck_tree_rec t, t2;
	uint8_t *rec = NULL, *enc = NULL, *pl = NULL;
	size_t rec_n, enc_n, pl_n;
	int r;

	if (size < 1 || size > 65536)
		return 0;
	if (data[0] & 1) {
		FZ_CHECK(fz_record_seal(FZ_KIND_TREE, data + 1, size - 1, &rec, &rec_n) == 0);
	} else {
		rec = malloc(size - 1 ? size - 1 : 1);
		memcpy(rec, data + 1, size - 1);
		rec_n = size - 1;
	}
	r = ck_tree_rec_decode(v, rec, rec_n, &t);
	FZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT || r == -ENOMEM);
	if (r < 0)
		goto out;
	FZ_CHECK(strcmp(ck_tree_state_name(t.state), "unknown") != 0);
	FZ_CHECK(t.wlen <= CK_WRAP_MAX && strlen(t.path) < CK_TREE_PATH_MAX);
	FZ_CHECK(ck_tree_rec_encode(v, &t, &enc, &enc_n) == 0);
	FZ_CHECK(enc_n == rec_n);
	FZ_CHECK(fz_record_open(enc, enc_n, &pl, &pl_n) == 0);
	if (data[0] & 1)
		FZ_CHECK(memcmp(pl, data + 1, pl_n) == 0);
	FZ_CHECK(ck_tree_rec_decode(v, enc, enc_n, &t2) == 0);
	FZ_CHECK(memcmp(&t, &t2, sizeof(t)) == 0);
out:
	free(rec);
	free(enc);
	free(pl);
	return 0;
}
