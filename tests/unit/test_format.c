/* On-disk codecs of keys/format.h: volume header, directory IDs, file
 * headers, link bindings and the sealed plaintext size, content blocks, and
 * the plaintext -> backing size arithmetic. Byte offsets come from
 * docs/FORMAT.md. */
#include "ck_test.h"
#include "keys/crypto.h"
#include "keys/format.h"
#include "keys/secmem.h"
#include "keys/tree.h"
#include "keys/util.h"

/* docs/FORMAT.md, "Volume header" */
enum { VH_VERSION = 8, VH_CREATED = 24, VH_MAC = 120, VH_MAC_END = 152, VH_SUM = 248 };
/* docs/FORMAT.md, "File header, 512 bytes" */
enum {
	FH_VERSION = 4, FH_KIND = 5, FH_FLAGS = 6, FH_FILEID = 8, FH_NBIND = 24, FH_BIND = 32,
	FH_SIZE = 352, FH_RESERVED2 = 388, FH_TREEID = 464, FH_MAC = 480, FH_LEN = 512,
};
/* docs/FORMAT.md, "Sealed plaintext size": the size box's AAD */
enum { SIZE_AAD_LEN = 53 };

static const uint8_t VOL_ID[CK_ID_LEN] = "volume-id-0123!";
static const uint8_t TREE_ID[CK_ID_LEN] = "tree-id-abcdefg";
static const uint8_t FILE_ID[CK_ID_LEN] = "file-id-ABCDEFG";

static void sample_volume_hdr(struct ck_volume_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->version = CK_FORMAT_VERSION;
	h->flags = 0;
	h->block_size = CK_BLOCK_SIZE;
	h->created = 1764000000;
	ck_test_fill(h->volume_id, CK_ID_LEN, 1);
	ck_test_fill(h->service_tree_id, CK_ID_LEN, 2);
	ck_test_fill(h->kek_id, CK_ID_LEN, 3);
	ck_test_fill(h->wrapped_service_key, CK_WRAPPED_KEY_LEN, 4);
}

static void encode_sample_volume_hdr(uint8_t buf[CK_VOLUME_HDR_LEN], uint8_t mac_key[CK_KEY_LEN])
{
	struct ck_volume_hdr h;

	sample_volume_hdr(&h);
	ck_test_fill(mac_key, CK_KEY_LEN, 5);
	assert_int_equal(ck_volume_hdr_encode(&h, mac_key, buf), 0);
}

/* Rewrite the checksum so that only the field under test is wrong. */
static void fix_volume_checksum(uint8_t buf[CK_VOLUME_HDR_LEN])
{
	ck_put64(buf + VH_SUM, ck_checksum(buf, VH_SUM));
}

/* ---------------- volume header ---------------- */

static void volume_hdr_encode_decode_round_trips(void **state)
{
	struct ck_volume_hdr h, d;
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];

	(void)state;
	sample_volume_hdr(&h);
	ck_test_fill(key, sizeof(key), 5);
	assert_int_equal(ck_volume_hdr_encode(&h, key, buf), 0);
	assert_memory_equal(buf, "CKFSVOL\0", 8);
	assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.version, h.version);
	assert_int_equal(d.flags, h.flags);
	assert_int_equal(d.block_size, h.block_size);
	assert_int_equal(d.created, h.created);
	assert_memory_equal(d.volume_id, h.volume_id, CK_ID_LEN);
	assert_memory_equal(d.service_tree_id, h.service_tree_id, CK_ID_LEN);
	assert_memory_equal(d.kek_id, h.kek_id, CK_ID_LEN);
	assert_memory_equal(d.wrapped_service_key, h.wrapped_service_key, CK_WRAPPED_KEY_LEN);
	/* The decoded MAC is the one in the buffer, and encoding is
	 * deterministic. */
	assert_memory_equal(d.mac, buf + VH_MAC, CK_HASH_LEN);
	{
		uint8_t again[CK_VOLUME_HDR_LEN];
		assert_int_equal(ck_volume_hdr_encode(&d, key, again), 0);
		assert_memory_equal(again, buf, sizeof(buf));
	}
}

static void volume_hdr_verify_accepts_right_mac_key_only(void **state)
{
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];

	(void)state;
	encode_sample_volume_hdr(buf, key);
	assert_int_equal(ck_volume_hdr_verify(buf, key), 0);
	for (int i = 0; i < CK_KEY_LEN; i++) {
		key[i] ^= 0x20;
		assert_int_equal(ck_volume_hdr_verify(buf, key), -EBADMSG);
		key[i] ^= 0x20;
	}
}

/* Without a MAC key the header still decodes (so the key file can be
 * found), but it can never verify. */
static void volume_hdr_encoded_without_mac_key_fails_verify(void **state)
{
	struct ck_volume_hdr h;
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN], zero[CK_HASH_LEN] = { 0 };

	(void)state;
	sample_volume_hdr(&h);
	ck_test_fill(key, sizeof(key), 5);
	assert_int_equal(ck_volume_hdr_encode(&h, NULL, buf), 0);
	assert_memory_equal(buf + VH_MAC, zero, CK_HASH_LEN);
	assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), 0);
	assert_int_equal(ck_volume_hdr_verify(buf, key), -EBADMSG);
}

/* An attacker who edits a field and recomputes the (unkeyed) checksum gets
 * past decode but not past the MAC. */
static void volume_hdr_verify_rejects_edited_field_with_fixed_checksum(void **state)
{
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];
	struct ck_volume_hdr h;

	(void)state;
	for (int i = 0; i < VH_MAC_END; i++) {
		if (i < 8 || (i >= VH_VERSION && i < 24))
			continue;   /* magic, version, flags, block size: decode rejects */
		encode_sample_volume_hdr(buf, key);
		buf[i] ^= 0x01;
		fix_volume_checksum(buf);
		assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), 0);
		assert_int_equal(ck_volume_hdr_verify(buf, key), -EBADMSG);
	}
}

static void volume_hdr_decode_rejects_flipped_byte_anywhere(void **state)
{
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];
	struct ck_volume_hdr h;

	(void)state;
	encode_sample_volume_hdr(buf, key);
	for (int i = 0; i < CK_VOLUME_HDR_LEN; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			buf[i] ^= (uint8_t)(1 << bit);
			/* The magic identifies the structure; anything else is
			 * caught by the checksum. */
			assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h),
			                 i < 8 ? -EINVAL : -EBADMSG);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), 0);
}

static void volume_hdr_decode_rejects_unknown_version_with_valid_checksum(void **state)
{
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];
	struct ck_volume_hdr h;
	const uint32_t versions[] = { 0, 2, 3, 255, 0x100, 0xffffffffu };

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		encode_sample_volume_hdr(buf, key);
		ck_put32(buf + VH_VERSION, versions[i]);
		fix_volume_checksum(buf);
		assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), -EPROTONOSUPPORT);
	}
}

