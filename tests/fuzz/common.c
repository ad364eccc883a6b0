/* Helpers shared by the fuzz targets and the seed generator. See fuzz.h.
 * Linked into every target (it has no LLVMFuzzerTestOneInput). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/fuzz/fuzz.h"

void fz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "fuzz: property violated at %s:%d: %s\n", file, line, what);
	abort();
}

const struct ck_tree *fz_tree(void)
{
	static struct ck_tree t;
	static int done;

	if (!done) {
		if (ck_tree_init(&t, fz_volume_id, fz_tree_id, fz_tree_key) < 0)
			fz_fail("ck_tree_init of the fixed tree", __FILE__, __LINE__);
		done = 1;
	}
	return &t;
}

const struct ck_volume *fz_record_volume(void)
{
	static struct ck_volume v;
	static uint8_t key[CK_KEY_LEN];
	static int done;

	if (!done) {
		memset(&v, 0, sizeof(v));
		v.fd = -1;
		memcpy(key, fz_record_key, sizeof(key));
		v.record_key = key;
		memcpy(v.hdr.volume_id, fz_volume_id, CK_ID_LEN);
		done = 1;
	}
	return &v;
}

int fz_record_seal(int kind, const uint8_t *pl, size_t n, uint8_t **out, size_t *out_n)
{
	static const uint8_t magic[8] = "CKREC1";
	struct ck_gcm *g = NULL;
	uint8_t *o;
	int r;

	if (!(o = calloc(1, FZ_REC_HDR + n + CK_GCM_TAG_LEN)))
		return -ENOMEM;
	memcpy(o, magic, 8);
	o[8] = (uint8_t)kind;
	o[9] = 1;
	memcpy(o + 12, fz_record_id, CK_ID_LEN);
	/* nonce o[28..40) stays zero: deterministic seeds, and no key reuse
	 * matters for public test keys */
	if ((r = ck_gcm_new(&g, fz_record_key)) == 0)
		r = ck_gcm_seal(g, o + 28, o, 28, pl, n, o + FZ_REC_HDR, o + FZ_REC_HDR + n);
	ck_gcm_free(g);
	if (r < 0) {
		free(o);
		return r;
	}
	*out = o;
	*out_n = FZ_REC_HDR + n + CK_GCM_TAG_LEN;
	return 0;
}

int fz_record_open(const uint8_t *rec, size_t n, uint8_t **pl, size_t *pl_n)
{
	struct ck_gcm *g = NULL;
	size_t len;
	int r;

	if (n < FZ_REC_HDR + CK_GCM_TAG_LEN)
		return -EBADMSG;
	len = n - FZ_REC_HDR - CK_GCM_TAG_LEN;
	if (!(*pl = malloc(len ? len : 1)))
		return -ENOMEM;
	if ((r = ck_gcm_new(&g, fz_record_key)) == 0)
		r = ck_gcm_open(g, rec + 28, rec, 28, rec + FZ_REC_HDR, len, *pl,
		                rec + FZ_REC_HDR + len);
	ck_gcm_free(g);
	if (r < 0) {
		free(*pl);
		*pl = NULL;
		return r;
	}
	*pl_n = len;
	return 0;
}

char *fz_strndup(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}
