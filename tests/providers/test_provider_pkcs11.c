/* The pkcs11: key provider against a real SoftHSM2 token.
 *
 * main() makes a private token directory with softhsm-env.sh (argv[1],
 * default tests/providers/softhsm-env.sh), points SOFTHSM2_CONF at it for
 * this process only, runs the tests and removes the directory. Exits 77
 * (skip) when SoftHSM2 or pkcs11-tool is missing and cannot be installed.
 * The objects on the token are listed at the top of softhsm-env.sh; tests
 * that revoke or destroy a key use a key of their own, so order does not
 * matter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>
#include "keys/crypto.h"
#include "keys/provider.h"
#include "keys/secmem.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define KEYLEN 32

extern int ck_pkcs11_test_no_wrap_pad;   /* keys/provider_pkcs11.c */

static const struct ck_provider *P = &ck_provider_pkcs11;
static char dir[PATH_MAX];               /* the private token directory */
static const char *env_script = "tests/providers/softhsm-env.sh";

/* ---- helpers ------------------------------------------------------------- */

/* "pkcs11:PATH?module-path=MODULE&pin-source=file:DIR/PIN" */
static void mkuri(char u[static CK_URI_MAX], const char *path, const char *pin)
{
	int n = snprintf(u, CK_URI_MAX, "pkcs11:%s?module-path=%s&pin-source=file:%s/%s",
	                 path, MODULE, dir, pin);

	assert_true(n > 0 && n < CK_URI_MAX);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static uint8_t *key_buf(void)
{
	uint8_t *k = ck_secret_alloc(CK_WRAP_MAX);

	assert_non_null(k);
	return k;
}

static void msg_has(const char *msg, const char *want)
{
	if (!strstr(msg, want))
		fail_msg("message \"%s\" does not mention \"%s\"", msg, want);
}

/* Wrap n bytes with path's key and return the wrapped length. */
static size_t wrap_ok(const char *path, const uint8_t *key, size_t n, uint8_t *out)
{
	char u[CK_URI_MAX], msg[256] = "";
	size_t out_len = 0;
	int r;

	mkuri(u, path, "pin");
	r = P->wrap(u, key, n, out, &out_len, msg, sizeof(msg));
	if (r != 0)
		fail_msg("wrap with %s: %d (%s)", path, r, msg);
	assert_true(out_len > 0 && out_len <= CK_WRAP_MAX);
	return out_len;
}

static int unwrap_with(const char *path, const char *pin, const uint8_t *in, size_t n,
                       uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	char u[CK_URI_MAX];

	mkuri(u, path, pin);
	msg[0] = 0;
	return P->unwrap(u, in, n, key, key_len, msg, msg_len);
}

static int probe_with(const char *path, const char *pin, char *msg, size_t msg_len)
{
	char u[CK_URI_MAX];

	mkuri(u, path, pin);
	msg[0] = 0;
	return P->probe(u, msg, msg_len);
}

static void round_trip(const char *path, size_t n, size_t want_wrapped_len)
{
	uint8_t key[CK_WRAP_MAX], wrapped[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t wl, kl = 0;
	int r;

	fill(key, n, (uint8_t)n);
	wl = wrap_ok(path, key, n, wrapped);
	if (want_wrapped_len)
		assert_int_equal(wl, want_wrapped_len);
	assert_memory_not_equal(wrapped, key, n < wl ? n : wl);
	r = unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg));
	if (r != 0)
		fail_msg("unwrap with %s: %d (%s)", path, r, msg);
	assert_int_equal(kl, n);
	assert_memory_equal(back, key, n);
	ck_secret_free(back, CK_WRAP_MAX);
}

/* Run a shell command (pkcs11-tool) with this process's SOFTHSM2_CONF. */
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("command failed (%d): %s", st, cmd);
}

/* The test's own view of the token, to revoke keys the way an HSM operator
 * would: C_SetAttributeValue(CKA_UNWRAP / CKA_DECRYPT = FALSE). The module
 * is shared with the provider (same dlopen handle); it is never finalised. */
static CK_FUNCTION_LIST_PTR test_p11(void)
{
	static CK_FUNCTION_LIST_PTR f;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get;
	void *dl;
	CK_RV rv;

	if (f)
		return f;
	dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl);
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	assert_non_null(get);
	assert_int_equal(get(&f), CKR_OK);
	rv = f->C_Initialize(&args);
	assert_true(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
	return f;
}

