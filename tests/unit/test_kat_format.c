/* Our own fixed vectors for format version 1, so that a change of the
 * on-disk format (a layout, a KDF label, an AAD, an encoding) cannot go
 * unnoticed: with fixed keys and IDs, every deterministic structure must
 * come out byte for byte as recorded in tests/vectors/format_v1.h, and
 * every recorded randomized ciphertext (content blocks, sealed sizes,
 * symlink targets, xattr values, a DEP record: their nonces are random)
 * must still open to the fixed plaintext. The file header's size box is
 * randomized too: the tests take it from the recorded header and compare
 * every other byte. The recorded audit log (written once by libck, with
 * its time, host and pid) must still verify and be continued.
 *
 * The same file, compiled with -DCK_GENERATE_VECTORS, is the generator
 * (meson target gen_format_v1). Regenerate ONLY for a deliberate format
 * change, together with a format version bump in docs/FORMAT.md:
 *   ninja -C BUILD tests/unit/gen_format_v1 &&
 *   BUILD/tests/unit/gen_format_v1 > tests/vectors/format_v1.h
 * A regenerated file differs in the randomized ciphertexts even without a
 * format change; that is expected. */
#include "ck_test.h"
#include "keys/audit.h"
#include "keys/crypto.h"
#include "keys/dep.h"
#include "keys/format.h"
#include "keys/kdf_labels.h"
#include "keys/keyfile.h"
#include "keys/names.h"
#include "keys/secmem.h"
#include "keys/tree.h"
#include "keys/util.h"
#include "keys/volume.h"
#ifndef CK_GENERATE_VECTORS
#include "tests/vectors/format_v1.h"
#endif

/* ---- fixed inputs (part of the vectors: never change them) ---- */
#define IN_KEK        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define IN_SERVICE    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define IN_VOLUME_ID  "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
#define IN_TREE_ID    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
#define IN_KEK_ID     "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
#define IN_FILE_ID    "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
#define IN_DIR_ID     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define IN_CREATED    1764000000ull
#define IN_SYMLINK    "../../shared/Maildir/.Archive"
#define IN_XATTR_NAME "user.mime_type"
#define IN_XATTR_VAL  "message/rfc822; charset=utf-8"
#define IN_LAST_LEN   100   /* plaintext bytes in block 1, the final block */
/* the recorded file: block 0 full, block 1 final with IN_LAST_LEN bytes */
#define IN_FILE_SIZE  (CK_BLOCK_SIZE + IN_LAST_LEN)
/* a DEP record (docs/FORMAT.md, "Key records") */
#define IN_DEP_ID     "909192939495969798999a9b9c9d9e9f"
#define IN_DEP_NAME   "acme-mail"
#define IN_DEP_STATE  CK_DEP_REVOKED
#define IN_DEP_CREATED 1764000000ull
#define IN_DEP_CHANGED 1764003600ull
#define IN_DEP_PURGE_AFTER 1766592000ull
#define IN_DEP_GENERATION 7ull
#define IN_WRAP0_URI  "exec:/usr/libexec/ckfs/kms-helper?key=acme"
#define IN_WRAP0_TIME 1764003599ull
#define IN_WRAP0_BLOB "4b4d532d777261707065642d6b65792d30303031" /* provider's own form */
#define IN_WRAP1_URI  "file:availability"
/* wrap 1 holds IN_DEP_KEY wrapped (RFC 5649) under IN_AVAIL_KEK */
#define IN_DEP_KEY    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
#define IN_AVAIL_KEK  "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"

/* Plaintext names: literal, or `rep` repeated `n` times. */
static const struct { const char *lit; char rep; size_t n; } in_names[] = {
	{ "INBOX", 0, 0 },
	{ "a", 0, 0 },
	{ "cur", 0, 0 },
	{ ".hidden", 0, 0 },
	{ "1764000000.M1P2.host,S=1234:2,S", 0, 0 },
	{ "na\xc3\xafve r\xc3\xa9sum\xc3\xa9.txt", 0, 0 },
	{ NULL, 'x', 175 },     /* longest name stored directly */
	{ NULL, 'y', 176 },     /* shortest long name */
	{ NULL, 'z', 255 },
};
#define N_NAMES (sizeof(in_names) / sizeof(in_names[0]))

static size_t in_name(size_t i, char *out)
{
	if (in_names[i].lit) {
		strcpy(out, in_names[i].lit);
		return strlen(out);
	}
	memset(out, in_names[i].rep, in_names[i].n);
	out[in_names[i].n] = '\0';
	return in_names[i].n;
}

static void block_plain(uint64_t blockno, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3 + blockno * 101 + (i >> 8));
}

/* ---- everything derived from the inputs ---- */
struct kat {
	uint8_t kek[CK_KEY_LEN], service[CK_KEY_LEN];
	uint8_t volume_id[CK_ID_LEN], tree_id[CK_ID_LEN], kek_id[CK_ID_LEN];
	uint8_t file_id[CK_ID_LEN], dir_id[CK_ID_LEN];
	uint8_t volume_mac_key[CK_KEY_LEN], tree_key[CK_KEY_LEN];
	uint8_t record_key[CK_KEY_LEN], audit_key[CK_KEY_LEN], cert_key[CK_KEY_LEN];
	uint8_t wrapped[CK_WRAPPED_KEY_LEN];
	uint8_t volume_hdr[CK_VOLUME_HDR_LEN];
	uint8_t keyfile[CK_KEYFILE_LEN];
	uint8_t dirid[CK_DIRID_LEN];
	uint8_t bind_cur[CK_BINDING_LEN], bind_new[CK_BINDING_LEN];
	uint8_t size_box[CK_SIZE_BOX_LEN];  /* sealed IN_FILE_SIZE (random nonce) */
	uint8_t file_hdr[CK_FILE_HDR_LEN];
	struct ck_dep dep;
	struct ck_volume vol;               /* only record_key and audit_key set */
	struct ck_tree tree;
	struct ck_file_keys fk;
	struct ck_file_ref ref;
	char enc_names[N_NAMES][CK_ENC_NAME_MAX];
	char long_entry[N_NAMES][CK_LONG_NAME_LEN + 1];
	char xattr_name[CK_XATTR_NAME_MAX + 1];
};

