/* On-disk codecs: one encode and one decode path per structure.
 * Every byte is described in docs/FORMAT.md; all integers little-endian.
 * Decoders return 0 or a negative errno:
 *   -EINVAL       not this kind of structure (bad magic)
 *   -EBADMSG      corrupt (checksum or MAC mismatch, bad field)
 *   -EPROTONOSUPPORT  a version this build does not know */
#ifndef CK_FORMAT_H
#define CK_FORMAT_H
#include <stdint.h>
#include <stddef.h>
#include "crypto.h"

#define CK_FORMAT_VERSION 1

/* ---- volume header: <volume>/.ckfs/volume, 256 bytes ---- */
#define CK_VOLUME_DIR       ".ckfs"
#define CK_VOLUME_HDR_NAME  "volume"
#define CK_VOLUME_HDR_LEN   256
#define CK_WRAPPED_KEY_LEN  (CK_KEY_LEN + CK_WRAP_OVERHEAD)

struct ck_volume_hdr {
	uint32_t version;
	uint32_t flags;                       /* none defined; must be 0 */
	uint32_t block_size;                  /* plaintext bytes per block */
	uint64_t created;                     /* unix seconds */
	uint8_t volume_id[CK_ID_LEN];
	uint8_t service_tree_id[CK_ID_LEN];
	uint8_t kek_id[CK_ID_LEN];            /* names the key file */
	uint8_t wrapped_service_key[CK_WRAPPED_KEY_LEN]; /* RFC 5649 under KEK */
	uint8_t mac[CK_HASH_LEN];             /* HMAC under the service key */
};
/* mac_key may be NULL while parsing; encode then writes a zero MAC. */
int ck_volume_hdr_encode(const struct ck_volume_hdr *h, const uint8_t *mac_key,
                         uint8_t out[static CK_VOLUME_HDR_LEN]) CK_WUR;
/* Parses and checks magic, version and checksum (no key needed). */
int ck_volume_hdr_decode(const uint8_t *buf, size_t n, struct ck_volume_hdr *h) CK_WUR;
/* Checks the MAC once the service key is known. -EBADMSG on mismatch. */
int ck_volume_hdr_verify(const uint8_t buf[static CK_VOLUME_HDR_LEN],
                         const uint8_t mac_key[static CK_KEY_LEN]) CK_WUR;

/* ---- directory ID file: in every backing directory, 32 bytes ---- */
#define CK_DIRID_NAME "ckfs.dir"      /* prefixed by '.', see CK_DIRID_FILE */
#define CK_DIRID_FILE ".ckfs.dir"
#define CK_DIRID_LEN  32
int ck_dirid_encode(const uint8_t id[static CK_ID_LEN], uint8_t out[static CK_DIRID_LEN]);
int ck_dirid_decode(const uint8_t *buf, size_t n, uint8_t id[static CK_ID_LEN]) CK_WUR;

/* ---- file header: first 512 bytes of every regular file ---- */
#define CK_FILE_HDR_LEN   512
#define CK_MAX_LINKS      20       /* link bindings that fit in the header */
#define CK_SIZE_BOX_LEN   (CK_GCM_NONCE_LEN + 8 + CK_GCM_TAG_LEN)   /* sealed size */
#define CK_BINDING_LEN    16
#define CK_FILE_SPARSE    0x0001   /* all-zero ciphertext blocks are holes */
#define CK_FILE_KNOWN_FLAGS CK_FILE_SPARSE

struct ck_file_ref;
struct ck_file_hdr {
	uint8_t version;
	uint8_t kind;                         /* 1: regular file */
	uint16_t flags;
	uint8_t file_id[CK_ID_LEN];
	uint8_t n_bind;
	uint8_t bind[CK_MAX_LINKS][CK_BINDING_LEN];
	/* The plaintext size, sealed (AES-256-GCM under the file's size key):
	 * the backing size shows only the number of blocks. */
	uint8_t size_box[CK_SIZE_BOX_LEN];
	uint8_t tree_id[CK_ID_LEN];           /* tree whose key encrypts it */
};
/* Seal / open the plaintext size into / from h->size_box. */
int ck_file_size_seal(struct ck_gcm *size_key, const struct ck_file_ref *ref, uint64_t size,
                      uint8_t box[static CK_SIZE_BOX_LEN]) CK_WUR;
