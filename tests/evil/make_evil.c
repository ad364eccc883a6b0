/* Writes the corrupt inputs in tests/evil/ (run from the repository root):
 *   cc -o /tmp/make_evil tests/evil/make_evil.c -lxxhash && /tmp/make_evil tests/evil
 * Each file is named KIND-ERRNO-what.bin: the decoder for KIND must reject
 * it with -ERRNO (tests/unit/test_format.c and test_keyfile.c read the
 * directory and check every file). KIND is volume (ck_volume_hdr_decode),
 * keyfile (ck_keyfile_decode / ck_keyfile_read), dirid (ck_dirid_decode)
 * or filehdr (ck_file_hdr_parse). The files ok-KIND*.bin are the valid
 * bases the cases are derived from, which the decoder must accept (so a
 * case cannot pass only because its base was already broken).
 *
 * Layouts are written out here from docs/FORMAT.md, deliberately without
 * libck, and checksums use libxxhash directly: a file whose checksum is
 * "valid" is valid by the spec, not by whatever libck happens to compute. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const char *dir;

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static void out(const char *name, const uint8_t *buf, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* ---- volume header (256 bytes) ---- */
static void vol_base(uint8_t *b)
{
	memset(b, 0, 256);
	memcpy(b, "CKFSVOL", 8);
	put32(b + 8, 1);
	put32(b + 16, 4096);
	put64(b + 24, 1700000000);
	fill(b + 32, 120 - 32, 1);      /* IDs and wrapped key */
	fill(b + 120, 32, 2);           /* MAC (decode does not check it) */
}
static void vol_sum(uint8_t *b) { put64(b + 248, XXH64(b, 248, 0)); }

static void volumes(void)
{
	uint8_t b[512] = { 0 };

	/* The base every case below is derived from: valid by the spec. */
	vol_base(b); vol_sum(b);
	out("ok-volume", b, 256);

	out("volume-EINVAL-empty", b, 0);
	out("volume-EINVAL-tiny-magic-prefix", (const uint8_t *)"CKFS", 4);
	memset(b, 0, 256);
	out("volume-EINVAL-all-zero", b, 256);
	fill(b, 256, 99);
	out("volume-EINVAL-garbage", b, 256);
	vol_base(b); memcpy(b, "CKFSVOX", 8); vol_sum(b);
	out("volume-EINVAL-bad-magic-valid-checksum", b, 256);
	vol_base(b); memcpy(b, "ckfsvol", 8); vol_sum(b);
	out("volume-EINVAL-lowercase-magic", b, 256);

	vol_base(b); vol_sum(b);
	out("volume-EBADMSG-truncated-8", b, 8);
	out("volume-EBADMSG-truncated-100", b, 100);
	out("volume-EBADMSG-truncated-255", b, 255);
	b[256] = 0;
	out("volume-EBADMSG-trailing-byte", b, 257);
	vol_base(b); vol_sum(b); b[250] ^= 1;
	out("volume-EBADMSG-bad-checksum", b, 256);
	vol_base(b); vol_sum(b); b[30] ^= 0x40;
	out("volume-EBADMSG-bitflip-created", b, 256);
	vol_base(b); vol_sum(b); b[8] = 2;
	out("volume-EBADMSG-version-changed-stale-checksum", b, 256);
	vol_base(b); put32(b + 12, 1); vol_sum(b);
	out("volume-EBADMSG-flags-set", b, 256);
	vol_base(b); put32(b + 16, 8192); vol_sum(b);
	out("volume-EBADMSG-block-size-8192", b, 256);
	vol_base(b); put32(b + 16, 0); vol_sum(b);
	out("volume-EBADMSG-block-size-0", b, 256);
	vol_base(b); b[200] = 1; vol_sum(b);
	out("volume-EBADMSG-reserved-nonzero", b, 256);
	vol_base(b); b[247] = 0x80; vol_sum(b);
	out("volume-EBADMSG-last-reserved-byte-nonzero", b, 256);

	vol_base(b); put32(b + 8, 2); vol_sum(b);
	out("volume-EPROTONOSUPPORT-version-2", b, 256);
	vol_base(b); put32(b + 8, 0); vol_sum(b);
	out("volume-EPROTONOSUPPORT-version-0", b, 256);
	vol_base(b); put32(b + 8, 0x01000001); vol_sum(b);
	out("volume-EPROTONOSUPPORT-version-big-endian-1", b, 256);
}

