/* Shared by the libFuzzer targets (tests/fuzz/fuzz_*.c) and the seed
 * generator (tests/fuzz/make_corpus.c): the fixed keys and IDs that the
 * targets decode with, so that seeds made with them authenticate and the
 * fuzzer starts past the MAC and tag checks.
 *
 * These keys are test constants, public by design: they protect nothing.
 *
 * The targets never call ck_secmem_init(): without it ck_secret_alloc falls
 * back to plain malloc, which AddressSanitizer and LeakSanitizer watch (the
 * mlock'ed secure heap would hide overflows and leaks from them). */
#ifndef CK_FUZZ_H
#define CK_FUZZ_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/crypto.h"
#include "keys/format.h"
#include "keys/tree.h"
#include "keys/volume.h"

static const uint8_t fz_volume_id[CK_ID_LEN] = {
	0x76, 0x6f, 0x6c, 0x75, 0x6d, 0x65, 0x2d, 0x69, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x00, 0x01 };
static const uint8_t fz_tree_id[CK_ID_LEN] = {
	0x74, 0x72, 0x65, 0x65, 0x2d, 0x69, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t fz_file_id[CK_ID_LEN] = {
	0x66, 0x69, 0x6c, 0x65, 0x2d, 0x69, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x00, 0x00, 0x00, 0x03 };
static const uint8_t fz_dir_id[CK_ID_LEN] = {
	0x64, 0x69, 0x72, 0x2d, 0x69, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x00, 0x00, 0x00, 0x00, 0x04 };
static const uint8_t fz_record_id[CK_ID_LEN] = {
	0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x00, 0x00, 0x00, 0x00, 0x05 };
/* Tree key of the fixed tree: names, symlinks, xattrs, file keys. */
static const uint8_t fz_tree_key[CK_KEY_LEN] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f };
/* MAC key of the volume header (stands in for the one derived from the
 * service key with CK_LABEL_VOLUME_MAC). */
static const uint8_t fz_volume_mac_key[CK_KEY_LEN] = {
	0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f };
/* v->record_key of the hand-made volume the record targets decode with. */
static const uint8_t fz_record_key[CK_KEY_LEN] = {
	0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
	0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f };

/* v->cert_key of the volume the purge certificate target verifies with. */
static const uint8_t fz_cert_key[CK_KEY_LEN] = {
	0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f };

/* Record layout (keys/dep.c, docs/FORMAT.md): "CKREC1\0\0" | kind u8 |
 * version u8 | reserved u16 | ID [16] | nonce [12] | ciphertext | tag [16],
 * AAD = bytes 0..27. The targets seal fuzzed payloads into it so that the
 * payload parser is reached at all. */
#define FZ_REC_HDR 40
enum { FZ_KIND_DEP = 1, FZ_KIND_TREE = 2, FZ_KIND_CONFIG = 3 };

/* Abort with a message: a property the code promises does not hold. The
 * fuzzer reports it as a crash and keeps the input. */
#define FZ_CHECK(cond) do { if (!(cond)) fz_fail(#cond, __FILE__, __LINE__); } while (0)
__attribute__((noreturn)) void fz_fail(const char *what, const char *file, int line);

/* The fixed tree (volume fz_volume_id, tree fz_tree_id, key fz_tree_key). */
const struct ck_tree *fz_tree(void);
/* The hand-made volume: fd -1, record_key = fz_record_key, nothing else. */
const struct ck_volume *fz_record_volume(void);
/* Seal a record payload of kind under fz_record_key, with ID
 * fz_record_id and an all-zero nonce (deterministic). *out is malloc'ed. */
int fz_record_seal(int kind, const uint8_t *pl, size_t n, uint8_t **out, size_t *out_n);
/* Open a record sealed by ck_*_encode; *pl is malloc'ed. 0 or -EBADMSG. */
int fz_record_open(const uint8_t *rec, size_t n, uint8_t **pl, size_t *pl_n);
/* A NUL-terminated malloc'ed copy of data (libFuzzer's buffer is not). */
char *fz_strndup(const uint8_t *data, size_t n);

#endif
