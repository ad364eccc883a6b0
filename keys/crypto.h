/* The small crypto API of ckfs. keys/crypto.c is the only file that
 * includes OpenSSL's EVP headers; everything else calls these.
 * All functions return 0 or a negative errno: -EBADMSG when authentication
 * fails, -EINVAL for bad lengths, -EIO for an OpenSSL failure. */
#ifndef CK_CRYPTO_H
#define CK_CRYPTO_H
#include <stddef.h>
#include <stdint.h>

#define CK_KEY_LEN        32   /* AES-256 and HMAC-SHA256 keys */
#define CK_SIV_KEY_LEN    64   /* AES-256-SIV: two AES-256 keys */
#define CK_ID_LEN         16   /* volume, tree, file and directory IDs */
#define CK_GCM_NONCE_LEN  12
#define CK_GCM_TAG_LEN    16
#define CK_SIV_TAG_LEN    16
#define CK_HASH_LEN       32   /* SHA-256, HMAC-SHA256 */
#define CK_WRAP_OVERHEAD   8   /* RFC 5649 adds 8 bytes to a 32-byte key */

#define CK_WUR __attribute__((warn_unused_result))

int ck_random(void *buf, size_t n) CK_WUR;
/* Random bytes for public values only (GCM nonces, written in the clear):
 * served from a per-thread buffer filled by the same generator, since one
 * RAND_bytes call per 12-byte nonce cost as much as sealing a 4 KiB block.
 * Never for keys or IDs (the buffer holds future output in memory). The
 * buffer is dropped in a forked child, so no nonce is handed out twice. */
int ck_nonce(void *buf, size_t n) CK_WUR;

/* HKDF-SHA256 (RFC 5869), extract and expand. salt may be NULL. */
int ck_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
                   const uint8_t *salt, size_t salt_len,
                   const uint8_t *info, size_t info_len,
                   uint8_t *out, size_t out_len) CK_WUR;

/* HMAC-SHA256 over the concatenation of n parts. */
int ck_hmac_sha256(const uint8_t key[static CK_KEY_LEN],
                   const void *const parts[], const size_t lens[], int n,
                   uint8_t out[static CK_HASH_LEN]) CK_WUR;
int ck_sha256(const void *data, size_t n, uint8_t out[static CK_HASH_LEN]) CK_WUR;

/* AES-256-GCM with a key set once and reused for many blocks (the key
 * schedule lives inside the context, which OpenSSL wipes on free). */
struct ck_gcm;
int ck_gcm_new(struct ck_gcm **out, const uint8_t key[static CK_KEY_LEN]) CK_WUR;
void ck_gcm_free(struct ck_gcm *g);

/* A thread-safe pool of GCM contexts under one key, so that a context is
 * set up once and reused by request after request instead of per request.
 * The pool keeps a pointer to key (which must outlive it), not a copy.
 * get hands out an idle context (or a new one), put gives it back; free
 * frees every idle context (wiping its key schedule): no context may be
 * out then. */
struct ck_gcm_pool;
int ck_gcm_pool_new(struct ck_gcm_pool **out, const uint8_t key[static CK_KEY_LEN]) CK_WUR;
int ck_gcm_pool_get(struct ck_gcm_pool *p, struct ck_gcm **g) CK_WUR;
void ck_gcm_pool_put(struct ck_gcm_pool *p, struct ck_gcm *g);
void ck_gcm_pool_free(struct ck_gcm_pool *p);
int ck_gcm_seal(struct ck_gcm *g, const uint8_t nonce[static CK_GCM_NONCE_LEN],
                const uint8_t *aad, size_t aad_len,
                const uint8_t *pt, size_t n, uint8_t *ct,
                uint8_t tag[static CK_GCM_TAG_LEN]) CK_WUR;
int ck_gcm_open(struct ck_gcm *g, const uint8_t nonce[static CK_GCM_NONCE_LEN],
                const uint8_t *aad, size_t aad_len,
                const uint8_t *ct, size_t n, uint8_t *pt,
                const uint8_t tag[static CK_GCM_TAG_LEN]) CK_WUR;

/* AES-SIV (RFC 5297), deterministic authenticated encryption.
 * key_len is 32 (AES-128-SIV, for the RFC vectors) or 64 (AES-256-SIV,
 * what ckfs uses). ad[] is the vector of associated data strings.
 * out receives V || C, i.e. n + CK_SIV_TAG_LEN bytes (RFC 5297 layout).
 * n must be at least 1 (-EINVAL): OpenSSL 3.0 cannot seal an empty one. */
int ck_siv_seal(const uint8_t *key, size_t key_len,
                const uint8_t *const ad[], const size_t ad_len[], int n_ad,
                const uint8_t *pt, size_t n, uint8_t *out) CK_WUR;
/* in is V || C of in_len bytes; pt receives in_len - 16 bytes. */
int ck_siv_open(const uint8_t *key, size_t key_len,
                const uint8_t *const ad[], const size_t ad_len[], int n_ad,
                const uint8_t *in, size_t in_len, uint8_t *pt) CK_WUR;
/* Drop the cached SIV contexts of key (before the key is freed). */
void ck_siv_forget(const uint8_t *key, size_t key_len);

/* AES-256 key wrap with padding (RFC 5649). out holds n + 8 bytes
 * (rounded up to 8); *out_len is set. Unwrap returns -EBADMSG on a wrong
 * KEK or a corrupt wrap. */
int ck_key_wrap(const uint8_t kek[static CK_KEY_LEN], const uint8_t *key,
                size_t n, uint8_t *out, size_t *out_len) CK_WUR;
int ck_key_unwrap(const uint8_t kek[static CK_KEY_LEN], const uint8_t *in,
                  size_t n, uint8_t *key, size_t *key_len) CK_WUR;

#endif
