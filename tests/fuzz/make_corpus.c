/* Writes the seed corpora of the fuzz targets: make_corpus DIR fills
 * DIR/<target>/ with a few valid inputs (made with libck and the fixed keys
 * of fuzz.h, so that they authenticate in the targets) and a few corrupt
 * ones. scripts/fuzz --corpus runs it into tests/fuzz/corpus/. Nonces are
 * random, so a rerun changes the bytes but not what the seeds reach. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "keys/audit.h"
#include "keys/dep.h"
#include "keys/format.h"
#include "keys/keyfile.h"
#include "keys/names.h"
#include "keys/util.h"
#include "keys/volume.h"
#include "tests/fuzz/fuzz.h"

static const char *root;

#define OK(x) do { if ((x) < 0) { fprintf(stderr, "make_corpus: %s failed (line %d)\n", #x, __LINE__); exit(1); } } while (0)

static void seed(const char *target, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	if (!(f = fopen(path, "wb")) || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* A seed of a control byte (or two) followed by bytes. */
static void seed_pre(const char *target, const char *name, const uint8_t *pre, size_t pn,
                     const void *p, size_t n)
{
	uint8_t *b = malloc(pn + n + 1);

	memcpy(b, pre, pn);
	memcpy(b + pn, p, n);
	seed(target, name, b, pn + n);
	free(b);
}

static void seed_str(const char *target, const char *name, const char *s)
{
	seed(target, name, s, strlen(s));
}

static void volume_hdr(void)
{
	struct ck_volume_hdr h = { .version = CK_FORMAT_VERSION, .block_size = CK_BLOCK_SIZE,
	                           .created = 1700000000 };
	uint8_t b[CK_VOLUME_HDR_LEN], c[CK_VOLUME_HDR_LEN];

	memcpy(h.volume_id, fz_volume_id, CK_ID_LEN);
	memcpy(h.service_tree_id, fz_tree_id, CK_ID_LEN);
	memcpy(h.kek_id, fz_record_id, CK_ID_LEN);
	memset(h.wrapped_service_key, 0xa6, CK_WRAPPED_KEY_LEN);
	OK(ck_volume_hdr_encode(&h, fz_volume_mac_key, b));
	seed("volume_hdr", "valid", b, sizeof(b));
	OK(ck_volume_hdr_encode(&h, NULL, c));
	seed("volume_hdr", "valid-checksum-no-mac", c, sizeof(c));
	memcpy(c, b, sizeof(c));
	c[8] = 2;
	seed("volume_hdr", "version-2-stale-checksum", c, sizeof(c));
	memcpy(c, b, sizeof(c));
	c[40] ^= 1;
	seed("volume_hdr", "bitflip-volume-id", c, sizeof(c));
	seed("volume_hdr", "truncated-100", b, 100);
	seed("volume_hdr", "magic-only", b, 8);
}

static void dirid_keyfile(void)
{
	uint8_t d[CK_DIRID_LEN], k[CK_KEYFILE_LEN];

	ck_dirid_encode(fz_dir_id, d);
	seed("dirid", "valid", d, sizeof(d));
	d[5] = 1;
	seed("dirid", "reserved-set", d, sizeof(d));
	seed("dirid", "truncated-20", d, 20);
	OK(ck_keyfile_encode(fz_record_id, fz_tree_key, k));
	seed("keyfile", "valid", k, sizeof(k));
	seed("keyfile", "truncated-40", k, 40);
	k[8] = 2;
	seed("keyfile", "version-2", k, sizeof(k));
	seed("keyfile", "text", "CKFSKEY1 not a key\n", 19);
}

