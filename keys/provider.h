/* Key providers: where a root key (customer key or availability key)
 * lives. Each provider is one file (keys/provider_<scheme>.c) exporting one
 * struct ck_provider; keys/provider.c holds the table and dispatches by
 * URI scheme. Adding a provider touches one file and one table line.
 *
 * Every call returns 0 or a negative errno with these meanings:
 *   0              success (unwrap: the key is in `key`)
 *   -EKEYREVOKED   DENIED: revoked, deleted, disabled, not permitted. Final.
 *   -EAGAIN        UNAVAILABLE: transient (timeout, device error, token
 *                  missing, helper crashed). Retry later; may fall back.
 *   -EINVAL        the URI (or an argument) is malformed: a usage error.
 *   -ENOMEM etc.   local failures, treated like UNAVAILABLE by callers.
 * msg receives a one-line, lowercase reason (never key bytes).
 * Unwrapped keys are written only into caller-provided buffers, which the
 * caller allocates with ck_secret_alloc. */
#ifndef CK_PROVIDER_H
#define CK_PROVIDER_H
#include <stddef.h>
#include <stdint.h>
#include "crypto.h"

#define CK_WRAP_MAX   1024   /* largest wrapped key we store (RSA-8192 fits) */
#define CK_URI_MAX    1024

struct ck_provider {
	const char *scheme;                 /* "file", "pkcs11", "exec" */
	/* Wrap n key bytes; out holds CK_WRAP_MAX bytes. */
	int (*wrap)(const char *uri, const uint8_t *key, size_t n,
	            uint8_t *out, size_t *out_len, char *msg, size_t msg_len);
	/* Unwrap into key (CK_WRAP_MAX bytes of secret memory). */
	int (*unwrap)(const char *uri, const uint8_t *in, size_t n,
	              uint8_t *key, size_t *key_len, char *msg, size_t msg_len);
	/* Is the key there and usable? Same answers as unwrap, no key. */
	int (*probe)(const char *uri, char *msg, size_t msg_len);
	/* Optional (NULL if unsupported): make a new key at uri. */
	int (*create)(const char *uri, char *msg, size_t msg_len);
	/* Optional: destroy the key at uri (purge of an availability key). */
	int (*destroy)(const char *uri, char *msg, size_t msg_len);
	/* Optional: check the URI's syntax without touching the key. */
	int (*check_uri)(const char *uri, char *msg, size_t msg_len);
};

extern const struct ck_provider ck_provider_file;
extern const struct ck_provider ck_provider_pkcs11;
extern const struct ck_provider ck_provider_exec;

/* The provider for a URI ("file:/x" -> file), or NULL. */
const struct ck_provider *ck_provider_for(const char *uri);

/* Dispatching helpers: -EINVAL with a message for an unknown scheme. */
int ck_key_wrap_uri(const char *uri, const uint8_t *key, size_t n,
                    uint8_t *out, size_t *out_len, char *msg, size_t msg_len) CK_WUR;
int ck_key_unwrap_uri(const char *uri, const uint8_t *in, size_t n,
                      uint8_t *key, size_t *key_len, char *msg, size_t msg_len) CK_WUR;
int ck_key_probe_uri(const char *uri, char *msg, size_t msg_len) CK_WUR;
int ck_key_create_uri(const char *uri, char *msg, size_t msg_len) CK_WUR;
int ck_key_destroy_uri(const char *uri, char *msg, size_t msg_len) CK_WUR;
const char *ck_key_result_name(int r);   /* "ok", "denied", "unavailable", "error" */

#endif