static void volume_hdr_decode_rejects_short_and_long_buffers(void **state)
{
	uint8_t buf[CK_VOLUME_HDR_LEN + 8], key[CK_KEY_LEN];
	struct ck_volume_hdr h;

	(void)state;
	encode_sample_volume_hdr(buf, key);
	/* Shorter than the magic: not a volume header at all. */
	for (size_t n = 0; n < 8; n++)
		assert_int_equal(ck_volume_hdr_decode(buf, n, &h), -EINVAL);
	/* The magic is there but the header is cut short (or has a tail). */
	for (size_t n = 8; n < CK_VOLUME_HDR_LEN; n++)
		assert_int_equal(ck_volume_hdr_decode(buf, n, &h), -EBADMSG);
	memset(buf + CK_VOLUME_HDR_LEN, 0, 8);
	assert_int_equal(ck_volume_hdr_decode(buf, CK_VOLUME_HDR_LEN + 1, &h), -EBADMSG);
}

static void volume_hdr_decode_rejects_nonzero_flags_block_size_and_reserved(void **state)
{
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];
	struct ck_volume_hdr h;

	(void)state;
	encode_sample_volume_hdr(buf, key);
	ck_put32(buf + 12, 1u << 31);
	fix_volume_checksum(buf);
	assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), -EBADMSG);

	encode_sample_volume_hdr(buf, key);
	ck_put32(buf + 16, 65536);
	fix_volume_checksum(buf);
	assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), -EBADMSG);

	for (int i = VH_MAC_END; i < VH_SUM; i++) {
		encode_sample_volume_hdr(buf, key);
		buf[i] = 0xff;
		fix_volume_checksum(buf);
		assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), -EBADMSG);
	}
}

static void check_evil_volume(const char *name, const uint8_t *buf, size_t n, int want, void *arg)
{
	struct ck_volume_hdr h;
	int r = ck_volume_hdr_decode(buf, n, &h);

	(void)arg;
	if (r != want)
		fail_msg("%s: ck_volume_hdr_decode returned %d, want %d", name, r, want);
}

static void volume_hdr_decode_rejects_every_evil_file(void **state)
{
	(void)state;
	assert_true(ck_test_evil_each("volume", check_evil_volume, NULL) >= 20);
}

/* ---------------- directory IDs ---------------- */

static void dirid_encode_decode_round_trips(void **state)
{
	uint8_t id[CK_ID_LEN], buf[CK_DIRID_LEN], back[CK_ID_LEN];

	(void)state;
	for (int seed = 0; seed < 8; seed++) {
		ck_test_fill(id, sizeof(id), (uint8_t)(seed * 31));
		assert_int_equal(ck_dirid_encode(id, buf), 0);
		assert_memory_equal(buf, "CKDI", 4);
		memset(back, 0, sizeof(back));
		assert_int_equal(ck_dirid_decode(buf, sizeof(buf), back), 0);
		assert_memory_equal(back, id, CK_ID_LEN);
	}
}

static void dirid_decode_rejects_flipped_byte_anywhere(void **state)
{
	uint8_t id[CK_ID_LEN], buf[CK_DIRID_LEN], back[CK_ID_LEN];

	(void)state;
	ck_test_fill(id, sizeof(id), 77);
	assert_int_equal(ck_dirid_encode(id, buf), 0);
	for (int i = 0; i < CK_DIRID_LEN; i++) {
		buf[i] ^= 0x08;
		assert_int_equal(ck_dirid_decode(buf, sizeof(buf), back), i < 4 ? -EINVAL : -EBADMSG);
		buf[i] ^= 0x08;
	}
	for (size_t n = 4; n < CK_DIRID_LEN; n++)
		assert_int_equal(ck_dirid_decode(buf, n, back), -EBADMSG);
	for (size_t n = 0; n < 4; n++)
		assert_int_equal(ck_dirid_decode(buf, n, back), -EINVAL);
}

static void check_evil_dirid(const char *name, const uint8_t *buf, size_t n, int want, void *arg)
{
	uint8_t id[CK_ID_LEN];
	int r = ck_dirid_decode(buf, n, id);

	(void)arg;
	if (r != want)
		fail_msg("%s: ck_dirid_decode returned %d, want %d", name, r, want);
}

static void dirid_decode_rejects_every_evil_file(void **state)
{
	(void)state;
	assert_true(ck_test_evil_each("dirid", check_evil_dirid, NULL) >= 5);
}

/* ---------------- file headers and bindings ---------------- */

struct fixture {
	struct ck_tree tree;
	struct ck_file_keys keys;
	struct ck_file_ref ref;
	uint8_t tree_key[CK_KEY_LEN];
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	ck_test_fill(f->tree_key, CK_KEY_LEN, 11);
	if (ck_tree_init(&f->tree, VOL_ID, TREE_ID, f->tree_key) < 0 ||
	    ck_file_keys_derive(&f->tree, FILE_ID, &f->keys) < 0) {
		free(f);
		return -1;
	}
	f->ref.volume_id = VOL_ID;
	f->ref.tree_id = TREE_ID;
	f->ref.file_id = FILE_ID;
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	ck_file_keys_release(&f->keys);
	ck_tree_release(&f->tree);
	free(f);
	return 0;
}

/* A header with n_bind bindings and a size box sealed for size under the
 * fixture's size key. */
static void sample_file_hdr_sized(struct fixture *f, struct ck_file_hdr *h, int n_bind,
                                  uint64_t size)
{
	struct ck_gcm *g;

	memset(h, 0, sizeof(*h));
	h->version = CK_FORMAT_VERSION;
	h->kind = 1;
	h->flags = CK_FILE_SPARSE;
	memcpy(h->file_id, FILE_ID, CK_ID_LEN);
	h->n_bind = (uint8_t)n_bind;
	for (int i = 0; i < n_bind; i++)
		ck_test_fill(h->bind[i], CK_BINDING_LEN, (uint8_t)(100 + i));
	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);
	assert_int_equal(ck_file_size_seal(g, &f->ref, size, h->size_box), 0);
	ck_gcm_free(g);
}

static void sample_file_hdr(struct fixture *f, struct ck_file_hdr *h, int n_bind)
{
	sample_file_hdr_sized(f, h, n_bind, 12345);
}

static uint64_t open_size_box(struct fixture *f, const struct ck_file_ref *ref,
                              const uint8_t box[CK_SIZE_BOX_LEN], int *r)
{
	struct ck_gcm *g;
	uint64_t size = 0xdeadbeef;

	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);
	*r = ck_file_size_open(g, ref, box, &size);
	ck_gcm_free(g);
	return size;
}

static void file_hdr_layout_constants_match_format_doc(void **state)
{
	(void)state;
	assert_int_equal(CK_FILE_HDR_LEN, FH_LEN);
	assert_int_equal(CK_MAX_LINKS, 20);
	assert_int_equal(CK_BINDING_LEN, 16);
	assert_int_equal(FH_BIND + CK_MAX_LINKS * CK_BINDING_LEN, FH_SIZE);
	assert_int_equal(CK_SIZE_BOX_LEN, 36);
	assert_int_equal(FH_SIZE + CK_SIZE_BOX_LEN, FH_RESERVED2);
	assert_int_equal(FH_TREEID + CK_ID_LEN, FH_MAC);
	assert_int_equal(FH_MAC + CK_HASH_LEN, FH_LEN);
}

