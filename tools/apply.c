/* The apply step ("the mailbox move"): re-encrypt a tree from the keys of
 * tree o (the service tree, or the tree's previous DEP) to those of tree n.
 *
 * Online: ckfs mounts see the tree record in state "applying" and serve it
 * with both key sets (fs/trees.c). We convert one object at a time under an
 * exclusive OFD lock on it (the file itself, or the directory's .ckfs.dir
 * while renaming its entries); the daemon takes the same locks shared
 * around its own use of the object, so neither sees the other half-done.
 * Files are converted in place (same backing inode, so open descriptors in
 * the daemon stay valid): blocks first, header last.
 *
 * Resumable: every step is idempotent. A file whose header names tree n is
 * done; a block that authenticates under n is done; a name that decrypts
 * under n is done. After a crash, re-running converts what is left. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "keys/format.h"
#include "keys/names.h"
#include "keys/secmem.h"
#include "keys/util.h"
#include "tools/apply.h"
#include "tools/common.h"

struct link_names {
	dev_t dev;
	ino_t ino;
	size_t n;
	uint8_t dirid[CK_MAX_LINKS][CK_ID_LEN];
	char name[CK_MAX_LINKS][CK_NAME_MAX + 1];
};

struct ctx {
	const struct ck_volume *v;
	/* Sidecars of long names renamed here, removed at the end: a listing
	 * that a mount read just before the rename still names them. */
	char **stale;
	size_t nstale, capstale;
	int rootfd;
	struct ck_tree *o, *n;
	struct link_names *links;
	size_t nlinks, cap;
	struct apply_stats *st;
	int json, tty;
	struct timespec last;
	struct pbar bar;                /* tools/common.c; drawn when tty */
};

static int lock_fd(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void problem(struct ctx *c, const char *fmt, const char *what)
	__attribute__((format(printf, 2, 0)));
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void problem(struct ctx *c, const char *fmt, const char *what)
{
	pbar_clear(&c->bar);
	fprintf(stderr, "ck-assign: ");
	fprintf(stderr, fmt, what);
	fputc('\n', stderr);
	c->st->problems++;
}

static void progress(struct ctx *c, int final)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && now.tv_sec == c->last.tv_sec && now.tv_nsec - c->last.tv_nsec < 200000000L)
		return;
	if (!final && c->json && now.tv_sec == c->last.tv_sec)
		return;
	c->last = now;
	if (c->json)
		printf("{\"version\":1,\"progress\":{\"files_done\":%llu,\"files_total\":%llu,\"bytes_done\":%llu,"
		       "\"bytes_total\":%llu}}\n", (unsigned long long)c->st->done_files,
		       (unsigned long long)c->st->files, (unsigned long long)c->st->done_bytes,
		       (unsigned long long)c->st->bytes);
	if (c->tty) {
		char files[64];
		snprintf(files, sizeof(files), "%llu/%llu files", (unsigned long long)c->st->done_files,
		         (unsigned long long)c->st->files);
		c->bar.done = c->st->done_bytes;
		if (final)
			pbar_done(&c->bar, files);
		else
			pbar_update(&c->bar, c->st->done_bytes, c->st->bytes, files);
	}
	fflush(stdout);
}

