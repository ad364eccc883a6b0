/* ck-fsck: check a ckfs volume offline, with its keys, and (--repair)
 * remove what interrupted operations provably left behind.
 *
 * Order of the checks: the volume header (decoded here first so that a
 * corrupt header is told apart from a missing key, then authenticated by
 * ck_volume_open); the metadata directory .ckfs (modes, temporary files);
 * every DEP and tree record, each file decoded on its own so that a bad
 * one is named; the audit chain; then a walk of the backing tree from the
 * root under the service tree's keys, switching to a DEP tree's keys at
 * the root of a tree whose record is active and whose DEP unwraps (as
 * fs/trees.c does: only from the service tree, trees do not nest); while a
 * tree is being applied, an object is good under its old or its new keys
 * (docs/FORMAT.md, "apply"), as a mount serves it. In
 * each directory: its ID, every name (long names through their sidecars),
 * and per entry: file header, MAC, binding to (directory ID, name), sealed
 * size, backing size, every block, blocks after the final one; symlink
 * targets; user.ck.* xattrs.
 *
 * --repair removes only leftovers of interrupted operations (docs/ck-fsck.8
 * lists them): temporary directories of mkdir holding nothing but ckfs
 * metadata, orphan long-name sidecars, temporary files, empty backing files
 * of an interrupted create, whole authenticated blocks after the final
 * block; and it gives a directory that lost its ID in an interrupted rmdir
 * (and holds no user entry) a fresh one, as the daemon would. A block that
 * fails authentication is reported, never removed.
 *
 * Paths in reports: plaintext paths start with '/'; volume metadata is
 * named relative to the volume (".ckfs/audit.log"). An entry whose name
 * cannot be decrypted appears as "[backing name]".
 *
 * Secrets: tree, DEP and file keys only in ck_secret_alloc memory (libck);
 * DEP keys are freed once the trees are loaded, file keys after each file,
 * tree keys at exit; decrypted blocks, names,
 * symlink targets and xattrs are wiped after use; paths (plaintext) are
 * wiped before they are freed.
 *
 * Exit status as fsck(8): 0 clean, 1 problems found and all fixed, 4
 * problems left, 8 operational error (8 is added to 4 when both apply),
 * 16 usage error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "keys/audit.h"
#include "keys/dep.h"
#include "keys/format.h"
#include "keys/keyfile.h"
#include "keys/names.h"
#include "keys/secmem.h"
#include "keys/tree.h"
#include "keys/util.h"
#include "keys/volume.h"
#include "tools/common.h"

static const char *prog = "ck-fsck";

enum { FSCK_CLEAN = 0, FSCK_FIXED = 1, FSCK_LEFT = 4, FSCK_OPERR = 8, FSCK_USAGE = 16 };

/* The fix argument of report(): not fixable, fixable but --repair not
 * given, 0 (repaired), or the negative errno of a failed repair. */
#define NOT_FIXABLE   INT_MIN
#define FIXABLE       (INT_MIN + 1)

#define MAX_DEPTH          1024   /* directory levels walked */
#define MAX_BLOCK_REPORTS  8      /* bad blocks reported one by one, per file */
#define READ_BLOCKS        32     /* blocks per read */
#define RECORD_MAX         65536  /* larger record files are corrupt (as libck) */

struct problem {
	char *path;             /* plaintext ("/a/b") or metadata (".ckfs/x") */
	const char *kind;       /* static string */
	char *detail;
	int fixable, fixed;
};

struct skipped {
	char *path;
	char *reason;
};

/* The keys entries are checked with: k, and while a tree is being applied
 * (re-encrypted by ck-assign --apply) also old, the keys its data comes
 * from; an object is good under either, as the daemon serves it. */
struct keyset {
	const struct ck_tree *k;
	const struct ck_tree *old;      /* NULL unless applying */
};

/* A DEP tree as the checker sees it: its keys when checkable, else why not. */
struct ftree {
	char path[CK_TREE_PATH_MAX];    /* record path: relative, no leading '/' */
	int ready;                      /* keys in k (and old_k when applying) */
	int operr;                      /* not checkable for an operational reason */
	char reason[CK_DEP_NAME_MAX + 320];
	/* Secrets: set by ck_tree_init in load_trees, wiped by ck_tree_release
	 * in release_trees (has_k, has_old say what to release). Single-
	 * threaded, no lock. */
	struct ck_tree k, old_k;
	int has_k, has_old;
	struct keyset ks;               /* k, and old_k or the service tree */
};

struct inoset {
	struct ino_key { dev_t dev; ino_t ino; } *v;
	size_t n, cap;                  /* open addressing, cap a power of two */
};

struct strbuf {
	char *p;
	size_t len, cap;
};

struct fsck {
	const char *volume;
	int json, repair, progress, opened, walked;
	struct ck_volume v;
	char volume_id[2 * CK_ID_LEN + 1];
	struct problem *pr;
	size_t npr, prcap;
	struct skipped *sk;
	size_t nsk, skcap;
	unsigned long long dirs, files, nfixed, nleft, nfixable;
	int operr;
	char operr_msg[1024];
	struct ck_dep *deps;
	size_t ndeps, depcap;
	struct ck_tree_rec *recs;       /* wiped before free: paths and wrapped keys */
	size_t nrecs, reccap;
	struct ftree *trees;
	size_t ntrees;
	struct inoset seen;             /* hard-linked files whose blocks were checked */
	uint8_t *ct;                    /* READ_BLOCKS ciphertext blocks */
	uint8_t *pt;                    /* one plaintext block, wiped after each file */
	struct pbar bar;                /* on a terminal only */
	unsigned long long total;       /* backing entries to walk (for the bar) */
	unsigned long long passed;      /* of those, in trees skipped (not checkable) */
};

/* ------------------------------------------------------------ small helpers */

static void usage(FILE *o)
{
	fprintf(o,
		"usage: ck-fsck [--json] [--repair] [--key-dir DIR] VOLUME\n"
		"Check a ckfs volume offline, with its keys: volume header, DEP and tree\n"
		"records, audit log, and every directory, name, file header, block, symlink\n"
		"and xattr. Problems are printed one per line with the plaintext path.\n"
		"  --repair        remove leftovers of interrupted operations (never user data)\n"
		"  --json          one JSON document on stdout\n"
		"  --key-dir DIR   key directory (default $CKFS_KEY_DIR, else %s)\n"
		"  -h, --help      this text;  -V, --version  the version\n"
		"exit status: 0 clean, 1 all problems fixed, 4 problems left, 8 operational\n"
		"error (added to 4 when both apply), 16 usage error\n", CK_KEY_DIR_DEFAULT);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(FSCK_OPERR);
	}
	return q;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xrealloc(NULL, n), s, n);
}

/* Wipe (paths and details hold plaintext names) and free a string. */
static void sfree(char *s)
{
	if (s) {
		ck_wipe(s, strlen(s));
		free(s);
	}
}

static char *vfmt(const char *fmt, va_list ap)
{
	va_list aq;
	int n;
	char *s;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	s = xrealloc(NULL, (size_t)(n < 0 ? 0 : n) + 1);
	vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	return s;
}

static void sb_init(struct strbuf *b, const char *s)
{
	b->len = strlen(s);
	b->cap = b->len + 256;
	b->p = xrealloc(NULL, b->cap);
	memcpy(b->p, s, b->len + 1);
}

/* Append "/" (unless the buffer is "/" or "") and a component; returns the
 * old length for sb_pop. wrap: "[name]" (a name that did not decrypt). */
