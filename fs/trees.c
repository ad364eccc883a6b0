/* DEP trees in the daemon: loading them from the volume's records,
 * following record changes (a watcher thread polls .ckfs/deps and
 * .ckfs/trees every 200 ms, so explicit revocation acts well within one
 * second), probing customer keys every key_ttl, and revocation: keys wiped
 * under the tree's write lock, then the kernel's caches for the tree's
 * inodes invalidated so no cached plaintext is served.
 *
 * Lock order (extends ckfs.h): stree.lock -> ns_lock -> inode.io ->
 * inode.lock -> table_lock; trees_lock is a leaf taken alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "fs/ckfs.h"
#include "keys/audit.h"
#include "keys/dep.h"
#include "keys/secmem.h"
#include "keys/util.h"

static pthread_t watcher, prober;
static struct timespec seen_at_start;
static int watcher_running;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static int stopping;

int ck_tree_enter(struct ck_tree *t)
{
	struct ck_stree *s = ck_stree_of(t);

	if (s->is_service)
		return 0;
	pthread_rwlock_rdlock(&s->lock);
	if (s->status) {
		int r = s->status;
		pthread_rwlock_unlock(&s->lock);
		return r;
	}
	return 0;
}

void ck_tree_leave(struct ck_tree *t)
{
	struct ck_stree *s = ck_stree_of(t);

	ck_file_op_end();
	if (!s->is_service)
		pthread_rwlock_unlock(&s->lock);
}

int ck_apply_lock(struct ck_tree *t, int fd)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = CK_WLOCK_OFF };

	if (!ck_tree_applying(t))
		return 0;
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

void ck_apply_unlock(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_len = CK_WLOCK_OFF };

	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

int ck_dir_lock(struct ck_inode *dir, int dirfd)
{
	int fd;

	if (!ck_tree_applying(dir->tree))
		return -1;
	fd = openat(dirfd, CK_DIRID_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && ck_apply_lock(dir->tree, fd) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void ck_dir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);      /* closing drops the OFD lock */
}

/* "mail" + "alice" -> "mail/alice"; parent path from the inode names. */
static void child_path(struct ck_inode *parent, const char *name, char *out, size_t n)
{
	char p[4096];

	ck_inode_path(parent, p, sizeof(p));
	snprintf(out, n, "%s%s%s", p[1] ? p + 1 : "", p[1] ? "/" : "", name);
}

struct ck_tree *ck_tree_for_child(struct ck_inode *parent, const char *name)
{
	char path[4096];
	struct ck_stree *s;

	if (!ck_stree_of(parent->tree)->is_service || !ck.trees)
		return parent->tree;
	child_path(parent, name, path, sizeof(path));
	pthread_mutex_lock(&ck.trees_lock);
	for (s = ck.trees; s; s = s->next)
		if (!s->retired && !strcmp(s->path, path))
			break;
	pthread_mutex_unlock(&ck.trees_lock);
	return s ? &s->k : parent->tree;
}

int ck_path_holds_tree(struct ck_inode *parent, const char *name)
{
	char path[4096];
	size_t l;
	int hit = 0;

	if (!ck_stree_of(parent->tree)->is_service || !ck.trees)
		return 0;
	child_path(parent, name, path, sizeof(path));
	l = strlen(path);
	pthread_mutex_lock(&ck.trees_lock);
	for (struct ck_stree *s = ck.trees; s && !hit; s = s->next)
		hit = !s->retired && !strncmp(s->path, path, l) &&
		      (s->path[l] == '\0' || s->path[l] == '/');
	pthread_mutex_unlock(&ck.trees_lock);
	return hit;
}

static void audit(const char *event, const char *dep, const char *tree, const char *uri,
                  const char *result, const char *actor)
{
	struct ck_audit_event e = { event, dep, tree, uri, result, actor };
	/* dep and tree are "dep:<hex id>" / "tree:<hex id>" labels (see
	 * id_label): names and paths are customer data, the log is not. */
	if (ck_audit_append(&ck.vol, &e) < 0)
		ck_log(CK_LOG_WARNING, "could not append \"%s\" to the audit log", event);
}

