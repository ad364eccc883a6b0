/* File content: headers, block read-modify-write, truncate, fallocate.
 *
 * Invariants of a backing file (docs/FORMAT.md): a 512-byte header holding
 * the sealed plaintext size S, then full blocks of CK_CBLOCK_SIZE bytes.
 * Block final(S) is marked "last" in its AAD and is zero beyond S; blocks
 * after it (left by an interrupted operation) are ignored. A block before
 * the final one may still be marked last (a growth step interrupted by a
 * crash): reads accept that.
 *
 * Growth of a file past its final block f: (1) write the new blocks, the
 * new final one marked last and f still marked last; (2) seal the new size
 * into the header; (3) re-mark f as not last. A crash between any two
 * steps leaves a readable file holding the old or the new size.
 * Shrinking to final block g: (1) rewrite g zero-padded and marked last,
 * (2) seal the new size, (3) cut the backing file after g.
 *
 * Locking: callers of read take in->io shared; write, truncate, fallocate
 * and header updates take it exclusive. in->psize is under in->io. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include "fs/ckfs.h"
#include "keys/secmem.h"
#include "keys/util.h"

static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

/* Writers on several hosts (see CK_WLOCK_OFF in ckfs.h): the lock that
 * serialises read-modify-write of blocks and header across hosts. An
 * engine without byte-range locks is warned about once and used unlocked. */
static int wlock(int fd)
{
	static int warned;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = CK_WLOCK_OFF, .l_len = 1 };

	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EINVAL && errno != ENOLCK && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			ck_log(CK_LOG_WARNING, "the backing store refuses byte-range locks (%s): writes "
			       "to one file from several hosts at once are not serialised", strerror(errno));
		return 0;
	}
	return 0;
}

static void wunlock(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = CK_WLOCK_OFF, .l_len = 1 };

	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

/* ---- The page-cache stamp ----
 * The kernel keeps a file's pages (and a directory's entries) across opens
 * only when the daemon knows they are current: the backing stat (inode,
 * size, mtime, ctime) is the one stamped when this host last opened or
 * changed the object. Every change this daemon makes to a file re-stamps,
 * under the multi-host write lock, and only if the stamp matched just
 * before the change; a change made by anyone else (another host, a tool,
 * a crash) leaves a backing stat that matches no stamp, and the next open
 * drops the cache. */
static int pcs_match(const struct ck_inode *in, const struct stat *st)
{
	return in->pcs.ok && in->pcs.ino == st->st_ino && in->pcs.bsize == st->st_size &&
	       in->pcs.mtim.tv_sec == st->st_mtim.tv_sec &&
	       in->pcs.mtim.tv_nsec == st->st_mtim.tv_nsec &&
	       in->pcs.ctim.tv_sec == st->st_ctim.tv_sec &&
	       in->pcs.ctim.tv_nsec == st->st_ctim.tv_nsec;
}

static void pcs_set(struct ck_inode *in, const struct stat *st)
{
	in->pcs.ok = st != NULL;
	if (st) {
		in->pcs.ino = st->st_ino;
		in->pcs.bsize = st->st_size;
		in->pcs.mtim = st->st_mtim;
		in->pcs.ctim = st->st_ctim;
	}
}

int ck_pcs_open(struct ck_inode *in, const struct stat *st)
{
	int keep = pcs_match(in, st);

	pcs_set(in, st);
	return keep;
}

/* After a change made at fd under the write lock: before is the backing
 * stat taken under that lock before the change (NULL: not known, so the
 * stamp is dropped). */
static void pcs_follow(struct ck_inode *in, int fd, const struct stat *before)
{
	struct stat after;
	int ok = before && fstat(fd, &after) == 0;

	pthread_mutex_lock(&in->lock);
	pcs_set(in, ok && pcs_match(in, before) ? &after : NULL);
	pthread_mutex_unlock(&in->lock);
}

static int wlock(int fd);
static void wunlock(int fd);

void ck_pcs_meta_begin(struct ck_inode *in, int dirfd, const char *ename, struct ck_pcs_meta *m)
{
	m->fd = -1;
	m->have = 0;
	if (in->type != S_IFREG || dirfd < 0)
		return;
	pthread_mutex_lock(&in->lock);
	int ok = in->pcs.ok;
	pthread_mutex_unlock(&in->lock);
	if (!ok)
		return;         /* nothing cached worth keeping */
	m->fd = openat(dirfd, ename, O_RDWR | O_NOATIME | O_NOFOLLOW | O_CLOEXEC);
	if (m->fd < 0)
		return;
	if (wlock(m->fd) < 0 || fstat(m->fd, &m->before) < 0) {
		close(m->fd);
		m->fd = -1;
		return;
	}
	m->have = 1;
}

void ck_pcs_meta_end(struct ck_inode *in, struct ck_pcs_meta *m)
{
	if (in->type != S_IFREG)
		return;
	pcs_follow(in, m->fd, m->have ? &m->before : NULL);
	if (m->have)
		wunlock(m->fd);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->have = 0;
}

static void ref_of(struct ck_tree *t, const uint8_t *file_id, struct ck_file_ref *ref)
{
	ref->volume_id = t->volume_id;
	ref->tree_id = t->id;
	ref->file_id = file_id;
}

/* The tree whose keys encrypt a file with header h found in tree t: t
 * itself or, while t is being applied, the tree it is applied from. */
static struct ck_tree *hdr_tree(struct ck_tree *t, const struct ck_file_hdr *h)
{
	struct ck_stree *s = ck_stree_of(t);

	if (s->applying && memcmp(h->tree_id, t->id, CK_ID_LEN) &&
	    !memcmp(h->tree_id, s->old.id, CK_ID_LEN))
		return &s->old;
	return t;
}

/* The header key of the file last loaded for its bindings on this thread,
 * kept for the rest of the operation only: a rename checks the old
 * binding, adds the new one and drops the old one, three header loads of
 * one file, and each derivation is two HKDF calls. Wiped by
 * ck_file_op_end, which ck_tree_leave calls as every operation ends (a
 * revocation, which waits for the tree's operations to leave, never finds
 * one here). */
