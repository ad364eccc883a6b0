/* ck-dep: create, list, show, probe, revoke and purge DEPs; read the audit
 * log. A thin main over libck (keys/dep.h, keys/provider.h, keys/audit.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "keys/audit.h"
#include "keys/dep.h"
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/util.h"
#include "tools/common.h"

static const char *prog = "ck-dep";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ck-dep [--key-dir DIR] VOLUME COMMAND [ARGS] [--json]\n"
		"commands:\n"
		"  create NAME [--customer-key URI]... [--availability-key URI]\n"
		"                       new DEP; without --customer-key two file: keys are made\n"
		"                       in KEYDIR/customer/, the availability key in\n"
		"                       KEYDIR/availability/\n"
		"  list                 every DEP with its state, keys and trees\n"
		"  show NAME            one DEP\n"
		"  status [NAME]        probe the customer keys now and show the answers\n"
		"  revoke NAME          revoke now: every mount stops serving its trees\n"
		"  purge NAME [--confirm NAME]\n"
		"                       destroy every copy of a revoked DEP's key and its trees\n"
		"  audit [--verify]     print (or verify) the audit log\n"
		"options: --json (machine-readable output), --key-dir DIR, -h/--help, -V/--version\n"
		"exit status: 0 ok, 1 failed or refused, 2 usage error, 3 cannot open the volume\n");
}

static void audit(const struct ck_volume *v, const char *event, const char *dep, const char *tree,
                  const char *uri, const char *result)
{
	struct ck_audit_event e = { event, dep, tree, uri, result, "operator" };
	if (ck_audit_append(v, &e) < 0)
		fprintf(stderr, "%s: warning: could not append to the audit log\n", prog);
}

static int trees_of(const struct ck_volume *v, const struct ck_dep *d, struct ck_tree_rec **out, size_t *n)
{
	struct ck_tree_rec *all;
	size_t m, k = 0;
	int r = ck_tree_rec_load_all(v, &all, &m, NULL);

	if (r < 0)
		return r;
	for (size_t i = 0; i < m; i++)
		if (!memcmp(all[i].dep_id, d->id, CK_ID_LEN))
			all[k++] = all[i];
	*out = all;
	*n = k;
	return 0;
}

static void print_dep(const struct ck_volume *v, const struct ck_dep *d, int json, FILE *f)
{
	struct ck_tree_rec *trees = NULL;
	size_t nt = 0;
	char hex[33];

	hex_id(d->id, hex);
	if (trees_of(v, d, &trees, &nt) < 0)
		nt = 0;
	if (json) {
		fprintf(f, "{\"name\":");
		json_str(f, d->name);
		fprintf(f, ",\"id\":\"%s\",\"state\":\"%s\",\"created\":%llu,\"changed\":%llu,\"keys\":[",
		        hex, ck_dep_state_name(d->state), (unsigned long long)d->created,
		        (unsigned long long)d->changed);
		for (uint32_t i = 0; i < d->n_wraps; i++) {
			fprintf(f, "%s{\"role\":\"%s\",\"uri\":", i ? "," : "", ck_role_name(d->wraps[i].role));
			json_str(f, d->wraps[i].uri);
			fprintf(f, ",\"last_result\":\"%s\",\"last_time\":%llu,\"wrapped\":%s}",
			        ck_result_name(d->wraps[i].last_result),
			        (unsigned long long)d->wraps[i].last_time, d->wraps[i].len ? "true" : "false");
		}
		fprintf(f, "],\"trees\":[");
		for (size_t i = 0; i < nt; i++) {
			hex_id(trees[i].id, hex);
			fprintf(f, "%s{\"path\":", i ? "," : "");
			json_str(f, trees[i].path);
			fprintf(f, ",\"id\":\"%s\",\"state\":\"%s\"}", hex, ck_tree_state_name(trees[i].state));
		}
		fprintf(f, "]}");
	} else {
		fprintf(f, "%-20s %s  %s\n", d->name, hex, ck_dep_state_name(d->state));
		for (uint32_t i = 0; i < d->n_wraps; i++)
			fprintf(f, "    %-12s %-11s %s\n", ck_role_name(d->wraps[i].role),
			        ck_result_name(d->wraps[i].last_result), d->wraps[i].uri);
		for (size_t i = 0; i < nt; i++)
			fprintf(f, "    tree %-40s %s\n", trees[i].path, ck_tree_state_name(trees[i].state));
	}
	free(trees);
}

static int default_uri(const char *key_dir, const char *sub, const char *name, const uint8_t id[16],
                       int n, char *out, size_t len)
{
	char hex[33];

	hex_id(id, hex);
	int w = n ? snprintf(out, len, "file:%s/%s/%s-%.8s-%d.key", key_dir, sub, name, hex, n)
	          : snprintf(out, len, "file:%s/%s/%s.key", key_dir, sub, hex);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

static int cmd_create(struct ck_volume *v, const char *key_dir, const char *name,
                      char **cust, int ncust, const char *avail)
{
	struct ck_dep d = { 0 };
	uint8_t *key = NULL;
	char msg[512], uris[CK_DEP_MAX_WRAPS][CK_URI_MAX];
	int lock, r = EXIT_FAIL, made[CK_DEP_MAX_WRAPS] = { 0 };

	if (!ck_dep_name_valid(name)) {
		fprintf(stderr, "%s: \"%s\" is not a valid dep name (1-64 of A-Z a-z 0-9 . _ -)\n", prog, name);
		return EXIT_USAGE;
	}
	if (ncust > CK_DEP_MAX_WRAPS - 1) {
		fprintf(stderr, "%s: at most %d customer keys\n", prog, CK_DEP_MAX_WRAPS - 1);
		return EXIT_USAGE;
	}
	if ((lock = ck_meta_lock(v)) < 0) {
		fprintf(stderr, "%s: cannot lock the volume's records: %s\n", prog, strerror(-lock));
		return EXIT_FAIL;
	}
	if (ck_dep_find(v, name, &d) == 0) {
		fprintf(stderr, "%s: dep \"%s\" already exists\n", prog, name);
		goto out;
	}
	memset(&d, 0, sizeof(d));
	key = ck_secret_alloc(CK_KEY_LEN);
	if (!key || ck_random(d.id, CK_ID_LEN) < 0 || ck_random(key, CK_KEY_LEN) < 0)
		goto out;
	snprintf(d.name, sizeof(d.name), "%s", name);
	d.state = CK_DEP_ACTIVE;
	d.created = d.changed = (uint64_t)time(NULL);
	d.generation = 1;
	/* Customer keys given, or two fresh file: keys as the embedded default. */
	int n = ncust ? ncust : 2;
	for (int i = 0; i < n; i++) {
		if (ncust)
			snprintf(uris[i], CK_URI_MAX, "%s", cust[i]);
		else if (default_uri(key_dir, "customer", name, d.id, i + 1, uris[i], CK_URI_MAX) < 0)
			goto toolong;
	}
	if (avail)
		snprintf(uris[n], CK_URI_MAX, "%s", avail);
	else if (default_uri(key_dir, "availability", name, d.id, 0, uris[n], CK_URI_MAX) < 0)
		goto toolong;
	for (int i = 0; i <= n; i++) {
		struct ck_wrap *w = &d.wraps[d.n_wraps++];
		size_t len = 0;
		w->role = i < n ? CK_ROLE_CUSTOMER : CK_ROLE_AVAILABILITY;
		snprintf(w->uri, sizeof(w->uri), "%s", uris[i]);
		/* file: keys that do not exist yet are made here. */
		if (!strncmp(uris[i], "file:", 5) && access(uris[i] + 5, F_OK) < 0) {
			if ((r = ck_key_create_uri(uris[i], msg, sizeof(msg))) < 0) {
				fprintf(stderr, "%s: cannot create key %s: %s\n", prog, uris[i], msg);
				r = EXIT_FAIL;
				goto undo;
			}
			made[i] = 1;
		}
		if ((r = ck_key_wrap_uri(uris[i], key, CK_KEY_LEN, w->wrapped, &len, msg, sizeof(msg))) < 0) {
			fprintf(stderr, "%s: key %s cannot wrap the dep key (%s): %s\n", prog, uris[i],
			        ck_key_result_name(r), msg);
			r = EXIT_FAIL;
			goto undo;
		}
		w->len = (uint16_t)len;
		w->last_result = CK_RES_OK;
		w->last_time = d.created;
	}
	if ((r = ck_dep_save(v, &d)) < 0) {
		fprintf(stderr, "%s: cannot save dep \"%s\": %s\n", prog, name, strerror(-r));
		r = EXIT_FAIL;
		goto undo;
	}
	audit(v, "dep-created", name, NULL, NULL, "ok");
	print_dep(v, &d, 0, stdout);
	r = EXIT_OK;
	goto out;
