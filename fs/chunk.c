/* File content: headers, block read-modify-write, truncate, fallocate.
 *
 * Invariants of a backing file (docs/FORMAT.md): a 256-byte header, then
 * blocks of CK_CBLOCK_SIZE bytes; every file has a final block (marked
 * "last" in its AAD, possibly empty only when it is block 0); every other
 * block is full. When a file grows past its final block we (1) pad the old
 * final block to a full block, still marked last, (2) write the new blocks,
 * (3) re-mark the old final block as not last. A crash between steps leaves
 * a readable file: a non-final block still marked last is accepted.
 *
 * Locking: callers of read take in->io shared; write, truncate, fallocate
 * and header updates take it exclusive. */
#include <errno.h>
#include <fcntl.h>
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

int64_t ck_file_plain_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return ck_plain_size((uint64_t)st.st_size);
}

static void ref_of(struct ck_tree *t, const uint8_t *file_id, struct ck_file_ref *ref)
{
	ref->volume_id = t->volume_id;
	ref->tree_id = t->id;
	ref->file_id = file_id;
}

/* Read, parse and verify a header; derives the file's keys into k. */
static int hdr_load(struct ck_tree *t, int fd, struct ck_file_hdr *h, struct ck_file_keys *k)
{
	uint8_t raw[CK_FILE_HDR_LEN];
	struct ck_file_ref ref;
	ssize_t n = pread_full(fd, raw, sizeof(raw), 0);
	int r;

	if (n < 0)
		return (int)n;
	if ((r = ck_file_hdr_parse(raw, (size_t)n, h)) < 0)
		return -EBADMSG;
	if ((r = ck_file_keys_derive(t, h->file_id, k)) < 0)
		return r;
	ref_of(t, h->file_id, &ref);
	if ((r = ck_file_hdr_verify(raw, &ref, k->header)) < 0) {
		ck_file_keys_release(k);
		return -EBADMSG;
	}
	return 0;
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

int ck_file_init(struct ck_inode *dir, const uint8_t dirid[static CK_ID_LEN], const char *name,
                 struct ck_tree *t, int fd)
{
	uint8_t buf[CK_FILE_HDR_LEN + CK_BLOCK_OVERHEAD];
	struct ck_file_hdr h = { .version = CK_FORMAT_VERSION, .kind = 1 };
	struct ck_file_keys k = { 0 };
	struct ck_file_ref ref;
	struct ck_gcm *g = NULL;
	int r;

	if ((r = ck_random(h.file_id, CK_ID_LEN)) < 0 ||
	    (r = ck_file_keys_derive(t, h.file_id, &k)) < 0)
		return r;
	ref_of(t, h.file_id, &ref);
	h.n_bind = 1;
	if ((r = ck_binding(k.header, dirid, name, strlen(name), h.bind[0])) < 0 ||
	    (r = ck_file_hdr_encode(&h, &ref, k.header, buf)) < 0 ||
	    (r = ck_gcm_new(&g, k.content)) < 0 ||
	    (r = ck_block_seal(g, &ref, 0, 1, NULL, 0, buf + CK_FILE_HDR_LEN)) < 0)
		goto out;
	r = pwrite_full(fd, buf, sizeof(buf), 0);
out:
	ck_gcm_free(g);
	ck_file_keys_release(&k);
	return r;
}

int ck_file_load(struct ck_inode *in, int fd, const uint8_t dirid[static CK_ID_LEN],
                 const char *name)
{
	struct ck_file_hdr h;
	uint8_t b[CK_BINDING_LEN];
	int r;

	if ((r = hdr_load(in->tree, fd, &h, &in->keys)) < 0) {
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
	memcpy(in->file_id, h.file_id, CK_ID_LEN);
	in->hdr_flags = h.flags;
	in->fd = fd;
	return 0;
fail:
	ck_file_keys_release(&in->keys);
	return r;
}

void ck_file_unload(struct ck_inode *in)
{
	ck_file_keys_release(&in->keys);
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

	if ((r = hdr_load(t, fd, &h, &k)) < 0)
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
	if ((r = hdr_load(t, fd, &h, &k)) < 0) {
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
		if ((r = ck_file_hdr_add_binding(&h, b)) < 0)
			goto out;
	} else {
		if (!ck_file_hdr_has_binding(&h, b))
			goto out;
		ck_file_hdr_del_binding(&h, b);
	}
	r = hdr_store(t, fd, &h, k.header, 1);
out:
	ck_file_keys_release(&k);
	if (in)
		pthread_rwlock_unlock(&in->io);
	return r;
}

/* ---- block I/O ---- */

struct io {
	struct ck_inode *in;
	struct ck_gcm *g;
	struct ck_file_ref ref;
};

static int io_begin(struct io *io, struct ck_inode *in)
{
	io->in = in;
	ref_of(in->tree, in->file_id, &io->ref);
	return ck_gcm_new(&io->g, in->keys.content);
}

static void io_end(struct io *io)
{
	ck_gcm_free(io->g);
}

static int corrupt(struct io *io, uint64_t blk, const char *what)
{
	ck_log(CK_LOG_ERR, "%s: block %llu %s", io->in->logpath, (unsigned long long)blk, what);
	return -EIO;
}

/* Decrypt block blk from ct (ct_len bytes) into pt (CK_BLOCK_SIZE bytes,
 * zero-filled past the block's length). Returns the plaintext length. */
static int open_block(struct io *io, uint64_t blk, int is_final, const uint8_t *ct,
                      size_t ct_len, uint8_t *pt)
{
	int r;

	if (!is_final && ct_len != CK_CBLOCK_SIZE)
		return corrupt(io, blk, "is truncated");
	if (!is_final && ck_block_is_hole(ct, ct_len)) {
		if (!(io->in->hdr_flags & CK_FILE_SPARSE))
			return corrupt(io, blk, "is all zeros in a file without holes (tampered?)");
		memset(pt, 0, CK_BLOCK_SIZE);
		return CK_BLOCK_SIZE;
	}
	r = ck_block_open(io->g, &io->ref, blk, is_final, ct, ct_len, pt);
	/* A block still marked final though blocks follow: a growth step
	 * interrupted by a crash (see the top of this file). */
	if (r == -EBADMSG && !is_final)
		r = ck_block_open(io->g, &io->ref, blk, 1, ct, ct_len, pt);
	if (r == -EBADMSG)
		return corrupt(io, blk, is_final ? "failed authentication (tampered, swapped, "
		               "or the file was truncated)" : "failed authentication (tampered or swapped)");
	if (r < 0)
		return corrupt(io, blk, "could not be decrypted");
	if (r < CK_BLOCK_SIZE)
		memset(pt + r, 0, CK_BLOCK_SIZE - (size_t)r);
	return r;
}

/* Read and decrypt one block of a file whose plaintext size is psize. */
static int read_block(struct io *io, int64_t psize, uint64_t blk, uint8_t *pt)
{
	uint8_t ct[CK_CBLOCK_SIZE];
	uint64_t final = ck_final_block((uint64_t)psize);
	size_t want = blk == final ? CK_BLOCK_OVERHEAD + (size_t)(psize - (int64_t)(blk * CK_BLOCK_SIZE))
	                           : CK_CBLOCK_SIZE;
	ssize_t n;

	if (blk > final) {
		memset(pt, 0, CK_BLOCK_SIZE);
		return 0;
	}
	n = pread_full(io->in->fd, ct, want, (off_t)ck_block_offset(blk));
	if (n < 0)
		return (int)n;
	if ((size_t)n != want)
		return corrupt(io, blk, "is truncated");
	return open_block(io, blk, blk == final, ct, want, pt);
}

static int seal_write(struct io *io, uint64_t blk, int last, const uint8_t *pt, size_t n)
{
	uint8_t ct[CK_CBLOCK_SIZE];
	int r;

	if ((r = ck_block_seal(io->g, &io->ref, blk, last, pt, n, ct)) < 0)
		return r;
	return pwrite_full(io->in->fd, ct, n + CK_BLOCK_OVERHEAD, (off_t)ck_block_offset(blk));
}

static int set_sparse(struct io *io)
{
	struct ck_file_hdr h;
	struct ck_file_keys k = { 0 };
	int r;

	if (io->in->hdr_flags & CK_FILE_SPARSE)
		return 0;
	if ((r = hdr_load(io->in->tree, io->in->fd, &h, &k)) < 0)
		return r == -EBADMSG ? corrupt(io, 0, "(file header) failed authentication") : r;
	h.flags |= CK_FILE_SPARSE;
	r = hdr_store(io->in->tree, io->in->fd, &h, k.header, 0);
	ck_file_keys_release(&k);
	if (r == 0)
		io->in->hdr_flags |= CK_FILE_SPARSE;
	return r;
}

/* Grow the final block `final` of a file of psize bytes to a full block
 * before blocks after it are written (steps 1 and 3 at the top). Returns
 * with pt holding the full block. */
static int pad_final(struct io *io, int64_t psize, uint64_t final, uint8_t *pt, int last)
{
	int r;

	if ((r = read_block(io, psize, final, pt)) < 0)
		return r;
	return seal_write(io, final, last, pt, CK_BLOCK_SIZE);
}

ssize_t ck_file_read(struct ck_inode *in, char *buf, size_t size, off_t off)
{
	struct io io;
	int64_t psize;
	uint64_t b0, b1, final, end;
	uint8_t *cbuf = NULL, pt[CK_BLOCK_SIZE];
	size_t clen, done = 0;
	ssize_t r;

	pthread_rwlock_rdlock(&in->io);
	if ((r = io_begin(&io, in)) < 0)
		goto unlock;
	psize = ck_file_plain_size(in->fd);
	if (psize < 0) {
		r = corrupt(&io, 0, "(backing file size) shows the file was truncated");
		goto out;
	}
	if (off < 0 || off >= psize || size == 0) {
		r = 0;
		goto out;
	}
	end = (uint64_t)off + size < (uint64_t)psize ? (uint64_t)off + size : (uint64_t)psize;
	b0 = (uint64_t)off / CK_BLOCK_SIZE;
	b1 = (end - 1) / CK_BLOCK_SIZE;
	final = ck_final_block((uint64_t)psize);
	clen = b1 == final ? (size_t)(ck_backing_size((uint64_t)psize) - ck_block_offset(b0))
	                   : (size_t)((b1 - b0 + 1) * CK_CBLOCK_SIZE);
	cbuf = malloc(clen);
	if (!cbuf) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = pread_full(in->fd, cbuf, clen, (off_t)ck_block_offset(b0))) < 0)
		goto out;
	if ((size_t)r != clen) {
		r = corrupt(&io, b1, "is truncated");
		goto out;
	}
	for (uint64_t b = b0; b <= b1; b++) {
		size_t coff = (size_t)((b - b0) * CK_CBLOCK_SIZE);
		size_t ct_len = clen - coff < CK_CBLOCK_SIZE ? clen - coff : CK_CBLOCK_SIZE;
		uint64_t bstart = b * CK_BLOCK_SIZE;
		uint64_t from = bstart > (uint64_t)off ? bstart : (uint64_t)off;
		uint64_t to = bstart + CK_BLOCK_SIZE < end ? bstart + CK_BLOCK_SIZE : end;

		if ((r = open_block(&io, b, b == final, cbuf + coff, ct_len, pt)) < 0)
			goto out;
		memcpy(buf + done, pt + (from - bstart), (size_t)(to - from));
		done += (size_t)(to - from);
	}
	r = (ssize_t)done;
out:
	ck_wipe(pt, sizeof(pt));
	free(cbuf);
	io_end(&io);
unlock:
	pthread_rwlock_unlock(&in->io);
	return r;
}