static void set_bool(const char *label, CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type, CK_BBOOL v)
{
	CK_FUNCTION_LIST_PTR f = test_p11();
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, found = 0;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };
	CK_SLOT_ID slot = 0;
	CK_RV rv;

	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !memcmp(ti.label, "cktest ", 7))
			slot = slots[i], found++;
	assert_int_equal(found, 1);
	assert_int_equal(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                                  &s), CKR_OK);
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4);
	assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
	assert_int_equal(f->C_FindObjectsInit(s, t, 2), CKR_OK);
	assert_int_equal(f->C_FindObjects(s, &h, 1, &found), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(found, 1);
	assert_int_equal(f->C_SetAttributeValue(s, h, &a, 1), CKR_OK);
	assert_int_equal(f->C_CloseSession(s), CKR_OK);
}

/* ---- round trips ---------------------------------------------------------- */

static void aes_wrap_then_unwrap_returns_the_key(void **state)
{
	round_trip("token=cktest;object=aeskey;id=%01", KEYLEN, KEYLEN + 8);
	round_trip("token=cktest;object=aeskey;type=secret-key", KEYLEN, KEYLEN + 8);
}

/* Multiples of 8 bytes only: SoftHSM2 2.6 zero-pads other lengths (not
 * RFC 5649) and gives the padded key back, so we refuse them up front. */
static void aes_wrap_takes_multiples_of_8_bytes(void **state)
{
	uint8_t key[64], out[CK_WRAP_MAX];
	char u[CK_URI_MAX], msg[256] = "";
	size_t ol = 0;

	round_trip("token=cktest;object=aeskey", 8, 16);
	round_trip("token=cktest;object=aeskey", 24, 32);
	round_trip("token=cktest;object=aeskey", 64, 72);
	fill(key, sizeof(key), 2);
	mkuri(u, "token=cktest;object=aeskey", "pin");
	assert_int_equal(P->wrap(u, key, 1, out, &ol, msg, sizeof(msg)), -EINVAL);
	msg_has(msg, "multiple of 8");
	assert_int_equal(P->wrap(u, key, 20, out, &ol, msg, sizeof(msg)), -EINVAL);
	/* RSA takes any length. */
	round_trip("token=cktest;object=rsakey", 1, 256);
	round_trip("token=cktest;object=rsakey", 20, 256);
}

static void aes_uri_with_only_an_id_finds_the_key(void **state)
{
	round_trip("token=cktest;id=%01", KEYLEN, KEYLEN + 8);
	round_trip("token=cktest;id=%01;type=secret-key", KEYLEN, KEYLEN + 8);
}

/* The token's wrap of our key is byte-for-byte RFC 5649 (the file:
 * provider's format): libck's own AES-256-WRAP-PAD agrees both ways with
 * the token holding a key whose value we know. */
static void aes_wrap_is_rfc5649(void **state)
{
	static const size_t lens[] = { 8, 16, 24, KEYLEN, 64 };
	uint8_t kek[KEYLEN], key[64], wrapped[CK_WRAP_MAX], mine[CK_WRAP_MAX];
	uint8_t *back = key_buf(), plain[CK_WRAP_MAX];
	char path[PATH_MAX + 32], msg[256];
	int fd;

	snprintf(path, sizeof(path), "%s/aesknown.key", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, kek, sizeof(kek)), KEYLEN);
	close(fd);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i], wl, ml = 0, kl = 0;

		fill(key, n, (uint8_t)(0x42 + n));
		wl = wrap_ok("token=cktest;object=aesknown", key, n, wrapped);
		assert_int_equal(wl, n + CK_WRAP_OVERHEAD);
		assert_int_equal(ck_key_unwrap(kek, wrapped, wl, plain, &kl), 0);
		assert_int_equal(kl, n);
		assert_memory_equal(plain, key, n);

		assert_int_equal(ck_key_wrap(kek, key, n, mine, &ml), 0);
		assert_int_equal(ml, wl);
		assert_memory_equal(mine, wrapped, wl);   /* RFC 5649 is deterministic */
		kl = 0;
		assert_int_equal(unwrap_with("token=cktest;object=aesknown", "pin", mine, ml, back,
		                             &kl, msg, sizeof(msg)), 0);
		assert_int_equal(kl, n);
		assert_memory_equal(back, key, n);
	}
	ck_secret_free(back, CK_WRAP_MAX);
}