static const char *id_label(const char *kind, const uint8_t id[CK_ID_LEN], char *buf, size_t n)
{
	snprintf(buf, n, "%s:", kind);
	ck_hex(id, CK_ID_LEN, buf + strlen(buf));
	return buf;
}

/* Stop serving s: wipe its keys and every open file's keys, then drop the
 * kernel's cached pages and attributes of its inodes. */
static void revoke_tree(struct ck_stree *s, int status)
{
	struct ck_inode **list = NULL;
	size_t n = 0, cap = 0;

	pthread_rwlock_wrlock(&s->lock);
	if (s->status == status) {
		pthread_rwlock_unlock(&s->lock);
		return;
	}
	s->status = status;
	ck_tree_release(&s->k);
	if (s->applying && !s->old_is_service)
		ck_tree_release(&s->old);
	s->applying = 0;
	/* No operation on this tree is in flight now: collect its inodes. */
	pthread_mutex_lock(&ck.table_lock);
	for (size_t i = 0; i < ck.table_size; i++)
		for (struct ck_inode *in = ck.table[i]; in; in = in->hnext) {
			if (in->tree != &s->k)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				struct ck_inode **q = realloc(list, c * sizeof(*q));
				if (!q)
					continue;
				list = q;
				cap = c;
			}
			in->refs++;
			list[n++] = in;
		}
	pthread_mutex_unlock(&ck.table_lock);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&list[i]->lock);
		ck_file_keys_release(&list[i]->keys);
		ck_file_keys_release(&list[i]->keys2);
		list[i]->pcs.ok = 0;
		pthread_mutex_unlock(&list[i]->lock);
	}
	pthread_rwlock_unlock(&s->lock);
	ck_log(CK_LOG_WARNING, "tree %s (dep \"%s\") %s: no longer served", s->path, s->dep_name,
	       status == -EKEYREVOKED ? "revoked" : "has no key");
	for (size_t i = 0; i < n; i++) {
		if (ck.se)
			fuse_lowlevel_notify_inval_inode(ck.se, (fuse_ino_t)(uintptr_t)list[i], 0, 0);
		ck_inode_unpin(list[i]);
	}
	free(list);
}

/* Persist a customer-side revocation found by the daemon (durable: a
 * remount or another host must not serve the DEP again). */
static void record_revocation(const uint8_t dep_id[CK_ID_LEN], const char *detail)
{
	char lb[48];
	struct ck_dep *deps;
	size_t n;
	int lock = ck_meta_lock(&ck.vol);

	if (lock < 0)
		return;
	if (ck_dep_load_all(&ck.vol, &deps, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (memcmp(deps[i].id, dep_id, CK_ID_LEN) || deps[i].state != CK_DEP_ACTIVE)
				continue;
			deps[i].state = CK_DEP_REVOKED;
			deps[i].changed = (uint64_t)time(NULL);
			deps[i].generation++;
			/* Every customer key answered denied: keep that answer. */
			for (uint32_t k = 0; k < deps[i].n_wraps; k++)
				if (deps[i].wraps[k].role == CK_ROLE_CUSTOMER) {
					deps[i].wraps[k].last_result = CK_RES_DENIED;
					deps[i].wraps[k].last_time = deps[i].changed;
				}
			if (ck_dep_save(&ck.vol, &deps[i]) == 0)
				audit("revoked", id_label("dep", deps[i].id, lb, sizeof(lb)), NULL, NULL,
				      detail, "probe");
		}
		free(deps);
	}
	ck_meta_unlock(lock);
}

static struct ck_dep *dep_by_id(struct ck_dep *deps, size_t n, const uint8_t id[CK_ID_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(deps[i].id, id, CK_ID_LEN))
			return &deps[i];
	return NULL;
}