static void file_hdr_and_blocks(void)
{
	static const struct ck_file_ref ref = { fz_volume_id, fz_tree_id, fz_file_id };
	struct ck_file_keys k = { 0 };
	struct ck_file_hdr h = { .version = 1, .kind = 1 };
	struct ck_gcm *sz, *ct;
	uint8_t hdr[CK_FILE_HDR_LEN + CK_CBLOCK_SIZE], b[CK_BINDING_LEN], pt[CK_BLOCK_SIZE];
	uint8_t blk[CK_CBLOCK_SIZE], zero[CK_CBLOCK_SIZE] = { 0 }, ctl;
	char name[16];

	OK(ck_file_keys_derive(fz_tree(), fz_file_id, &k));
	OK(ck_gcm_new(&sz, k.size));
	OK(ck_gcm_new(&ct, k.content));
	memcpy(h.file_id, fz_file_id, CK_ID_LEN);
	memcpy(h.tree_id, fz_tree_id, CK_ID_LEN);
	OK(ck_file_size_seal(sz, &ref, 100, h.size_box));
	OK(ck_binding(k.header, fz_dir_id, "hello.txt", 9, b));
	OK(ck_file_hdr_add_binding(&h, b));
	OK(ck_file_hdr_encode(&h, &ref, k.header, hdr));
	seed("file_hdr", "valid-1-link", hdr, CK_FILE_HDR_LEN);
	for (int i = 0; i < CK_BLOCK_SIZE; i++)
		pt[i] = (uint8_t)(i * 7);
	OK(ck_block_seal(ct, &ref, 0, 1, pt, 100, hdr + CK_FILE_HDR_LEN));
	seed("file_hdr", "valid-with-block", hdr, CK_FILE_HDR_LEN + 100 + CK_BLOCK_OVERHEAD);
	for (int i = 1; i < CK_MAX_LINKS; i++) {
		snprintf(name, sizeof(name), "link%d", i);
		OK(ck_binding(k.header, fz_dir_id, name, strlen(name), b));
		OK(ck_file_hdr_add_binding(&h, b));
	}
	h.flags = CK_FILE_SPARSE;
	OK(ck_file_size_seal(sz, &ref, (uint64_t)1 << 40, h.size_box));
	OK(ck_file_hdr_encode(&h, &ref, k.header, hdr));
	seed("file_hdr", "valid-20-links-sparse", hdr, CK_FILE_HDR_LEN);
	hdr[24] = 21;
	seed("file_hdr", "n-bind-21", hdr, CK_FILE_HDR_LEN);
	hdr[24] = CK_MAX_LINKS;
	hdr[5] = 2;
	seed("file_hdr", "kind-2", hdr, CK_FILE_HDR_LEN);
	seed("file_hdr", "truncated-300", hdr, 300);

	ctl = 0 << 1 | 1;
	OK(ck_block_seal(ct, &ref, 0, 1, pt, 100, blk));
	seed_pre("block", "final-block-0-100-bytes", &ctl, 1, blk, 100 + CK_BLOCK_OVERHEAD);
	ctl = 3 << 1 | 0;
	OK(ck_block_seal(ct, &ref, 3, 0, pt, CK_BLOCK_SIZE, blk));
	seed_pre("block", "block-3-full", &ctl, 1, blk, CK_CBLOCK_SIZE);
	ctl = 5 << 1 | 1;
	OK(ck_block_seal(ct, &ref, 5, 1, pt, 0, blk));
	seed_pre("block", "final-block-5-empty", &ctl, 1, blk, CK_BLOCK_OVERHEAD);
	seed_pre("block", "hole", &ctl, 1, zero, sizeof(zero));
	blk[20] ^= 0x80;
	seed_pre("block", "tampered", &ctl, 1, blk, CK_BLOCK_OVERHEAD);
	seed_pre("block", "short", &ctl, 1, blk, 20);
	ck_gcm_free(sz);
	ck_gcm_free(ct);
	ck_file_keys_release(&k);
}