static int derive_label(const uint8_t *key, const char *label, uint8_t *out, size_t n)
{
	return ck_hkdf_sha256(key, CK_KEY_LEN, NULL, 0, (const uint8_t *)label, strlen(label),
	                      out, n);
}

/* Fails the test (or the generator) on any error. */
static void kat_compute(struct kat *k)
{
	struct ck_volume_hdr vh;
	struct ck_file_hdr fh;
	size_t wl = 0;

	memset(k, 0, sizeof(*k));
	unhex(IN_KEK, k->kek, CK_KEY_LEN);
	unhex(IN_SERVICE, k->service, CK_KEY_LEN);
	unhex(IN_VOLUME_ID, k->volume_id, CK_ID_LEN);
	unhex(IN_TREE_ID, k->tree_id, CK_ID_LEN);
	unhex(IN_KEK_ID, k->kek_id, CK_ID_LEN);
	unhex(IN_FILE_ID, k->file_id, CK_ID_LEN);
	unhex(IN_DIR_ID, k->dir_id, CK_ID_LEN);

	/* volume: service key wrapped under the KEK, MAC and tree keys from
	 * the service key (docs/FORMAT.md, "Key hierarchy") */
	assert_int_equal(ck_key_wrap(k->kek, k->service, CK_KEY_LEN, k->wrapped, &wl), 0);
	assert_int_equal(wl, CK_WRAPPED_KEY_LEN);
	assert_int_equal(derive_label(k->service, CK_LABEL_VOLUME_MAC, k->volume_mac_key,
	                              CK_KEY_LEN), 0);
	assert_int_equal(derive_label(k->service, CK_LABEL_SERVICE_TREE, k->tree_key,
	                              CK_KEY_LEN), 0);
	assert_int_equal(derive_label(k->service, CK_LABEL_RECORDS, k->record_key, CK_KEY_LEN), 0);
	assert_int_equal(derive_label(k->service, CK_LABEL_AUDIT, k->audit_key, CK_KEY_LEN), 0);
	assert_int_equal(derive_label(k->service, CK_LABEL_CERT, k->cert_key, CK_KEY_LEN), 0);
	memset(&vh, 0, sizeof(vh));
	vh.version = CK_FORMAT_VERSION;
	vh.block_size = CK_BLOCK_SIZE;
	vh.created = IN_CREATED;
	memcpy(vh.volume_id, k->volume_id, CK_ID_LEN);
	memcpy(vh.service_tree_id, k->tree_id, CK_ID_LEN);
	memcpy(vh.kek_id, k->kek_id, CK_ID_LEN);
	memcpy(vh.wrapped_service_key, k->wrapped, CK_WRAPPED_KEY_LEN);
	assert_int_equal(ck_volume_hdr_encode(&vh, k->volume_mac_key, k->volume_hdr), 0);
	assert_int_equal(ck_keyfile_encode(k->kek_id, k->kek, k->keyfile), 0);
	assert_int_equal(ck_dirid_encode(k->dir_id, k->dirid), 0);

	/* the service tree and one file in it */
	assert_int_equal(ck_tree_init(&k->tree, k->volume_id, k->tree_id, k->tree_key), 0);
	assert_int_equal(ck_file_keys_derive(&k->tree, k->file_id, &k->fk), 0);
	k->ref.volume_id = k->volume_id;
	k->ref.tree_id = k->tree_id;
	k->ref.file_id = k->file_id;
	assert_int_equal(ck_binding(k->fk.header, k->dir_id, "cur", 3, k->bind_cur), 0);
	assert_int_equal(ck_binding(k->fk.header, k->dir_id, "new", 3, k->bind_new), 0);
	memset(&fh, 0, sizeof(fh));
	fh.version = CK_FORMAT_VERSION;
	fh.kind = 1;
	fh.flags = CK_FILE_SPARSE;
	memcpy(fh.file_id, k->file_id, CK_ID_LEN);
	assert_int_equal(ck_file_hdr_add_binding(&fh, k->bind_cur), 0);
	assert_int_equal(ck_file_hdr_add_binding(&fh, k->bind_new), 0);
	/* The size box has a random nonce: the generator seals a fresh one,
	 * the tests take the recorded one (bytes 352..387 of KAT_FILE_HDR) so
	 * that every other byte of the header is compared exactly. */
#ifdef CK_GENERATE_VECTORS
	{
		struct ck_gcm *g;
		assert_int_equal(ck_gcm_new(&g, k->fk.size), 0);
		assert_int_equal(ck_file_size_seal(g, &k->ref, IN_FILE_SIZE, k->size_box), 0);
		ck_gcm_free(g);
	}
#else
	{
		uint8_t rec[CK_FILE_HDR_LEN];
		assert_int_equal(unhex(KAT_FILE_HDR, rec, sizeof(rec)), CK_FILE_HDR_LEN);
		memcpy(k->size_box, rec + 352, CK_SIZE_BOX_LEN);
	}
#endif
	memcpy(fh.size_box, k->size_box, CK_SIZE_BOX_LEN);
	assert_int_equal(ck_file_hdr_encode(&fh, &k->ref, k->fk.header, k->file_hdr), 0);

	/* a DEP record's fields (the volume records use only these keys) */
	k->vol.fd = -1;
	k->vol.record_key = k->record_key;
	k->vol.audit_key = k->audit_key;
	k->vol.cert_key = k->cert_key;
	unhex(IN_DEP_ID, k->dep.id, CK_ID_LEN);
	strcpy(k->dep.name, IN_DEP_NAME);
	k->dep.state = IN_DEP_STATE;
	k->dep.created = IN_DEP_CREATED;
	k->dep.changed = IN_DEP_CHANGED;
	k->dep.purge_after = IN_DEP_PURGE_AFTER;
	k->dep.generation = IN_DEP_GENERATION;
	k->dep.n_wraps = 2;
	k->dep.wraps[0].role = CK_ROLE_CUSTOMER;
	k->dep.wraps[0].last_result = CK_RES_DENIED;
	k->dep.wraps[0].last_time = IN_WRAP0_TIME;
	strcpy(k->dep.wraps[0].uri, IN_WRAP0_URI);
	k->dep.wraps[0].len = (uint16_t)unhex(IN_WRAP0_BLOB, k->dep.wraps[0].wrapped, CK_WRAP_MAX);
	k->dep.wraps[1].role = CK_ROLE_AVAILABILITY;
	k->dep.wraps[1].last_result = CK_RES_NONE;
	k->dep.wraps[1].last_time = 0;
	strcpy(k->dep.wraps[1].uri, IN_WRAP1_URI);
	{
		uint8_t dk[CK_KEY_LEN], kek[CK_KEY_LEN];
		size_t dwl = 0;
		unhex(IN_DEP_KEY, dk, CK_KEY_LEN);
		unhex(IN_AVAIL_KEK, kek, CK_KEY_LEN);
		assert_int_equal(ck_key_wrap(kek, dk, CK_KEY_LEN, k->dep.wraps[1].wrapped, &dwl), 0);
		k->dep.wraps[1].len = (uint16_t)dwl;
		ck_wipe(dk, sizeof(dk));
		ck_wipe(kek, sizeof(kek));
	}

	/* names */
	for (size_t i = 0; i < N_NAMES; i++) {
		char name[CK_NAME_MAX + 1], side[CK_LONG_NAME_LEN + 1];
		size_t n = in_name(i, name);

		assert_int_equal(ck_name_encrypt(&k->tree, k->dir_id, name, n, k->enc_names[i]), 0);
		if (ck_name_is_long(strlen(k->enc_names[i])))
			assert_int_equal(ck_long_names(k->enc_names[i], strlen(k->enc_names[i]),
			                               k->long_entry[i], side), 0);
	}
	assert_int_equal(ck_xattr_name_encrypt(&k->tree, IN_XATTR_NAME, k->xattr_name,
	                                       sizeof(k->xattr_name)), 0);
}