/* Bring a tree record to life: unwrap its DEP key and tree key. */
static int load_keys(struct ck_stree *s, struct ck_dep *d, const struct ck_tree_rec *t)
{
	char l1[48], l2[48];
	uint8_t *dk = ck_secret_alloc(CK_KEY_LEN), *tk = ck_secret_alloc(CK_WRAP_MAX);
	char msg[1024];
	size_t len = 0;
	int fallback = 0, r;

	if (!dk || !tk) {
		r = -ENOMEM;
		goto out;
	}
	r = ck_dep_unwrap(d, dk, 1, &fallback, msg, sizeof(msg));
	if (r == -EKEYREVOKED) {
		ck_log(CK_LOG_WARNING, "dep \"%s\": every customer key denied (%s): revoked", d->name, msg);
		record_revocation(d->id, "every customer key denied");
		goto out;
	}
	if (r < 0) {
		ck_log(CK_LOG_ERR, "dep \"%s\": no customer key answers (%s); tree %s not served",
		       d->name, msg, t->path);
		audit("unwrap-failed", id_label("dep", d->id, l1, sizeof(l1)),
		      id_label("tree", t->id, l2, sizeof(l2)), NULL, "unavailable", "daemon");
		r = -ENOKEY;
		goto out;
	}
	if (fallback) {
		ck_log(CK_LOG_WARNING, "dep \"%s\": customer keys unavailable (%s); serving with the "
		       "availability key", d->name, msg);
		audit("availability-key-fallback", id_label("dep", d->id, l1, sizeof(l1)),
		      id_label("tree", t->id, l2, sizeof(l2)), NULL, msg, "daemon");
	}
	(void)len;
	if ((r = ck_tree_key_from(t, dk, tk)) < 0) {
		ck_log(CK_LOG_ERR, "tree %s: its key does not unwrap under dep \"%s\" (corrupt record?)",
		       t->path, d->name);
		r = -ENOKEY;
		goto out;
	}
	r = ck_tree_init(&s->k, ck.vol.hdr.volume_id, t->id, tk) < 0 ? -ENOKEY : 0;
out:
	ck_secret_free(dk, CK_KEY_LEN);
	ck_secret_free(tk, CK_WRAP_MAX);
	return r;
}

/* Point every cached inode at or under the root path of s at s (a newly
 * served tree, or one whose data starts moving to a new key). Directories
 * by their path; other inodes by the tree of their parent directory. */
static void adopt_subtree(struct ck_stree *s)
{
	char p[4096];
	size_t l = strlen(s->path);

	pthread_rwlock_wrlock(&ck.ns_lock);
	pthread_mutex_lock(&ck.table_lock);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ck.table_size; i++)
			for (struct ck_inode *in = ck.table[i]; in; in = in->hnext) {
				if ((pass == 0) != (in->type == S_IFDIR))
					continue;
				if (pass == 0) {
					ck_inode_path(in, p, sizeof(p));
					if (!strcmp(p + 1, s->path)) {
						in->tree = &s->k;
						in->tree_root = 1;
					} else if (!strncmp(p + 1, s->path, l) && p[1 + l] == '/') {
						in->tree = &s->k;
					}
				} else if (in->names && in->names->parent->tree == &s->k) {
					in->tree = &s->k;
				}
			}
	pthread_mutex_unlock(&ck.table_lock);
	pthread_rwlock_unlock(&ck.ns_lock);
}

static struct ck_tree_rec *rec_by_id(struct ck_tree_rec *t, size_t n, const uint8_t id[CK_ID_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(t[i].id, id, CK_ID_LEN))
			return &t[i];
	return NULL;
}

/* The keys a tree being applied comes from: the service tree's, or those
 * of the record it replaces. */
