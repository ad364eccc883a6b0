/* Secret memory: one allocator for every buffer that holds key material.
 * Backed by OpenSSL's secure heap (mlock'ed, MADV_DONTDUMP, guard pages)
 * once ck_secmem_init() has run; wiped with OPENSSL_cleanse on free. */
#ifndef CK_SECMEM_H
#define CK_SECMEM_H
#include <stddef.h>

/* Initialise the secure heap (size is rounded up to a power of two) and
 * harden the process: no core dumps, not ptrace-attachable by other users,
 * no memory in a dump forced by root (coredump_filter 0), and all memory
 * locked against swap where that cannot fail later (root or no
 * RLIMIT_MEMLOCK).
 * Returns 0, or a negative errno. Call once, before any key is loaded. */
int ck_secmem_init(size_t size) __attribute__((warn_unused_result));

/* Zeroed secret buffer, or NULL (ENOMEM). */
void *ck_secret_alloc(size_t n) __attribute__((malloc));
/* Wipe n bytes and free; NULL is fine. */
void ck_secret_free(void *p, size_t n);
/* Wipe in place (not optimised away). */
void ck_wipe(void *p, size_t n);
/* Constant-time comparison: 1 if equal, 0 if not. */
int ck_memeq(const void *a, const void *b, size_t n);

#endif