static void kat_release(struct kat *k)
{
	ck_file_keys_release(&k->fk);
	ck_tree_release(&k->tree);
	ck_wipe(k, sizeof(*k));
}

#ifdef CK_GENERATE_VECTORS
/* ======================= generator ======================= */

/* The vectors go to the original stdout; cmocka's own output is sent to
 * stderr so that it cannot end up in the header. */
static FILE *gen_out;

static void put_hex(const char *name, const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	fprintf(gen_out, "#define %s \\\n", name);
	for (size_t i = 0; i < n; i += 32) {
		fprintf(gen_out, "\t\"");
		for (size_t j = i; j < n && j < i + 32; j++)
			fprintf(gen_out, "%c%c", hx[p[j] >> 4], hx[p[j] & 15]);
		fprintf(gen_out, "\"%s\n", i + 32 < n ? " \\" : "");
	}
	if (n == 0)
		fprintf(gen_out, "\t\"\"\n");
}

static void put_str(const char *name, const char *s)
{
	size_t n = strlen(s);

	fprintf(gen_out, "#define %s \\\n", name);
	for (size_t i = 0; i < n; i += 64)
		fprintf(gen_out, "\t\"%.64s\"%s\n", s + i, i + 64 < n ? " \\" : "");
}

/* Two audit records appended by libck to an empty log in a scratch
 * volume; the log and head files are recorded as they are. */
static void gen_audit(struct kat *k)
{
	char *dir = ck_test_tmpdir("kat-audit"), *meta = ck_test_path(dir, ".ckfs"), *p;
	const struct ck_audit_event e1 = {
		.event = "dep-created", .dep = IN_DEP_NAME, .result = "ok", .actor = "operator",
	};
	const struct ck_audit_event e2 = {
		.event = "revoked", .dep = IN_DEP_NAME, .tree = "mail/zo\xc3\xab 100%=all",
		.uri = IN_WRAP0_URI, .result = "denied", .actor = "probe",
	};
	uint8_t buf[8192];
	size_t n;

	assert_int_equal(mkdir(meta, 0700), 0);
	k->vol.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(k->vol.fd >= 0);
	k->vol.path = dir;
	assert_int_equal(ck_audit_append(&k->vol, &e1), 0);
	assert_int_equal(ck_audit_append(&k->vol, &e2), 0);
	close(k->vol.fd);
	k->vol.fd = -1;
	k->vol.path = NULL;
	p = ck_test_path(meta, "audit.log");
	n = ck_test_read_file(p, buf, sizeof(buf));
	free(p);
	put_hex("KAT_AUDIT_LOG", buf, n);
	p = ck_test_path(meta, "audit.head");
	n = ck_test_read_file(p, buf, sizeof(buf));
	free(p);
	put_hex("KAT_AUDIT_HEAD", buf, n);
	ck_test_rm_rf(dir);
	free(meta);
	free(dir);
}