static int load_old_keys(struct ck_stree *s, const struct ck_tree_rec *t, struct ck_tree_rec *all,
                         size_t nt, struct ck_dep *deps, size_t nd)
{
	static const uint8_t zero[CK_ID_LEN];
	struct ck_tree_rec *o;
	char msg[512];
	int fb = 0;

	if (!memcmp(t->old_rec_id, zero, CK_ID_LEN)) {
		s->old = ck.vol.service;
		s->old_is_service = 1;
		return 0;
	}
	if (!(o = rec_by_id(all, nt, t->old_rec_id)))
		return -ENOKEY;
	if (ck_tree_key_unwrap(&ck.vol, o, deps, nd, &s->old, 1, &fb, msg, sizeof(msg)) < 0) {
		ck_log(CK_LOG_ERR, "tree %s: the keys it is applied from do not unwrap: %s", s->path, msg);
		return -ENOKEY;
	}
	return 0;
}

static void retire(struct ck_stree *s)
{
	pthread_mutex_lock(&ck.trees_lock);
	s->retired = 1;
	pthread_mutex_unlock(&ck.trees_lock);
}

/* After an apply every entry of the tree has its new-key name: recompute
 * the backing names cached in the inodes. */
static void rebase_names(struct ck_stree *s)
{
	pthread_rwlock_wrlock(&ck.ns_lock);
	pthread_mutex_lock(&ck.table_lock);
	struct ck_inode **list = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < ck.table_size; i++)
		for (struct ck_inode *in = ck.table[i]; in; in = in->hnext) {
			if (in->tree != &s->k || in->tree_root)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				struct ck_inode **q = realloc(list, c * sizeof(*q));
				if (!q)
					continue;
				list = q;
				cap = c;
			}
			in->refs++;
			list[n++] = in;
		}
	pthread_mutex_unlock(&ck.table_lock);
	for (size_t i = 0; i < n; i++) {
		for (struct ck_name *nm = list[i]->names; nm; nm = nm->next) {
			struct ck_ename en;
			int dfd = ck_dir_open(nm->parent, O_PATH);
			char *e;
			if (dfd < 0)
				continue;
			if (ck_ename_make(nm->parent, dfd, nm->name, &en) == 0 && (e = strdup(en.entry))) {
				free(nm->ename);
				nm->ename = e;
			}
			close(dfd);
		}
	}
	pthread_rwlock_unlock(&ck.ns_lock);
	for (size_t i = 0; i < n; i++)
		ck_inode_unpin(list[i]);
	free(list);
}

/* The apply finished: only the new keys from now on. */
static void finish_apply(struct ck_stree *s)
{
	ck_inode_apply_fixups();
	rebase_names(s);
	pthread_rwlock_wrlock(&s->lock);
	if (!s->old_is_service)
		ck_tree_release(&s->old);
	memset(&s->old, 0, sizeof(s->old));
	s->applying = 0;
	pthread_rwlock_unlock(&s->lock);
	ck_log(CK_LOG_INFO, "tree %s: now entirely under dep \"%s\"", s->path, s->dep_name);
}