static int read_dirid(int dirfd, uint8_t id[CK_ID_LEN])
{
	uint8_t buf[CK_DIRID_LEN + 1];
	int fd = openat(dirfd, CK_DIRID_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n < 0 ? -EIO : ck_dirid_decode(buf, (size_t)n, id);
}

/* The full encoded name of a backing entry (reading a long name's sidecar). */
static int full_name(int dirfd, const char *entry, char *out, size_t size)
{
	char side[CK_LONG_NAME_LEN + 1];
	ssize_t n;
	int fd;

	if (strncmp(entry, CK_LONG_PREFIX, 2)) {
		snprintf(out, size, "%s", entry);
		return 0;
	}
	snprintf(side, sizeof(side), "%s%s", CK_SIDE_PREFIX, entry + 2);
	if ((fd = openat(dirfd, side, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	n = read(fd, out, size - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	out[n] = '\0';
	return 0;
}

/* Decode an entry's name under n (*is_new = 1) or o. */
static int decode(struct ctx *c, int dirfd, const uint8_t dirid[CK_ID_LEN], const char *entry,
                  char name[CK_NAME_MAX + 1], int *is_new)
{
	char full[CK_ENC_NAME_MAX + 1];

	if (full_name(dirfd, entry, full, sizeof(full)) < 0)
		return -EIO;
	*is_new = 1;
	if (ck_name_decrypt(c->n, dirid, full, strlen(full), name) >= 0)
		return 0;
	*is_new = 0;
	return ck_name_decrypt(c->o, dirid, full, strlen(full), name) >= 0 ? 0 : -EBADMSG;
}

static int user_entry(const char *e)
{
	return e[0] != '.' || !strncmp(e, CK_LONG_PREFIX, 2);
}

/* Entries of a directory, excluding ckfs metadata; NULL-terminated. */
static char **list_dir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !user_entry(e->d_name))
			continue;
		if (n + 2 > cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **q = realloc(v, nc * sizeof(*q));
			if (!q)
				break;
			v = q;
			cap = nc;
		}
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (!v && (v = calloc(1, sizeof(*v))))
		return v;
	if (v)
		v[n] = NULL;
	return v;
}

static void free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static struct link_names *link_find(struct ctx *c, dev_t dev, ino_t ino, int add)
{
	for (size_t i = 0; i < c->nlinks; i++)
		if (c->links[i].dev == dev && c->links[i].ino == ino)
			return &c->links[i];
	if (!add)
		return NULL;
	if (c->nlinks == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		struct link_names *q = realloc(c->links, nc * sizeof(*q));
		if (!q)
			return NULL;
		c->links = q;
		c->cap = nc;
	}
	struct link_names *l = &c->links[c->nlinks++];
	memset(l, 0, sizeof(*l));
	l->dev = dev;
	l->ino = ino;
	return l;
}

/* Add (dirid, name) to a file's candidate names, once. */
static void cand_add(struct link_names *l, const uint8_t dirid[CK_ID_LEN], const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!memcmp(l->dirid[i], dirid, CK_ID_LEN) && !strcmp(l->name[i], name))
			return;
	if (l->n == CK_MAX_LINKS)
		return;
	memcpy(l->dirid[l->n], dirid, CK_ID_LEN);
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	l->n++;
}

/* How many of h's bindings (under the old header key) no candidate name
 * explains; bound[i] (if not NULL) says whether candidate i is bound. */
static int bindings_explained(const struct ck_file_hdr *h, const uint8_t *old_hdr_key,
                              const struct link_names *cand, int *bound)
{
	int seen[CK_MAX_LINKS] = { 0 }, left = 0;

	for (size_t i = 0; i < cand->n; i++) {
		uint8_t b[CK_BINDING_LEN];
		int r = ck_binding(old_hdr_key, cand->dirid[i], cand->name[i], strlen(cand->name[i]), b);
		if (r < 0)
			return r;
		if (bound)
			bound[i] = 0;
		for (int j = 0; j < h->n_bind && j < CK_MAX_LINKS; j++)
			if (!memcmp(h->bind[j], b, CK_BINDING_LEN)) {
				seen[j] = 1;
				if (bound)
					bound[i] = 1;
			}
	}
	for (int j = 0; j < h->n_bind && j < CK_MAX_LINKS; j++)
		left += !seen[j];
	return left;
}

/* Every name of the regular file (dev, ino) in the tree under dirfd. */
static void find_names(struct ctx *c, int dirfd, dev_t dev, ino_t ino, struct link_names *out,
                       int depth)
{
	uint8_t dirid[CK_ID_LEN];
	char **ents, name[CK_NAME_MAX + 1];
	int is_new;

	if (depth > 4096 || read_dirid(dirfd, dirid) < 0 || !(ents = list_dir(dirfd)))
		return;
	for (size_t i = 0; ents[i]; i++) {
		struct stat st;
		if (fstatat(dirfd, ents[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_dev == dev && st.st_ino == ino &&
		    decode(c, dirfd, dirid, ents[i], name, &is_new) == 0) {
			cand_add(out, dirid, name);
		} else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, ents[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0) {
				find_names(c, fd, dev, ino, out, depth + 1);
				close(fd);
			}
		}
	}
	free_list(ents);
}

/* Pass 1: count, and collect every name of hard-linked files (their
 * header's bindings are rebuilt from all of them). */
static int scan(struct ctx *c, int dirfd, int depth)
{
	uint8_t dirid[CK_ID_LEN];
	char **ents, name[CK_NAME_MAX + 1];
	int is_new;

	if (depth > 4096 || read_dirid(dirfd, dirid) < 0)
		return -EIO;
	if (!(ents = list_dir(dirfd)))
		return -errno ? -errno : -EIO;
	c->st->dirs++;
	for (size_t i = 0; ents[i]; i++) {
		struct stat st;
		if (fstatat(dirfd, ents[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			c->st->files++;
			c->st->bytes += (uint64_t)st.st_size;
			if (st.st_nlink > 1 && decode(c, dirfd, dirid, ents[i], name, &is_new) == 0) {
				struct link_names *l = link_find(c, st.st_dev, st.st_ino, 1);
				if (l && l->n < CK_MAX_LINKS) {
					memcpy(l->dirid[l->n], dirid, CK_ID_LEN);
					snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
					l->n++;
				}
			}
		} else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, ents[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0) {
				scan(c, fd, depth + 1);
				close(fd);
			}
		}
	}
	free_list(ents);
	return 0;
}

static ssize_t pread_all(int fd, void *b, size_t n, off_t off)
{
	size_t d = 0;
	while (d < n) {
		ssize_t r = pread(fd, (char *)b + d, n - d, off + (off_t)d);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : (ssize_t)d;
		d += (size_t)r;
	}
	return (ssize_t)d;
}

static int pwrite_all(int fd, const void *b, size_t n, off_t off)
{
	size_t d = 0;
	while (d < n) {
		ssize_t r = pwrite(fd, (const char *)b + d, n - d, off + (off_t)d);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		d += (size_t)r;
	}
	return 0;
}

/* Re-encrypt one regular file in place: blocks, then the header. */
static int convert_file(struct ctx *c, int dirfd, const char *entry, const uint8_t dirid[CK_ID_LEN],
                        const char *name, const char *shown)
{
	uint8_t raw[CK_FILE_HDR_LEN], ct[CK_CBLOCK_SIZE], pt[CK_BLOCK_SIZE];
	struct ck_file_keys ok = { 0 }, nk = { 0 };
	struct ck_gcm *og = NULL, *ng = NULL, *osg = NULL, *nsg = NULL;
	struct ck_file_hdr h;
	struct ck_file_ref oref, nref;
	struct stat st;
	uint64_t size = 0;
	int fd, r;

	fd = openat(dirfd, entry, O_RDWR | O_NOATIME | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if ((r = lock_fd(fd, F_WRLCK)) < 0 || fstat(fd, &st) < 0) {
		r = r < 0 ? r : -errno;
		goto out;
	}
	if (pread_all(fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) ||
	    ck_file_hdr_parse(raw, sizeof(raw), &h) < 0) {
		problem(c, "%s: file header is corrupt; left as it is", shown);
		r = 0;
		goto out;
	}
	if (!memcmp(h.tree_id, c->n->id, CK_ID_LEN)) {
		r = 0;          /* converted already */
		goto done;
	}
	if (memcmp(h.tree_id, c->o->id, CK_ID_LEN)) {
		problem(c, "%s: file belongs to neither the old nor the new tree; left as it is", shown);
		r = 0;
		goto out;
	}
	oref = (struct ck_file_ref){ c->o->volume_id, c->o->id, h.file_id };
	nref = (struct ck_file_ref){ c->n->volume_id, c->n->id, h.file_id };
	if ((r = ck_file_keys_derive(c->o, h.file_id, &ok)) < 0 ||
	    (r = ck_file_keys_derive(c->n, h.file_id, &nk)) < 0 ||
	    (r = ck_gcm_new(&og, ok.content)) < 0 || (r = ck_gcm_new(&ng, nk.content)) < 0 ||
	    (r = ck_gcm_new(&osg, ok.size)) < 0 || (r = ck_gcm_new(&nsg, nk.size)) < 0)
		goto out;
	if (ck_file_hdr_verify(raw, &oref, ok.header) < 0 ||
	    ck_file_size_open(osg, &oref, h.size_box, &size) < 0) {
		problem(c, "%s: file header failed authentication; left as it is", shown);
		r = 0;
		goto out;
	}
	uint64_t final = ck_final_block(size);
	for (uint64_t b = 0; b <= final; b++) {
		ssize_t n = pread_all(fd, ct, sizeof(ct), (off_t)ck_block_offset(b));
		int last = b == final;
		if (n != (ssize_t)sizeof(ct)) {
			problem(c, "%s: file is shorter than its size says; left as it is", shown);
			goto out;
		}
		if (!last && ck_block_is_hole(ct, sizeof(ct)))
			continue;
		if (ck_block_open(og, &oref, b, last, ct, sizeof(ct), pt) < 0 &&
		    (last || ck_block_open(og, &oref, b, 1, ct, sizeof(ct), pt) < 0)) {
			if (ck_block_open(ng, &nref, b, last, ct, sizeof(ct), pt) >= 0 ||
			    (!last && ck_block_open(ng, &nref, b, 1, ct, sizeof(ct), pt) >= 0))
				continue;       /* converted by an earlier, interrupted run */
			problem(c, "%s: a block fails authentication under both keys; left as it is", shown);
			continue;
		}
		if ((r = ck_block_seal(ng, &nref, b, last, pt, CK_BLOCK_SIZE, ct)) < 0 ||
		    (r = pwrite_all(fd, ct, sizeof(ct), (off_t)ck_block_offset(b))) < 0)
			goto out;
	}
	/* Leftovers of an interrupted growth are not part of the file. */
	if ((uint64_t)st.st_size > ck_backing_size(size) &&
	    ftruncate(fd, (off_t)ck_backing_size(size)) < 0) {
		r = -errno;
		goto out;
	}
	/* The header last: it names the tree whose keys now hold the file.
	 * It keeps the old header's bindings, each under the new key: for
	 * that we need the name behind each one. Candidates are this entry
	 * and the names the scan found; a binding none of them explains is a
	 * name given since the scan (a link or rename on a mount), found by
	 * walking the tree again. A candidate the old header does not bind is
	 * not bound now either; a binding whose name no longer exists goes. */
	struct link_names cand, *scanned = link_find(c, st.st_dev, st.st_ino, 0);
	memset(&cand, 0, sizeof(cand));
	cand_add(&cand, dirid, name);
	for (size_t i = 0; scanned && i < scanned->n; i++)
		cand_add(&cand, scanned->dirid[i], scanned->name[i]);
	int unexplained = bindings_explained(&h, ok.header, &cand, NULL);
	if (unexplained > 0) {
		find_names(c, c->rootfd, st.st_dev, st.st_ino, &cand, 0);
		unexplained = bindings_explained(&h, ok.header, &cand, NULL);
	}
	if (unexplained < 0) {
		r = unexplained;
		goto out;
	}
	{
		int bound[CK_MAX_LINKS];
		bindings_explained(&h, ok.header, &cand, bound);
		h.n_bind = 0;
		memset(h.bind, 0, sizeof(h.bind));
		for (size_t i = 0; i < cand.n; i++) {
			uint8_t bnd[CK_BINDING_LEN];
			if (!bound[i])
				continue;
			if ((r = ck_binding(nk.header, cand.dirid[i], cand.name[i], strlen(cand.name[i]),
			                    bnd)) < 0 || (r = ck_file_hdr_add_binding(&h, bnd)) < 0)
				goto out;
		}
	}
	if ((r = ck_file_size_seal(nsg, &nref, size, h.size_box)) < 0 ||
	    (r = ck_file_hdr_encode(&h, &nref, nk.header, raw)) < 0 ||
	    (r = pwrite_all(fd, raw, sizeof(raw), 0)) < 0)
		goto out;
	{
		struct timespec ts[2] = { st.st_atim, st.st_mtim };
		futimens(fd, ts);
	}
	c->st->converted++;
done:
	c->st->done_files++;
	c->st->done_bytes += (uint64_t)st.st_size;
	r = 0;
out:
	ck_wipe(pt, sizeof(pt));
	ck_gcm_free(og);
	ck_gcm_free(ng);
	ck_gcm_free(osg);
	ck_gcm_free(nsg);
	ck_file_keys_release(&ok);
	ck_file_keys_release(&nk);
	close(fd);      /* drops the lock */
	return r;
}

static int convert_symlink(struct ctx *c, int dirfd, const char *entry, const char *shown)
{
	char enc[4097], target[CK_SYMLINK_MAX + 1], nenc[4097], tmp[64];
	uint8_t rnd[8];
	struct stat st;
	ssize_t n = readlinkat(dirfd, entry, enc, sizeof(enc) - 1);
	int r;

	if (n < 0)
		return -errno;
	enc[n] = '\0';
	if (ck_symlink_decrypt(c->n, enc, (size_t)n, target, sizeof(target)) >= 0)
		return 0;
	if ((r = ck_symlink_decrypt(c->o, enc, (size_t)n, target, sizeof(target))) < 0) {
		problem(c, "%s: symlink target fails authentication; left as it is", shown);
		return 0;
	}
	if ((r = ck_symlink_encrypt(c->n, target, (size_t)r, nenc, sizeof(nenc))) < 0 ||
	    (r = ck_random(rnd, sizeof(rnd))) < 0 || fstatat(dirfd, entry, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return r < 0 ? r : -errno;
	snprintf(tmp, sizeof(tmp), ".ckfs.tmp.%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
	         rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (symlinkat(nenc, dirfd, tmp) < 0)
		return -errno;
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	if (fchownat(dirfd, tmp, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    utimensat(dirfd, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0 || renameat(dirfd, tmp, dirfd, entry) < 0) {
		r = -errno;
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return 0;
}

static int convert_xattrs(struct ctx *c, int dirfd, const char *entry)
{
	char path[64], *list = NULL, name[XATTR_NAME_MAX + 1], nb[XATTR_NAME_MAX + 1];
	uint8_t *val = NULL, *pt = NULL, *enc = NULL;
	int fd = openat(dirfd, entry, O_PATH | O_NOFOLLOW | O_CLOEXEC), r = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = listxattr(path, NULL, 0);
	if (n <= 0)
		goto out;
	if (!(list = malloc((size_t)n)) || (n = listxattr(path, list, (size_t)n)) < 0)
		goto out;
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		if (strncmp(p, CK_XATTR_PREFIX, strlen(CK_XATTR_PREFIX)) ||
		    ck_xattr_name_decrypt(c->n, p, name, sizeof(name)) >= 0 ||
		    ck_xattr_name_decrypt(c->o, p, name, sizeof(name)) < 0)
			continue;
		ssize_t vn = getxattr(path, p, NULL, 0);
		if (vn < CK_BLOCK_OVERHEAD)
			continue;
		free(val);
		free(pt);
		free(enc);
		val = malloc((size_t)vn);
		pt = malloc((size_t)vn);
		enc = malloc((size_t)vn);
		if (!val || !pt || !enc || getxattr(path, p, val, (size_t)vn) != vn)
			continue;
		int l = ck_xattr_value_decrypt(c->o, p, val, (size_t)vn, pt);
		if (l < 0 || ck_xattr_name_encrypt(c->n, name, nb, sizeof(nb)) < 0 ||
		    ck_xattr_value_encrypt(c->n, nb, pt, (size_t)l, enc) < 0)
			continue;
		if (setxattr(path, nb, enc, (size_t)l + CK_BLOCK_OVERHEAD, 0) == 0)
			removexattr(path, p);
		else
			r = -errno;
	}
out:
	free(list);
	free(val);
	free(pt);
	free(enc);
	close(fd);
	return r;
}

/* Give an entry its name under the new keys (the sidecar of a long name
 * first, so that a crash never leaves a nameless entry). */
static int rename_entry(struct ctx *c, int dirfd, const char *bpath, const uint8_t dirid[CK_ID_LEN],
                        const char *entry, const char *name, char *out, size_t out_size)
{
	char full[CK_ENC_NAME_MAX], le[CK_LONG_NAME_LEN + 1], side[CK_LONG_NAME_LEN + 1];
	const char *target = full;
	int r;

	if ((r = ck_name_encrypt(c->n, dirid, name, strlen(name), full)) < 0)
		return r;
	if (ck_name_is_long(strlen(full))) {
		if ((r = ck_long_names(full, strlen(full), le, side)) < 0)
			return r;
		int fd = openat(dirfd, side, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		if (write(fd, full, strlen(full)) != (ssize_t)strlen(full)) {
			close(fd);
			return -EIO;
		}
		close(fd);
		target = le;
	}
	if (ck_rename_noreplace(dirfd, entry, dirfd, target) < 0)
		return -errno;
	if (!strncmp(entry, CK_LONG_PREFIX, 2) && c->nstale + 1 < 1u << 20) {
		char path[8192];
		snprintf(side, sizeof(side), "%s%s", CK_SIDE_PREFIX, entry + 2);
		snprintf(path, sizeof(path), "%s%s%s", bpath, *bpath ? "/" : "", side);
		if (c->nstale == c->capstale) {
			size_t nc = c->capstale ? c->capstale * 2 : 16;
			char **q = realloc(c->stale, nc * sizeof(*q));
			if (!q) {
				unlinkat(dirfd, side, 0);
				goto done;
			}
			c->stale = q;
			c->capstale = nc;
		}
		c->stale[c->nstale++] = strdup(path);
	}
done:
	snprintf(out, out_size, "%s", target);
	return 0;
}

/* Pass 2: convert a directory's entries under its lock, then recurse. */
static int convert_dir(struct ctx *c, int dirfd, const char *bpath, const char *shown, int depth)
{
	uint8_t dirid[CK_ID_LEN];
	char **ents, **subs = NULL, name[CK_NAME_MAX + 1], path[4096], now[CK_ENC_NAME_MAX];
	size_t nsub = 0;
	int lk, r = 0, is_new;

	struct stat dst;
	if (depth > 4096 || read_dirid(dirfd, dirid) < 0 || fstat(dirfd, &dst) < 0) {
		problem(c, "%s: directory ID is missing or corrupt; skipped", shown);
		return 0;
	}
	lk = openat(dirfd, CK_DIRID_FILE, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (lk < 0 || lock_fd(lk, F_WRLCK) < 0) {
		r = -errno;
		if (lk >= 0)
			close(lk);
		return r;
	}
	if (!(ents = list_dir(dirfd))) {
		close(lk);
		return -EIO;
	}
	for (size_t i = 0; ents[i]; i++) {
		struct stat st;
		if (decode(c, dirfd, dirid, ents[i], name, &is_new) < 0) {
			snprintf(path, sizeof(path), "%s/%.40s", shown, ents[i]);
			problem(c, "%s...: name fails authentication under both keys; left as it is", path);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", shown, name);
		if (fstatat(dirfd, ents[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && (r = convert_file(c, dirfd, ents[i], dirid, name, path)) < 0)
			break;
		if (S_ISLNK(st.st_mode) && (r = convert_symlink(c, dirfd, ents[i], path)) < 0)
			break;
		if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
		    (r = convert_xattrs(c, dirfd, ents[i])) < 0)
			break;
		snprintf(now, sizeof(now), "%s", ents[i]);
		if (!is_new && (r = rename_entry(c, dirfd, bpath, dirid, ents[i], name, now,
		                                 sizeof(now))) < 0)
			break;
		if (S_ISDIR(st.st_mode)) {
			char **q = realloc(subs, (nsub + 2) * sizeof(*q));
			if (!q) {
				r = -ENOMEM;
				break;
			}
			subs = q;
			subs[nsub++] = strdup(now);
			subs[nsub++] = strdup(path);
		}
		progress(c, 0);
	}
	free_list(ents);
	/* Renaming entries is not a change of the directory's contents: keep
	 * its times (a user change during the apply loses its mtime bump). */
	{
		struct timespec ts[2] = { dst.st_atim, dst.st_mtim };
		futimens(dirfd, ts);
	}
	close(lk);
	for (size_t i = 0; r == 0 && i + 1 < nsub; i += 2) {
		int fd = openat(dirfd, subs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		char sub[8192];
		if (fd < 0)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", bpath, *bpath ? "/" : "", subs[i]);
		r = convert_dir(c, fd, sub, subs[i + 1], depth + 1);
		close(fd);
	}
	for (size_t i = 0; i < nsub; i++)
		free(subs[i]);
	free(subs);
	return r;
}

int ck_apply_tree(const struct ck_volume *v, const char *backing_root, const char *plain_root,
                  struct ck_tree *o, struct ck_tree *n, int json, int tty, struct apply_stats *st)
{
	struct ctx c = { .v = v, .o = o, .n = n, .json = json, .tty = tty, .st = st };
	int fd, r;

	pbar_init(&c.bar, "apply", "files", 1, 0);
	c.bar.on = tty;

	memset(st, 0, sizeof(*st));
	fd = openat(v->fd, backing_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	c.rootfd = fd;
	if ((r = scan(&c, fd, 0)) == 0) {
		progress(&c, 0);
		/* The root's own xattrs belong to the tree too. */
		if ((r = convert_xattrs(&c, fd, ".")) == 0)
			r = convert_dir(&c, fd, "", plain_root, 0);
	}
	for (size_t i = 0; i < c.nstale; i++) {
		char *slash = c.stale[i] ? strrchr(c.stale[i], '/') : NULL;
		struct stat dst;
		if (!c.stale[i])
			continue;
		/* Keep the directory's times, as for the renames. */
		if (slash)
			*slash = '\0';
		const char *dir = slash ? c.stale[i] : ".";
		int have = fstatat(fd, dir, &dst, 0) == 0;
		if (slash)
			*slash = '/';
		unlinkat(fd, c.stale[i], 0);
		if (have) {
			struct timespec ts[2] = { dst.st_atim, dst.st_mtim };
			if (slash)
				*slash = '\0';
			utimensat(fd, dir, ts, 0);
		}
		free(c.stale[i]);
	}
	free(c.stale);
	syncfs(fd);
	progress(&c, 1);
	close(fd);
	free(c.links);
	return r;
}
