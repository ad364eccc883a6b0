/* Encrypted names, long names, symlink targets and xattrs.
 * Names: AES-256-SIV with the directory ID as associated data, base64url.
 * A name whose encoding exceeds CK_NAME_MAX is stored as a long name:
 * the backing entry is ".L" + base64url(SHA-256(encoded)) and a sidecar
 * ".N" + the same hash holds the full encoded name. */
#ifndef CK_NAMES_H
#define CK_NAMES_H
#include <stddef.h>
#include <stdint.h>
#include "crypto.h"
#include "tree.h"

#define CK_NAME_MAX        255   /* plaintext and backing name limit */
#define CK_ENC_NAME_MAX    (((CK_NAME_MAX + CK_SIV_TAG_LEN) / 3 + 1) * 4 + 1)
#define CK_LONG_PREFIX     ".L"
#define CK_SIDE_PREFIX     ".N"
#define CK_LONG_NAME_LEN   (2 + 43)

/* Encrypt a plaintext name (1..255 bytes, no '/', not "." or "..") into
 * its base64url form; out must hold CK_ENC_NAME_MAX bytes. */
int ck_name_encrypt(const struct ck_tree *t, const uint8_t dir_id[static CK_ID_LEN],
                    const char *name, size_t n, char *out) CK_WUR;
/* Decrypt an encoded name; out holds CK_NAME_MAX + 1 bytes. Returns the
 * plaintext length, or -EBADMSG / -EINVAL. */
int ck_name_decrypt(const struct ck_tree *t, const uint8_t dir_id[static CK_ID_LEN],
                    const char *enc, size_t n, char *out) CK_WUR;
/* 1 if an encoded name must be stored as a long name. */
static inline int ck_name_is_long(size_t enc_len) { return enc_len > CK_NAME_MAX; }
/* The backing entry name (".L...") and sidecar name (".N...") for it. */
int ck_long_names(const char *enc, size_t n, char entry[static CK_LONG_NAME_LEN + 1],
                  char side[static CK_LONG_NAME_LEN + 1]) CK_WUR;
/* 1 if a backing entry is ckfs metadata, not a user entry. */
int ck_name_reserved(const char *backing_name);

/* Symlink targets: base64url(nonce || GCM(target) || tag); at most
 * CK_SYMLINK_MAX plaintext bytes so that the result fits PATH_MAX. */
#define CK_SYMLINK_MAX 3000
int ck_symlink_encrypt(const struct ck_tree *t, const char *target, size_t n,
                       char *out, size_t out_size) CK_WUR;
/* Returns the plaintext length, or a negative errno. */
int ck_symlink_decrypt(const struct ck_tree *t, const char *enc, size_t n,
                       char *out, size_t out_size) CK_WUR;
/* Plaintext length of an encrypted target of n characters. */
static inline long ck_symlink_plain_len(size_t n)
{ size_t b = (n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0);
  return b < 28 ? 0 : (long)(b - 28); }

/* Xattrs: backing name "user.ck." + base64url(SIV(name)); value GCM with
 * the encrypted name as associated data. Only "user." names are accepted. */
#define CK_XATTR_PREFIX      "user.ck."
#define CK_XATTR_NAME_MAX    255
int ck_xattr_name_encrypt(const struct ck_tree *t, const char *name, char *out, size_t out_size) CK_WUR;
int ck_xattr_name_decrypt(const struct ck_tree *t, const char *backing, char *out, size_t out_size) CK_WUR;
/* out holds n + CK_BLOCK_OVERHEAD bytes. */
int ck_xattr_value_encrypt(const struct ck_tree *t, const char *backing_name,
                           const uint8_t *v, size_t n, uint8_t *out) CK_WUR;
int ck_xattr_value_decrypt(const struct ck_tree *t, const char *backing_name,
                           const uint8_t *in, size_t n, uint8_t *out) CK_WUR;

#endif