static void file_hdr_encode_parse_verify_round_trips(void **state)
{
	struct fixture *f = *state;

	for (int nb = 0; nb <= CK_MAX_LINKS; nb++) {
		struct ck_file_hdr h, p;
		uint8_t buf[CK_FILE_HDR_LEN], zero[FH_TREEID - FH_RESERVED2] = { 0 };
		uint64_t size = (uint64_t)nb * 4097 + 1;
		int r;

		sample_file_hdr_sized(f, &h, nb, size);
		assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);
		/* every field at its documented offset */
		assert_memory_equal(buf, "CKFH", 4);
		assert_int_equal(buf[FH_VERSION], 1);
		assert_int_equal(buf[FH_KIND], 1);
		assert_int_equal(ck_get16(buf + FH_FLAGS), CK_FILE_SPARSE);
		assert_memory_equal(buf + FH_FILEID, FILE_ID, CK_ID_LEN);
		assert_int_equal(buf[FH_NBIND], nb);
		for (int i = FH_NBIND + 1; i < FH_BIND; i++)
			assert_int_equal(buf[i], 0);
		for (int i = 0; i < nb; i++)
			assert_memory_equal(buf + FH_BIND + i * CK_BINDING_LEN, h.bind[i], CK_BINDING_LEN);
		for (int i = FH_BIND + nb * CK_BINDING_LEN; i < FH_SIZE; i++)
			assert_int_equal(buf[i], 0);
		assert_memory_equal(buf + FH_SIZE, h.size_box, CK_SIZE_BOX_LEN);
		assert_memory_equal(buf + FH_RESERVED2, zero, sizeof(zero));
		/* the tree it was written for is recorded (offset 464) */
		assert_memory_equal(buf + FH_TREEID, TREE_ID, CK_ID_LEN);

		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), 0);
		assert_int_equal(p.version, CK_FORMAT_VERSION);
		assert_int_equal(p.kind, 1);
		assert_int_equal(p.flags, CK_FILE_SPARSE);
		assert_memory_equal(p.file_id, FILE_ID, CK_ID_LEN);
		assert_memory_equal(p.tree_id, TREE_ID, CK_ID_LEN);
		assert_int_equal(p.n_bind, nb);
		for (int i = 0; i < nb; i++)
			assert_memory_equal(p.bind[i], h.bind[i], CK_BINDING_LEN);
		assert_memory_equal(p.size_box, h.size_box, CK_SIZE_BOX_LEN);
		assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), 0);
		/* the parsed size box opens to the size that was sealed */
		assert_true(open_size_box(f, &f->ref, p.size_box, &r) == size);
		assert_int_equal(r, 0);
		/* the MAC is the documented HMAC (header key, volume ID ||
		 * tree ID || bytes 0..479) */
		{
			uint8_t mac[CK_HASH_LEN];
			const void *parts[] = { VOL_ID, TREE_ID, buf };
			size_t lens[] = { CK_ID_LEN, CK_ID_LEN, FH_MAC };
			assert_int_equal(ck_hmac_sha256(f->keys.header, parts, lens, 3, mac), 0);
			assert_memory_equal(buf + FH_MAC, mac, CK_HASH_LEN);
		}
		/* Parsing a longer buffer (the start of a backing file) works. */
		{
			uint8_t longer[CK_FILE_HDR_LEN + 100] = { 0 };
			memcpy(longer, buf, sizeof(buf));
			assert_int_equal(ck_file_hdr_parse(longer, sizeof(longer), &p), 0);
			assert_int_equal(p.n_bind, nb);
		}
	}
}

static void file_hdr_verify_rejects_wrong_volume_tree_or_key(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h;
	struct ck_file_ref other;
	uint8_t buf[CK_FILE_HDR_LEN], other_id[CK_ID_LEN], key[CK_KEY_LEN];

	sample_file_hdr(f, &h, 2);
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);

	memcpy(other_id, VOL_ID, CK_ID_LEN);
	other_id[0] ^= 1;
	other = f->ref;
	other.volume_id = other_id;
	assert_int_equal(ck_file_hdr_verify(buf, &other, f->keys.header), -EBADMSG);

	memcpy(other_id, TREE_ID, CK_ID_LEN);
	other_id[15] ^= 1;
	other = f->ref;
	other.tree_id = other_id;
	assert_int_equal(ck_file_hdr_verify(buf, &other, f->keys.header), -EBADMSG);

	/* Volume and tree ID swapped. */
	other.volume_id = TREE_ID;
	other.tree_id = VOL_ID;
	assert_int_equal(ck_file_hdr_verify(buf, &other, f->keys.header), -EBADMSG);

	memcpy(key, f->keys.header, CK_KEY_LEN);
	key[7] ^= 0x80;
	assert_int_equal(ck_file_hdr_verify(buf, &f->ref, key), -EBADMSG);
	/* The content key is not the header key. */
	assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.content), -EBADMSG);
}

/* Another file's header put in front of this file's blocks: the keys of
 * the file it claims to be do not verify this file's identity. */
static void file_hdr_verify_rejects_header_of_another_file(void **state)
{
	struct fixture *f = *state;
	uint8_t other_id[CK_ID_LEN], buf[CK_FILE_HDR_LEN];
	struct ck_file_keys ok;
	struct ck_file_ref oref = f->ref;
	struct ck_file_hdr h;

	memcpy(other_id, FILE_ID, CK_ID_LEN);
	other_id[3] ^= 0x55;
	assert_int_equal(ck_file_keys_derive(&f->tree, other_id, &ok), 0);
	oref.file_id = other_id;
	sample_file_hdr(f, &h, 1);
	memcpy(h.file_id, other_id, CK_ID_LEN);
	assert_int_equal(ck_file_hdr_encode(&h, &oref, ok.header, buf), 0);
	assert_int_equal(ck_file_hdr_verify(buf, &oref, ok.header), 0);
	assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), -EBADMSG);
	ck_file_keys_release(&ok);
}

static void file_hdr_verify_rejects_flipped_byte_anywhere(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h;
	uint8_t buf[CK_FILE_HDR_LEN];

	sample_file_hdr(f, &h, 3);
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);
	for (int i = 0; i < CK_FILE_HDR_LEN; i++) {
		buf[i] ^= 0x04;
		assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), -EBADMSG);
		buf[i] ^= 0x04;
	}
	assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), 0);
}

static void file_hdr_encode_rejects_too_many_bindings_and_unknown_flags(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h;
	uint8_t buf[CK_FILE_HDR_LEN];

	/* 20 bindings fit; a 21st does not */
	sample_file_hdr(f, &h, CK_MAX_LINKS);
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);
	h.n_bind = CK_MAX_LINKS + 1;
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), -EINVAL);
	h.n_bind = 255;
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), -EINVAL);
	sample_file_hdr(f, &h, 0);
	h.flags = 0x0002;
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), -EINVAL);
}