/* A token without CKM_AES_KEY_WRAP_PAD: CKM_AES_KEY_WRAP, for keys of a
 * multiple of 8 bytes only. */
static void aes_fallback_to_key_wrap_without_pad(void **state)
{
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX];
	char u[CK_URI_MAX], msg[256] = "";
	size_t wl = 0;

	ck_pkcs11_test_no_wrap_pad = 1;
	round_trip("token=cktest;object=aeskey", KEYLEN, KEYLEN + 8);
	round_trip("token=cktest;object=aeskey", 16, 24);
	fill(key, sizeof(key), 1);
	mkuri(u, "token=cktest;object=aeskey", "pin");
	assert_int_equal(P->wrap(u, key, 8, wrapped, &wl, msg, sizeof(msg)), -EINVAL);
	msg_has(msg, "at least 16 bytes");
	assert_int_equal(P->wrap(u, key, 20, wrapped, &wl, msg, sizeof(msg)), -EINVAL);
	msg_has(msg, "multiple of 8");
	ck_pkcs11_test_no_wrap_pad = 0;
}

static void rsa_wrap_then_unwrap_returns_the_key(void **state)
{
	round_trip("token=cktest;object=rsakey;id=%02", KEYLEN, 256);
	}

static void rsa_uri_with_type_private_or_public_names_the_pair(void **state)
{
	round_trip("token=cktest;object=rsakey;type=private", KEYLEN, 256);
	round_trip("token=cktest;id=%02;type=public", KEYLEN, 256);
}

static void rsa_oaep_wraps_differ_each_time(void **state)
{
	uint8_t key[KEYLEN], a[CK_WRAP_MAX], b[CK_WRAP_MAX];

	fill(key, KEYLEN, 3);
	assert_int_equal(wrap_ok("token=cktest;object=rsakey", key, KEYLEN, a), 256);
	assert_int_equal(wrap_ok("token=cktest;object=rsakey", key, KEYLEN, b), 256);
	assert_memory_not_equal(a, b, 256);
}

static void rsa_key_too_long_for_oaep_is_einval(void **state)
{
	uint8_t key[300], out[CK_WRAP_MAX];
	char u[CK_URI_MAX], msg[256] = "";
	size_t ol = 0;

	fill(key, sizeof(key), 9);
	mkuri(u, "token=cktest;object=rsakey", "pin");
	assert_int_equal(P->wrap(u, key, 215, out, &ol, msg, sizeof(msg)), -EINVAL);
	msg_has(msg, "at most 214 bytes");
	round_trip("token=cktest;object=rsakey", 214, 256);
}

static void probe_answers_ok_for_usable_keys(void **state)
{
	char msg[256];

	assert_int_equal(probe_with("token=cktest;object=aeskey", "pin", msg, sizeof(msg)), 0);
	assert_int_equal(probe_with("token=cktest;object=rsakey", "pin", msg, sizeof(msg)), 0);
	assert_int_equal(probe_with("token=cktest;id=%02;type=private", "pin", msg, sizeof(msg)), 0);
}

/* ---- wrong key, corrupt input ---------------------------------------------- */