static int generate(void)
{
	struct kat k;
	struct ck_gcm *g;
	static uint8_t pt[CK_BLOCK_SIZE], ct[CK_CBLOCK_SIZE];
	char sym[256];
	uint8_t xv[sizeof(IN_XATTR_VAL) - 1 + CK_BLOCK_OVERHEAD];

	kat_compute(&k);
	fprintf(gen_out, "/* Fixed vectors for ckfs on-disk format version 1.\n"
	       " * GENERATED by tests/unit/test_kat_format.c (gen_format_v1); do not edit.\n"
	       " * Inputs are the IN_* constants in that file. Deterministic values must\n"
	       " * be reproduced exactly; KAT_BLOCK*, the size boxes (in KAT_FILE_HDR and\n"
	       " * KAT_SIZE_BOX_*), KAT_SYMLINK_ENC, KAT_XATTR_VALUE and KAT_DEP_RECORD\n"
	       " * were sealed once with random nonces and must still open; KAT_AUDIT_*\n"
	       " * were written once by libck (time, host, pid) and must still verify. */\n"
	       "#ifndef CK_TEST_FORMAT_V1_H\n#define CK_TEST_FORMAT_V1_H\n\n");
	fprintf(gen_out, "/* key hierarchy */\n");
	put_hex("KAT_WRAPPED_SERVICE_KEY", k.wrapped, sizeof(k.wrapped));
	put_hex("KAT_VOLUME_MAC_KEY", k.volume_mac_key, CK_KEY_LEN);
	put_hex("KAT_SERVICE_TREE_KEY", k.tree_key, CK_KEY_LEN);
	put_hex("KAT_RECORD_KEY", k.record_key, CK_KEY_LEN);
	put_hex("KAT_AUDIT_KEY", k.audit_key, CK_KEY_LEN);
	put_hex("KAT_CERT_KEY", k.cert_key, CK_KEY_LEN);
	put_hex("KAT_NAME_KEY", k.tree.name_key, CK_SIV_KEY_LEN);
	put_hex("KAT_XNAME_KEY", k.tree.xname_key, CK_SIV_KEY_LEN);
	put_hex("KAT_SYMLINK_KEY", k.tree.symlink_key, CK_KEY_LEN);
	put_hex("KAT_XVALUE_KEY", k.tree.xvalue_key, CK_KEY_LEN);
	put_hex("KAT_FILE_CONTENT_KEY", k.fk.content, CK_KEY_LEN);
	put_hex("KAT_FILE_HEADER_KEY", k.fk.header, CK_KEY_LEN);
	put_hex("KAT_FILE_SIZE_KEY", k.fk.size, CK_KEY_LEN);
	fprintf(gen_out, "\n/* records (KAT_FILE_HDR holds a size box with a random nonce at\n"
	        " * bytes 352..387, sealing IN_FILE_SIZE; every other byte is exact) */\n");
	put_hex("KAT_VOLUME_HDR", k.volume_hdr, sizeof(k.volume_hdr));
	put_hex("KAT_KEYFILE", k.keyfile, sizeof(k.keyfile));
	put_hex("KAT_DIRID", k.dirid, sizeof(k.dirid));
	put_hex("KAT_BINDING_CUR", k.bind_cur, sizeof(k.bind_cur));
	put_hex("KAT_BINDING_NEW", k.bind_new, sizeof(k.bind_new));
	put_hex("KAT_FILE_HDR", k.file_hdr, sizeof(k.file_hdr));

	fprintf(gen_out, "\n/* encrypted names, in the order of in_names[] */\n");
	fprintf(gen_out, "static const char *const kat_enc_names[] = {\n");
	for (size_t i = 0; i < N_NAMES; i++) {
		size_t n = strlen(k.enc_names[i]);
		for (size_t j = 0; j < n; j += 64)
			fprintf(gen_out, "\t\"%.64s\"%s\n", k.enc_names[i] + j, j + 64 < n ? "" : ",");
	}
	fprintf(gen_out, "};\n/* \".L\" backing entries of the long ones (\"\" = stored directly) */\n");
	fprintf(gen_out, "static const char *const kat_long_entries[] = {\n");
	for (size_t i = 0; i < N_NAMES; i++)
		fprintf(gen_out, "\t\"%s\",\n", k.long_entry[i]);
	fprintf(gen_out, "};\n");
	put_str("KAT_XATTR_NAME_ENC", k.xattr_name);

	fprintf(gen_out, "\n/* randomized: must open to the fixed plaintext. Every block on\n"
	        " * disk is full; the final one is zero-padded inside the encryption. */\n");
	assert_int_equal(ck_gcm_new(&g, k.fk.content), 0);
	block_plain(0, pt, CK_BLOCK_SIZE);
	assert_int_equal(ck_block_seal(g, &k.ref, 0, 0, pt, CK_BLOCK_SIZE, ct), 0);
	put_hex("KAT_BLOCK0", ct, CK_CBLOCK_SIZE);
	memset(pt, 0, sizeof(pt));
	block_plain(1, pt, IN_LAST_LEN);
	assert_int_equal(ck_block_seal(g, &k.ref, 1, 1, pt, CK_BLOCK_SIZE, ct), 0);
	put_hex("KAT_BLOCK1_FINAL", ct, CK_CBLOCK_SIZE);
	memset(pt, 0, sizeof(pt));
	assert_int_equal(ck_block_seal(g, &k.ref, 0, 1, pt, CK_BLOCK_SIZE, ct), 0);
	put_hex("KAT_BLOCK_EMPTY_FILE", ct, CK_CBLOCK_SIZE);
	ck_gcm_free(g);
	{
		struct ck_gcm *sg;
		uint8_t box[CK_SIZE_BOX_LEN];
		assert_int_equal(ck_gcm_new(&sg, k.fk.size), 0);
		assert_int_equal(ck_file_size_seal(sg, &k.ref, 0, box), 0);
		ck_gcm_free(sg);
		put_hex("KAT_SIZE_BOX_EMPTY_FILE", box, sizeof(box));
	}
	assert_int_equal(ck_symlink_encrypt(&k.tree, IN_SYMLINK, strlen(IN_SYMLINK), sym,
	                                    sizeof(sym)), 0);
	put_str("KAT_SYMLINK_ENC", sym);
	assert_int_equal(ck_xattr_value_encrypt(&k.tree, k.xattr_name,
	                                        (const uint8_t *)IN_XATTR_VAL,
	                                        strlen(IN_XATTR_VAL), xv), 0);
	put_hex("KAT_XATTR_VALUE", xv, sizeof(xv));
	{
		uint8_t *rec;
		size_t rn;
		assert_int_equal(ck_dep_encode(&k.vol, &k.dep, &rec, &rn), 0);
		put_hex("KAT_DEP_RECORD", rec, rn);
		free(rec);
	}
	gen_audit(&k);
	fprintf(gen_out, "\n#endif\n");
	kat_release(&k);
	return 0;
}

