/* ck-assign: attach a DEP to a tree (a directory path in the volume).
 * A new or empty tree is encrypted under a fresh tree key from its first
 * byte; a tree that already holds data is recorded as pending until it is
 * re-encrypted with --apply ("the mailbox move", tools/apply.c), which also
 * moves a tree from one DEP to another, online and resumably. */
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
#include "tools/apply.h"
#include "tools/common.h"

static const char *prog = "ck-assign";

/* --json: every outcome is one JSON object on stdout (docs/JSON.md). */
static void state_json(const char *path, const char *dep, const char *state)
{
	printf("{\"version\":1,\"tree\":");
	json_str(stdout, path);
	printf(",\"dep\":");
	json_str(stdout, dep);
	printf(",\"state\":\"%s\"}\n", state);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ck-assign [--key-dir DIR] [--apply] [--json] VOLUME PATH DEP\n"
		"Attach DEP to the tree rooted at PATH (relative to the volume root).\n"
		"A new or empty tree is encrypted under DEP from its first byte; mounts\n"
		"follow within a second. A tree that holds data is recorded as pending;\n"
		"--apply re-encrypts it under DEP (also from one DEP to another), online\n"
		"and resumable: re-run it after an interruption. Trees do not nest.\n"
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

/* In the audit log DEPs and trees appear by ID (names and paths are
 * customer data; the log is in the backing store). */
static void audit_ids(const struct ck_volume *v, const char *event, const uint8_t *dep_id,
                      const uint8_t *tree_id, const char *result)
{
	char d[40] = "dep:", t[40] = "tree:";
	struct ck_audit_event e = { event, dep_id ? d : NULL, tree_id ? t : NULL, NULL, result,
	                            "operator" };

	if (dep_id)
		ck_hex(dep_id, CK_ID_LEN, d + 4);
	if (tree_id)
		ck_hex(tree_id, CK_ID_LEN, t + 5);
	if (ck_audit_append(v, &e) < 0)
		fprintf(stderr, "%s: warning: could not append to the audit log\n", prog);
}

/* A new tree record for path under d, with a fresh tree key. */
static int new_record(struct ck_dep *d, const char *path, uint32_t state,
                      const uint8_t old_rec[CK_ID_LEN], struct ck_tree_rec *t)
{
	uint8_t *dk = ck_secret_alloc(CK_KEY_LEN), *tk = ck_secret_alloc(CK_KEY_LEN);
	char msg[512];
	size_t len = 0;
	int r, fb = 0;

	memset(t, 0, sizeof(*t));
	if (!dk || !tk) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = ck_dep_unwrap(d, dk, 0, &fb, msg, sizeof(msg))) < 0) {
		fprintf(stderr, "%s: cannot unwrap dep \"%s\" (%s): %s\n", prog, d->name,
		        ck_key_result_name(r), msg);
		goto out;
	}
	if ((r = ck_random(t->id, CK_ID_LEN)) < 0 || (r = ck_random(tk, CK_KEY_LEN)) < 0 ||
	    (r = ck_key_wrap(dk, tk, CK_KEY_LEN, t->wrapped_key, &len)) < 0)
		goto out;
	t->wlen = (uint16_t)len;
	memcpy(t->dep_id, d->id, CK_ID_LEN);
	if (old_rec)
		memcpy(t->old_rec_id, old_rec, CK_ID_LEN);
	t->state = state;
	t->created = (uint64_t)time(NULL);
	t->generation = 1;
	snprintf(t->path, sizeof(t->path), "%s", path);
out:
	ck_secret_free(dk, CK_KEY_LEN);
	ck_secret_free(tk, CK_KEY_LEN);
	return r;
}

static int save(struct ck_volume *v, struct ck_tree_rec *t)
{
	int r = ck_tree_rec_save(v, t);
	if (r < 0)
		fprintf(stderr, "%s: cannot save the tree record of %s: %s\n", prog, t->path, strerror(-r));
	return r;
}

