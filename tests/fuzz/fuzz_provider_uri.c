/* Fuzz the URI dispatch (ck_provider_for) and every provider's check_uri,
 * the file: provider's included: what ck-dep and the daemon do with a URI
 * read from a DEP record before using it. Only check_uri is called: it
 * parses and at most stat()s a path. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "keys/provider.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ck_provider *p;
	char msg[512];
	char *uri;
	int r;

	if (size > 4 * CK_URI_MAX)
		return 0;
	uri = fz_strndup(data, size);
	p = ck_provider_for(uri);
	if (p) {
		FZ_CHECK(!strncmp(uri, p->scheme, strlen(p->scheme)) && uri[strlen(p->scheme)] == ':');
		if (p->check_uri) {
			r = p->check_uri(uri, msg, sizeof(msg));
			FZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
		}
	}
	/* Every provider must refuse a URI of another scheme. (The pkcs11
	 * parser takes its scheme in any case, as RFC 3986 allows, while
	 * ck_provider_for matches it exactly: such URIs are skipped here.) */
	const struct ck_provider *all[] = { &ck_provider_file, &ck_provider_pkcs11, &ck_provider_exec };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		size_t l = strlen(all[i]->scheme);
		if (all[i] == p || !all[i]->check_uri ||
		    (!strncasecmp(uri, all[i]->scheme, l) && uri[l] == ':'))
			continue;
		r = all[i]->check_uri(uri, msg, sizeof(msg));
		FZ_CHECK(r == -EINVAL || r == -ENOMEM);
	}
	free(uri);
	return 0;
}