static void names(void)
{
	const struct ck_tree *t = fz_tree();
	char enc[CK_ENC_NAME_MAX], sym[4200], bname[CK_XATTR_NAME_MAX + 1], longname[240];
	uint8_t val[64 + CK_BLOCK_OVERHEAD];
	static const uint8_t zero = 0;
	char target[3001];

	OK(ck_name_encrypt(t, fz_dir_id, "hello.txt", 9, enc));
	seed_str("name", "valid-hello", enc);
	OK(ck_name_encrypt(t, fz_dir_id, "a", 1, enc));
	seed_str("name", "valid-a", enc);
	OK(ck_name_encrypt(t, fz_dir_id, "caf\xc3\xa9 \xe2\x98\x83.eml", 13, enc));
	seed_str("name", "valid-utf8", enc);
	enc[3] = enc[3] == 'A' ? 'B' : 'A';
	seed_str("name", "tampered", enc);
	seed_str("name", "plain-name", "INBOX");
	seed_str("name", "bad-char", "abc/def");
	seed_str("name", "b64-len-1-mod-4", "AAAAA");
	memset(longname, 'x', sizeof(longname));
	OK(ck_name_encrypt(t, fz_dir_id, longname, sizeof(longname), enc));
	seed_str("name", "valid-240-bytes", enc);
	seed_str("long_name", "valid-240-bytes", enc);
	memset(longname, 'y', 200);
	OK(ck_name_encrypt(t, fz_dir_id, longname, 200, enc));
	seed_str("long_name", "valid-200-bytes", enc);
	seed("long_name", "with-nul", "AAAA\0BBBB", 9);
	seed_str("long_name", "short", "abc");

	OK(ck_symlink_encrypt(t, "/etc/passwd", 11, sym, sizeof(sym)));
	seed_str("symlink", "valid-abs", sym);
	OK(ck_symlink_encrypt(t, "../x y/z", 8, sym, sizeof(sym)));
	seed_str("symlink", "valid-rel", sym);
	memset(target, 'p', 3000);
	target[3000] = 0;
	OK(ck_symlink_encrypt(t, target, 3000, sym, sizeof(sym)));
	seed_str("symlink", "valid-3000", sym);
	sym[10] = sym[10] == 'A' ? 'B' : 'A';
	seed_str("symlink", "tampered-3000", sym);
	seed_str("symlink", "plain", "/etc/passwd");

	OK(ck_xattr_name_encrypt(t, "user.mime_type", bname, sizeof(bname)));
	OK(ck_xattr_value_encrypt(t, bname, (const uint8_t *)"text/plain", 10, val));
	{
		uint8_t b[512];
		size_t n = strlen(bname);
		memcpy(b, bname, n);
		b[n] = 0;
		memcpy(b + n + 1, val, 10 + CK_BLOCK_OVERHEAD);
		seed("xattr", "valid", b, n + 1 + 10 + CK_BLOCK_OVERHEAD);
		seed("xattr", "valid-name-only", bname, n);
		b[n + 5] ^= 1;
		seed("xattr", "tampered-value", b, n + 1 + 10 + CK_BLOCK_OVERHEAD);
	}
	seed("xattr", "plain-user-name-and-value", "user.comment\0hello", 18);
	seed("xattr", "trusted-name", "trusted.x\0v", 11);
	seed_pre("xattr", "empty-name", &zero, 1, "v", 1);
}

