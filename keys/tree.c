/* Tree keys and per-file keys. See tree.h and kdf_labels.h. */
#include <errno.h>
#include <string.h>
#include "kdf_labels.h"
#include "secmem.h"
#include "tree.h"

static int derive(const uint8_t *ikm, const char *label, const uint8_t *ctx, size_t ctx_len,
                  uint8_t *out, size_t out_len)
{
	uint8_t info[64 + CK_ID_LEN];
	size_t l = strlen(label);

	memcpy(info, label, l);
	if (ctx_len)
		memcpy(info + l, ctx, ctx_len);
	return ck_hkdf_sha256(ikm, CK_KEY_LEN, NULL, 0, info, l + ctx_len, out, out_len);
}

int ck_tree_init(struct ck_tree *t, const uint8_t volume_id[static CK_ID_LEN],
                 const uint8_t tree_id[static CK_ID_LEN],
                 const uint8_t tree_key[static CK_KEY_LEN])
{
	int r = -ENOMEM;

	memset(t, 0, sizeof(*t));
	memcpy(t->volume_id, volume_id, CK_ID_LEN);
	memcpy(t->id, tree_id, CK_ID_LEN);
	t->key = ck_secret_alloc(CK_KEY_LEN);
	t->name_key = ck_secret_alloc(CK_SIV_KEY_LEN);
	t->xname_key = ck_secret_alloc(CK_SIV_KEY_LEN);
	t->symlink_key = ck_secret_alloc(CK_KEY_LEN);
	t->xvalue_key = ck_secret_alloc(CK_KEY_LEN);
	if (!t->key || !t->name_key || !t->xname_key || !t->symlink_key || !t->xvalue_key)
		goto out;
	memcpy(t->key, tree_key, CK_KEY_LEN);
	if ((r = derive(t->key, CK_LABEL_NAMES, NULL, 0, t->name_key, CK_SIV_KEY_LEN)) < 0 ||
	    (r = derive(t->key, CK_LABEL_XATTR_NAME, NULL, 0, t->xname_key, CK_SIV_KEY_LEN)) < 0 ||
	    (r = derive(t->key, CK_LABEL_SYMLINK, NULL, 0, t->symlink_key, CK_KEY_LEN)) < 0 ||
	    (r = derive(t->key, CK_LABEL_XATTR_VALUE, NULL, 0, t->xvalue_key, CK_KEY_LEN)) < 0)
		goto out;
	return 0;
out:
	ck_tree_release(t);
	return r;
}

void ck_tree_release(struct ck_tree *t)
{
	ck_siv_forget(t->name_key, CK_SIV_KEY_LEN);
	ck_siv_forget(t->xname_key, CK_SIV_KEY_LEN);
	ck_secret_free(t->key, CK_KEY_LEN);
	ck_secret_free(t->name_key, CK_SIV_KEY_LEN);
	ck_secret_free(t->xname_key, CK_SIV_KEY_LEN);
	ck_secret_free(t->symlink_key, CK_KEY_LEN);
	ck_secret_free(t->xvalue_key, CK_KEY_LEN);
	t->key = t->name_key = t->xname_key = t->symlink_key = t->xvalue_key = NULL;
}

int ck_file_keys_derive(const struct ck_tree *t, const uint8_t file_id[static CK_ID_LEN],
                        struct ck_file_keys *k)
{
	return ck_file_keys_derive_some(t, file_id, k, CK_FK_ALL);
}

int ck_file_keys_derive_some(const struct ck_tree *t, const uint8_t file_id[static CK_ID_LEN],
                             struct ck_file_keys *k, int which)
{
	uint8_t *fk = ck_secret_alloc(CK_KEY_LEN);
	int r = -ENOMEM;

	memset(k, 0, sizeof(*k));
	if (!fk)
		goto out;
	if (((which & CK_FK_CONTENT) && !(k->content = ck_secret_alloc(CK_KEY_LEN))) ||
	    ((which & CK_FK_HEADER) && !(k->header = ck_secret_alloc(CK_KEY_LEN))) ||
	    ((which & CK_FK_SIZE) && !(k->size = ck_secret_alloc(CK_KEY_LEN))))
		goto out;
	if ((r = derive(t->key, CK_LABEL_FILE_KEY, file_id, CK_ID_LEN, fk, CK_KEY_LEN)) < 0 ||
	    (k->content && (r = derive(fk, CK_LABEL_FILE_CONTENT, NULL, 0, k->content, CK_KEY_LEN)) < 0) ||
	    (k->header && (r = derive(fk, CK_LABEL_FILE_HEADER, NULL, 0, k->header, CK_KEY_LEN)) < 0) ||
	    (k->size && (r = derive(fk, CK_LABEL_FILE_SIZE, NULL, 0, k->size, CK_KEY_LEN)) < 0))
		goto out;
	if ((k->content && (r = ck_gcm_pool_new(&k->content_gcm, k->content)) < 0) ||
	    (k->size && (r = ck_gcm_pool_new(&k->size_gcm, k->size)) < 0))
		goto out;
out:
	ck_secret_free(fk, CK_KEY_LEN);
	if (r < 0)
		ck_file_keys_release(k);
	return r;
}

void ck_file_keys_release(struct ck_file_keys *k)
{
	ck_gcm_pool_free(k->content_gcm);
	ck_gcm_pool_free(k->size_gcm);
	ck_secret_free(k->content, CK_KEY_LEN);
	ck_secret_free(k->header, CK_KEY_LEN);
	ck_secret_free(k->size, CK_KEY_LEN);
	k->content = k->header = k->size = NULL;
	k->content_gcm = k->size_gcm = NULL;
}
