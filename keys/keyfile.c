/* Key files and the key directory. See keyfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "keyfile.h"
#include "secmem.h"
#include "util.h"

static const uint8_t key_magic[8] = "CKFSKEY1";

int ck_keyfile_encode(const uint8_t id[static CK_ID_LEN], const uint8_t key[static CK_KEY_LEN],
                      uint8_t out[static CK_KEYFILE_LEN])
{
	memset(out, 0, CK_KEYFILE_LEN);
	memcpy(out, key_magic, 8);
	ck_put32(out + 8, 1);
	memcpy(out + 16, id, CK_ID_LEN);
	memcpy(out + 32, key, CK_KEY_LEN);
	ck_put64(out + 64, ck_checksum(out, 64));
	return 0;
}

int ck_keyfile_decode(const uint8_t *buf, size_t n, uint8_t id[static CK_ID_LEN],
                      uint8_t key[static CK_KEY_LEN])
{
	if (n < 8 || memcmp(buf, key_magic, 8) != 0)
		return -EBADMSG;
	if (n != CK_KEYFILE_LEN || ck_get64(buf + 64) != ck_checksum(buf, 64))
		return -EBADMSG;
	if (ck_get32(buf + 8) != 1)
		return -EPROTONOSUPPORT;
	if (ck_get32(buf + 12) != 0)
		return -EBADMSG;
	memcpy(id, buf + 16, CK_ID_LEN);
	memcpy(key, buf + 32, CK_KEY_LEN);
	return 0;
}

int ck_keyfile_write(const char *path, const uint8_t id[static CK_ID_LEN],
                     const uint8_t key[static CK_KEY_LEN])
{
	uint8_t *buf = ck_secret_alloc(CK_KEYFILE_LEN);
	int fd = -1, r;

	if (!buf)
		return -ENOMEM;
	if ((r = ck_keyfile_encode(id, key, buf)) < 0)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || write(fd, buf, CK_KEYFILE_LEN) != CK_KEYFILE_LEN ||
	    fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		unlink(path);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	ck_secret_free(buf, CK_KEYFILE_LEN);
	return r;
}

int ck_keyfile_read(const char *path, uint8_t id[static CK_ID_LEN],
                    uint8_t key[static CK_KEY_LEN])
{
	uint8_t *buf = ck_secret_alloc(CK_KEYFILE_LEN + 1);
	struct stat st;
	ssize_t n;
	int fd = -1, r;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = errno == ELOOP ? -EPERM : -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		r = -EPERM;
		goto out;
	}
	n = read(fd, buf, CK_KEYFILE_LEN + 1);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	r = ck_keyfile_decode(buf, (size_t)n, id, key);
out:
	if (fd >= 0)
		close(fd);
	ck_secret_free(buf, CK_KEYFILE_LEN + 1);
	return r;
}

const char *ck_key_dir(const char *explicit_dir)
{
	const char *e;

	if (explicit_dir && *explicit_dir)
		return explicit_dir;
	e = getenv("CKFS_KEY_DIR");
	return e && *e ? e : CK_KEY_DIR_DEFAULT;
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ck_key_dir_check(const char *dir, int create)
{
	struct stat st;
	int r;

	if (create && (r = mkdir_p(dir, 0700)) < 0)
		return r;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

void ck_keyfile_path(const char *dir, const uint8_t id[static CK_ID_LEN], char *out, size_t n)
{
	char hex[2 * CK_ID_LEN + 1];

	ck_hex(id, CK_ID_LEN, hex);
	snprintf(out, n, "%s/%s.key", dir, hex);
}
