/* The only file that includes OpenSSL's EVP headers. See crypto.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include "crypto.h"
#include "secmem.h"

/* Algorithms fetched once per process: a fetch by name (implicit through
 * EVP_aes_256_gcm() and the like, or explicit) costs a method-store lookup
 * on every call, which dominated the per-request CPU of the daemon. The
 * fetched objects are immutable and safe to share between threads. A NULL
 * (fetch failed at start) falls back to fetching per call. */
static struct {
	EVP_KDF *hkdf;
	EVP_MAC *hmac;
	EVP_CIPHER *gcm, *siv128, *siv256;
} alg;
static pthread_once_t alg_once = PTHREAD_ONCE_INIT;

static void alg_fetch(void)
{
	alg.hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	alg.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	alg.gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	alg.siv128 = EVP_CIPHER_fetch(NULL, "AES-128-SIV", NULL);
	alg.siv256 = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
}

static void algs(void)
{
	pthread_once(&alg_once, alg_fetch);
}

int ck_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

#define NONCE_BUF 4096
static __thread struct {
	uint8_t b[NONCE_BUF];
	size_t left;                    /* unused bytes at the end of b */
} nb;
static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;

/* Only the forking thread exists in the child: dropping its buffer is
 * enough for the child never to repeat a nonce of the parent. */
static void nonce_child(void)
{
	nb.left = 0;
}

static void nonce_init(void)
{
	pthread_atfork(NULL, NULL, nonce_child);
}

int ck_nonce(void *buf, size_t n)
{
	pthread_once(&nonce_once, nonce_init);
	if (n > NONCE_BUF / 4)
		return ck_random(buf, n);
	if (nb.left < n) {
		if (RAND_bytes(nb.b, NONCE_BUF) != 1)
			return -EIO;
		nb.left = NONCE_BUF;
	}
	memcpy(buf, nb.b + NONCE_BUF - nb.left, n);
	memset(nb.b + NONCE_BUF - nb.left, 0, n);
	nb.left -= n;
	return 0;
}

int ck_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
                   const uint8_t *salt, size_t salt_len,
                   const uint8_t *info, size_t info_len,
                   uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM p[5], *q = p;
	int r = -EIO;

	algs();
	if (alg.hkdf && EVP_KDF_up_ref(alg.hkdf))
		kdf = alg.hkdf;
	else
		kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf || !(ctx = EVP_KDF_CTX_new(kdf)))
		goto out;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	if (salt && salt_len)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, out_len, p) == 1)
		r = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return r;
}

int ck_hmac_sha256(const uint8_t key[static CK_KEY_LEN],
                   const void *const parts[], const size_t lens[], int n,
                   uint8_t out[static CK_HASH_LEN])
{
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM p[2];
	size_t len = 0;
	int r = -EIO;

	algs();
	if (alg.hmac && EVP_MAC_up_ref(alg.hmac))
		mac = alg.hmac;
	else
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac || !(ctx = EVP_MAC_CTX_new(mac)))
		goto out;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	p[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, CK_KEY_LEN, p) != 1)
		goto out;
	for (int i = 0; i < n; i++)
		if (lens[i] && EVP_MAC_update(ctx, parts[i], lens[i]) != 1)
			goto out;
	if (EVP_MAC_final(ctx, out, &len, CK_HASH_LEN) == 1 && len == CK_HASH_LEN)
		r = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return r;
}

