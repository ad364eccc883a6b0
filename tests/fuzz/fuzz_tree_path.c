/* Fuzz the tree path normaliser (ck_tree_path_normalise: paths from the
 * command line of ck-dep and ck-assign, and from tree records) and the DEP
 * name check (ck_dep_name_valid). The output buffer is exactly the size
 * given, so AddressSanitizer sees any write past it. Properties of a
 * normalised path: not empty, no leading or trailing '/', no empty, "." or
 * ".." component, no component over 255 bytes, shorter than the buffer,
 * and normalising it again changes nothing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/dep.h"
#include "tests/fuzz/fuzz.h"

static void check_path(const char *p)
{
	size_t n = strlen(p);
	const char *s = p;

	FZ_CHECK(n > 0 && p[0] != '/' && p[n - 1] != '/');
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);

		FZ_CHECK(l > 0 && l <= 255);
		FZ_CHECK(!(l == 1 && s[0] == '.') && !(l == 2 && s[0] == '.' && s[1] == '.'));
		s += l + (e ? 1 : 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *out, *again;
	size_t cap;
	int r;

	if (size < 1 || size > 4 * CK_TREE_PATH_MAX)
		return 0;
	/* First byte: the output size (0 means CK_TREE_PATH_MAX). */
	cap = data[0] ? data[0] : CK_TREE_PATH_MAX;
	in = fz_strndup(data + 1, size - 1);
	out = malloc(cap);
	r = ck_tree_path_normalise(in, out, cap);
	FZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG);
	if (r == 0) {
		FZ_CHECK(strlen(out) < cap);
		check_path(out);
		again = malloc(cap);
		FZ_CHECK(ck_tree_path_normalise(out, again, cap) == 0 && !strcmp(out, again));
		free(again);
	}
	free(out);

	if (ck_dep_name_valid(in)) {
		size_t n = strlen(in);
		FZ_CHECK(n >= 1 && n <= CK_DEP_NAME_MAX && in[0] != '-' && in[0] != '.');
		FZ_CHECK(strspn(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                    "0123456789-_.") == n);
	}
	free(in);
	return 0;
}
