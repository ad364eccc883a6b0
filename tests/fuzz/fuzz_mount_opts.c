/* Fuzz mount option parsing: fuse_opt_parse with ckfs's option table and
 * option handler, then the value checks main() makes (cache_timeout,
 * key_ttl, threads). The table, the handler and the checks are copied from
 * fs/main.c (which has a main() and FUSE state of its own, so it cannot be
 * linked here): keep them in step with it.
 *
 * Input: the command line after "ckfs", words separated by NUL bytes (at
 * most 64 words). libfuse is not instrumented, so coverage feedback comes
 * only from the handler and the checks; AddressSanitizer still sees the
 * strings libfuse hands over and LeakSanitizer what is not freed. */
#include <fuse_log.h>
#include <fuse_opt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/fuzz/fuzz.h"

/* ---- copied from fs/main.c ---- */
struct options {
	char *volume;
	char *mountpoint;
	char *key_dir;
	char *timeout;
	char *key_ttl;
	int foreground, debug, help, version, ro, threads;
};

enum { KEY_FG, KEY_DEBUG, KEY_HELP, KEY_VERSION, KEY_RO };

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt opt_spec[] = {
	OPT("key_dir=%s", key_dir),
	OPT("cache_timeout=%s", timeout),
	OPT("threads=%d", threads),
	OPT("key_ttl=%s", key_ttl),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_END
};

static FILE *devnull;

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct options *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->volume) {
			o->volume = strdup(arg);
			return 0;
		}
		if (!o->mountpoint) {
			o->mountpoint = strdup(arg);
			return 0;
		}
		fprintf(devnull, "ckfs: unexpected argument '%s'\n", arg);
		return -1;
	case KEY_FG: o->foreground = 1; return 0;
	case KEY_DEBUG: o->debug = 1; o->foreground = 1; return 1;
	case KEY_HELP: o->help = 1; return 0;
	case KEY_VERSION: o->version = 1; return 0;
	case KEY_RO: o->ro = 1; return 1;
	default: return 1;
	}
}

/* main()'s checks after parsing: 0 when the options are usable. */
static int check_values(const struct options *o)
{
	double timeout = 1.0, key_ttl = 30;
	char *end;

	if (o->help || o->version)
		return 0;
	if (!o->volume || !o->mountpoint)
		return 1;
	if (o->timeout) {
		timeout = strtod(o->timeout, &end);
		if (*end || timeout < 0 || timeout > 86400)
			return 1;
	}
	if (o->key_ttl) {
		key_ttl = strtod(o->key_ttl, &end);
		if (*end || key_ttl < 1 || key_ttl > 86400)
			return 1;
	}
	if (o->threads < 1 || o->threads > 1024)
		return 1;
	return 0;
}
/* ---- end of the copy ---- */

static void quiet(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vfprintf(devnull, fmt, ap);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	fuse_set_log_func(quiet);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[66];
	int argc = 0;
	size_t s = 0;

	if (size > 8192)
		return 0;
	words[argc++] = strdup("ckfs");
	for (;;) {
		const uint8_t *nul = memchr(data + s, 0, size - s);
		size_t e = nul ? (size_t)(nul - data) : size;

		words[argc++] = fz_strndup(data + s, e - s);
		if (!nul || argc == 65)
			break;
		s = e + 1;
	}
	words[argc] = NULL;

	struct fuse_args args = FUSE_ARGS_INIT(argc, words);
	struct options o = { .threads = 16 };
	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) == 0) {
		(void)check_values(&o);
		/* what main() then adds */
		FZ_CHECK(fuse_opt_add_arg(&args, "-ofsname=ckfs:x,subtype=ckfs,default_permissions") == 0);
		FZ_CHECK(args.argc >= 1 && args.argv[args.argc] == NULL);
	}
	fuse_opt_free_args(&args);
	free(o.volume);
	free(o.mountpoint);
	free(o.key_dir);
	free(o.timeout);
	free(o.key_ttl);
	for (int i = 0; i < argc; i++)
		free(words[i]);
	return 0;
}
