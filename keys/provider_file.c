/* The file: key provider: a 256-bit key in a 0600 key file (format in
 * keys/keyfile.h and docs/FORMAT.md), used as an AES-256 key-wrapping key
 * (RFC 5649, key wrap with padding). URI: file:/absolute/path, taken
 * literally (no percent-decoding). See docs/PROVIDERS.md.
 *
 * Answers (keys/provider.h):
 *   ENOENT, EACCES on the key file  -> -EKEYREVOKED (denied: the customer
 *                                      deleted it or took our access away)
 *   unsafe mode, symlink, not a file -> -EACCES (an error to fix, not a
 *                                      revocation)
 *   corrupt key file                 -> -EBADMSG
 *   wrap that this key cannot open   -> -EBADMSG
 *   anything else (EIO, EMFILE, ...) -> -EAGAIN (unavailable: retry)
 *
 * The key-wrapping key is read into secret memory for each call and wiped
 * before the call returns; nothing is cached here (the caller caches the
 * keys it unwraps). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "keyfile.h"
#include "provider.h"
#include "secmem.h"
#include "util.h"

static void set_msg(char *msg, size_t msg_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msg_len, const char *fmt, ...)
{
	va_list ap;

	if (!msg || msg_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msg_len, fmt, ap);
	va_end(ap);
}

/* The path of a file: URI, or -EINVAL. The path is absolute, has no
 * control characters, does not end in '/', and does not start with "//"
 * (which would be the authority of file://host/...: not supported). */
static int file_path(const char *uri, const char **path, char *msg, size_t msg_len)
{
	const char *p;
	size_t n;

	if (!uri || strncmp(uri, "file:", 5) != 0) {
		set_msg(msg, msg_len, "not a file: uri");
		return -EINVAL;
	}
	p = uri + 5;
	n = strnlen(p, PATH_MAX);
	if (p[0] != '/' || p[1] == '/') {
		set_msg(msg, msg_len, "file: uri needs an absolute path (file:/path/to/key)");
		return -EINVAL;
	}
	if (n >= PATH_MAX) {
		set_msg(msg, msg_len, "file: uri path is too long");
		return -EINVAL;
	}
	if (p[n - 1] == '/') {
		set_msg(msg, msg_len, "file: uri path %s names a directory, not a key file", p);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
			set_msg(msg, msg_len, "file: uri contains a control character");
			return -EINVAL;
		}
	}
	*path = p;
	return 0;
}

/* Read the key-wrapping key and map the key file's errors to provider
 * answers (see the top of the file). */
static int read_kek(const char *path, uint8_t kek[static CK_KEY_LEN], char *msg, size_t msg_len)
{
	uint8_t id[CK_ID_LEN];
	int r = ck_keyfile_read(path, id, kek);

	switch (r) {
	case 0:
		return 0;
	case -ENOENT:
		set_msg(msg, msg_len, "key file %s does not exist (deleted or revoked)", path);
		return -EKEYREVOKED;
	case -EACCES:
		set_msg(msg, msg_len, "key file %s: permission denied (access revoked)", path);
		return -EKEYREVOKED;
	case -EPERM:
		set_msg(msg, msg_len, "key file %s is not a regular 0600 file (symlink, or "
		        "readable by group or others); make it a plain file and chmod 600 it", path);
		return -EACCES;
	case -EBADMSG:
		set_msg(msg, msg_len, "key file %s is corrupt; restore it from a backup", path);
		return -EBADMSG;
	case -EPROTONOSUPPORT:
		set_msg(msg, msg_len, "key file %s has an unsupported version; use a newer ckfs", path);
		return -EPROTONOSUPPORT;
	default:
		set_msg(msg, msg_len, "key file %s cannot be read: %s", path, strerror(-r));
		return -EAGAIN;
	}
}

static int file_check_uri(const char *uri, char *msg, size_t msg_len)
{
	const char *path;

	return file_path(uri, &path, msg, msg_len);
}

static int file_wrap(const char *uri, const uint8_t *key, size_t n,
                     uint8_t *out, size_t *out_len, char *msg, size_t msg_len)
{
	uint8_t *kek = NULL;
	const char *path;
	int r;

	if ((r = file_path(uri, &path, msg, msg_len)) < 0)
		goto out;
	/* RFC 5649 output is n rounded up to 8, plus 8. */
	if (n == 0 || ((n + 7) & ~(size_t)7) + 8 > CK_WRAP_MAX) {
		set_msg(msg, msg_len, "cannot wrap a key of %zu bytes", n);
		r = -EINVAL;
		goto out;
	}
	if (!(kek = ck_secret_alloc(CK_KEY_LEN))) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = read_kek(path, kek, msg, msg_len)) < 0)
		goto out;
	if ((r = ck_key_wrap(kek, key, n, out, out_len)) < 0) {
		set_msg(msg, msg_len, "key wrap with %s failed: %s", path, strerror(-r));
		r = -EAGAIN;
	}
out:
	ck_secret_free(kek, CK_KEY_LEN);
	return r;
}