static size_t sb_push(struct strbuf *b, const char *comp, int wrap)
{
	size_t old = b->len, need = b->len + strlen(comp) + 4;

	if (need > b->cap) {
		b->cap = need * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	b->len += (size_t)snprintf(b->p + b->len, b->cap - b->len, "%s%s%s%s",
	                           b->len && strcmp(b->p, "/") ? "/" : "",
	                           wrap ? "[" : "", comp, wrap ? "]" : "");
	return old;
}

static void sb_pop(struct strbuf *b, size_t old)
{
	ck_wipe(b->p + old, b->len - old);
	b->len = old;
	b->p[old] = '\0';
}

static void sb_release(struct strbuf *b)
{
	if (b->p) {
		ck_wipe(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
}

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

/* 1 the first time (dev, ino) is seen, 0 after. */
static int inoset_add(struct inoset *s, dev_t dev, ino_t ino)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		struct inoset t = { NULL, 0, s->cap ? s->cap * 2 : 256 };
		t.v = xrealloc(NULL, t.cap * sizeof(*t.v));
		memset(t.v, 0xff, t.cap * sizeof(*t.v));
		for (i = 0; i < s->cap; i++)
			if (s->v[i].ino != (ino_t)-1)
				inoset_add(&t, s->v[i].dev, s->v[i].ino);
		free(s->v);
		*s = t;
	}
	i = (size_t)((ino * 0x9e3779b97f4a7c15ull) ^ dev) & (s->cap - 1);
	for (; s->v[i].ino != (ino_t)-1; i = (i + 1) & (s->cap - 1))
		if (s->v[i].ino == ino && s->v[i].dev == dev)
			return 0;
	s->v[i].dev = dev;
	s->v[i].ino = ino;
	s->n++;
	return 1;
}

/* ------------------------------------------------------------ output */

/* Length of a valid UTF-8 sequence at p, or 0. */
static int utf8_len(const unsigned char *p)
{
	uint32_t c;
	int n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string; bytes that are not UTF-8 (names are arbitrary bytes)
 * become U+FFFD so that the document always parses. */
static void json_text(FILE *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', o);
	while (*p) {
		int n = utf8_len(p);
		if (*p == '"' || *p == '\\') {
			fputc('\\', o);
			fputc(*p++, o);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(o, "\\u%04x", *p++);
		} else if (n) {
			fwrite(p, 1, (size_t)n, o);
			p += n;
		} else {
			fputs("\\ufffd", o);
			p++;
		}
	}
	fputc('"', o);
}

/* Text for one report line: control bytes and '\' escaped, so that a name
 * holding a newline cannot fake another line. */
static void text_out(FILE *o, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", o);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(o, "\\x%02x", *p);
		else
			fputc(*p, o);
	}
}

static void progress_clear(struct fsck *f)
{
	pbar_clear(&f->bar);
}

/* The bar (tools/common.c: on a terminal only, at most ten updates a
 * second): entries walked of those counted before the walk. */
static void progress(struct fsck *f)
{
	char extra[64];

	if (!f->progress)
		return;
	snprintf(extra, sizeof(extra), "%zu problem%s", f->npr, f->npr == 1 ? "" : "s");
	pbar_update(&f->bar, f->dirs + f->files + f->passed, f->total, extra);
}

/* The number of backing entries the walk visits (directories, files,
 * long names; not ckfs's own reserved entries), for the bar's ETA. */
static unsigned long long count_entries(int dfd, int depth)
{
	unsigned long long n = 1;
	DIR *d;
	struct dirent *e;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return n;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && strncmp(e->d_name, CK_LONG_PREFIX, 2))
			continue;
		if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (sub >= 0) {
				n += depth < 200 ? count_entries(sub, depth + 1) : 1;
				close(sub);
				continue;
			}
		}
		n++;
	}
	closedir(d);
	return n;
}

static void report(struct fsck *f, const char *path, const char *kind, int fix,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void report(struct fsck *f, const char *path, const char *kind, int fix,
                   const char *fmt, ...)
{
	struct problem *p;
	va_list ap;

	if (f->npr == f->prcap) {
		f->prcap = f->prcap ? f->prcap * 2 : 64;
		f->pr = xrealloc(f->pr, f->prcap * sizeof(*f->pr));
	}
	p = &f->pr[f->npr++];
	va_start(ap, fmt);
	p->detail = vfmt(fmt, ap);
	va_end(ap);
	p->path = xstrdup(path);
	p->kind = kind;
	p->fixable = fix != NOT_FIXABLE;
	p->fixed = fix == 0;
	if (p->fixed)
		f->nfixed++;
	else
		f->nleft++;
	if (fix == FIXABLE)
		f->nfixable++;
	if (!strcmp(kind, "io"))
		f->operr = 1;   /* part of the volume could not be read */
	if (f->json)
		return;
	progress_clear(f);
	text_out(stdout, path);
	fputs(": ", stdout);
	text_out(stdout, p->detail);
	if (fix == FIXABLE)
		fputs(" (fixable with --repair)", stdout);
	else if (fix == 0)
		fputs(" (fixed)", stdout);
	else if (fix != NOT_FIXABLE)
		printf(" (repair failed: %s)", strerror(-fix));
	fputc('\n', stdout);
	fflush(stdout);
}

static void skip_tree(struct fsck *f, const char *path, const struct ftree *t)
{
	struct skipped *s;

	if (t->operr)
		f->operr = 1;
	if (f->nsk == f->skcap) {
		f->skcap = f->skcap ? f->skcap * 2 : 16;
		f->sk = xrealloc(f->sk, f->skcap * sizeof(*f->sk));
	}
	s = &f->sk[f->nsk++];
	s->path = xstrdup(path);
	s->reason = xstrdup(t->reason);
	if (f->json)
		return;
	progress_clear(f);
	text_out(stdout, path);
	fputs(": not checkable: ", stdout);
	text_out(stdout, t->reason);
	fputs(" (skipped)\n", stdout);
	fflush(stdout);
}

/* Operational trouble that stops part of the check (exit status 8). */
static void operr(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void operr(struct fsck *f, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = vfmt(fmt, ap);
	va_end(ap);
	if (!f->operr)
		snprintf(f->operr_msg, sizeof(f->operr_msg), "%s", m);
	f->operr = 1;
	progress_clear(f);
	fprintf(stderr, "%s: ", prog);
	text_out(stderr, m);
	fputc('\n', stderr);
	sfree(m);
}

/* ------------------------------------------------------------ repairs */

/* Remove a regular file (the caller proved it is a leftover). */
static int fix_unlink(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) < 0)
		return -errno;
	fsync(dfd);
	return 0;
}