static void file_hdr_parse_rejects_bad_fields(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h, p;
	uint8_t buf[CK_FILE_HDR_LEN], good[CK_FILE_HDR_LEN];

	sample_file_hdr(f, &h, 1);
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, good), 0);

	memcpy(buf, good, sizeof(buf));
	buf[0] = 'X';
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EINVAL);
	memcpy(buf, good, sizeof(buf));
	buf[FH_VERSION] = 2;
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EPROTONOSUPPORT);
	memcpy(buf, good, sizeof(buf));
	buf[FH_KIND] = 2;
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	memcpy(buf, good, sizeof(buf));
	buf[FH_NBIND] = CK_MAX_LINKS + 1;
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	memcpy(buf, good, sizeof(buf));
	ck_put16(buf + FH_FLAGS, 0x0100);
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	memcpy(buf, good, sizeof(buf));
	buf[FH_NBIND] = 255;
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	/* reserved bytes after n_bind (25..31), binding slots not in use
	 * (here 1..19: bytes 48..351), and reserved bytes 388..463 */
	for (int i = FH_NBIND + 1; i < FH_BIND; i++) {
		memcpy(buf, good, sizeof(buf));
		buf[i] = 1;
		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	}
	for (int i = FH_BIND + CK_BINDING_LEN; i < FH_SIZE; i++) {
		memcpy(buf, good, sizeof(buf));
		buf[i] = 0x80;
		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	}
	for (int i = FH_RESERVED2; i < FH_TREEID; i++) {
		memcpy(buf, good, sizeof(buf));
		buf[i] = (uint8_t)(1u << (i % 8));
		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), -EBADMSG);
	}
	/* The size box, tree ID and MAC are not checked by parse (they need
	 * keys); any value there parses. */
	for (int i = FH_SIZE; i < FH_RESERVED2; i++) {
		memcpy(buf, good, sizeof(buf));
		buf[i] ^= 0xff;
		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), 0);
	}
	for (int i = FH_TREEID; i < FH_LEN; i++) {
		memcpy(buf, good, sizeof(buf));
		buf[i] ^= 0xff;
		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), 0);
	}
	/* Cut short, including a header of the old 256-byte layout. */
	for (size_t n = 4; n < CK_FILE_HDR_LEN; n += 13)
		assert_int_equal(ck_file_hdr_parse(good, n, &p), -EBADMSG);
	assert_int_equal(ck_file_hdr_parse(good, 256, &p), -EBADMSG);
	assert_int_equal(ck_file_hdr_parse(good, CK_FILE_HDR_LEN - 1, &p), -EBADMSG);
	assert_int_equal(ck_file_hdr_parse(good, 3, &p), -EINVAL);
}

/* Every parse failure above is also a verify failure for a header that
 * was edited after it was written: reserved bytes are under the MAC. */
static void file_hdr_verify_rejects_nonzero_reserved_bytes(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h;
	uint8_t buf[CK_FILE_HDR_LEN];

	sample_file_hdr(f, &h, CK_MAX_LINKS);
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);
	for (int i = FH_RESERVED2; i < FH_TREEID; i += 5) {
		buf[i] = 0x01;
		assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), -EBADMSG);
		buf[i] = 0;
	}
	for (int i = FH_NBIND + 1; i < FH_BIND; i++) {
		buf[i] = 0x01;
		assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), -EBADMSG);
		buf[i] = 0;
	}
	assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), 0);
}

/* A header whose size box was replaced by another box of the same file
 * (a valid one, e.g. from an older copy) fails the header MAC; the box
 * alone cannot be rolled back without the header around it. */
static void file_hdr_verify_rejects_swapped_size_box(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h, old;
	uint8_t buf[CK_FILE_HDR_LEN];
	int r;

	sample_file_hdr_sized(f, &old, 1, 100);
	sample_file_hdr_sized(f, &h, 1, 9000);
	assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);
	memcpy(buf + FH_SIZE, old.size_box, CK_SIZE_BOX_LEN);
	assert_true(open_size_box(f, &f->ref, buf + FH_SIZE, &r) == 100);
	assert_int_equal(r, 0);
	assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), -EBADMSG);
}

static void check_evil_filehdr(const char *name, const uint8_t *buf, size_t n, int want, void *arg)
{
	struct ck_file_hdr h;
	int r = ck_file_hdr_parse(buf, n, &h);

	(void)arg;
	if (r != want)
		fail_msg("%s: ck_file_hdr_parse returned %d, want %d", name, r, want);
}

static void file_hdr_parse_rejects_every_evil_file(void **state)
{
	(void)state;
	assert_true(ck_test_evil_each("filehdr", check_evil_filehdr, NULL) >= 20);
}

/* The bases of the evil files are valid, so each case fails for its own
 * reason (tests/evil/README). */
static size_t read_evil_ok(const char *name, uint8_t *buf, size_t cap)
{
	char *path = ck_test_path(ck_test_evil_dir, name);
	size_t n = ck_test_read_file(path, buf, cap);

	free(path);
	return n;
}

static void evil_bases_are_accepted(void **state)
{
	uint8_t buf[1024], id[CK_ID_LEN];
	struct ck_volume_hdr vh;
	struct ck_file_hdr fh;
	size_t n;

	(void)state;
	n = read_evil_ok("ok-volume.bin", buf, sizeof(buf));
	assert_int_equal(ck_volume_hdr_decode(buf, n, &vh), 0);
	n = read_evil_ok("ok-dirid.bin", buf, sizeof(buf));
	assert_int_equal(ck_dirid_decode(buf, n, id), 0);
	n = read_evil_ok("ok-filehdr.bin", buf, sizeof(buf));
	assert_int_equal(n, CK_FILE_HDR_LEN);
	assert_int_equal(ck_file_hdr_parse(buf, n, &fh), 0);
	assert_int_equal(fh.n_bind, 1);
	n = read_evil_ok("ok-filehdr-20-bindings.bin", buf, sizeof(buf));
	assert_int_equal(ck_file_hdr_parse(buf, n, &fh), 0);
	assert_int_equal(fh.n_bind, CK_MAX_LINKS);
	assert_memory_equal(fh.bind[CK_MAX_LINKS - 1], buf + 32 + 19 * 16, CK_BINDING_LEN);
}

static void binding_depends_on_key_directory_and_name(void **state)
{
	struct fixture *f = *state;
	uint8_t dir[CK_ID_LEN], a[CK_BINDING_LEN], b[CK_BINDING_LEN], key[CK_KEY_LEN];

	ck_test_fill(dir, sizeof(dir), 21);
	assert_int_equal(ck_binding(f->keys.header, dir, "inbox", 5, a), 0);
	assert_int_equal(ck_binding(f->keys.header, dir, "inbox", 5, b), 0);
	assert_memory_equal(a, b, CK_BINDING_LEN);
	assert_int_equal(ck_binding(f->keys.header, dir, "inbox2", 6, b), 0);
	assert_memory_not_equal(a, b, CK_BINDING_LEN);
	assert_int_equal(ck_binding(f->keys.header, dir, "inbo", 4, b), 0);
	assert_memory_not_equal(a, b, CK_BINDING_LEN);
	dir[0] ^= 1;
	assert_int_equal(ck_binding(f->keys.header, dir, "inbox", 5, b), 0);
	assert_memory_not_equal(a, b, CK_BINDING_LEN);
	dir[0] ^= 1;
	memcpy(key, f->keys.header, CK_KEY_LEN);
	key[31] ^= 1;
	assert_int_equal(ck_binding(key, dir, "inbox", 5, b), 0);
	assert_memory_not_equal(a, b, CK_BINDING_LEN);
}

