/* The inode table, backing path resolution and directory IDs.
 * Lock order: see ckfs.h. The daemon keeps no fd per inode (only per
 * open file): it resolves paths from the root fd, so millions of inodes
 * cost memory, not file descriptors. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fs/ckfs.h"
#include "keys/util.h"

static size_t hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
	return (size_t)(h ^ h >> 29);
}

void ck_inode_table_init(void)
{
	ck.table_size = 1024;
	ck.table = calloc(ck.table_size, sizeof(*ck.table));
	if (!ck.table)
		abort();
}

static void table_grow(void)
{
	size_t nsize = ck.table_size * 2;
	struct ck_inode **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return;   /* keep the longer chains; still correct */
	for (size_t i = 0; i < ck.table_size; i++) {
		struct ck_inode *in = ck.table[i], *next;
		for (; in; in = next) {
			next = in->hnext;
			size_t h = hash(in->dev, in->ino) & (nsize - 1);
			in->hnext = nt[h];
			nt[h] = in;
		}
	}
	free(ck.table);
	ck.table = nt;
	ck.table_size = nsize;
}

struct ck_inode *ck_inode_get(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &ck.root : (struct ck_inode *)(uintptr_t)ino;
}

static struct ck_inode *table_find(dev_t dev, ino_t ino)
{
	struct ck_inode *in;

	if (dev == ck.root.dev && ino == ck.root.ino)
		return &ck.root;
	for (in = ck.table[hash(dev, ino) & (ck.table_size - 1)]; in; in = in->hnext)
		if (in->dev == dev && in->ino == ino)
			return in;
	return NULL;
}

struct ck_inode *ck_inode_find(dev_t dev, ino_t ino)
{
	struct ck_inode *in;

	pthread_mutex_lock(&ck.table_lock);
	in = table_find(dev, ino);
	pthread_mutex_unlock(&ck.table_lock);
	return in;
}

static void table_remove(struct ck_inode *in);

void ck_inode_unhash(struct ck_inode *in)
{
	pthread_mutex_lock(&ck.table_lock);
	if (in != &ck.root)
		table_remove(in);
	pthread_mutex_unlock(&ck.table_lock);
}

static void table_remove(struct ck_inode *in)
{
	struct ck_inode **p = &ck.table[hash(in->dev, in->ino) & (ck.table_size - 1)];

	for (; *p; p = &(*p)->hnext)
		if (*p == in) {
			*p = in->hnext;
			ck.table_count--;
			return;
		}
}

static void free_names(struct ck_name *n);

/* Drop references; frees the inode (and unpins its parents) when nothing
 * refers to it any more. Caller holds table_lock. */