static __thread struct {
	const struct ck_tree *t;
	const uint8_t *tkey;            /* t->key when derived */
	uint8_t file_id[CK_ID_LEN];
	uint8_t *header;                /* secret */
} hk;

void ck_file_op_end(void)
{
	if (hk.header) {
		ck_secret_free(hk.header, CK_KEY_LEN);
		hk.header = NULL;
	}
	hk.t = NULL;
	hk.tkey = NULL;
}

static int keys_for(struct ck_tree *t, const uint8_t file_id[static CK_ID_LEN],
                    struct ck_file_keys *k, int which)
{
	int r;

	if (which != CK_FK_HEADER)
		return ck_file_keys_derive_some(t, file_id, k, which);
	if (hk.header && hk.t == t && hk.tkey == t->key && !memcmp(hk.file_id, file_id, CK_ID_LEN)) {
		memset(k, 0, sizeof(*k));
		if (!(k->header = ck_secret_alloc(CK_KEY_LEN)))
			return -ENOMEM;
		memcpy(k->header, hk.header, CK_KEY_LEN);
		return 0;
	}
	if ((r = ck_file_keys_derive_some(t, file_id, k, which)) < 0)
		return r;
	ck_file_op_end();
	if ((hk.header = ck_secret_alloc(CK_KEY_LEN))) {
		memcpy(hk.header, k->header, CK_KEY_LEN);
		memcpy(hk.file_id, file_id, CK_ID_LEN);
		hk.t = t;
		hk.tkey = t->key;
	}
	return 0;
}

/* Read, parse and verify a header; derives the file's keys into k and
 * says in *tp which tree they belong to. */
static int hdr_load(struct ck_tree *t, int fd, struct ck_file_hdr *h, struct ck_file_keys *k,
                    struct ck_tree **tp, int which)
{
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_ref ref;
	ssize_t n = pread_full(fd, raw, sizeof(raw), 0);
	int r;

	if (n < 0)
		return (int)n;
	if ((r = ck_file_hdr_parse(raw, (size_t)n, h)) < 0)
		return -EBADMSG;
	t = hdr_tree(t, h);
	if (!t->key)
		return -EKEYREVOKED;
	if ((r = keys_for(t, h->file_id, k, which | CK_FK_HEADER)) < 0)
		return r;
	ref_of(t, h->file_id, &ref);
	if ((r = ck_file_hdr_verify(raw, &ref, k->header)) < 0) {
		ck_file_keys_release(k);
		return -EBADMSG;
	}
	if (tp)
		*tp = t;
	return 0;
}

/* The plaintext size sealed in a verified header. */
static int hdr_size(struct ck_tree *t, const struct ck_file_hdr *h, const struct ck_file_keys *k,
                    uint64_t *size)
{
	struct ck_file_ref ref;
	struct ck_gcm *g;
	int r;

	ref_of(t, h->file_id, &ref);
	if ((r = ck_gcm_pool_get(k->size_gcm, &g)) < 0)
		return r;
	r = ck_file_size_open(g, &ref, h->size_box, size);
	ck_gcm_pool_put(k->size_gcm, g);
	return r < 0 ? -EBADMSG : 0;
}

int ck_file_stat_size(struct ck_tree *t, int fd, uint64_t *size)
{
	struct ck_file_hdr h;
	struct ck_file_keys k = { 0 };
	int r;

	if ((r = hdr_load(t, fd, &h, &k, &t, CK_FK_SIZE)) < 0)
		return r;
	r = hdr_size(t, &h, &k, size);
	ck_file_keys_release(&k);
	return r;
}

/* Write a header back; keep_times keeps atime/mtime (a binding change is
 * not a change of the file's content). */
static int hdr_store(struct ck_tree *t, int fd, const struct ck_file_hdr *h,
                     const uint8_t *hdr_key, int keep_times)
{
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_ref ref;
	struct stat st;
	int r;

	ref_of(t, h->file_id, &ref);
	if ((r = ck_file_hdr_encode(h, &ref, hdr_key, raw)) < 0)
		return r;
	if (keep_times && fstat(fd, &st) < 0)
		return -errno;
	if ((r = pwrite_full(fd, raw, sizeof(raw), 0)) < 0)
		return r;
	if (keep_times) {
		struct timespec ts[2] = { st.st_atim, st.st_mtim };
		futimens(fd, ts);
	}
	return 0;
}

/* The header last verified or written under in->keys. A header read back
 * with the same bytes needs no second MAC check; different bytes (another
 * host changed it) are verified. Cleared whenever in->keys change. */
static void hdr_remember(struct ck_inode *in, const uint8_t raw[CK_FILE_HDR_LEN])
{
	if (!in->hdr_seen)
		return;
	memcpy(in->hdr_seen, raw, CK_FILE_HDR_LEN);
	in->hdr_seen_ok = 1;
}

int ck_file_ostate(struct ck_inode *in)
{
	if (in->ostate)
		return 0;
	if (!(in->ostate = calloc(1, CK_FILE_HDR_LEN + CK_LOGPATH_LEN)))
		return -ENOMEM;
	in->hdr_seen = in->ostate;
	in->logpath = (char *)in->ostate + CK_FILE_HDR_LEN;
	in->hdr_seen_ok = 0;
	return 0;
}

void ck_file_ostate_free(struct ck_inode *in)
{
	free(in->ostate);
	in->ostate = NULL;
	in->hdr_seen = NULL;
	in->logpath = NULL;
	in->hdr_seen_ok = 0;
}

static int hdr_check(struct ck_inode *in, const uint8_t raw[CK_FILE_HDR_LEN],
                     const struct ck_file_ref *ref)
{
	if (in->hdr_seen_ok && !memcmp(raw, in->hdr_seen, CK_FILE_HDR_LEN))
		return 0;
	if (ck_file_hdr_verify(raw, ref, in->keys.header) < 0)
		return -EBADMSG;
	hdr_remember(in, raw);
	return 0;
}

