/* Encrypted names, long names, symlink targets and xattrs. See names.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "format.h"
#include "names.h"
#include "secmem.h"
#include "util.h"

int ck_name_encrypt(const struct ck_tree *t, const uint8_t dir_id[static CK_ID_LEN],
                    const char *name, size_t n, char *out)
{
	uint8_t buf[CK_NAME_MAX + CK_SIV_TAG_LEN];
	const uint8_t *ad[] = { dir_id };
	size_t ad_len[] = { CK_ID_LEN };
	int r;

	if (n == 0 || n > CK_NAME_MAX || memchr(name, '/', n) || memchr(name, '\0', n) ||
	    (n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	if ((r = ck_siv_seal(t->name_key, CK_SIV_KEY_LEN, ad, ad_len, 1,
	                     (const uint8_t *)name, n, buf)) < 0)
		return r;
	ck_b64_encode(buf, n + CK_SIV_TAG_LEN, out);
	return 0;
}

int ck_name_decrypt(const struct ck_tree *t, const uint8_t dir_id[static CK_ID_LEN],
                    const char *enc, size_t n, char *out)
{
	uint8_t buf[CK_NAME_MAX + CK_SIV_TAG_LEN];
	const uint8_t *ad[] = { dir_id };
	size_t ad_len[] = { CK_ID_LEN };
	long len;
	int r;

	len = ck_b64_decode(enc, n, buf, sizeof(buf));
	if (len < 0 || len <= CK_SIV_TAG_LEN)
		return -EBADMSG;
	if ((r = ck_siv_open(t->name_key, CK_SIV_KEY_LEN, ad, ad_len, 1, buf, (size_t)len,
	                     (uint8_t *)out)) < 0)
		return -EBADMSG;
	len -= CK_SIV_TAG_LEN;
	out[len] = '\0';
	if (memchr(out, '/', (size_t)len) || strlen(out) != (size_t)len ||
	    !strcmp(out, ".") || !strcmp(out, ".."))
		return -EBADMSG;
	return (int)len;
}

int ck_long_names(const char *enc, size_t n, char entry[static CK_LONG_NAME_LEN + 1],
                  char side[static CK_LONG_NAME_LEN + 1])
{
	uint8_t h[CK_HASH_LEN];
	int r;

	if ((r = ck_sha256(enc, n, h)) < 0)
		return r;
	memcpy(entry, CK_LONG_PREFIX, 2);
	ck_b64_encode(h, sizeof(h), entry + 2);
	memcpy(side, CK_SIDE_PREFIX, 2);
	memcpy(side + 2, entry + 2, CK_LONG_NAME_LEN - 2 + 1);
	return 0;
}

int ck_name_reserved(const char *backing_name)
{
	return backing_name[0] == '.';
}

static int gcm_seal_with(const uint8_t *key, const uint8_t *aad, size_t aad_len,
                         const uint8_t *pt, size_t n, uint8_t *out)
{
	struct ck_gcm *g;
	int r;

	if ((r = ck_gcm_new(&g, key)) < 0)
		return r;
	if ((r = ck_nonce(out, CK_GCM_NONCE_LEN)) == 0)
		r = ck_gcm_seal(g, out, aad, aad_len, pt, n, out + CK_GCM_NONCE_LEN,
		                out + CK_GCM_NONCE_LEN + n);
	ck_gcm_free(g);
	return r;
}

static int gcm_open_with(const uint8_t *key, const uint8_t *aad, size_t aad_len,
                         const uint8_t *in, size_t n, uint8_t *out)
{
	struct ck_gcm *g;
	int r;

	if (n < CK_BLOCK_OVERHEAD)
		return -EBADMSG;
	if ((r = ck_gcm_new(&g, key)) < 0)
		return r;
	r = ck_gcm_open(g, in, aad, aad_len, in + CK_GCM_NONCE_LEN, n - CK_BLOCK_OVERHEAD,
	                out, in + n - CK_GCM_TAG_LEN);
	ck_gcm_free(g);
	return r < 0 ? r : (int)(n - CK_BLOCK_OVERHEAD);
}

static void symlink_aad(const struct ck_tree *t, uint8_t aad[2 * CK_ID_LEN])
{
	memcpy(aad, t->volume_id, CK_ID_LEN);
	memcpy(aad + CK_ID_LEN, t->id, CK_ID_LEN);
}

int ck_symlink_encrypt(const struct ck_tree *t, const char *target, size_t n,
                       char *out, size_t out_size)
{
	uint8_t buf[CK_SYMLINK_MAX + CK_BLOCK_OVERHEAD], aad[2 * CK_ID_LEN];
	int r;

	if (n == 0 || n > CK_SYMLINK_MAX)
		return -ENAMETOOLONG;
	if (ck_b64_enclen(n + CK_BLOCK_OVERHEAD) + 1 > out_size)
		return -ERANGE;
	symlink_aad(t, aad);
	if ((r = gcm_seal_with(t->symlink_key, aad, sizeof(aad), (const uint8_t *)target, n, buf)) < 0)
		return r;
	ck_b64_encode(buf, n + CK_BLOCK_OVERHEAD, out);
	return 0;
}

int ck_symlink_decrypt(const struct ck_tree *t, const char *enc, size_t n,
                       char *out, size_t out_size)
{
	uint8_t buf[CK_SYMLINK_MAX + CK_BLOCK_OVERHEAD], aad[2 * CK_ID_LEN];
	long len = ck_b64_decode(enc, n, buf, sizeof(buf));
	int r;

	if (len < CK_BLOCK_OVERHEAD)
		return -EBADMSG;
	if ((size_t)len - CK_BLOCK_OVERHEAD + 1 > out_size)
		return -ERANGE;
	symlink_aad(t, aad);
	if ((r = gcm_open_with(t->symlink_key, aad, sizeof(aad), buf, (size_t)len,
	                       (uint8_t *)out)) < 0)
		return r;
	out[r] = '\0';
	return r;
}

int ck_xattr_name_encrypt(const struct ck_tree *t, const char *name, char *out, size_t out_size)
{
	uint8_t buf[CK_XATTR_NAME_MAX + CK_SIV_TAG_LEN];
	const uint8_t *ad[] = { t->id };
	size_t ad_len[] = { CK_ID_LEN };
	size_t n = strlen(name), pl = strlen(CK_XATTR_PREFIX);
	int r;

	if (n == 0 || n > CK_XATTR_NAME_MAX)
		return -ERANGE;
	if (strncmp(name, "user.", 5) != 0)
		return -EOPNOTSUPP;
	if (pl + ck_b64_enclen(n + CK_SIV_TAG_LEN) > CK_XATTR_NAME_MAX)
		return -ENAMETOOLONG;
	if (pl + ck_b64_enclen(n + CK_SIV_TAG_LEN) + 1 > out_size)
		return -ERANGE;
	if ((r = ck_siv_seal(t->xname_key, CK_SIV_KEY_LEN, ad, ad_len, 1,
	                     (const uint8_t *)name, n, buf)) < 0)
		return r;
	memcpy(out, CK_XATTR_PREFIX, pl);
	ck_b64_encode(buf, n + CK_SIV_TAG_LEN, out + pl);
	return 0;
}

int ck_xattr_name_decrypt(const struct ck_tree *t, const char *backing, char *out, size_t out_size)
{
	uint8_t buf[CK_XATTR_NAME_MAX + CK_SIV_TAG_LEN];
	const uint8_t *ad[] = { t->id };
	size_t ad_len[] = { CK_ID_LEN };
	size_t pl = strlen(CK_XATTR_PREFIX);
	long len;

	if (strncmp(backing, CK_XATTR_PREFIX, pl) != 0)
		return -EINVAL;
	len = ck_b64_decode(backing + pl, strlen(backing + pl), buf, sizeof(buf));
	if (len <= CK_SIV_TAG_LEN)
		return -EBADMSG;
	if ((size_t)len - CK_SIV_TAG_LEN + 1 > out_size)
		return -ERANGE;
	if (ck_siv_open(t->xname_key, CK_SIV_KEY_LEN, ad, ad_len, 1, buf, (size_t)len,
	                (uint8_t *)out) < 0)
		return -EBADMSG;
	len -= CK_SIV_TAG_LEN;
	out[len] = '\0';
	if (strlen(out) != (size_t)len)
		return -EBADMSG;
	return (int)len;
}

int ck_xattr_value_encrypt(const struct ck_tree *t, const char *backing_name,
                           const uint8_t *v, size_t n, uint8_t *out)
{
	return gcm_seal_with(t->xvalue_key, (const uint8_t *)backing_name,
	                     strlen(backing_name), v, n, out);
}

int ck_xattr_value_decrypt(const struct ck_tree *t, const char *backing_name,
                           const uint8_t *in, size_t n, uint8_t *out)
{
	return gcm_open_with(t->xvalue_key, (const uint8_t *)backing_name,
	                     strlen(backing_name), in, n, out);
}
