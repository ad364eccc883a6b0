/* The mount's status file, .ckfs/status/<host>-<pid> (docs/FORMAT.md,
 * "Mount status files"): which DEPs this mount serves, how many of their
 * trees, and the last answer and latency of each customer key the prober
 * asked. 'ck-dep VOLUME status' reads it. It holds IDs, counts, times and
 * result names only: no names, paths, URIs or key bytes.
 *
 * Written atomically (a .tmp file, then rename) after every probe round
 * and every reload of the records; removed at unmount. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "fs/ckfs.h"
#include "keys/dep.h"
#include "keys/provider.h"
#include "keys/util.h"

#define MAX_DEPS 256

struct key_answer {
	uint8_t result;                 /* CK_RES_* (0: never asked) */
	uint64_t latency_us;
	uint64_t time;
};

struct dep_probe {
	uint8_t id[CK_ID_LEN];
	uint64_t probed, ok;            /* Unix times of the last probe, the last "ok" */
	uint8_t result;                 /* aggregate of the last probe (CK_RES_*) */
	struct key_answer keys[CK_DEP_MAX_WRAPS];
};

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dep_probe probes[MAX_DEPS];
static size_t nprobes;
static uint64_t started;

static struct dep_probe *probe_of(const uint8_t id[CK_ID_LEN], int create)
{
	for (size_t i = 0; i < nprobes; i++)
		if (!memcmp(probes[i].id, id, CK_ID_LEN))
			return &probes[i];
	if (!create || nprobes == MAX_DEPS)
		return NULL;
	memset(&probes[nprobes], 0, sizeof(probes[0]));
	memcpy(probes[nprobes].id, id, CK_ID_LEN);
	return &probes[nprobes++];
}

static uint8_t res_of(int r)
{
	return r == 0 ? CK_RES_OK : r == -EKEYREVOKED ? CK_RES_DENIED : CK_RES_UNAVAILABLE;
}

static const char *res_name(uint8_t r)
{
	return r == 0 ? "never" : ck_result_name(r);
}

int ck_status_probe(struct ck_dep *d, char *msg, size_t msg_len)
{
	int denied = 0, customers = 0, r, agg = -EAGAIN;
	uint64_t now = (uint64_t)time(NULL);
	struct key_answer got[CK_DEP_MAX_WRAPS] = { { 0 } };
	char m[256];

	if (msg_len)
		msg[0] = '\0';
	/* As ck_dep_probe: the first "ok" ends the round. */
	for (uint32_t i = 0; i < d->n_wraps && i < CK_DEP_MAX_WRAPS; i++) {
		struct ck_wrap *w = &d->wraps[i];
		struct timespec t0, t1;
		if (w->role != CK_ROLE_CUSTOMER)
			continue;
		customers++;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = ck_key_probe_uri(w->uri, m, sizeof(m));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		got[i].result = res_of(r);
		got[i].time = now;
		got[i].latency_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000LL +
		                               (t1.tv_nsec - t0.tv_nsec) / 1000);
		w->last_result = got[i].result;
		w->last_time = now;
		if (r == 0) {
			agg = 0;
			break;
		}
		if (r == -EKEYREVOKED)
			denied++;
		if (msg_len)
			snprintf(msg + strlen(msg), msg_len - strlen(msg), "%s%s: %s",
			         msg[0] ? "; " : "", w->uri, m);
	}
	if (agg != 0)
		agg = customers && denied == customers ? -EKEYREVOKED : -EAGAIN;
	pthread_mutex_lock(&status_lock);
	struct dep_probe *p = probe_of(d->id, 1);
	if (p) {
		p->probed = now;
		p->result = res_of(agg);
		if (agg == 0)
			p->ok = now;
		for (uint32_t i = 0; i < CK_DEP_MAX_WRAPS; i++)
			if (got[i].result)
				p->keys[i] = got[i];
	}
	pthread_mutex_unlock(&status_lock);
	return agg;
}

static void status_name(char *out, size_t n, int tmp)
{
	char host[256] = "localhost";

	gethostname(host, sizeof(host) - 1);
	snprintf(out, n, "%s/status/%s-%ld%s", CK_VOLUME_DIR, host, (long)getpid(), tmp ? ".tmp" : "");
}

/* Bytes below '!', '\' and DEL as \ooo (as in /proc/mounts). */
static void put_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == '\\' || *p == 0x7f)
			fprintf(f, "\\%03o", *p);
		else
			fputc(*p, f);
	}
}

void ck_status_write(void)
{
	struct { uint8_t id[CK_ID_LEN]; unsigned serving, stopped; } deps[MAX_DEPS];
	size_t nd = 0;
	char path[512], tmp[520], host[256] = "localhost", hex[2 * CK_ID_LEN + 1];
	FILE *f;
	int fd;

	if (!started)
		started = (uint64_t)time(NULL);
	pthread_mutex_lock(&ck.trees_lock);
	for (struct ck_stree *s = ck.trees; s; s = s->next) {
		size_t i;
		if (s->retired)
			continue;
		for (i = 0; i < nd && memcmp(deps[i].id, s->dep_id, CK_ID_LEN); i++)
			;
		if (i == nd) {
			if (nd == MAX_DEPS)
				continue;
			memcpy(deps[nd].id, s->dep_id, CK_ID_LEN);
			deps[nd].serving = deps[nd].stopped = 0;
			nd++;
		}
		if (s->status == 0)
			deps[i].serving++;
		else
			deps[i].stopped++;
	}
	pthread_mutex_unlock(&ck.trees_lock);

	gethostname(host, sizeof(host) - 1);
	pthread_mutex_lock(&status_lock);
	mkdirat(ck.vol.fd, CK_VOLUME_DIR "/status", 0700);
	status_name(path, sizeof(path), 0);
	status_name(tmp, sizeof(tmp), 1);
	fd = openat(ck.vol.fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		pthread_mutex_unlock(&status_lock);
		return;
	}
	fprintf(f, "ckfs-status 1\nhost ");
	put_escaped(f, host);
	fprintf(f, "\npid %ld\nmountpoint ", (long)getpid());
	put_escaped(f, ck.mountpoint[0] ? ck.mountpoint : "-");
	fprintf(f, "\nstarted %llu\nwritten %llu\nkey_ttl %g\n", (unsigned long long)started,
	        (unsigned long long)time(NULL), ck.key_ttl);
	for (size_t i = 0; i < nd; i++) {
		const struct dep_probe *p = probe_of(deps[i].id, 0);
		ck_hex(deps[i].id, CK_ID_LEN, hex);
		fprintf(f, "dep %s %u %u %llu %llu %s\n", hex, deps[i].serving, deps[i].stopped,
		        p ? (unsigned long long)p->probed : 0ULL, p ? (unsigned long long)p->ok : 0ULL,
		        res_name(p ? p->result : 0));
		for (uint32_t k = 0; p && k < CK_DEP_MAX_WRAPS; k++)
			if (p->keys[k].result)
				fprintf(f, "key %s %u %s %llu %llu\n", hex, k, res_name(p->keys[k].result),
				        (unsigned long long)p->keys[k].latency_us,
				        (unsigned long long)p->keys[k].time);
	}
	if (fclose(f) == 0)
		(void)renameat(ck.vol.fd, tmp, ck.vol.fd, path);
	else
		unlinkat(ck.vol.fd, tmp, 0);
	pthread_mutex_unlock(&status_lock);
}

void ck_status_remove(void)
{
	char path[512];

	status_name(path, sizeof(path), 0);
	unlinkat(ck.vol.fd, path, 0);
}