int ck_file_init(struct ck_inode *dir, const uint8_t dirid[static CK_ID_LEN], const char *name,
                 struct ck_tree *t, int fd)
{
	return ck_file_init_keep(dir, dirid, name, t, fd, NULL);
}

int ck_file_init_keep(struct ck_inode *dir, const uint8_t dirid[static CK_ID_LEN],
                      const char *name, struct ck_tree *t, int fd, struct ck_file_new *keep)
{
	uint8_t buf[CK_FILE_HDR_LEN + CK_CBLOCK_SIZE];
	static const uint8_t zeros[CK_BLOCK_SIZE];
	struct ck_file_hdr h = { .version = CK_FORMAT_VERSION, .kind = 1 };
	struct ck_file_keys k = { 0 };
	struct ck_file_ref ref;
	struct ck_gcm *g = NULL, *sg = NULL;
	int r;

	(void)dir;
	if ((r = ck_random(h.file_id, CK_ID_LEN)) < 0 ||
	    (r = ck_file_keys_derive(t, h.file_id, &k)) < 0)
		return r;
	ref_of(t, h.file_id, &ref);
	h.n_bind = 1;
	if ((r = ck_binding(k.header, dirid, name, strlen(name), h.bind[0])) < 0 ||
	    (r = ck_gcm_pool_get(k.size_gcm, &sg)) < 0 ||
	    (r = ck_file_size_seal(sg, &ref, 0, h.size_box)) < 0 ||
	    (r = ck_file_hdr_encode(&h, &ref, k.header, buf)) < 0 ||
	    (r = ck_gcm_pool_get(k.content_gcm, &g)) < 0 ||
	    (r = ck_block_seal(g, &ref, 0, 1, zeros, CK_BLOCK_SIZE, buf + CK_FILE_HDR_LEN)) < 0)
		goto out;
	r = pwrite_full(fd, buf, sizeof(buf), 0);
out:
	if (g)
		ck_gcm_pool_put(k.content_gcm, g);
	if (sg)
		ck_gcm_pool_put(k.size_gcm, sg);
	if (r == 0 && keep) {
		/* Handed to ck_file_adopt: the first open needs no header read. */
		keep->keys = k;
		keep->tree = t;
		memcpy(keep->file_id, h.file_id, CK_ID_LEN);
		memcpy(keep->hdr, buf, CK_FILE_HDR_LEN);
		return 0;
	}
	ck_file_keys_release(&k);
	return r;
}

void ck_file_new_release(struct ck_file_new *nf)
{
	ck_file_keys_release(&nf->keys);
	ck_wipe(nf->file_id, CK_ID_LEN);
	nf->tree = NULL;
}

int ck_file_adopt(struct ck_inode *in, int fd, struct ck_file_new *nf,
                  const uint8_t dirid[static CK_ID_LEN], const char *name)
{
	if (!nf->keys.content || nf->tree != in->tree)
		return ck_file_load(in, fd, dirid, name);
	in->keys = nf->keys;
	memset(&nf->keys, 0, sizeof(nf->keys));
	memcpy(in->file_id, nf->file_id, CK_ID_LEN);
	memcpy(in->ktree_id, nf->tree->id, CK_ID_LEN);
	in->hdr_flags = 0;
	in->psize = 0;
	hdr_remember(in, nf->hdr);
	in->fd = fd;
	ck_file_new_release(nf);
	return 0;
}

/* Bytes after the final block are not part of the file: the header seals
 * the size, so they can never be returned as plaintext. An interrupted
 * growth or shrink leaves them (whole authentic blocks, or a block cut short
 * when the daemon died or the disk filled in the middle of a write), and so
 * could someone who appends to the backing file. Refusing the file would
 * turn every interrupted append into the loss of the whole file, so they
 * are logged (ck-fsck reports them) and cut off before the file next grows. */
static void check_trailing(struct ck_inode *in, uint64_t bsize)
{
	uint64_t want = ck_backing_size(in->psize);

	if (bsize > want)
		ck_log(CK_LOG_WARNING, "%s: %llu bytes after the final block are ignored (left by an "
		       "interrupted write, or appended by someone else; ck-fsck reports them)",
		       in->logpath, (unsigned long long)(bsize - want));
}

int ck_file_load(struct ck_inode *in, int fd, const uint8_t dirid[static CK_ID_LEN],
                 const char *name)
{
	struct ck_file_hdr h;
	uint8_t b[CK_BINDING_LEN];
	struct ck_tree *t;
	int r;

	in->hdr_seen_ok = 0;
	if ((r = hdr_load(in->tree, fd, &h, &in->keys, &t, CK_FK_ALL)) < 0) {
		ck_log(CK_LOG_ERR, "%s: file header %s", in->logpath,
		       r == -EBADMSG ? "is corrupt or failed authentication" : strerror(-r));
		return -EIO;
	}
	if ((r = ck_binding(in->keys.header, dirid, name, strlen(name), b)) < 0)
		goto fail;
	if (!ck_file_hdr_has_binding(&h, b)) {
		ck_log(CK_LOG_ERR, "%s: file does not belong under this name (its ciphertext "
		       "was moved, copied or swapped in the backing store)", in->logpath);
		r = -EIO;
		goto fail;
	}
	if ((r = hdr_size(t, &h, &in->keys, &in->psize)) < 0) {
		ck_log(CK_LOG_ERR, "%s: file size in the header failed authentication", in->logpath);
		r = -EIO;
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < ck_backing_size(in->psize)) {
		ck_log(CK_LOG_ERR, "%s: backing file is shorter than its size says (truncated)",
		       in->logpath);
		r = -EIO;
		goto fail;
	}
	check_trailing(in, (uint64_t)st.st_size);
	memcpy(in->file_id, h.file_id, CK_ID_LEN);
	memcpy(in->ktree_id, t->id, CK_ID_LEN);
	in->hdr_flags = h.flags;
	in->fd = fd;
	return 0;
fail:
	ck_file_keys_release(&in->keys);
	return r;
}

