/* Plaintext names <-> backing entries, long-name sidecars, directory IDs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fs/ckfs.h"
#include "keys/util.h"

static int ename_with(struct ck_tree *t, const uint8_t dirid[CK_ID_LEN], const char *name,
                      struct ck_ename *e)
{
	char side[CK_LONG_NAME_LEN + 1];
	size_t n = strlen(name);
	int r;

	if (n > CK_NAME_MAX)
		return -ENAMETOOLONG;
	if (!t->name_key)
		return -EKEYREVOKED;
	if ((r = ck_name_encrypt(t, dirid, name, n, e->full)) < 0)
		return r == -EINVAL ? -EINVAL : -EIO;
	e->is_long = ck_name_is_long(strlen(e->full));
	if (!e->is_long) {
		memcpy(e->entry, e->full, strlen(e->full) + 1);
		return 0;
	}
	return ck_long_names(e->full, strlen(e->full), e->entry, side) < 0 ? -EIO : 0;
}

int ck_ename_make(struct ck_inode *dir, int dirfd, const char *name, struct ck_ename *e)
{
	uint8_t dirid[CK_ID_LEN];
	int r;

	if (strlen(name) > CK_NAME_MAX)
		return -ENAMETOOLONG;
	if ((r = ck_dirid(dir, dirfd, dirid)) < 0)
		return r;
	return ename_with(dir->tree, dirid, name, e);
}

int ck_entry_find(struct ck_inode *dir, int dirfd, const char *name, struct ck_ename *e,
                  struct stat *st)
{
	struct ck_stree *s = ck_stree_of(dir->tree);
	uint8_t dirid[CK_ID_LEN];
	struct ck_ename old;
	int r;

	if ((r = ck_ename_make(dir, dirfd, name, e)) < 0)
		return r;
	if (fstatat(dirfd, e->entry, st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	r = -errno;
	/* Mid-apply, an entry the apply tool has not renamed yet still has
	 * the name it had under the old keys. */
	if (r != -ENOENT || !s->applying || ck_dirid(dir, dirfd, dirid) < 0 ||
	    ename_with(&s->old, dirid, name, &old) < 0)
		return r;
	if (fstatat(dirfd, old.entry, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	*e = old;
	return 0;
}

static void side_name(const char *entry, char side[CK_LONG_NAME_LEN + 1])
{
	snprintf(side, CK_LONG_NAME_LEN + 1, "%s%s", CK_SIDE_PREFIX, entry + 2);
}

/* The sidecar is written before the entry it names, so a crash leaves at
 * worst an orphan sidecar (ck-fsck removes those), never a nameless entry. */
int ck_sidecar_write(int dirfd, const struct ck_ename *e)
{
	char side[CK_LONG_NAME_LEN + 1], tmp[CK_LONG_NAME_LEN + 8];
	size_t n = strlen(e->full);
	int fd, r = 0;

	if (!e->is_long)
		return 0;
	side_name(e->entry, side);
	snprintf(tmp, sizeof(tmp), "%s.tmp", side);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, e->full, n) != (ssize_t)n)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && renameat(dirfd, tmp, dirfd, side) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
	return r;
}

void ck_sidecar_remove(int dirfd, const char *entry)
{
	char side[CK_LONG_NAME_LEN + 1];

	if (strncmp(entry, CK_LONG_PREFIX, 2) != 0)
		return;
	side_name(entry, side);
	unlinkat(dirfd, side, 0);
}

int ck_ename_decode(struct ck_inode *dir, int dirfd, const uint8_t dirid[static CK_ID_LEN],
                    const char *entry, char out[static CK_NAME_MAX + 1])
{
	char full[CK_ENC_NAME_MAX + 1], side[CK_LONG_NAME_LEN + 1], check[CK_LONG_NAME_LEN + 1];
	const char *enc = entry;
	ssize_t n;
	int fd, r;

	if (!strncmp(entry, CK_LONG_PREFIX, 2)) {
		if (strlen(entry) != CK_LONG_NAME_LEN)
			return -ENOENT;
		side_name(entry, side);
		fd = openat(dirfd, side, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -EIO;
		n = read(fd, full, sizeof(full) - 1);
		close(fd);
		if (n <= 0)
			return -EIO;
		full[n] = '\0';
		/* The sidecar must hash to the entry name. */
		if (ck_long_names(full, (size_t)n, check, side) < 0 || strcmp(check, entry))
			return -EIO;
		enc = full;
	} else if (ck_name_reserved(entry)) {
		return -ENOENT;
	}
	if (!dir->tree->name_key)
		return -EKEYREVOKED;
	r = ck_name_decrypt(dir->tree, dirid, enc, strlen(enc), out);
	if (r < 0 && ck_tree_applying(dir->tree))
		r = ck_name_decrypt(&ck_stree_of(dir->tree)->old, dirid, enc, strlen(enc), out);
	return r < 0 ? -EIO : r;
}

int ck_dirid_create(int dirfd, const char *entry, uint8_t out[static CK_ID_LEN])
{
	uint8_t buf[CK_DIRID_LEN];
	char tmp[64];
	int dfd, fd, r = 0;

	if ((r = ck_random(out, CK_ID_LEN)) < 0)
		return r;
	ck_dirid_encode(out, buf);
	dfd = openat(dirfd, entry, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp", CK_DIRID_FILE);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* Durable before any name depends on it. */
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && renameat(dfd, tmp, dfd, CK_DIRID_FILE) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dfd, tmp, 0);
out:
	close(dfd);
	return r;
}
