/* Secret memory over OpenSSL's secure heap. See secmem.h. */
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <openssl/crypto.h>
#include "secmem.h"

int ck_secmem_init(size_t size)
{
	size_t s = 1;
	struct rlimit no_core = { 0, 0 };

	while (s < size)
		s <<= 1;
	/* Core dumps and ptrace by other users would expose keys. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	(void)setrlimit(RLIMIT_CORE, &no_core);
	if (CRYPTO_secure_malloc_initialized())
		return 0;
	/* Returns 1 on success, 2 when the heap works but could not be
	 * mlock'ed (RLIMIT_MEMLOCK): both are usable, 0 is not. */
	if (CRYPTO_secure_malloc_init(s, 16) == 0)
		return -ENOMEM;
	return 0;
}

void *ck_secret_alloc(size_t n)
{
	return OPENSSL_secure_zalloc(n);
}

void ck_secret_free(void *p, size_t n)
{
	if (p)
		OPENSSL_secure_clear_free(p, n);
}

void ck_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

int ck_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