void ck_file_unload(struct ck_inode *in)
{
	ck_file_ostate_free(in);
	ck_file_keys_release(&in->keys);
	ck_file_keys_release(&in->keys2);
	ck_wipe(in->file_id, CK_ID_LEN);
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
}

int ck_file_check_binding(struct ck_tree *t, int fd, const uint8_t dirid[static CK_ID_LEN],
                          const char *name)
{
	struct ck_file_hdr h;
	struct ck_file_keys k = { 0 };
	uint8_t b[CK_BINDING_LEN];
	int r;

	if ((r = ck_apply_lock(t, fd)) < 0)
		return r;
	r = hdr_load(t, fd, &h, &k, NULL, CK_FK_HEADER);
	ck_apply_unlock(fd);
	if (r < 0)
		return -EIO;
	r = ck_binding(k.header, dirid, name, strlen(name), b);
	if (r == 0 && !ck_file_hdr_has_binding(&h, b))
		r = -EIO;
	ck_file_keys_release(&k);
	return r;
}

int ck_file_bind(struct ck_tree *t, int fd, struct ck_inode *in,
                 const uint8_t dirid[static CK_ID_LEN], const char *name, int add)
{
	struct ck_file_hdr h;
	struct ck_file_keys k = { 0 };
	uint8_t b[CK_BINDING_LEN];
	int r;

	if (in)
		pthread_rwlock_wrlock(&in->io);
	if ((r = wlock(fd)) < 0)
		goto unlock;
	if ((r = ck_apply_lock(t, fd)) < 0) {
		wunlock(fd);
		goto unlock;
	}
	if ((r = hdr_load(t, fd, &h, &k, &t, CK_FK_HEADER)) < 0) {
		r = -EIO;
		goto out;
	}
	if ((r = ck_binding(k.header, dirid, name, strlen(name), b)) < 0)
		goto out;
	if (add) {
		/* One slot stays free so that a rename (add, then drop) of a
		 * file with the most links still fits. */
		if (!ck_file_hdr_has_binding(&h, b) && h.n_bind >= CK_MAX_LINKS - 1 && add > 1) {
			r = -EMLINK;
			goto out;
		}
		if (ck_file_hdr_has_binding(&h, b))
			goto out;       /* bound already: nothing to write */
		if ((r = ck_file_hdr_add_binding(&h, b)) < 0)
			goto out;
	} else {
		if (!ck_file_hdr_has_binding(&h, b))
			goto out;
		ck_file_hdr_del_binding(&h, b);
	}
	struct stat before;
	int have = in && fstat(fd, &before) == 0;
	if (in)
		in->hdr_seen_ok = 0;
	r = hdr_store(t, fd, &h, k.header, 1);
	if (in)
		pcs_follow(in, fd, have ? &before : NULL);
out:
	ck_apply_unlock(fd);
	wunlock(fd);
	ck_file_keys_release(&k);
unlock:
	if (in)
		pthread_rwlock_unlock(&in->io);
	return r;
}

/* ---- block I/O ---- */

struct io {
	struct ck_inode *in;
	struct ck_gcm *g, *g2;          /* keys, and keys2 while applying */
	struct ck_gcm_pool *gp, *gp2;   /* where g and g2 go back */
	struct ck_file_ref ref, ref2;
	int locked;                     /* holds the apply lock on in->fd */
	int hdr_fresh;                  /* in->hdr_seen is the header on disk (read
	                                 * under the write lock, or written since) */
	struct stat pcs_before;         /* backing stat under the write lock */
	int pcs_have;
};

/* While the tree is applied, the header names the tree whose keys are
 * current: follow it (the apply tool may have converted the file since we
 * opened it), keeping the other tree's keys as keys2 for blocks a crashed
 * apply left behind. Caller holds in->io exclusive and the apply lock. */
static int follow_header(struct ck_inode *in)
{
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_hdr h;
	struct ck_stree *s = ck_stree_of(in->tree);
	struct ck_tree *cur, *other;
	ssize_t n = pread_full(in->fd, raw, sizeof(raw), 0);
	int r;

	in->hdr_seen_ok = 0;            /* keys may change here */
	if (n < 0)
		return (int)n;
	if (ck_file_hdr_parse(raw, (size_t)n, &h) < 0)
		return -EIO;
	cur = hdr_tree(in->tree, &h);
	other = cur == &s->old ? in->tree : &s->old;
	if (memcmp(in->ktree_id, cur->id, CK_ID_LEN)) {
		struct ck_file_keys t = in->keys;
		in->keys = in->keys2;
		in->keys2 = t;
		memcpy(in->k2tree_id, in->ktree_id, CK_ID_LEN);
		memcpy(in->ktree_id, cur->id, CK_ID_LEN);
		if (!in->keys.content && (r = ck_file_keys_derive(cur, h.file_id, &in->keys)) < 0)
			return r;
	}
	if (!in->keys2.content && other->key) {
		if ((r = ck_file_keys_derive(other, h.file_id, &in->keys2)) < 0)
			return r;
		memcpy(in->k2tree_id, other->id, CK_ID_LEN);
	}
	struct ck_file_ref ref = { ck.vol.hdr.volume_id, in->ktree_id, h.file_id };
	if (ck_file_hdr_verify(raw, &ref, in->keys.header) < 0)
		return -EIO;
	in->hdr_flags = h.flags;
	return hdr_size(cur, &h, &in->keys, &in->psize) < 0 ? -EIO : 0;
}

static int io_begin(struct io *io, struct ck_inode *in);

/* io_begin for a caller holding in->io shared: -EAGAIN, and nothing done,
 * when the inode's keys must change first (that needs io exclusive). */
static int io_begin_shared(struct io *io, struct ck_inode *in)
{
	memset(io, 0, sizeof(*io));
	if (in->keys.content && (ck_tree_applying(in->tree) ||
	    (memcmp(in->ktree_id, in->tree->id, CK_ID_LEN) && in->keys2.content &&
	     !memcmp(in->k2tree_id, in->tree->id, CK_ID_LEN))))
		return -EAGAIN;
	return io_begin(io, in);
}

