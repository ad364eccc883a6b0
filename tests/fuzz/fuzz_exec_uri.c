/* Fuzz the exec: URI parser (keys/provider_exec.c: words, quotes,
 * backslashes, ?timeout=) through ck_provider_exec.check_uri, which parses
 * and then only stat()s the helper path; it never runs anything. URIs come
 * from DEP records and the command line. */
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
	r = ck_provider_exec.check_uri(uri, msg, sizeof(msg));
	FZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r < 0)
		FZ_CHECK(memchr(msg, 0, sizeof(msg)) != NULL);
	FZ_CHECK(ck_provider_exec.check_uri(uri, small, sizeof(small)) == r);
	free(uri);
	return 0;
}