/* The re-encryption of tree record t (state APPLYING). */
static int run_apply(struct ck_volume *v, struct ck_tree_rec *t, int json, const char *dep_name)
{
	static const uint8_t zero[CK_ID_LEN];
	struct ck_tree_rec *all = NULL, *old = NULL;
	struct ck_dep *deps = NULL;
	struct ck_tree nt = { 0 }, ot = { 0 };
	struct apply_stats st;
	char msg[512], bpath[8192];
	size_t nd = 0, na = 0;
	int r, fb = 0, own_old = 0, lock;

	if ((r = ck_dep_load_all(v, &deps, &nd, NULL)) < 0 ||
	    (r = ck_tree_rec_load_all(v, &all, &na, NULL)) < 0)
		goto out;
	if ((r = ck_tree_key_unwrap(v, t, deps, nd, &nt, 0, &fb, msg, sizeof(msg))) < 0) {
		fprintf(stderr, "%s: cannot unwrap the new key of %s: %s\n", prog, t->path, msg);
		goto out;
	}
	if (!memcmp(t->old_rec_id, zero, CK_ID_LEN)) {
		ot = v->service;
	} else {
		for (size_t i = 0; i < na; i++)
			if (!memcmp(all[i].id, t->old_rec_id, CK_ID_LEN))
				old = &all[i];
		if (!old || (r = ck_tree_key_unwrap(v, old, deps, nd, &ot, 0, &fb, msg, sizeof(msg))) < 0) {
			fprintf(stderr, "%s: cannot unwrap the key %s is moving from: %s\n", prog, t->path,
			        old ? msg : "its record is gone");
			r = r < 0 ? r : -ENOENT;
			goto out;
		}
		own_old = 1;
	}
	/* Every mount on this host must serve the tree with both keys before
	 * the first object changes (other hosts: see docs/SHARED-STORAGE.md). */
	if ((r = ck_wait_mounts(v, 10000)) < 0) {
		fprintf(stderr, "%s: a ckfs mount of this volume did not confirm the change within "
		        "10 s; nothing converted yet, re-run to resume\n", prog);
		goto out;
	}
	r = ck_volume_backing_path(v, t->path, bpath, sizeof(bpath));
	if (r == -ENOENT) {
		memset(&st, 0, sizeof(st));
		r = 0;
	} else if (r < 0) {
		fprintf(stderr, "%s: cannot find %s in the volume: %s\n", prog, t->path, strerror(-r));
		goto out;
	} else if ((r = ck_apply_tree(v, bpath, t->path, &ot, &nt, json, isatty(2), &st)) < 0) {
		fprintf(stderr, "%s: apply of %s stopped: %s; re-run to resume\n", prog, t->path,
		        strerror(-r));
		goto out;
	}
	if (st.problems) {
		fprintf(stderr, "%s: %llu objects of %s could not be converted (see above); the tree "
		        "stays in state applying; fix or remove them and re-run\n", prog,
		        (unsigned long long)st.problems, t->path);
		r = -EIO;
		goto out;
	}
	if ((lock = ck_meta_lock(v)) < 0) {
		r = lock;
		goto out;
	}
	t->state = CK_TREE_ACTIVE;
	t->generation++;
	memset(t->old_rec_id, 0, CK_ID_LEN);
	r = save(v, t);
	if (r == 0 && old) {
		old->state = CK_TREE_RETIRED;
		ck_wipe(old->wrapped_key, sizeof(old->wrapped_key));
		old->wlen = 0;
		old->generation++;
		r = save(v, old);
	}
	ck_meta_unlock(lock);
	if (r == 0) {
		char res[128];
		snprintf(res, sizeof(res), "ok: %llu files, %llu converted",
		         (unsigned long long)st.files, (unsigned long long)st.converted);
		audit_ids(v, "applied", t->dep_id, t->id, res);
		if (json) {
			printf("{\"version\":1,\"tree\":");
			json_str(stdout, t->path);
			printf(",\"dep\":");
			json_str(stdout, dep_name);
			printf(",\"state\":\"active\",\"files\":%llu,\"converted\":%llu,\"bytes\":%llu}\n",
			       (unsigned long long)st.files, (unsigned long long)st.converted,
			       (unsigned long long)st.bytes);
		}
		else
			printf("%s: %s re-encrypted: %llu files (%llu converted now), %llu bytes\n", prog,
			       t->path, (unsigned long long)st.files, (unsigned long long)st.converted,
			       (unsigned long long)st.bytes);
	}
out:
	ck_tree_release(&nt);
	if (own_old)
		ck_tree_release(&ot);
	free(deps);
	if (all) {
		ck_wipe(all, na * sizeof(*all));
		free(all);
	}
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
	char path[CK_TREE_PATH_MAX];
	struct ck_tree_rec *trees = NULL, t, *cur = NULL;
	struct ck_dep d;
	struct ck_volume v;
	size_t nt = 0;
	int c, apply = 0, json = 0, lock = -1, alock = -1, r = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:ajhV", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_dir = optarg; break;
		case 'a': apply = 1; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("ck-assign %s\n", CKFS_VERSION); return EXIT_OK;
		default: tool_opt_error(prog, c, argv); return EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "%s: expected VOLUME PATH DEP (see %s --help)\n", prog, prog);
		return EXIT_USAGE;
	}
	if (ck_tree_path_normalise(argv[optind + 1], path, sizeof(path)) < 0) {
		fprintf(stderr, "%s: \"%s\" is not a valid tree path (relative, no '.' or '..' "
		        "components)\n", prog, argv[optind + 1]);
		return EXIT_USAGE;
	}
	key_dir = ck_key_dir(key_dir);
	tool_open_volume(prog, argv[optind], key_dir, &v);
	if (apply) {
		/* One apply at a time per volume. */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		alock = openat(v.fd, CK_VOLUME_DIR "/apply.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (alock < 0 || fcntl(alock, F_OFD_SETLK, &fl) < 0) {
			fprintf(stderr, "%s: another apply is running on this volume; wait for it\n", prog);
			goto out;
		}
	}
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
		if (trees[i].state == CK_TREE_PURGED || trees[i].state == CK_TREE_RETIRED)
			continue;
		if (!strcmp(trees[i].path, path)) {
			/* While a move between deps is interrupted, the record being
			 * applied is the current one, not the one it replaces. */
			if (!cur || trees[i].state == CK_TREE_APPLYING)
				cur = &trees[i];
			continue;
		}
		if (!strncmp(trees[i].path, path, m) && (trees[i].path[m] == '/' || path[m] == '/')) {
			fprintf(stderr, "%s: %s would nest with tree %s; trees do not nest\n", prog, path,
			        trees[i].path);
			goto out;
		}
	}
	int same = cur && !memcmp(cur->dep_id, d.id, CK_ID_LEN);
	if (cur && cur->state == CK_TREE_APPLYING) {
		if (!same) {
			fprintf(stderr, "%s: %s is being moved to another dep; finish that first with "
			        "'ck-assign --apply' and that dep\n", prog, path);
			goto out;
		}
		if (!apply) {
			if (json)
				state_json(path, d.name, "applying");
			else
				printf("%s: %s is being re-encrypted under dep \"%s\"; run 'ck-assign --apply' "
				       "to finish\n", prog, path, d.name);
			r = EXIT_OK;
			goto out;
		}
		t = *cur;       /* resume */
	} else if (cur && same && cur->state == CK_TREE_ACTIVE) {
		if (json)
			state_json(path, d.name, "active");
		else
			printf("%s: %s is already under dep \"%s\"\n", prog, path, d.name);
		r = EXIT_OK;
		goto out;
	} else if (cur && same && cur->state == CK_TREE_PENDING) {
		if (!apply) {
			if (json)
				state_json(path, d.name, "pending-apply");
			else
				printf("%s: %s is assigned to dep \"%s\" and waits for 'ck-assign --apply'\n",
				       prog, path, d.name);
			r = EXIT_OK;
			goto out;
		}
		t = *cur;
		t.state = CK_TREE_APPLYING;
		t.generation++;
		if (save(&v, &t) < 0)
			goto out;
	} else if (cur) {
		/* Moving from another dep (or its pending assignment): only by
		 * re-encryption, from the keys the data is under now. */
		if (!apply) {
			fprintf(stderr, "%s: %s is assigned to another dep; moving it needs --apply\n",
			        prog, path);
			goto out;
		}
		static const uint8_t zero[CK_ID_LEN];
		struct ck_dep *all_deps = NULL;
		size_t ndeps = 0;
		int from_ok = cur->state == CK_TREE_PENDING;
		if (!from_ok && ck_dep_load_all(&v, &all_deps, &ndeps, NULL) == 0)
			for (size_t k = 0; k < ndeps; k++)
				if (!memcmp(all_deps[k].id, cur->dep_id, CK_ID_LEN))
					from_ok = all_deps[k].state == CK_DEP_ACTIVE;
		free(all_deps);
		if (!from_ok) {
			fprintf(stderr, "%s: %s is under a dep that is not active (revoked or purged); its "
			        "data cannot be moved to another dep\n", prog, path);
			goto out;
		}
		if (new_record(&d, path, CK_TREE_APPLYING,
		               cur->state == CK_TREE_PENDING ? zero : cur->id, &t) < 0)
			goto out;
		if (cur->state == CK_TREE_PENDING) {
			cur->state = CK_TREE_RETIRED;
			cur->generation++;
			if (save(&v, cur) < 0)
				goto out;
		}
		if (save(&v, &t) < 0)
			goto out;
	} else {
		int data = has_data(&v, path);
		uint32_t state = !data ? CK_TREE_ACTIVE : apply ? CK_TREE_APPLYING : CK_TREE_PENDING;
		if (new_record(&d, path, state, NULL, &t) < 0 || save(&v, &t) < 0)
			goto out;
		audit_ids(&v, "assigned", d.id, t.id, ck_tree_state_name(state));
		if (state == CK_TREE_PENDING && json) {
			state_json(path, d.name, "pending-apply");
			r = EXIT_OK;
			goto out;
		}
		if (state == CK_TREE_PENDING) {
			printf("%s: %s already holds data: assigned to dep \"%s\" as pending; it stays "
			       "under its current key until you run 'ck-assign --apply %s %s %s'\n", prog,
			       path, d.name, argv[optind], path, d.name);
			r = EXIT_OK;
			goto out;
		}
		if (state == CK_TREE_ACTIVE) {
			/* Return once the mounts here encrypt new files under it. */
			if (ck_wait_mounts(&v, 5000) < 0)
				fprintf(stderr, "%s: warning: a ckfs mount of this volume has not confirmed "
				        "the change yet\n", prog);
			if (json) {
				state_json(path, d.name, "active");
			} else {
				printf("%s: %s is now encrypted under dep \"%s\"\n", prog, path, d.name);
			}
			r = EXIT_OK;
			goto out;
		}
	}
	ck_meta_unlock(lock);
	lock = -1;
	audit_ids(&v, "apply-started", d.id, t.id, "ok");
	r = run_apply(&v, &t, json, d.name) < 0 ? EXIT_FAIL : EXIT_OK;
out:
	ck_wipe(&t, sizeof(t));
	if (trees) {
		ck_wipe(trees, nt * sizeof(*trees));
		free(trees);
	}
	ck_meta_unlock(lock);
	if (alock >= 0)
		close(alock);
	ck_volume_close(&v);
	return r;
}