static int io_begin(struct io *io, struct ck_inode *in)
{
	int r;

	memset(io, 0, sizeof(*io));
	io->in = in;
	if (!in->keys.content)
		return -EKEYREVOKED;    /* wiped by a revocation */
	if (ck_tree_applying(in->tree)) {
		if ((r = ck_apply_lock(in->tree, in->fd)) < 0)
			return r;
		io->locked = 1;
		if ((r = follow_header(in)) < 0)
			return r;
		if (in->keys2.content) {
			io->ref2.volume_id = ck.vol.hdr.volume_id;
			io->ref2.tree_id = in->k2tree_id;
			io->ref2.file_id = in->file_id;
			io->gp2 = in->keys2.content_gcm;
			if ((r = ck_gcm_pool_get(io->gp2, &io->g2)) < 0)
				return r;
		}
	} else if (memcmp(in->ktree_id, in->tree->id, CK_ID_LEN) && in->keys2.content &&
	           !memcmp(in->k2tree_id, in->tree->id, CK_ID_LEN)) {
		/* An apply finished while the file was open: its keys are now
		 * the ones kept as keys2. */
		struct ck_file_keys t = in->keys;
		in->keys = in->keys2;
		in->keys2 = t;
		ck_file_keys_release(&in->keys2);
		memcpy(in->ktree_id, in->tree->id, CK_ID_LEN);
		in->hdr_seen_ok = 0;
	}
	io->ref.volume_id = ck.vol.hdr.volume_id;
	io->ref.tree_id = in->ktree_id;
	io->ref.file_id = in->file_id;
	io->gp = in->keys.content_gcm;
	return ck_gcm_pool_get(io->gp, &io->g);
}

static void io_end(struct io *io)
{
	if (io->g)
		ck_gcm_pool_put(io->gp, io->g);
	if (io->g2)
		ck_gcm_pool_put(io->gp2, io->g2);
	if (io->locked)
		ck_apply_unlock(io->in->fd);
}

/* Shared while the tree is not being applied, exclusive while it is (the
 * apply lock is one per open file description, so one thread at a time). */
/* io for a read: shared, unless the inode's keys must change first
 * (follow_header while applying, or the swap after an apply finished):
 * never under the shared lock, where two reads of one file could both
 * swap and free keys (and GCM pools) the other still uses. */
static int io_lock_read_begin(struct io *io, struct ck_inode *in)
{
	int r;

	if (!ck_tree_applying(in->tree)) {
		pthread_rwlock_rdlock(&in->io);
		if ((r = io_begin_shared(io, in)) != -EAGAIN)
			return r;
		pthread_rwlock_unlock(&in->io);
	}
	pthread_rwlock_wrlock(&in->io);
	return io_begin(io, in);
}

static int corrupt(struct io *io, uint64_t blk, const char *what)
{
	ck_log(CK_LOG_ERR, "%s: block %llu %s", io->in->logpath, (unsigned long long)blk, what);
	return -EIO;
}

/* Decrypt block blk (CK_CBLOCK_SIZE bytes at ct) into pt (CK_BLOCK_SIZE). */
static int open_block(struct io *io, uint64_t blk, int is_final, const uint8_t *ct, uint8_t *pt)
{
	int r;

	if (!is_final && ck_block_is_hole(ct, CK_CBLOCK_SIZE)) {
		if (!(io->in->hdr_flags & CK_FILE_SPARSE))
			return corrupt(io, blk, "is all zeros in a file without holes (tampered?)");
		memset(pt, 0, CK_BLOCK_SIZE);
		return 0;
	}
	r = ck_block_open(io->g, &io->ref, blk, is_final, ct, CK_CBLOCK_SIZE, pt);
	/* Still marked last though it is not the final block: a growth step
	 * interrupted by a crash (see the top of this file). */
	if (r == -EBADMSG && !is_final)
		r = ck_block_open(io->g, &io->ref, blk, 1, ct, CK_CBLOCK_SIZE, pt);
	/* Mid-apply, a block may still (or already) be under the other tree. */
	if (r == -EBADMSG && io->g2) {
		r = ck_block_open(io->g2, &io->ref2, blk, is_final, ct, CK_CBLOCK_SIZE, pt);
		if (r == -EBADMSG && !is_final)
			r = ck_block_open(io->g2, &io->ref2, blk, 1, ct, CK_CBLOCK_SIZE, pt);
	}
	if (r == -EBADMSG)
		return corrupt(io, blk, is_final ? "failed authentication (tampered, swapped, "
		               "or the file was truncated)" : "failed authentication (tampered or swapped)");
	if (r < 0)
		return corrupt(io, blk, "could not be decrypted");
	return r == CK_BLOCK_SIZE ? 0 : corrupt(io, blk, "has the wrong length");
}

/* Read and decrypt one block of the file (zeros past the final block). */
static int read_block(struct io *io, uint64_t blk, uint8_t *pt)
{
	uint8_t ct[CK_CBLOCK_SIZE];
	uint64_t final = ck_final_block(io->in->psize);
	ssize_t n;
	int r;

	if (blk > final) {
		memset(pt, 0, CK_BLOCK_SIZE);
		return 0;
	}
	n = pread_full(io->in->fd, ct, CK_CBLOCK_SIZE, (off_t)ck_block_offset(blk));
	if (n < 0)
		return (int)n;
	if (n != CK_CBLOCK_SIZE)
		return corrupt(io, blk, "is missing (the backing file was truncated)");
	if ((r = open_block(io, blk, blk == final, ct, pt)) < 0)
		return r;
	/* Past the size, the final block is zeros: bytes there can only be
	 * left by an interrupted write, and must not reappear. */
	if (blk == final) {
		size_t keep = (size_t)(io->in->psize - final * CK_BLOCK_SIZE);
		memset(pt + keep, 0, CK_BLOCK_SIZE - keep);
	}
	return 0;
}