static void records(void)
{
	const struct ck_volume *v = fz_record_volume();
	struct ck_dep d = { .state = CK_DEP_ACTIVE, .created = 1700000000, .changed = 1700000100,
	                    .generation = 3, .n_wraps = 2 };
	struct ck_tree_rec tr = { .state = CK_TREE_ACTIVE, .created = 1700000000, .generation = 1,
	                          .wlen = 40 };
	uint8_t *rec, *pl, mode;
	size_t n, pn;

	memcpy(d.id, fz_record_id, CK_ID_LEN);
	strcpy(d.name, "finance");
	d.wraps[0].role = CK_ROLE_CUSTOMER;
	d.wraps[0].last_result = CK_RES_OK;
	d.wraps[0].last_time = 1700000050;
	strcpy(d.wraps[0].uri, "pkcs11:token=ck;object=aeskey?module-path=/usr/lib/softhsm/"
	       "libsofthsm2.so&pin-source=file:/etc/ckfs/ck.pin");
	d.wraps[0].len = 40;
	memset(d.wraps[0].wrapped, 0x5a, 40);
	d.wraps[1].role = CK_ROLE_AVAILABILITY;
	strcpy(d.wraps[1].uri, "file:/var/lib/ckfs/avail/finance.key");
	d.wraps[1].len = 40;
	memset(d.wraps[1].wrapped, 0xa5, 40);
	OK(ck_dep_encode(v, &d, &rec, &n));
	mode = 0;
	seed_pre("dep_record", "record-2-wraps", &mode, 1, rec, n);
	seed_pre("dep_record", "record-truncated", &mode, 1, rec, n - 1);
	OK(fz_record_open(rec, n, &pl, &pn));
	mode = 1;
	seed_pre("dep_record", "payload-2-wraps", &mode, 1, pl, pn);
	seed_pre("dep_record", "payload-truncated", &mode, 1, pl, pn / 2);
	free(rec);
	free(pl);
	d.state = CK_DEP_PURGED;
	d.n_wraps = 0;
	strcpy(d.name, "x");
	OK(ck_dep_encode(v, &d, &rec, &n));
	OK(fz_record_open(rec, n, &pl, &pn));
	seed_pre("dep_record", "payload-purged-no-wraps", &mode, 1, pl, pn);
	free(rec);
	free(pl);

	memcpy(tr.id, fz_tree_id, CK_ID_LEN);
	memcpy(tr.dep_id, fz_record_id, CK_ID_LEN);
	strcpy(tr.path, "mail/alice");
	memset(tr.wrapped_key, 0x33, 40);
	OK(ck_tree_rec_encode(v, &tr, &rec, &n));
	mode = 0;
	seed_pre("tree_record", "record", &mode, 1, rec, n);
	rec[9] = 2;
	seed_pre("tree_record", "record-version-2", &mode, 1, rec, n);
	OK(fz_record_open(rec, n, &pl, &pn) == -EBADMSG ? 0 : -1);
	rec[9] = 1;
	OK(fz_record_open(rec, n, &pl, &pn));
	mode = 1;
	seed_pre("tree_record", "payload", &mode, 1, pl, pn);
	seed_pre("tree_record", "payload-truncated", &mode, 1, pl, 30);
	free(rec);
	free(pl);
	tr.state = CK_TREE_PURGED;
	tr.wlen = 0;
	OK(ck_tree_rec_encode(v, &tr, &rec, &n));
	OK(fz_record_open(rec, n, &pl, &pn));
	seed_pre("tree_record", "payload-purged", &mode, 1, pl, pn);
	free(rec);
	free(pl);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		exit(1);
	}
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void audit(void)
{
	static char buf[65536];
	char base[4096], vpath[4200], kpath[4200], p[4300], msg[512];
	const char *tmp = getenv("TMPDIR");
	struct ck_volume v;
	struct ck_audit_event ev[] = {
		{ .event = "dep-created", .dep = "finance", .actor = "operator", .result = "ok" },
		{ .event = "key-added", .dep = "finance", .uri = "pkcs11:token=ck;object=k?pin-source="
		  "file:/p", .result = "ok", .actor = "operator" },
		{ .event = "probe", .dep = "finance", .tree = "mail/al ice=%", .result = "unavailable",
		  .actor = "daemon" },
		{ .event = "revoked", .dep = "caf\xc3\xa9\xe2\x80\xae", .result = "denied: \"no\"\n",
		  .actor = "probe" },
	};
	size_t ln, hn;
	uint8_t *b;

	snprintf(base, sizeof(base), "%s/ckfs-corpus.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(vpath, sizeof(vpath), "%s/vol", base);
	snprintf(kpath, sizeof(kpath), "%s/keys", base);
	OK(mkdir(kpath, 0700));
	if (ck_volume_create(vpath, kpath, 0, msg, sizeof(msg)) < 0 ||
	    ck_volume_open(vpath, kpath, &v, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "make_corpus: %s\n", msg);
		exit(1);
	}
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		OK(ck_audit_append(&v, &ev[i]));
	snprintf(p, sizeof(p), "%s/.ckfs/audit.log", vpath);
	ln = slurp(p, buf, 60000);
	snprintf(p, sizeof(p), "%s/.ckfs/audit.head", vpath);
	buf[ln] = 0;
	hn = slurp(p, buf + ln + 1, sizeof(buf) - ln - 1);
	ck_volume_close(&v);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);

	/* mode | k | log [| NUL | head]; see fuzz_audit_log.c */
	b = malloc(ln + hn + 3);
	memcpy(b + 2, buf, ln + 1 + hn);
	b[0] = 0x05, b[1] = 4;
	seed("audit_log", "chain-4-good-head", b, ln + 2);
	b[0] = 0x0d, b[1] = 4;
	seed("audit_log", "chain-4-good-head-append", b, ln + 2);
	b[0] = 0x05, b[1] = 2;
	seed("audit_log", "chain-4-head-lags", b, ln + 2);
	b[0] = 0x01, b[1] = 0;
	seed("audit_log", "chain-4-foreign-head", b, ln + 3 + hn);
	b[0] = 0x03, b[1] = 0;
	seed("audit_log", "chain-4-no-head", b, ln + 2);
	b[0] = 0x00, b[1] = 0;
	seed("audit_log", "raw-foreign", b, ln + 3 + hn);
	b[0] = 0x05, b[1] = 4;
	seed("audit_log", "chain-4-truncated-line", b, ln + 2 - 10);
	{
		/* records 2 and 3 swapped, then re-MACed in the new order */
		char *l1 = memchr(b + 2, '\n', ln), *l2 = memchr(l1 + 1, '\n', ln), *l3 = memchr(l2 + 1, '\n', ln);
		size_t a = (size_t)(l2 - l1), c = (size_t)(l3 - l2);
		char *t = malloc(a + c);
		memcpy(t, l2 + 1, c);
		memcpy(t + c, l1 + 1, a);
		memcpy(l1 + 1, t, a + c);
		free(t);
		seed("audit_log", "chain-4-swapped-2-3", b, ln + 2);
	}
	seed("audit_log", "empty-log-empty-head", "\x00\x00", 2);
	free(b);
}