/* Write size bytes of buf (NULL: zeros) at off. Caller holds io exclusive. */
static ssize_t write_locked(struct io *io, const char *buf, size_t size, uint64_t off)
{
	struct ck_inode *in = io->in;
	int64_t psize = ck_file_plain_size(in->fd);
	uint64_t end = off + size, old_final, new_final, new_size, b0, b1;
	uint8_t *cbuf = NULL, pt[CK_BLOCK_SIZE], opt[CK_BLOCK_SIZE];
	size_t clen = 0;
	int r;

	if (psize < 0)
		return corrupt(io, 0, "(backing file size) shows the file was truncated");
	if (size == 0)
		return 0;
	old_final = ck_final_block((uint64_t)psize);
	new_size = end > (uint64_t)psize ? end : (uint64_t)psize;
	new_final = ck_final_block(new_size);
	b0 = off / CK_BLOCK_SIZE;
	b1 = (end - 1) / CK_BLOCK_SIZE;

	if (b0 > old_final + 1 && (r = set_sparse(io)) < 0)
		return r;
	/* Step 1: a partial old final block left behind is padded first. */
	if (b0 > old_final && (uint64_t)psize < (old_final + 1) * CK_BLOCK_SIZE &&
	    (r = pad_final(io, psize, old_final, opt, 1)) < 0)
		goto out;

	cbuf = malloc((size_t)(b1 - b0 + 1) * CK_CBLOCK_SIZE);
	if (!cbuf) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t b = b0; b <= b1; b++) {
		uint64_t bstart = b * CK_BLOCK_SIZE;
		size_t blen = b == new_final ? (size_t)(new_size - bstart) : CK_BLOCK_SIZE;
		uint64_t from = bstart > off ? bstart : off;
		uint64_t to = bstart + blen < end ? bstart + blen : end;
		const uint8_t *src = pt;

		if (from == bstart && to == bstart + blen && buf) {
			src = (const uint8_t *)buf + (from - off);
		} else {
			if (b <= old_final && (from > bstart || to < bstart + blen)) {
				if ((r = read_block(io, psize, b, pt)) < 0)
					goto out;
			} else {
				memset(pt, 0, sizeof(pt));
			}
			if (buf)
				memcpy(pt + (from - bstart), buf + (from - off), (size_t)(to - from));
			else
				memset(pt + (from - bstart), 0, (size_t)(to - from));
		}
		if ((r = ck_block_seal(io->g, &io->ref, b, b == new_final, src, blen, cbuf + clen)) < 0)
			goto out;
		clen += blen + CK_BLOCK_OVERHEAD;
	}
	if ((r = pwrite_full(in->fd, cbuf, clen, (off_t)ck_block_offset(b0))) < 0)
		goto out;
	/* Step 3: the old final block is no longer final. */
	if (b0 > old_final) {
		if ((uint64_t)psize == (old_final + 1) * CK_BLOCK_SIZE &&
		    (r = read_block(io, psize, old_final, opt)) < 0)
			goto out;
		if ((r = seal_write(io, old_final, 0, opt, CK_BLOCK_SIZE)) < 0)
			goto out;
	}
	r = (int)size;
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
	if ((r = io_begin(&io, in)) == 0) {
		if (append) {
			int64_t ps = ck_file_plain_size(in->fd);
			off = ps < 0 ? 0 : ps;
		}
		r = off < 0 ? -EINVAL : write_locked(&io, buf, size, (uint64_t)off);
		io_end(&io);
	}
	pthread_rwlock_unlock(&in->io);
	return r;
}