/* ---- key file (72 bytes) ---- */
static void key_base(uint8_t *b)
{
	memset(b, 0, 72);
	memcpy(b, "CKFSKEY1", 8);
	put32(b + 8, 1);
	fill(b + 16, 48, 3);
}
static void key_sum(uint8_t *b) { put64(b + 64, XXH64(b, 64, 0)); }

static void keyfiles(void)
{
	uint8_t b[128] = { 0 };

	out("keyfile-EBADMSG-empty", b, 0);
	key_base(b); key_sum(b);
	out("keyfile-EBADMSG-magic-only", b, 8);
	out("keyfile-EBADMSG-truncated-40", b, 40);
	out("keyfile-EBADMSG-truncated-71", b, 71);
	b[72] = '\n';
	out("keyfile-EBADMSG-trailing-newline", b, 73);
	fill(b, 72, 7);
	out("keyfile-EBADMSG-garbage", b, 72);
	key_base(b); memcpy(b, "CKFSKEY2", 8); key_sum(b);
	out("keyfile-EBADMSG-bad-magic-valid-checksum", b, 72);
	key_base(b); key_sum(b); b[66] ^= 0x10;
	out("keyfile-EBADMSG-bad-checksum", b, 72);
	key_base(b); key_sum(b); b[40] ^= 0x01;
	out("keyfile-EBADMSG-bitflip-in-key", b, 72);
	key_base(b); put32(b + 12, 1); key_sum(b);
	out("keyfile-EBADMSG-flags-set", b, 72);
	key_base(b); put32(b + 8, 2); key_sum(b);
	out("keyfile-EPROTONOSUPPORT-version-2", b, 72);
	/* Hex text of a key instead of the binary record. */
	memset(b, 'a', 64);
	out("keyfile-EBADMSG-hex-text", b, 64);
}

/* ---- directory ID (32 bytes) ---- */
static void dirid_base(uint8_t *b)
{
	memset(b, 0, 32);
	memcpy(b, "CKDI", 4);
	b[4] = 1;
	fill(b + 8, 16, 4);
}
static void dirid_sum(uint8_t *b) { put64(b + 24, XXH64(b, 24, 0)); }

static void dirids(void)
{
	uint8_t b[64] = { 0 };

	dirid_base(b); dirid_sum(b);
	out("ok-dirid", b, 32);

	out("dirid-EINVAL-empty", b, 0);
	memset(b, 0, 32);
	out("dirid-EINVAL-all-zero", b, 32);
	dirid_base(b); memcpy(b, "CKDJ", 4); dirid_sum(b);
	out("dirid-EINVAL-bad-magic-valid-checksum", b, 32);
	dirid_base(b); dirid_sum(b);
	out("dirid-EBADMSG-truncated-31", b, 31);
	out("dirid-EBADMSG-truncated-8", b, 8);
	b[32] = 0;
	out("dirid-EBADMSG-trailing-byte", b, 33);
	dirid_base(b); dirid_sum(b); b[24] ^= 1;
	out("dirid-EBADMSG-bad-checksum", b, 32);
	dirid_base(b); dirid_sum(b); b[12] ^= 1;
	out("dirid-EBADMSG-bitflip-in-id", b, 32);
	dirid_base(b); b[6] = 1; dirid_sum(b);
	out("dirid-EBADMSG-reserved-nonzero", b, 32);
	dirid_base(b); b[4] = 2; dirid_sum(b);
	out("dirid-EPROTONOSUPPORT-version-2", b, 32);
}

