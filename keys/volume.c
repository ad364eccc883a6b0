/* Creating and opening volumes. See volume.h and docs/FORMAT.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "kdf_labels.h"
#include "names.h"
#include "keyfile.h"
#include "secmem.h"
#include "util.h"
#include "volume.h"

static int fail(char *msg, size_t len, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return r;
}

static int derive_label(const uint8_t *key, const char *label, uint8_t *out)
{
	return ck_hkdf_sha256(key, CK_KEY_LEN, NULL, 0, (const uint8_t *)label,
	                      strlen(label), out, CK_KEY_LEN);
}

/* Write a small file atomically: temp file, fsync, rename, fsync dir. */
static int write_atomic(int dirfd, const char *name, const void *buf, size_t n, mode_t mode)
{
	char tmp[256];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != (ssize_t)n || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
	else
		fsync(dirfd);
	return r;
}

static int dir_is_empty(int fd)
{
	int dup_fd = dup(fd);
	DIR *d;
	struct dirent *e;
	int empty = 1;

	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -errno;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static const char *key_dir_reason(int r)
{
	switch (r) {
	case -EPERM: return "has unsafe permissions (it must be a directory owned by root with mode 0700)";
	case -ENOTDIR: return "is not a directory";
	case -ENOENT: return "does not exist";
	default: return strerror(-r);
	}
}

int ck_volume_create(const char *path, const char *key_dir, int force, char *msg, size_t msg_len)
{
	struct ck_volume_hdr h = { 0 };
	uint8_t *service = NULL, *kek = NULL, *mac_key = NULL;
	uint8_t buf[CK_VOLUME_HDR_LEN], dirid[CK_DIRID_LEN], id[CK_ID_LEN];
	char kpath[4200], hex[2 * CK_ID_LEN + 1];
	int fd = -1, meta = -1, r, empty, existing;
	size_t wlen = 0;
	struct stat st;

	if ((r = ck_key_dir_check(key_dir, 1)) < 0)
		return fail(msg, msg_len, r, "key directory %s %s", key_dir, key_dir_reason(r));
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return fail(msg, msg_len, -errno, "cannot create %s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(msg, msg_len, -errno, "cannot open %s: %s", path, strerror(errno));
	if (faccessat(fd, ".", W_OK, AT_EACCESS) < 0) {
		r = fail(msg, msg_len, -errno, "%s is not writable: %s", path, strerror(errno));
		goto out;
	}
	existing = fstatat(fd, CK_VOLUME_DIR "/" CK_VOLUME_HDR_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (existing && !force) {
		r = fail(msg, msg_len, -EEXIST, "%s is already a ckfs volume; refusing to "
		         "re-initialise it (use --force to start a new volume there; "
		         "the old key file is kept)", path);
		goto out;
	}
	if ((empty = dir_is_empty(fd)) < 0) {
		r = fail(msg, msg_len, empty, "cannot read %s: %s", path, strerror(-empty));
		goto out;
	}
	if (!empty && !existing && !force) {
		r = fail(msg, msg_len, -ENOTEMPTY, "%s is not empty; refusing to make a volume "
		         "there (use an empty directory, or --force)", path);
		goto out;
	}
	if (mkdirat(fd, CK_VOLUME_DIR, 0700) < 0 && errno != EEXIST) {
		r = fail(msg, msg_len, -errno, "cannot create %s/%s: %s", path, CK_VOLUME_DIR,
		         strerror(errno));
		goto out;
	}
	meta = openat(fd, CK_VOLUME_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (meta < 0) {
		r = fail(msg, msg_len, -errno, "cannot open %s/%s: %s", path, CK_VOLUME_DIR,
		         strerror(errno));
		goto out;
	}
	if (existing) {
		/* Keep the old header (and, elsewhere, its key file): --force
		 * never destroys a volume's keys silently. */
		char old[96];
		struct ck_volume_hdr oh;
		uint8_t ob[CK_VOLUME_HDR_LEN];
		int ofd = openat(meta, CK_VOLUME_HDR_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ssize_t on = ofd >= 0 ? read(ofd, ob, sizeof(ob)) : -1;
		if (ofd >= 0)
			close(ofd);
		if (on > 0 && ck_volume_hdr_decode(ob, (size_t)on, &oh) == 0)
			ck_hex(oh.volume_id, CK_ID_LEN, hex);
		else
			snprintf(hex, sizeof(hex), "unreadable-%lld", (long long)time(NULL));
		snprintf(old, sizeof(old), "volume.old-%s", hex);
		if (faccessat(meta, old, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			r = fail(msg, msg_len, -EEXIST, "%s/%s/%s already exists; refusing to "
			         "overwrite a kept header", path, CK_VOLUME_DIR, old);
			goto out;
		}
		if (renameat(meta, CK_VOLUME_HDR_NAME, meta, old) < 0) {
			r = fail(msg, msg_len, -errno, "cannot keep the old volume header: %s",
			         strerror(errno));
			goto out;
		}
		fprintf(stderr, "note: kept the old volume header as %s/%s/%s; its key "
		        "file was not touched\n", path, CK_VOLUME_DIR, old);
	}

	service = ck_secret_alloc(CK_KEY_LEN);
	kek = ck_secret_alloc(CK_KEY_LEN);
	mac_key = ck_secret_alloc(CK_KEY_LEN);
	r = -ENOMEM;
	if (!service || !kek || !mac_key)
		goto out;
	h.version = CK_FORMAT_VERSION;
	h.block_size = CK_BLOCK_SIZE;
	h.created = (uint64_t)time(NULL);
	if ((r = ck_random(h.volume_id, CK_ID_LEN)) < 0 ||
	    (r = ck_random(h.service_tree_id, CK_ID_LEN)) < 0 ||
	    (r = ck_random(h.kek_id, CK_ID_LEN)) < 0 ||
	    (r = ck_random(service, CK_KEY_LEN)) < 0 ||
	    (r = ck_random(kek, CK_KEY_LEN)) < 0 ||
	    (r = ck_random(id, CK_ID_LEN)) < 0)
		goto out;
	if ((r = ck_key_wrap(kek, service, CK_KEY_LEN, h.wrapped_service_key, &wlen)) < 0 ||
	    wlen != CK_WRAPPED_KEY_LEN)
		goto out;
	if ((r = derive_label(service, CK_LABEL_VOLUME_MAC, mac_key)) < 0 ||
	    (r = ck_volume_hdr_encode(&h, mac_key, buf)) < 0)
		goto out;
	ck_keyfile_path(key_dir, h.kek_id, kpath, sizeof(kpath));
	if ((r = ck_keyfile_write(kpath, h.kek_id, kek)) < 0) {
		r = fail(msg, msg_len, r, "cannot write key file %s: %s", kpath, strerror(-r));
		goto out;
	}
	ck_dirid_encode(id, dirid);
	if ((r = write_atomic(fd, CK_DIRID_FILE, dirid, sizeof(dirid), 0600)) < 0 ||
	    (r = write_atomic(meta, CK_VOLUME_HDR_NAME, buf, sizeof(buf), 0600)) < 0) {
		unlink(kpath);
		r = fail(msg, msg_len, r, "cannot write the volume header in %s: %s", path,
		         strerror(-r));
		goto out;
	}
	ck_hex(h.volume_id, CK_ID_LEN, hex);
	snprintf(msg, msg_len, "%s", hex);
	r = 0;
out:
	ck_secret_free(service, CK_KEY_LEN);
	ck_secret_free(kek, CK_KEY_LEN);
	ck_secret_free(mac_key, CK_KEY_LEN);
	if (meta >= 0)
		close(meta);
	if (fd >= 0)
		close(fd);
	return r;
}

int ck_volume_open(const char *path, const char *key_dir, struct ck_volume *v,
                   char *msg, size_t msg_len)
{
	uint8_t buf[CK_VOLUME_HDR_LEN + 1], kid[CK_ID_LEN], tree_key[CK_KEY_LEN];
	uint8_t *kek = NULL, *service = NULL, *mac_key = NULL;
	char kpath[4200];
	size_t klen = 0;
	ssize_t n;
	int hfd = -1, r;

	memset(v, 0, sizeof(*v));
	if (msg_len)
		msg[0] = '\0';
	v->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->fd < 0)
		return fail(msg, msg_len, -errno, "cannot open volume %s: %s", path, strerror(errno));
	hfd = openat(v->fd, CK_VOLUME_DIR "/" CK_VOLUME_HDR_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (hfd < 0) {
		r = errno == ENOENT
			? fail(msg, msg_len, -EINVAL, "%s is not a ckfs volume (no %s/%s; make one "
			       "with ck-mkfs)", path, CK_VOLUME_DIR, CK_VOLUME_HDR_NAME)
			: fail(msg, msg_len, -errno, "cannot read the volume header of %s: %s",
			       path, strerror(errno));
		goto out;
	}
	n = read(hfd, buf, sizeof(buf));
	if (n < 0) {
		r = fail(msg, msg_len, -errno, "cannot read the volume header of %s: %s", path,
		         strerror(errno));
		goto out;
	}
	switch ((r = ck_volume_hdr_decode(buf, (size_t)n, &v->hdr))) {
	case 0: break;
	case -EINVAL:
		r = fail(msg, msg_len, r, "%s is not a ckfs volume (bad magic in its header)", path);
		goto out;
	case -EPROTONOSUPPORT:
		r = fail(msg, msg_len, r, "volume %s has format version %u, which this ckfs "
		         "does not support", path, v->hdr.version);
		goto out;
	default:
		r = fail(msg, msg_len, -EBADMSG, "volume header of %s is corrupt (checksum "
		         "or field check failed)", path);
		goto out;
	}
	if ((r = ck_key_dir_check(key_dir, 0)) < 0) {
		r = fail(msg, msg_len, r, "key directory %s %s", key_dir, key_dir_reason(r));
		goto out;
	}
	kek = ck_secret_alloc(CK_KEY_LEN);
	service = ck_secret_alloc(CK_WRAPPED_KEY_LEN);
	mac_key = ck_secret_alloc(CK_KEY_LEN);
	r = -ENOMEM;
	if (!kek || !service || !mac_key)
		goto out;
	ck_keyfile_path(key_dir, v->hdr.kek_id, kpath, sizeof(kpath));
	switch ((r = ck_keyfile_read(kpath, kid, kek))) {
	case 0: break;
	case -ENOENT:
		r = fail(msg, msg_len, -ENOKEY, "key file %s is missing (is the key directory "
		         "right? set --key-dir, key_dir= or CKFS_KEY_DIR)", kpath);
		goto out;
	case -EPERM:
		r = fail(msg, msg_len, r, "key file %s has unsafe permissions (it must be a "
		         "regular file with mode 0600)", kpath);
		goto out;
	case -EBADMSG: case -EPROTONOSUPPORT:
		r = fail(msg, msg_len, -EBADMSG, "key file %s is corrupt", kpath);
		goto out;
	default:
		r = fail(msg, msg_len, r, "cannot read key file %s: %s", kpath, strerror(-r));
		goto out;
	}
	if (!ck_memeq(kid, v->hdr.kek_id, CK_ID_LEN)) {
		r = fail(msg, msg_len, -EKEYREJECTED, "key file %s belongs to another volume", kpath);
		goto out;
	}
	if (ck_key_unwrap(kek, v->hdr.wrapped_service_key, CK_WRAPPED_KEY_LEN, service, &klen) < 0 ||
	    klen != CK_KEY_LEN) {
		r = fail(msg, msg_len, -EKEYREJECTED, "the key in %s does not open volume %s "
		         "(wrong key)", kpath, path);
		goto out;
	}
	if ((r = derive_label(service, CK_LABEL_VOLUME_MAC, mac_key)) < 0)
		goto out;
	if (ck_volume_hdr_verify(buf, mac_key) < 0) {
		r = fail(msg, msg_len, -EBADMSG, "volume header of %s failed authentication "
		         "(it was changed by something other than ckfs)", path);
		goto out;
	}
	v->record_key = ck_secret_alloc(CK_KEY_LEN);
	v->audit_key = ck_secret_alloc(CK_KEY_LEN);
	v->cert_key = ck_secret_alloc(CK_KEY_LEN);
	if (!v->record_key || !v->audit_key || !v->cert_key) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = derive_label(service, CK_LABEL_RECORDS, v->record_key)) < 0 ||
	    (r = derive_label(service, CK_LABEL_AUDIT, v->audit_key)) < 0 ||
	    (r = derive_label(service, CK_LABEL_CERT, v->cert_key)) < 0 ||
	    (r = derive_label(service, CK_LABEL_SERVICE_TREE, tree_key)) < 0)
		goto out;
	r = ck_tree_init(&v->service, v->hdr.volume_id, v->hdr.service_tree_id, tree_key);
	ck_wipe(tree_key, sizeof(tree_key));
	if (r < 0)
		goto out;
	v->path = strdup(path);
	r = v->path ? 0 : -ENOMEM;
out:
	ck_secret_free(kek, CK_KEY_LEN);
	ck_secret_free(service, CK_WRAPPED_KEY_LEN);
	ck_secret_free(mac_key, CK_KEY_LEN);
	if (hfd >= 0)
		close(hfd);
	if (r < 0) {
		if (r == -ENOMEM && !*msg)
			fail(msg, msg_len, r, "out of memory opening %s", path);
		ck_volume_close(v);
	}
	return r;
}

void ck_volume_close(struct ck_volume *v)
{
	ck_tree_release(&v->service);
	ck_secret_free(v->record_key, CK_KEY_LEN);
	ck_secret_free(v->audit_key, CK_KEY_LEN);
	ck_secret_free(v->cert_key, CK_KEY_LEN);
	v->record_key = v->audit_key = v->cert_key = NULL;
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	free(v->path);
	v->path = NULL;
}

int ck_volume_backing_path(const struct ck_volume *v, const char *plain, char *out, size_t n)
{
	char comp[CK_NAME_MAX + 1], enc[CK_ENC_NAME_MAX], entry[CK_LONG_NAME_LEN + 1],
	     side[CK_LONG_NAME_LEN + 1], idpath[8192];
	uint8_t buf[CK_DIRID_LEN + 1], dirid[CK_ID_LEN];
	const char *p = plain;
	size_t o = 0;
	struct stat st;
	int fd, r;
	ssize_t len;

	out[0] = '\0';
	while (*p) {
		const char *s = p;
		size_t l;
		while (*p && *p != '/')
			p++;
		l = (size_t)(p - s);
		if (*p == '/')
			p++;
		if (l == 0 || l > CK_NAME_MAX)
			return -EINVAL;
		memcpy(comp, s, l);
		comp[l] = '\0';
		snprintf(idpath, sizeof(idpath), "%s%s%s", o ? out : "", o ? "/" : "", CK_DIRID_FILE);
		fd = openat(v->fd, idpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -errno;
		len = read(fd, buf, sizeof(buf));
		close(fd);
		if (len < 0 || ck_dirid_decode(buf, (size_t)len, dirid) < 0)
			return -EIO;
		if ((r = ck_name_encrypt(&v->service, dirid, comp, l, enc)) < 0)
			return r;
		const char *e = enc;
		if (ck_name_is_long(strlen(enc))) {
			if ((r = ck_long_names(enc, strlen(enc), entry, side)) < 0)
				return r;
			e = entry;
		}
		if (o + strlen(e) + 2 > n)
			return -ENAMETOOLONG;
		o += (size_t)snprintf(out + o, n - o, "%s%s", o ? "/" : "", e);
		if (fstatat(v->fd, out, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (*p && !S_ISDIR(st.st_mode))
			return -ENOTDIR;
	}
	return 0;
}

int ck_rename_noreplace(int od, const char *o, int nd, const char *n)
{
	struct stat st;
	int e;

	if (renameat2(od, o, nd, n, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTSUP && errno != ENOSYS)
		return -1;
	/* The flag may be what was refused (EINVAL is also the answer to
	 * renaming a directory into itself; the plain calls below then give
	 * the same error). */
	if (fstatat(od, o, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		if (linkat(od, o, nd, n, 0) < 0)
			return -1;
		if (unlinkat(od, o, 0) < 0) {
			e = errno;
			unlinkat(nd, n, 0);
			errno = e;
			return -1;
		}
		return 0;
	}
	if (fstatat(nd, n, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	if (errno != ENOENT)
		return -1;
	if (renameat(od, o, nd, n) == 0)
		return 0;
	if (errno == ENOTEMPTY || errno == ENOTDIR || errno == EISDIR)
		errno = EEXIST;
	return -1;
}