/* Blocks after the final one (authentic leftovers of an interrupted
 * operation, accepted at open) must go before the file grows over them. */
static int trim_leftovers(struct io *io)
{
	struct stat st;
	uint64_t want = ck_backing_size(io->in->psize);

	if (fstat(io->in->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > want && ftruncate(io->in->fd, (off_t)want) < 0)
		return -errno;
	return 0;
}

static int seal_write(struct io *io, uint64_t blk, int last, const uint8_t *pt)
{
	uint8_t ct[CK_CBLOCK_SIZE];
	int r;

	if ((r = ck_block_seal(io->g, &io->ref, blk, last, pt, CK_BLOCK_SIZE, ct)) < 0)
		return r;
	return pwrite_full(io->in->fd, ct, CK_CBLOCK_SIZE, (off_t)ck_block_offset(blk));
}

/* Read, change and write back the header (flags or size) with the open
 * file's keys. */
static int hdr_update(struct io *io, int set_sparse, const uint64_t *new_size)
{
	struct ck_inode *in = io->in;
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_hdr h;
	struct ck_gcm *sg = NULL;
	ssize_t n;
	int r;

	/* Under the write lock since wio_begin read it, the header on disk is
	 * the one last seen: no need to read it again. */
	if (io->hdr_fresh && in->hdr_seen_ok) {
		memcpy(raw, in->hdr_seen, sizeof(raw));
		n = (ssize_t)sizeof(raw);
	} else if ((n = pread_full(in->fd, raw, sizeof(raw), 0)) < 0) {
		return (int)n;
	}
	if (ck_file_hdr_parse(raw, (size_t)n, &h) < 0 || hdr_check(in, raw, &io->ref) < 0)
		return corrupt(io, 0, "(the file header) failed authentication");
	if (set_sparse)
		h.flags |= CK_FILE_SPARSE;
	if (new_size) {
		if ((r = ck_gcm_pool_get(in->keys.size_gcm, &sg)) < 0)
			return r;
		r = ck_file_size_seal(sg, &io->ref, *new_size, h.size_box);
		ck_gcm_pool_put(in->keys.size_gcm, sg);
		if (r < 0)
			return r;
	}
	{
		uint8_t out[CK_FILE_HDR_LEN];
		in->hdr_seen_ok = 0;
		if ((r = ck_file_hdr_encode(&h, &io->ref, in->keys.header, out)) < 0 ||
		    (r = pwrite_full(in->fd, out, sizeof(out), 0)) < 0)
			return r;
		hdr_remember(in, out);
	}
	in->hdr_flags = h.flags;
	if (new_size)
		in->psize = *new_size;
	return 0;
}

static int set_sparse(struct io *io)
{
	return io->in->hdr_flags & CK_FILE_SPARSE ? 0 : hdr_update(io, 1, NULL);
}

static int set_size(struct io *io, uint64_t size)
{
	return hdr_update(io, 0, &size);
}

/* Begin a change of in's blocks or header: io exclusive, the write lock,
 * then (io_begin) the apply lock; the size and flags re-read from the
 * header, as another host may have changed them since this one read it
 * (follow_header does that while the tree is applied). On success the
 * caller ends with wio_end. */
static int wio_begin(struct io *io, struct ck_inode *in)
{
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_hdr h;
	struct ck_gcm *g = NULL;
	uint64_t size;
	int r;

	memset(io, 0, sizeof(*io));
	if ((r = wlock(in->fd)) < 0)
		return r;
	if ((r = io_begin(io, in)) < 0 || io->locked)
		return r;
	if (pread_full(in->fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) ||
	    ck_file_hdr_parse(raw, sizeof(raw), &h) < 0 ||
	    hdr_check(in, raw, &io->ref) < 0 ||
	    (r = ck_gcm_pool_get(in->keys.size_gcm, &g)) < 0 ||
	    ck_file_size_open(g, &io->ref, h.size_box, &size) < 0) {
		if (g)
			ck_gcm_pool_put(in->keys.size_gcm, g);
		return r < 0 ? r : corrupt(io, 0, "(the file header) failed authentication");
	}
	ck_gcm_pool_put(in->keys.size_gcm, g);
	in->psize = size;
	in->hdr_flags = h.flags;
	io->hdr_fresh = 1;              /* hdr_check left raw in in->hdr_seen */
	io->pcs_have = fstat(in->fd, &io->pcs_before) == 0;
	return 0;
}

static void wio_end(struct io *io)
{
	int fd = io->in ? io->in->fd : -1;

	/* With the writeback cache the kernel keeps the file's times and
	 * sends them (setattr) when it changes them; the daemon writing pages
	 * back later must not move the backing mtime past the kernel's. */
	if (io->pcs_have && ck.writeback) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, io->pcs_before.st_mtim };
		(void)futimens(fd, ts);
	}
	if (io->in)
		pcs_follow(io->in, fd, io->pcs_have ? &io->pcs_before : NULL);
	io_end(io);
	if (fd >= 0)
		wunlock(fd);
}

int ck_file_refresh(struct ck_inode *in)
{
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_hdr h;
	struct io io;
	uint64_t size;
	struct ck_gcm *g = NULL;
	int r;

	pthread_rwlock_wrlock(&in->io);
	if ((r = io_begin(&io, in)) < 0)
		goto out;
	if (io.locked)
		goto out;       /* follow_header has just done it */
	if (pread_full(in->fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) ||
	    ck_file_hdr_parse(raw, sizeof(raw), &h) < 0 ||
	    hdr_check(in, raw, &io.ref) < 0 ||
	    (r = ck_gcm_pool_get(in->keys.size_gcm, &g)) < 0 ||
	    ck_file_size_open(g, &io.ref, h.size_box, &size) < 0) {
		r = r < 0 ? r : corrupt(&io, 0, "(the file header) failed authentication");
		goto out;
	}
	in->psize = size;
	in->hdr_flags = h.flags;
out:
	if (g)
		ck_gcm_pool_put(in->keys.size_gcm, g);
	io_end(&io);
	pthread_rwlock_unlock(&in->io);
	return r;
}