static void bindings_add_has_del_and_twenty_first_is_emlink(void **state)
{
	struct fixture *f = *state;
	struct ck_file_hdr h;
	uint8_t dir[CK_ID_LEN], b[CK_MAX_LINKS + 1][CK_BINDING_LEN];
	char name[16];

	ck_test_fill(dir, sizeof(dir), 33);
	for (int i = 0; i <= CK_MAX_LINKS; i++) {
		int n = snprintf(name, sizeof(name), "link%d", i);
		assert_int_equal(ck_binding(f->keys.header, dir, name, (size_t)n, b[i]), 0);
	}
	sample_file_hdr(f, &h, 0);
	for (int i = 0; i < CK_MAX_LINKS; i++) {
		assert_int_equal(ck_file_hdr_has_binding(&h, b[i]), 0);
		assert_int_equal(ck_file_hdr_add_binding(&h, b[i]), 0);
		assert_int_equal(ck_file_hdr_has_binding(&h, b[i]), 1);
		/* Adding a present binding again changes nothing. */
		assert_int_equal(ck_file_hdr_add_binding(&h, b[i]), 0);
		assert_int_equal(h.n_bind, i + 1);
	}
	assert_int_equal(ck_file_hdr_add_binding(&h, b[CK_MAX_LINKS]), -EMLINK);
	assert_int_equal(h.n_bind, CK_MAX_LINKS);
	assert_int_equal(ck_file_hdr_has_binding(&h, b[CK_MAX_LINKS]), 0);
	/* A binding already present is still "added" when the header is full. */
	assert_int_equal(ck_file_hdr_add_binding(&h, b[4]), 0);

	/* Delete from the middle, the front and the back. */
	ck_file_hdr_del_binding(&h, b[5]);
	ck_file_hdr_del_binding(&h, b[0]);
	ck_file_hdr_del_binding(&h, b[CK_MAX_LINKS - 1]);
	assert_int_equal(h.n_bind, CK_MAX_LINKS - 3);
	for (int i = 0; i < CK_MAX_LINKS; i++)
		assert_int_equal(ck_file_hdr_has_binding(&h, b[i]),
		                 !(i == 5 || i == 0 || i == CK_MAX_LINKS - 1));
	/* Deleting an absent binding is a no-op. */
	ck_file_hdr_del_binding(&h, b[5]);
	ck_file_hdr_del_binding(&h, b[CK_MAX_LINKS]);
	assert_int_equal(h.n_bind, CK_MAX_LINKS - 3);
	/* There is room again. */
	assert_int_equal(ck_file_hdr_add_binding(&h, b[CK_MAX_LINKS]), 0);
	assert_int_equal(ck_file_hdr_has_binding(&h, b[CK_MAX_LINKS]), 1);

	/* The edited list survives an encode/parse/verify. */
	{
		uint8_t buf[CK_FILE_HDR_LEN];
		struct ck_file_hdr p;

		assert_int_equal(ck_file_hdr_encode(&h, &f->ref, f->keys.header, buf), 0);
		assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &p), 0);
		assert_int_equal(ck_file_hdr_verify(buf, &f->ref, f->keys.header), 0);
		assert_int_equal(p.n_bind, h.n_bind);
		for (int i = 0; i <= CK_MAX_LINKS; i++)
			assert_int_equal(ck_file_hdr_has_binding(&p, b[i]),
			                 ck_file_hdr_has_binding(&h, b[i]));
	}
	/* Delete everything. */
	for (int i = 0; i <= CK_MAX_LINKS; i++)
		ck_file_hdr_del_binding(&h, b[i]);
	assert_int_equal(h.n_bind, 0);
}

/* ---------------- sealed plaintext size ---------------- */

static void size_box_seal_open_round_trips(void **state)
{
	struct fixture *f = *state;
	static const uint64_t sizes[] = {
		0, 1, 4095, 4096, 4097, 8192, 1000000, 5000000000ull, (1ull << 40) + 12345,
		(uint64_t)INT64_MAX / 2,         /* the largest size a box may hold */
	};
	uint8_t box[CK_SIZE_BOX_LEN], again[CK_SIZE_BOX_LEN];
	struct ck_gcm *g;

	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t got = 0;

		assert_int_equal(ck_file_size_seal(g, &f->ref, sizes[i], box), 0);
		assert_int_equal(ck_file_size_open(g, &f->ref, box, &got), 0);
		assert_true(got == sizes[i]);
		/* A fresh nonce every time: sealing the same size twice gives
		 * different boxes, so equal sizes do not look equal. */
		assert_int_equal(ck_file_size_seal(g, &f->ref, sizes[i], again), 0);
		assert_memory_not_equal(box, again, CK_GCM_NONCE_LEN);
		assert_memory_not_equal(box + CK_GCM_NONCE_LEN, again + CK_GCM_NONCE_LEN, 8 + 16);
		assert_int_equal(ck_file_size_open(g, &f->ref, again, &got), 0);
		assert_true(got == sizes[i]);
	}
	ck_gcm_free(g);
}

/* The box is exactly what docs/FORMAT.md says: nonce[12] || AES-256-GCM(
 * size key, u64 LE size)[8] || tag[16], AAD = version u8 || volume ID ||
 * tree ID || file ID || "size" (53 bytes). Opened here with ck_gcm_open
 * and a hand-built AAD, and sealed by hand and opened by libck. */
static void size_box_is_the_documented_gcm_box(void **state)
{
	struct fixture *f = *state;
	uint8_t box[CK_SIZE_BOX_LEN], aad[SIZE_AAD_LEN], pt[8], want[8];
	uint64_t size = 0x0102030405060708ull, got = 0;
	struct ck_gcm *g;

	aad[0] = 1;
	memcpy(aad + 1, VOL_ID, CK_ID_LEN);
	memcpy(aad + 17, TREE_ID, CK_ID_LEN);
	memcpy(aad + 33, FILE_ID, CK_ID_LEN);
	memcpy(aad + 49, "size", 4);
	ck_put64(want, size);
	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);

	assert_int_equal(ck_file_size_seal(g, &f->ref, size, box), 0);
	assert_int_equal(ck_gcm_open(g, box, aad, sizeof(aad), box + 12, 8, pt, box + 20), 0);
	assert_memory_equal(pt, want, 8);
	/* the AAD without "size", or with another version byte, is not it */
	assert_int_equal(ck_gcm_open(g, box, aad, 49, box + 12, 8, pt, box + 20), -EBADMSG);
	aad[0] = 2;
	assert_int_equal(ck_gcm_open(g, box, aad, sizeof(aad), box + 12, 8, pt, box + 20), -EBADMSG);
	aad[0] = 1;

	memset(box, 0x5a, CK_GCM_NONCE_LEN);
	ck_put64(pt, 777);
	assert_int_equal(ck_gcm_seal(g, box, aad, sizeof(aad), pt, 8, box + 12, box + 20), 0);
	assert_int_equal(ck_file_size_open(g, &f->ref, box, &got), 0);
	assert_true(got == 777);
	ck_gcm_free(g);
}

static void size_box_open_rejects_flipped_byte_anywhere(void **state)
{
	struct fixture *f = *state;
	uint8_t box[CK_SIZE_BOX_LEN];
	uint64_t got;
	struct ck_gcm *g;

	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);
	assert_int_equal(ck_file_size_seal(g, &f->ref, 4097, box), 0);
	for (int i = 0; i < CK_SIZE_BOX_LEN; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			box[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(ck_file_size_open(g, &f->ref, box, &got), -EBADMSG);
			box[i] ^= (uint8_t)(1 << bit);
		}
	}
	/* all zero (a header whose box was wiped) */
	{
		uint8_t zero[CK_SIZE_BOX_LEN] = { 0 };
		assert_int_equal(ck_file_size_open(g, &f->ref, zero, &got), -EBADMSG);
	}
	assert_int_equal(ck_file_size_open(g, &f->ref, box, &got), 0);
	assert_true(got == 4097);
	ck_gcm_free(g);
}