static void unref_locked(struct ck_inode *in, uint64_t lookups, uint64_t refs)
{
	if (!in || in == &ck.root)
		return;
	in->nlookup -= lookups;
	in->refs -= refs;
	if (in->nlookup || in->refs || in->nopen)
		return;
	table_remove(in);
	for (struct ck_name *n = in->names; n; n = n->next)
		unref_locked(n->parent, 0, 1);
	free_names(in->names);
	ck_file_ostate_free(in);
	pthread_rwlock_destroy(&in->io);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

void ck_inode_forget(struct ck_inode *in, uint64_t n)
{
	pthread_mutex_lock(&ck.table_lock);
	if (in != &ck.root)
		unref_locked(in, n > in->nlookup ? in->nlookup : n, 0);
	pthread_mutex_unlock(&ck.table_lock);
}

void ck_inode_pin(struct ck_inode *in)
{
	pthread_mutex_lock(&ck.table_lock);
	in->refs++;
	pthread_mutex_unlock(&ck.table_lock);
}

void ck_inode_unpin(struct ck_inode *in)
{
	pthread_mutex_lock(&ck.table_lock);
	unref_locked(in, 0, 1);
	pthread_mutex_unlock(&ck.table_lock);
}

static void free_names(struct ck_name *n)
{
	while (n) {
		struct ck_name *next = n->next;
		free(n->name);
		free(n->ename);
		free(n);
		n = next;
	}
}

static struct ck_name *new_name(struct ck_inode *parent, const char *name, const char *ename)
{
	struct ck_name *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	if (!(n->name = strdup(name)) || !(n->ename = strdup(ename))) {
		free_names(n);
		return NULL;
	}
	n->parent = parent;
	ck_inode_pin(parent);
	return n;
}

static int is_dir(const struct ck_inode *in) { return in->type == S_IFDIR; }

static void name_lock(struct ck_inode *in)
{
	if (!is_dir(in))
		pthread_mutex_lock(&in->lock);
}

static void name_unlock(struct ck_inode *in)
{
	if (!is_dir(in))
		pthread_mutex_unlock(&in->lock);
}

/* Unlink n from in's list and free it (unpinning its parent). */
static void remove_name(struct ck_inode *in, struct ck_name **pp)
{
	struct ck_name *n = *pp;

	*pp = n->next;
	n->next = NULL;
	ck_inode_unpin(n->parent);
	free_names(n);
}

static struct ck_name **find_name(struct ck_inode *in, struct ck_inode *parent, const char *name)
{
	struct ck_name **pp;

	for (pp = &in->names; *pp; pp = &(*pp)->next)
		if ((*pp)->parent == parent && !strcmp((*pp)->name, name))
			return pp;
	return NULL;
}

int ck_inode_set_name(struct ck_inode *in, struct ck_inode *old_parent, const char *old_name,
                      struct ck_inode *parent, const char *name, const char *ename)
{
	struct ck_name *n = new_name(parent, name, ename), **pp;

	if (!n)
		return -ENOMEM;
	name_lock(in);
	if (is_dir(in)) {
		while (in->names)
			remove_name(in, &in->names);
	} else {
		if (old_parent && (pp = find_name(in, old_parent, old_name)))
			remove_name(in, pp);
		if ((pp = find_name(in, parent, name)))
			remove_name(in, pp);
	}
	n->next = in->names;
	in->names = n;
	name_unlock(in);
	return 0;
}

void ck_inode_drop_name(struct ck_inode *in, struct ck_inode *parent, const char *name)
{
	struct ck_name **pp;

	name_lock(in);
	if ((pp = find_name(in, parent, name)))
		remove_name(in, pp);
	name_unlock(in);
}

struct ck_inode *ck_inode_learn(struct ck_inode *parent, const char *name, const char *ename,
                                const struct stat *st, int *dir_moved)
{
	struct ck_inode *in, *fresh;
	struct ck_name *n;

	*dir_moved = 0;
	struct ck_tree *tree = ck_tree_for_child(parent, name);
	pthread_mutex_lock(&ck.table_lock);
	in = table_find(st->st_dev, st->st_ino);
	if (in && in != &ck.root && (in->type != (st->st_mode & S_IFMT) || in->tree != tree)) {
		/* The backing inode number was reused (the old object is
		 * gone but still referenced by the kernel, or just unlinked
		 * by another thread; links never cross trees): a new inode. */
		table_remove(in);
		in = NULL;
	}
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&ck.table_lock);
		if (in == &ck.root)
			return in;
		if (is_dir(in)) {
			n = in->names;
			*dir_moved = !n || n->parent != parent || strcmp(n->name, name);
			return in;
		}
		/* A hard link, or a rename by another host: make this the
		 * newest known name. */
		name_lock(in);
		n = in->names;
		int known = n && n->parent == parent && !strcmp(n->name, name);
		name_unlock(in);
		if (!known)
			ck_inode_set_name(in, NULL, NULL, parent, name, ename);
		return in;
	}
	pthread_mutex_unlock(&ck.table_lock);

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return NULL;
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->type = st->st_mode & S_IFMT;
	fresh->tree = tree;
	fresh->tree_root = fresh->tree != parent->tree;
	fresh->fd = -1;
	pthread_rwlock_init(&fresh->io, NULL);
	pthread_mutex_init(&fresh->lock, NULL);
	if (!(fresh->names = new_name(parent, name, ename))) {
		free(fresh);
		return NULL;
	}

	pthread_mutex_lock(&ck.table_lock);
	in = table_find(st->st_dev, st->st_ino);
	if (in && in != &ck.root && (in->type != fresh->type || in->tree != fresh->tree)) {
		table_remove(in);
		in = NULL;
	}
	if (in) {
		/* Lost a race with another lookup of the same inode. */
		in->nlookup++;
		pthread_mutex_unlock(&ck.table_lock);
		ck_inode_unpin(parent);
		free_names(fresh->names);
		pthread_rwlock_destroy(&fresh->io);
		pthread_mutex_destroy(&fresh->lock);
		free(fresh);
		return in;
	}
	fresh->nlookup = 1;
	size_t h = hash(fresh->dev, fresh->ino) & (ck.table_size - 1);
	fresh->hnext = ck.table[h];
	ck.table[h] = fresh;
	if (++ck.table_count > ck.table_size)
		table_grow();
	pthread_mutex_unlock(&ck.table_lock);
	return fresh;
}