static void reload(void)
{
	struct ck_dep *deps = NULL;
	struct ck_tree_rec *trees = NULL;
	size_t nd = 0, nt = 0;

	if (ck_dep_load_all(&ck.vol, &deps, &nd, NULL) < 0 ||
	    ck_tree_rec_load_all(&ck.vol, &trees, &nt, NULL) < 0)
		goto out;
	for (size_t i = 0; i < nt; i++) {
		struct ck_tree_rec *t = &trees[i];
		struct ck_dep *d = dep_by_id(deps, nd, t->dep_id);
		struct ck_stree *s;

		/* A pending tree is still under the service key until applied,
		 * but once its dep is revoked it is not served either. */
		if (t->state == CK_TREE_PENDING && d && d->state == CK_DEP_ACTIVE)
			continue;
		/* A record that a tree being applied replaces is retired already,
		 * whatever order the records are read in. */
		for (size_t j = 0; j < nt; j++)
			if (trees[j].state == CK_TREE_APPLYING &&
			    !memcmp(trees[j].old_rec_id, t->id, CK_ID_LEN))
				t->state = CK_TREE_RETIRED;
		pthread_mutex_lock(&ck.trees_lock);
		for (s = ck.trees; s; s = s->next)
			if (!memcmp(s->rec_id, t->id, CK_ID_LEN))
				break;
		pthread_mutex_unlock(&ck.trees_lock);
		if (t->state == CK_TREE_RETIRED || t->state == CK_TREE_PURGED) {
			if (s && t->state == CK_TREE_RETIRED && !s->retired)
				retire(s);
			if (s && t->state == CK_TREE_PURGED && s->status == 0)
				revoke_tree(s, -EKEYREVOKED);
			continue;
		}
		int alive = d && d->state == CK_DEP_ACTIVE && t->state != CK_TREE_PENDING;
		if (s) {
			if (!alive && s->status != -EKEYREVOKED)
				revoke_tree(s, -EKEYREVOKED);
			else if (alive && s->status == -ENOKEY) {
				/* The customer keys came back. */
				pthread_rwlock_wrlock(&s->lock);
				if (load_keys(s, d, t) == 0)
					s->status = 0;
				pthread_rwlock_unlock(&s->lock);
			}
			if (s->applying && t->state == CK_TREE_ACTIVE)
				finish_apply(s);
			continue;
		}
		if (!(s = calloc(1, sizeof(*s))))
			continue;
		pthread_rwlockattr_t ra;
		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&s->lock, &ra);
		snprintf(s->path, sizeof(s->path), "%s", t->path);
		memcpy(s->rec_id, t->id, CK_ID_LEN);
		memcpy(s->dep_id, t->dep_id, CK_ID_LEN);
		snprintf(s->dep_name, sizeof(s->dep_name), "%s", d ? d->name : "?");
		memcpy(s->k.volume_id, ck.vol.hdr.volume_id, CK_ID_LEN);
		memcpy(s->k.id, t->id, CK_ID_LEN);
		s->status = !alive ? -EKEYREVOKED : load_keys(s, d, t);
		if (s->status && s->status != -ENOKEY)
			s->status = -EKEYREVOKED;
		if (s->status == 0 && t->state == CK_TREE_APPLYING) {
			if (load_old_keys(s, t, trees, nt, deps, nd) == 0)
				s->applying = 1;
			else
				s->status = -ENOKEY;
		}
		/* A record replacing another for the same path retires it. */
		pthread_mutex_lock(&ck.trees_lock);
		for (struct ck_stree *o = ck.trees; o; o = o->next)
			if (!o->retired && !strcmp(o->path, s->path))
				o->retired = 1;
		s->next = ck.trees;
		ck.trees = s;
		pthread_mutex_unlock(&ck.trees_lock);
		adopt_subtree(s);
		if (s->applying)
			ck_log(CK_LOG_INFO, "tree %s: being re-encrypted under dep \"%s\"", s->path,
			       s->dep_name);
	}
out:
	free(deps);
	if (trees) {
		ck_wipe(trees, nt * sizeof(*trees));
		free(trees);
	}
}

static int records_changed(struct timespec *last)
{
	struct timespec now;

	ck_records_time(&ck.vol, &now);
	if (now.tv_sec == last->tv_sec && now.tv_nsec == last->tv_nsec)
		return 0;
	*last = now;
	return 1;
}

/* Wait until the deadline or until unmount; 1 when stopping. */
static int nap(long ms)
{
	struct timespec until;
	int done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&stop_lock);
	while (!stopping && pthread_cond_timedwait(&stop_cond, &stop_lock, &until) == 0)
		;
	done = stopping;
	pthread_mutex_unlock(&stop_lock);
	return done;
}

/* Follows the volume's records: every 200 ms, reload when they changed. */
static void *watch(void *arg)
{
	struct timespec last = { 0 }, now, full = { 0 };

	do {
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* Also a full reload every key_ttl: directory times on shared
		 * storage may lag, and trees whose keys were unavailable get
		 * retried. */
		int due = now.tv_sec - full.tv_sec >= (time_t)ck.key_ttl;
		if (records_changed(&last) || due) {
			reload();
			/* Tell tools on this host we have seen their change. */
			ck_mount_seen(&ck.vol, &last);
			ck_status_write();
			if (due)
				full = now;
		}
		ck_inode_apply_fixups();
	} while (!nap(200));
	return arg;
}