static void generate_test(void **state)
{
	(void)state;
	generate();
}

int main(void)
{
	/* run inside cmocka so that the assert_* in kat_compute work */
	const struct CMUnitTest t[] = { cmocka_unit_test(generate_test) };

	int fd = dup(STDOUT_FILENO), r;

	if (fd < 0 || !(gen_out = fdopen(fd, "w")) || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		perror("gen_format_v1");
		return 1;
	}
	if (ck_test_secmem_init() < 0)
		return 1;
	r = cmocka_run_group_tests(t, NULL, NULL);
	if (fclose(gen_out) != 0)
		r = 1;
	return r;
}

#else
/* ======================= tests ======================= */

static int setup(void **state)
{
	struct kat *k = malloc(sizeof(*k));

	if (!k)
		return -1;
	kat_compute(k);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	kat_release(*state);
	free(*state);
	return 0;
}

static void assert_hex_equal(const char *what, const uint8_t *got, size_t n, const char *want_hex)
{
	uint8_t *want;
	size_t wn;

	want = unhex_alloc(want_hex, &wn);
	if (wn != n || memcmp(got, want, n)) {
		char *h = malloc(2 * n + 1);
		assert_non_null(h);
		ck_hex(got, n, h);
		print_error("%s changed: the format is pinned by tests/vectors/format_v1.h\n"
		            "  got  %s\n  want %s\n", what, h, want_hex);
		free(h);
		free(want);
		fail();
	}
	free(want);
}

static void kat_key_hierarchy_is_unchanged(void **state)
{
	struct kat *k = *state;

	assert_hex_equal("wrapped service key", k->wrapped, CK_WRAPPED_KEY_LEN,
	                 KAT_WRAPPED_SERVICE_KEY);
	assert_hex_equal("volume MAC key", k->volume_mac_key, CK_KEY_LEN, KAT_VOLUME_MAC_KEY);
	assert_hex_equal("service tree key", k->tree_key, CK_KEY_LEN, KAT_SERVICE_TREE_KEY);
	assert_hex_equal("record key", k->record_key, CK_KEY_LEN, KAT_RECORD_KEY);
	assert_hex_equal("audit key", k->audit_key, CK_KEY_LEN, KAT_AUDIT_KEY);
	assert_hex_equal("purge certificate key", k->cert_key, CK_KEY_LEN, KAT_CERT_KEY);
	assert_hex_equal("names SIV key", k->tree.name_key, CK_SIV_KEY_LEN, KAT_NAME_KEY);
	assert_hex_equal("xattr names SIV key", k->tree.xname_key, CK_SIV_KEY_LEN, KAT_XNAME_KEY);
	assert_hex_equal("symlink key", k->tree.symlink_key, CK_KEY_LEN, KAT_SYMLINK_KEY);
	assert_hex_equal("xattr value key", k->tree.xvalue_key, CK_KEY_LEN, KAT_XVALUE_KEY);
	assert_hex_equal("file content key", k->fk.content, CK_KEY_LEN, KAT_FILE_CONTENT_KEY);
	assert_hex_equal("file header key", k->fk.header, CK_KEY_LEN, KAT_FILE_HEADER_KEY);
	assert_hex_equal("file size key", k->fk.size, CK_KEY_LEN, KAT_FILE_SIZE_KEY);
}

/* The pinned keys are the HKDF chains docs/FORMAT.md describes, recomputed
 * here with ck_hkdf_sha256 alone (so a failure above says which step). */
static void kat_keys_are_documented_hkdf_chains(void **state)
{
	struct kat *k = *state;
	uint8_t info[64], fk[CK_KEY_LEN], out[CK_SIV_KEY_LEN];
	size_t l = strlen(CK_LABEL_FILE_KEY);

	assert_int_equal(derive_label(k->tree_key, CK_LABEL_NAMES, out, CK_SIV_KEY_LEN), 0);
	assert_memory_equal(out, k->tree.name_key, CK_SIV_KEY_LEN);
	assert_int_equal(derive_label(k->tree_key, CK_LABEL_XATTR_NAME, out, CK_SIV_KEY_LEN), 0);
	assert_memory_equal(out, k->tree.xname_key, CK_SIV_KEY_LEN);
	assert_int_equal(derive_label(k->tree_key, CK_LABEL_SYMLINK, out, CK_KEY_LEN), 0);
	assert_memory_equal(out, k->tree.symlink_key, CK_KEY_LEN);
	assert_int_equal(derive_label(k->tree_key, CK_LABEL_XATTR_VALUE, out, CK_KEY_LEN), 0);
	assert_memory_equal(out, k->tree.xvalue_key, CK_KEY_LEN);
	/* file key: info = label || file ID */
	memcpy(info, CK_LABEL_FILE_KEY, l);
	memcpy(info + l, k->file_id, CK_ID_LEN);
	assert_int_equal(ck_hkdf_sha256(k->tree_key, CK_KEY_LEN, NULL, 0, info, l + CK_ID_LEN,
	                                fk, CK_KEY_LEN), 0);
	assert_int_equal(derive_label(fk, CK_LABEL_FILE_CONTENT, out, CK_KEY_LEN), 0);
	assert_memory_equal(out, k->fk.content, CK_KEY_LEN);
	assert_int_equal(derive_label(fk, CK_LABEL_FILE_HEADER, out, CK_KEY_LEN), 0);
	assert_memory_equal(out, k->fk.header, CK_KEY_LEN);
	assert_int_equal(derive_label(fk, CK_LABEL_FILE_SIZE, out, CK_KEY_LEN), 0);
	assert_memory_equal(out, k->fk.size, CK_KEY_LEN);
	/* the labels themselves are part of the format */
	assert_string_equal(CK_LABEL_SERVICE_TREE, "ckfs v1 service tree key");
	assert_string_equal(CK_LABEL_VOLUME_MAC, "ckfs v1 volume header mac");
	assert_string_equal(CK_LABEL_NAMES, "ckfs v1 names siv");
	assert_string_equal(CK_LABEL_FILE_KEY, "ckfs v1 file key");
	assert_string_equal(CK_LABEL_FILE_CONTENT, "ckfs v1 file content");
	assert_string_equal(CK_LABEL_FILE_HEADER, "ckfs v1 file header mac");
	assert_string_equal(CK_LABEL_FILE_SIZE, "ckfs v1 file size");
	assert_string_equal(CK_LABEL_SYMLINK, "ckfs v1 symlink target");
	assert_string_equal(CK_LABEL_XATTR_NAME, "ckfs v1 xattr name siv");
	assert_string_equal(CK_LABEL_XATTR_VALUE, "ckfs v1 xattr value");
	assert_string_equal(CK_LABEL_RECORDS, "ckfs v1 records");
	assert_string_equal(CK_LABEL_AUDIT, "ckfs v1 audit mac");
	assert_string_equal(CK_LABEL_CERT, "ckfs v1 purge certificate");
}