static void unwrap_with_another_key_is_ebadmsg(void **state)
{
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t wl, kl = 0;

	fill(key, KEYLEN, 5);
	wl = wrap_ok("token=cktest;object=aeskey", key, KEYLEN, wrapped);
	assert_int_equal(unwrap_with("token=cktest;object=aeskey2", "pin", wrapped, wl, back, &kl,
	                             msg, sizeof(msg)), -EBADMSG);
	msg_has(msg, "corrupt");

	wl = wrap_ok("token=cktest;object=rsakey", key, KEYLEN, wrapped);
	assert_int_equal(unwrap_with("token=cktest;object=rsakey2", "pin", wrapped, wl, back, &kl,
	                             msg, sizeof(msg)), -EBADMSG);
	msg_has(msg, "corrupt");
	/* An RSA wrap handed to an AES key, and the reverse. */
	assert_int_equal(unwrap_with("token=cktest;object=aeskey", "pin", wrapped, wl, back, &kl,
	                             msg, sizeof(msg)), -EBADMSG);
	wl = wrap_ok("token=cktest;object=aeskey", key, KEYLEN, wrapped);
	assert_int_equal(unwrap_with("token=cktest;object=rsakey", "pin", wrapped, wl, back, &kl,
	                             msg, sizeof(msg)), -EBADMSG);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void corrupt_wrap_is_ebadmsg_and_leaves_no_key(const char *path, size_t wl_want)
{
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], bad[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t wl, kl = 0;

	fill(key, KEYLEN, 7);
	wl = wrap_ok(path, key, KEYLEN, wrapped);
	assert_int_equal(wl, wl_want);
	for (size_t pos = 0; pos < wl; pos += wl / 5) {
		memcpy(bad, wrapped, wl);
		bad[pos] ^= 0x10;
		memset(back, 0xaa, CK_WRAP_MAX);
		assert_int_equal(unwrap_with(path, "pin", bad, wl, back, &kl, msg, sizeof(msg)),
		                 -EBADMSG);
		msg_has(msg, "corrupt");
		for (size_t i = 0; i < CK_WRAP_MAX; i++)
			assert_int_equal(back[i], 0);   /* wiped on failure */
	}
	/* Truncated, extended, empty. */
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl - 8, back, &kl, msg, sizeof(msg)),
	                 -EBADMSG);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl - 1, back, &kl, msg, sizeof(msg)),
	                 -EBADMSG);
	memset(bad, 0, sizeof(bad));
	memcpy(bad, wrapped, wl);
	assert_int_equal(unwrap_with(path, "pin", bad, wl + 8, back, &kl, msg, sizeof(msg)),
	                 -EBADMSG);
	assert_int_equal(unwrap_with(path, "pin", bad, 0, back, &kl, msg, sizeof(msg)), -EBADMSG);
	/* The good one still unwraps. */
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)), 0);
	assert_memory_equal(back, key, KEYLEN);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void corrupted_aes_wrap_is_ebadmsg(void **state)
{
	corrupt_wrap_is_ebadmsg_and_leaves_no_key("token=cktest;object=aeskey", KEYLEN + 8);
}

static void corrupted_rsa_wrap_is_ebadmsg(void **state)
{
	corrupt_wrap_is_ebadmsg_and_leaves_no_key("token=cktest;object=rsakey", 256);
}

/* ---- denied: deleted, revoked, destroyed ----------------------------------- */

static void aes_key_deleted_on_the_token_is_denied(void **state)
{
	const char *path = "token=cktest;object=aesdel";
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], out[CK_WRAP_MAX], *back = key_buf();
	char u[CK_URI_MAX], msg[256];
	size_t wl, kl = 0, ol = 0;

	fill(key, KEYLEN, 11);
	wl = wrap_ok(path, key, KEYLEN, wrapped);
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), 0);
	/* Another process (the HSM operator) deletes it. */
	sh("pkcs11-tool --module %s --token-label cktest --login --pin 1234 --delete-object "
	   "--type secrkey --label aesdel >/dev/null 2>&1", MODULE);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)),
	                 -EKEYREVOKED);
	msg_has(msg, "not found");
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), -EKEYREVOKED);
	mkuri(u, path, "pin");
	assert_int_equal(P->wrap(u, key, KEYLEN, out, &ol, msg, sizeof(msg)), -EKEYREVOKED);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void aes_key_with_unwrap_false_is_denied(void **state)
{
	const char *path = "token=cktest;object=aesrevoke";
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t wl, kl = 0;

	fill(key, KEYLEN, 13);
	wl = wrap_ok(path, key, KEYLEN, wrapped);
	set_bool("aesrevoke", CKO_SECRET_KEY, CKA_UNWRAP, CK_FALSE);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)),
	                 -EKEYREVOKED);
	msg_has(msg, "not permitted");
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), -EKEYREVOKED);
	msg_has(msg, "revoked");
	/* No new wraps under a revoked key either. */
	{
		char u[CK_URI_MAX];
		uint8_t out[CK_WRAP_MAX];
		size_t ol = 0;

		mkuri(u, path, "pin");
		assert_int_equal(P->wrap(u, key, KEYLEN, out, &ol, msg, sizeof(msg)), -EKEYREVOKED);
	}
	/* Reinstated by the operator: works again (revocation is the token's). */
	set_bool("aesrevoke", CKO_SECRET_KEY, CKA_UNWRAP, CK_TRUE);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)), 0);
	assert_memory_equal(back, key, KEYLEN);
	set_bool("aesrevoke", CKO_SECRET_KEY, CKA_UNWRAP, CK_FALSE);
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), -EKEYREVOKED);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void rsa_key_with_decrypt_false_is_denied(void **state)
{
	const char *path = "token=cktest;object=rsarevoke";
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t wl, kl = 0;

	fill(key, KEYLEN, 17);
	wl = wrap_ok(path, key, KEYLEN, wrapped);
	set_bool("rsarevoke", CKO_PRIVATE_KEY, CKA_DECRYPT, CK_FALSE);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)),
	                 -EKEYREVOKED);
	msg_has(msg, "not permitted");
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), -EKEYREVOKED);
	{
		char u[CK_URI_MAX];
		uint8_t out[CK_WRAP_MAX];
		size_t ol = 0;

		mkuri(u, "token=cktest;object=rsarevoke;type=public", "pin");
		assert_int_equal(P->wrap(u, key, KEYLEN, out, &ol, msg, sizeof(msg)), -EKEYREVOKED);
		msg_has(msg, "revoked");
	}
	/* A corrupt wrap under a revoked key is still denied, not corrupt. */
	wrapped[3] ^= 1;
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)),
	                 -EKEYREVOKED);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void destroy_removes_the_aes_key(void **state)
{
	const char *path = "token=cktest;object=aesdestroy;id=%0a";
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], *back = key_buf();
	char u[CK_URI_MAX], msg[256] = "";
	size_t wl, kl = 0;

	fill(key, KEYLEN, 19);
	wl = wrap_ok(path, key, KEYLEN, wrapped);
	mkuri(u, path, "pin");
	assert_int_equal(P->destroy(u, msg, sizeof(msg)), 0);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)),
	                 -EKEYREVOKED);
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), -EKEYREVOKED);
	/* Destroying again is success (a purge can be re-run), and says so. */
	msg[0] = 0;
	assert_int_equal(P->destroy(u, msg, sizeof(msg)), 0);
	msg_has(msg, "already gone");
	ck_secret_free(back, CK_WRAP_MAX);
}

