/* ck-dep: create, list, show, probe, revoke and purge DEPs; read the audit
 * log. A thin main over libck (keys/dep.h, keys/provider.h, keys/audit.h). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
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
#include "keys/provider.h"
#include "keys/secmem.h"
#include "keys/util.h"
#include "tools/common.h"

static const char *prog = "ck-dep";
static int audit_failed;
static int json_mode;           /* --json: one JSON document on stdout (docs/JSON.md) */
#define JSON_VERSION 1

/* --json result of a command that changes a DEP (revoke, roll, recover,
 * a purge request or cancel). */
static void action_json(const char *action, const char *name, const char *state)
{
	printf("{\"version\":%d,\"action\":\"%s\",\"dep\":", JSON_VERSION, action);
	json_str(stdout, name);
	printf(",\"state\":\"%s\"}\n", state);
}

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
		"  roll NAME --customer-key OLD=NEW | --availability [--availability-key URI]\n"
		"       | --dep-key     replace a customer key, the availability key (the old\n"
		"                       one is destroyed) or the DEP key (tree keys re-wrapped,\n"
		"                       no data re-encrypted); atomic, works while mounted\n"
		"  recover NAME --customer-key URI...\n"
		"                       after customer keys were lost (not revoked): re-wrap\n"
		"                       the DEP key, opened with the availability key, to new\n"
		"                       customer keys\n"
		"  purge NAME --cancel  cancel a purge that waits for its waiting period\n"
		"  verify-certificate FILE\n"
		"                       check a purge certificate printed by 'purge'\n"
		"  config [--purge-wait DURATION]\n"
		"                       show or change volume settings\n"
		"  audit [--verify]     print (or verify) the audit log\n"
		"options: --json (machine-readable output), --key-dir DIR, -h/--help, -V/--version\n"
		"exit status: 0 ok, 1 failed or refused, 2 usage error, 3 cannot open the volume\n");
}

static void audit(const struct ck_volume *v, const char *event, const char *dep, const char *tree,
                  const char *uri, const char *result)
{
	struct ck_audit_event e = { event, dep, tree, uri, result, "operator" };
	if (ck_audit_append(v, &e) < 0) {
		/* A key event that cannot be audited is a failure, after the fact:
		 * the change is made, the operator must know the log lacks it. */
		fprintf(stderr, "%s: error: could not append \"%s\" to the audit log; the change is "
		        "made but not audited (check 'ck-dep VOLUME audit --verify')\n", prog, event);
		audit_failed = 1;
	}
}

/* The audit log lives in the backing store: DEPs and trees appear there by
 * ID (their names and paths are customer data; 'ck-dep list' maps them). */
static const char *dep_label(const struct ck_dep *d)
{
	static char hex[40];
	snprintf(hex, sizeof(hex), "dep:");
	ck_hex(d->id, 16, hex + 4);
	return hex;
}