static void kat_volume_header_is_unchanged_and_verifies(void **state)
{
	struct kat *k = *state;
	uint8_t buf[CK_VOLUME_HDR_LEN], key[CK_KEY_LEN];
	struct ck_volume_hdr h;
	size_t kl = 0;

	assert_hex_equal("volume header", k->volume_hdr, CK_VOLUME_HDR_LEN, KAT_VOLUME_HDR);
	assert_int_equal(unhex(KAT_VOLUME_HDR, buf, sizeof(buf)), CK_VOLUME_HDR_LEN);
	assert_int_equal(ck_volume_hdr_decode(buf, sizeof(buf), &h), 0);
	assert_int_equal(h.created, IN_CREATED);
	assert_memory_equal(h.kek_id, k->kek_id, CK_ID_LEN);
	assert_int_equal(ck_volume_hdr_verify(buf, k->volume_mac_key), 0);
	/* the recorded wrap opens with the KEK to the service key */
	assert_int_equal(ck_key_unwrap(k->kek, h.wrapped_service_key, CK_WRAPPED_KEY_LEN,
	                               key, &kl), 0);
	assert_int_equal(kl, CK_KEY_LEN);
	assert_memory_equal(key, k->service, CK_KEY_LEN);
}

static void kat_key_file_and_dirid_are_unchanged(void **state)
{
	struct kat *k = *state;
	uint8_t buf[CK_KEYFILE_LEN], id[CK_ID_LEN], key[CK_KEY_LEN];

	assert_hex_equal("key file", k->keyfile, CK_KEYFILE_LEN, KAT_KEYFILE);
	assert_hex_equal("directory ID file", k->dirid, CK_DIRID_LEN, KAT_DIRID);
	unhex(KAT_KEYFILE, buf, sizeof(buf));
	assert_int_equal(ck_keyfile_decode(buf, sizeof(buf), id, key), 0);
	assert_memory_equal(id, k->kek_id, CK_ID_LEN);
	assert_memory_equal(key, k->kek, CK_KEY_LEN);
	unhex(KAT_DIRID, buf, CK_DIRID_LEN);
	assert_int_equal(ck_dirid_decode(buf, CK_DIRID_LEN, id), 0);
	assert_memory_equal(id, k->dir_id, CK_ID_LEN);
}

static void kat_file_header_and_bindings_are_unchanged_and_verify(void **state)
{
	struct kat *k = *state;
	uint8_t buf[CK_FILE_HDR_LEN];
	struct ck_file_hdr h;

	assert_hex_equal("binding (dir, \"cur\")", k->bind_cur, CK_BINDING_LEN, KAT_BINDING_CUR);
	assert_hex_equal("binding (dir, \"new\")", k->bind_new, CK_BINDING_LEN, KAT_BINDING_NEW);
	assert_hex_equal("file header", k->file_hdr, CK_FILE_HDR_LEN, KAT_FILE_HDR);
	unhex(KAT_FILE_HDR, buf, sizeof(buf));
	assert_int_equal(ck_file_hdr_parse(buf, sizeof(buf), &h), 0);
	assert_memory_equal(h.file_id, k->file_id, CK_ID_LEN);
	assert_memory_equal(h.tree_id, k->tree_id, CK_ID_LEN);
	assert_int_equal(h.flags, CK_FILE_SPARSE);
	assert_int_equal(h.n_bind, 2);
	assert_int_equal(ck_file_hdr_has_binding(&h, k->bind_cur), 1);
	assert_int_equal(ck_file_hdr_has_binding(&h, k->bind_new), 1);
	assert_int_equal(ck_file_hdr_verify(buf, &k->ref, k->fk.header), 0);
	/* documented offsets: size box at 352, tree ID at 464, MAC at 480 */
	assert_memory_equal(h.size_box, buf + 352, CK_SIZE_BOX_LEN);
	assert_memory_equal(buf + 464, k->tree_id, CK_ID_LEN);
	{
		struct ck_gcm *g;
		uint64_t size = 0;
		assert_int_equal(ck_gcm_new(&g, k->fk.size), 0);
		assert_int_equal(ck_file_size_open(g, &k->ref, h.size_box, &size), 0);
		assert_true(size == IN_FILE_SIZE);
		ck_gcm_free(g);
	}
}