static void destroy_removes_both_halves_of_the_rsa_pair(void **state)
{
	const char *path = "token=cktest;object=rsadestroy";
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], out[CK_WRAP_MAX], *back = key_buf();
	char u[CK_URI_MAX], msg[256] = "";
	size_t wl, kl = 0, ol = 0;

	fill(key, KEYLEN, 23);
	wl = wrap_ok(path, key, KEYLEN, wrapped);
	mkuri(u, path, "pin");
	assert_int_equal(P->destroy(u, msg, sizeof(msg)), 0);
	assert_int_equal(unwrap_with(path, "pin", wrapped, wl, back, &kl, msg, sizeof(msg)),
	                 -EKEYREVOKED);
	assert_int_equal(P->wrap(u, key, KEYLEN, out, &ol, msg, sizeof(msg)), -EKEYREVOKED);
	assert_int_equal(probe_with(path, "pin", msg, sizeof(msg)), -EKEYREVOKED);
	ck_secret_free(back, CK_WRAP_MAX);
}

/* ---- pin files --------------------------------------------------------------- */

static void wrong_pin_is_eacces_and_the_right_pin_still_works(void **state)
{
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t wl, kl = 0;

	fill(key, KEYLEN, 29);
	wl = wrap_ok("token=cktest;object=aeskey", key, KEYLEN, wrapped);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(unwrap_with("token=cktest;object=aeskey", "wrongpin", wrapped, wl,
		                             back, &kl, msg, sizeof(msg)), -EACCES);
		msg_has(msg, "wrong pin");
		assert_int_equal(probe_with("token=cktest;object=rsakey", "wrongpin", msg,
		                            sizeof(msg)), -EACCES);
	}
	assert_int_equal(unwrap_with("token=cktest;object=aeskey", "pin", wrapped, wl, back, &kl,
	                             msg, sizeof(msg)), 0);
	assert_memory_equal(back, key, KEYLEN);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void bad_pin_files_are_eacces_naming_the_file(void **state)
{
	static const struct { const char *file, *says; } cases[] = {
		{ "no-such-pin", "no such file" },
		{ "pin-empty",   "empty" },
		{ "pin-open",    "chmod 600" },
		{ "tokens",      "not a regular file" },
	};
	char msg[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(probe_with("token=cktest;object=aeskey", cases[i].file, msg,
		                            sizeof(msg)), -EACCES);
		msg_has(msg, cases[i].file);
		msg_has(msg, cases[i].says);
	}
}

