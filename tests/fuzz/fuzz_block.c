/* Fuzz content block decryption as fs/chunk.c does it. Input: one control
 * byte (bit 0: the final-block flag; bits 1..7: the block number), then the
 * ciphertext block. ck_block_is_hole, then ck_block_open with the content
 * key of the fixed file. Properties: a block that opens has the plaintext
 * length in_len - 28, and does not open under the other final flag nor
 * under another block number (the AAD binds both). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/format.h"
#include "keys/tree.h"
#include "tests/fuzz/fuzz.h"

static struct ck_gcm *content(void)
{
	static struct ck_gcm *g;

	if (!g) {
		struct ck_file_keys k = { 0 };
		FZ_CHECK(ck_file_keys_derive(fz_tree(), fz_file_id, &k) == 0);
		FZ_CHECK(ck_gcm_new(&g, k.content) == 0);
		ck_file_keys_release(&k);
	}
	return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ck_file_ref ref = { fz_volume_id, fz_tree_id, fz_file_id };
	static uint8_t pt[CK_BLOCK_SIZE];
	const uint8_t *in;
	size_t n;
	int last, r, hole;
	uint64_t blockno;

	if (size < 1)
		return 0;
	last = data[0] & 1;
	blockno = data[0] >> 1;
	in = data + 1;
	n = size - 1;

	hole = ck_block_is_hole(in, n);
	for (size_t i = 0; i < n && hole; i++)
		FZ_CHECK(in[i] == 0);
	r = ck_block_open(content(), &ref, blockno, last, in, n, pt);
	FZ_CHECK(r == -EBADMSG || r == -EIO || r >= 0);
	if (r < 0)
		return 0;
	FZ_CHECK(n >= CK_BLOCK_OVERHEAD && n <= CK_CBLOCK_SIZE);
	FZ_CHECK((size_t)r == n - CK_BLOCK_OVERHEAD);
	FZ_CHECK(!hole);
	FZ_CHECK(ck_block_open(content(), &ref, blockno, !last, in, n, pt) < 0);
	FZ_CHECK(ck_block_open(content(), &ref, blockno + 1, last, in, n, pt) < 0);
	return 0;
}