static int truncate_locked(struct io *io, uint64_t size)
{
	struct ck_inode *in = io->in;
	int64_t psize = ck_file_plain_size(in->fd);
	uint8_t pt[CK_BLOCK_SIZE];
	uint64_t old_final, new_final;
	int r = 0;

	if (psize < 0)
		return corrupt(io, 0, "(backing file size) shows the file was truncated");
	old_final = ck_final_block((uint64_t)psize);
	new_final = ck_final_block(size);
	if (size == (uint64_t)psize) {
		/* POSIX: a successful truncate updates mtime even when the
		 * size does not change. */
		return ftruncate(in->fd, (off_t)ck_backing_size(size)) < 0 ? -errno : 0;
	}
	if (size > (uint64_t)psize) {
		if (new_final == old_final) {
			if ((r = read_block(io, psize, old_final, pt)) < 0)
				goto out;
			r = seal_write(io, old_final, 1, pt, (size_t)(size - old_final * CK_BLOCK_SIZE));
			goto out;
		}
		/* Growth past the final block: a write of the zeros in the new
		 * final block does the three steps; blocks between are holes. */
		uint64_t from = new_final * CK_BLOCK_SIZE;
		if (from < (uint64_t)psize)
			from = (uint64_t)psize;
		r = (int)write_locked(io, NULL, (size_t)(size - from), from);
		r = r < 0 ? r : 0;
		goto out;
	}
	/* Shrink. An interrupted shrink can leave the new final block torn
	 * (EIO, reported by ck-fsck); see docs/FORMAT.md. */
	if ((r = read_block(io, psize, new_final, pt)) < 0)
		goto out;
	if (ftruncate(in->fd, (off_t)ck_block_offset(new_final)) < 0) {
		r = -errno;
		goto out;
	}
	r = seal_write(io, new_final, 1, pt, (size_t)(size - new_final * CK_BLOCK_SIZE));
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
	if ((r = io_begin(&io, in)) == 0) {
		r = truncate_locked(&io, (uint64_t)size);
		io_end(&io);
	}
	pthread_rwlock_unlock(&in->io);
	return r;
}

int ck_file_fallocate(struct ck_inode *in, int mode, off_t off, off_t len)
{
	struct io io;
	int64_t psize;
	int r;

	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EINVAL;
	pthread_rwlock_wrlock(&in->io);
	if ((r = io_begin(&io, in)) < 0)
		goto unlock;
	psize = ck_file_plain_size(in->fd);
	if (psize < 0) {
		r = corrupt(&io, 0, "(backing file size) shows the file was truncated");
		goto out;
	}
	uint64_t end = (uint64_t)off + (uint64_t)len;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		uint64_t final = ck_final_block((uint64_t)psize);
		if ((uint64_t)off >= (uint64_t)psize)
			goto out;
		if (end > (uint64_t)psize)
			end = (uint64_t)psize;
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
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > (uint64_t)psize &&
	    (r = truncate_locked(&io, end)) < 0)
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
	io_end(&io);
unlock:
	pthread_rwlock_unlock(&in->io);
	return r;
}