static void uris(void)
{
	static const char *const p11[] = {
		"pkcs11:token=a;object=b?module-path=/x&pin-source=file:/p",
		"pkcs11:token=ck;object=aeskey;id=%01%02;type=secret-key?module-path=/usr/lib/softhsm/"
		"libsofthsm2.so&pin-source=file:///etc/ckfs/ck.pin",
		"pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial=1234;"
		"id=%ff;type=private?pin-source=file:/run/pin",
		"pkcs11:token=a;object=b?pin-value=1234",
		"pkcs11:token=a;object=b?module-name=softhsm&pin-source=file:/p",
		"pkcs11:token=a;object=b;object=c?pin-source=file:/p",
		"pkcs11:object=b?pin-source=file:/p",
		"pkcs11:token=a;id=%zz?pin-source=file:/p",
		"PKCS11:token=a;object=b?pin-source=file:/p??",
	};
	static const char *const ex[] = {
		"exec:/bin/true",
		"exec:/usr/lib/ckfs/kms-helper?timeout=30 --key 'projects/p/keys/k 1' \"a\\\"b\" c\\ d",
		"exec:/bin/sh?timeout=0",
		"exec:relative/helper",
		"exec:/bin/true 'unterminated",
		"exec:/bin/true?foo=1",
		"exec:\t/bin/true\targ",
	};
	char name[32];

	for (size_t i = 0; i < sizeof(p11) / sizeof(p11[0]); i++) {
		snprintf(name, sizeof(name), "uri-%zu", i);
		seed_str("pkcs11_uri", name, p11[i]);
		seed_str("provider_uri", name, p11[i]);
	}
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		snprintf(name, sizeof(name), "uri-%zu", i);
		seed_str("exec_uri", name, ex[i]);
		snprintf(name, sizeof(name), "exec-%zu", i);
		seed_str("provider_uri", name, ex[i]);
	}
	seed_str("provider_uri", "file", "file:/var/lib/ckfs/avail/finance.key");
	seed_str("provider_uri", "file-3-slashes", "file:///etc/k");
	seed_str("provider_uri", "file-dir", "file:/etc/");
	seed_str("provider_uri", "unknown", "vault:secret/x");
}

static void exec_answers(void)
{
	static const struct { uint8_t ctl; const char *name, *text; } a[] = {
		{ 0x08, "ok-key", "ok AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==\n" },
		{ 0x18, "ok-key-small-room", "ok AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n" },
		{ 0x00, "ok-probe", "ok\n" },
		{ 0x00, "probe-with-payload", "ok AAAA\n" },
		{ 0x08, "denied", "denied key disabled by the customer\n" },
		{ 0x09, "unavailable-exit-1", "unavailable kms timeout\n" },
		{ 0x0a, "killed", "ok AAAA\n" },
		{ 0x0c, "ok-stdin-closed", "ok AAAA\n" },
		{ 0x08, "two-lines", "ok AAAA\nok BBBB\n" },
		{ 0x08, "bad-b64", "ok AAA=A===\n" },
		{ 0x08, "empty", "" },
	};

	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
		seed_pre("exec_answer", a[i].name, &a[i].ctl, 1, a[i].text, strlen(a[i].text));
}

