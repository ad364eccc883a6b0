/* Fuzz the PKCS#11 URI parser (RFC 7512 subset, keys/provider_pkcs11.c)
 * through ck_provider_pkcs11.check_uri, which parses and touches nothing.
 * URIs come from DEP records and the command line. Property: the answer is
 * 0 or -EINVAL, with a NUL-terminated message on -EINVAL; a short message
 * buffer is honoured. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/provider.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[512], small[9];
	char *uri;
	int r;

	if (size > 4 * CK_URI_MAX)
		return 0;
	uri = fz_strndup(data, size);
	memset(msg, 'x', sizeof(msg));
	r = ck_provider_pkcs11.check_uri(uri, msg, sizeof(msg));
	FZ_CHECK(r == 0 || r == -EINVAL);
	if (r < 0)
		FZ_CHECK(memchr(msg, 0, sizeof(msg)) != NULL);
	FZ_CHECK(ck_provider_pkcs11.check_uri(uri, small, sizeof(small)) == r);
	free(uri);
	return 0;
}