toolong:
	fprintf(stderr, "%s: key directory path %s is too long\n", prog, key_dir);
	r = EXIT_FAIL;
undo:
	for (int i = 0; i < CK_DEP_MAX_WRAPS; i++)
		if (made[i])
			(void)!ck_key_destroy_uri(uris[i], msg, sizeof(msg));
out:
	ck_secret_free(key, CK_KEY_LEN);
	ck_meta_unlock(lock);
	return r;
}

static int cmp_dep(const void *a, const void *b)
{
	return strcmp(((const struct ck_dep *)a)->name, ((const struct ck_dep *)b)->name);
}

static int cmd_list(struct ck_volume *v, int json)
{
	struct ck_dep *all;
	size_t n;
	int r = ck_dep_load_all(v, &all, &n, NULL);

	if (r < 0) {
		fprintf(stderr, "%s: cannot read the dep records: %s\n", prog, strerror(-r));
		return EXIT_FAIL;
	}
	qsort(all, n, sizeof(*all), cmp_dep);
	if (json)
		printf("{\"deps\":[");
	for (size_t i = 0; i < n; i++) {
		if (json && i)
			putchar(',');
		print_dep(v, &all[i], json, stdout);
	}
	if (json)
		printf("]}\n");
	free(all);
	return EXIT_OK;
}

