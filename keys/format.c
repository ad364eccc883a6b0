/* On-disk codecs for the volume header, directory IDs, file headers and
 * content blocks. Layouts are in docs/FORMAT.md; keep the two in step. */
#include <errno.h>
#include <string.h>
#include "format.h"
#include "secmem.h"
#include "util.h"

static const uint8_t vol_magic[8] = "CKFSVOL";   /* 7 chars + NUL */

/* Volume header offsets. */
enum {
	VH_MAGIC = 0, VH_VERSION = 8, VH_FLAGS = 12, VH_BLOCK = 16,
	VH_CREATED = 24, VH_VOLID = 32, VH_TREEID = 48, VH_KEKID = 64,
	VH_WRAPPED = 80, VH_MAC = 120, VH_MAC_END = 152, VH_SUM = 248,
};

int ck_volume_hdr_encode(const struct ck_volume_hdr *h, const uint8_t *mac_key,
                         uint8_t out[static CK_VOLUME_HDR_LEN])
{
	int r;

	memset(out, 0, CK_VOLUME_HDR_LEN);
	memcpy(out + VH_MAGIC, vol_magic, 8);
	ck_put32(out + VH_VERSION, h->version);
	ck_put32(out + VH_FLAGS, h->flags);
	ck_put32(out + VH_BLOCK, h->block_size);
	ck_put64(out + VH_CREATED, h->created);
	memcpy(out + VH_VOLID, h->volume_id, CK_ID_LEN);
	memcpy(out + VH_TREEID, h->service_tree_id, CK_ID_LEN);
	memcpy(out + VH_KEKID, h->kek_id, CK_ID_LEN);
	memcpy(out + VH_WRAPPED, h->wrapped_service_key, CK_WRAPPED_KEY_LEN);
	if (mac_key) {
		const void *parts[] = { out };
		size_t lens[] = { VH_MAC };
		if ((r = ck_hmac_sha256(mac_key, parts, lens, 1, out + VH_MAC)) < 0)
			return r;
	}
	ck_put64(out + VH_SUM, ck_checksum(out, VH_SUM));
	return 0;
}