static void pin_file_without_newline_works(void **state)
{
	char msg[256];

	assert_int_equal(probe_with("token=cktest;object=aeskey", "pin-nonl", msg, sizeof(msg)), 0);
}

/* ---- unavailable ------------------------------------------------------------- */

static void missing_token_is_unavailable(void **state)
{
	uint8_t key[KEYLEN], out[CK_WRAP_MAX], *back = key_buf();
	char u[CK_URI_MAX], msg[256];
	size_t ol = 0, kl = 0;

	fill(key, KEYLEN, 31);
	assert_int_equal(probe_with("token=nosuchtoken;object=aeskey", "pin", msg, sizeof(msg)),
	                 -EAGAIN);
	msg_has(msg, "nosuchtoken");
	msg_has(msg, "not found");
	mkuri(u, "token=nosuchtoken;object=aeskey", "pin");
	assert_int_equal(P->wrap(u, key, KEYLEN, out, &ol, msg, sizeof(msg)), -EAGAIN);
	assert_int_equal(P->unwrap(u, key, KEYLEN, back, &kl, msg, sizeof(msg)), -EAGAIN);
	/* A filter that does not match: the token we mean is not there. */
	assert_int_equal(probe_with("token=cktest;serial=0000;object=aeskey", "pin", msg,
	                            sizeof(msg)), -EAGAIN);
	assert_int_equal(probe_with("token=cktest;manufacturer=SoftHSM%20project;object=aeskey",
	                            "pin", msg, sizeof(msg)), 0);
	ck_secret_free(back, CK_WRAP_MAX);
}

static void missing_or_bad_module_is_unavailable(void **state)
{
	char u[CK_URI_MAX], msg[256] = "";
	Dl_info info;
	int n;

	n = snprintf(u, sizeof(u), "pkcs11:token=cktest;object=aeskey?module-path="
	             "/nonexistent/libnope.so&pin-source=file:%s/pin", dir);
	assert_true(n > 0 && n < (int)sizeof(u));
	assert_int_equal(P->probe(u, msg, sizeof(msg)), -EAGAIN);
	msg_has(msg, "/nonexistent/libnope.so");
	/* A real library that is no PKCS#11 module (libc). */
	assert_true(dladdr((void *)printf, &info) != 0 && info.dli_fname[0] == '/');
	n = snprintf(u, sizeof(u), "pkcs11:token=cktest;object=aeskey?module-path=%s"
	             "&pin-source=file:%s/pin", info.dli_fname, dir);
	assert_true(n > 0 && n < (int)sizeof(u));
	assert_int_equal(P->probe(u, msg, sizeof(msg)), -EAGAIN);
	msg_has(msg, "not a pkcs#11 module");
}

/* ---- usage errors ------------------------------------------------------------ */

static void ambiguous_or_unsupported_keys_are_einval(void **state)
{
	char msg[256];

	assert_int_equal(probe_with("token=cktest;object=dup", "pin", msg, sizeof(msg)), -EINVAL);
	msg_has(msg, "more than one");
	assert_int_equal(probe_with("token=cktest;object=dup;id=%0c", "pin", msg, sizeof(msg)), 0);
	assert_int_equal(probe_with("token=cktest;object=eckey", "pin", msg, sizeof(msg)), -EINVAL);
	msg_has(msg, "neither an aes key nor an rsa key pair");
}