static void kat_recorded_blocks_open_to_fixed_plaintext(void **state)
{
	struct kat *k = *state;
	static uint8_t ct[CK_CBLOCK_SIZE], pt[CK_BLOCK_SIZE], want[CK_BLOCK_SIZE];
	struct ck_gcm *g;
	size_t n;

	assert_int_equal(ck_gcm_new(&g, k->fk.content), 0);
	n = unhex(KAT_BLOCK0, ct, sizeof(ct));
	assert_int_equal(n, CK_CBLOCK_SIZE);
	block_plain(0, want, CK_BLOCK_SIZE);
	assert_int_equal(ck_block_open(g, &k->ref, 0, 0, ct, n, pt), CK_BLOCK_SIZE);
	assert_memory_equal(pt, want, CK_BLOCK_SIZE);
	/* and only as block 0, not final */
	assert_int_equal(ck_block_open(g, &k->ref, 0, 1, ct, n, pt), -EBADMSG);
	assert_int_equal(ck_block_open(g, &k->ref, 1, 0, ct, n, pt), -EBADMSG);

	/* the final block is full too: IN_LAST_LEN bytes, then zeros */
	n = unhex(KAT_BLOCK1_FINAL, ct, sizeof(ct));
	assert_int_equal(n, CK_CBLOCK_SIZE);
	memset(want, 0, sizeof(want));
	block_plain(1, want, IN_LAST_LEN);
	assert_int_equal(ck_block_open(g, &k->ref, 1, 1, ct, n, pt), CK_BLOCK_SIZE);
	assert_memory_equal(pt, want, CK_BLOCK_SIZE);
	assert_int_equal(ck_block_open(g, &k->ref, 1, 0, ct, n, pt), -EBADMSG);

	/* an empty file's only block: 4096 zeros, block 0, last */
	n = unhex(KAT_BLOCK_EMPTY_FILE, ct, sizeof(ct));
	assert_int_equal(n, CK_CBLOCK_SIZE);
	memset(want, 0, sizeof(want));
	assert_int_equal(ck_block_open(g, &k->ref, 0, 1, ct, n, pt), CK_BLOCK_SIZE);
	assert_memory_equal(pt, want, CK_BLOCK_SIZE);
	assert_int_equal(ck_block_open(g, &k->ref, 0, 0, ct, n, pt), -EBADMSG);
	ck_gcm_free(g);

	/* the whole recorded file has the documented (rounded) size */
	assert_int_equal(ck_backing_size(IN_FILE_SIZE), CK_FILE_HDR_LEN + 2 * CK_CBLOCK_SIZE);
	assert_int_equal(ck_backing_size(0), CK_FILE_HDR_LEN + CK_CBLOCK_SIZE);
}

static void kat_size_boxes_open_to_fixed_sizes(void **state)
{
	struct kat *k = *state;
	uint8_t box[CK_SIZE_BOX_LEN], id[CK_ID_LEN];
	struct ck_file_ref other = k->ref;
	struct ck_gcm *g;
	uint64_t size = 1;

	assert_int_equal(ck_gcm_new(&g, k->fk.size), 0);
	assert_int_equal(unhex(KAT_SIZE_BOX_EMPTY_FILE, box, sizeof(box)), CK_SIZE_BOX_LEN);
	assert_int_equal(ck_file_size_open(g, &k->ref, box, &size), 0);
	assert_true(size == 0);
	/* bound to the file: not another file's */
	memcpy(id, k->file_id, CK_ID_LEN);
	id[0] ^= 1;
	other.file_id = id;
	assert_int_equal(ck_file_size_open(g, &other, box, &size), -EBADMSG);
	assert_int_equal(ck_file_size_open(g, &other, k->size_box, &size), -EBADMSG);
	assert_int_equal(ck_file_size_open(g, &k->ref, k->size_box, &size), 0);
	assert_true(size == IN_FILE_SIZE);
	ck_gcm_free(g);
}

/* The record's payload, decrypted with the documented key and AAD. */
static uint8_t *record_payload(struct kat *k, const uint8_t *rec, size_t n, size_t *len)
{
	struct ck_gcm *g;
	uint8_t *pt;

	assert_true(n >= 40 + CK_GCM_TAG_LEN);
	*len = n - 40 - CK_GCM_TAG_LEN;
	pt = malloc(*len + 1);
	assert_non_null(pt);
	assert_int_equal(ck_gcm_new(&g, k->record_key), 0);
	assert_int_equal(ck_gcm_open(g, rec + 28, rec, 28, rec + 40, *len, pt, rec + 40 + *len), 0);
	ck_gcm_free(g);
	return pt;
}

