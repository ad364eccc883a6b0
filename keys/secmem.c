/* Secret memory over OpenSSL's secure heap. See secmem.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <openssl/crypto.h>
#include "secmem.h"

/* Keep the whole process out of core dumps and swap, not only the secure
 * heap: cipher contexts keyed for reuse (key schedules), derived keys on
 * the stack and plaintext in I/O buffers live in ordinary memory.
 * coredump_filter 0 leaves no mapping in a dump, also one forced by root
 * with gcore (gdb honours the filter). mlockall(MCL_ONFAULT) locks each
 * page as it is first touched, so it costs no memory beyond what is used;
 * it is done only where locking cannot make a later allocation fail
 * (root, or no RLIMIT_MEMLOCK). Returns 1 when memory was locked. */
static int harden_memory(void)
{
	struct rlimit ml;
	int fd = open("/proc/self/coredump_filter", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		(void)!write(fd, "0", 1);
		close(fd);
	}
	if (getrlimit(RLIMIT_MEMLOCK, &ml) == 0 && ml.rlim_cur != RLIM_INFINITY &&
	    geteuid() != 0)
		return 0;
	return mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0;
}

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
	(void)harden_memory();
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