static void malformed_uris_are_einval(void **state)
{
	static const struct { const char *uri, *says; } cases[] = {
		{ "file:/etc/key", "must start with 'pkcs11:'" },
		{ "pkcs11:object=aeskey?pin-source=file:/p", "token=<label> is missing" },
		{ "pkcs11:token=cktest?pin-source=file:/p", "object=<label> and/or id" },
		{ "pkcs11:token=cktest;object=aeskey", "pin-source" },
		{ "pkcs11:token=cktest;id=%0G?pin-source=file:/p", "bad percent-encoding in id" },
		{ "pkcs11:token=cktest;id=%0?pin-source=file:/p", "bad percent-encoding in id" },
		{ "pkcs11:token=cktest;id=%?pin-source=file:/p", "bad percent-encoding in id" },
		{ "pkcs11:token=ck%zztest;id=%01?pin-source=file:/p", "bad percent-encoding in token" },
		{ "pkcs11:token=cktest;object=a%00b?pin-source=file:/p", "nul byte" },
		{ "pkcs11:token=cktest;object=aeskey?pin-value=1234", "pin-value is refused" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=file:/p&pin-value=1234",
		  "pin-value is refused" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=/etc/pin", "pin-source must be file:" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=file:pin", "pin-source must be file:" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=%7C/bin/echo%201234",
		  "pin-source must be file:" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=file:/p&module-path=lib.so",
		  "module-path must be an absolute path" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=file:/p&module-name=softhsm2",
		  "module-name is not supported" },
		{ "pkcs11:token=cktest;objekt=aeskey?pin-source=file:/p",
		  "unsupported path attribute 'objekt'" },
		{ "pkcs11:token=cktest;object=aeskey?pin-source=file:/p&pin=1",
		  "unsupported query attribute 'pin'" },
		{ "pkcs11:token=cktest;token=other;object=k?pin-source=file:/p", "given twice" },
		{ "pkcs11:token=cktest;object=k;type=cert?pin-source=file:/p", "type must be" },
		{ "pkcs11:token=cktest;object=k;type?pin-source=file:/p", "has no '='" },
		{ "pkcs11:token=;object=k?pin-source=file:/p", "token is empty" },
		{ "pkcs11:token=0123456789012345678901234567890123;object=k?pin-source=file:/p",
		  "token is too long" },
		{ "pkcs11:token=ck test;object=k?pin-source=file:/p", "must be percent-encoded" },
		{ "pkcs11:token=cktest;object=k?pin-source=file:/p#frag", "must be percent-encoded" },
		{ "pkcs11:token=cktest;object=k?pin-source=file:/p?x", "more than one '?'" },
	};
	uint8_t key[KEYLEN], out[CK_WRAP_MAX], *back = key_buf();
	char msg[256];
	size_t ol, kl;

	fill(key, KEYLEN, 37);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *u = cases[i].uri;

		msg[0] = 0;
		if (P->check_uri(u, msg, sizeof(msg)) != -EINVAL)
			fail_msg("check_uri accepted \"%s\"", u);
		msg_has(msg, cases[i].says);
		assert_int_equal(P->probe(u, msg, sizeof(msg)), -EINVAL);
		assert_int_equal(P->wrap(u, key, KEYLEN, out, &ol, msg, sizeof(msg)), -EINVAL);
		assert_int_equal(P->unwrap(u, key, KEYLEN, back, &kl, msg, sizeof(msg)), -EINVAL);
		assert_int_equal(P->destroy(u, msg, sizeof(msg)), -EINVAL);
	}
	/* A URI past CK_URI_MAX. */
	{
		char big[CK_URI_MAX + 64];

		memset(big, 'a', sizeof(big));
		memcpy(big, "pkcs11:object=", 14);
		big[sizeof(big) - 1] = 0;
		assert_int_equal(P->check_uri(big, msg, sizeof(msg)), -EINVAL);
		msg_has(msg, "longer than");
	}
	ck_secret_free(back, CK_WRAP_MAX);
}

static void good_uris_pass_check_uri(void **state)
{
	static const char *good[] = {
		"pkcs11:token=cktest;object=aeskey?pin-source=file:/etc/ck.pin",
		"pkcs11:token=cktest;id=%01%02%ff?pin-source=file:///etc/ck.pin",
		"pkcs11:token=ck%20test;object=my%20key;type=private?pin-source=file:/p"
		"&module-path=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so",
		"pkcs11:token=cktest;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;"
		"serial=1234;object=k;type=secret-key?pin-source=file:/p",
		"PKCS11:token=cktest;object=k;?pin-source=file:/p",
	};
	char msg[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		msg[0] = 0;
		if (P->check_uri(good[i], msg, sizeof(msg)) != 0)
			fail_msg("check_uri refused \"%s\": %s", good[i], msg);
	}
	/* The zero-length wrap is a usage error too. */
	{
		char u[CK_URI_MAX];
		uint8_t out[CK_WRAP_MAX];
		size_t ol;

		mkuri(u, "token=cktest;object=aeskey", "pin");
		assert_int_equal(P->wrap(u, out, 0, out, &ol, msg, sizeof(msg)), -EINVAL);
	}
}

/* ---- threads ----------------------------------------------------------------- */

