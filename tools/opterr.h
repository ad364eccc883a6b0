/* The one-line error of the tools (and ck-mkfs) for a bad option. */
#ifndef CK_TOOLS_OPTERR_H
#define CK_TOOLS_OPTERR_H
#include <getopt.h>
#include <stdio.h>

/* For getopt_long with opterr = 0 and an optstring starting with ':': the
 * one-line error for an unknown option (c == '?') or an option without
 * its value (c == ':'). Bad input gets one line, not the usage text. */
static inline void tool_opt_error(const char *prog, int c, char *const argv[])
{
	const char *a = argv[optind - 1];

	if (c == ':')
		fprintf(stderr, "%s: option %s needs a value (see %s --help)\n", prog, a, prog);
	else if (optopt && optopt != '?' && !(a[0] == '-' && a[1] == '-'))
		fprintf(stderr, "%s: unknown option -%c (see %s --help)\n", prog, optopt, prog);
	else
		fprintf(stderr, "%s: unknown option %s (see %s --help)\n", prog, a, prog);
}

#endif