/* Reads go to the backing file in slices of CK_SLICE blocks: one backing
 * read per slice, and a ciphertext buffer of a slice, not of the request
 * (1 MiB reads in every worker thread would otherwise keep a megabyte more
 * each: the daemon's memory is locked, so malloc cannot give it back).
 * Writes seal a whole request before writing it (write_locked). */
#define CK_SLICE 32

ssize_t ck_file_read(struct ck_inode *in, char *buf, size_t size, off_t off)
{
	struct io io;
	uint64_t b0, b1, final, end, psize;
	uint8_t *cbuf = NULL, pt[CK_BLOCK_SIZE];
	size_t done = 0;
	ssize_t r;

	if ((r = io_lock_read_begin(&io, in)) < 0)
		goto out;
	psize = in->psize;
	if (off < 0 || (uint64_t)off >= psize || size == 0) {
		r = 0;
		goto out;
	}
	end = (uint64_t)off + size < psize ? (uint64_t)off + size : psize;
	b0 = (uint64_t)off / CK_BLOCK_SIZE;
	b1 = (end - 1) / CK_BLOCK_SIZE;
	final = ck_final_block(psize);
	if (!(cbuf = malloc((size_t)CK_SLICE * CK_CBLOCK_SIZE))) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t s0 = b0; s0 <= b1; s0 += CK_SLICE) {
		uint64_t s1 = s0 + CK_SLICE - 1 < b1 ? s0 + CK_SLICE - 1 : b1;
		size_t clen = (size_t)((s1 - s0 + 1) * CK_CBLOCK_SIZE);

		if ((r = pread_full(in->fd, cbuf, clen, (off_t)ck_block_offset(s0))) < 0)
			goto out;
		if ((size_t)r != clen) {
			r = corrupt(&io, s0 + (uint64_t)r / CK_CBLOCK_SIZE,
			            "is missing (the backing file was truncated)");
			goto out;
		}
		for (uint64_t b = s0; b <= s1; b++) {
			uint64_t bstart = b * CK_BLOCK_SIZE;
			uint64_t from = bstart > (uint64_t)off ? bstart : (uint64_t)off;
			uint64_t to = bstart + CK_BLOCK_SIZE < end ? bstart + CK_BLOCK_SIZE : end;

			if ((r = open_block(&io, b, b == final, cbuf + (b - s0) * CK_CBLOCK_SIZE, pt)) < 0)
				goto out;
			memcpy(buf + done, pt + (from - bstart), (size_t)(to - from));
			done += (size_t)(to - from);
		}
	}
	r = (ssize_t)done;
out:
	ck_wipe(pt, sizeof(pt));
	free(cbuf);
	io_end(&io);
	pthread_rwlock_unlock(&in->io);
	return r;
}

/* Write size bytes of buf (NULL: zeros) at off. Caller holds io exclusive. */
static ssize_t write_locked(struct io *io, const char *buf, size_t size, uint64_t off)
{
	struct ck_inode *in = io->in;
	uint64_t psize = in->psize, end = off + size, old_final, new_final, new_size, b0, b1;
	uint8_t *cbuf = NULL, pt[CK_BLOCK_SIZE], opt[CK_BLOCK_SIZE];
	size_t clen = 0;
	int r;

	if (size == 0)
		return 0;
	if (end < off || end > (uint64_t)INT64_MAX / 2)
		return -EFBIG;
	old_final = ck_final_block(psize);
	new_size = end > psize ? end : psize;
	new_final = ck_final_block(new_size);
	b0 = off / CK_BLOCK_SIZE;
	b1 = (end - 1) / CK_BLOCK_SIZE;

	if (b0 > old_final + 1 && (r = set_sparse(io)) < 0)
		return r;
	if (new_final > old_final && (r = trim_leftovers(io)) < 0)
		return r;
	/* The old final block as it reads now (zeros past the old size), for
	 * step 3 when it is outside the range written here. */
	if (b0 > old_final && (r = read_block(io, old_final, opt)) < 0)
		return r;
	/* All blocks are sealed before the first byte is written (one
	 * write): a daemon killed while sealing leaves nothing behind, and
	 * one killed in the write leaves at most one cut (ck-fsck). */
	if (!(cbuf = malloc((size_t)(b1 - b0 + 1) * CK_CBLOCK_SIZE)))
		return -ENOMEM;
	/* Step 1: the blocks; the old final block keeps its mark for now. */
	for (uint64_t b = b0; b <= b1; b++) {
		uint64_t bstart = b * CK_BLOCK_SIZE;
		uint64_t from = bstart > off ? bstart : off;
		uint64_t to = bstart + CK_BLOCK_SIZE < end ? bstart + CK_BLOCK_SIZE : end;
		const uint8_t *src = pt;

		if (from == bstart && to == bstart + CK_BLOCK_SIZE && buf) {
			src = (const uint8_t *)buf + (from - off);
		} else {
			if (b <= old_final && (from > bstart || to < bstart + CK_BLOCK_SIZE)) {
				if ((r = read_block(io, b, pt)) < 0)
					goto out;
			} else {
				memset(pt, 0, sizeof(pt));
			}
			if (buf)
				memcpy(pt + (from - bstart), buf + (from - off), (size_t)(to - from));
			else
				memset(pt + (from - bstart), 0, (size_t)(to - from));
		}
		if ((r = ck_block_seal(io->g, &io->ref, b, b == new_final || b == old_final,
		                       src, CK_BLOCK_SIZE, cbuf + clen)) < 0)
			goto out;
		clen += CK_CBLOCK_SIZE;
	}
	if ((r = pwrite_full(in->fd, cbuf, clen, (off_t)ck_block_offset(b0))) < 0) {
		/* ENOSPC half-way: what was written past the size is not kept. */
		if (new_final > old_final)
			(void)trim_leftovers(io);
		goto out;
	}
	/* Step 2: the new size. */
	if (new_size != psize && (r = set_size(io, new_size)) < 0)
		goto out;
	/* Step 3: the old final block is no longer final. */
	if (new_final > old_final) {
		if (b0 <= old_final && (r = read_block(io, old_final, opt)) < 0)
			goto out;
		if ((r = seal_write(io, old_final, 0, opt)) < 0)
			goto out;
	}
	r = 0;
out:
	ck_wipe(pt, sizeof(pt));
	ck_wipe(opt, sizeof(opt));
	free(cbuf);
	return r < 0 ? r : (ssize_t)size;
}