int ck_file_size_open(struct ck_gcm *size_key, const struct ck_file_ref *ref,
                      const uint8_t box[static CK_SIZE_BOX_LEN], uint64_t *size) CK_WUR;
/* Identity a header is bound to: the volume and tree it lives in. */
struct ck_file_ref {
	const uint8_t *volume_id;
	const uint8_t *tree_id;
	const uint8_t *file_id;
};
int ck_file_hdr_encode(const struct ck_file_hdr *h, const struct ck_file_ref *ref,
                       const uint8_t hdr_key[static CK_KEY_LEN],
                       uint8_t out[static CK_FILE_HDR_LEN]) CK_WUR;
/* Parse without a key (to learn the file ID), then verify with it. */
int ck_file_hdr_parse(const uint8_t *buf, size_t n, struct ck_file_hdr *h) CK_WUR;
int ck_file_hdr_verify(const uint8_t buf[static CK_FILE_HDR_LEN],
                       const struct ck_file_ref *ref,
                       const uint8_t hdr_key[static CK_KEY_LEN]) CK_WUR;
/* The binding of a file to one of its names: (directory ID, plaintext name). */
int ck_binding(const uint8_t hdr_key[static CK_KEY_LEN],
               const uint8_t dir_id[static CK_ID_LEN],
               const char *name, size_t name_len,
               uint8_t out[static CK_BINDING_LEN]) CK_WUR;
int ck_file_hdr_has_binding(const struct ck_file_hdr *h, const uint8_t b[static CK_BINDING_LEN]);
/* Adds b if absent: 0, or -EMLINK when full. */
int ck_file_hdr_add_binding(struct ck_file_hdr *h, const uint8_t b[static CK_BINDING_LEN]);
void ck_file_hdr_del_binding(struct ck_file_hdr *h, const uint8_t b[static CK_BINDING_LEN]);

/* ---- content blocks ---- */
#define CK_BLOCK_SIZE      4096
#define CK_BLOCK_OVERHEAD  (CK_GCM_NONCE_LEN + CK_GCM_TAG_LEN)
#define CK_CBLOCK_SIZE     (CK_BLOCK_SIZE + CK_BLOCK_OVERHEAD)
#define CK_BLOCK_AAD_LEN   58

/* Seal n <= CK_BLOCK_SIZE bytes into out (n + CK_BLOCK_OVERHEAD bytes):
 * fresh random nonce || ciphertext || tag. */
int ck_block_seal(struct ck_gcm *g, const struct ck_file_ref *ref,
                  uint64_t blockno, int last,
                  const uint8_t *pt, size_t n, uint8_t *out) CK_WUR;
/* Open in_len bytes; returns the plaintext length or -EBADMSG. */
int ck_block_open(struct ck_gcm *g, const struct ck_file_ref *ref,
                  uint64_t blockno, int last,
                  const uint8_t *in, size_t in_len, uint8_t *pt) CK_WUR;
/* 1 if every byte is zero (a hole in the backing file). */
int ck_block_is_hole(const uint8_t *in, size_t n);

/* Every block on disk is a full CK_CBLOCK_SIZE (the final one is padded
 * with zeros inside the encryption), so a file of plain_size bytes has
 * this backing size: the header and final_block + 1 blocks. */
uint64_t ck_backing_size(uint64_t plain_size);
/* Index of the final block of a file of plain_size bytes (>= 0; every
 * file, even an empty one, has a final block). */
static inline uint64_t ck_final_block(uint64_t plain_size)
{ return plain_size ? (plain_size - 1) / CK_BLOCK_SIZE : 0; }
static inline uint64_t ck_block_offset(uint64_t blockno)
{ return CK_FILE_HDR_LEN + blockno * (uint64_t)CK_CBLOCK_SIZE; }

#endif