static const char *tree_label(const struct ck_tree_rec *t)
{
	static char hex[40];
	snprintf(hex, sizeof(hex), "tree:");
	ck_hex(t->id, 16, hex + 5);
	return hex;
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

/* all/nall: every tree record, when loaded == 1 (else loaded here). */
static void print_dep(const struct ck_volume *v, const struct ck_dep *d, int json, FILE *f,
                      const struct ck_tree_rec *all, size_t nall, int loaded)
{
	struct ck_tree_rec *trees = NULL;
	size_t nt = 0;
	char hex[33];

	hex_id(d->id, hex);
	if (loaded) {
		if ((trees = malloc((nall ? nall : 1) * sizeof(*trees))))
			for (size_t i = 0; i < nall; i++)
				if (!memcmp(all[i].dep_id, d->id, CK_ID_LEN))
					trees[nt++] = all[i];
	} else if (trees_of(v, d, &trees, &nt) < 0) {
		nt = 0;
	}
	if (json) {
		if (json > 1)
			fprintf(f, "{\"version\":%d,\"name\":", JSON_VERSION);
		else
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
	(void)name;
	int w = n ? snprintf(out, len, "file:%s/%s/%s-%d.key", key_dir, sub, hex, n)
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
	struct ck_config cfg;
	if (ck_config_load(v, &cfg) < 0)
		cfg.availability[0] = '\0';
	if (avail) {
		snprintf(uris[n], CK_URI_MAX, "%s", avail);
	} else if (cfg.availability[0]) {
		char hex[33];
		hex_id(d.id, hex);
		snprintf(uris[n], CK_URI_MAX, "%s%s.key", cfg.availability, hex);
	} else if (default_uri(key_dir, "availability", name, d.id, 0, uris[n], CK_URI_MAX) < 0) {
		goto toolong;
	}
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
	audit(v, "dep-created", dep_label(&d), NULL, NULL, "ok");
	print_dep(v, &d, json_mode ? 2 : 0, stdout, NULL, 0, 0);
	if (json_mode)
		putchar('\n');
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
	struct ck_tree_rec *trees = NULL;
	size_t nt = 0;
	int loaded = ck_tree_rec_load_all(v, &trees, &nt, NULL) == 0;
	qsort(all, n, sizeof(*all), cmp_dep);
	if (json)
		printf("{\"version\":%d,\"deps\":[", JSON_VERSION);
	for (size_t i = 0; i < n; i++) {
		if (json && i)
			putchar(',');
		print_dep(v, &all[i], json, stdout, trees, nt, loaded);
	}
	if (json)
		printf("]}\n");
	free(trees);
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
	print_dep(v, &d, json ? 2 : 0, stdout, NULL, 0, 0);
	if (json)
		putchar('\n');
	return EXIT_OK;
}

/* A mount's status file (.ckfs/status/<host>-<pid>, written by fs/status.c). */
struct mount_key {
	unsigned index;
	char result[16];
	unsigned long long latency_us, time;
};

struct mount_dep {
	char id[33], result[16];
	unsigned serving, stopped;
	unsigned long long probed, ok;
	struct mount_key keys[CK_DEP_MAX_WRAPS];
	unsigned nkeys;
};

struct mount_status {
	char host[256], mountpoint[4096];
	long pid;
	unsigned long long started, written;
	double key_ttl;
	struct mount_dep *deps;
	size_t ndeps;
};

static void unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Every live mount's status (on this host, a daemon that died is left
 * out; other hosts' files are shown with their age). */
static int load_mounts(const struct ck_volume *v, struct mount_status **out, size_t *n)
{
	char host[256] = "localhost";
	int dfd = openat(v->fd, CK_VOLUME_DIR "/status", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct mount_status *all = NULL;
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*n = 0;
	gethostname(host, sizeof(host) - 1);
	if (dfd < 0)
		return 0;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return 0;
	}
	while ((e = readdir(d))) {
		char line[8192];
		struct mount_status m = { .pid = 0 };
		FILE *f;
		int fd, good = 0;

		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue;
		if ((fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			continue;
		if (!(f = fdopen(fd, "r"))) {
			close(fd);
			continue;
		}
		while (fgets(line, sizeof(line), f)) {
			char a[64], b[16];
			line[strcspn(line, "\n")] = '\0';
			if (!strcmp(line, "ckfs-status 1")) {
				good = 1;
			} else if (!strncmp(line, "host ", 5)) {
				snprintf(m.host, sizeof(m.host), "%s", line + 5);
				unescape(m.host);
			} else if (!strncmp(line, "mountpoint ", 11)) {
				snprintf(m.mountpoint, sizeof(m.mountpoint), "%s", line + 11);
				unescape(m.mountpoint);
			} else if (sscanf(line, "pid %ld", &m.pid) == 1 ||
			           sscanf(line, "started %llu", &m.started) == 1 ||
			           sscanf(line, "written %llu", &m.written) == 1 ||
			           sscanf(line, "key_ttl %lf", &m.key_ttl) == 1) {
				continue;
			} else if (!strncmp(line, "dep ", 4)) {
				struct mount_dep md = { .nkeys = 0 };
				if (sscanf(line, "dep %32s %u %u %llu %llu %15s", md.id, &md.serving, &md.stopped,
				           &md.probed, &md.ok, md.result) != 6)
					continue;
				struct mount_dep *q = realloc(m.deps, (m.ndeps + 1) * sizeof(*q));
				if (!q)
					break;
				m.deps = q;
				m.deps[m.ndeps++] = md;
			} else if (!strncmp(line, "key ", 4)) {
				struct mount_key k;
				if (sscanf(line, "key %32s %u %15s %llu %llu", a, &k.index, b, &k.latency_us,
				           &k.time) != 5)
					continue;
				snprintf(k.result, sizeof(k.result), "%s", b);
				for (size_t i = 0; i < m.ndeps; i++)
					if (!strcmp(m.deps[i].id, a) && m.deps[i].nkeys < CK_DEP_MAX_WRAPS)
						m.deps[i].keys[m.deps[i].nkeys++] = k;
			}
		}
		fclose(f);
		if (!good || m.pid <= 0 || (!strcmp(m.host, host) && kill((pid_t)m.pid, 0) < 0 &&
		                            errno == ESRCH)) {
			free(m.deps);
			continue;
		}
		struct mount_status *q = realloc(all, (*n + 1) * sizeof(*q));
		if (!q) {
			free(m.deps);
			break;
		}
		all = q;
		all[(*n)++] = m;
	}
	closedir(d);
	*out = all;
	return 0;
}

static void free_mounts(struct mount_status *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].deps);
	free(m);
}

static const char *wrap_uri(const struct ck_dep *d, unsigned index)
{
	return index < d->n_wraps ? d->wraps[index].uri : "";
}

/* The next (mount, DEP entry) pair from the status files that is about
 * the DEP with ID hex, starting after *pos (start with *pos = 0); NULL at
 * the end. */
static const struct mount_dep *next_mount_dep(const struct mount_status *ms, size_t nm,
                                              const char *hex, size_t *pos,
                                              const struct mount_status **m)
{
	for (;;) {
		size_t i = 0, at = *pos;

		while (i < nm && at >= ms[i].ndeps)
			at -= ms[i++].ndeps;
		if (i == nm)
			return NULL;
		(*pos)++;
		if (!strcmp(ms[i].deps[at].id, hex)) {
			*m = &ms[i];
			return &ms[i].deps[at];
		}
	}
}

static void status_json(const struct ck_dep *d, const int *res, const double *ms, int p,
                        const struct mount_status *ms_all, size_t nm, int first)
{
	char hex[33];
	uint64_t now = (uint64_t)time(NULL);

	hex_id(d->id, hex);
	printf("%s{\"name\":", first ? "" : ",");
	json_str(stdout, d->name);
	printf(",\"id\":\"%s\",\"state\":\"%s\",\"probe\":\"%s\",\"keys\":[", hex,
	       ck_dep_state_name(d->state), d->state == CK_DEP_ACTIVE ? ck_key_result_name(p) : "skipped");
	int k = 0;
	for (uint32_t j = 0; j < d->n_wraps; j++) {
		if (d->wraps[j].role != CK_ROLE_CUSTOMER)
			continue;
		printf("%s{\"index\":%u,\"uri\":", k++ ? "," : "", j);
		json_str(stdout, d->wraps[j].uri);
		printf(",\"role\":\"customer\",\"result\":\"%s\",", ck_result_name(d->wraps[j].last_result));
		if (res[j] >= 0)
			printf("\"latency_ms\":%.3f,", ms[j]);
		else
			printf("\"latency_ms\":null,");
		printf("\"time\":%llu}", (unsigned long long)d->wraps[j].last_time);
	}
	printf("],\"mounts\":[");
	k = 0;
	size_t pos = 0;
	const struct mount_status *m;
	for (const struct mount_dep *md; (md = next_mount_dep(ms_all, nm, hex, &pos, &m));) {
		printf("%s{\"host\":", k++ ? "," : "");
		json_str(stdout, m->host);
		printf(",\"pid\":%ld,\"mountpoint\":", m->pid);
		json_str(stdout, m->mountpoint);
		printf(",\"key_ttl\":%g,\"status_written\":%llu,\"trees_serving\":%u,"
		       "\"trees_stopped\":%u,\"last_probe\":", m->key_ttl, m->written, md->serving,
		       md->stopped);
		if (md->probed)
			printf("{\"time\":%llu,\"result\":\"%s\"}", md->probed, md->result);
		else
			printf("null");
		printf(",\"last_ok\":");
		if (md->ok)
			printf("%llu,\"since_last_ok_s\":%llu", md->ok,
			       now > md->ok ? (unsigned long long)(now - md->ok) : 0ULL);
		else
			printf("null,\"since_last_ok_s\":null");
		printf(",\"keys\":[");
		for (unsigned q = 0; q < md->nkeys; q++) {
			printf("%s{\"index\":%u,\"uri\":", q ? "," : "", md->keys[q].index);
			json_str(stdout, wrap_uri(d, md->keys[q].index));
			printf(",\"result\":\"%s\",\"latency_ms\":%.3f,\"time\":%llu}", md->keys[q].result,
			       (double)md->keys[q].latency_us / 1000.0, md->keys[q].time);
		}
		printf("]}");
	}
	printf("]}");
}

static void status_text(const struct ck_dep *d, const int *res, const double *ms, int p,
                        const struct mount_status *ms_all, size_t nm)
{
	char hex[33];
	uint64_t now = (uint64_t)time(NULL);

	hex_id(d->id, hex);
	printf("%-20s %-13s customer keys: %s\n", d->name, ck_dep_state_name(d->state),
	       d->state == CK_DEP_ACTIVE ? ck_key_result_name(p) : "-");
	for (uint32_t j = 0; j < d->n_wraps; j++) {
		if (d->wraps[j].role != CK_ROLE_CUSTOMER)
			continue;
		if (res[j] >= 0)
			printf("    key %u  %-11s %8.1f ms  %s\n", j, ck_result_name(d->wraps[j].last_result),
			       ms[j], d->wraps[j].uri);
		else
			printf("    key %u  %-11s %8s     %s\n", j, ck_result_name(d->wraps[j].last_result),
			       "-", d->wraps[j].uri);
	}
	size_t pos = 0;
	const struct mount_status *m;
	for (const struct mount_dep *md; (md = next_mount_dep(ms_all, nm, hex, &pos, &m));) {
		printf("    mount %s:%ld %s  trees serving %u, stopped %u; ", m->host, m->pid,
		       m->mountpoint, md->serving, md->stopped);
		if (md->probed)
			printf("last probe %s %llu s ago", md->result,
			       now > md->probed ? (unsigned long long)(now - md->probed) : 0ULL);
		else
			printf("not probed yet (every %g s)", m->key_ttl);
		if (md->ok)
			printf("; last ok %llu s ago",
			       now > md->ok ? (unsigned long long)(now - md->ok) : 0ULL);
		putchar('\n');
		for (unsigned q = 0; q < md->nkeys; q++)
			printf("        key %u  %-11s %8.1f ms\n", md->keys[q].index, md->keys[q].result,
			       (double)md->keys[q].latency_us / 1000.0);
	}
}

/* Probe every customer key now (each one, with its latency), then show
 * the mounts' own last answers from their status files. */
static int cmd_status(struct ck_volume *v, const char *name, int json)
{
	struct ck_dep *all;
	struct mount_status *mounts = NULL;
	size_t n, nm = 0;
	int r = ck_dep_load_all(v, &all, &n, NULL), first = 1;

	if (r < 0) {
		fprintf(stderr, "%s: cannot read the dep records: %s\n", prog, strerror(-r));
		return EXIT_FAIL;
	}
	qsort(all, n, sizeof(*all), cmp_dep);
	load_mounts(v, &mounts, &nm);
	if (json)
		printf("{\"version\":%d,\"time\":%llu,\"deps\":[", JSON_VERSION,
		       (unsigned long long)time(NULL));
	for (size_t i = 0; i < n; i++) {
		struct ck_dep *d = &all[i];
		int res[CK_DEP_MAX_WRAPS], p = 0, customers = 0, denied = 0, ok = 0;
		double ms[CK_DEP_MAX_WRAPS];
		if (name && strcmp(d->name, name))
			continue;
		for (uint32_t j = 0; j < CK_DEP_MAX_WRAPS; j++)
			res[j] = -1;
		for (uint32_t j = 0; j < d->n_wraps && d->state == CK_DEP_ACTIVE; j++) {
			char m[256];
			struct timespec t0, t1;
			if (d->wraps[j].role != CK_ROLE_CUSTOMER)
				continue;
			customers++;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			int e = ck_key_probe_uri(d->wraps[j].uri, m, sizeof(m));
			clock_gettime(CLOCK_MONOTONIC, &t1);
			ms[j] = (double)(t1.tv_sec - t0.tv_sec) * 1000.0 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
			res[j] = e == 0 ? CK_RES_OK : e == -EKEYREVOKED ? CK_RES_DENIED : CK_RES_UNAVAILABLE;
			d->wraps[j].last_result = (uint8_t)res[j];
			d->wraps[j].last_time = (uint64_t)time(NULL);
			ok |= e == 0;
			denied += e == -EKEYREVOKED;
		}
		if (d->state == CK_DEP_ACTIVE)
			p = ok ? 0 : customers && denied == customers ? -EKEYREVOKED : -EAGAIN;
		if (json)
			status_json(d, res, ms, p, mounts, nm, first);
		else
			status_text(d, res, ms, p, mounts, nm);
		first = 0;
	}
	if (json)
		printf("]}\n");
	free(all);
	free_mounts(mounts, nm);
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
	audit(v, "revoked", dep_label(&d), NULL, NULL, "ok");
	/* Return once every mount on this host has stopped serving it. */
	if (ck_wait_mounts(v, 5000) < 0)
		fprintf(stderr, "%s: warning: a ckfs mount of this volume has not confirmed the "
		        "revocation yet\n", prog);
	if (json_mode)
		action_json("revoked", name, "revoked");
	else
		printf("%s: dep \"%s\" revoked; mounts stop serving its trees now. purge it with "
		       "'ck-dep VOLUME purge %s'\n", prog, name, name);
	r = EXIT_OK;
out:
	ck_meta_unlock(lock);
	return r;
}

/* The purge's progress bar (on a terminal): backing entries deleted of
 * those counted first. */
static struct pbar purge_bar;
static uint64_t purge_total, purge_done;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return -1;
	pbar_update(&purge_bar, ++purge_done, purge_total, NULL);
	return 0;
}

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)flag;
	(void)ftw;
	purge_total++;
	return 0;
}