ssize_t ck_file_write(struct ck_inode *in, const char *buf, size_t size, off_t off, int append)
{
	struct io io;
	ssize_t r;

	pthread_rwlock_wrlock(&in->io);
	if ((r = wio_begin(&io, in)) == 0) {
		if (append)
			off = (off_t)in->psize;
		r = off < 0 ? -EINVAL : write_locked(&io, buf, size, (uint64_t)off);
	}
	wio_end(&io);
	pthread_rwlock_unlock(&in->io);
	return r;
}

static int truncate_locked(struct io *io, uint64_t size)
{
	struct ck_inode *in = io->in;
	uint64_t psize = in->psize, new_final = ck_final_block(size);
	uint8_t pt[CK_BLOCK_SIZE];
	struct stat st;
	int r = 0;

	if (size > (uint64_t)INT64_MAX / 2)
		return -EFBIG;
	if (size == psize) {
		/* POSIX: a successful truncate updates mtime even when the
		 * size does not change. */
		if (fstat(in->fd, &st) < 0 || ftruncate(in->fd, st.st_size) < 0)
			return -errno;
		return 0;
	}
	if (size > psize) {
		/* Bytes past the old size are zeros already (the final block
		 * is zero-padded); growth past the final block writes the new
		 * final block, the ones between are holes. */
		if (new_final == ck_final_block(psize)) {
			/* Rewrite the block so that nothing but zeros lies
			 * between the old and the new size. */
			if ((r = read_block(io, new_final, pt)) < 0 ||
			    (r = seal_write(io, new_final, 1, pt)) < 0)
				goto out;
			r = set_size(io, size);
			goto out;
		}
		uint64_t from = new_final * CK_BLOCK_SIZE;
		ssize_t w = write_locked(io, NULL, (size_t)(size - from), from);
		return w < 0 ? (int)w : 0;
	}
	if ((r = read_block(io, new_final, pt)) < 0)
		goto out;
	memset(pt + (size - new_final * CK_BLOCK_SIZE), 0,
	       CK_BLOCK_SIZE - (size_t)(size - new_final * CK_BLOCK_SIZE));
	if ((r = seal_write(io, new_final, 1, pt)) < 0 || (r = set_size(io, size)) < 0)
		goto out;
	if (ftruncate(in->fd, (off_t)ck_backing_size(size)) < 0)
		r = -errno;
out:
	ck_wipe(pt, sizeof(pt));
	return r;
}

int ck_file_truncate(struct ck_inode *in, off_t size)
{
	struct io io;
	int r;

	if (size < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&in->io);
	if ((r = wio_begin(&io, in)) == 0)
		r = truncate_locked(&io, (uint64_t)size);
	wio_end(&io);
	pthread_rwlock_unlock(&in->io);
	return r;
}

int ck_file_fallocate(struct ck_inode *in, int mode, off_t off, off_t len)
{
	struct io io;
	uint64_t psize, end;
	int r;

	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EINVAL;
	end = (uint64_t)off + (uint64_t)len;
	if (end > (uint64_t)INT64_MAX / 2)
		return -EFBIG;
	pthread_rwlock_wrlock(&in->io);
	if ((r = wio_begin(&io, in)) < 0)
		goto out;
	psize = in->psize;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		uint64_t final = ck_final_block(psize);
		if ((uint64_t)off >= psize)
			goto out;
		if (end > psize)
			end = psize;
		/* Whole blocks before the final one become holes; the edges and
		 * the final block are written as zeros. */
		uint64_t hb0 = ((uint64_t)off + CK_BLOCK_SIZE - 1) / CK_BLOCK_SIZE;
		uint64_t hb1 = end / CK_BLOCK_SIZE;        /* exclusive */
		if (hb1 > final)
			hb1 = final;
		if (hb0 < hb1) {
			if ((r = set_sparse(&io)) < 0)
				goto out;
			if (fallocate(in->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			              (off_t)ck_block_offset(hb0),
			              (off_t)((hb1 - hb0) * CK_CBLOCK_SIZE)) < 0) {
				r = -errno;
				goto out;
			}
			if ((uint64_t)off < hb0 * CK_BLOCK_SIZE &&
			    (r = (int)write_locked(&io, NULL, (size_t)(hb0 * CK_BLOCK_SIZE - (uint64_t)off),
			                            (uint64_t)off)) < 0)
				goto out;
			if (end > hb1 * CK_BLOCK_SIZE &&
			    (r = (int)write_locked(&io, NULL, (size_t)(end - hb1 * CK_BLOCK_SIZE),
			                            hb1 * CK_BLOCK_SIZE)) < 0)
				goto out;
		} else if ((r = (int)write_locked(&io, NULL, (size_t)(end - (uint64_t)off),
		                                  (uint64_t)off)) < 0) {
			goto out;
		}
		r = 0;
		goto out;
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > psize && (r = truncate_locked(&io, end)) < 0)
		goto out;
	/* Reserve the backing space so later writes do not hit ENOSPC. */
	{
		uint64_t b0 = (uint64_t)off / CK_BLOCK_SIZE, b1 = (end - 1) / CK_BLOCK_SIZE;
		if (fallocate(in->fd, FALLOC_FL_KEEP_SIZE, (off_t)ck_block_offset(b0),
		              (off_t)((b1 - b0 + 1) * CK_CBLOCK_SIZE)) < 0 && errno != EOPNOTSUPP) {
			r = -errno;
			goto out;
		}
	}
	r = 0;
out:
	wio_end(&io);
	pthread_rwlock_unlock(&in->io);
	return r;
}