/* ---- file header (512 bytes; parse checks structure, not the MAC) ----
 * 0 "CKFH" | 4 version | 5 kind | 6 flags u16 | 8 file ID | 24 n_bind |
 * 25..31 reserved | 32 bindings 20 x 16 | 352 size box [36] |
 * 388..463 reserved | 464 tree ID | 480 HMAC [32] */
#define FH_LEN 512
static void fh_base(uint8_t *b)
{
	memset(b, 0, FH_LEN);
	memcpy(b, "CKFH", 4);
	b[4] = 1;
	b[5] = 1;
	fill(b + 8, 16, 5);
	b[24] = 1;
	fill(b + 32, 16, 6);
	fill(b + 352, 36, 9);           /* size box (opening it needs the key) */
	fill(b + 464, 16, 8);           /* tree ID */
	fill(b + 480, 32, 7);           /* MAC */
}

static void filehdrs(void)
{
	uint8_t b[FH_LEN + 64] = { 0 };

	fh_base(b);
	out("ok-filehdr", b, FH_LEN);
	b[24] = 20;                     /* every binding slot in use */
	fill(b + 32, 20 * 16, 6);
	out("ok-filehdr-20-bindings", b, FH_LEN);

	out("filehdr-EINVAL-empty", b, 0);
	memset(b, 0, FH_LEN);
	out("filehdr-EINVAL-all-zero", b, FH_LEN);
	fh_base(b); memcpy(b, "CKFI", 4);
	out("filehdr-EINVAL-bad-magic", b, FH_LEN);
	/* A volume header where a file header should be. */
	memset(b, 0, sizeof(b));
	vol_base(b); vol_sum(b);
	out("filehdr-EINVAL-volume-header", b, FH_LEN);
	fh_base(b);
	out("filehdr-EBADMSG-truncated-511", b, 511);
	out("filehdr-EBADMSG-truncated-4", b, 4);
	/* A header of the old 256-byte layout is cut short in this one. */
	out("filehdr-EBADMSG-truncated-256", b, 256);
	fh_base(b); b[4] = 2;
	out("filehdr-EPROTONOSUPPORT-version-2", b, FH_LEN);
	fh_base(b); b[4] = 0;
	out("filehdr-EPROTONOSUPPORT-version-0", b, FH_LEN);
	fh_base(b); b[5] = 2;
	out("filehdr-EBADMSG-kind-2", b, FH_LEN);
	fh_base(b); b[5] = 0;
	out("filehdr-EBADMSG-kind-0", b, FH_LEN);
	fh_base(b); b[24] = 21;
	out("filehdr-EBADMSG-n-bind-21", b, FH_LEN);
	fh_base(b); b[24] = 255;
	out("filehdr-EBADMSG-n-bind-255", b, FH_LEN);
	fh_base(b); b[7] = 0x80;
	out("filehdr-EBADMSG-unknown-flag-0x8000", b, FH_LEN);
	fh_base(b); b[6] = 0x02;
	out("filehdr-EBADMSG-unknown-flag-0x0002", b, FH_LEN);
	fh_base(b); b[28] = 1;
	out("filehdr-EBADMSG-reserved-nonzero", b, FH_LEN);
	fh_base(b); b[48] = 1;     /* slot 1 while n_bind is 1 */
	out("filehdr-EBADMSG-unused-binding-slot-nonzero", b, FH_LEN);
	fh_base(b); b[351] = 1;    /* last byte of slot 19 */
	out("filehdr-EBADMSG-last-binding-slot-nonzero", b, FH_LEN);
	fh_base(b); b[388] = 1;    /* first byte after the size box */
	out("filehdr-EBADMSG-reserved-after-size-box-nonzero", b, FH_LEN);
	fh_base(b); b[463] = 0x80; /* last byte before the tree ID */
	out("filehdr-EBADMSG-reserved-before-tree-id-nonzero", b, FH_LEN);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_evil DIR\n");
		return 2;
	}
	dir = argv[1];
	volumes();
	keyfiles();
	dirids();
	filehdrs();
	return 0;
}