static int find_or_fail(struct ck_volume *v, const char *name, struct ck_dep *d)
{
	int r = ck_dep_find(v, name, d);

	if (r == -ENOENT)
		fprintf(stderr, "%s: no dep named \"%s\" in this volume (see 'ck-dep VOLUME list')\n",
		        prog, name);
	else if (r < 0)
		fprintf(stderr, "%s: cannot read the dep records: %s\n", prog, strerror(-r));
	return r;
}

static int cmd_show(struct ck_volume *v, const char *name, int json)
{
	struct ck_dep d;

	if (find_or_fail(v, name, &d) < 0)
		return EXIT_FAIL;
	print_dep(v, &d, json, stdout);
	if (json)
		putchar('\n');
	return EXIT_OK;
}

static int cmd_status(struct ck_volume *v, const char *name, int json)
{
	struct ck_dep *all;
	size_t n;
	int r = ck_dep_load_all(v, &all, &n, NULL), first = 1;

	if (r < 0)
		return EXIT_FAIL;
	if (json)
		printf("{\"deps\":[");
	for (size_t i = 0; i < n; i++) {
		char msg[512];
		if (name && strcmp(all[i].name, name))
			continue;
		int p = all[i].state == CK_DEP_ACTIVE ? ck_dep_probe(&all[i], msg, sizeof(msg)) : 0;
		if (json) {
			printf("%s{\"name\":", first ? "" : ",");
			json_str(stdout, all[i].name);
			printf(",\"state\":\"%s\",\"probe\":\"%s\",\"keys\":[", ck_dep_state_name(all[i].state),
			       all[i].state == CK_DEP_ACTIVE ? ck_key_result_name(p) : "skipped");
			int k = 0;
			for (uint32_t j = 0; j < all[i].n_wraps; j++) {
				if (all[i].wraps[j].role != CK_ROLE_CUSTOMER)
					continue;
				printf("%s{\"uri\":", k++ ? "," : "");
				json_str(stdout, all[i].wraps[j].uri);
				printf(",\"role\":\"customer\",\"result\":\"%s\"}",
				       ck_result_name(all[i].wraps[j].last_result));
			}
			printf("]}");
		} else {
			printf("%-20s %-13s customer keys: %s\n", all[i].name, ck_dep_state_name(all[i].state),
			       all[i].state == CK_DEP_ACTIVE ? ck_key_result_name(p) : "-");
		}
		first = 0;
	}
	if (json)
		printf("]}\n");
	free(all);
	if (name && first) {
		fprintf(stderr, "%s: no dep named \"%s\"\n", prog, name);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_revoke(struct ck_volume *v, const char *name)
{
	struct ck_dep d;
	int lock = ck_meta_lock(v), r = EXIT_FAIL;

	if (lock < 0)
		return EXIT_FAIL;
	if (find_or_fail(v, name, &d) < 0)
		goto out;
	if (d.state != CK_DEP_ACTIVE) {
		fprintf(stderr, "%s: dep \"%s\" is already %s\n", prog, name, ck_dep_state_name(d.state));
		goto out;
	}
	d.state = CK_DEP_REVOKED;
	d.changed = (uint64_t)time(NULL);
	d.generation++;
	if (ck_dep_save(v, &d) < 0) {
		fprintf(stderr, "%s: cannot save dep \"%s\"\n", prog, name);
		goto out;
	}
	audit(v, "revoked", name, NULL, NULL, "ok");
	printf("%s: dep \"%s\" revoked; mounts stop serving its trees now. purge it with "
	       "'ck-dep VOLUME purge %s'\n", prog, name, name);
	r = EXIT_OK;
out:
	ck_meta_unlock(lock);
	return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

static int cmd_purge(struct ck_volume *v, const char *name, const char *confirm)
{
	struct ck_dep d;
	struct ck_tree_rec *trees = NULL;
	size_t nt = 0;
	char msg[512], line[128], head[65] = "", hex[33];
	int lock = ck_meta_lock(v), r = EXIT_FAIL;
	long count = 0;

	if (lock < 0)
		return EXIT_FAIL;
	if (find_or_fail(v, name, &d) < 0)
		goto out;
	if (d.state == CK_DEP_ACTIVE) {
		fprintf(stderr, "%s: dep \"%s\" is active; only a revoked dep can be purged "
		        "(revoke it first with 'ck-dep VOLUME revoke %s')\n", prog, name, name);
		goto out;
	}
	if (d.state == CK_DEP_PURGED) {
		fprintf(stderr, "%s: dep \"%s\" is already purged\n", prog, name);
		goto out;
	}
	if (!confirm) {
		if (!isatty(0)) {
			fprintf(stderr, "%s: purge needs confirmation: pass --confirm %s\n", prog, name);
			goto out;
		}
		fprintf(stderr, "purge destroys every key of dep \"%s\" and deletes its trees for ever.\n"
		        "type the dep's name to confirm: ", name);
		if (!fgets(line, sizeof(line), stdin))
			goto out;
		line[strcspn(line, "\n")] = '\0';
		confirm = line;
	}
	if (strcmp(confirm, name)) {
		fprintf(stderr, "%s: confirmation \"%s\" does not match dep \"%s\"; nothing done\n",
		        prog, confirm, name);
		goto out;
	}
	audit(v, "purge-requested", name, NULL, NULL, "ok");
	/* 1. every wrapped copy of the DEP key, then the availability key. */
	for (uint32_t i = 0; i < d.n_wraps; i++) {
		struct ck_wrap *w = &d.wraps[i];
		ck_wipe(w->wrapped, sizeof(w->wrapped));
		w->len = 0;
		if (w->role == CK_ROLE_AVAILABILITY) {
			int e = ck_key_destroy_uri(w->uri, msg, sizeof(msg));
			audit(v, "availability-key-destroyed", name, NULL, w->uri, e == 0 ? "ok" : msg);
		}
	}
	d.state = CK_DEP_PURGE_PENDING;
	d.changed = (uint64_t)time(NULL);
	d.generation++;
	if (ck_dep_save(v, &d) < 0) {
		fprintf(stderr, "%s: cannot save dep \"%s\"\n", prog, name);
		goto out;
	}
	/* 2. the trees' ciphertext. */
	if (trees_of(v, &d, &trees, &nt) < 0)
		goto out;
	for (size_t i = 0; i < nt; i++) {
		char bpath[8192], full[9000];
		if (ck_volume_backing_path(v, trees[i].path, bpath, sizeof(bpath)) == 0) {
			snprintf(full, sizeof(full), "%s/%s", v->path, bpath);
			if (nftw(full, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0) {
				fprintf(stderr, "%s: cannot delete tree %s: %s\n", prog, trees[i].path, strerror(errno));
				goto out;
			}
		}
		ck_wipe(trees[i].wrapped_key, sizeof(trees[i].wrapped_key));
		trees[i].wlen = 0;
		trees[i].state = CK_TREE_PURGED;
		trees[i].generation++;
		if (ck_tree_rec_save(v, &trees[i]) < 0)
			goto out;
		audit(v, "tree-deleted", name, trees[i].path, NULL, "ok");
	}
	d.state = CK_DEP_PURGED;
	d.changed = (uint64_t)time(NULL);
	d.generation++;
	if (ck_dep_save(v, &d) < 0)
		goto out;
	audit(v, "purged", name, NULL, NULL, "ok");
	if (ck_audit_head(v, head, &count) < 0)
		head[0] = '\0';
	hex_id(d.id, hex);
	{
		/* The certificate: a MAC over its own text under the volume's
		 * certificate key, so ckfs can verify it later. */
		char cert[8192];
		uint8_t mac[CK_HASH_LEN];
		char machex[65];
		int len = snprintf(cert, sizeof(cert), "{\"certificate\":\"ckfs purge\",\"dep\":\"%s\",\"id\":\"%s\","
		                   "\"time\":%llu,\"trees\":%zu,\"keys_destroyed\":%u,\"audit_head\":\"%s\","
		                   "\"audit_count\":%ld}", d.name, hex, (unsigned long long)d.changed, nt,
		                   d.n_wraps, head, count);
		const void *parts[] = { cert };
		size_t lens[] = { (size_t)len };
		if (ck_hmac_sha256(v->cert_key, parts, lens, 1, mac) < 0)
			goto out;
		ck_hex(mac, sizeof(mac), machex);
		printf("%s\n{\"mac\":\"%s\"}\n", cert, machex);
	}
	r = EXIT_OK;
out:
	free(trees);
	ck_meta_unlock(lock);
	return r;
}

static int cmd_audit(struct ck_volume *v, int verify, int json)
{
	char msg[512];
	long count = 0;

	if (!verify)
		return ck_audit_print(v, stdout, json) < 0 ? EXIT_FAIL : EXIT_OK;
	if (ck_audit_verify(v, &count, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "%s: audit log verification failed: %s\n", prog, msg);
		return EXIT_FAIL;
	}
	printf("audit log intact: %ld records\n", count);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-dir", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "customer-key", required_argument, NULL, 'c' },
		{ "availability-key", required_argument, NULL, 'a' },
		{ "confirm", required_argument, NULL, 'C' },
		{ "verify", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *key_dir = NULL, *avail = NULL, *confirm = NULL;
	char *cust[CK_DEP_MAX_WRAPS];
	int ncust = 0, json = 0, verify = 0, c, r;
	struct ck_volume v;

	while ((c = getopt_long(argc, argv, "k:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_dir = optarg; break;
		case 'j': json = 1; break;
		case 'c':
			if (ncust == CK_DEP_MAX_WRAPS - 1) {
				fprintf(stderr, "%s: too many --customer-key options\n", prog);
				return EXIT_USAGE;
			}
			cust[ncust++] = optarg;
			break;
		case 'a': avail = optarg; break;
		case 'C': confirm = optarg; break;
		case 'v': verify = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("ck-dep %s\n", CKFS_VERSION); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	if (nargs < 2) {
		fprintf(stderr, "%s: expected VOLUME and a COMMAND\n", prog);
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *vol = argv[optind], *cmd = argv[optind + 1];
	const char *name = nargs > 2 ? argv[optind + 2] : NULL;
	static const char *const need_name[] = { "create", "show", "revoke", "purge" };
	static const char *const known[] = { "create", "show", "revoke", "purge", "list", "status", "audit" };
	int ok = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= !strcmp(cmd, known[i]);
	if (!ok) {
		fprintf(stderr, "%s: unknown command \"%s\"\n", prog, cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(need_name) / sizeof(need_name[0]); i++)
		if (!strcmp(cmd, need_name[i]) && !name) {
			fprintf(stderr, "%s: '%s' needs a dep NAME\n", prog, cmd);
			return EXIT_USAGE;
		}
	key_dir = ck_key_dir(key_dir);
	tool_open_volume(prog, vol, key_dir, &v);
	if (!strcmp(cmd, "create"))
		r = cmd_create(&v, key_dir, name, cust, ncust, avail);
	else if (!strcmp(cmd, "list"))
		r = cmd_list(&v, json);
	else if (!strcmp(cmd, "show"))
		r = cmd_show(&v, name, json);
	else if (!strcmp(cmd, "status"))
		r = cmd_status(&v, name, json);
	else if (!strcmp(cmd, "revoke"))
		r = cmd_revoke(&v, name);
	else if (!strcmp(cmd, "purge"))
		r = cmd_purge(&v, name, confirm);
	else
		r = cmd_audit(&v, verify, json);
	ck_volume_close(&v);
	return r;
}