/* Probes every DEP in use once per key_ttl, in its own thread so that a
 * slow provider (an exec helper, an HSM) delays neither file operations
 * nor the watcher. A denial by every customer key is recorded in the DEP
 * record; the watcher then revokes within 200 ms, on every mount. */
static void *probe(void *arg)
{
	while (!nap((long)(ck.key_ttl * 1000))) {
		struct ck_dep *deps = NULL;
		size_t nd = 0;

		if (ck_dep_load_all(&ck.vol, &deps, &nd, NULL) < 0)
			continue;
		for (size_t i = 0; i < nd; i++) {
			char msg[1024];
			int used = 0;

			if (deps[i].state != CK_DEP_ACTIVE)
				continue;
			pthread_mutex_lock(&ck.trees_lock);
			for (struct ck_stree *s = ck.trees; s; s = s->next)
				used |= !memcmp(s->dep_id, deps[i].id, CK_ID_LEN) && s->status == 0;
			pthread_mutex_unlock(&ck.trees_lock);
			if (!used)
				continue;
			int r = ck_status_probe(&deps[i], msg, sizeof(msg));
			if (r == -EKEYREVOKED) {
				ck_log(CK_LOG_WARNING, "dep \"%s\": every customer key denied (%s): revoked",
				       deps[i].name, msg);
				record_revocation(deps[i].id, "every customer key denied");
			} else if (r < 0) {
				ck_log(CK_LOG_WARNING, "dep \"%s\": customer keys unavailable (%s); still "
				       "serving with the keys in memory", deps[i].name, msg);
				char lb[48];
				audit("customer-keys-unavailable", id_label("dep", deps[i].id, lb, sizeof(lb)),
				      NULL, NULL, msg, "probe");
			}
		}
		free(deps);
		ck_status_write();
	}
	return arg;
}

int ck_trees_start(void)
{
	struct timespec t0 = { 0 };

	ck.service.k = ck.vol.service;   /* shares the volume's (owned) keys */
	ck.service.is_service = 1;
	pthread_rwlock_init(&ck.service.lock, NULL);
	pthread_mutex_init(&ck.trees_lock, NULL);
	records_changed(&t0);
	reload();
	seen_at_start = t0;
	return 0;
}

/* After fuse_daemonize: threads do not survive its fork. */
int ck_trees_watch(void)
{
	if (pthread_create(&watcher, NULL, watch, NULL) != 0)
		return -EAGAIN;
	if (pthread_create(&prober, NULL, probe, NULL) != 0) {
		pthread_mutex_lock(&stop_lock);
		stopping = 1;
		pthread_cond_broadcast(&stop_cond);
		pthread_mutex_unlock(&stop_lock);
		pthread_join(watcher, NULL);
		return -EAGAIN;
	}
	watcher_running = 1;
	ck_mount_seen(&ck.vol, &seen_at_start);
	ck_status_write();
	audit("mounted", NULL, NULL, NULL, "ok", "daemon");
	return 0;
}

void ck_trees_stop(void)
{
	if (watcher_running) {
		audit("unmounted", NULL, NULL, NULL, "ok", "daemon");
		pthread_mutex_lock(&stop_lock);
		stopping = 1;
		pthread_cond_broadcast(&stop_cond);
		pthread_mutex_unlock(&stop_lock);
		pthread_join(watcher, NULL);
		pthread_join(prober, NULL);
		watcher_running = 0;
		/* Only now: a reload or probe round still running would
		 * write the seen and status files again. */
		ck_mount_gone(&ck.vol);
		ck_status_remove();
	}
	for (struct ck_stree *s = ck.trees; s; s = s->next)
		ck_tree_release(&s->k);
}
