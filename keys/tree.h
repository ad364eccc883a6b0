/* A tree's keys and the keys derived from them. A tree is the unit of
 * ownership (a mailbox, a site, or the volume's service tree). */
#ifndef CK_TREE_H
#define CK_TREE_H
#include <stdint.h>
#include "crypto.h"
#include "format.h"

struct ck_tree {
	uint8_t volume_id[CK_ID_LEN];
	uint8_t id[CK_ID_LEN];
	/* Secrets, in ck_secret_alloc memory. Set by ck_tree_init, wiped by
	 * ck_tree_release; read-only in between, so no lock is needed. */
	uint8_t *key;           /* CK_KEY_LEN: tree key */
	uint8_t *name_key;      /* CK_SIV_KEY_LEN: names */
	uint8_t *xname_key;     /* CK_SIV_KEY_LEN: xattr names */
	uint8_t *symlink_key;   /* CK_KEY_LEN */
	uint8_t *xvalue_key;    /* CK_KEY_LEN */
};

int ck_tree_init(struct ck_tree *t, const uint8_t volume_id[static CK_ID_LEN],
                 const uint8_t tree_id[static CK_ID_LEN],
                 const uint8_t tree_key[static CK_KEY_LEN]) CK_WUR;
void ck_tree_release(struct ck_tree *t);

/* Per-file keys, derived from the tree key and the file ID. */
struct ck_file_keys {
	uint8_t *content;   /* CK_KEY_LEN, secret */
	uint8_t *header;    /* CK_KEY_LEN, secret */
	uint8_t *size;      /* CK_KEY_LEN, secret */
	/* Reusable GCM contexts under content and size (set by derive when
	 * that key is derived; freed, key schedules wiped, by release). */
	struct ck_gcm_pool *content_gcm, *size_gcm;
};
int ck_file_keys_derive(const struct ck_tree *t, const uint8_t file_id[static CK_ID_LEN],
                        struct ck_file_keys *k) CK_WUR;
/* Only the keys in which (CK_FK_* bits); the others stay NULL. The header
 * key alone checks a header and its bindings, header and size read the
 * size: each key not needed saves one HKDF. */
#define CK_FK_CONTENT 1
#define CK_FK_HEADER  2
#define CK_FK_SIZE    4
#define CK_FK_ALL     7
int ck_file_keys_derive_some(const struct ck_tree *t, const uint8_t file_id[static CK_ID_LEN],
                             struct ck_file_keys *k, int which) CK_WUR;
void ck_file_keys_release(struct ck_file_keys *k);

#endif
