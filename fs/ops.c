/* The FUSE low-level operations. Each handler resolves what it needs,
 * calls into inode.c / names.c / chunk.c, and replies once.
 * Lock order: see ckfs.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "fs/ckfs.h"
#include "keys/util.h"

struct ck_fs ck;

#define NS_READ()   pthread_rwlock_rdlock(&ck.ns_lock)
#define NS_WRITE()  pthread_rwlock_wrlock(&ck.ns_lock)
#define NS_UNLOCK() pthread_rwlock_unlock(&ck.ns_lock)

/* Attributes as ckfs shows them: a symlink's size is its plaintext
 * target's length; a file's size is sealed in its header (read once and
 * cached while the backing file does not change). */
static void attr_fill(struct ck_inode *in, int dirfd, const char *ename, struct stat *st)
{
	uint64_t sz = 0;
	int hit = 0;

	if (S_ISLNK(st->st_mode)) {
		st->st_size = ck_symlink_plain_len((size_t)st->st_size);
		return;
	}
	if (!S_ISREG(st->st_mode))
		return;
	pthread_mutex_lock(&in->lock);
	if (in->nopen) {
		sz = in->psize;
		hit = 1;
	} else if (in->szc.ok && in->szc.ino == st->st_ino && in->szc.bsize == st->st_size &&
	           in->szc.mtim.tv_sec == st->st_mtim.tv_sec &&
	           in->szc.mtim.tv_nsec == st->st_mtim.tv_nsec &&
	           in->szc.ctim.tv_sec == st->st_ctim.tv_sec &&
	           in->szc.ctim.tv_nsec == st->st_ctim.tv_nsec) {
		sz = in->szc.psize;
		hit = 1;
	}
	pthread_mutex_unlock(&in->lock);
	if (!hit && dirfd >= 0) {
		int fd = openat(dirfd, ename, O_RDONLY | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 && ck_file_stat_size(in->tree, fd, &sz) == 0) {
			pthread_mutex_lock(&in->lock);
			in->szc.ino = st->st_ino;
			in->szc.bsize = st->st_size;
			in->szc.mtim = st->st_mtim;
			in->szc.ctim = st->st_ctim;
			in->szc.psize = sz;
			in->szc.ok = 1;
			pthread_mutex_unlock(&in->lock);
		} else {
			sz = 0;     /* unreadable header: open says why (EIO + log) */
		}
		if (fd >= 0)
			close(fd);
	}
	st->st_size = (off_t)sz;
}

