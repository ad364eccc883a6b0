/* ck-assign: attach a DEP to a tree (a directory path in the volume).
 * A new or empty tree is encrypted under a fresh tree key from its first
 * byte; a tree that already holds data is recorded as pending until it is
 * re-encrypted with --apply (not yet implemented: refused with a message). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "keys/audit.h"
#include "keys/dep.h"
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/util.h"
#include "tools/common.h"

static const char *prog = "ck-assign";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ck-assign [--key-dir DIR] [--json] VOLUME PATH DEP\n"
		"Attach DEP to the tree rooted at PATH (relative to the volume root).\n"
		"A new or empty tree is encrypted under DEP from its first byte; mounts\n"
		"follow within a second. Trees do not nest.\n"
		"exit status: 0 ok, 1 refused or failed, 2 usage error, 3 cannot open the volume\n");
}

/* 1 if the backing directory holds user entries, 0 if empty or missing. */
static int has_data(const struct ck_volume *v, const char *path)
{
	char b[8192];
	struct dirent *e;
	DIR *d;
	int fd, r = 0;

	if (ck_volume_backing_path(v, path, b, sizeof(b)) < 0)
		return 0;
	fd = openat(v->fd, b, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 1;   /* exists but is not a directory: refuse below */
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 1;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || !strncmp(e->d_name, ".L", 2)) {
			r = 1;
			break;
		}
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-dir", required_argument, NULL, 'k' },
		{ "apply", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *key_dir = NULL;
	char path[CK_TREE_PATH_MAX], msg[512];
	struct ck_tree_rec *trees = NULL, t = { 0 };
	struct ck_dep d;
	struct ck_volume v;
	uint8_t *dk = NULL, *tk = NULL;
	size_t nt = 0, len = 0;
	int c, apply = 0, json = 0, lock = -1, r = EXIT_FAIL, fallback = 0;

	while ((c = getopt_long(argc, argv, "k:ajhV", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_dir = optarg; break;
		case 'a': apply = 1; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("ck-assign %s\n", CKFS_VERSION); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "%s: expected VOLUME PATH DEP\n", prog);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (ck_tree_path_normalise(argv[optind + 1], path, sizeof(path)) < 0) {
		fprintf(stderr, "%s: \"%s\" is not a valid tree path (relative, no '.' or '..' "
		        "components)\n", prog, argv[optind + 1]);
		return EXIT_USAGE;
	}
	key_dir = ck_key_dir(key_dir);
	tool_open_volume(prog, argv[optind], key_dir, &v);
	if ((lock = ck_meta_lock(&v)) < 0)
		goto out;
	if (ck_dep_find(&v, argv[optind + 2], &d) < 0) {
		fprintf(stderr, "%s: no dep named \"%s\" in this volume\n", prog, argv[optind + 2]);
		goto out;
	}
	if (d.state != CK_DEP_ACTIVE) {
		fprintf(stderr, "%s: dep \"%s\" is %s; only an active dep can be assigned\n", prog,
		        d.name, ck_dep_state_name(d.state));
		goto out;
	}
	if (ck_tree_rec_load_all(&v, &trees, &nt, NULL) < 0)
		goto out;
	for (size_t i = 0; i < nt; i++) {
		size_t a = strlen(trees[i].path), b = strlen(path);
		size_t m = a < b ? a : b;
		if (trees[i].state == CK_TREE_PURGED)
			continue;
		if (!strcmp(trees[i].path, path)) {
			if (!memcmp(trees[i].dep_id, d.id, CK_ID_LEN)) {
				printf("%s: %s is already assigned to dep \"%s\"\n", prog, path, d.name);
				r = EXIT_OK;
			} else {
				fprintf(stderr, "%s: %s is assigned to another dep; moving a tree between "
				        "deps needs --apply, which this version does not implement yet\n",
				        prog, path);
			}
			goto out;
		}
		if (!strncmp(trees[i].path, path, m) && (trees[i].path[m] == '/' || path[m] == '/')) {
			fprintf(stderr, "%s: %s would nest with tree %s; trees do not nest\n", prog, path,
			        trees[i].path);
			goto out;
		}
	}
	if (apply || has_data(&v, path)) {
		fprintf(stderr, "%s: %s already holds data; re-encrypting it under dep \"%s\" "
		        "(--apply) is not implemented in this version: assign new or empty trees\n",
		        prog, path, d.name);
		goto out;
	}
	dk = ck_secret_alloc(CK_KEY_LEN);
	tk = ck_secret_alloc(CK_KEY_LEN);
	if (!dk || !tk)
		goto out;
	if ((c = ck_dep_unwrap(&d, dk, 0, &fallback, msg, sizeof(msg))) < 0) {
		fprintf(stderr, "%s: cannot unwrap dep \"%s\" (%s): %s\n", prog, d.name,
		        ck_key_result_name(c), msg);
		goto out;
	}
	if (ck_random(t.id, CK_ID_LEN) < 0 || ck_random(tk, CK_KEY_LEN) < 0 ||
	    ck_key_wrap(dk, tk, CK_KEY_LEN, t.wrapped_key, &len) < 0)
		goto out;
	t.wlen = (uint16_t)len;
	memcpy(t.dep_id, d.id, CK_ID_LEN);
	t.state = CK_TREE_ACTIVE;
	t.created = (uint64_t)time(NULL);
	t.generation = 1;
	snprintf(t.path, sizeof(t.path), "%s", path);
	if ((c = ck_tree_rec_save(&v, &t)) < 0) {
		fprintf(stderr, "%s: cannot save the tree record: %s\n", prog, strerror(-c));
		goto out;
	}
	{
		struct ck_audit_event e = { "assigned", d.name, path, NULL, "ok", "operator" };
		if (ck_audit_append(&v, &e) < 0)
			fprintf(stderr, "%s: warning: could not append to the audit log\n", prog);
	}
	if (json)
{
		printf("{\"tree\":");
		json_str(stdout, path);
		printf(",\"dep\":");
		json_str(stdout, d.name);
		printf(",\"state\":\"active\"}\n");
	}
	else
		printf("%s: %s is now encrypted under dep \"%s\"\n", prog, path, d.name);
	r = EXIT_OK;
out:
	ck_secret_free(dk, CK_KEY_LEN);
	ck_secret_free(tk, CK_KEY_LEN);
	if (trees) {
		ck_wipe(trees, nt * sizeof(*trees));
		free(trees);
	}
	ck_meta_unlock(lock);
	ck_volume_close(&v);
	return r;
}