/* Whether tree i of dep d owns its backing data: a retired record's path
 * may belong to another dep now (the tree was moved). */
static int tree_owned(const struct ck_dep *d, const struct ck_tree_rec *t,
                      const struct ck_tree_rec *every, size_t nevery)
{
	int owned = t->state != CK_TREE_RETIRED && t->state != CK_TREE_PURGED;

	for (size_t j = 0; j < nevery && owned; j++)
		if (memcmp(every[j].dep_id, d->id, CK_ID_LEN) && !strcmp(every[j].path, t->path) &&
		    every[j].state != CK_TREE_RETIRED && every[j].state != CK_TREE_PURGED)
			owned = 0;
	return owned;
}

static int cert_mac(const struct ck_volume *v, const char *text, size_t n, char hex[65]);
static int save_dep(struct ck_volume *v, struct ck_dep *d);

static int cmd_purge(struct ck_volume *v, const char *name, const char *confirm, int cancel,
                     int json_out)
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
	int executing = d.state == CK_DEP_PURGE_PENDING && d.purge_after == 0;
	if (cancel) {
		if (d.state != CK_DEP_PURGE_PENDING || executing) {
			fprintf(stderr, "%s: dep \"%s\" has no purge waiting to be cancelled\n", prog, name);
			goto out;
		}
		d.state = CK_DEP_REVOKED;
		d.purge_after = 0;
		if (save_dep(v, &d) < 0)
			goto out;
		audit(v, "purge-cancelled", dep_label(&d), NULL, NULL, "ok");
		if (json_mode)
			action_json("purge-cancelled", name, "revoked");
		else
			printf("%s: purge of dep \"%s\" cancelled; it stays revoked\n", prog, name);
		r = EXIT_OK;
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
	if (!executing) {
		struct ck_config cfg;
		uint64_t now = (uint64_t)time(NULL);
		if (ck_config_load(v, &cfg) < 0)
			cfg.purge_wait = 0;
		if (d.state == CK_DEP_REVOKED && cfg.purge_wait) {
			d.state = CK_DEP_PURGE_PENDING;
			d.purge_after = now + cfg.purge_wait;
			if (save_dep(v, &d) < 0)
				goto out;
			audit(v, "purge-requested", dep_label(&d), NULL, NULL, "waiting period started");
			if (json_mode)
				action_json("purge-requested", name, "purge-pending");
			else
				printf("%s: purge of dep \"%s\" requested; it can run after %llu s (run this "
				       "command again then, or cancel with --cancel)\n", prog, name,
				       (unsigned long long)cfg.purge_wait);
			r = EXIT_OK;
			goto out;
		}
		if (d.state == CK_DEP_PURGE_PENDING && now < d.purge_after) {
			fprintf(stderr, "%s: the waiting period of dep \"%s\" ends in %llu s; purge "
			        "refused until then\n", prog, name, (unsigned long long)(d.purge_after - now));
			goto out;
		}
		audit(v, "purge-requested", dep_label(&d), NULL, NULL, "executing");
	}
	/* 1. every wrapped copy of the DEP key, then the availability key. */
	for (uint32_t i = 0; i < d.n_wraps; i++) {
		struct ck_wrap *w = &d.wraps[i];
		ck_wipe(w->wrapped, sizeof(w->wrapped));
		w->len = 0;
		if (w->role == CK_ROLE_AVAILABILITY) {
			int e = ck_key_destroy_uri(w->uri, msg, sizeof(msg));
			audit(v, "availability-key-destroyed", dep_label(&d), NULL, w->uri, e == 0 ? "ok" : msg);
		}
	}
	/* Purge-pending with no waiting time left marks an execution under
	 * way: a crash from here on resumes it when purge runs again. */
	d.state = CK_DEP_PURGE_PENDING;
	d.purge_after = 0;
	if (save_dep(v, &d) < 0)
		goto out;
	/* 2. the trees' ciphertext. */
	if (trees_of(v, &d, &trees, &nt) < 0)
		goto out;
	struct ck_tree_rec *every = NULL;
	size_t nevery = 0;
	if (ck_tree_rec_load_all(v, &every, &nevery, NULL) < 0)
		goto out;
	pbar_init(&purge_bar, "purge", "entries", 0, 0);
	for (size_t i = 0; i < nt && purge_bar.on; i++) {
		char bpath[8192], full[9000];
		if (tree_owned(&d, &trees[i], every, nevery) &&
		    ck_volume_backing_path(v, trees[i].path, bpath, sizeof(bpath)) == 0) {
			snprintf(full, sizeof(full), "%s/%s", v->path, bpath);
			(void)nftw(full, count_entry, 32, FTW_PHYS);
		}
	}
	for (size_t i = 0; i < nt; i++) {
		char bpath[8192], full[9000];
		/* A retired record's path may belong to another dep now (the
		 * tree was moved): its data is not this dep's to delete. */
		int owned = tree_owned(&d, &trees[i], every, nevery);
		if (owned && ck_volume_backing_path(v, trees[i].path, bpath, sizeof(bpath)) == 0) {
			snprintf(full, sizeof(full), "%s/%s", v->path, bpath);
			if (nftw(full, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0) {
				pbar_clear(&purge_bar);
				fprintf(stderr, "%s: cannot delete tree %s: %s\n", prog, trees[i].path, strerror(errno));
				goto out;
			}
		}
		ck_wipe(trees[i].wrapped_key, sizeof(trees[i].wrapped_key));
		trees[i].wlen = 0;
		ck_wipe(trees[i].next_wrapped_key, sizeof(trees[i].next_wrapped_key));
		trees[i].next_wlen = 0;
		trees[i].state = CK_TREE_PURGED;
		trees[i].generation++;
		if (ck_tree_rec_save(v, &trees[i]) < 0)
			goto out;
		if (owned)
			audit(v, "tree-deleted", dep_label(&d), tree_label(&trees[i]), NULL, "ok");
	}
	free(every);
	pbar_done(&purge_bar, NULL);
	d.state = CK_DEP_PURGED;
	d.changed = (uint64_t)time(NULL);
	d.generation++;
	if (ck_dep_save(v, &d) < 0)
		goto out;
	audit(v, "purged", dep_label(&d), NULL, NULL, "ok");
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
		(void)mac;
		if (cert_mac(v, cert, (size_t)len, machex) < 0)
			goto out;
		char cpath[128];
		FILE *cf;
		mkdirat(v->fd, CK_VOLUME_DIR "/certificates", 0700);
		snprintf(cpath, sizeof(cpath), "%s/%s/certificates/%s.json", v->path, CK_VOLUME_DIR, hex);
		int cfd = open(cpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (cfd >= 0 && !(cf = fdopen(cfd, "w")))
			close(cfd);
		else if (cfd >= 0) {
			fprintf(cf, "%s\n{\"mac\":\"%s\"}\n", cert, machex);
			fclose(cf);
		}
		if (!json_out)
			fprintf(stderr, "purge certificate: dep \"%s\" (%s) purged; %zu tree(s) deleted; "
			        "every wrapped copy of its key wiped and its availability key destroyed;\n"
			        "audit chain head %s (%ld records). A copy is kept in .ckfs/certificates/. "
			        "Verify with 'ck-dep VOLUME verify-certificate FILE'.\n", d.name, hex, nt,
			        head, count);
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
		if (json) {
			printf("{\"version\":%d,\"intact\":false,\"records\":null,\"error\":", JSON_VERSION);
			json_str(stdout, msg);
			printf("}\n");
		}
		fprintf(stderr, "%s: audit log verification failed: %s\n", prog, msg);
		return EXIT_FAIL;
	}
	if (json)
		printf("{\"version\":%d,\"intact\":true,\"records\":%ld,\"error\":null}\n",
		       JSON_VERSION, count);
	else
		printf("audit log intact: %ld records\n", count);
	return EXIT_OK;
}

/* The DEP key through a customer key (never the availability key). */
static int customer_unwrap(struct ck_dep *d, uint8_t *key)
{
	char msg[1024];
	int fb = 0, r = ck_dep_unwrap(d, key, 0, &fb, msg, sizeof(msg));

	if (r < 0)
		fprintf(stderr, "%s: no customer key of dep \"%s\" opens its key (%s): %s\n", prog,
		        d->name, ck_key_result_name(r), msg);
	return r;
}

/* Wrap key under uri into w (making a missing file: key first). */
static int wrap_into(const char *uri, const uint8_t *key, uint8_t role, struct ck_wrap *w)
{
	char msg[512];
	size_t len = 0;
	int r;

	if (!strncmp(uri, "file:", 5) && access(uri + 5, F_OK) < 0 &&
	    (r = ck_key_create_uri(uri, msg, sizeof(msg))) < 0) {
		fprintf(stderr, "%s: cannot create key %s: %s\n", prog, uri, msg);
		return r;
	}
	if ((r = ck_key_wrap_uri(uri, key, CK_KEY_LEN, w->wrapped, &len, msg, sizeof(msg))) < 0) {
		fprintf(stderr, "%s: key %s cannot wrap the dep key (%s): %s\n", prog, uri,
		        ck_key_result_name(r), msg);
		return r;
	}
	snprintf(w->uri, sizeof(w->uri), "%s", uri);
	w->len = (uint16_t)len;
	w->role = role;
	w->last_result = CK_RES_OK;
	w->last_time = (uint64_t)time(NULL);
	return 0;
}

static int save_dep(struct ck_volume *v, struct ck_dep *d)
{
	int r;

	d->changed = (uint64_t)time(NULL);
	d->generation++;
	if ((r = ck_dep_save(v, d)) < 0)
		fprintf(stderr, "%s: cannot save dep \"%s\": %s\n", prog, d->name, strerror(-r));
	return r;
}

/* Replace the DEP key: tree keys get a second wrap under the new key,
 * then the DEP record switches (one atomic rename), then the trees drop
 * the old wrap. Readers try both wraps, so every crash point is readable. */
static int roll_dep_key(struct ck_volume *v, struct ck_dep *d, const uint8_t *old)
{
	struct ck_tree_rec *trees = NULL;
	struct ck_dep nd = *d;
	uint8_t *nk = ck_secret_alloc(CK_KEY_LEN), *tk = ck_secret_alloc(CK_KEY_LEN);
	size_t nt = 0, len;
	int r = -ENOMEM;

	if (!nk || !tk || (r = ck_random(nk, CK_KEY_LEN)) < 0 || (r = trees_of(v, d, &trees, &nt)) < 0)
		goto out;
	for (size_t i = 0; i < nt; i++) {
		if (!trees[i].wlen && !trees[i].next_wlen)
			continue;
		if ((r = ck_tree_key_from(&trees[i], old, tk)) < 0) {
			fprintf(stderr, "%s: the key of tree %s does not open; not rolled\n", prog, trees[i].path);
			goto out;
		}
		if ((r = ck_key_wrap(nk, tk, CK_KEY_LEN, trees[i].next_wrapped_key, &len)) < 0)
			goto out;
		trees[i].next_wlen = (uint16_t)len;
		trees[i].generation++;
		if ((r = ck_tree_rec_save(v, &trees[i])) < 0)
			goto out;
	}
	for (uint32_t i = 0; i < nd.n_wraps; i++)
		if ((r = wrap_into(d->wraps[i].uri, nk, d->wraps[i].role, &nd.wraps[i])) < 0)
			goto out;
	if ((r = save_dep(v, &nd)) < 0)
		goto out;
	*d = nd;
	for (size_t i = 0; i < nt; i++) {
		if (!trees[i].next_wlen)
			continue;
		memcpy(trees[i].wrapped_key, trees[i].next_wrapped_key, trees[i].next_wlen);
		trees[i].wlen = trees[i].next_wlen;
		ck_wipe(trees[i].next_wrapped_key, sizeof(trees[i].next_wrapped_key));
		trees[i].next_wlen = 0;
		trees[i].generation++;
		if ((r = ck_tree_rec_save(v, &trees[i])) < 0)
			goto out;
	}
	r = 0;
out:
	ck_secret_free(nk, CK_KEY_LEN);
	ck_secret_free(tk, CK_KEY_LEN);
	if (trees) {
		ck_wipe(trees, nt * sizeof(*trees));
		free(trees);
	}
	return r;
}

static int cmd_roll(struct ck_volume *v, const char *key_dir, const char *name, char **pairs,
                    int npairs, int avail, const char *avail_uri, int dep_key)
{
	struct ck_dep d;
	uint8_t *key = ck_secret_alloc(CK_KEY_LEN);
	char msg[512];
	int lock = ck_meta_lock(v), r = EXIT_FAIL;

	if (!key || lock < 0)
		goto out;
	if (!npairs && !avail && !dep_key) {
		fprintf(stderr, "%s: roll needs --customer-key OLD=NEW, --availability or --dep-key\n", prog);
		r = EXIT_USAGE;
		goto out;
	}
	if (find_or_fail(v, name, &d) < 0)
		goto out;
	if (d.state != CK_DEP_ACTIVE) {
		fprintf(stderr, "%s: dep \"%s\" is %s; only an active dep can be rolled\n", prog, name,
		        ck_dep_state_name(d.state));
		goto out;
	}
	if (customer_unwrap(&d, key) < 0)
		goto out;
	for (int i = 0; i < npairs; i++) {
		char *eq = NULL;
		uint32_t j;
		/* URIs contain '=' themselves (pkcs11:...;id=...): split where
		 * OLD is one of the dep's customer keys and NEW has a scheme. */
		for (char *q = strchr(pairs[i], '='); q && !eq; q = strchr(q + 1, '=')) {
			*q = '\0';
			for (j = 0; j < d.n_wraps && !eq; j++)
				if (d.wraps[j].role == CK_ROLE_CUSTOMER && !strcmp(d.wraps[j].uri, pairs[i]) &&
				    ck_provider_for(q + 1))
					eq = q;
			if (!eq)
				*q = '=';
		}
		if (!eq) {
			fprintf(stderr, "%s: --customer-key for roll takes OLD=NEW with OLD one of the dep's "
			        "customer keys, not \"%s\"\n", prog, pairs[i]);
			r = EXIT_USAGE;
			goto out;
		}
		*eq = '\0';
		for (j = 0; j < d.n_wraps; j++)
			if (d.wraps[j].role == CK_ROLE_CUSTOMER && !strcmp(d.wraps[j].uri, pairs[i]))
				break;
		if (j == d.n_wraps) {
			fprintf(stderr, "%s: dep \"%s\" has no customer key %s\n", prog, name, pairs[i]);
			goto out;
		}
		if (wrap_into(eq + 1, key, CK_ROLE_CUSTOMER, &d.wraps[j]) < 0)
			goto out;
	}
	char old_avail[CK_URI_MAX] = "";
	uint32_t j = 0;
	if (avail) {
		char fresh[CK_URI_MAX], hex[33];
		for (j = 0; j < d.n_wraps && d.wraps[j].role != CK_ROLE_AVAILABILITY; j++)
			;
		if (j == d.n_wraps) {
			fprintf(stderr, "%s: dep \"%s\" has no availability key\n", prog, name);
			goto out;
		}
		hex_id(d.id, hex);
		snprintf(fresh, sizeof(fresh), "file:%s/availability/%s-%llu.key", key_dir, hex,
		         (unsigned long long)time(NULL));
		snprintf(old_avail, sizeof(old_avail), "%s", d.wraps[j].uri);
		if (wrap_into(avail_uri ? avail_uri : fresh, key, CK_ROLE_AVAILABILITY, &d.wraps[j]) < 0)
			goto out;
	}
	if ((npairs || avail) && save_dep(v, &d) < 0)
		goto out;
	if (old_avail[0] && strcmp(old_avail, d.wraps[j].uri)) {
		int e = ck_key_destroy_uri(old_avail, msg, sizeof(msg));
		audit(v, "availability-key-destroyed", dep_label(&d), NULL, old_avail, e == 0 ? "ok" : msg);
	}
	if (dep_key && roll_dep_key(v, &d, key) < 0) {
		fprintf(stderr, "%s: dep key roll of \"%s\" did not finish; run it again\n", prog, name);
		goto out;
	}
	audit(v, "rolled", dep_label(&d), NULL, NULL, dep_key ? "dep key" : avail ? "availability key" : "customer key");
	if (json_mode)
		action_json("rolled", name, "active");
	else
		printf("%s: dep \"%s\" rolled\n", prog, name);
	r = EXIT_OK;
out:
	ck_secret_free(key, CK_KEY_LEN);
	ck_meta_unlock(lock);
	return r;
}

static int cmd_recover(struct ck_volume *v, const char *name, char **uris, int n)
{
	struct ck_dep d, nd;
	uint8_t *key = ck_secret_alloc(CK_KEY_LEN), *buf = ck_secret_alloc(CK_WRAP_MAX);
	char msg[512];
	size_t len = 0;
	int lock = ck_meta_lock(v), r = EXIT_FAIL, ok = 0;

	if (!key || !buf || lock < 0)
		goto out;
	if (!n) {
		fprintf(stderr, "%s: recover needs at least one --customer-key URI\n", prog);
		r = EXIT_USAGE;
		goto out;
	}
	if (find_or_fail(v, name, &d) < 0)
		goto out;
	if (d.state != CK_DEP_ACTIVE) {
		fprintf(stderr, "%s: dep \"%s\" is %s; a revoked dep is never recovered\n", prog, name,
		        ck_dep_state_name(d.state));
		goto out;
	}
	/* Keys that answer "denied" were revoked, not lost: record that. */
	if (ck_dep_probe(&d, msg, sizeof(msg)) == -EKEYREVOKED) {
		d.state = CK_DEP_REVOKED;
		if (save_dep(v, &d) == 0)
			audit(v, "revoked", dep_label(&d), NULL, NULL, "every customer key denied (found by recover)");
		fprintf(stderr, "%s: every customer key of dep \"%s\" answers denied: that is a "
		        "revocation, and a revoked dep is never recovered (recorded as revoked)\n", prog, name);
		goto out;
	}
	for (uint32_t i = 0; i < d.n_wraps && !ok; i++) {
		if (d.wraps[i].role != CK_ROLE_AVAILABILITY)
			continue;
		r = ck_key_unwrap_uri(d.wraps[i].uri, d.wraps[i].wrapped, d.wraps[i].len, buf, &len,
		                      msg, sizeof(msg));
		ok = r == 0 && len == CK_KEY_LEN;
	}
	r = EXIT_FAIL;
	if (!ok) {
		fprintf(stderr, "%s: the availability key of dep \"%s\" does not open it: %s\n", prog,
		        name, msg);
		goto out;
	}
	memcpy(key, buf, CK_KEY_LEN);
	nd = d;
	nd.n_wraps = 0;
	for (int i = 0; i < n; i++)
		if (wrap_into(uris[i], key, CK_ROLE_CUSTOMER, &nd.wraps[nd.n_wraps++]) < 0)
			goto out;
	for (uint32_t i = 0; i < d.n_wraps; i++)
		if (d.wraps[i].role == CK_ROLE_AVAILABILITY && nd.n_wraps < CK_DEP_MAX_WRAPS)
			nd.wraps[nd.n_wraps++] = d.wraps[i];
	if (save_dep(v, &nd) < 0)
		goto out;
	audit(v, "recovered", dep_label(&d), NULL, NULL, "customer keys replaced");
	if (json_mode)
		action_json("recovered", name, "active");
	else
		printf("%s: dep \"%s\" recovered with %d new customer key(s)\n", prog, name, n);
	r = EXIT_OK;
out:
	ck_secret_free(key, CK_KEY_LEN);
	ck_secret_free(buf, CK_WRAP_MAX);
	ck_meta_unlock(lock);
	return r;
}

static int cert_mac(const struct ck_volume *v, const char *text, size_t n, char hex[65])
{
	uint8_t mac[CK_HASH_LEN];
	const void *parts[] = { text };
	size_t lens[] = { n };
	int r = ck_hmac_sha256(v->cert_key, parts, lens, 1, mac);

	if (r == 0)
		ck_hex(mac, sizeof(mac), hex);
	return r;
}

static int cmd_verify_cert(struct ck_volume *v, const char *file)
{
	char buf[16384], *nl, *mac, want[65];
	FILE *f = fopen(file, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: cannot read certificate %s: %s\n", prog, file, strerror(errno));
		return EXIT_FAIL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	mac = nl ? strstr(nl, "{\"mac\":\"") : NULL;
	if (!nl || !mac || strlen(mac) < 8 + 64) {
		fprintf(stderr, "%s: %s is not a ckfs purge certificate\n", prog, file);
		return EXIT_FAIL;
	}
	if (cert_mac(v, buf, (size_t)(nl - buf), want) < 0 || !ck_memeq(mac + 8, want, 64)) {
		fprintf(stderr, "%s: certificate %s does NOT verify (edited, or from another volume)\n",
		        prog, file);
		return EXIT_FAIL;
	}
	if (json_mode) {
		/* The certificate's first line is itself a JSON object. */
		printf("{\"version\":%d,\"valid\":true,\"file\":", JSON_VERSION);
		json_str(stdout, file);
		printf(",\"certificate\":%.*s}\n", (int)(nl - buf), buf);
	} else {
		printf("certificate %s verifies: %.*s\n", file, (int)(nl - buf), buf);
	}
	return EXIT_OK;
}

static int cmd_config(struct ck_volume *v, const char *wait, int json)
{
	struct ck_config c;
	int r;

	if ((r = ck_config_load(v, &c)) < 0) {
		fprintf(stderr, "%s: the volume config record is corrupt\n", prog);
		return EXIT_FAIL;
	}
	if (wait) {
		int lock = ck_meta_lock(v);
		if (ck_parse_duration(wait, &c.purge_wait) < 0) {
			fprintf(stderr, "%s: --purge-wait %s is not a duration (like 0, 90s, 30m, 12h, 30d)\n",
			        prog, wait);
			ck_meta_unlock(lock);
			return EXIT_USAGE;
		}
		r = ck_config_save(v, &c);
		ck_meta_unlock(lock);
		if (r < 0)
			return EXIT_FAIL;
		audit(v, "config-changed", NULL, NULL, NULL, wait);
	}
	if (json) {
		printf("{\"version\":%d,\"purge_wait\":%llu,\"availability\":", JSON_VERSION,
		       (unsigned long long)c.purge_wait);
		json_str(stdout, c.availability);
		printf("}\n");
	}
	else
		printf("purge-wait %llus\n", (unsigned long long)c.purge_wait);
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
		{ "availability", no_argument, NULL, 'A' },
		{ "dep-key", no_argument, NULL, 'D' },
		{ "cancel", no_argument, NULL, 'X' },
		{ "purge-wait", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *key_dir = NULL, *avail = NULL, *confirm = NULL, *wait = NULL;
	char *cust[CK_DEP_MAX_WRAPS];
	int ncust = 0, json = 0, verify = 0, c, r, avail_roll = 0, dep_key = 0, cancel = 0;
	struct ck_volume v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:jhV", opts, NULL)) != -1) {
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
		case 'A': avail_roll = 1; break;
		case 'D': dep_key = 1; break;
		case 'X': cancel = 1; break;
		case 'W': wait = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("ck-dep %s\n", CKFS_VERSION); return EXIT_OK;
		default: tool_opt_error(prog, c, argv); return EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	if (nargs < 2) {
		fprintf(stderr, "%s: expected VOLUME and a COMMAND (see %s --help)\n", prog, prog);
		return EXIT_USAGE;
	}
	const char *vol = argv[optind], *cmd = argv[optind + 1];
	const char *name = nargs > 2 ? argv[optind + 2] : NULL;
	static const char *const need_name[] = { "create", "show", "revoke", "purge", "roll",
	                                         "recover", "verify-certificate" };
	static const char *const known[] = { "create", "show", "revoke", "purge", "list", "status",
	                                     "audit", "roll", "recover", "verify-certificate", "config" };
	int ok = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= !strcmp(cmd, known[i]);
	if (!ok) {
		fprintf(stderr, "%s: unknown command \"%s\" (see %s --help)\n", prog, cmd, prog);
		return EXIT_USAGE;
	}
	int takes_name = !strcmp(cmd, "status");
	for (size_t i = 0; i < sizeof(need_name) / sizeof(need_name[0]); i++)
		if (!strcmp(cmd, need_name[i])) {
			takes_name = 1;
			if (!name) {
				fprintf(stderr, "%s: '%s' needs a %s\n", prog, cmd,
				        !strcmp(cmd, "verify-certificate") ? "certificate FILE" : "dep NAME");
				return EXIT_USAGE;
			}
		}
	if (nargs > 2 + takes_name) {
		fprintf(stderr, "%s: unexpected argument \"%s\" (see %s --help)\n", prog,
		        argv[optind + 2 + takes_name], prog);
		return EXIT_USAGE;
	}
	json_mode = json;
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
		r = cmd_purge(&v, name, confirm, cancel, json);
	else if (!strcmp(cmd, "roll"))
		r = cmd_roll(&v, key_dir, name, cust, ncust, avail_roll, avail, dep_key);
	else if (!strcmp(cmd, "recover"))
		r = cmd_recover(&v, name, cust, ncust);
	else if (!strcmp(cmd, "verify-certificate"))
		r = cmd_verify_cert(&v, name);
	else if (!strcmp(cmd, "config"))
		r = cmd_config(&v, wait, json);
	else
		r = cmd_audit(&v, verify, json);
	ck_volume_close(&v);
	return r == EXIT_OK && audit_failed ? EXIT_FAIL : r;
}