/* Remove a mkdir temporary directory holding only ckfs metadata. */
static int fix_tmpdir(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if ((unlinkat(fd, CK_DIRID_FILE, 0) < 0 && errno != ENOENT) ||
	    (unlinkat(fd, CK_DIRID_FILE ".tmp", 0) < 0 && errno != ENOENT))
		r = -errno;
	close(fd);
	if (r == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	if (r == 0)
		fsync(dfd);
	return r;
}

/* A fresh directory ID for a directory with no user entry (what the
 * daemon does on first use after an interrupted rmdir): temp, fsync, rename. */
static int fix_dirid(int dfd, uint8_t id[static CK_ID_LEN])
{
	uint8_t buf[CK_DIRID_LEN];
	int fd, r = 0;

	if ((r = ck_random(id, CK_ID_LEN)) < 0)
		return r;
	if ((r = ck_dirid_encode(id, buf)) < 0)
		return r;
	fd = openat(dfd, CK_DIRID_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	            0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && renameat(dfd, CK_DIRID_FILE ".tmp", dfd, CK_DIRID_FILE) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dfd, CK_DIRID_FILE ".tmp", 0);
	else
		fsync(dfd);
	return r;
}

/* Cut a backing file to len, keeping its times (they are the plaintext
 * file's times). */
static int fix_cut(int fd, uint64_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || ftruncate(fd, (off_t)len) < 0)
		return -errno;
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	if (futimens(fd, ts) < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------ volume */

/* Open the volume: 0, or the exit status (header problems reported). */
static int open_volume(struct fsck *f, const char *key_dir)
{
	uint8_t buf[CK_VOLUME_HDR_LEN + 1], id[CK_ID_LEN];
	uint8_t *kek = NULL;
	struct ck_volume_hdr h = { 0 };
	char msg[1024], kpath[4200];
	ssize_t n = -1;
	int fd, r;

	fd = open(f->volume, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		operr(f, "cannot open volume %s: %s", f->volume, strerror(errno));
		return FSCK_OPERR;
	}
	r = openat(fd, CK_VOLUME_DIR "/" CK_VOLUME_HDR_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	close(fd);
	if (r < 0) {
		if (errno == ENOENT)
			operr(f, "%s is not a ckfs volume (no %s/%s)", f->volume, CK_VOLUME_DIR,
			      CK_VOLUME_HDR_NAME);
		else
			operr(f, "cannot read the volume header of %s: %s", f->volume, strerror(errno));
		return FSCK_OPERR;
	}
	fd = r;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		operr(f, "cannot read the volume header of %s: %s", f->volume, strerror(errno));
		return FSCK_OPERR;
	}
	switch ((r = ck_volume_hdr_decode(buf, (size_t)n, &h))) {
	case 0:
		break;
	case -EPROTONOSUPPORT:
		operr(f, "volume %s has format version %u, which this ck-fsck does not support",
		      f->volume, h.version);
		return FSCK_OPERR;
	default:
		report(f, CK_VOLUME_DIR "/" CK_VOLUME_HDR_NAME, "volume-header", NOT_FIXABLE,
		       "volume header is corrupt (%s); nothing else can be checked",
		       r == -EINVAL ? "bad magic" : "checksum or field check failed");
		return FSCK_LEFT;
	}
	if ((r = ck_volume_open(f->volume, key_dir, &f->v, msg, sizeof(msg))) == 0) {
		f->opened = 1;
		ck_hex(f->v.hdr.volume_id, CK_ID_LEN, f->volume_id);
		return 0;
	}
	/* -EBADMSG is a header that fails its MAC or a corrupt key file,
	 * -EKEYREJECTED a key file of another volume or a wrapped service key
	 * that does not unwrap: with an intact key file of this volume, the
	 * header is at fault (a problem of the volume, not of the setup). */
	if ((r == -EBADMSG || r == -EKEYREJECTED) && ck_key_dir_check(key_dir, 0) == 0 &&
	    (kek = ck_secret_alloc(CK_KEY_LEN))) {
		ck_keyfile_path(key_dir, h.kek_id, kpath, sizeof(kpath));
		if (ck_keyfile_read(kpath, id, kek) == 0 && ck_memeq(id, h.kek_id, CK_ID_LEN)) {
			ck_secret_free(kek, CK_KEY_LEN);
			report(f, CK_VOLUME_DIR "/" CK_VOLUME_HDR_NAME, "volume-header", NOT_FIXABLE,
			       "volume header %s; nothing else can be checked", r == -EBADMSG
			       ? "failed authentication (changed by something other than ckfs)"
			       : "holds a service key that its key file does not unwrap (corrupt)");
			return FSCK_LEFT;
		}
	}
	ck_secret_free(kek, CK_KEY_LEN);
	operr(f, "%s", msg);
	return FSCK_OPERR;
}

/* 1 (and the mountpoint) if a ckfs daemon on this host serves the volume. */
static int mounted_at(const struct fsck *f, char *where, size_t n)
{
	struct stat vs, s;
	char *line = NULL;
	size_t cap = 0;
	FILE *m;
	int hit = 0;

	if (fstat(f->v.fd, &vs) < 0 || !(m = fopen("/proc/self/mounts", "re")))
		return 0;
	while (!hit && getline(&line, &cap, m) > 0) {
		char *src = strtok(line, " "), *dst = strtok(NULL, " "), *type = strtok(NULL, " ");
		if (!src || !dst || !type || strcmp(type, "fuse.ckfs") || strncmp(src, "ckfs:", 5))
			continue;
		/* /proc/mounts escapes space, tab, newline and '\' as \ooo. */
		for (char **fld = (char *[]){ src, dst, NULL }; *fld; fld++) {
			char *r = *fld, *w = *fld;
			while (*r) {
				if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
				    r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
					*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
					r += 4;
				} else {
					*w++ = *r++;
				}
			}
			*w = '\0';
		}
		if (src[5] == '/' && stat(src + 5, &s) == 0 && s.st_dev == vs.st_dev &&
		    s.st_ino == vs.st_ino) {
			snprintf(where, n, "%s", dst);
			hit = 1;
		}
	}
	free(line);
	fclose(m);
	return hit;
}

/* ------------------------------------------------------------ metadata */

static int is_hex_id(const char *s)
{
	if (strlen(s) != 2 * CK_ID_LEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* A record temporary file ".<hex>.<pid>.tmp" whose writer still runs on
 * this host is work in progress, not a leftover. */
static int tmp_writer_alive(const char *name)
{
	const char *end = name + strlen(name) - 4, *p = end;
	long pid;
	char *e;

	while (p > name && p[-1] != '.')
		p--;
	if (p == end || p <= name + 1)
		return 0;
	pid = strtol(p, &e, 10);
	if (e != end || pid <= 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* The audit head's temporary file is ours to remove only while no writer
 * holds the audit log's lock. */
static int fix_audit_tmp(int mfd, const char *name)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = openat(mfd, "audit.log", O_RDWR | O_CLOEXEC | O_NOFOLLOW), r;

	if (fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		close(fd);
		return -EBUSY;
	}
	r = fix_unlink(mfd, name);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Modes and temporary files in one directory of .ckfs (rel: its path). */
static void check_meta_dir(struct fsck *f, int dfd, const char *rel, int top)
{
	int fd = dup(dfd);
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		operr(f, "cannot read %s: %s", rel, strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		char path[512];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", rel, e->d_name);
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (e->d_name[0] == '.' && ends_with(e->d_name, ".tmp") && S_ISREG(st.st_mode)) {
			if (tmp_writer_alive(e->d_name))
				continue;
			int fix = !f->repair ? FIXABLE
			        : top && !strcmp(e->d_name, ".audit.head.tmp") ? fix_audit_tmp(dfd, e->d_name)
			        : fix_unlink(dfd, e->d_name);
			report(f, path, "orphan", fix, "temporary file left by an interrupted update");
			continue;
		}
		if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && (st.st_mode & 077))
			report(f, path, "permissions", NOT_FIXABLE,
			       "mode %04o lets other users read volume metadata; it should be %s",
			       (unsigned)(st.st_mode & 07777), S_ISDIR(st.st_mode) ? "0700" : "0600");
		if (top && S_ISDIR(st.st_mode) && e->d_name[0] != '.') {
			int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				check_meta_dir(f, sub, path, 0);
				close(sub);
			}
		}
	}
	closedir(d);
}

/* Decode every record file of .ckfs/<sub>/ on its own. */
static void check_records(struct fsck *f, int mfd, const char *sub, int is_dep)
{
	uint8_t *buf = xrealloc(NULL, RECORD_MAX + 1);
	int dfd = openat(mfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fd;
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (dfd < 0) {
		if (errno != ENOENT)
			operr(f, "cannot read %s/%s: %s", CK_VOLUME_DIR, sub, strerror(errno));
		free(buf);
		return;
	}
	if (!(d = fdopendir(dfd))) {
		operr(f, "cannot read %s/%s: %s", CK_VOLUME_DIR, sub, strerror(errno));
		close(dfd);
		free(buf);
		return;
	}
	while ((e = readdir(d))) {
		char path[512], hex[2 * CK_ID_LEN + 1];
		const uint8_t *id;
		ssize_t n;
		int r;

		if (e->d_name[0] == '.')
			continue;       /* temporary files: check_meta_dir */
		snprintf(path, sizeof(path), "%s/%s/%s", CK_VOLUME_DIR, sub, e->d_name);
		if (!is_hex_id(e->d_name)) {
			report(f, path, "record", NOT_FIXABLE, "unexpected file in the %s record "
			       "directory (record files are named by their 32-hex-digit ID)", sub);
			continue;
		}
		fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			if (fd < 0)
				report(f, path, "record", NOT_FIXABLE, "record cannot be read: %s",
				       strerror(errno));
			else
				report(f, path, "record", NOT_FIXABLE, "record is not a regular file");
			if (fd >= 0)
				close(fd);
			continue;
		}
		n = pread_full(fd, buf, RECORD_MAX + 1, 0);
		close(fd);
		if (n < 0) {
			report(f, path, "record", NOT_FIXABLE, "record cannot be read: %s",
			       strerror((int)-n));
			continue;
		}
		if (is_dep) {
			if (f->ndeps == f->depcap) {
				f->depcap = f->depcap ? f->depcap * 2 : 16;
				f->deps = xrealloc(f->deps, f->depcap * sizeof(*f->deps));
			}
			r = n > RECORD_MAX ? -EBADMSG : ck_dep_decode(&f->v, buf, (size_t)n, &f->deps[f->ndeps]);
			id = f->deps[f->ndeps].id;
		} else {
			if (f->nrecs == f->reccap) {
				f->reccap = f->reccap ? f->reccap * 2 : 16;
				f->recs = xrealloc(f->recs, f->reccap * sizeof(*f->recs));
			}
			r = n > RECORD_MAX ? -EBADMSG : ck_tree_rec_decode(&f->v, buf, (size_t)n, &f->recs[f->nrecs]);
			id = f->recs[f->nrecs].id;
		}
		if (r < 0) {
			report(f, path, "record", NOT_FIXABLE, "%s record %s (it does not decode or "
			       "authenticate under this volume's record key)", is_dep ? "dep" : "tree",
			       r == -EPROTONOSUPPORT ? "has a version this ck-fsck does not know"
			       : "is corrupt or forged");
			continue;
		}
		ck_hex(id, CK_ID_LEN, hex);
		if (strcmp(hex, e->d_name)) {
			report(f, path, "record", NOT_FIXABLE, "record holds ID %s, not the ID it is "
			       "named by (copied or renamed)", hex);
			continue;
		}
		if (is_dep)
			f->ndeps++;
		else
			f->nrecs++;
	}
	closedir(d);
	ck_wipe(buf, RECORD_MAX + 1);
	free(buf);
}

static const struct ck_dep *dep_by_id(const struct fsck *f, const uint8_t id[CK_ID_LEN])
{
	for (size_t i = 0; i < f->ndeps; i++)
		if (!memcmp(f->deps[i].id, id, CK_ID_LEN))
			return &f->deps[i];
	return NULL;
}

/* Records that still describe a path: not purged, not retired. */
static int rec_live(const struct ck_tree_rec *t)
{
	return t->state != CK_TREE_PURGED && t->state != CK_TREE_RETIRED;
}

/* What the records say together: every tree names a DEP that exists, has
 * a normal path, and no two live trees share or nest paths (except a tree
 * being applied and the record it replaces). */
static void check_record_links(struct fsck *f)
{
	char norm[CK_TREE_PATH_MAX], hex[2 * CK_ID_LEN + 1], path[512];

	for (size_t i = 0; i < f->nrecs; i++) {
		const struct ck_tree_rec *t = &f->recs[i];
		ck_hex(t->id, CK_ID_LEN, hex);
		snprintf(path, sizeof(path), "%s/trees/%s", CK_VOLUME_DIR, hex);
		if (!dep_by_id(f, t->dep_id))
			report(f, path, "record", NOT_FIXABLE, "tree record for /%s names a dep "
			       "that has no (valid) record", t->path);
		if (ck_tree_path_normalise(t->path, norm, sizeof(norm)) < 0 || strcmp(norm, t->path))
			report(f, path, "record", NOT_FIXABLE, "tree record has an invalid path \"%s\"",
			       t->path);
		if (!rec_live(t))
			continue;
		size_t same = 0, pair = 0, earlier = 0;
		for (size_t j = 0; j < f->nrecs; j++) {
			const struct ck_tree_rec *u = &f->recs[j];
			size_t a = strlen(t->path), b = strlen(u->path), m = a < b ? a : b;
			if (j == i || !rec_live(u) || strncmp(t->path, u->path, m) ||
			    (a != b && t->path[m] != '/' && u->path[m] != '/'))
				continue;
			if (a != b) {
				if (j > i)
					report(f, path, "record", NOT_FIXABLE, "tree /%s nests with tree /%s "
					       "(trees do not nest)", t->path, u->path);
				continue;
			}
			earlier |= j < i;
			same++;
			pair += (t->state == CK_TREE_APPLYING && !memcmp(t->old_rec_id, u->id, CK_ID_LEN)) ||
			        (u->state == CK_TREE_APPLYING && !memcmp(u->old_rec_id, t->id, CK_ID_LEN));
		}
		/* Once per path; a tree being applied and the record it
		 * replaces are the one legitimate pair. */
		if (!earlier && same && !(same == 1 && pair == 1))
			report(f, path, "record", NOT_FIXABLE, "%zu live tree records claim /%s (an "
			       "interrupted or repeated apply?); the newest is used for the check",
			       same + 1, t->path);
	}
}

static void check_meta(struct fsck *f)
{
	int mfd = openat(f->v.fd, CK_VOLUME_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int lock = -1;
	struct stat st;

	if (mfd < 0) {
		operr(f, "cannot open %s/%s: %s", f->volume, CK_VOLUME_DIR, strerror(errno));
		return;
	}
	if (fstat(mfd, &st) == 0 && (st.st_mode & 077))
		report(f, CK_VOLUME_DIR, "permissions", NOT_FIXABLE, "mode %04o lets other users "
		       "into the volume's metadata; it should be 0700", (unsigned)(st.st_mode & 07777));
	/* Record temporary files are removed under the tools' record lock. */
	if (f->repair && (lock = ck_meta_lock(&f->v)) < 0)
		operr(f, "cannot lock the volume's records: %s", strerror(-lock));
	check_meta_dir(f, mfd, CK_VOLUME_DIR, 1);
	check_records(f, mfd, "deps", 1);
	check_records(f, mfd, "trees", 0);
	ck_meta_unlock(lock);
	close(mfd);
	check_record_links(f);
}

static void check_audit(struct fsck *f)
{
	char msg[512];
	long count = 0;
	int r = ck_audit_verify(&f->v, &count, msg, sizeof(msg));

	if (r == -EBADMSG)
		report(f, CK_VOLUME_DIR "/audit.log", "audit", NOT_FIXABLE,
		       "audit log failed verification: %s", msg[0] ? msg : "bad record");
	else if (r < 0)
		operr(f, "cannot verify the audit log: %s", msg[0] ? msg : strerror(-r));
}

/* DEP keys, unwrapped at most once per DEP (customer keys only: a
 * checker has no business using the availability key). */
struct depkeys {
	uint8_t *keys;          /* ndeps * CK_KEY_LEN, secret */
	int *res;               /* 0 not tried, 1 unwrapped, else the negative errno */
	char (*msg)[160];
};

/* The keys of tree record t into out: 0, or -1 with ft->reason (and
 * ft->operr) set. */
static int rec_keys(struct fsck *f, struct depkeys *dk, const struct ck_tree_rec *t,
                    struct ck_tree *out, struct ftree *ft)
{
	const struct ck_dep *d = dep_by_id(f, t->dep_id);
	uint8_t *tk = NULL;
	char hex[2 * CK_ID_LEN + 1], path[512];
	size_t di;
	int r = -1;

	if (!d) {
		snprintf(ft->reason, sizeof(ft->reason), "the dep of tree record /%s has no valid "
		         "record", t->path);
		return -1;
	}
	if (d->state != CK_DEP_ACTIVE) {
		snprintf(ft->reason, sizeof(ft->reason), "dep \"%s\" is %s", d->name,
		         ck_dep_state_name(d->state));
		return -1;
	}
	di = (size_t)(d - f->deps);
	if (!dk->res[di]) {
		struct ck_dep copy = *d;        /* unwrap updates last_result */
		int fb = 0;
		dk->res[di] = ck_dep_unwrap(&copy, dk->keys + di * CK_KEY_LEN, 0, &fb, dk->msg[di],
		                            sizeof(dk->msg[di]));
		if (dk->res[di] == 0)
			dk->res[di] = 1;
		ck_wipe(&copy, sizeof(copy));
	}
	if (dk->res[di] != 1) {
		ft->operr = dk->res[di] != -EKEYREVOKED;
		if (dk->res[di] == -EKEYREVOKED)
			snprintf(ft->reason, sizeof(ft->reason), "dep \"%s\" revoked: every customer key "
			         "denied", d->name);
		else
			snprintf(ft->reason, sizeof(ft->reason), "no customer key of dep \"%s\" answers "
			         "(%s)", d->name, dk->msg[di]);
		return -1;
	}
	if (!(tk = ck_secret_alloc(CK_KEY_LEN))) {
		snprintf(ft->reason, sizeof(ft->reason), "out of secure memory for its keys");
		ft->operr = 1;
		return -1;
	}
	/* Mid-roll of the DEP key, the tree key may be under the next one. */
	if (ck_tree_key_from(t, dk->keys + di * CK_KEY_LEN, tk) < 0) {
		ck_hex(t->id, CK_ID_LEN, hex);
		snprintf(path, sizeof(path), "%s/trees/%s", CK_VOLUME_DIR, hex);
		report(f, path, "record", NOT_FIXABLE, "tree record for /%s: its tree key does not "
		       "unwrap under dep \"%s\" (corrupt record?)", t->path, d->name);
		snprintf(ft->reason, sizeof(ft->reason), "the key of tree record /%s does not unwrap",
		         t->path);
	} else if (ck_tree_init(out, f->v.hdr.volume_id, t->id, tk) < 0) {
		snprintf(ft->reason, sizeof(ft->reason), "out of secure memory for its keys");
		ft->operr = 1;
	} else {
		r = 0;
	}
	ck_secret_free(tk, CK_KEY_LEN);
	return r;
}

/* Which record governs a path: applying over active; among equals the
 * newest. Pending records leave the path under the service key, retired
 * ones are history; a purged one matters only if nothing replaced it. */
static int rec_rank(const struct ck_tree_rec *t)
{
	switch (t->state) {
	case CK_TREE_APPLYING: return 4;
	case CK_TREE_ACTIVE: return 3;
	case CK_TREE_PENDING: return 2;
	case CK_TREE_PURGED: return 1;
	default: return 0;
	}
}

/* Keys of every DEP tree that can be checked; the reason for the others. */
static void load_trees(struct fsck *f)
{
	static const uint8_t zero[CK_ID_LEN];
	struct depkeys dk = { 0 };
	size_t nd = f->ndeps ? f->ndeps : 1;

	f->trees = xrealloc(NULL, (f->nrecs ? f->nrecs : 1) * sizeof(*f->trees));
	memset(f->trees, 0, (f->nrecs ? f->nrecs : 1) * sizeof(*f->trees));
	dk.res = xrealloc(NULL, nd * sizeof(*dk.res));
	memset(dk.res, 0, nd * sizeof(*dk.res));
	dk.msg = xrealloc(NULL, nd * sizeof(*dk.msg));
	if (!(dk.keys = ck_secret_alloc(nd * CK_KEY_LEN))) {
		operr(f, "out of secure memory for keys");
		goto out;
	}
	for (size_t i = 0; i < f->nrecs; i++) {
		const struct ck_tree_rec *t = &f->recs[i], *best = t, *old = NULL;
		struct ftree *ft;
		int seen = 0;

		if (!rec_rank(t))
			continue;
		for (size_t j = 0; j < f->ntrees && !seen; j++)
			seen = !strcmp(f->trees[j].path, t->path);
		if (seen)
			continue;
		for (size_t j = i + 1; j < f->nrecs; j++) {
			const struct ck_tree_rec *u = &f->recs[j];
			if (strcmp(u->path, best->path))
				continue;
			if (rec_rank(u) > rec_rank(best) ||
			    (rec_rank(u) == rec_rank(best) && (u->created > best->created ||
			     (u->created == best->created && u->generation > best->generation))))
				best = u;
		}
		if (best->state == CK_TREE_PENDING)
			continue;       /* still under the service key until applied */
		ft = &f->trees[f->ntrees++];
		snprintf(ft->path, sizeof(ft->path), "%s", t->path);
		if (best->state == CK_TREE_PURGED) {
			snprintf(ft->reason, sizeof(ft->reason), "tree purged (its ciphertext should be "
			         "gone: re-run 'ck-dep VOLUME purge' for its dep)");
			continue;
		}
		if (rec_keys(f, &dk, best, &ft->k, ft) < 0)
			continue;
		ft->has_k = 1;
		ft->ks.k = &ft->k;
		if (best->state == CK_TREE_APPLYING) {
			if (!memcmp(best->old_rec_id, zero, CK_ID_LEN)) {
				ft->ks.old = &f->v.service;
			} else {
				for (size_t j = 0; j < f->nrecs && !old; j++)
					if (!memcmp(f->recs[j].id, best->old_rec_id, CK_ID_LEN))
						old = &f->recs[j];
				if (!old) {
					snprintf(ft->reason, sizeof(ft->reason), "being applied from a tree "
					         "record that no longer exists");
					continue;
				}
				if (rec_keys(f, &dk, old, &ft->old_k, ft) < 0) {
					char why[sizeof(ft->reason)];
					snprintf(why, sizeof(why), "%s", ft->reason);
					snprintf(ft->reason, sizeof(ft->reason), "being applied, and the keys "
					         "it comes from are unusable: %s", why);
					continue;
				}
				ft->has_old = 1;
				ft->ks.old = &ft->old_k;
			}
		}
		ft->ready = 1;
	}
out:
	ck_secret_free(dk.keys, nd * CK_KEY_LEN);
	free(dk.res);
	free(dk.msg);
}

static void release_trees(struct fsck *f)
{
	for (size_t i = 0; i < f->ntrees; i++) {
		if (f->trees[i].has_k)
			ck_tree_release(&f->trees[i].k);
		if (f->trees[i].has_old)
			ck_tree_release(&f->trees[i].old_k);
	}
	free(f->trees);
	f->trees = NULL;
	f->ntrees = 0;
}

/* The DEP tree rooted at rel (a plaintext path without '/'), or NULL. */
static struct ftree *tree_at(struct fsck *f, const char *rel)
{
	for (size_t i = 0; i < f->ntrees; i++)
		if (!strcmp(f->trees[i].path, rel))
			return &f->trees[i];
	return NULL;
}

/* 1 if a DEP tree root lies strictly below rel ("" is the root). */
static int tree_below(struct fsck *f, const char *rel)
{
	size_t l = strlen(rel);

	for (size_t i = 0; i < f->ntrees; i++)
		if (!l || (!strncmp(f->trees[i].path, rel, l) && f->trees[i].path[l] == '/'))
			return 1;
	return 0;
}

/* ------------------------------------------------------------ entries */

/* Every user.ck.* xattr of fd: name and value authenticate (under the
 * keys its name decrypts with). */
static __attribute__((noinline)) void check_xattrs(struct fsck *f, const struct keyset *ks,
                                                    int fd, const char *path)
{
	char *list = NULL, name[CK_XATTR_NAME_MAX + 1];
	uint8_t *val = NULL, *pt = NULL;
	ssize_t n = flistxattr(fd, NULL, 0);

	if (n < 0 && errno != ENOTSUP)
		report(f, path, "io", NOT_FIXABLE, "cannot list extended attributes: %s", strerror(errno));
	if (n <= 0)
		return;
	list = xrealloc(NULL, XATTR_LIST_MAX + 1);
	n = flistxattr(fd, list, XATTR_LIST_MAX);
	if (n < 0) {
		report(f, path, "io", NOT_FIXABLE, "cannot list extended attributes: %s", strerror(errno));
		goto out;
	}
	list[n] = '\0';
	val = xrealloc(NULL, XATTR_SIZE_MAX);
	pt = xrealloc(NULL, XATTR_SIZE_MAX);
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		const struct ck_tree *t = ks->k;
		ssize_t vn;

		if (strncmp(p, CK_XATTR_PREFIX, strlen(CK_XATTR_PREFIX)))
			continue;       /* not ckfs's: never shown through the mount */
		if (ck_xattr_name_decrypt(t, p, name, sizeof(name)) < 0 &&
		    (!(t = ks->old) || ck_xattr_name_decrypt(t, p, name, sizeof(name)) < 0)) {
			report(f, path, "xattr", NOT_FIXABLE, "extended attribute %s: its name does not "
			       "decrypt (tampered, or copied from another tree)", p);
			continue;
		}
		vn = fgetxattr(fd, p, val, XATTR_SIZE_MAX);
		if (vn < 0) {
			report(f, path, "io", NOT_FIXABLE, "cannot read extended attribute %s: %s", name,
			       strerror(errno));
		} else if (vn < CK_BLOCK_OVERHEAD ||
		           ck_xattr_value_decrypt(t, p, val, (size_t)vn, pt) < 0) {
			report(f, path, "xattr", NOT_FIXABLE, "extended attribute %s: its value failed "
			       "authentication (tampered, or moved from another attribute)", name);
		}
		if (vn > 0)
			ck_wipe(pt, (size_t)vn);
		ck_wipe(name, sizeof(name));
	}
out:
	free(list);
	free(val);
	free(pt);
}

static __attribute__((noinline)) void check_symlink(struct fsck *f, const struct keyset *ks,
                                                     int dfd, const char *e, const char *path)
{
	char enc[PATH_MAX + 1], out[CK_SYMLINK_MAX + 1];
	ssize_t n = readlinkat(dfd, e, enc, sizeof(enc));

	if (n < 0)
		report(f, path, "io", NOT_FIXABLE, "cannot read the symlink: %s", strerror(errno));
	else if ((size_t)n >= sizeof(enc) ||
	         (ck_symlink_decrypt(ks->k, enc, (size_t)n, out, sizeof(out)) < 0 &&
	          (!ks->old || ck_symlink_decrypt(ks->old, enc, (size_t)n, out, sizeof(out)) < 0)))
		report(f, path, "symlink", NOT_FIXABLE, "symlink target failed authentication "
		       "(tampered, or moved from another tree)");
	ck_wipe(out, sizeof(out));
}

/* How a block may be sealed: under the keys of the tree its header names,
 * and, while a file is being applied (its header still names the old
 * tree), also under the new tree's keys (blocks are converted first). */
struct blockkeys {
	struct ck_gcm *g[2];
	struct ck_file_ref ref[2];
	int n;
};

static int blockkeys_init(struct blockkeys *bk, const struct ck_tree *t, const struct ck_tree *alt,
                          const struct ck_file_hdr *h, const struct ck_file_keys *k)
{
	struct ck_file_keys ak = { 0 };
	int r;

	memset(bk, 0, sizeof(*bk));
	bk->ref[0] = (struct ck_file_ref){ t->volume_id, t->id, h->file_id };
	if ((r = ck_gcm_new(&bk->g[0], k->content)) < 0)
		return r;
	bk->n = 1;
	if (!alt)
		return 0;
	bk->ref[1] = (struct ck_file_ref){ alt->volume_id, alt->id, h->file_id };
	if ((r = ck_file_keys_derive(alt, h->file_id, &ak)) == 0 &&
	    (r = ck_gcm_new(&bk->g[1], ak.content)) == 0)
		bk->n = 2;
	ck_file_keys_release(&ak);
	return r;
}

static void blockkeys_release(struct blockkeys *bk)
{
	for (int i = 0; i < bk->n; i++)
		ck_gcm_free(bk->g[i]);
	bk->n = 0;
}

/* 1 if ct authenticates as block b with mark last (or, not final, also
 * still marked last: a growth interrupted by a crash, fs/chunk.c). */
static int block_opens(const struct blockkeys *bk, uint64_t b, int last, int either,
                       const uint8_t *ct, uint8_t *pt)
{
	for (int i = 0; i < bk->n; i++)
		if (ck_block_open(bk->g[i], &bk->ref[i], b, last, ct, CK_CBLOCK_SIZE, pt) == CK_BLOCK_SIZE ||
		    (either && ck_block_open(bk->g[i], &bk->ref[i], b, !last, ct, CK_CBLOCK_SIZE, pt) ==
		     CK_BLOCK_SIZE))
			return 1;
	return 0;
}

/* NULL if block b is good, else what is wrong with it. */
static const char *block_fault(const struct blockkeys *bk, uint64_t b, int is_final, int sparse,
                               const uint8_t *ct, uint8_t *pt)
{
	if (!is_final && ck_block_is_hole(ct, CK_CBLOCK_SIZE))
		return sparse ? NULL : "is all zeros in a file without holes (tampered?)";
	if (block_opens(bk, b, is_final, !is_final, ct, pt))
		return NULL;
	return is_final ? "(the final block) failed authentication (tampered, swapped, or torn by a crash)"
	                : "failed authentication (tampered, swapped, or torn by a crash)";
}

/* Blocks 0..final, then what lies after the final block. */
static void check_blocks(struct fsck *f, const struct blockkeys *bk, int fd, int sparse,
                         uint64_t size, uint64_t bsize, const char *path)
{
	uint64_t final = ck_final_block(size), want = ck_backing_size(size), nbad = 0;
	uint64_t whole = bsize > CK_FILE_HDR_LEN ? (bsize - CK_FILE_HDR_LEN) / CK_CBLOCK_SIZE : 0;

	if (bsize < want)
		report(f, path, "truncated", NOT_FIXABLE, "backing file is truncated: %llu of %llu "
		       "bytes; blocks %llu to %llu are missing or cut", (unsigned long long)bsize,
		       (unsigned long long)want, (unsigned long long)whole, (unsigned long long)final);
	for (uint64_t b = 0; b <= final && b < whole;) {
		uint64_t end = final < whole - 1 ? final : whole - 1;
		size_t nb = end - b + 1 > READ_BLOCKS ? READ_BLOCKS : (size_t)(end - b + 1);
		ssize_t got = pread_full(fd, f->ct, nb * CK_CBLOCK_SIZE, (off_t)ck_block_offset(b));
		if (got != (ssize_t)(nb * CK_CBLOCK_SIZE)) {
			report(f, path, "io", NOT_FIXABLE, "cannot read block %llu: %s",
			       (unsigned long long)b, got < 0 ? strerror((int)-got) : "short read");
			break;
		}
		for (size_t i = 0; i < nb; i++, b++) {
			const char *why = block_fault(bk, b, b == final, sparse, f->ct + i * CK_CBLOCK_SIZE,
			                              f->pt);
			if (why && nbad++ < MAX_BLOCK_REPORTS)
				report(f, path, "block", NOT_FIXABLE, "block %llu %s", (unsigned long long)b, why);
		}
	}
	if (nbad > MAX_BLOCK_REPORTS)
		report(f, path, "block", NOT_FIXABLE, "%llu more blocks failed authentication",
		       (unsigned long long)(nbad - MAX_BLOCK_REPORTS));
	if (bsize > want) {
		uint64_t extra = bsize - want, n = extra / CK_CBLOCK_SIZE, bad = UINT64_MAX;
		/* A write killed mid-way (SIGKILL stops a long pwrite between
		 * pages) ends the backing file on a page boundary with part of
		 * a block: the whole blocks before it must still be this
		 * file's. Anything else not in whole blocks was put there. */
		int cut = extra % CK_CBLOCK_SIZE && bsize % 4096 == 0;
		if (extra % CK_CBLOCK_SIZE && !cut) {
			report(f, path, "trailing-garbage", NOT_FIXABLE, "%llu bytes after the final block "
			       "are not whole blocks of this file (appended or tampered)",
			       (unsigned long long)extra);
			goto out;
		}
		/* Left by an interrupted growth or shrink, they are whole blocks
		 * of this file that authenticate, with either mark, or holes
		 * (FORMAT.md, "backing size"). */
		for (uint64_t b = final + 1; b <= final + n && bad == UINT64_MAX; b++) {
			if (pread_full(fd, f->ct, CK_CBLOCK_SIZE, (off_t)ck_block_offset(b)) != CK_CBLOCK_SIZE ||
			    (!ck_block_is_hole(f->ct, CK_CBLOCK_SIZE) && !block_opens(bk, b, 0, 1, f->ct, f->pt)))
				bad = b;
		}
		if (bad != UINT64_MAX)
			report(f, path, "trailing-garbage", NOT_FIXABLE, "block %llu after the final block "
			       "is not one of this file's (appended or tampered)", (unsigned long long)bad);
		else if (cut)
			report(f, path, "trailing-blocks", f->repair ? fix_cut(fd, want) : FIXABLE,
			       "%llu block%s and %llu bytes of one after the final block, left by a "
			       "write cut short", (unsigned long long)n, n == 1 ? "" : "s",
			       (unsigned long long)(extra % CK_CBLOCK_SIZE));
		else
			report(f, path, "trailing-blocks", f->repair ? fix_cut(fd, want) : FIXABLE,
			       "%llu block%s after the final block, left by an interrupted write or "
			       "truncate", (unsigned long long)n, n == 1 ? "" : "s");
	}
out:
	ck_wipe(f->pt, CK_BLOCK_SIZE);
}

/* A regular file: header, MAC, binding (when the name is known), sealed
 * size, backing size, blocks (once per inode), xattrs. */
static __attribute__((noinline)) void check_file(struct fsck *f, const struct keyset *ks, int dfd,
                                                  const char *e, const uint8_t *dirid,
                                                  const char *plain, const char *path)
{
	uint8_t raw[CK_FILE_HDR_LEN], b[CK_BINDING_LEN];
	const struct ck_tree *t = ks->k, *alt = NULL;
	struct ck_file_keys k = { 0 };
	struct blockkeys bk = { .n = 0 };
	struct ck_file_hdr h;
	struct ck_file_ref ref;
	struct ck_gcm *sg = NULL;
	struct stat st;
	uint64_t size = 0;
	ssize_t n;
	int fd, r, flags = (f->repair ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;

	fd = openat(dfd, e, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, e, flags);
	if (fd < 0 || fstat(fd, &st) < 0) {
		report(f, path, "io", NOT_FIXABLE, "cannot open the backing file: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode))
		goto out;       /* replaced while we looked */
	check_xattrs(f, ks, fd, path);
	if (st.st_size == 0 && st.st_nlink == 1 && plain) {
		/* Created under a name ckfs gave it, then a crash before its
		 * header was written: no byte of user data was ever in it. */
		report(f, path, "orphan", f->repair ? fix_unlink(dfd, e) : FIXABLE,
		       "empty backing file left by an interrupted create");
		if (f->repair && e[0] == '.') {
			char side[CK_LONG_NAME_LEN + 1];
			snprintf(side, sizeof(side), "%s%s", CK_SIDE_PREFIX, e + 2);
			unlinkat(dfd, side, 0);
		}
		goto out;
	}
	n = pread_full(fd, raw, sizeof(raw), 0);
	if (n < 0) {
		report(f, path, "io", NOT_FIXABLE, "cannot read the file header: %s", strerror((int)-n));
		goto out;
	}
	if ((r = ck_file_hdr_parse(raw, (size_t)n, &h)) < 0) {
		report(f, path, "header", NOT_FIXABLE, "%s", r == -EINVAL
		       ? "not a ckfs file: no file header (bad magic)"
		       : r == -EPROTONOSUPPORT ? "file header has a version this ck-fsck does not know"
		       : "file header is corrupt (cut short, or a reserved field or flag is set)");
		goto out;
	}
	/* Mid-apply, a header names the old or the new tree and is sealed
	 * with its keys; blocks may be under either (FORMAT.md, "apply"). */
	if (ks->old) {
		if (!memcmp(h.tree_id, ks->old->id, CK_ID_LEN))
			t = ks->old;
		alt = t == ks->old ? ks->k : ks->old;
	}
	if ((r = ck_file_keys_derive(t, h.file_id, &k)) < 0) {
		operr(f, "%s: cannot derive the file keys: %s", path, strerror(-r));
		goto out;
	}
	ref.volume_id = t->volume_id;
	ref.tree_id = t->id;
	ref.file_id = h.file_id;
	if (ck_file_hdr_verify(raw, &ref, k.header) < 0) {
		report(f, path, "header", NOT_FIXABLE, "file header failed authentication (%s)",
		       memcmp(h.tree_id, t->id, CK_ID_LEN)
		       ? "it names another tree: moved or copied from another tree or volume?"
		       : "tampered, or copied from another volume");
		goto out;
	}
	if (plain && dirid) {
		if ((r = ck_binding(k.header, dirid, plain, strlen(plain), b)) < 0) {
			operr(f, "%s: cannot compute its binding: %s", path, strerror(-r));
			goto out;
		}
		if (!ck_file_hdr_has_binding(&h, b))
			report(f, path, "binding", NOT_FIXABLE, "file does not belong under this name: its "
			       "header holds no binding for it (ciphertext moved, copied or swapped)");
	}
	if ((r = ck_gcm_new(&sg, k.size)) < 0) {
		operr(f, "%s: cannot set up decryption: %s", path, strerror(-r));
		goto out;
	}
	r = ck_file_size_open(sg, &ref, h.size_box, &size);
	ck_gcm_free(sg);
	if (r < 0) {
		report(f, path, "size", NOT_FIXABLE, "sealed size in the file header failed authentication");
		goto out;
	}
	if (st.st_nlink > 1 && !inoset_add(&f->seen, st.st_dev, st.st_ino))
		goto out;       /* blocks checked through another link */
	if ((r = blockkeys_init(&bk, t, alt, &h, &k)) < 0) {
		operr(f, "%s: cannot set up decryption: %s", path, strerror(-r));
		goto out;
	}
	check_blocks(f, &bk, fd, h.flags & CK_FILE_SPARSE, size, (uint64_t)st.st_size, path);
out:
	blockkeys_release(&bk);
	ck_file_keys_release(&k);
	close(fd);
}

/* Every entry of a mkdir temporary directory is ckfs metadata. */
static int tmpdir_only_meta(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), ok = 1;
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (fd < 0)
		return 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while (ok && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			ok = (!strcmp(e->d_name, CK_DIRID_FILE) || !strcmp(e->d_name, CK_DIRID_FILE ".tmp")) &&
			     fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			     S_ISREG(st.st_mode) && st.st_size <= CK_DIRID_LEN;
	closedir(d);
	return ok;
}

/* A backing entry in the reserved namespace (a name starting with '.'),
 * other than .ckfs.dir, .ckfs (root) and long-name entries. */
static void check_reserved(struct fsck *f, int dfd, const char *e, const char *path,
                           const char *bpath)
{
	struct stat st, lst;
	char other[NAME_MAX + 1];

	if (fstatat(dfd, e, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!strcmp(e, CK_DIRID_FILE ".tmp") && S_ISREG(st.st_mode)) {
		report(f, path, "orphan", f->repair ? fix_unlink(dfd, e) : FIXABLE,
		       "temporary directory ID %s%s%s left by an interrupted mkdir", bpath,
		       *bpath ? "/" : "", e);
		return;
	}
	if (!strncmp(e, ".ckfs.tmp.", 10) && e[10] && S_ISLNK(st.st_mode)) {
		/* ck-assign --apply writes a symlink's new target under this
		 * name, then renames it over the old one. */
		report(f, path, "orphan", f->repair ? fix_unlink(dfd, e) : FIXABLE,
		       "temporary symlink %s%s%s left by an interrupted apply", bpath,
		       *bpath ? "/" : "", e);
		return;
	}
	if (!strncmp(e, ".ckfs.tmp.", 10) && e[10] && S_ISDIR(st.st_mode)) {
		if (tmpdir_only_meta(dfd, e))
			report(f, path, "orphan", f->repair ? fix_tmpdir(dfd, e) : FIXABLE,
			       "temporary directory %s%s%s left by an interrupted mkdir", bpath,
			       *bpath ? "/" : "", e);
		else
			report(f, path, "orphan", NOT_FIXABLE, "temporary directory %s%s%s holds entries "
			       "other than ckfs metadata; not removed", bpath, *bpath ? "/" : "", e);
		return;
	}
	if (!strncmp(e, CK_SIDE_PREFIX, 2) && e[2] && S_ISREG(st.st_mode)) {
		if (ends_with(e, ".tmp")) {
			report(f, path, "orphan", f->repair ? fix_unlink(dfd, e) : FIXABLE,
			       "temporary long-name sidecar %s%s%s left by an interrupted create or "
			       "rename", bpath, *bpath ? "/" : "", e);
			return;
		}
		snprintf(other, sizeof(other), "%s%s", CK_LONG_PREFIX, e + 2);
		if (fstatat(dfd, other, &lst, AT_SYMLINK_NOFOLLOW) == 0)
			return;         /* checked with its entry */
		if (st.st_size < CK_ENC_NAME_MAX) {
			report(f, path, "orphan", f->repair ? fix_unlink(dfd, e) : FIXABLE,
			       "long-name sidecar %s%s%s without its entry, left by an interrupted "
			       "create, rename or unlink", bpath, *bpath ? "/" : "", e);
			return;
		}
	}
	report(f, path, "unknown-entry", NOT_FIXABLE, "unexpected entry %s%s%s in the reserved "
	       "namespace (names starting with '.' belong to ckfs); left alone", bpath,
	       *bpath ? "/" : "", e);
}

/* Plaintext name of a user entry (plain entry or ".L" long-name entry):
 * its length, or -1 (reported). */
static int decode_name(struct fsck *f, const struct keyset *ks, int dfd,
                       const uint8_t dirid[static CK_ID_LEN], const char *e,
                       char plain[static CK_NAME_MAX + 1], const char *path, const char *bpath)
{
	char full[CK_ENC_NAME_MAX + 1], ent[CK_LONG_NAME_LEN + 1], side[CK_LONG_NAME_LEN + 1];
	const char *enc = e, *sl = *bpath ? "/" : "";
	int is_long = e[0] == '.', n;

	if (is_long) {
		struct stat st;
		ssize_t got;
		int fd;

		snprintf(side, sizeof(side), "%s%s", CK_SIDE_PREFIX, e + 2);
		fd = openat(dfd, side, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			report(f, path, "long-name", NOT_FIXABLE, "entry %s%s%s: its long-name sidecar %s "
			       "is %s; its name cannot be recovered", bpath, sl, e, side,
			       errno == ENOENT ? "missing" : strerror(errno));
			return -1;
		}
		got = fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ? -1 : read(fd, full, sizeof(full));
		close(fd);
		if (got <= 0 || (size_t)got >= CK_ENC_NAME_MAX || memchr(full, '\0', (size_t)got)) {
			report(f, path, "long-name", NOT_FIXABLE, "entry %s%s%s: its long-name sidecar is "
			       "empty, too long or not a file", bpath, sl, e);
			return -1;
		}
		full[got] = '\0';
		if (ck_long_names(full, (size_t)got, ent, side) < 0 || strcmp(ent, e)) {
			report(f, path, "long-name", NOT_FIXABLE, "entry %s%s%s: its long-name sidecar does "
			       "not hash to the entry's name (tampered or swapped)", bpath, sl, e);
			return -1;
		}
		enc = full;
	}
	n = ck_name_decrypt(ks->k, dirid, enc, strlen(enc), plain);
	if (n < 0 && ks->old)
		n = ck_name_decrypt(ks->old, dirid, enc, strlen(enc), plain);
	if (n < 0) {
		report(f, path, "name", NOT_FIXABLE, "entry %s%s%s: its name does not decrypt "
		       "(tampered, or moved from another directory or tree)", bpath, sl, e);
		return -1;
	}
	/* Lookups derive the backing name from the plaintext name: a name
	 * stored the other way (long as short or short as long) is unreachable. */
	if (ck_name_is_long(ck_b64_enclen((size_t)n + CK_SIV_TAG_LEN)) != is_long) {
		report(f, path, "name", NOT_FIXABLE, "entry %s%s%s is stored as a %s name but ckfs looks "
		       "it up as a %s one (unreachable)", bpath, sl, e, is_long ? "long" : "short",
		       is_long ? "short" : "long");
		ck_wipe(plain, CK_NAME_MAX + 1);
		return -1;
	}
	return n;
}

/* The directory's ID: 1 and id, or 0 (reported; the names cannot be read). */
static int dir_id(struct fsck *f, int dfd, int user_empty, const char *path,
                  uint8_t id[static CK_ID_LEN])
{
	uint8_t buf[CK_DIRID_LEN + 1];
	struct stat st;
	ssize_t n = -1;
	int fd = openat(dfd, CK_DIRID_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), r;

	if (fd < 0 && errno == ENOENT && user_empty) {
		/* Only an interrupted rmdir (which removes the ID first) leaves
		 * this, and only in a directory with no user entry. */
		r = f->repair ? fix_dirid(dfd, id) : FIXABLE;
		report(f, path, "dirid", r, "directory ID (.ckfs.dir) is missing, left by an "
		       "interrupted rmdir%s", f->repair ? "; a new one was written" : "");
		return r == 0;
	}
	if (fd < 0) {
		report(f, path, "dirid", NOT_FIXABLE, "directory ID (.ckfs.dir) is %s; the names in "
		       "this directory cannot be decrypted", errno == ENOENT ? "missing" : strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || ck_dirid_decode(buf, (size_t)n, id) < 0) {
		report(f, path, "dirid", NOT_FIXABLE, "directory ID (.ckfs.dir) is corrupt; the names "
		       "in this directory cannot be decrypted");
		return 0;
	}
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry name of a directory, sorted (reports come out in a stable
 * order and sidecars can be matched with their entries). */
static char **list_dir(int dfd, size_t *count)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	*count = 0;
	if (fd < 0)
		return NULL;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return NULL;
	}
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (!v)
		v = xrealloc(NULL, sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_str);
	*count = n;
	return v;
}

static void walk_dir(struct fsck *f, const struct keyset *ks, int in_service, int dfd,
                     struct strbuf *pp, struct strbuf *bp, int depth);

/* One user entry of a directory (plain[0] == '\0' if its name is unknown). */
static void check_entry(struct fsck *f, const struct keyset *ks, int in_service, int dfd,
                        const char *e, const uint8_t *dirid, const char *plain,
                        struct strbuf *pp, struct strbuf *bp, int depth, int below)
{
	size_t pm = sb_push(pp, plain[0] ? plain : e, !plain[0]), bm = sb_push(bp, e, 0);
	struct ftree *ft;
	struct stat st;
	int fd;

	if (in_service && below && (ft = tree_at(f, pp->p + 1))) {
		if (!ft->ready) {
			skip_tree(f, pp->p, ft);
			if (f->progress && (fd = openat(dfd, e, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			                                O_NOFOLLOW)) >= 0) {
				f->passed += count_entries(fd, 0);
				close(fd);
			}
			goto out;
		}
		ks = &ft->ks;
		in_service = 0;
	}
	if (fstatat(dfd, e, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		report(f, pp->p, "io", NOT_FIXABLE, "cannot stat the backing entry: %s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (depth >= MAX_DEPTH) {
			operr(f, "%s: more than %d directory levels; not checked below", pp->p, MAX_DEPTH);
			goto out;
		}
		fd = openat(dfd, e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			report(f, pp->p, "io", NOT_FIXABLE, "cannot open the backing directory: %s",
			       strerror(errno));
			goto out;
		}
		check_xattrs(f, ks, fd, pp->p);
		walk_dir(f, ks, in_service, fd, pp, bp, depth + 1);
		close(fd);
		goto out;
	}
	f->files++;
	if (S_ISREG(st.st_mode))
		check_file(f, ks, dfd, e, dirid, plain[0] ? plain : NULL, pp->p);
	else if (S_ISLNK(st.st_mode))
		check_symlink(f, ks, dfd, e, pp->p);
	else if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode) &&
	         !S_ISBLK(st.st_mode))
		report(f, pp->p, "unknown-entry", NOT_FIXABLE, "backing entry has an unknown file type");
	progress(f);
out:
	sb_pop(pp, pm);
	sb_pop(bp, bm);
}

static void walk_dir(struct fsck *f, const struct keyset *ks, int in_service, int dfd,
                     struct strbuf *pp, struct strbuf *bp, int depth)
{
	char plain[CK_NAME_MAX + 1];
	uint8_t dirid[CK_ID_LEN];
	size_t n = 0;
	char **names = list_dir(dfd, &n);
	int have_id, user_empty = 1, below;

	f->dirs++;
	progress(f);
	if (!names) {
		report(f, pp->p, "io", NOT_FIXABLE, "cannot read the backing directory: %s",
		       strerror(errno));
		return;
	}
	for (size_t i = 0; i < n && user_empty; i++)
		user_empty = names[i][0] == '.' && strncmp(names[i], CK_LONG_PREFIX, 2);
	have_id = dir_id(f, dfd, user_empty, pp->p, dirid);
	below = in_service && tree_below(f, pp->p + 1);
	for (size_t i = 0; i < n; i++) {
		const char *e = names[i];
		int is_long = !strncmp(e, CK_LONG_PREFIX, 2) && strlen(e) == CK_LONG_NAME_LEN;

		if (!strcmp(e, CK_DIRID_FILE) || (depth == 0 && !strcmp(e, CK_VOLUME_DIR)))
			continue;
		if (e[0] == '.' && !is_long) {
			check_reserved(f, dfd, e, pp->p, bp->p);
			continue;
		}
		plain[0] = '\0';
		if (have_id && decode_name(f, ks, dfd, dirid, e, plain, pp->p, bp->p) < 0)
			plain[0] = '\0';
		check_entry(f, ks, in_service, dfd, e, have_id ? dirid : NULL, plain, pp, bp, depth, below);
		ck_wipe(plain, sizeof(plain));
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ------------------------------------------------------------ main */

static void print_json(struct fsck *f, int rc)
{
	fputs("{\"version\":1,\"volume\":", stdout);
	json_text(stdout, f->volume);
	if (f->volume_id[0])
		printf(",\"volume_id\":\"%s\"", f->volume_id);
	if (f->operr_msg[0]) {
		fputs(",\"error\":", stdout);
		json_text(stdout, f->operr_msg);
	}
	fputs(",\"problems\":[", stdout);
	for (size_t i = 0; i < f->npr; i++) {
		const struct problem *p = &f->pr[i];
		fputs(i ? ",{\"path\":" : "{\"path\":", stdout);
		json_text(stdout, p->path);
		printf(",\"kind\":\"%s\",\"detail\":", p->kind);
		json_text(stdout, p->detail);
		printf(",\"fixable\":%s,\"fixed\":%s}", p->fixable ? "true" : "false",
		       p->fixed ? "true" : "false");
	}
	fputs("],\"skipped\":[", stdout);
	for (size_t i = 0; i < f->nsk; i++) {
		fputs(i ? ",{\"path\":" : "{\"path\":", stdout);
		json_text(stdout, f->sk[i].path);
		fputs(",\"reason\":", stdout);
		json_text(stdout, f->sk[i].reason);
		fputc('}', stdout);
	}
	printf("],\"files\":%llu,\"dirs\":%llu,\"fixed\":%llu,\"left\":%llu,\"exit\":%d}\n",
	       f->files, f->dirs, f->nfixed, f->nleft, rc);
}

static void check_volume(struct fsck *f)
{
	struct keyset service = { &f->v.service, NULL };
	struct strbuf pp, bp;
	char where[4096];
	int fd;

	if (mounted_at(f, where, sizeof(where))) {
		if (f->repair) {
			operr(f, "volume %s is mounted at %s; unmount it before --repair", f->volume, where);
			return;
		}
		progress_clear(f);
		fprintf(stderr, "%s: warning: volume %s is mounted at %s; what is in flight may be "
		        "reported as a problem\n", prog, f->volume, where);
	}
	check_meta(f);
	check_audit(f);
	load_trees(f);
	fd = openat(f->v.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		operr(f, "cannot open volume %s: %s", f->volume, strerror(errno));
		return;
	}
	sb_init(&pp, "/");
	sb_init(&bp, "");
	f->walked = 1;
	if (f->progress) {
		f->total = count_entries(fd, 0);
		pbar_init(&f->bar, prog, "entries", 0, f->total);
	}
	check_xattrs(f, &service, fd, "/");
	walk_dir(f, &service, 1, fd, &pp, &bp, 0);
	close(fd);
	sb_release(&pp);
	sb_release(&bp);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-dir", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "repair", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct fsck f = { 0 };
	const char *key_dir = NULL;
	struct rlimit rl;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:jrhV", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_dir = optarg; break;
		case 'j': f.json = 1; break;
		case 'r': f.repair = 1; break;
		case 'h': usage(stdout); return FSCK_CLEAN;
		case 'V': printf("ck-fsck %s\n", CKFS_VERSION); return FSCK_CLEAN;
		default: tool_opt_error(prog, c, argv); return FSCK_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: expected one VOLUME (see %s --help)\n", prog, prog);
		return FSCK_USAGE;
	}
	f.volume = argv[optind];
	f.progress = isatty(2);
	if (ck_secmem_init(1 << 20) < 0) {
		fprintf(stderr, "%s: cannot set up secure memory for keys\n", prog);
		return FSCK_OPERR;
	}
	ck_log_init(prog, 0, 0);
	/* One descriptor per directory level. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	f.ct = xrealloc(NULL, READ_BLOCKS * CK_CBLOCK_SIZE);
	f.pt = xrealloc(NULL, CK_BLOCK_SIZE);
	rc = open_volume(&f, ck_key_dir(key_dir));
	if (rc == 0) {
		check_volume(&f);
		rc = f.nleft ? FSCK_LEFT : f.nfixed ? FSCK_FIXED : FSCK_CLEAN;
		if (f.operr)
			rc |= FSCK_OPERR;
	}
	if (f.progress && f.walked) {
		char extra[64];
		snprintf(extra, sizeof(extra), "%zu problem%s", f.npr, f.npr == 1 ? "" : "s");
		f.bar.done = f.dirs + f.files + f.passed;
		pbar_done(&f.bar, extra);
	}
	progress_clear(&f);
	if (f.json) {
		print_json(&f, rc);
	} else if (f.opened && f.walked) {
		printf("%s: %s: %llu directories, %llu files", prog, f.volume, f.dirs, f.files);
		if (f.nsk)
			printf(", %zu tree%s not checkable", f.nsk, f.nsk == 1 ? "" : "s");
		if (!f.npr)
			printf(": clean%s\n", f.operr ? " as far as checked" : "");
		else
			printf(": %zu problem%s (%llu fixed, %llu left)%s\n", f.npr, f.npr == 1 ? "" : "s",
			       f.nfixed, f.nleft, f.nfixable ? "; --repair fixes the fixable ones" : "");
	}
	fflush(stdout);
	release_trees(&f);
	for (size_t i = 0; i < f.npr; i++) {
		sfree(f.pr[i].path);
		sfree(f.pr[i].detail);
	}
	for (size_t i = 0; i < f.nsk; i++) {
		sfree(f.sk[i].path);
		sfree(f.sk[i].reason);
	}
	free(f.pr);
	free(f.sk);
	free(f.deps);
	if (f.recs) {
		ck_wipe(f.recs, f.reccap * sizeof(*f.recs));
		free(f.recs);
	}
	free(f.seen.v);
	ck_wipe(f.pt, CK_BLOCK_SIZE);
	free(f.ct);
	free(f.pt);
	if (f.opened)
		ck_volume_close(&f.v);
	return rc;
}