static int file_unwrap(const char *uri, const uint8_t *in, size_t n,
                       uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	uint8_t *kek = NULL;
	const char *path;
	int r;

	if ((r = file_path(uri, &path, msg, msg_len)) < 0)
		goto out;
	/* The unwrapped key is at most n - 8 bytes and must fit in key[]. */
	if (n < 16 || n % 8 || n > CK_WRAP_MAX) {
		set_msg(msg, msg_len, "wrapped key of %zu bytes is not an aes key wrap", n);
		r = -EBADMSG;
		goto out;
	}
	if (!(kek = ck_secret_alloc(CK_KEY_LEN))) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = read_kek(path, kek, msg, msg_len)) < 0)
		goto out;
	r = ck_key_unwrap(kek, in, n, key, key_len);
	if (r == -EBADMSG) {
		set_msg(msg, msg_len, "wrapped key does not match this key file (%s)", path);
	} else if (r < 0) {
		set_msg(msg, msg_len, "key unwrap with %s failed: %s", path, strerror(-r));
		r = -EAGAIN;
	}
	if (r < 0)
		ck_wipe(key, n - 8);
out:
	ck_secret_free(kek, CK_KEY_LEN);
	return r;
}

static int file_probe(const char *uri, char *msg, size_t msg_len)
{
	uint8_t *kek = NULL;
	const char *path;
	int r;

	if ((r = file_path(uri, &path, msg, msg_len)) < 0)
		goto out;
	if (!(kek = ck_secret_alloc(CK_KEY_LEN))) {
		r = -ENOMEM;
		goto out;
	}
	r = read_kek(path, kek, msg, msg_len);
out:
	ck_secret_free(kek, CK_KEY_LEN);
	return r;
}

/* fsync the directory holding path, so that a create or unlink in it is
 * durable. */
static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	int fd, r = 0;

	memcpy(dir, path, n);
	dir[n] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* A new random key in a new key file. Its directory is created 0700 if
 * missing and must be safe (not accessible by group or others, owned by
 * root or us), as for the key directory (keyfile.h). Never overwrites. */
static int file_create(const char *uri, char *msg, size_t msg_len)
{
	uint8_t *key = NULL, id[CK_ID_LEN];
	char dir[PATH_MAX];
	const char *path, *slash;
	size_t dn;
	int r;

	if ((r = file_path(uri, &path, msg, msg_len)) < 0)
		goto out;
	slash = strrchr(path, '/');
	dn = slash == path ? 1 : (size_t)(slash - path);
	memcpy(dir, path, dn);
	dir[dn] = '\0';
	if ((r = ck_key_dir_check(dir, 1)) < 0) {
		if (r == -EPERM)
			set_msg(msg, msg_len, "key directory %s is accessible by group or others "
			        "(or not owned by root or us); chmod 700 it", dir);
		else
			set_msg(msg, msg_len, "key directory %s: %s", dir, strerror(-r));
		goto out;
	}
	if (!(key = ck_secret_alloc(CK_KEY_LEN))) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = ck_random(id, sizeof(id))) < 0 || (r = ck_random(key, CK_KEY_LEN)) < 0) {
		set_msg(msg, msg_len, "no random bytes for a new key: %s", strerror(-r));
		goto out;
	}
	if ((r = ck_keyfile_write(path, id, key)) < 0) {
		if (r == -EEXIST)
			set_msg(msg, msg_len, "key file %s already exists; refusing to overwrite it",
			        path);
		else
			set_msg(msg, msg_len, "cannot create key file %s: %s", path, strerror(-r));
		goto out;
	}
	if ((r = fsync_parent(path)) < 0)
		set_msg(msg, msg_len, "key file %s created but its directory cannot be "
		        "synced: %s", path, strerror(-r));
out:
	ck_secret_free(key, CK_KEY_LEN);
	return r;
}

/* Overwrite the key file with zeros, fsync it, unlink it and fsync the
 * directory (the purge of a key). Refuses anything that is not a ckfs key
 * file, so a mistyped URI cannot destroy another file. A file that is
 * already gone is success: a purge interrupted after the unlink can be
 * re-run. On copy-on-write or journaling storage the old blocks may
 * survive the overwrite; see docs/PROVIDERS.md. */
static int file_destroy(const char *uri, char *msg, size_t msg_len)
{
	static const uint8_t zeros[CK_KEYFILE_LEN];
	uint8_t head[8];
	const char *path;
	struct stat st;
	int fd = -1, r;

	if ((r = file_path(uri, &path, msg, msg_len)) < 0)
		goto out;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT) {
			set_msg(msg, msg_len, "key file %s was already gone", path);
			r = 0;
		} else {
			set_msg(msg, msg_len, "cannot open key file %s to destroy it: %s", path,
			        r == -ELOOP ? "it is a symlink" : strerror(-r));
		}
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		set_msg(msg, msg_len, "cannot stat key file %s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != CK_KEYFILE_LEN ||
	    pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
	    memcmp(head, "CKFSKEY1", 8) != 0) {
		set_msg(msg, msg_len, "%s is not a ckfs key file; refusing to destroy it", path);
		r = -EBADMSG;
		goto out;
	}
	if (pwrite(fd, zeros, sizeof(zeros), 0) != (ssize_t)sizeof(zeros) || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		set_msg(msg, msg_len, "cannot overwrite key file %s: %s", path, strerror(-r));
		goto out;
	}
	if (unlink(path) < 0) {
		r = -errno;
		set_msg(msg, msg_len, "key file %s was zeroed but cannot be removed: %s", path,
		        strerror(-r));
		goto out;
	}
	if ((r = fsync_parent(path)) < 0)
		set_msg(msg, msg_len, "key file %s removed but its directory cannot be synced: %s",
		        path, strerror(-r));
out:
	if (fd >= 0)
		close(fd);
	return r;
}

const struct ck_provider ck_provider_file = {
	.scheme = "file",
	.wrap = file_wrap,
	.unwrap = file_unwrap,
	.probe = file_probe,
	.create = file_create,
	.destroy = file_destroy,
	.check_uri = file_check_uri,
};