struct worker { int seed; int failures; char msg[256]; };

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	static const char *paths[] = { "token=cktest;object=aeskey", "token=cktest;object=rsakey" };
	uint8_t key[KEYLEN], wrapped[CK_WRAP_MAX], back[CK_WRAP_MAX];
	char u[CK_URI_MAX];

	for (int i = 0; i < 20; i++) {
		size_t wl = 0, kl = 0;

		mkuri(u, paths[(w->seed + i) % 2], "pin");
		fill(key, KEYLEN, (uint8_t)(w->seed * 31 + i));
		if (P->wrap(u, key, KEYLEN, wrapped, &wl, w->msg, sizeof(w->msg)) != 0 ||
		    P->unwrap(u, wrapped, wl, back, &kl, w->msg, sizeof(w->msg)) != 0 ||
		    kl != KEYLEN || memcmp(back, key, KEYLEN) != 0 ||
		    P->probe(u, w->msg, sizeof(w->msg)) != 0)
			w->failures++;
	}
	return NULL;
}

static void many_threads_wrap_and_unwrap_at_once(void **state)
{
	pthread_t t[8];
	struct worker w[8];

	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .seed = i };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (w[i].failures)
			fail_msg("thread %d: %d failures, last: %s", i, w[i].failures, w[i].msg);
	}
}

/* ---- main -------------------------------------------------------------------- */

static int run_env(const char *verb)
{
	char cmd[PATH_MAX * 2 + 64];
	int st;

	snprintf(cmd, sizeof(cmd), "sh '%s' %s '%s'", env_script, verb, dir);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aes_wrap_then_unwrap_returns_the_key),
		cmocka_unit_test(aes_wrap_takes_multiples_of_8_bytes),
		cmocka_unit_test(aes_uri_with_only_an_id_finds_the_key),
		cmocka_unit_test(aes_wrap_is_rfc5649),
		cmocka_unit_test(aes_fallback_to_key_wrap_without_pad),
		cmocka_unit_test(rsa_wrap_then_unwrap_returns_the_key),
		cmocka_unit_test(rsa_uri_with_type_private_or_public_names_the_pair),
		cmocka_unit_test(rsa_oaep_wraps_differ_each_time),
		cmocka_unit_test(rsa_key_too_long_for_oaep_is_einval),
		cmocka_unit_test(probe_answers_ok_for_usable_keys),
		cmocka_unit_test(unwrap_with_another_key_is_ebadmsg),
		cmocka_unit_test(corrupted_aes_wrap_is_ebadmsg),
		cmocka_unit_test(corrupted_rsa_wrap_is_ebadmsg),
		cmocka_unit_test(aes_key_deleted_on_the_token_is_denied),
		cmocka_unit_test(aes_key_with_unwrap_false_is_denied),
		cmocka_unit_test(rsa_key_with_decrypt_false_is_denied),
		cmocka_unit_test(destroy_removes_the_aes_key),
		cmocka_unit_test(destroy_removes_both_halves_of_the_rsa_pair),
		cmocka_unit_test(wrong_pin_is_eacces_and_the_right_pin_still_works),
		cmocka_unit_test(bad_pin_files_are_eacces_naming_the_file),
		cmocka_unit_test(pin_file_without_newline_works),
		cmocka_unit_test(missing_token_is_unavailable),
		cmocka_unit_test(missing_or_bad_module_is_unavailable),
		cmocka_unit_test(ambiguous_or_unsupported_keys_are_einval),
		cmocka_unit_test(malformed_uris_are_einval),
		cmocka_unit_test(good_uris_pass_check_uri),
		cmocka_unit_test(many_threads_wrap_and_unwrap_at_once),
	};
	const char *tmp = getenv("TMPDIR");
	char conf[PATH_MAX + 32];
	int r, failed;

	if (argc > 1)
		env_script = argv[1];
	if (ck_secmem_init(1 << 20) < 0) {
		fprintf(stderr, "test_provider_pkcs11: cannot initialise secure memory\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/ck-p11-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	r = run_env("setup");
	if (r != 0) {
		fprintf(stderr, "test_provider_pkcs11: %s setup %s: exit %d%s\n", env_script, dir, r,
		        r == 77 ? " (skipped: no softhsm2)" : "");
		run_env("teardown");
		rmdir(dir);
		return r == 77 ? 77 : 1;
	}
	/* For this process (and the pkcs11-tool it runs) only. */
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	setenv("SOFTHSM2_CONF", conf, 1);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	if (run_env("teardown") != 0)
		fprintf(stderr, "test_provider_pkcs11: teardown of %s failed\n", dir);
	return failed;
}
