/* Fuzz the duration parser (ck_parse_duration: "0", "90s", "30m", "12h",
 * "30d"; ck-dep config --purge-wait). Property: what it accepts is digits
 * and at most one unit letter, nothing else (no sign, no blanks), and the
 * value is the number times the unit. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "keys/dep.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	uint64_t v = 0, mul = 1, num = 0;
	size_t digits;
	int r;

	if (size > 64)
		return 0;
	s = fz_strndup(data, size);
	r = ck_parse_duration(s, &v);
	FZ_CHECK(r == 0 || r == -EINVAL);
	if (r == 0) {
		digits = strspn(s, "0123456789");
		FZ_CHECK(digits >= 1);
		FZ_CHECK(s[digits] == '\0' || (strchr("smhd", s[digits]) && s[digits + 1] == '\0'));
		switch (s[digits]) {
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		}
		for (size_t i = 0; i < digits; i++)
			num = num * 10 + (uint64_t)(s[i] - '0');
		FZ_CHECK(v == num * mul);
	}
	free(s);
	return 0;
}