int ck_sha256(const void *data, size_t n, uint8_t out[static CK_HASH_LEN])
{
	unsigned int len = 0;
	return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

struct ck_gcm {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

int ck_gcm_new(struct ck_gcm **out, const uint8_t key[static CK_KEY_LEN])
{
	struct ck_gcm *g = calloc(1, sizeof(*g));
	int r = -ENOMEM;

	*out = NULL;
	if (!g)
		return r;
	g->enc = EVP_CIPHER_CTX_new();
	g->dec = EVP_CIPHER_CTX_new();
	if (!g->enc || !g->dec)
		goto out;
	r = -EIO;
	algs();
	const EVP_CIPHER *c = alg.gcm ? alg.gcm : EVP_aes_256_gcm();
	if (EVP_EncryptInit_ex(g->enc, c, NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(g->dec, c, NULL, key, NULL) != 1)
		goto out;
	*out = g;
	return 0;
out:
	ck_gcm_free(g);
	return r;
}

void ck_gcm_free(struct ck_gcm *g)
{
	if (!g)
		return;
	/* EVP_CIPHER_CTX_free wipes the key schedule. */
	EVP_CIPHER_CTX_free(g->enc);
	EVP_CIPHER_CTX_free(g->dec);
	free(g);
}

#define GCM_POOL_IDLE 4

struct ck_gcm_pool {
	pthread_mutex_t lock;
	const uint8_t *key;
	struct ck_gcm *idle[GCM_POOL_IDLE];
	int n;
};

int ck_gcm_pool_new(struct ck_gcm_pool **out, const uint8_t key[static CK_KEY_LEN])
{
	struct ck_gcm_pool *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->key = key;
	*out = p;
	return 0;
}

int ck_gcm_pool_get(struct ck_gcm_pool *p, struct ck_gcm **g)
{
	pthread_mutex_lock(&p->lock);
	if (p->n) {
		*g = p->idle[--p->n];
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ck_gcm_new(g, p->key);
}

void ck_gcm_pool_put(struct ck_gcm_pool *p, struct ck_gcm *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->n < GCM_POOL_IDLE) {
		p->idle[p->n++] = g;
		g = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	ck_gcm_free(g);
}

void ck_gcm_pool_free(struct ck_gcm_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		ck_gcm_free(p->idle[i]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int ck_gcm_seal(struct ck_gcm *g, const uint8_t nonce[static CK_GCM_NONCE_LEN],
                const uint8_t *aad, size_t aad_len,
                const uint8_t *pt, size_t n, uint8_t *ct,
                uint8_t tag[static CK_GCM_TAG_LEN])
{
	int len;

	if (EVP_EncryptInit_ex(g->enc, NULL, NULL, NULL, nonce) != 1)
		return -EIO;
	if (aad_len && EVP_EncryptUpdate(g->enc, NULL, &len, aad, (int)aad_len) != 1)
		return -EIO;
	if (n && EVP_EncryptUpdate(g->enc, ct, &len, pt, (int)n) != 1)
		return -EIO;
	if (EVP_EncryptFinal_ex(g->enc, ct + n, &len) != 1)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(g->enc, EVP_CTRL_GCM_GET_TAG, CK_GCM_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

int ck_gcm_open(struct ck_gcm *g, const uint8_t nonce[static CK_GCM_NONCE_LEN],
                const uint8_t *aad, size_t aad_len,
                const uint8_t *ct, size_t n, uint8_t *pt,
                const uint8_t tag[static CK_GCM_TAG_LEN])
{
	int len;

	if (EVP_DecryptInit_ex(g->dec, NULL, NULL, NULL, nonce) != 1)
		return -EIO;
	if (aad_len && EVP_DecryptUpdate(g->dec, NULL, &len, aad, (int)aad_len) != 1)
		return -EIO;
	if (n && EVP_DecryptUpdate(g->dec, pt, &len, ct, (int)n) != 1)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(g->dec, EVP_CTRL_GCM_SET_TAG, CK_GCM_TAG_LEN, (void *)tag) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(g->dec, pt + n, &len) != 1) {
		if (n)
			OPENSSL_cleanse(pt, n);
		return -EBADMSG;
	}
	return 0;
}

static EVP_CIPHER *siv_cipher(size_t key_len)
{
	algs();
	if (key_len == 32 && alg.siv128 && EVP_CIPHER_up_ref(alg.siv128))
		return alg.siv128;
	if (key_len == 64 && alg.siv256 && EVP_CIPHER_up_ref(alg.siv256))
		return alg.siv256;
	if (key_len == 32)
		return EVP_CIPHER_fetch(NULL, "AES-128-SIV", NULL);
	if (key_len == 64)
		return EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
	return NULL;
}

/* Keyed SIV contexts to copy from: setting up an SIV key (CMAC subkeys
 * and two key schedules) costs three times a copy of a keyed context, and
 * every name lookup, creation and listing entry needs one. Found by key
 * content (a copy kept in secure memory, like the key itself), so that a
 * key freed and another allocated at its address never meet a stale
 * entry; ck_siv_forget (ck_tree_release) drops a key's entries. */
#define SIV_CACHE 16
static struct {
	uint8_t *key;                   /* secret copy, CK_SIV_KEY_LEN max */
	size_t len;
	int enc;
	EVP_CIPHER_CTX *tpl;
} siv_cache[SIV_CACHE];
static unsigned siv_next;
static pthread_mutex_t siv_lock = PTHREAD_MUTEX_INITIALIZER;

static void siv_slot_free(int i)
{
	EVP_CIPHER_CTX_free(siv_cache[i].tpl);
	ck_secret_free(siv_cache[i].key, siv_cache[i].len);
	memset(&siv_cache[i], 0, sizeof(siv_cache[i]));
}

void ck_siv_forget(const uint8_t *key, size_t key_len)
{
	if (!key)
		return;
	pthread_mutex_lock(&siv_lock);
	for (int i = 0; i < SIV_CACHE; i++)
		if (siv_cache[i].tpl && siv_cache[i].len == key_len &&
		    CRYPTO_memcmp(siv_cache[i].key, key, key_len) == 0)
			siv_slot_free(i);
	pthread_mutex_unlock(&siv_lock);
}

/* Set ctx up for key: a copy of the cached keyed context, or a new one
 * (then cached). */
static int siv_setup(EVP_CIPHER_CTX *ctx, EVP_CIPHER *c, const uint8_t *key, size_t key_len,
                     int enc)
{
	EVP_CIPHER_CTX *tpl;
	int i, r;

	pthread_mutex_lock(&siv_lock);
	for (i = 0; i < SIV_CACHE; i++)
		if (siv_cache[i].tpl && siv_cache[i].enc == enc && siv_cache[i].len == key_len &&
		    CRYPTO_memcmp(siv_cache[i].key, key, key_len) == 0)
			break;
	if (i < SIV_CACHE) {
		r = EVP_CIPHER_CTX_copy(ctx, siv_cache[i].tpl);
		pthread_mutex_unlock(&siv_lock);
		return r == 1 ? 0 : -EIO;
	}
	pthread_mutex_unlock(&siv_lock);
	if (EVP_CipherInit_ex(ctx, c, NULL, key, NULL, enc) != 1)
		return -EIO;
	if (key_len > CK_SIV_KEY_LEN || !(tpl = EVP_CIPHER_CTX_new()))
		return 0;
	if (EVP_CIPHER_CTX_copy(tpl, ctx) != 1) {
		EVP_CIPHER_CTX_free(tpl);
		return 0;
	}
	uint8_t *kc = ck_secret_alloc(key_len);
	if (!kc) {
		EVP_CIPHER_CTX_free(tpl);
		return 0;
	}
	memcpy(kc, key, key_len);
	pthread_mutex_lock(&siv_lock);
	i = (int)(siv_next++ % SIV_CACHE);
	siv_slot_free(i);
	siv_cache[i].key = kc;
	siv_cache[i].len = key_len;
	siv_cache[i].enc = enc;
	siv_cache[i].tpl = tpl;
	pthread_mutex_unlock(&siv_lock);
	return 0;
}

/* OpenSSL's SIV takes each AAD update as one component of the RFC 5297
 * vector, and the plaintext in a single update. */
static int siv_run(int enc, const uint8_t *key, size_t key_len,
                   const uint8_t *const ad[], const size_t ad_len[], int n_ad,
                   const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER *c = siv_cipher(key_len);
	EVP_CIPHER_CTX *ctx = NULL;
	int len, r = -EIO;

	if (!c)
		return -EINVAL;
	if (!(ctx = EVP_CIPHER_CTX_new()))
		goto out;
	if (siv_setup(ctx, c, key, key_len, enc) < 0)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, CK_SIV_TAG_LEN, tag) != 1)
		goto out;
	for (int i = 0; i < n_ad; i++)
		if (EVP_CipherUpdate(ctx, NULL, &len, ad[i], (int)ad_len[i]) != 1)
			goto out;
	if (EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (EVP_CipherFinal_ex(ctx, out + n, &len) != 1) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, CK_SIV_TAG_LEN, tag) != 1)
		goto out;
	r = 0;
out:
	if (r < 0 && !enc && n)
		OPENSSL_cleanse(out, n);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return r;
}

int ck_siv_seal(const uint8_t *key, size_t key_len,
                const uint8_t *const ad[], const size_t ad_len[], int n_ad,
                const uint8_t *pt, size_t n, uint8_t *out)
{
	/* OpenSSL 3.0 skips a zero-length update, so SIV of an empty
	 * plaintext is never computed; ckfs never needs one. */
	if (n == 0)
		return -EINVAL;
	return siv_run(1, key, key_len, ad, ad_len, n_ad, pt, n, out + CK_SIV_TAG_LEN, out);
}

int ck_siv_open(const uint8_t *key, size_t key_len,
                const uint8_t *const ad[], const size_t ad_len[], int n_ad,
                const uint8_t *in, size_t in_len, uint8_t *pt)
{
	uint8_t tag[CK_SIV_TAG_LEN];

	if (in_len <= CK_SIV_TAG_LEN)
		return -EBADMSG;
	memcpy(tag, in, CK_SIV_TAG_LEN);
	return siv_run(0, key, key_len, ad, ad_len, n_ad, in + CK_SIV_TAG_LEN,
	               in_len - CK_SIV_TAG_LEN, pt, tag);
}

static int wrap_run(int enc, const uint8_t kek[static CK_KEY_LEN],
                    const uint8_t *in, size_t n, uint8_t *out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0, r = -EIO;

	if (!ctx)
		return -ENOMEM;
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL, enc) != 1)
		goto out;
	if (EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1 || len <= 0) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (EVP_CipherFinal_ex(ctx, out + len, &fin) != 1) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	*out_len = (size_t)(len + fin);
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int ck_key_wrap(const uint8_t kek[static CK_KEY_LEN], const uint8_t *key,
                size_t n, uint8_t *out, size_t *out_len)
{
	if (n == 0 || n > 4096)
		return -EINVAL;
	return wrap_run(1, kek, key, n, out, out_len);
}

int ck_key_unwrap(const uint8_t kek[static CK_KEY_LEN], const uint8_t *in,
                  size_t n, uint8_t *key, size_t *key_len)
{
	if (n < 16 || n % 8 || n > 4096 + 8)
		return -EBADMSG;
	return wrap_run(0, kek, in, n, key, key_len);
}