int ck_volume_hdr_decode(const uint8_t *buf, size_t n, struct ck_volume_hdr *h)
{
	if (n < 8 || memcmp(buf, vol_magic, 8) != 0)
		return -EINVAL;
	if (n != CK_VOLUME_HDR_LEN)
		return -EBADMSG;
	if (ck_get64(buf + VH_SUM) != ck_checksum(buf, VH_SUM))
		return -EBADMSG;
	memset(h, 0, sizeof(*h));
	h->version = ck_get32(buf + VH_VERSION);
	if (h->version != CK_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	h->flags = ck_get32(buf + VH_FLAGS);
	h->block_size = ck_get32(buf + VH_BLOCK);
	if (h->flags != 0 || h->block_size != CK_BLOCK_SIZE)
		return -EBADMSG;
	for (int i = VH_MAC_END; i < VH_SUM; i++)
		if (buf[i])
			return -EBADMSG;
	h->created = ck_get64(buf + VH_CREATED);
	memcpy(h->volume_id, buf + VH_VOLID, CK_ID_LEN);
	memcpy(h->service_tree_id, buf + VH_TREEID, CK_ID_LEN);
	memcpy(h->kek_id, buf + VH_KEKID, CK_ID_LEN);
	memcpy(h->wrapped_service_key, buf + VH_WRAPPED, CK_WRAPPED_KEY_LEN);
	memcpy(h->mac, buf + VH_MAC, CK_HASH_LEN);
	return 0;
}

int ck_volume_hdr_verify(const uint8_t buf[static CK_VOLUME_HDR_LEN],
                         const uint8_t mac_key[static CK_KEY_LEN])
{
	uint8_t mac[CK_HASH_LEN];
	const void *parts[] = { buf };
	size_t lens[] = { VH_MAC };
	int r;

	if ((r = ck_hmac_sha256(mac_key, parts, lens, 1, mac)) < 0)
		return r;
	return ck_memeq(mac, buf + VH_MAC, CK_HASH_LEN) ? 0 : -EBADMSG;
}

static const uint8_t dirid_magic[4] = { 'C', 'K', 'D', 'I' };

int ck_dirid_encode(const uint8_t id[static CK_ID_LEN], uint8_t out[static CK_DIRID_LEN])
{
	memset(out, 0, CK_DIRID_LEN);
	memcpy(out, dirid_magic, 4);
	out[4] = CK_FORMAT_VERSION;
	memcpy(out + 8, id, CK_ID_LEN);
	ck_put64(out + 24, ck_checksum(out, 24));
	return 0;
}

int ck_dirid_decode(const uint8_t *buf, size_t n, uint8_t id[static CK_ID_LEN])
{
	if (n < 4 || memcmp(buf, dirid_magic, 4) != 0)
		return -EINVAL;
	if (n != CK_DIRID_LEN || ck_get64(buf + 24) != ck_checksum(buf, 24))
		return -EBADMSG;
	if (buf[4] != CK_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	if (buf[5] || buf[6] || buf[7])
		return -EBADMSG;
	memcpy(id, buf + 8, CK_ID_LEN);
	return 0;
}

static const uint8_t file_magic[4] = { 'C', 'K', 'F', 'H' };

enum {
	FH_MAGIC = 0, FH_VERSION = 4, FH_KIND = 5, FH_FLAGS = 6, FH_FILEID = 8,
	FH_NBIND = 24, FH_BIND = 32, FH_BIND_END = FH_BIND + CK_MAX_LINKS * CK_BINDING_LEN,
	FH_SIZE = FH_BIND_END, FH_SIZE_END = FH_SIZE + CK_SIZE_BOX_LEN,
	FH_TREEID = CK_FILE_HDR_LEN - CK_HASH_LEN - CK_ID_LEN, FH_MAC = CK_FILE_HDR_LEN - CK_HASH_LEN,
};

static int file_hdr_mac(const uint8_t buf[static CK_FILE_HDR_LEN],
                        const struct ck_file_ref *ref,
                        const uint8_t key[static CK_KEY_LEN], uint8_t mac[CK_HASH_LEN])
{
	const void *parts[] = { ref->volume_id, ref->tree_id, buf };
	size_t lens[] = { CK_ID_LEN, CK_ID_LEN, FH_MAC };
	return ck_hmac_sha256(key, parts, lens, 3, mac);
}

int ck_file_hdr_encode(const struct ck_file_hdr *h, const struct ck_file_ref *ref,
                       const uint8_t hdr_key[static CK_KEY_LEN],
                       uint8_t out[static CK_FILE_HDR_LEN])
{
	if (h->n_bind > CK_MAX_LINKS || (h->flags & ~CK_FILE_KNOWN_FLAGS))
		return -EINVAL;
	memset(out, 0, CK_FILE_HDR_LEN);
	memcpy(out + FH_MAGIC, file_magic, 4);
	out[FH_VERSION] = CK_FORMAT_VERSION;
	out[FH_KIND] = 1;
	ck_put16(out + FH_FLAGS, h->flags);
	memcpy(out + FH_FILEID, h->file_id, CK_ID_LEN);
	out[FH_NBIND] = h->n_bind;
	memcpy(out + FH_BIND, h->bind, (size_t)h->n_bind * CK_BINDING_LEN);
	memcpy(out + FH_SIZE, h->size_box, CK_SIZE_BOX_LEN);
	memcpy(out + FH_TREEID, ref->tree_id, CK_ID_LEN);
	return file_hdr_mac(out, ref, hdr_key, out + FH_MAC);
}

int ck_file_hdr_parse(const uint8_t *buf, size_t n, struct ck_file_hdr *h)
{
	if (n < 4 || memcmp(buf, file_magic, 4) != 0)
		return -EINVAL;
	if (n < CK_FILE_HDR_LEN)
		return -EBADMSG;
	if (buf[FH_VERSION] != CK_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	memset(h, 0, sizeof(*h));
	h->version = buf[FH_VERSION];
	h->kind = buf[FH_KIND];
	h->flags = ck_get16(buf + FH_FLAGS);
	h->n_bind = buf[FH_NBIND];
	if (h->kind != 1 || h->n_bind > CK_MAX_LINKS || (h->flags & ~CK_FILE_KNOWN_FLAGS))
		return -EBADMSG;
	for (int i = FH_NBIND + 1; i < FH_BIND; i++)
		if (buf[i])
			return -EBADMSG;
	for (int i = FH_BIND + h->n_bind * CK_BINDING_LEN; i < FH_BIND_END; i++)
		if (buf[i])
			return -EBADMSG;
	for (int i = FH_SIZE_END; i < FH_TREEID; i++)
		if (buf[i])
			return -EBADMSG;
	memcpy(h->size_box, buf + FH_SIZE, CK_SIZE_BOX_LEN);
	memcpy(h->file_id, buf + FH_FILEID, CK_ID_LEN);
	memcpy(h->bind, buf + FH_BIND, (size_t)h->n_bind * CK_BINDING_LEN);
	memcpy(h->tree_id, buf + FH_TREEID, CK_ID_LEN);
	return 0;
}

int ck_file_hdr_verify(const uint8_t buf[static CK_FILE_HDR_LEN],
                       const struct ck_file_ref *ref,
                       const uint8_t hdr_key[static CK_KEY_LEN])
{
	uint8_t mac[CK_HASH_LEN];
	int r;

	if ((r = file_hdr_mac(buf, ref, hdr_key, mac)) < 0)
		return r;
	return ck_memeq(mac, buf + FH_MAC, CK_HASH_LEN) ? 0 : -EBADMSG;
}

int ck_binding(const uint8_t hdr_key[static CK_KEY_LEN],
               const uint8_t dir_id[static CK_ID_LEN],
               const char *name, size_t name_len,
               uint8_t out[static CK_BINDING_LEN])
{
	uint8_t mac[CK_HASH_LEN];
	const void *parts[] = { "bind", dir_id, name };
	size_t lens[] = { 4, CK_ID_LEN, name_len };
	int r = ck_hmac_sha256(hdr_key, parts, lens, 3, mac);

	if (r == 0)
		memcpy(out, mac, CK_BINDING_LEN);
	return r;
}

int ck_file_hdr_has_binding(const struct ck_file_hdr *h, const uint8_t b[static CK_BINDING_LEN])
{
	for (int i = 0; i < h->n_bind; i++)
		if (ck_memeq(h->bind[i], b, CK_BINDING_LEN))
			return 1;
	return 0;
}

int ck_file_hdr_add_binding(struct ck_file_hdr *h, const uint8_t b[static CK_BINDING_LEN])
{
	if (ck_file_hdr_has_binding(h, b))
		return 0;
	if (h->n_bind >= CK_MAX_LINKS)
		return -EMLINK;
	memcpy(h->bind[h->n_bind++], b, CK_BINDING_LEN);
	return 0;
}

void ck_file_hdr_del_binding(struct ck_file_hdr *h, const uint8_t b[static CK_BINDING_LEN])
{
	for (int i = 0; i < h->n_bind; i++) {
		if (!ck_memeq(h->bind[i], b, CK_BINDING_LEN))
			continue;
		memmove(h->bind[i], h->bind[i + 1], (size_t)(h->n_bind - i - 1) * CK_BINDING_LEN);
		h->n_bind--;
		memset(h->bind[h->n_bind], 0, CK_BINDING_LEN);
		return;
	}
}

static void block_aad(uint8_t aad[CK_BLOCK_AAD_LEN], const struct ck_file_ref *ref,
                      uint64_t blockno, int last)
{
	aad[0] = CK_FORMAT_VERSION;
	memcpy(aad + 1, ref->volume_id, CK_ID_LEN);
	memcpy(aad + 17, ref->tree_id, CK_ID_LEN);
	memcpy(aad + 33, ref->file_id, CK_ID_LEN);
	ck_put64(aad + 49, blockno);
	aad[57] = last ? 1 : 0;
}

int ck_block_seal(struct ck_gcm *g, const struct ck_file_ref *ref,
                  uint64_t blockno, int last,
                  const uint8_t *pt, size_t n, uint8_t *out)
{
	uint8_t aad[CK_BLOCK_AAD_LEN];
	int r;

	if (n > CK_BLOCK_SIZE)
		return -EINVAL;
	if ((r = ck_nonce(out, CK_GCM_NONCE_LEN)) < 0)
		return r;
	block_aad(aad, ref, blockno, last);
	return ck_gcm_seal(g, out, aad, sizeof(aad), pt, n, out + CK_GCM_NONCE_LEN,
	                   out + CK_GCM_NONCE_LEN + n);
}

int ck_block_open(struct ck_gcm *g, const struct ck_file_ref *ref,
                  uint64_t blockno, int last,
                  const uint8_t *in, size_t in_len, uint8_t *pt)
{
	uint8_t aad[CK_BLOCK_AAD_LEN];
	size_t n;
	int r;

	if (in_len < CK_BLOCK_OVERHEAD || in_len > CK_CBLOCK_SIZE)
		return -EBADMSG;
	n = in_len - CK_BLOCK_OVERHEAD;
	block_aad(aad, ref, blockno, last);
	r = ck_gcm_open(g, in, aad, sizeof(aad), in + CK_GCM_NONCE_LEN, n, pt,
	                in + CK_GCM_NONCE_LEN + n);
	return r < 0 ? r : (int)n;
}

int ck_block_is_hole(const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (in[i])
			return 0;
	return 1;
}

static void size_aad(uint8_t aad[1 + 3 * CK_ID_LEN + 4], const struct ck_file_ref *ref)
{
	aad[0] = CK_FORMAT_VERSION;
	memcpy(aad + 1, ref->volume_id, CK_ID_LEN);
	memcpy(aad + 17, ref->tree_id, CK_ID_LEN);
	memcpy(aad + 33, ref->file_id, CK_ID_LEN);
	memcpy(aad + 49, "size", 4);
}

int ck_file_size_seal(struct ck_gcm *g, const struct ck_file_ref *ref, uint64_t size,
                      uint8_t box[static CK_SIZE_BOX_LEN])
{
	uint8_t aad[1 + 3 * CK_ID_LEN + 4], pt[8];
	int r;

	size_aad(aad, ref);
	ck_put64(pt, size);
	if ((r = ck_nonce(box, CK_GCM_NONCE_LEN)) < 0)
		return r;
	return ck_gcm_seal(g, box, aad, sizeof(aad), pt, 8, box + CK_GCM_NONCE_LEN,
	                   box + CK_GCM_NONCE_LEN + 8);
}

int ck_file_size_open(struct ck_gcm *g, const struct ck_file_ref *ref,
                      const uint8_t box[static CK_SIZE_BOX_LEN], uint64_t *size)
{
	uint8_t aad[1 + 3 * CK_ID_LEN + 4], pt[8];
	int r;

	size_aad(aad, ref);
	if ((r = ck_gcm_open(g, box, aad, sizeof(aad), box + CK_GCM_NONCE_LEN, 8, pt,
	                     box + CK_GCM_NONCE_LEN + 8)) < 0)
		return r;
	*size = ck_get64(pt);
	/* Sizes beyond what off_t and the block arithmetic hold are corrupt. */
	return *size > (uint64_t)INT64_MAX / 2 ? -EBADMSG : 0;
}

uint64_t ck_backing_size(uint64_t plain_size)
{
	return ck_block_offset(ck_final_block(plain_size) + 1);
}
