/* The provider table and URI dispatch. See provider.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "provider.h"

static const struct ck_provider *const providers[] = {
	&ck_provider_file,
	&ck_provider_pkcs11,
	&ck_provider_exec,
};

const struct ck_provider *ck_provider_for(const char *uri)
{
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
		size_t l = strlen(providers[i]->scheme);
		if (!strncmp(uri, providers[i]->scheme, l) && uri[l] == ':')
			return providers[i];
	}
	return NULL;
}

static const struct ck_provider *find(const char *uri, char *msg, size_t msg_len)
{
	const struct ck_provider *p = uri ? ck_provider_for(uri) : NULL;

	if (!p)
		snprintf(msg, msg_len, "key uri \"%.60s\" has an unknown scheme (want file:, "
		         "pkcs11: or exec:)", uri ? uri : "");
	else if (strlen(uri) >= CK_URI_MAX)
		return snprintf(msg, msg_len, "key uri is too long"), NULL;
	return p;
}

int ck_key_wrap_uri(const char *uri, const uint8_t *key, size_t n,
                    uint8_t *out, size_t *out_len, char *msg, size_t msg_len)
{
	const struct ck_provider *p = find(uri, msg, msg_len);
	return p ? p->wrap(uri, key, n, out, out_len, msg, msg_len) : -EINVAL;
}

int ck_key_unwrap_uri(const char *uri, const uint8_t *in, size_t n,
                      uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	const struct ck_provider *p = find(uri, msg, msg_len);
	return p ? p->unwrap(uri, in, n, key, key_len, msg, msg_len) : -EINVAL;
}

int ck_key_probe_uri(const char *uri, char *msg, size_t msg_len)
{
	const struct ck_provider *p = find(uri, msg, msg_len);
	return p ? p->probe(uri, msg, msg_len) : -EINVAL;
}

int ck_key_create_uri(const char *uri, char *msg, size_t msg_len)
{
	const struct ck_provider *p = find(uri, msg, msg_len);

	if (!p)
		return -EINVAL;
	if (!p->create) {
		snprintf(msg, msg_len, "%s: keys cannot be created through ckfs; create the key "
		         "in the provider first", p->scheme);
		return -EOPNOTSUPP;
	}
	return p->create(uri, msg, msg_len);
}

int ck_key_destroy_uri(const char *uri, char *msg, size_t msg_len)
{
	const struct ck_provider *p = find(uri, msg, msg_len);

	if (!p)
		return -EINVAL;
	if (!p->destroy) {
		snprintf(msg, msg_len, "%s: keys cannot be destroyed through ckfs", p->scheme);
		return -EOPNOTSUPP;
	}
	return p->destroy(uri, msg, msg_len);
}

const char *ck_key_result_name(int r)
{
	return r == 0 ? "ok" : r == -EKEYREVOKED ? "denied" : r == -EAGAIN ? "unavailable" : "error";
}
