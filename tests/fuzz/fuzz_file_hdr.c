/* Fuzz the file header (first 512 bytes of every regular backing file),
 * as fs/chunk.c reads it: ck_file_hdr_parse on the raw input (any length:
 * the blocks follow the header), then, where it parses, the per-file keys
 * of the fixed tree for the parsed file ID, ck_file_hdr_verify and
 * ck_file_size_open. Properties: a parsed header re-encodes to the same
 * first 480 bytes (one encoding per header; the rest is the MAC), the
 * re-encoded header verifies, and the binding helpers keep n_bind in range. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "keys/format.h"
#include "keys/tree.h"
#include "tests/fuzz/fuzz.h"

#define FH_MAC (CK_FILE_HDR_LEN - CK_HASH_LEN)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ck_file_hdr h;
	struct ck_file_keys k = { 0 };
	struct ck_gcm *g = NULL;
	uint8_t again[CK_FILE_HDR_LEN], b[CK_BINDING_LEN];
	uint64_t plain = 0;
	int r = ck_file_hdr_parse(data, size, &h), v;

	FZ_CHECK(r == 0 || r == -EINVAL || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r < 0)
		return 0;
	FZ_CHECK(size >= CK_FILE_HDR_LEN && h.n_bind <= CK_MAX_LINKS);
	FZ_CHECK((h.flags & ~CK_FILE_KNOWN_FLAGS) == 0);

	struct ck_file_ref ref = { fz_volume_id, h.tree_id, h.file_id };
	FZ_CHECK(ck_file_keys_derive(fz_tree(), h.file_id, &k) == 0);
	v = ck_file_hdr_verify(data, &ref, k.header);
	FZ_CHECK(v == 0 || v == -EBADMSG);

	FZ_CHECK(ck_file_hdr_encode(&h, &ref, k.header, again) == 0);
	FZ_CHECK(memcmp(again, data, FH_MAC) == 0);
	FZ_CHECK(ck_file_hdr_verify(again, &ref, k.header) == 0);
	if (v == 0)
		FZ_CHECK(memcmp(again, data, CK_FILE_HDR_LEN) == 0);

	FZ_CHECK(ck_gcm_new(&g, k.size) == 0);
	r = ck_file_size_open(g, &ref, h.size_box, &plain);
	FZ_CHECK(r == 0 || r == -EBADMSG);
	if (r == 0)
		FZ_CHECK(plain <= (uint64_t)INT64_MAX / 2 && ck_backing_size(plain) > plain);

	/* The binding helpers on what was parsed: add one (derived from the
	 * input), look it up, remove it. */
	FZ_CHECK(ck_binding(k.header, fz_dir_id, (const char *)data + 8, 16, b) == 0);
	r = ck_file_hdr_add_binding(&h, b);
	FZ_CHECK(r == 0 || (r == -EMLINK && h.n_bind == CK_MAX_LINKS));
	FZ_CHECK(h.n_bind <= CK_MAX_LINKS);
	if (r == 0) {
		FZ_CHECK(ck_file_hdr_has_binding(&h, b));
		ck_file_hdr_del_binding(&h, b);
		FZ_CHECK(!ck_file_hdr_has_binding(&h, b));
	}
	ck_gcm_free(g);
	ck_file_keys_release(&k);
	return 0;
}