static void mount_and_paths(void)
{
	static const struct { const char *name; const char *s; size_t n; } m[] = {
#define M(name, lit) { name, lit, sizeof(lit) - 1 }
		M("plain", "/srv/vol\0/mnt"),
		M("all-options", "-o\0key_dir=/k,cache_timeout=2.5,threads=8,key_ttl=60,ro\0/srv/vol\0/mnt"),
		M("fg-debug", "-f\0-d\0/srv/vol\0/mnt"),
		M("help", "--help"),
		M("version", "-V"),
		M("escaped-comma", "-okey_dir=/x\\,y,allow_other,debug\0vol\0mnt\0extra"),
		M("bad-threads", "-othreads=0x10\0vol\0mnt"),
		M("dangling-o", "vol\0mnt\0-o"),
#undef M
	};
	static const struct { const char *name; const char *s; size_t n; } t[] = {
#define T(name, lit) { name, lit, sizeof(lit) - 1 }
		T("messy", "\0/mail//alice/"),
		T("plain-small-buf", "\x10mail/alice"),
		T("dotdot", "\0mail/../etc"),
		T("dot", "\0./a"),
		T("dep-name", "\0finance-2024_Q1.v2"),
		T("root", "\0///"),
#undef T
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		seed("mount_opts", m[i].name, m[i].s, m[i].n);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		seed("tree_path", t[i].name, t[i].s, t[i].n);
}

static void config_duration_cert(void)
{
	static const char *const dur[] = { "0", "90s", "30m", "12h", "30d", "18446744073709551615",
	                                   "5x", "1h1" };
	static const char avail[] = "file:/var/lib/ckfs/availability/";
	uint8_t pl[64 + sizeof(avail)], *rec, mode;
	char name[32], cert[1024], hex[65];
	uint8_t mac[CK_HASH_LEN];
	size_t n, rn;
	int len;

	for (size_t i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
		snprintf(name, sizeof(name), "dur-%zu", i);
		seed_str("duration", name, dur[i]);
	}

	/* config payload (keys/dep.c): purge_wait u64 | u16 length | availability */
	ck_put64(pl, 7 * 86400);
	ck_put16(pl + 8, (uint16_t)(sizeof(avail) - 1));
	memcpy(pl + 10, avail, sizeof(avail) - 1);
	n = 10 + sizeof(avail) - 1;
	mode = 1;
	seed_pre("config_record", "payload", &mode, 1, pl, n);
	seed_pre("config_record", "payload-no-availability", &mode, 1, pl, 10);
	ck_put16(pl + 8, 0);
	seed_pre("config_record", "payload-empty-availability", &mode, 1, pl, 10);
	seed_pre("config_record", "payload-truncated", &mode, 1, pl, 6);
	ck_put16(pl + 8, (uint16_t)(sizeof(avail) - 1));
	OK(fz_record_seal(FZ_KIND_CONFIG, pl, n, &rec, &rn));
	mode = 0;
	seed_pre("config_record", "record", &mode, 1, rec, rn);
	rec[8] = FZ_KIND_DEP;
	seed_pre("config_record", "record-wrong-kind", &mode, 1, rec, rn);
	free(rec);

	/* a purge certificate as 'ck-dep purge' writes it */
	len = snprintf(cert, sizeof(cert), "{\"certificate\":\"ckfs purge\",\"dep\":\"finance\","
	               "\"id\":\"72656f72642d66757a7a000000000005\",\"time\":1700000000,\"trees\":2,"
	               "\"keys_destroyed\":2,\"audit_head\":\"%064d\",\"audit_count\":7}", 0);
	{
		const void *parts[] = { cert };
		size_t lens[] = { (size_t)len };
		OK(ck_hmac_sha256(fz_cert_key, parts, lens, 1, mac));
	}
	ck_hex(mac, sizeof(mac), hex);
	len += snprintf(cert + len, sizeof(cert) - (size_t)len, "\n{\"mac\":\"%s\"}\n", hex);
	mode = 0;
	seed_pre("purge_cert", "valid", &mode, 1, cert, (size_t)len);
	seed_pre("purge_cert", "no-newline", &mode, 1, cert, 120);
	cert[30] ^= 1;
	seed_pre("purge_cert", "edited", &mode, 1, cert, (size_t)len);
	mode = 1;
	seed_pre("purge_cert", "edited-mac-fixed", &mode, 1, cert, (size_t)len);
	seed_pre("purge_cert", "short-mac", &mode, 1, "{}\n{\"mac\":\"abcd\"}\n", 18);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	volume_hdr();
	dirid_keyfile();
	file_hdr_and_blocks();
	names();
	records();
	audit();
	uris();
	exec_answers();
	mount_and_paths();
	config_duration_cert();
	return 0;
}
