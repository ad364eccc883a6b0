/* ck-mkfs: initialise a ckfs volume. A thin main over libck. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "keys/dep.h"
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/volume.h"
#include "tools/opterr.h"

enum { EXIT_USAGE = 1, EXIT_REFUSED = 2, EXIT_OPERATIONAL = 3 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ck-mkfs [--key-dir DIR] [--force] VOLUME\n"
		"Initialise a ckfs volume in VOLUME (an empty or new directory).\n\n"
		"  -k, --key-dir DIR  where the volume's key file goes (default: $CKFS_KEY_DIR,\n"
		"                     else " CK_KEY_DIR_DEFAULT "); created 0700 if missing\n"
		"  -f, --force        also initialise a non-empty directory or an existing\n"
		"                     volume (the old header and key file are kept)\n"
		"  -w, --purge-wait DURATION\n"
		"                     waiting period between a purge request and its\n"
		"                     execution (e.g. 0, 30d, 12h; default 0; change it\n"
		"                     later with 'ck-dep VOLUME config --purge-wait')\n"
		"  -a, --availability-key file:/DIR/\n"
		"                     make each DEP's availability key in DIR (default:\n"
		"                     KEYDIR/availability/, apart from the customer keys)\n"
		"  -q, --quiet        print nothing on success\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n\n"
		"exit status: 0 done, 1 usage error, 2 refused, 3 operational error\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-dir", required_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "purge-wait", required_argument, NULL, 'w' },
		{ "availability-key", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *key_dir = NULL, *wait = NULL;
	struct ck_config cfg = { 0 };
	char msg[1024] = "";
	int c, force = 0, quiet = 0, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:fqhVw:a:", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (strncmp(optarg, "file:/", 6) || optarg[strlen(optarg) - 1] != '/' ||
			    strlen(optarg) >= sizeof(cfg.availability) - 64) {
				fprintf(stderr, "ck-mkfs: --availability-key takes file:/DIR/ (an absolute "
				        "directory ending in '/'), not \"%s\"\n", optarg);
				return EXIT_USAGE;
			}
			snprintf(cfg.availability, sizeof(cfg.availability), "%s", optarg);
			break;
		case 'w': wait = optarg; break;
		case 'k': key_dir = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("ck-mkfs %s\n", CKFS_VERSION); return 0;
		default: tool_opt_error("ck-mkfs", c, argv); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "ck-mkfs: expected exactly one VOLUME argument (see ck-mkfs --help)\n");
		return EXIT_USAGE;
	}
	if (!argv[optind][0]) {
		fprintf(stderr, "ck-mkfs: the VOLUME argument is empty\n");
		return EXIT_USAGE;
	}
	if (wait && ck_parse_duration(wait, &cfg.purge_wait) < 0) {
		fprintf(stderr, "ck-mkfs: --purge-wait %s is not a duration (like 0, 90s, 30m, 12h, 30d)\n",
		        wait);
		return EXIT_USAGE;
	}
	if (ck_secmem_init(1 << 16) < 0) {
		fprintf(stderr, "ck-mkfs: cannot set up secure memory\n");
		return EXIT_OPERATIONAL;
	}
	key_dir = ck_key_dir(key_dir);
	r = ck_volume_create(argv[optind], key_dir, force, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "ck-mkfs: %s\n", msg);
		switch (r) {
		case -EEXIST: case -ENOTEMPTY: case -EPERM: case -EACCES: case -EROFS:
		case -ENOTDIR:
			return EXIT_REFUSED;
		default:
			return EXIT_OPERATIONAL;
		}
	}
	if (cfg.purge_wait || cfg.availability[0]) {
		struct ck_volume v;
		char m2[1024];
		if (ck_volume_open(argv[optind], key_dir, &v, m2, sizeof(m2)) < 0 ||
		    ck_config_save(&v, &cfg) < 0) {
			fprintf(stderr, "ck-mkfs: cannot record the purge waiting period\n");
			return EXIT_OPERATIONAL;
		}
		ck_volume_close(&v);
	}
	if (!quiet)
		printf("ck-mkfs: made volume %s (id %s); key file in %s\n", argv[optind], msg, key_dir);
	return 0;
}