static void size_box_open_rejects_wrong_ref_or_key(void **state)
{
	struct fixture *f = *state;
	uint8_t box[CK_SIZE_BOX_LEN], id[CK_ID_LEN];
	struct ck_file_ref r;
	struct ck_gcm *g, *wrong;
	uint64_t got;

	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);
	assert_int_equal(ck_file_size_seal(g, &f->ref, 5000, box), 0);

	memcpy(id, FILE_ID, CK_ID_LEN); id[0] ^= 1;
	r = f->ref; r.file_id = id;
	assert_int_equal(ck_file_size_open(g, &r, box, &got), -EBADMSG);
	memcpy(id, TREE_ID, CK_ID_LEN); id[15] ^= 0x80;
	r = f->ref; r.tree_id = id;
	assert_int_equal(ck_file_size_open(g, &r, box, &got), -EBADMSG);
	memcpy(id, VOL_ID, CK_ID_LEN); id[7] ^= 0x10;
	r = f->ref; r.volume_id = id;
	assert_int_equal(ck_file_size_open(g, &r, box, &got), -EBADMSG);
	/* volume and tree IDs swapped */
	r = f->ref; r.volume_id = TREE_ID; r.tree_id = VOL_ID;
	assert_int_equal(ck_file_size_open(g, &r, box, &got), -EBADMSG);

	/* The size key is its own key: neither the content nor the header
	 * key opens the box. */
	assert_memory_not_equal(f->keys.size, f->keys.content, CK_KEY_LEN);
	assert_memory_not_equal(f->keys.size, f->keys.header, CK_KEY_LEN);
	assert_int_equal(ck_gcm_new(&wrong, f->keys.content), 0);
	assert_int_equal(ck_file_size_open(wrong, &f->ref, box, &got), -EBADMSG);
	ck_gcm_free(wrong);
	assert_int_equal(ck_gcm_new(&wrong, f->keys.header), 0);
	assert_int_equal(ck_file_size_open(wrong, &f->ref, box, &got), -EBADMSG);
	ck_gcm_free(wrong);

	assert_int_equal(ck_file_size_open(g, &f->ref, box, &got), 0);
	assert_true(got == 5000);
	ck_gcm_free(g);
}

/* The box of another file (its own key and file ID) does not open as
 * this file's, even when copied into this file's header. */
static void size_box_of_another_file_is_rejected(void **state)
{
	struct fixture *f = *state;
	uint8_t other_id[CK_ID_LEN], box[CK_SIZE_BOX_LEN];
	struct ck_file_keys ok;
	struct ck_file_ref oref = f->ref;
	struct ck_gcm *og;
	int r;

	memcpy(other_id, FILE_ID, CK_ID_LEN);
	other_id[5] ^= 0x33;
	oref.file_id = other_id;
	assert_int_equal(ck_file_keys_derive(&f->tree, other_id, &ok), 0);
	assert_memory_not_equal(ok.size, f->keys.size, CK_KEY_LEN);
	assert_int_equal(ck_gcm_new(&og, ok.size), 0);
	assert_int_equal(ck_file_size_seal(og, &oref, 42, box), 0);
	(void)open_size_box(f, &f->ref, box, &r);
	assert_int_equal(r, -EBADMSG);
	ck_gcm_free(og);
	ck_file_keys_release(&ok);
}

/* A box that authenticates but holds a size beyond 2^62 - 1 (more than
 * off_t and the block arithmetic hold) is corrupt. */
static void size_box_open_rejects_impossible_sizes(void **state)
{
	struct fixture *f = *state;
	static const uint64_t sizes[] = {
		(uint64_t)INT64_MAX / 2 + 1, (uint64_t)INT64_MAX, 1ull << 63, UINT64_MAX,
	};
	uint8_t box[CK_SIZE_BOX_LEN];
	struct ck_gcm *g;
	uint64_t got;

	assert_int_equal(ck_gcm_new(&g, f->keys.size), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(ck_file_size_seal(g, &f->ref, sizes[i], box), 0);
		assert_int_equal(ck_file_size_open(g, &f->ref, box, &got), -EBADMSG);
	}
	ck_gcm_free(g);
}

/* ---------------- content blocks ---------------- */

static void block_seal_open_round_trips_boundary_sizes(void **state)
{
	struct fixture *f = *state;
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 4095, 4096 };
	static uint8_t pt[CK_BLOCK_SIZE], ct[CK_CBLOCK_SIZE], back[CK_BLOCK_SIZE];
	struct ck_gcm *g;

	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	ck_test_fill(pt, sizeof(pt), 41);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		for (int last = 0; last <= 1; last++) {
			assert_int_equal(ck_block_seal(g, &f->ref, 7, last, pt, n, ct), 0);
			memset(back, 0, sizeof(back));
			assert_int_equal(ck_block_open(g, &f->ref, 7, last, ct,
			                               n + CK_BLOCK_OVERHEAD, back), (int)n);
			if (n)
				assert_memory_equal(back, pt, n);
			/* The ciphertext is not the plaintext. */
			if (n >= 16)
				assert_memory_not_equal(ct + CK_GCM_NONCE_LEN, pt, 16);
		}
	}
	ck_gcm_free(g);
}

static void block_seal_rejects_more_than_block_size(void **state)
{
	struct fixture *f = *state;
	static uint8_t pt[CK_BLOCK_SIZE + 1], ct[CK_CBLOCK_SIZE + 1];
	struct ck_gcm *g;

	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	assert_int_equal(ck_block_seal(g, &f->ref, 0, 1, pt, CK_BLOCK_SIZE + 1, ct), -EINVAL);
	ck_gcm_free(g);
}

static void block_seal_uses_fresh_nonce_each_time(void **state)
{
	struct fixture *f = *state;
	uint8_t pt[64] = { 0 }, a[64 + CK_BLOCK_OVERHEAD], b[64 + CK_BLOCK_OVERHEAD];
	struct ck_gcm *g;

	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	assert_int_equal(ck_block_seal(g, &f->ref, 0, 1, pt, sizeof(pt), a), 0);
	assert_int_equal(ck_block_seal(g, &f->ref, 0, 1, pt, sizeof(pt), b), 0);
	assert_memory_not_equal(a, b, CK_GCM_NONCE_LEN);
	assert_memory_not_equal(a + CK_GCM_NONCE_LEN, b + CK_GCM_NONCE_LEN, sizeof(pt));
	ck_gcm_free(g);
}

static void block_open_rejects_wrong_block_number_or_last_flag(void **state)
{
	struct fixture *f = *state;
	uint8_t pt[100], ct[100 + CK_BLOCK_OVERHEAD], back[100];
	struct ck_gcm *g;

	ck_test_fill(pt, sizeof(pt), 3);
	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	assert_int_equal(ck_block_seal(g, &f->ref, 5, 1, pt, sizeof(pt), ct), 0);
	assert_int_equal(ck_block_open(g, &f->ref, 5, 1, ct, sizeof(ct), back), (int)sizeof(pt));
	assert_int_equal(ck_block_open(g, &f->ref, 4, 1, ct, sizeof(ct), back), -EBADMSG);
	assert_int_equal(ck_block_open(g, &f->ref, 6, 1, ct, sizeof(ct), back), -EBADMSG);
	assert_int_equal(ck_block_open(g, &f->ref, 5 + (1ull << 32), 1, ct, sizeof(ct), back),
	                 -EBADMSG);
	assert_int_equal(ck_block_open(g, &f->ref, 5, 0, ct, sizeof(ct), back), -EBADMSG);
	/* Any non-zero "last" means last. */
	assert_int_equal(ck_block_open(g, &f->ref, 5, 2, ct, sizeof(ct), back), (int)sizeof(pt));
	ck_gcm_free(g);
}