/* Look up name in parent; fills e and adds a lookup. */
static int do_lookup(struct ck_inode *parent, const char *name, struct fuse_entry_param *e)
{
	struct ck_ename en;
	struct ck_inode *in = NULL;
	struct stat st;
	int dirfd, r, moved = 0;

	memset(e, 0, sizeof(*e));
	if (strlen(name) > CK_NAME_MAX)
		return -ENAMETOOLONG;
	NS_READ();
	if ((dirfd = ck_dir_open(parent, O_PATH)) < 0) {
		r = dirfd;
		goto out;
	}
	int lk = ck_dir_lock(parent, dirfd);
	r = ck_entry_find(parent, dirfd, name, &en, &st);
	ck_dir_unlock(lk);
	if (r < 0)
		goto out_fd;
	if (S_ISDIR(st.st_mode))
		ck_dir_verify(dirfd, en.entry, &st);
	in = ck_inode_learn(parent, name, en.entry, &st, &moved);
	if (!in) {
		r = -ENOMEM;
		goto out_fd;
	}
	attr_fill(in, dirfd, en.entry, &st);
	e->ino = (fuse_ino_t)(uintptr_t)in;
	e->attr = st;
	e->attr_timeout = e->entry_timeout = ck.timeout;
	r = 0;
out_fd:
	close(dirfd);
out:
	NS_UNLOCK();
	if (r == 0 && moved) {
		/* A directory renamed behind our back (another host). */
		NS_WRITE();
		ck_inode_set_name(in, NULL, NULL, parent, name, en.entry);
		NS_UNLOCK();
	}
	return r;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = do_lookup(ck_inode_get(parent), name, &e);

	if (r == -ENOENT) {
		e.ino = 0;
		e.entry_timeout = 0;
		fuse_reply_entry(req, &e);
	} else if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	ck_inode_forget(ck_inode_get(ino), n);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		ck_inode_forget(ck_inode_get(f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

/* stat of an inode: through its open fd if it has one, else its name. */
static int inode_stat(struct ck_inode *in, struct stat *st)
{
	struct ck_loc loc;
	int r = 0;

	if (in == &ck.root)
		return fstat(ck.vol.fd, st) < 0 ? -errno : 0;
	pthread_mutex_lock(&in->lock);
	if (in->nopen && in->fd >= 0) {
		r = fstat(in->fd, st) < 0 ? -errno : 0;
		pthread_mutex_unlock(&in->lock);
		if (r == 0)
			attr_fill(in, -1, NULL, st);
		return r;
	}
	pthread_mutex_unlock(&in->lock);
	NS_READ();
	if ((r = ck_inode_locate(in, &loc)) == 0) {
		if (fstatat(loc.dirfd, loc.ename, st, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
		else
			attr_fill(in, loc.dirfd, loc.ename, st);
		ck_loc_release(&loc);
	}
	NS_UNLOCK();
	return r;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = inode_stat(ck_inode_get(ino), &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ck.timeout);
}

static void file_put(struct ck_inode *in);

/* Open the backing file of a regular-file inode for I/O, verifying its
 * header and binding on the first open. Caller holds ns_lock (read). */
static int file_acquire(struct ck_inode *in, int *keep)
{
	struct ck_loc loc;
	uint8_t dirid[CK_ID_LEN];
	int fd, r;

	pthread_mutex_lock(&in->lock);
	if (in->nopen) {
		in->nopen++;
		pthread_mutex_unlock(&in->lock);
		/* Already open here: the header may have changed on another
		 * host since (close-to-open consistency). */
		if ((r = ck_file_refresh(in)) < 0)
			file_put(in);
		return r;
	}
	pthread_mutex_unlock(&in->lock);

	/* The kernel looked the name up before this open; a rename over it
	 * or an unlink since then leaves this inode without that name (or
	 * the name on another file). ESTALE makes the kernel look the name
	 * up again and open what it names now (as a rename is atomic), not
	 * fail the open with ENOENT. */
	if ((r = ck_inode_locate(in, &loc)) < 0)
		return r == -ENOENT ? -ESTALE : r;
	fd = openat(loc.dirfd, loc.ename, (ck.ro ? O_RDONLY : O_RDWR) | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = errno == ENOENT ? -ESTALE : -errno;
		goto out;
	}
	struct stat fst;
	if (fstat(fd, &fst) < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	if (fst.st_ino != in->ino || fst.st_dev != in->dev) {
		close(fd);
		r = -ESTALE;
		goto out;
	}
	if ((r = ck_dirid(loc.parent, loc.dirfd, dirid)) < 0) {
		close(fd);
		goto out;
	}
	pthread_mutex_lock(&in->lock);
	if (in->nopen) {
		in->nopen++;
		close(fd);
	} else if ((r = ck_file_ostate(in)) < 0) {
		close(fd);
	} else {
		ck_inode_path(in, in->logpath, CK_LOGPATH_LEN);
		if ((r = ck_file_load(in, fd, dirid, loc.name)) < 0) {
			close(fd);
		} else {
			in->nopen = 1;
			if (keep)
				*keep = ck_pcs_open(in, &fst);
		}
	}
	pthread_mutex_unlock(&in->lock);
out:
	ck_loc_release(&loc);
	return r;
}

static void file_put(struct ck_inode *in)
{
	pthread_mutex_lock(&in->lock);
	if (--in->nopen == 0)
		ck_file_unload(in);
	pthread_mutex_unlock(&in->lock);
}

static gid_t new_gid(int dirfd, const struct fuse_ctx *ctx, mode_t *mode)
{
	struct stat st;

	if (fstat(dirfd, &st) == 0 && (st.st_mode & S_ISGID)) {
		if (S_ISDIR(*mode))
			*mode |= S_ISGID;
		return st.st_gid;
	}
	return ctx->gid;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct ck_inode *in = ck_inode_get(ino);
	struct ck_loc loc = { .dirfd = -1 };
	struct ck_pcs_meta pm = { .fd = -1 };
	struct stat st;
	int r = 0, have_loc = 0, acquired = 0;
	int meta = to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MODE |
	                     FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME);

	if (ck.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	NS_READ();
	if (in != &ck.root) {
		r = ck_inode_locate(in, &loc);
		have_loc = r == 0;
		/* No name left (unlinked, or renamed over, while open; with the
		 * writeback cache the kernel also sets times at close): work
		 * through the open file. */
		if (!have_loc && in->type == S_IFREG) {
			int lr = r;
			if ((r = file_acquire(in, NULL)) < 0) {
				r = lr;
				goto out;
			}
			acquired = 1;
		} else if (!have_loc) {
			goto out;
		}
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (in->type != S_IFREG) {
			r = in->type == S_IFDIR ? -EISDIR : -EINVAL;
			goto out;
		}
		if (!acquired && (r = file_acquire(in, NULL)) < 0)
			goto out;
		acquired = 1;
		if ((r = ck_file_truncate(in, attr->st_size)) < 0)
			goto out;
	}
	if (meta && have_loc)
		ck_pcs_meta_begin(in, loc.dirfd, loc.ename, &pm);
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t u = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t g = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;
		if (in == &ck.root ? fchown(ck.vol.fd, u, g) < 0
		    : have_loc ? fchownat(loc.dirfd, loc.ename, u, g, AT_SYMLINK_NOFOLLOW) < 0
		    : fchown(in->fd, u, g) < 0) {
			r = -errno;
			goto out;
		}
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && in->type != S_IFLNK) {
		mode_t m = attr->st_mode & 07777;
		if (in == &ck.root ? fchmod(ck.vol.fd, m) < 0
		    : have_loc ? fchmodat(loc.dirfd, loc.ename, m, 0) < 0
		    : fchmod(in->fd, m) < 0) {
			r = -errno;
			goto out;
		}
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (in == &ck.root ? futimens(ck.vol.fd, ts) < 0
		    : have_loc ? utimensat(loc.dirfd, loc.ename, ts, AT_SYMLINK_NOFOLLOW) < 0
		    : futimens(in->fd, ts) < 0) {
			r = -errno;
			goto out;
		}
	}
	r = 0;
out:
	if (meta)
		ck_pcs_meta_end(in, &pm);
	if (acquired)
		file_put(in);
	if (have_loc)
		ck_loc_release(&loc);
	NS_UNLOCK();
	if (r == 0)
		r = inode_stat(in, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ck.timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct ck_inode *in = ck_inode_get(ino);
	struct ck_loc loc;
	char enc[PATH_MAX + 1], out[CK_SYMLINK_MAX + 1];
	ssize_t n;
	int r;

	NS_READ();
	if ((r = ck_inode_locate(in, &loc)) == 0) {
		n = readlinkat(loc.dirfd, loc.ename, enc, sizeof(enc) - 1);
		if (n < 0) {
			r = -errno;
		} else if ((r = ck_symlink_decrypt(in->tree, enc, (size_t)n, out, sizeof(out))) < 0 &&
		           (!ck_tree_applying(in->tree) ||
		            (r = ck_symlink_decrypt(&ck_stree_of(in->tree)->old, enc, (size_t)n, out,
		                                    sizeof(out))) < 0)) {
			char p[512];
			ck_inode_path(in, p, sizeof(p));
			ck_log(CK_LOG_ERR, "%s: symlink target failed authentication (tampered?)", p);
			r = -EIO;
		}
		ck_loc_release(&loc);
	}
	NS_UNLOCK();
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, out);
}

/* Common tail of the create-type handlers: stat the new entry, learn the
 * inode, reply. Caller holds ns_lock. */
static int finish_entry(struct ck_inode *parent, int dirfd, const char *name,
                        const char *entry, int fresh, struct fuse_entry_param *e)
{
	struct stat st;
	struct ck_inode *in;
	int moved;

	memset(e, 0, sizeof(*e));
	if (fstatat(dirfd, entry, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (fresh)
		ck_inode_drop_stale(&st);
	if (!(in = ck_inode_learn(parent, name, entry, &st, &moved)))
		return -ENOMEM;
	if (fresh && S_ISREG(st.st_mode)) {
		/* Just made by ck_file_init, which sealed size 0: no need to
		 * read the header back (valid while the backing stat holds). */
		pthread_mutex_lock(&in->lock);
		in->szc.ino = st.st_ino;
		in->szc.bsize = st.st_size;
		in->szc.mtim = st.st_mtim;
		in->szc.ctim = st.st_ctim;
		in->szc.psize = 0;
		in->szc.ok = 1;
		pthread_mutex_unlock(&in->lock);
	}
	attr_fill(in, dirfd, entry, &st);
	e->ino = (fuse_ino_t)(uintptr_t)in;
	e->attr = st;
	e->attr_timeout = e->entry_timeout = ck.timeout;
	return 0;
}

/* Prepare a create in parent: open its backing dir, map the name, write a
 * long-name sidecar. Caller holds ns_lock. */
static int prepare_create(struct ck_inode *parent, const char *name, int *dirfd,
                          struct ck_ename *en)
{
	int r;

	if (ck.ro)
		return -EROFS;
	if (strlen(name) > CK_NAME_MAX)
		return -ENAMETOOLONG;
	if ((*dirfd = ck_dir_open(parent, O_PATH)) < 0)
		return *dirfd;
	if ((r = ck_ename_make(parent, *dirfd, name, en)) < 0 ||
	    (r = ck_sidecar_write(*dirfd, en)) < 0) {
		close(*dirfd);
		*dirfd = -1;
	}
	return r;
}

static void undo_sidecar(int dirfd, const struct ck_ename *en)
{
	struct stat st;

	if (en->is_long && fstatat(dirfd, en->entry, &st, AT_SYMLINK_NOFOLLOW) < 0)
		ck_sidecar_remove(dirfd, en->entry);
}

static int create_file(struct ck_inode *parent, int dirfd, const char *name,
                       const struct ck_ename *en, mode_t mode, int *fd_out,
                       struct ck_file_new *keep)
{
	uint8_t dirid[CK_ID_LEN];
	int fd, r;

	if ((r = ck_dirid(parent, dirfd, dirid)) < 0)
		return r;
	/* An unnamed file gets its header first and its name last (linkat
	 * fails with EEXIST like O_EXCL): a crash in between leaves no empty
	 * backing file behind a name. Engines without O_TMPFILE (FUSE-based
	 * ones such as GlusterFS) create under the name, then write the header. */
	fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_NOATIME | O_CLOEXEC, mode & 07777);
	if (fd >= 0) {
		char proc[40];

		r = ck_file_init_keep(parent, dirid, name, parent->tree, fd, keep);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (r == 0 && linkat(AT_FDCWD, proc, dirfd, en->entry, AT_SYMLINK_FOLLOW) < 0)
			r = -errno;
		if (r == -ENOENT || r == -EPERM) {
			/* No /proc here, or linking refused: name first,
			 * header second. */
			if (keep)
				ck_file_new_release(keep);
			close(fd);
			goto named;
		}
		if (r < 0) {
			close(fd);
			return r == -ENOSPC || r == -EDQUOT || r == -EIO || r == -EEXIST ? r : -EIO;
		}
		*fd_out = fd;
		return 0;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
		return -errno;
named:
	fd = openat(dirfd, en->entry, O_CREAT | O_EXCL | O_RDWR | O_NOATIME | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	r = ck_file_init_keep(parent, dirid, name, parent->tree, fd, keep);
	return r == -ENOSPC || r == -EDQUOT || r == -EIO ? r : r < 0 ? -EIO : 0;
}

/* The caller's umask (the kernel passes it when it leaves masking to us). */
static mode_t masked(fuse_req_t req, mode_t mode)
{
	return mode & ~(fuse_req_ctx(req)->umask & 0777);
}

static int set_owner(fuse_req_t req, int dirfd, const char *entry, int fd, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	mode_t m = mode;
	gid_t gid = new_gid(dirfd, ctx, &m);
	int r;

	r = fd >= 0 ? fchown(fd, ctx->uid, gid) : fchownat(dirfd, entry, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return -errno;
	/* chown clears set-id bits of files; put back what was asked for. */
	if (!S_ISLNK(mode) && !S_ISDIR(mode) && (mode & (S_ISUID | S_ISGID))) {
		r = fd >= 0 ? fchmod(fd, mode & 07777) : fchmodat(dirfd, entry, mode & 07777, 0);
		if (r < 0)
			return -errno;
	}
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t pino, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct ck_inode *parent = ck_inode_get(pino), *in;
	struct fuse_entry_param e;
	struct ck_ename en;
	struct ck_file_new nf = { 0 };
	uint8_t dirid[CK_ID_LEN];
	int dirfd = -1, fd = -1, r;

	NS_READ();
	mode = masked(req, mode);
	if ((r = prepare_create(parent, name, &dirfd, &en)) < 0)
		goto out;
	r = create_file(parent, dirfd, name, &en, mode, &fd, &nf);
	if (r == -EEXIST && !(fi->flags & O_EXCL)) {
		/* Created by someone else since the kernel's lookup: open it. */
		NS_UNLOCK();
		close(dirfd);
		ck_file_new_release(&nf);
		if ((r = do_lookup(parent, name, &e)) < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		in = ck_inode_get(e.ino);
		NS_READ();
		r = in->type == S_IFREG ? file_acquire(in, NULL) : -EISDIR;
		NS_UNLOCK();
		if (r < 0) {
			ck_inode_forget(in, 1);
			fuse_reply_err(req, -r);
			return;
		}
		fi->fh = (uint64_t)fi->flags;
		if (fi->flags & O_TRUNC)
			ck_file_truncate(in, 0);
		fuse_reply_create(req, &e, fi);
		return;
	}
	if (r < 0)
		goto fail;
	if ((r = set_owner(req, dirfd, en.entry, fd, S_IFREG | mode)) < 0 ||
	    (r = finish_entry(parent, dirfd, name, en.entry, 1, &e)) < 0 ||
	    (r = ck_dirid(parent, dirfd, dirid)) < 0)
		goto fail;
	in = ck_inode_get(e.ino);
	pthread_mutex_lock(&in->lock);
	if (in->nopen) {
		in->nopen++;
		close(fd);
	} else if ((r = ck_file_ostate(in)) < 0) {
		close(fd);
	} else {
		ck_inode_path(in, in->logpath, CK_LOGPATH_LEN);
		if ((r = ck_file_adopt(in, fd, &nf, dirid, name)) == 0) {
			struct stat cst;
			in->nopen = 1;
			if (fstat(in->fd, &cst) == 0)
				(void)ck_pcs_open(in, &cst);
		}
	}
	fd = -1;
	pthread_mutex_unlock(&in->lock);
	ck_file_new_release(&nf);
	if (r < 0) {
		ck_inode_forget(in, 1);
		goto out;
	}
	close(dirfd);
	NS_UNLOCK();
	fi->fh = (uint64_t)fi->flags;
	fuse_reply_create(req, &e, fi);
	return;
fail:
	if (fd >= 0) {
		close(fd);
		unlinkat(dirfd, en.entry, 0);
	}
	undo_sidecar(dirfd, &en);
out:
	ck_file_new_release(&nf);
	if (dirfd >= 0)
		close(dirfd);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_mknod(fuse_req_t req, fuse_ino_t pino, const char *name, mode_t mode, dev_t rdev)
{
	struct ck_inode *parent = ck_inode_get(pino);
	struct fuse_entry_param e;
	struct ck_ename en;
	int dirfd = -1, fd = -1, r;

	NS_READ();
	mode = masked(req, mode);
	if ((r = prepare_create(parent, name, &dirfd, &en)) < 0)
		goto out;
	if (S_ISREG(mode)) {
		r = create_file(parent, dirfd, name, &en, mode, &fd, NULL);
	} else if (S_ISFIFO(mode) || S_ISSOCK(mode) || S_ISCHR(mode) || S_ISBLK(mode)) {
		r = mknodat(dirfd, en.entry, mode, rdev) < 0 ? -errno : 0;
	} else {
		r = -EINVAL;
	}
	if (r < 0)
		goto fail;
	if ((r = set_owner(req, dirfd, en.entry, fd, mode)) < 0 ||
	    (r = finish_entry(parent, dirfd, name, en.entry, 1, &e)) < 0)
		goto fail;
	if (fd >= 0)
		close(fd);
	close(dirfd);
	NS_UNLOCK();
	fuse_reply_entry(req, &e);
	return;
fail:
	if (r != -EEXIST)
		unlinkat(dirfd, en.entry, 0);
	if (fd >= 0)
		close(fd);
	undo_sidecar(dirfd, &en);
out:
	if (dirfd >= 0)
		close(dirfd);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t pino, const char *name, mode_t mode)
{
	struct ck_inode *parent = ck_inode_get(pino), *in;
	struct fuse_entry_param e;
	struct ck_ename en;
	uint8_t rnd[8], dirid[CK_ID_LEN];
	char tmp[64], hex[17];
	int dirfd = -1, r, made = 0;

	NS_READ();
	mode = masked(req, mode);
	if ((r = prepare_create(parent, name, &dirfd, &en)) < 0)
		goto out;
	/* Built under a reserved name, then renamed into place: nobody ever
	 * sees a directory without its ID. */
	if ((r = ck_random(rnd, sizeof(rnd))) < 0)
		goto fail;
	ck_hex(rnd, sizeof(rnd), hex);
	snprintf(tmp, sizeof(tmp), ".ckfs.tmp.%s", hex);
	if (mkdirat(dirfd, tmp, mode & 07777) < 0) {
		r = -errno;
		goto fail;
	}
	made = 1;
	if ((r = set_owner(req, dirfd, tmp, -1, S_IFDIR | mode)) < 0 ||
	    (r = ck_dirid_create(dirfd, tmp, dirid)) < 0)
		goto fail;
	if (ck_rename_noreplace(dirfd, tmp, dirfd, en.entry) < 0) {
		r = -errno;
		goto fail;
	}
	made = 0;
	if ((r = finish_entry(parent, dirfd, name, en.entry, 1, &e)) < 0)
		goto out;
	in = ck_inode_get(e.ino);
	pthread_mutex_lock(&in->lock);
	memcpy(in->dirid, dirid, CK_ID_LEN);
	in->dirid_ok = 1;
	pthread_mutex_unlock(&in->lock);
	close(dirfd);
	NS_UNLOCK();
	fuse_reply_entry(req, &e);
	return;
fail:
	if (made) {
		int fd = openat(dirfd, tmp, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			unlinkat(fd, CK_DIRID_FILE, 0);
			close(fd);
		}
		unlinkat(dirfd, tmp, AT_REMOVEDIR);
	}
	undo_sidecar(dirfd, &en);
out:
	if (dirfd >= 0)
		close(dirfd);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t pino, const char *name)
{
	struct ck_inode *parent = ck_inode_get(pino);
	struct fuse_entry_param e;
	struct ck_ename en;
	char enc[PATH_MAX];
	int dirfd = -1, r;

	NS_READ();
	if ((r = prepare_create(parent, name, &dirfd, &en)) < 0)
		goto out;
	if ((r = ck_symlink_encrypt(parent->tree, link, strlen(link), enc, sizeof(enc))) < 0) {
		r = r == -ENAMETOOLONG || r == -ERANGE ? -ENAMETOOLONG : -EIO;
		goto fail;
	}
	if (symlinkat(enc, dirfd, en.entry) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = set_owner(req, dirfd, en.entry, -1, S_IFLNK | 0777)) < 0 ||
	    (r = finish_entry(parent, dirfd, name, en.entry, 1, &e)) < 0) {
		unlinkat(dirfd, en.entry, 0);
		goto fail;
	}
	close(dirfd);
	NS_UNLOCK();
	fuse_reply_entry(req, &e);
	return;
fail:
	undo_sidecar(dirfd, &en);
out:
	if (dirfd >= 0)
		close(dirfd);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t npino, const char *name)
{
	struct ck_inode *in = ck_inode_get(ino), *np = ck_inode_get(npino);
	struct fuse_entry_param e;
	struct ck_ename en;
	struct ck_loc loc = { .dirfd = -1 };
	uint8_t dirid[CK_ID_LEN];
	int dirfd = -1, fd = -1, r, bound = 0;

	NS_READ();
	if (in->type == S_IFDIR) {
		r = -EPERM;
		goto out;
	}
	if (in->tree != np->tree) {
		r = -EXDEV;
		goto out;
	}
	if ((r = ck_inode_locate(in, &loc)) < 0)
		goto out;
	if ((r = prepare_create(np, name, &dirfd, &en)) < 0)
		goto out;
	if (in->type == S_IFREG) {
		fd = openat(loc.dirfd, loc.ename, O_RDWR | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || (r = ck_dirid(np, dirfd, dirid)) < 0 ||
		    (r = ck_file_bind(in->tree, fd, in, dirid, name, 2)) < 0) {
			r = fd < 0 ? -errno : r;
			goto fail;
		}
		bound = 1;
	}
	if (linkat(loc.dirfd, loc.ename, dirfd, en.entry, 0) < 0) {
		r = -errno;
		goto fail;
	}
	/* Mid-apply, the apply tool may have rewritten the header under the
	 * new key between the bind and the link, from names it knew before
	 * this one existed: bind again (a no-op when the binding is there). */
	if (bound && (r = ck_file_bind(in->tree, fd, in, dirid, name, 1)) < 0) {
		unlinkat(dirfd, en.entry, 0);
		goto fail;
	}
	if ((r = finish_entry(np, dirfd, name, en.entry, 0, &e)) < 0)
		goto fail;
	if (fd >= 0)
		close(fd);
	close(dirfd);
	ck_loc_release(&loc);
	NS_UNLOCK();
	fuse_reply_entry(req, &e);
	return;
fail:
	if (bound)
		ck_file_bind(in->tree, fd, in, dirid, name, 0);
	if (fd >= 0)
		close(fd);
	undo_sidecar(dirfd, &en);
out:
	if (dirfd >= 0)
		close(dirfd);
	ck_loc_release(&loc);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t pino, const char *name)
{
	struct ck_inode *parent = ck_inode_get(pino), *in = NULL;
	struct ck_ename en;
	struct stat st;
	uint8_t dirid[CK_ID_LEN];
	int dirfd = -1, fd = -1, r, lk = -1;

	if (ck.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	NS_READ();
	if ((dirfd = ck_dir_open(parent, O_PATH)) < 0) {
		r = dirfd;
		goto out;
	}
	lk = ck_dir_lock(parent, dirfd);
	if ((r = ck_entry_find(parent, dirfd, name, &en, &st)) < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto out;
	}
	/* Other links stay: drop this name's binding from the shared header. */
	if (S_ISREG(st.st_mode) && st.st_nlink > 1)
		fd = openat(dirfd, en.entry, O_RDWR | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
	/* The inode before the entry goes: once the last link is gone, a
	 * create in another directory (ns_lock is only shared here) may get
	 * the same backing inode number, and its new inode must stay. */
	in = ck_inode_find_pinned(st.st_dev, st.st_ino);
	if (unlinkat(dirfd, en.entry, 0) < 0) {
		r = -errno;
		goto out;
	}
	ck_sidecar_remove(dirfd, en.entry);
	if (in) {
		ck_inode_drop_name(in, parent, name);
		if (st.st_nlink <= 1)
			ck_inode_unhash(in);
	}
	if (fd >= 0 && ck_dirid(parent, dirfd, dirid) == 0)
		ck_file_bind(parent->tree, fd, in, dirid, name, 0);
	r = 0;
out:
	if (in)
		ck_inode_unpin(in);
	ck_dir_unlock(lk);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

/* Make a backing directory ready to be removed or replaced: it must hold
 * no user entries; its ckfs metadata is removed. On success *saved holds
 * its ID file so that restore_dirid can undo. Caller holds ns_lock (write). */
static int empty_backing_dir(int dirfd, const char *entry, uint8_t saved[CK_DIRID_LEN], int *had)
{
	int fd = openat(dirfd, entry, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW), dfd;
	struct dirent *e;
	DIR *d;
	int r = 0;

	*had = 0;
	if (fd < 0)
		return -errno;
	if ((dfd = dup(fd)) < 0 || !(d = fdopendir(dfd))) {
		r = -errno;
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return r;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (e->d_name[0] != '.' || !strncmp(e->d_name, CK_LONG_PREFIX, 2))) {
			r = -ENOTEMPTY;
			break;
		}
	if (r == 0) {
		int f = openat(fd, CK_DIRID_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (f >= 0) {
			*had = read(f, saved, CK_DIRID_LEN) == CK_DIRID_LEN;
			close(f);
		}
		rewinddir(d);
		/* Leftovers of interrupted operations go with it. */
		while ((e = readdir(d)))
			if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				if (unlinkat(fd, e->d_name, 0) < 0 && errno == EISDIR)
					unlinkat(fd, e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
	close(fd);
	return r;
}

static void restore_dirid(int dirfd, const char *entry, const uint8_t saved[CK_DIRID_LEN], int had)
{
	int fd, f;

	if (!had || (fd = openat(dirfd, entry, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	f = openat(fd, CK_DIRID_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f >= 0) {
		if (write(f, saved, CK_DIRID_LEN) != CK_DIRID_LEN)
			ck_log(CK_LOG_ERR, "could not restore a directory ID after a failed rmdir");
		close(f);
	}
	close(fd);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t pino, const char *name)
{
	struct ck_inode *parent = ck_inode_get(pino), *in;
	struct ck_ename en;
	struct stat st;
	uint8_t saved[CK_DIRID_LEN];
	int dirfd = -1, r, had = 0, lk = -1;

	if (ck.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	NS_WRITE();
	if ((dirfd = ck_dir_open(parent, O_PATH)) < 0) {
		r = dirfd;
		goto out;
	}
	lk = ck_dir_lock(parent, dirfd);
	if ((r = ck_entry_find(parent, dirfd, name, &en, &st)) < 0)
		goto out;
	if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
		goto out;
	}
	if (ck_path_holds_tree(parent, name)) {
		r = -EBUSY;     /* a DEP tree root, or holds one */
		goto out;
	}
	if ((r = empty_backing_dir(dirfd, en.entry, saved, &had)) < 0)
		goto out;
	if (unlinkat(dirfd, en.entry, AT_REMOVEDIR) < 0) {
		r = -errno;
		restore_dirid(dirfd, en.entry, saved, had);
		goto out;
	}
	ck_sidecar_remove(dirfd, en.entry);
	if ((in = ck_inode_find(st.st_dev, st.st_ino))) {
		pthread_mutex_lock(&in->lock);
		in->dirid_ok = 0;
		pthread_mutex_unlock(&in->lock);
		ck_inode_unhash(in);
	}
	r = 0;
out:
	ck_dir_unlock(lk);
	if (dirfd >= 0)
		close(dirfd);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_rename(fuse_req_t req, fuse_ino_t pino, const char *name, fuse_ino_t npino,
                      const char *newname, unsigned int flags)
{
	struct ck_inode *p1 = ck_inode_get(pino), *p2 = ck_inode_get(npino), *in;
	struct ck_ename e1, e2;
	struct stat s1, s2;
	uint8_t d1[CK_ID_LEN], d2[CK_ID_LEN], saved[CK_DIRID_LEN];
	int fd1 = -1, fd2 = -1, dir1 = -1, dir2 = -1, r, exists, had = 0, lk1 = -1, lk2 = -1;
	int bound1 = 0, bound2 = 0, side2 = 0;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ck.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (p1->tree != p2->tree) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	if (strlen(newname) > CK_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	NS_WRITE();
	if ((dir1 = ck_dir_open(p1, O_PATH)) < 0 || (dir2 = ck_dir_open(p2, O_PATH)) < 0) {
		r = dir1 < 0 ? dir1 : dir2;
		goto out;
	}
	lk1 = ck_dir_lock(p1, dir1);
	if (p2 != p1)
		lk2 = ck_dir_lock(p2, dir2);
	if ((r = ck_dirid(p1, dir1, d1)) < 0 || (r = ck_dirid(p2, dir2, d2)) < 0 ||
	    (r = ck_entry_find(p1, dir1, name, &e1, &s1)) < 0)
		goto out;
	/* An existing target keeps the encoding it has (mid-apply it may be
	 * the old one); a new one gets the tree's current encoding. */
	r = ck_entry_find(p2, dir2, newname, &e2, &s2);
	if (r < 0 && r != -ENOENT)
		goto out;
	exists = r == 0;
	if ((S_ISDIR(s1.st_mode) && ck_path_holds_tree(p1, name)) ||
	    (exists && S_ISDIR(s2.st_mode) && ck_path_holds_tree(p2, newname))) {
		r = -EBUSY;     /* tree roots stay where their records say */
		goto out;
	}
	if (exists && (flags & RENAME_NOREPLACE)) {
		r = -EEXIST;
		goto out;
	}
	if (!exists && (flags & RENAME_EXCHANGE)) {
		r = -ENOENT;
		goto out;
	}
	if (exists && s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev) {
		r = 0;          /* two links to one file: POSIX says do nothing */
		goto out;
	}
	if (exists && !(flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(s2.st_mode) && !S_ISDIR(s1.st_mode)) {
			r = -EISDIR;
			goto out;
		}
		if (!S_ISDIR(s2.st_mode) && S_ISDIR(s1.st_mode)) {
			r = -ENOTDIR;
			goto out;
		}
	}
	/* Bind the moving file(s) to their new names before the rename and
	 * unbind the old names after: a crash leaves both, never neither. */
	if (S_ISREG(s1.st_mode)) {
		in = ck_inode_find(s1.st_dev, s1.st_ino);
		fd1 = openat(dir1, e1.entry, O_RDWR | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
		if (fd1 < 0) {
			r = -errno;
			goto out;
		}
		if (ck_file_check_binding(p1->tree, fd1, d1, name) < 0) {
			char p[512];
			ck_inode_path(p1, p, sizeof(p));
			ck_log(CK_LOG_ERR, "%s/%s: not renamed: the file does not belong under this "
			       "name (moved or swapped in the backing store)", p, name);
			r = -EIO;
			goto out;
		}
		if ((r = ck_file_bind(p1->tree, fd1, in, d2, newname, 1)) < 0)
			goto out;
		bound1 = 1;
	}
	if (exists && S_ISREG(s2.st_mode) &&
	    ((flags & RENAME_EXCHANGE) || s2.st_nlink > 1)) {
		fd2 = openat(dir2, e2.entry, O_RDWR | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
		if (fd2 < 0) {
			r = -errno;
			goto undo;
		}
		if ((flags & RENAME_EXCHANGE)) {
			if ((r = ck_file_bind(p1->tree, fd2, ck_inode_find(s2.st_dev, s2.st_ino),
			                      d1, name, 1)) < 0)
				goto undo;
			bound2 = 1;
		}
	}
	if (exists && !(flags & RENAME_EXCHANGE) && S_ISDIR(s2.st_mode) &&
	    (r = empty_backing_dir(dir2, e2.entry, saved, &had)) < 0)
		goto undo;
	if (e2.is_long) {
		struct stat sst;
		char side[CK_LONG_NAME_LEN + 1];
		snprintf(side, sizeof(side), "%s%.43s", CK_SIDE_PREFIX, e2.entry + 2);
		side2 = fstatat(dir2, side, &sst, 0) < 0;
		if ((r = ck_sidecar_write(dir2, &e2)) < 0)
			goto undo;
	}
	/* The engine may refuse rename flags (GlusterFS, NFS): NOREPLACE then
	 * falls back to link + unlink or a checked rename. */
	if ((flags == RENAME_NOREPLACE ? ck_rename_noreplace(dir1, e1.entry, dir2, e2.entry)
	     : renameat2(dir1, e1.entry, dir2, e2.entry, flags)) < 0) {
		r = -errno;
		goto undo;
	}
	if (!(flags & RENAME_EXCHANGE) && e1.is_long && (dir1 != dir2 || strcmp(e1.entry, e2.entry))) {
		struct stat chk;
		if (fstatat(dir1, e1.entry, &chk, AT_SYMLINK_NOFOLLOW) < 0)
			ck_sidecar_remove(dir1, e1.entry);
	}
	/* Mid-apply, the apply tool may have rewritten a header under the new
	 * key between the bind and the rename, from the names it saw (through
	 * another link): bind the new names again (no-op when bound). */
	if ((bound1 && ck_file_bind(p1->tree, fd1, ck_inode_find(s1.st_dev, s1.st_ino), d2,
	                            newname, 1) < 0) ||
	    (bound2 && ck_file_bind(p1->tree, fd2, ck_inode_find(s2.st_dev, s2.st_ino), d1,
	                            name, 1) < 0)) {
		char p[512];
		ck_inode_path(p2, p, sizeof(p));
		ck_log(CK_LOG_ERR, "%s/%s: renamed, but its header could not be updated", p, newname);
	}
	if (bound1)
		ck_file_bind(p1->tree, fd1, ck_inode_find(s1.st_dev, s1.st_ino), d1, name, 0);
	if (fd2 >= 0)
		ck_file_bind(p1->tree, fd2, ck_inode_find(s2.st_dev, s2.st_ino), d2, newname, 0);
	if ((in = ck_inode_find(s1.st_dev, s1.st_ino)))
		ck_inode_set_name(in, p1, name, p2, newname, e2.entry);
	if (exists && (in = ck_inode_find(s2.st_dev, s2.st_ino))) {
		if (flags & RENAME_EXCHANGE) {
			ck_inode_set_name(in, p2, newname, p1, name, e1.entry);
		} else {
			ck_inode_drop_name(in, p2, newname);
			if (S_ISDIR(s2.st_mode) || s2.st_nlink <= 1)
				ck_inode_unhash(in);
		}
	}
	r = 0;
	goto out;
undo:
	restore_dirid(dir2, e2.entry, saved, had);
	if (side2)
		ck_sidecar_remove(dir2, e2.entry);
	if (bound1)
		ck_file_bind(p1->tree, fd1, ck_inode_find(s1.st_dev, s1.st_ino), d2, newname, 0);
	if (bound2)
		ck_file_bind(p1->tree, fd2, ck_inode_find(s2.st_dev, s2.st_ino), d1, name, 0);
out:
	ck_dir_unlock(lk1);
	ck_dir_unlock(lk2);
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
	if (dir1 >= 0)
		close(dir1);
	if (dir2 >= 0)
		close(dir2);
	NS_UNLOCK();
	fuse_reply_err(req, -r);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ck_inode *in = ck_inode_get(ino);
	int r, keep = 0;

	if (ck.ro && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	NS_READ();
	r = file_acquire(in, &keep);
	NS_UNLOCK();
	if (r == 0 && (fi->flags & O_TRUNC) && (r = ck_file_truncate(in, 0)) < 0)
		file_put(in);
	/* Open here already: this host's page cache is coherent with it (all
	 * its I/O goes through it), so keep it; dropping it under another
	 * opener's shared mapping (sqlite's -shm) loses that opener's view.
	 * The first open keeps it only if the backing file is as this host
	 * last saw or left it (the page-cache stamp, chunk.c): a change made
	 * on another host, or by anyone but this daemon, drops it. */
	pthread_mutex_lock(&in->lock);
	fi->keep_cache = r == 0 && (in->nopen > 1 || keep);
	pthread_mutex_unlock(&in->lock);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)fi->flags;
	if (fuse_reply_open(req, fi) == -ENOENT)
		file_put(in);   /* the opener was interrupted */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	file_put(ck_inode_get(ino));
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	ssize_t r;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = ck_file_read(ck_inode_get(ino), buf, size, off);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	/* With the writeback cache the kernel places O_APPEND writes itself
	 * (it owns the size) and writes pages back through any open handle. */
	int append = !ck.writeback && (fi->fh & O_APPEND);
	ssize_t r = ck_file_write(ck_inode_get(ino), buf, size, off, append);

	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct ck_inode *in = ck_inode_get(ino);
	int r;

	pthread_mutex_lock(&in->lock);
	r = in->fd < 0 ? 0 : (datasync ? fdatasync(in->fd) : fsync(in->fd)) < 0 ? -errno : 0;
	pthread_mutex_unlock(&in->lock);
	fuse_reply_err(req, -r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
	fuse_reply_err(req, ck.ro ? EROFS : -ck_file_fallocate(ck_inode_get(ino), mode, off, len));
}

struct dir_handle {
	pthread_mutex_t lock;
	DIR *dp;
	struct dirent *entry;
	off_t offset;
	struct ck_inode *in;
	uint8_t dirid[CK_ID_LEN];
};

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ck_inode *in = ck_inode_get(ino);
	struct dir_handle *d = calloc(1, sizeof(*d));
	int fd = -1, r;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	NS_READ();
	if ((fd = ck_dir_open(in, O_RDONLY)) < 0) {
		r = fd;
		goto out;
	}
	if ((r = ck_dirid(in, fd, d->dirid)) < 0)
		goto out;
	/* The kernel caches the entries it reads (cache_readdir) and keeps
	 * them for the next opendir while the backing directory is as this
	 * host last saw it (the page-cache stamp): a change by another host
	 * changes its mtime and ctime. Changes made through this mount reset
	 * the kernel's cache themselves. */
	struct stat dst;
	if (fstat(fd, &dst) < 0) {
		r = -errno;
		goto out;
	}
	pthread_mutex_lock(&in->lock);
	fi->keep_cache = ck_pcs_open(in, &dst);
	pthread_mutex_unlock(&in->lock);
	fi->cache_readdir = 1;
	if (!(d->dp = fdopendir(fd))) {
		r = -errno;
		goto out;
	}
	fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	d->in = in;
	ck_inode_pin(in);
	r = 0;
out:
	NS_UNLOCK();
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(d);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
}

static int is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, int plus)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = calloc(1, size), *p = buf, name[CK_NAME_MAX + 1];
	size_t rem = size;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		size_t entsize;
		off_t next;

		if (!d->entry) {
			errno = 0;
			if (!(d->entry = readdir(d->dp))) {
				err = errno;
				break;
			}
		}
		next = d->entry->d_off;
		if (is_dot(d->entry->d_name)) {
			snprintf(name, sizeof(name), "%s", d->entry->d_name);
		} else {
			int r = ck_ename_decode(d->in, dirfd(d->dp), d->dirid, d->entry->d_name, name);
			if (r < 0) {
				if (r != -ENOENT) {
					char path[512];
					NS_READ();
					ck_inode_path(d->in, path, sizeof(path));
					NS_UNLOCK();
					ck_log(CK_LOG_ERR, "directory %s: entry %.40s... has a name that "
					       "failed authentication; hidden", path, d->entry->d_name);
				}
				d->entry = NULL;
				d->offset = next;
				continue;
			}
		}
		if (plus) {
			struct fuse_entry_param e = { 0 };
			if (is_dot(name)) {
				e.attr.st_ino = d->entry->d_ino;
				e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			} else if (do_lookup(d->in, name, &e) < 0) {
				d->entry = NULL;        /* gone meanwhile */
				d->offset = next;
				continue;
			}
			entsize = fuse_add_direntry_plus(req, p, rem, name, &e, next);
			if (entsize > rem) {
				if (e.ino)
					ck_inode_forget(ck_inode_get(e.ino), 1);
				break;
			}
		} else {
			struct stat st = { .st_ino = d->entry->d_ino,
			                   .st_mode = (mode_t)d->entry->d_type << 12 };
			entsize = fuse_add_direntry(req, p, rem, name, &st, next);
			if (entsize > rem)
				break;
		}
		p += entsize;
		rem -= entsize;
		d->entry = NULL;
		d->offset = next;
	}
	pthread_mutex_unlock(&d->lock);
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

	closedir(d->dp);
	ck_inode_unpin(d->in);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp);

	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(ck.vol.fd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = CK_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* An O_PATH fd naming the inode itself, for the xattr calls (which go
 * through /proc/self/fd/N, as libfuse's passthrough examples do). */
static int object_open(struct ck_inode *in, char path[64])
{
	struct ck_loc loc;
	int fd, r;

	if (in == &ck.root) {
		snprintf(path, 64, "/proc/self/fd/%d", ck.vol.fd);
		return -1;
	}
	NS_READ();
	r = ck_inode_locate(in, &loc);
	if (r == 0) {
		fd = openat(loc.dirfd, loc.ename, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		r = fd < 0 ? -errno : fd;
		ck_loc_release(&loc);
	}
	NS_UNLOCK();
	if (r >= 0)
		snprintf(path, 64, "/proc/self/fd/%d", r);
	return r;
}

#define OBJECT_ERR(fd, in) ((fd) < 0 && (in) != &ck.root)

static int user_xattr(const char *name)
{
	return !strncmp(name, "user.", 5);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	struct ck_inode *in = ck_inode_get(ino);
	char bname[XATTR_NAME_MAX + 1], path[64];
	uint8_t *enc = NULL;
	int fd = -1, r;

	if (ck.ro) {
		r = -EROFS;
		goto out;
	}
	if (!user_xattr(name)) {
		r = -EOPNOTSUPP;
		goto out;
	}
	if ((r = ck_xattr_name_encrypt(in->tree, name, bname, sizeof(bname))) < 0) {
		r = r == -ENAMETOOLONG || r == -ERANGE ? -ERANGE : -EIO;
		goto out;
	}
	if (size > XATTR_SIZE_MAX - CK_BLOCK_OVERHEAD) {
		r = -E2BIG;
		goto out;
	}
	if (!(enc = malloc(size + CK_BLOCK_OVERHEAD))) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = ck_xattr_value_encrypt(in->tree, bname, (const uint8_t *)value, size, enc)) < 0) {
		r = -EIO;
		goto out;
	}
	fd = object_open(in, path);
	if (OBJECT_ERR(fd, in)) {
		r = fd;
		goto out;
	}
	r = setxattr(path, bname, enc, size + CK_BLOCK_OVERHEAD, flags) < 0 ? -errno : 0;
	if (r == 0 && ck_tree_applying(in->tree) &&
	    ck_xattr_name_encrypt(&ck_stree_of(in->tree)->old, name, bname, sizeof(bname)) == 0)
		(void)removexattr(path, bname);     /* the old keys' copy, if any */
out:
	if (fd >= 0)
		close(fd);
	free(enc);
	fuse_reply_err(req, -r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct ck_inode *in = ck_inode_get(ino);
	char bname[XATTR_NAME_MAX + 1], path[64];
	uint8_t *enc = NULL, *val = NULL;
	ssize_t n;
	int fd = -1, r;

	if (!user_xattr(name)) {
		r = -ENODATA;
		goto out;
	}
	if ((r = ck_xattr_name_encrypt(in->tree, name, bname, sizeof(bname))) < 0) {
		r = -ENODATA;
		goto out;
	}
	fd = object_open(in, path);
	if (OBJECT_ERR(fd, in)) {
		r = fd;
		goto out;
	}
	struct ck_tree *xt = in->tree;
	n = getxattr(path, bname, NULL, 0);
	if (n < 0 && errno == ENODATA && ck_tree_applying(in->tree)) {
		/* Not converted yet by the apply tool: the old keys' name. */
		xt = &ck_stree_of(in->tree)->old;
		if (ck_xattr_name_encrypt(xt, name, bname, sizeof(bname)) == 0)
			n = getxattr(path, bname, NULL, 0);
	}
	if (n < 0) {
		r = -errno;
		goto out;
	}
	if (n < CK_BLOCK_OVERHEAD) {
		r = -EIO;
		goto out;
	}
	if (size && (size_t)n - CK_BLOCK_OVERHEAD > size) {
		r = -ERANGE;
		goto out;
	}
	if (!(enc = malloc((size_t)n)) || !(val = malloc((size_t)n))) {
		r = -ENOMEM;
		goto out;
	}
	n = getxattr(path, bname, enc, (size_t)n);
	if (n < 0) {
		r = errno == ERANGE ? -EAGAIN : -errno;
		goto out;
	}
	if ((r = ck_xattr_value_decrypt(xt, bname, enc, (size_t)n, val)) < 0) {
		char p[512];
		NS_READ();
		ck_inode_path(in, p, sizeof(p));
		NS_UNLOCK();
		ck_log(CK_LOG_ERR, "%s: xattr %s failed authentication (tampered?)", p, name);
		r = -EIO;
		goto out;
	}
	if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, (const char *)val, (size_t)r);
	r = 0;
	goto done;
out:
	fuse_reply_err(req, -r);
done:
	if (fd >= 0)
		close(fd);
	free(enc);
	free(val);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct ck_inode *in = ck_inode_get(ino);
	char path[64], *list = NULL, *out = NULL, name[XATTR_NAME_MAX + 1];
	size_t used = 0;
	ssize_t n;
	int fd, r = 0;

	fd = object_open(in, path);
	if (OBJECT_ERR(fd, in)) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = listxattr(path, NULL, 0);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	if (!(list = malloc((size_t)n + 1)) || !(out = malloc((size_t)n + 1))) {
		r = -ENOMEM;
		goto out;
	}
	n = listxattr(path, list, (size_t)n);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		int l = ck_xattr_name_decrypt(in->tree, p, name, sizeof(name));
		if (l < 0 && ck_tree_applying(in->tree))
			l = ck_xattr_name_decrypt(&ck_stree_of(in->tree)->old, p, name, sizeof(name));
		if (l < 0)
			continue;       /* not ours, or not authentic: hidden */
		/* A decrypted name is never longer than its encoding. */
		memcpy(out + used, name, (size_t)l + 1);
		used += (size_t)l + 1;
	}
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (used > size)
		r = -ERANGE;
	else
		fuse_reply_buf(req, out, used);
out:
	if (r < 0)
		fuse_reply_err(req, -r);
	if (fd >= 0)
		close(fd);
	free(list);
	free(out);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct ck_inode *in = ck_inode_get(ino);
	char bname[XATTR_NAME_MAX + 1], path[64];
	int fd = -1, r;

	if (ck.ro) {
		r = -EROFS;
		goto out;
	}
	if (!user_xattr(name) || ck_xattr_name_encrypt(in->tree, name, bname, sizeof(bname)) < 0) {
		r = -ENODATA;
		goto out;
	}
	fd = object_open(in, path);
	if (OBJECT_ERR(fd, in)) {
		r = fd;
		goto out;
	}
	r = removexattr(path, bname) < 0 ? -errno : 0;
	if (r == -ENODATA && ck_tree_applying(in->tree) &&
	    ck_xattr_name_encrypt(&ck_stree_of(in->tree)->old, name, bname, sizeof(bname)) == 0)
		r = removexattr(path, bname) < 0 ? -errno : 0;
out:
	if (fd >= 0)
		close(fd);
	fuse_reply_err(req, -r);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = 1 << 20;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Without -o writeback_cache every write reaches the daemon before it
	 * returns and the daemon owns sizes (other hosts' appends are seen at
	 * the next open). With it the kernel merges writes in its page cache
	 * and owns sizes: for a volume mounted on one host only (main.c holds
	 * .ckfs/mount.lock exclusively), and only fsync makes data durable. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (ck.writeback) {
		if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
			conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		else {
			ck_log(CK_LOG_WARNING, "writeback_cache: the kernel does not offer it; "
			       "writes go through");
			ck.writeback = 0;
		}
	}
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

/* ---- tree gating: every operation that needs a tree's keys runs with
 * that tree's lock held for reading (see trees.c); a revoked tree answers
 * EKEYREVOKED, one whose keys are unavailable ENOKEY. ---- */
#define GATE(t) struct ck_tree *gt_ = (t); int ge_ = ck_tree_enter(gt_); \
	if (ge_) { fuse_reply_err(req, -ge_); return; }
#define UNGATE() ck_tree_leave(gt_)
#define T(ino) (ck_inode_get(ino)->tree)

static void g_lookup(fuse_req_t req, fuse_ino_t p, const char *n)
{ GATE(T(p)); op_lookup(req, p, n); UNGATE(); }
static void g_getattr(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	if (ck_inode_get(i)->tree_root) {
		op_getattr(req, i, fi);     /* a root's attributes need no key */
		return;
	}
	GATE(T(i)); op_getattr(req, i, fi); UNGATE();
}
static void g_setattr(fuse_req_t req, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *fi)
{ GATE(T(i)); op_setattr(req, i, a, s, fi); UNGATE(); }
static void g_readlink(fuse_req_t req, fuse_ino_t i)
{ GATE(T(i)); op_readlink(req, i); UNGATE(); }
static void g_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d)
{ GATE(T(p)); op_mknod(req, p, n, m, d); UNGATE(); }
static void g_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{ GATE(T(p)); op_mkdir(req, p, n, m); UNGATE(); }
static void g_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{ GATE(T(p)); op_symlink(req, l, p, n); UNGATE(); }
static void g_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t p, const char *n)
{ GATE(T(i)); op_link(req, i, p, n); UNGATE(); }
static void g_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{ GATE(T(p)); op_unlink(req, p, n); UNGATE(); }
static void g_rmdir(fuse_req_t req, fuse_ino_t p, const char *n)
{ GATE(T(p)); op_rmdir(req, p, n); UNGATE(); }
static void g_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
                     unsigned int f)
{ GATE(T(p)); op_rename(req, p, n, np, nn, f); UNGATE(); }
static void g_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi)
{ GATE(T(p)); op_create(req, p, n, m, fi); UNGATE(); }
static void g_open(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{ GATE(T(i)); op_open(req, i, fi); UNGATE(); }
static void g_read(fuse_req_t req, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi)
{ GATE(T(i)); op_read(req, i, s, o, fi); UNGATE(); }
static void g_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o,
                    struct fuse_file_info *fi)
{ GATE(T(i)); op_write(req, i, b, s, o, fi); UNGATE(); }
static void g_fsync(fuse_req_t req, fuse_ino_t i, int d, struct fuse_file_info *fi)
{ GATE(T(i)); op_fsync(req, i, d, fi); UNGATE(); }
static void g_fallocate(fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi)
{ GATE(T(i)); op_fallocate(req, i, m, o, l, fi); UNGATE(); }
static void g_opendir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{ GATE(T(i)); op_opendir(req, i, fi); UNGATE(); }
static void g_readdir(fuse_req_t req, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi)
{ GATE(T(i)); op_readdir(req, i, s, o, fi); UNGATE(); }
static void g_readdirplus(fuse_req_t req, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi)
{ GATE(T(i)); op_readdirplus(req, i, s, o, fi); UNGATE(); }
static void g_fsyncdir(fuse_req_t req, fuse_ino_t i, int d, struct fuse_file_info *fi)
{ GATE(T(i)); op_fsyncdir(req, i, d, fi); UNGATE(); }
static void g_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{ GATE(T(i)); op_setxattr(req, i, n, v, s, f); UNGATE(); }
static void g_getxattr(fuse_req_t req, fuse_ino_t i, const char *n, size_t s)
{ GATE(T(i)); op_getxattr(req, i, n, s); UNGATE(); }
static void g_listxattr(fuse_req_t req, fuse_ino_t i, size_t s)
{ GATE(T(i)); op_listxattr(req, i, s); UNGATE(); }
static void g_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{ GATE(T(i)); op_removexattr(req, i, n); UNGATE(); }

const struct fuse_lowlevel_ops ck_ops = {
	.init = op_init,
	.lookup = g_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = g_getattr,
	.setattr = g_setattr,
	.readlink = g_readlink,
	.mknod = g_mknod,
	.mkdir = g_mkdir,
	.symlink = g_symlink,
	.link = g_link,
	.unlink = g_unlink,
	.rmdir = g_rmdir,
	.rename = g_rename,
	.create = g_create,
	.open = g_open,
	.release = op_release,
	.read = g_read,
	.write = g_write,
	.flush = op_flush,
	.fsync = g_fsync,
	.fallocate = g_fallocate,
	.opendir = g_opendir,
	.readdir = g_readdir,
	.readdirplus = g_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = g_fsyncdir,
	.statfs = op_statfs,
	.setxattr = g_setxattr,
	.getxattr = g_getxattr,
	.listxattr = g_listxattr,
	.removexattr = g_removexattr,
};
