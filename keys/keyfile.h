/* Key files: a 256-bit key in a 0600 file outside the volume, in a key
 * directory that is 0700 (default /var/lib/ckfs/keys, or --key-dir, or
 * CKFS_KEY_DIR, or the key_dir= mount option). 72 bytes:
 * "CKFSKEY1" | version u32 | flags u32 | key ID [16] | key [32] | XXH64. */
#ifndef CK_KEYFILE_H
#define CK_KEYFILE_H
#include <stdint.h>
#include "crypto.h"

#define CK_KEYFILE_LEN 72
#define CK_KEY_DIR_DEFAULT "/var/lib/ckfs/keys"

int ck_keyfile_encode(const uint8_t id[static CK_ID_LEN], const uint8_t key[static CK_KEY_LEN],
                      uint8_t out[static CK_KEYFILE_LEN]) CK_WUR;
int ck_keyfile_decode(const uint8_t *buf, size_t n, uint8_t id[static CK_ID_LEN],
                      uint8_t key[static CK_KEY_LEN]) CK_WUR;
/* Create (O_EXCL, 0600, fsync'ed) / read a key file. Read errors:
 * -ENOENT, -EACCES, -EPERM (group/other may read it), -EBADMSG (corrupt). */
int ck_keyfile_write(const char *path, const uint8_t id[static CK_ID_LEN],
                     const uint8_t key[static CK_KEY_LEN]) CK_WUR;
int ck_keyfile_read(const char *path, uint8_t id[static CK_ID_LEN],
                    uint8_t key[static CK_KEY_LEN]) CK_WUR;
/* The key directory to use: explicit (may be NULL), else $CKFS_KEY_DIR,
 * else the default. */
const char *ck_key_dir(const char *explicit_dir);
/* Make sure dir exists (create 0700 if create) and is safe: a directory,
 * owned by root or us, not writable or readable by group or others.
 * -EPERM unsafe, -ENOTDIR, -ENOENT. */
int ck_key_dir_check(const char *dir, int create) CK_WUR;
/* <dir>/<hex id>.key */
void ck_keyfile_path(const char *dir, const uint8_t id[static CK_ID_LEN], char *out, size_t n);

#endif