static void kat_dep_record_decodes_to_fixed_fields(void **state)
{
	struct kat *k = *state;
	uint8_t rec[4096], id[CK_ID_LEN], *fresh, *p1, *p2;
	size_t n, fn, l1, l2;
	struct ck_dep d;

	n = unhex(KAT_DEP_RECORD, rec, sizeof(rec));
	/* the envelope: magic, kind 1, version 1, reserved, record ID */
	assert_memory_equal(rec, "CKREC1\0\0", 8);
	assert_int_equal(rec[8], 1);
	assert_int_equal(rec[9], 1);
	assert_int_equal(rec[10], 0);
	assert_int_equal(rec[11], 0);
	unhex(IN_DEP_ID, id, CK_ID_LEN);
	assert_memory_equal(rec + 12, id, CK_ID_LEN);

	assert_int_equal(ck_dep_decode(&k->vol, rec, n, &d), 0);
	assert_memory_equal(d.id, id, CK_ID_LEN);
	assert_string_equal(d.name, IN_DEP_NAME);
	assert_int_equal(d.state, IN_DEP_STATE);
	assert_true(d.created == IN_DEP_CREATED && d.changed == IN_DEP_CHANGED);
	assert_true(d.purge_after == IN_DEP_PURGE_AFTER && d.generation == IN_DEP_GENERATION);
	assert_int_equal(d.n_wraps, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(d.wraps[i].role, k->dep.wraps[i].role);
		assert_int_equal(d.wraps[i].last_result, k->dep.wraps[i].last_result);
		assert_true(d.wraps[i].last_time == k->dep.wraps[i].last_time);
		assert_string_equal(d.wraps[i].uri, k->dep.wraps[i].uri);
		assert_int_equal(d.wraps[i].len, k->dep.wraps[i].len);
		assert_memory_equal(d.wraps[i].wrapped, k->dep.wraps[i].wrapped, d.wraps[i].len);
	}

	/* Encoding the same DEP today gives the same envelope and, inside the
	 * encryption, the same payload byte for byte. */
	assert_int_equal(ck_dep_encode(&k->vol, &k->dep, &fresh, &fn), 0);
	assert_int_equal(fn, n);
	assert_memory_equal(fresh, rec, 28);
	p1 = record_payload(k, rec, n, &l1);
	p2 = record_payload(k, fresh, fn, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(p1, p2, l1);
	free(p1);
	free(p2);
	free(fresh);

	/* AAD = bytes 0..27: another kind byte or ID, or any flipped byte,
	 * is refused */
	rec[8] = 2;
	assert_int_not_equal(ck_dep_decode(&k->vol, rec, n, &d), 0);
	rec[8] = 1;
	rec[20] ^= 1;
	assert_int_equal(ck_dep_decode(&k->vol, rec, n, &d), -EBADMSG);
	rec[20] ^= 1;
	rec[n - 1] ^= 1;
	assert_int_equal(ck_dep_decode(&k->vol, rec, n, &d), -EBADMSG);
	rec[n - 1] ^= 1;
	assert_int_equal(ck_dep_decode(&k->vol, rec, n, &d), 0);
}

/* The recorded audit log and head verify under the pinned audit key, and
 * libck continues the recorded chain. */
static void kat_audit_log_verifies_and_continues(void **state)
{
	struct kat *k = *state;
	char *dir = ck_test_tmpdir("kat-audit"), *meta = ck_test_path(dir, ".ckfs"), *p;
	const struct ck_audit_event e3 = { .event = "kat-check", .actor = "test" };
	static uint8_t buf[8192];
	char msg[256], head[65];
	long count = 0;
	size_t n;

	assert_int_equal(mkdir(meta, 0700), 0);
	p = ck_test_path(meta, "audit.log");
	n = unhex(KAT_AUDIT_LOG, buf, sizeof(buf));
	ck_test_write_file(p, buf, n, 0600);
	free(p);
	p = ck_test_path(meta, "audit.head");
	n = unhex(KAT_AUDIT_HEAD, buf, sizeof(buf));
	ck_test_write_file(p, buf, n, 0600);
	free(p);
	k->vol.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(k->vol.fd >= 0);
	k->vol.path = dir;

	if (ck_audit_verify(&k->vol, &count, msg, sizeof(msg)) != 0)
		fail_msg("recorded audit log does not verify: %s", msg);
	assert_int_equal(count, 2);
	assert_int_equal(ck_audit_head(&k->vol, head, &count), 0);
	assert_int_equal(count, 2);
	/* the head's MAC is that of the second record (its "mac=" field) */
	n = unhex(KAT_AUDIT_LOG, buf, sizeof(buf));
	buf[n] = 0;
	assert_non_null(strstr((char *)buf, head));
	assert_int_equal(ck_audit_append(&k->vol, &e3), 0);
	assert_int_equal(ck_audit_verify(&k->vol, &count, msg, sizeof(msg)), 0);
	assert_int_equal(count, 3);

	close(k->vol.fd);
	k->vol.fd = -1;
	k->vol.path = NULL;
	ck_test_rm_rf(dir);
	free(meta);
	free(dir);
}

static void kat_names_are_reproduced_exactly(void **state)
{
	struct kat *k = *state;

	assert_int_equal(sizeof(kat_enc_names) / sizeof(kat_enc_names[0]), N_NAMES);
	for (size_t i = 0; i < N_NAMES; i++) {
		char name[CK_NAME_MAX + 1], dec[CK_NAME_MAX + 1];
		size_t n = in_name(i, name);
		const char *want = kat_enc_names[i];

		if (strcmp(k->enc_names[i], want))
			fail_msg("name %zu (%zu bytes) changed:\n  got  %s\n  want %s", i, n,
			         k->enc_names[i], want);
		assert_int_equal(ck_name_decrypt(&k->tree, k->dir_id, want, strlen(want), dec),
		                 (int)n);
		assert_memory_equal(dec, name, n);
		assert_int_equal(ck_name_is_long(strlen(want)), n > 175);
		assert_string_equal(k->long_entry[i], kat_long_entries[i]);
	}
}

static void kat_symlink_and_xattr_open_to_fixed_plaintext(void **state)
{
	struct kat *k = *state;
	char dec[256];
	uint8_t v[256], val[256];
	size_t n;

	assert_string_equal(k->xattr_name, KAT_XATTR_NAME_ENC);
	assert_int_equal(ck_xattr_name_decrypt(&k->tree, KAT_XATTR_NAME_ENC, dec, sizeof(dec)),
	                 (int)strlen(IN_XATTR_NAME));
	assert_string_equal(dec, IN_XATTR_NAME);
	assert_int_equal(ck_symlink_decrypt(&k->tree, KAT_SYMLINK_ENC, strlen(KAT_SYMLINK_ENC),
	                                    dec, sizeof(dec)), (int)strlen(IN_SYMLINK));
	assert_string_equal(dec, IN_SYMLINK);
	n = unhex(KAT_XATTR_VALUE, v, sizeof(v));
	assert_int_equal(ck_xattr_value_decrypt(&k->tree, KAT_XATTR_NAME_ENC, v, n, val),
	                 (int)strlen(IN_XATTR_VAL));
	assert_memory_equal(val, IN_XATTR_VAL, strlen(IN_XATTR_VAL));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(kat_key_hierarchy_is_unchanged),
		T(kat_keys_are_documented_hkdf_chains),
		T(kat_volume_header_is_unchanged_and_verifies),
		T(kat_key_file_and_dirid_are_unchanged),
		T(kat_file_header_and_bindings_are_unchanged_and_verify),
		T(kat_recorded_blocks_open_to_fixed_plaintext),
		T(kat_size_boxes_open_to_fixed_sizes),
		T(kat_dep_record_decodes_to_fixed_fields),
		T(kat_audit_log_verifies_and_continues),
		T(kat_names_are_reproduced_exactly),
		T(kat_symlink_and_xattr_open_to_fixed_plaintext),
	};

	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("kat_format", tests, NULL, NULL);
}
#endif