static void queue_fixup(struct ck_inode *in, const char *ename);

int ck_inode_locate(struct ck_inode *in, struct ck_loc *loc)
{
	struct ck_name **pp;
	int r = -ENOENT;

	loc->parent = NULL;
	loc->dirfd = -1;
	name_lock(in);
	for (pp = &in->names; *pp; ) {
		struct ck_name *n = *pp;
		struct stat st;
		int fd = ck_dir_open(n->parent, O_PATH);

		if (fd < 0) {
			r = fd;
			pp = &n->next;
			continue;
		}
		const char *ename = n->ename;
		struct ck_ename en;
		if (ck_tree_applying(n->parent->tree) &&
		    fstatat(fd, n->ename, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
		    ck_entry_find(n->parent, fd, n->name, &en, &st) == 0) {
			/* Renamed to its new-key name by the apply tool. A file's
			 * names are ours to change under its lock; a directory's
			 * name changes under ns_lock held for writing, later. */
			char *e;
			if (is_dir(in))
				queue_fixup(in, en.entry);
			else if ((e = strdup(en.entry))) {
				free(n->ename);
				n->ename = e;
			}
			ename = en.entry;
		}
		if (!is_dir(in) && in->names->next &&
		    (fstatat(fd, ename, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     st.st_ino != in->ino || st.st_dev != in->dev)) {
			/* This link is gone (unlinked elsewhere); forget it. */
			close(fd);
			remove_name(in, pp);
			continue;
		}
		loc->parent = n->parent;
		ck_inode_pin(n->parent);
		loc->dirfd = fd;
		snprintf(loc->name, sizeof(loc->name), "%s", n->name);
		snprintf(loc->ename, sizeof(loc->ename), "%s", ename);
		r = 0;
		break;
	}
	name_unlock(in);
	return r;
}

void ck_loc_release(struct ck_loc *loc)
{
	if (loc->dirfd >= 0)
		close(loc->dirfd);
	if (loc->parent)
		ck_inode_unpin(loc->parent);
	loc->dirfd = -1;
	loc->parent = NULL;
}

/* Collect backing entry names from dir up to root, deepest last. */
static int path_components(struct ck_inode *dir, const char **comp, int max)
{
	int n = 0;

	for (struct ck_inode *p = dir; p != &ck.root; p = p->names->parent) {
		if (n == max)
			return -ENAMETOOLONG;
		if (!p->names)
			return -ENOENT;
		comp[n++] = p->names->ename;
	}
	return n;
}

static int dir_open_fast(struct ck_inode *dir, int flags);

/* Directory renames the apply tool made (old-key names to new-key names),
 * found by slow_open and applied to the inodes by the watcher thread under
 * ns_lock held for writing. */
struct fixup {
	struct ck_inode *in;
	char *ename;
	struct fixup *next;
};
static struct fixup *fixups;
static pthread_mutex_t fixups_lock = PTHREAD_MUTEX_INITIALIZER;

void ck_inode_apply_fixups(void)
{
	struct fixup *f;

	pthread_mutex_lock(&fixups_lock);
	f = fixups;
	fixups = NULL;
	pthread_mutex_unlock(&fixups_lock);
	if (!f)
		return;
	pthread_rwlock_wrlock(&ck.ns_lock);
	while (f) {
		struct fixup *next = f->next;
		struct ck_name *n = f->in->names;
		if (n) {
			free(n->ename);
			n->ename = f->ename;
		} else {
			free(f->ename);
		}
		ck_inode_unpin(f->in);
		free(f);
		f = next;
	}
	pthread_rwlock_unlock(&ck.ns_lock);
}

static void queue_fixup(struct ck_inode *in, const char *ename)
{
	struct fixup *f = calloc(1, sizeof(*f));

	if (f && (f->ename = strdup(ename))) {
		f->in = in;
		ck_inode_pin(in);
		pthread_mutex_lock(&fixups_lock);
		f->next = fixups;
		fixups = f;
		pthread_mutex_unlock(&fixups_lock);
	} else {
		free(f);
	}
}

/* Component by component, trying each directory's other encoding when
 * its recorded one is gone (the apply tool renamed it). */
static int slow_open(struct ck_inode *dir, int flags)
{
	struct ck_inode *chain[2048];
	int n = 0, fd, r;

	for (struct ck_inode *p = dir; p != &ck.root; p = p->names->parent) {
		if (n == 2048 || !p->names)
			return n == 2048 ? -ENAMETOOLONG : -ENOENT;
		chain[n++] = p;
	}
	if ((fd = openat(ck.vol.fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	while (n-- > 0) {
		struct ck_inode *c = chain[n], *parent = c->names->parent;
		int of = (n ? O_PATH : flags) | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
		int nfd = openat(fd, c->names->ename, of);

		if (nfd < 0 && errno == ENOENT && ck_tree_applying(parent->tree)) {
			struct ck_ename en;
			struct stat st;
			if ((r = ck_entry_find(parent, fd, c->names->name, &en, &st)) == 0 &&
			    (nfd = openat(fd, en.entry, of)) >= 0)
				queue_fixup(c, en.entry);
		}
		if (nfd < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		close(fd);
		fd = nfd;
	}
	return fd;
}

static int any_applying(struct ck_inode *dir)
{
	for (struct ck_inode *p = dir; p && p != &ck.root; p = p->names ? p->names->parent : NULL)
		if (ck_tree_applying(p->tree))
			return 1;
	return 0;
}

int ck_dir_open(struct ck_inode *dir, int flags)
{
	int fd = dir_open_fast(dir, flags);

	if (fd == -ENOENT && any_applying(dir))
		fd = slow_open(dir, flags);
	return fd;
}

static int dir_open_fast(struct ck_inode *dir, int flags)
{
	const char *comp[2048];
	char path[PATH_MAX];
	int n = path_components(dir, comp, 2048), fd = ck.vol.fd, owned = 0, r;

	if (n < 0)
		return n;
	if (n == 0) {
		r = openat(ck.vol.fd, ".", flags | O_DIRECTORY | O_CLOEXEC);
		return r < 0 ? -errno : r;
	}
	/* Walk from the root in pieces that fit PATH_MAX: deep trees have
	 * backing paths longer than one path argument allows. */
	while (n > 0) {
		size_t len = 0;
		int i = n - 1;
		for (; i >= 0; i--) {
			size_t l = strlen(comp[i]);
			if (len + l + 2 > sizeof(path))
				break;
			memcpy(path + len, comp[i], l);
			len += l;
			path[len++] = '/';
		}
		if (i == n - 1) {
			r = -ENAMETOOLONG;
			goto out;
		}
		path[len - 1] = '\0';
		n = i + 1;
		int nfd = openat(fd, path, (n ? O_PATH : flags) | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (nfd < 0) {
			r = -errno;
			goto out;
		}
		if (owned)
			close(fd);
		fd = nfd;
		owned = 1;
	}
	return fd;
out:
	if (owned)
		close(fd);
	return r;
}

void ck_inode_path(struct ck_inode *in, char *buf, size_t n)
{
	const char *comp[256];
	size_t len = 0;
	int c = 0;

	for (struct ck_inode *p = in; p && p != &ck.root && c < 256;
	     p = p->names ? p->names->parent : NULL)
		comp[c++] = p->names ? p->names->name : "(unlinked)";
	if (c == 0) {
		snprintf(buf, n, "/");
		return;
	}
	buf[0] = '\0';
	while (c-- > 0 && len + 1 < n) {
		int w = snprintf(buf + len, n - len, "/%s", comp[c]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/* 1 if a backing directory holds no user entries (only ckfs metadata). */
static int dir_user_empty(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;
	int empty = 1;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || !strncmp(e->d_name, CK_LONG_PREFIX, 2)) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

int ck_dirid(struct ck_inode *dir, int dirfd, uint8_t out[static CK_ID_LEN])
{
	uint8_t buf[CK_DIRID_LEN + 1];
	int fd, r;
	ssize_t n;

	pthread_mutex_lock(&dir->lock);
	if (dir->dirid_ok) {
		memcpy(out, dir->dirid, CK_ID_LEN);
		pthread_mutex_unlock(&dir->lock);
		return 0;
	}
	struct stat dst;
	if (fstat(dirfd, &dst) == 0)
		dir->dirid_ctim = dst.st_ctim;
	fd = openat(dirfd, CK_DIRID_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && dir_user_empty(dirfd) == 1) {
			/* Only an interrupted rmdir leaves a directory without
			 * its ID, and only an empty one: a fresh ID is then safe,
			 * as no name depends on it. */
			r = ck_dirid_create(dirfd, ".", dir->dirid);
			if (r == 0)
				goto ok;
		}
		char p[512];
		ck_inode_path(dir, p, sizeof(p));
		ck_log(CK_LOG_ERR, "directory %s: cannot read its directory ID (%s)", p, strerror(-r));
		pthread_mutex_unlock(&dir->lock);
		return -EIO;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || ck_dirid_decode(buf, (size_t)n, dir->dirid) < 0) {
		char p[512];
		ck_inode_path(dir, p, sizeof(p));
		ck_log(CK_LOG_ERR, "directory %s: its directory ID file is corrupt", p);
		pthread_mutex_unlock(&dir->lock);
		return -EIO;
	}
ok:
	dir->dirid_ok = 1;
	memcpy(out, dir->dirid, CK_ID_LEN);
	pthread_mutex_unlock(&dir->lock);
	return 0;
}

/* Find (dev, ino) in the table and pin it, or NULL (root never). */
struct ck_inode *ck_inode_find_pinned(dev_t dev, ino_t ino)
{
	struct ck_inode *in;

	pthread_mutex_lock(&ck.table_lock);
	in = table_find(dev, ino);
	if (in == &ck.root)
		in = NULL;
	if (in)
		in->refs++;
	pthread_mutex_unlock(&ck.table_lock);
	return in;
}

void ck_inode_drop_stale(const struct stat *st)
{
	struct ck_inode *in = ck_inode_find_pinned(st->st_dev, st->st_ino);

	if (in) {
		ck_inode_unhash(in);
		ck_inode_unpin(in);
	}
}

void ck_dir_verify(int parent_fd, const char *ename, const struct stat *st)
{
	struct ck_inode *in = ck_inode_find_pinned(st->st_dev, st->st_ino);
	uint8_t buf[CK_DIRID_LEN + 1], id[CK_ID_LEN];
	int dfd, fd, stale = 0;
	ssize_t n;

	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	if (!is_dir(in) || !in->dirid_ok ||
	    (in->dirid_ctim.tv_sec == st->st_ctim.tv_sec && in->dirid_ctim.tv_nsec == st->st_ctim.tv_nsec))
		goto out;
	/* The directory changed since its ID was read: is it still the
	 * same directory? (A missing or unreadable ID file is left to
	 * ck_dirid, which says why.) */
	if ((dfd = openat(parent_fd, ename, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto out;
	fd = openat(dfd, CK_DIRID_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		goto out;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || ck_dirid_decode(buf, (size_t)n, id) < 0)
		goto out;
	if (memcmp(id, in->dirid, CK_ID_LEN))
		stale = 1;
	else
		in->dirid_ctim = st->st_ctim;
out:
	pthread_mutex_unlock(&in->lock);
	if (stale)
		ck_inode_unhash(in);
	ck_inode_unpin(in);
}