static void block_open_rejects_wrong_file_tree_or_volume_id(void **state)
{
	struct fixture *f = *state;
	uint8_t pt[100], ct[100 + CK_BLOCK_OVERHEAD], back[100], id[CK_ID_LEN];
	struct ck_file_ref r;
	struct ck_gcm *g;

	ck_test_fill(pt, sizeof(pt), 3);
	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	assert_int_equal(ck_block_seal(g, &f->ref, 0, 1, pt, sizeof(pt), ct), 0);

	memcpy(id, FILE_ID, CK_ID_LEN); id[9] ^= 1;
	r = f->ref; r.file_id = id;
	assert_int_equal(ck_block_open(g, &r, 0, 1, ct, sizeof(ct), back), -EBADMSG);
	memcpy(id, TREE_ID, CK_ID_LEN); id[9] ^= 1;
	r = f->ref; r.tree_id = id;
	assert_int_equal(ck_block_open(g, &r, 0, 1, ct, sizeof(ct), back), -EBADMSG);
	memcpy(id, VOL_ID, CK_ID_LEN); id[9] ^= 1;
	r = f->ref; r.volume_id = id;
	assert_int_equal(ck_block_open(g, &r, 0, 1, ct, sizeof(ct), back), -EBADMSG);
	ck_gcm_free(g);
}

static void block_open_rejects_blocks_swapped_within_a_file(void **state)
{
	struct fixture *f = *state;
	static uint8_t pt[CK_BLOCK_SIZE], b0[CK_CBLOCK_SIZE], b1[CK_CBLOCK_SIZE], back[CK_BLOCK_SIZE];
	struct ck_gcm *g;

	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	ck_test_fill(pt, sizeof(pt), 1);
	assert_int_equal(ck_block_seal(g, &f->ref, 0, 0, pt, CK_BLOCK_SIZE, b0), 0);
	ck_test_fill(pt, sizeof(pt), 2);
	assert_int_equal(ck_block_seal(g, &f->ref, 1, 1, pt, CK_BLOCK_SIZE, b1), 0);
	assert_int_equal(ck_block_open(g, &f->ref, 0, 0, b0, CK_CBLOCK_SIZE, back), CK_BLOCK_SIZE);
	assert_int_equal(ck_block_open(g, &f->ref, 1, 1, b1, CK_CBLOCK_SIZE, back), CK_BLOCK_SIZE);
	/* swapped */
	assert_int_equal(ck_block_open(g, &f->ref, 0, 0, b1, CK_CBLOCK_SIZE, back), -EBADMSG);
	assert_int_equal(ck_block_open(g, &f->ref, 1, 1, b0, CK_CBLOCK_SIZE, back), -EBADMSG);
	/* block 0 duplicated at 1 (with either flag) */
	assert_int_equal(ck_block_open(g, &f->ref, 1, 0, b0, CK_CBLOCK_SIZE, back), -EBADMSG);
	/* truncated after block 0: block 0 is not a final block */
	assert_int_equal(ck_block_open(g, &f->ref, 0, 1, b0, CK_CBLOCK_SIZE, back), -EBADMSG);
	ck_gcm_free(g);
}

static void block_open_rejects_block_of_another_file(void **state)
{
	struct fixture *f = *state;
	uint8_t other_id[CK_ID_LEN], pt[64], ct[64 + CK_BLOCK_OVERHEAD], back[64];
	struct ck_file_keys ok;
	struct ck_file_ref oref = f->ref;
	struct ck_gcm *g, *og;

	memcpy(other_id, FILE_ID, CK_ID_LEN);
	other_id[0] ^= 0xff;
	oref.file_id = other_id;
	assert_int_equal(ck_file_keys_derive(&f->tree, other_id, &ok), 0);
	assert_memory_not_equal(ok.content, f->keys.content, CK_KEY_LEN);
	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	assert_int_equal(ck_gcm_new(&og, ok.content), 0);
	ck_test_fill(pt, sizeof(pt), 8);
	assert_int_equal(ck_block_seal(og, &oref, 0, 1, pt, sizeof(pt), ct), 0);
	assert_int_equal(ck_block_open(og, &oref, 0, 1, ct, sizeof(ct), back), (int)sizeof(pt));
	assert_int_equal(ck_block_open(g, &f->ref, 0, 1, ct, sizeof(ct), back), -EBADMSG);
	ck_gcm_free(g);
	ck_gcm_free(og);
	ck_file_keys_release(&ok);
}

static void block_open_rejects_tampered_or_truncated_input(void **state)
{
	struct fixture *f = *state;
	uint8_t pt[40], ct[40 + CK_BLOCK_OVERHEAD + 1], back[CK_BLOCK_SIZE];
	static uint8_t big[CK_CBLOCK_SIZE + 1];
	struct ck_gcm *g;

	ck_test_fill(pt, sizeof(pt), 5);
	assert_int_equal(ck_gcm_new(&g, f->keys.content), 0);
	assert_int_equal(ck_block_seal(g, &f->ref, 2, 1, pt, sizeof(pt), ct), 0);
	for (size_t i = 0; i < sizeof(pt) + CK_BLOCK_OVERHEAD; i++) {
		ct[i] ^= 0x02;
		assert_int_equal(ck_block_open(g, &f->ref, 2, 1, ct, sizeof(pt) + CK_BLOCK_OVERHEAD,
		                               back), -EBADMSG);
		ct[i] ^= 0x02;
	}
	for (size_t n = 0; n < sizeof(pt) + CK_BLOCK_OVERHEAD; n++)
		assert_int_equal(ck_block_open(g, &f->ref, 2, 1, ct, n, back), -EBADMSG);
	ct[sizeof(ct) - 1] = 0;
	assert_int_equal(ck_block_open(g, &f->ref, 2, 1, ct, sizeof(ct), back), -EBADMSG);
	/* Longer than any block. */
	assert_int_equal(ck_block_open(g, &f->ref, 2, 1, big, sizeof(big), back), -EBADMSG);
	/* A hole (all zero) is not a valid sealed block. */
	assert_int_equal(ck_block_open(g, &f->ref, 2, 0, big, CK_CBLOCK_SIZE, back), -EBADMSG);
	ck_gcm_free(g);
}

static void block_is_hole_only_for_all_zero_bytes(void **state)
{
	static uint8_t b[CK_CBLOCK_SIZE];

	(void)state;
	memset(b, 0, sizeof(b));
	assert_int_equal(ck_block_is_hole(b, sizeof(b)), 1);
	assert_int_equal(ck_block_is_hole(b, 0), 1);
	assert_int_equal(ck_block_is_hole(b, 1), 1);
	for (size_t i = 0; i < sizeof(b); i += 97) {
		b[i] = 1;
		assert_int_equal(ck_block_is_hole(b, sizeof(b)), 0);
		b[i] = 0;
	}
	b[sizeof(b) - 1] = 0x80;
	assert_int_equal(ck_block_is_hole(b, sizeof(b)), 0);
	assert_int_equal(ck_block_is_hole(b, sizeof(b) - 1), 1);
}

