/* Every HKDF derivation in ckfs has its own context string here, defined
 * once (fscrypt's rule: one derived key, one context). The strings are part
 * of the on-disk format: changing one makes existing volumes unreadable, so
 * a change needs a format version bump (docs/FORMAT.md). */
#ifndef CK_KDF_LABELS_H
#define CK_KDF_LABELS_H

/* service key -> key of the service tree (everything no DEP covers) */
#define CK_LABEL_SERVICE_TREE   "ckfs v1 service tree key"
/* service key -> HMAC key authenticating the volume header */
#define CK_LABEL_VOLUME_MAC     "ckfs v1 volume header mac"
/* tree key -> AES-SIV key (64 bytes) for file and directory names */
#define CK_LABEL_NAMES          "ckfs v1 names siv"
/* tree key -> master for per-file keys; info is label || file ID */
#define CK_LABEL_FILE_KEY       "ckfs v1 file key"
/* file key -> AES-256-GCM key for content blocks */
#define CK_LABEL_FILE_CONTENT   "ckfs v1 file content"
/* file key -> HMAC key for the file header and its link bindings */
#define CK_LABEL_FILE_HEADER    "ckfs v1 file header mac"
/* file key -> AES-256-GCM key sealing the plaintext size in the header */
#define CK_LABEL_FILE_SIZE      "ckfs v1 file size"
/* tree key -> AES-256-GCM key for symlink targets */
#define CK_LABEL_SYMLINK        "ckfs v1 symlink target"
/* tree key -> AES-SIV key (64 bytes) for xattr names */
#define CK_LABEL_XATTR_NAME     "ckfs v1 xattr name siv"
/* tree key -> AES-256-GCM key for xattr values */
#define CK_LABEL_XATTR_VALUE    "ckfs v1 xattr value"

/* service key -> AES-256-GCM key for DEP, tree and config records */
#define CK_LABEL_RECORDS        "ckfs v1 records"
/* service key -> HMAC key of the audit log chain */
#define CK_LABEL_AUDIT          "ckfs v1 audit mac"
/* service key -> HMAC key of purge certificates */
#define CK_LABEL_CERT           "ckfs v1 purge certificate"

#endif