/* ---------------- backing sizes ---------------- */

/* docs/FORMAT.md, "Backing size": header 512, then final_block(S) + 1 full
 * blocks of 4124 bytes (12 nonce + 4096 + 16 tag). */
static void backing_size_matches_format_doc(void **state)
{
	(void)state;
	assert_int_equal(CK_BLOCK_SIZE, 4096);
	assert_int_equal(CK_BLOCK_OVERHEAD, 28);
	assert_int_equal(CK_CBLOCK_SIZE, 4124);
	/* an empty file: the header and one full block (of zeros, marked last) */
	assert_int_equal(ck_backing_size(0), 512 + 4124);
	assert_int_equal(ck_backing_size(1), 512 + 4124);
	assert_int_equal(ck_backing_size(100), 512 + 4124);
	assert_int_equal(ck_backing_size(4095), 512 + 4124);
	assert_int_equal(ck_backing_size(4096), 512 + 4124);
	assert_int_equal(ck_backing_size(4097), 512 + 2 * 4124);
	assert_int_equal(ck_backing_size(8192), 512 + 2 * 4124);
	assert_int_equal(ck_backing_size(8193), 512 + 3 * 4124);
	/* 5e9 = 1220703 full blocks + 512 bytes: 1220704 blocks */
	assert_true(ck_backing_size(5000000000ull) == 512ull + 1220704ull * 4124);
	assert_int_equal(ck_final_block(0), 0);
	assert_int_equal(ck_final_block(1), 0);
	assert_int_equal(ck_final_block(4096), 0);
	assert_int_equal(ck_final_block(4097), 1);
	assert_int_equal(ck_final_block(8192), 1);
	assert_int_equal(ck_final_block(8193), 2);
	assert_int_equal(ck_block_offset(0), 512);
	assert_int_equal(ck_block_offset(1), 512 + 4124);
	assert_int_equal(ck_block_offset(3), 512 + 3 * 4124);
	assert_true(ck_backing_size(5000000000ull) == ck_block_offset(1220704));
}

/* The backing size shows the size only rounded to blocks: every size in
 * 1..4096 gives the same backing size (and 0 too), every size in
 * 4097..8192 the next, and so on. */
static void backing_size_is_rounded_to_whole_blocks(void **state)
{
	(void)state;
	for (uint64_t s = 0; s <= CK_BLOCK_SIZE; s++)
		assert_true(ck_backing_size(s) == 512 + 4124);
	for (uint64_t s = CK_BLOCK_SIZE + 1; s <= 2 * CK_BLOCK_SIZE; s++)
		assert_true(ck_backing_size(s) == 512 + 2 * 4124);
	for (uint64_t s = 2 * CK_BLOCK_SIZE + 1; s <= 3 * CK_BLOCK_SIZE; s++)
		assert_true(ck_backing_size(s) == 512 + 3 * 4124);
	for (uint64_t s = 0; s <= 8 * CK_BLOCK_SIZE + 3; s++) {
		uint64_t b = ck_backing_size(s);
		/* header plus whole blocks, never a partial block */
		assert_true(b >= 512 + 4124);
		assert_true((b - 512) % 4124 == 0);
		/* the number of blocks is final_block + 1 */
		assert_true((b - 512) / 4124 == ck_final_block(s) + 1);
		/* never decreasing; steps of exactly one block at boundaries */
		if (s > 0) {
			uint64_t prev = ck_backing_size(s - 1);
			if (s > 1 && (s - 1) % CK_BLOCK_SIZE == 0)
				assert_true(b == prev + 4124);
			else
				assert_true(b == prev);
		}
	}
}

static void backing_size_of_the_largest_sizes_does_not_overflow(void **state)
{
	static const uint64_t big[] = {
		(1ull << 40) + 12345, (1ull << 52), (uint64_t)INT64_MAX / 2,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		uint64_t s = big[i], b = ck_backing_size(s);
		uint64_t blocks = (s - 1) / CK_BLOCK_SIZE + 1;
		assert_true(b == 512 + blocks * 4124);
		/* fits an off_t */
		assert_true(b <= (uint64_t)INT64_MAX);
		assert_true(b > s);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(volume_hdr_encode_decode_round_trips),
		cmocka_unit_test(volume_hdr_verify_accepts_right_mac_key_only),
		cmocka_unit_test(volume_hdr_encoded_without_mac_key_fails_verify),
		cmocka_unit_test(volume_hdr_verify_rejects_edited_field_with_fixed_checksum),
		cmocka_unit_test(volume_hdr_decode_rejects_flipped_byte_anywhere),
		cmocka_unit_test(volume_hdr_decode_rejects_unknown_version_with_valid_checksum),
		cmocka_unit_test(volume_hdr_decode_rejects_short_and_long_buffers),
		cmocka_unit_test(volume_hdr_decode_rejects_nonzero_flags_block_size_and_reserved),
		cmocka_unit_test(volume_hdr_decode_rejects_every_evil_file),
		cmocka_unit_test(dirid_encode_decode_round_trips),
		cmocka_unit_test(dirid_decode_rejects_flipped_byte_anywhere),
		cmocka_unit_test(dirid_decode_rejects_every_evil_file),
		cmocka_unit_test(file_hdr_layout_constants_match_format_doc),
		cmocka_unit_test_setup_teardown(file_hdr_encode_parse_verify_round_trips,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_verify_rejects_wrong_volume_tree_or_key,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_verify_rejects_header_of_another_file,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_verify_rejects_flipped_byte_anywhere,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_encode_rejects_too_many_bindings_and_unknown_flags,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_parse_rejects_bad_fields,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_verify_rejects_nonzero_reserved_bytes,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(file_hdr_verify_rejects_swapped_size_box,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test(file_hdr_parse_rejects_every_evil_file),
		cmocka_unit_test(evil_bases_are_accepted),
		cmocka_unit_test_setup_teardown(binding_depends_on_key_directory_and_name,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(bindings_add_has_del_and_twenty_first_is_emlink,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(size_box_seal_open_round_trips,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(size_box_is_the_documented_gcm_box,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(size_box_open_rejects_flipped_byte_anywhere,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(size_box_open_rejects_wrong_ref_or_key,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(size_box_of_another_file_is_rejected,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(size_box_open_rejects_impossible_sizes,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_seal_open_round_trips_boundary_sizes,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_seal_rejects_more_than_block_size,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_seal_uses_fresh_nonce_each_time,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_open_rejects_wrong_block_number_or_last_flag,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_open_rejects_wrong_file_tree_or_volume_id,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_open_rejects_blocks_swapped_within_a_file,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_open_rejects_block_of_another_file,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(block_open_rejects_tampered_or_truncated_input,
		                                fixture_setup, fixture_teardown),
		cmocka_unit_test(block_is_hole_only_for_all_zero_bytes),
		cmocka_unit_test(backing_size_matches_format_doc),
		cmocka_unit_test(backing_size_is_rounded_to_whole_blocks),
		cmocka_unit_test(backing_size_of_the_largest_sizes_does_not_overflow),
	};

	ck_test_set_evil_dir(argc, argv);
	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("format", tests, NULL, NULL);
}
