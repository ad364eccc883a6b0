/* DEP and tree records. See dep.h; the layout is in docs/FORMAT.md:
 *   0  "CKREC1\0\0" | 8 kind u8 | 9 version u8 | 10 reserved u16 |
 *   12 record ID [16] | 28 nonce [12] | 40 ciphertext | tag [16]
 * AAD = bytes 0..27. The plaintext payloads are sequences of little-endian
 * fixed-size fields and u16-length-prefixed byte strings (the put and get helpers). */
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "dep.h"
#include "format.h"
#include "secmem.h"
#include "util.h"

#define REC_HDR 40
enum { KIND_DEP = 1, KIND_TREE = 2, KIND_CONFIG = 3 };
static const uint8_t rec_magic[8] = "CKREC1";

struct buf { uint8_t *p; size_t len, cap; int err; };

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t c = (b->cap ? b->cap * 2 : 512);
		while (c < b->len + n)
			c *= 2;
		uint8_t *q = realloc(b->p, c);
		if (!q) {
			b->err = -ENOMEM;
			return;
		}
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}
static void put8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put16(struct buf *b, uint16_t v) { uint8_t x[2]; ck_put16(x, v); put(b, x, 2); }
static void put32(struct buf *b, uint32_t v) { uint8_t x[4]; ck_put32(x, v); put(b, x, 4); }
static void put64(struct buf *b, uint64_t v) { uint8_t x[8]; ck_put64(x, v); put(b, x, 8); }
static void putstr(struct buf *b, const void *s, size_t n) { put16(b, (uint16_t)n); put(b, s, n); }

struct rd { const uint8_t *p; size_t len, off; int err; };
static const uint8_t *get(struct rd *r, size_t n)
{
	if (r->err || r->off + n > r->len) {
		r->err = -EBADMSG;
		return NULL;
	}
	r->off += n;
	return r->p + r->off - n;
}
static uint8_t get8(struct rd *r) { const uint8_t *p = get(r, 1); return p ? p[0] : 0; }
static uint16_t get16(struct rd *r) { const uint8_t *p = get(r, 2); return p ? ck_get16(p) : 0; }
static uint32_t get32(struct rd *r) { const uint8_t *p = get(r, 4); return p ? ck_get32(p) : 0; }
static uint64_t get64(struct rd *r) { const uint8_t *p = get(r, 8); return p ? ck_get64(p) : 0; }
/* A string into dst (cap bytes incl. NUL when text); returns its length. */
static size_t getstr(struct rd *r, void *dst, size_t cap, int text)
{
	uint16_t n = get16(r);
	const uint8_t *p;

	if (n + (text ? 1u : 0u) > cap) {
		r->err = -EBADMSG;
		return 0;
	}
	if (!(p = get(r, n)))
		return 0;
	memcpy(dst, p, n);
	if (text) {
		((char *)dst)[n] = '\0';
		if (memchr(dst, '\0', n))
			r->err = -EBADMSG;
	}
	return n;
}

static int seal(const struct ck_volume *v, int kind, const uint8_t id[CK_ID_LEN],
                struct buf *pl, uint8_t **out, size_t *n)
{
	struct ck_gcm *g = NULL;
	uint8_t *o;
	int r;

	if (pl->err)
		return pl->err;
	if (!(o = calloc(1, REC_HDR + pl->len + CK_GCM_TAG_LEN)))
		return -ENOMEM;
	memcpy(o, rec_magic, 8);
	o[8] = (uint8_t)kind;
	o[9] = 1;
	memcpy(o + 12, id, CK_ID_LEN);
	if ((r = ck_random(o + 28, CK_GCM_NONCE_LEN)) < 0 || (r = ck_gcm_new(&g, v->record_key)) < 0 ||
	    (r = ck_gcm_seal(g, o + 28, o, 28, pl->p, pl->len, o + REC_HDR, o + REC_HDR + pl->len)) < 0) {
		free(o);
		ck_gcm_free(g);
		return r;
	}
	ck_gcm_free(g);
	*out = o;
	*n = REC_HDR + pl->len + CK_GCM_TAG_LEN;
	return 0;
}

/* Decrypt a record of kind; *pt (malloc'ed, wiped and freed by caller). */
static int unseal(const struct ck_volume *v, int kind, const uint8_t *in, size_t n,
                  uint8_t id[CK_ID_LEN], uint8_t **pt, size_t *pt_len)
{
	struct ck_gcm *g = NULL;
	size_t len;
	int r;

	if (n < REC_HDR + CK_GCM_TAG_LEN || memcmp(in, rec_magic, 8) != 0 || in[8] != kind)
		return -EBADMSG;
	if (in[9] != 1)
		return -EPROTONOSUPPORT;
	len = n - REC_HDR - CK_GCM_TAG_LEN;
	if (!(*pt = malloc(len ? len : 1)))
		return -ENOMEM;
	if ((r = ck_gcm_new(&g, v->record_key)) == 0)
		r = ck_gcm_open(g, in + 28, in, 28, in + REC_HDR, len, *pt, in + REC_HDR + len);
	ck_gcm_free(g);
	if (r < 0) {
		free(*pt);
		*pt = NULL;
		return -EBADMSG;
	}
	memcpy(id, in + 12, CK_ID_LEN);
	*pt_len = len;
	return 0;
}

int ck_dep_encode(const struct ck_volume *v, const struct ck_dep *d, uint8_t **out, size_t *n)
{
	struct buf b = { 0 };
	int r;

	if (d->n_wraps > CK_DEP_MAX_WRAPS)
		return -EINVAL;
	put32(&b, d->state);
	put64(&b, d->created);
	put64(&b, d->changed);
	put64(&b, d->purge_after);
	put64(&b, d->generation);
	putstr(&b, d->name, strlen(d->name));
	put32(&b, d->n_wraps);
	for (uint32_t i = 0; i < d->n_wraps; i++) {
		const struct ck_wrap *w = &d->wraps[i];
		put8(&b, w->role);
		put8(&b, w->last_result);
		put64(&b, w->last_time);
		putstr(&b, w->uri, strlen(w->uri));
		putstr(&b, w->wrapped, w->len);
	}
	r = seal(v, KIND_DEP, d->id, &b, out, n);
	free(b.p);
	return r;
}

int ck_dep_decode(const struct ck_volume *v, const uint8_t *buf, size_t n, struct ck_dep *d)
{
	uint8_t *pt = NULL;
	size_t len;
	struct rd r = { 0 };
	int e;

	memset(d, 0, sizeof(*d));
	if ((e = unseal(v, KIND_DEP, buf, n, d->id, &pt, &len)) < 0)
		return e;
	r.p = pt;
	r.len = len;
	d->state = get32(&r);
	d->created = get64(&r);
	d->changed = get64(&r);
	d->purge_after = get64(&r);
	d->generation = get64(&r);
	getstr(&r, d->name, sizeof(d->name), 1);
	d->n_wraps = get32(&r);
	if (d->n_wraps > CK_DEP_MAX_WRAPS)
		r.err = -EBADMSG;
	for (uint32_t i = 0; i < d->n_wraps && !r.err; i++) {
		struct ck_wrap *w = &d->wraps[i];
		w->role = get8(&r);
		w->last_result = get8(&r);
		w->last_time = get64(&r);
		getstr(&r, w->uri, sizeof(w->uri), 1);
		w->len = (uint16_t)getstr(&r, w->wrapped, sizeof(w->wrapped), 0);
		if (w->role != CK_ROLE_CUSTOMER && w->role != CK_ROLE_AVAILABILITY)
			r.err = -EBADMSG;
	}
	if (!r.err && (r.off != r.len || d->state < CK_DEP_ACTIVE || d->state > CK_DEP_PURGED ||
	               !ck_dep_name_valid(d->name)))
		r.err = -EBADMSG;
	free(pt);
	return r.err;
}

int ck_tree_rec_encode(const struct ck_volume *v, const struct ck_tree_rec *t, uint8_t **out, size_t *n)
{
	struct buf b = { 0 };
	int r;

	put32(&b, t->state);
	put64(&b, t->created);
	put64(&b, t->generation);
	put(&b, t->dep_id, CK_ID_LEN);
	putstr(&b, t->path, strlen(t->path));
	putstr(&b, t->wrapped_key, t->wlen);
	put(&b, t->old_rec_id, CK_ID_LEN);
	putstr(&b, t->next_wrapped_key, t->next_wlen);
	r = seal(v, KIND_TREE, t->id, &b, out, n);
	free(b.p);
	return r;
}

int ck_tree_rec_decode(const struct ck_volume *v, const uint8_t *buf, size_t n, struct ck_tree_rec *t)
{
	uint8_t *pt = NULL;
	const uint8_t *p;
	size_t len;
	struct rd r = { 0 };
	int e;

	memset(t, 0, sizeof(*t));
	if ((e = unseal(v, KIND_TREE, buf, n, t->id, &pt, &len)) < 0)
		return e;
	r.p = pt;
	r.len = len;
	t->state = get32(&r);
	t->created = get64(&r);
	t->generation = get64(&r);
	if ((p = get(&r, CK_ID_LEN)))
		memcpy(t->dep_id, p, CK_ID_LEN);
	getstr(&r, t->path, sizeof(t->path), 1);
	t->wlen = (uint16_t)getstr(&r, t->wrapped_key, sizeof(t->wrapped_key), 0);
	if ((p = get(&r, CK_ID_LEN)))
		memcpy(t->old_rec_id, p, CK_ID_LEN);
	t->next_wlen = (uint16_t)getstr(&r, t->next_wrapped_key, sizeof(t->next_wrapped_key), 0);
	if (!r.err && (r.off != r.len || t->state < CK_TREE_ACTIVE || t->state > CK_TREE_RETIRED))
		r.err = -EBADMSG;
	free(pt);
	return r.err;
}

static int ensure_dir(const struct ck_volume *v, const char *sub)
{
	char p[64];

	snprintf(p, sizeof(p), "%s/%s", CK_VOLUME_DIR, sub);
	if (mkdirat(v->fd, p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int save_record(const struct ck_volume *v, const char *sub, const uint8_t id[CK_ID_LEN],
                       const uint8_t *buf, size_t n)
{
	char hex[2 * CK_ID_LEN + 1], path[128], tmp[160];
	int fd, r = 0, dfd;

	if ((r = ensure_dir(v, sub)) < 0)
		return r;
	ck_hex(id, CK_ID_LEN, hex);
	snprintf(path, sizeof(path), "%s/%s/%s", CK_VOLUME_DIR, sub, hex);
	snprintf(tmp, sizeof(tmp), "%s/%s/.%s.%d.tmp", CK_VOLUME_DIR, sub, hex, (int)getpid());
	fd = openat(v->fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != (ssize_t)n || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && renameat(v->fd, tmp, v->fd, path) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(v->fd, tmp, 0);
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", CK_VOLUME_DIR, sub);
	if ((dfd = openat(v->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int ck_dep_save(const struct ck_volume *v, const struct ck_dep *d)
{
	uint8_t *buf;
	size_t n;
	int r = ck_dep_encode(v, d, &buf, &n);

	if (r < 0)
		return r;
	r = save_record(v, "deps", d->id, buf, n);
	free(buf);
	return r;
}

int ck_tree_rec_save(const struct ck_volume *v, const struct ck_tree_rec *t)
{
	uint8_t *buf;
	size_t n;
	int r = ck_tree_rec_encode(v, t, &buf, &n);

	if (r < 0)
		return r;
	r = save_record(v, "trees", t->id, buf, n);
	free(buf);
	return r;
}

/* Read every record file in .ckfs/<sub>/ and decode with fn. */
static int load_all(const struct ck_volume *v, const char *sub, size_t item,
                    int (*fn)(const struct ck_volume *, const uint8_t *, size_t, void *),
                    void **out, size_t *count, int *bad)
{
	char path[64];
	uint8_t *buf = malloc(65536);
	char *items = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;
	int dfd, r = 0;

	*out = NULL;
	*count = 0;
	if (bad)
		*bad = 0;
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", CK_VOLUME_DIR, sub);
	dfd = openat(v->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		free(buf);
		return errno == ENOENT ? 0 : -errno;
	}
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		free(buf);
		return -errno;
	}
	while ((e = readdir(d))) {
		ssize_t len;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		len = read(fd, buf, 65536);
		close(fd);
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			char *q = realloc(items, c * item);
			if (!q) {
				r = -ENOMEM;
				break;
			}
			items = q;
			cap = c;
		}
		/* The file name is the record ID: a copy of a record under
		 * another name (an old version, say) is not a second record. */
		char hex[2 * CK_ID_LEN + 1];
		if (len > 28)
			ck_hex(buf + 12, CK_ID_LEN, hex);
		if (len <= 28 || strcmp(hex, e->d_name) ||
		    fn(v, buf, (size_t)len, items + n * item) < 0) {
			ck_log(CK_LOG_ERR, "record %s/%s is corrupt or forged; ignored", path, e->d_name);
			if (bad)
				(*bad)++;
			continue;
		}
		n++;
	}
	closedir(d);
	free(buf);
	if (r < 0) {
		free(items);
		return r;
	}
	*out = items;
	*count = n;
	return 0;
}

static int dep_fn(const struct ck_volume *v, const uint8_t *b, size_t n, void *o)
{
	return ck_dep_decode(v, b, n, o);
}

static int tree_fn(const struct ck_volume *v, const uint8_t *b, size_t n, void *o)
{
	return ck_tree_rec_decode(v, b, n, o);
}

int ck_dep_load_all(const struct ck_volume *v, struct ck_dep **out, size_t *n, int *bad)
{
	return load_all(v, "deps", sizeof(struct ck_dep), dep_fn, (void **)out, n, bad);
}

int ck_tree_rec_load_all(const struct ck_volume *v, struct ck_tree_rec **out, size_t *n, int *bad)
{
	return load_all(v, "trees", sizeof(struct ck_tree_rec), tree_fn, (void **)out, n, bad);
}

int ck_tree_key_unwrap(const struct ck_volume *v, const struct ck_tree_rec *t,
                       struct ck_dep *deps, size_t nd, struct ck_tree *out, int allow_fallback,
                       int *fallback, char *msg, size_t msg_len)
{
	uint8_t *dk = ck_secret_alloc(CK_KEY_LEN), *tk = ck_secret_alloc(CK_WRAP_MAX);
	struct ck_dep *d = NULL;
	size_t len = 0;
	int r;

	if (!dk || !tk) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nd; i++)
		if (!memcmp(deps[i].id, t->dep_id, CK_ID_LEN))
			d = &deps[i];
	if (!d) {
		snprintf(msg, msg_len, "tree %s names a dep that does not exist", t->path);
		r = -ENOENT;
		goto out;
	}
	if (d->state != CK_DEP_ACTIVE) {
		snprintf(msg, msg_len, "dep \"%s\" is %s", d->name, ck_dep_state_name(d->state));
		r = -EKEYREVOKED;
		goto out;
	}
	if ((r = ck_dep_unwrap(d, dk, allow_fallback, fallback, msg, msg_len)) < 0)
		goto out;
	(void)len;
	if (ck_tree_key_from(t, dk, tk) < 0) {
		snprintf(msg, msg_len, "the key of tree %s does not unwrap under dep \"%s\"",
		         t->path, d->name);
		r = -EBADMSG;
		goto out;
	}
	r = ck_tree_init(out, v->hdr.volume_id, t->id, tk);
out:
	ck_secret_free(dk, CK_KEY_LEN);
	ck_secret_free(tk, CK_WRAP_MAX);
	return r;
}

int ck_dep_find(const struct ck_volume *v, const char *name, struct ck_dep *out)
{
	struct ck_dep *all;
	size_t n;
	int r = ck_dep_load_all(v, &all, &n, NULL);

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(all[i].name, name)) {
			*out = all[i];
			r = 0;
			break;
		}
	free(all);
	return r;
}

int ck_meta_lock(const struct ck_volume *v)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = openat(v->fd, CK_VOLUME_DIR "/lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

void ck_meta_unlock(int fd)
{
	if (fd >= 0)
		close(fd);    /* closing the fd drops its OFD lock */
}

static uint8_t result_of(int r)
{
	return r == 0 ? CK_RES_OK : r == -EKEYREVOKED ? CK_RES_DENIED : CK_RES_UNAVAILABLE;
}

int ck_dep_unwrap(struct ck_dep *d, uint8_t *key, int allow_fallback, int *fallback,
                  char *msg, size_t msg_len)
{
	uint8_t *buf = ck_secret_alloc(CK_WRAP_MAX);
	char m[256];
	size_t len = 0;
	int denied = 0, customers = 0, r = -EAGAIN;
	uint64_t now = (uint64_t)time(NULL);

	if (fallback)
		*fallback = 0;
	if (!buf)
		return -ENOMEM;
	if (msg_len)
		msg[0] = '\0';
	for (uint32_t i = 0; i < d->n_wraps; i++) {
		struct ck_wrap *w = &d->wraps[i];
		if (w->role != CK_ROLE_CUSTOMER)
			continue;
		customers++;
		r = ck_key_unwrap_uri(w->uri, w->wrapped, w->len, buf, &len, m, sizeof(m));
		if (r == 0 && len != CK_KEY_LEN)
			r = -EBADMSG;
		w->last_result = result_of(r);
		w->last_time = now;
		if (r == 0) {
			memcpy(key, buf, CK_KEY_LEN);
			goto out;
		}
		if (r == -EKEYREVOKED)
			denied++;
		if (msg_len)
			snprintf(msg + strlen(msg), msg_len - strlen(msg), "%s%s: %s",
			         msg[0] ? "; " : "", w->uri, m);
	}
	if (customers && denied == customers) {
		r = -EKEYREVOKED;
		goto out;
	}
	r = -EAGAIN;
	if (denied || !allow_fallback || d->state != CK_DEP_ACTIVE)
		goto out;
	/* Every customer key unavailable: the availability key keeps the
	 * data served through a transient outage (never after a denial). */
	for (uint32_t i = 0; i < d->n_wraps; i++) {
		struct ck_wrap *w = &d->wraps[i];
		if (w->role != CK_ROLE_AVAILABILITY)
			continue;
		r = ck_key_unwrap_uri(w->uri, w->wrapped, w->len, buf, &len, m, sizeof(m));
		if (r == 0 && len != CK_KEY_LEN)
			r = -EBADMSG;
		w->last_result = result_of(r);
		w->last_time = now;
		if (r == 0) {
			memcpy(key, buf, CK_KEY_LEN);
			if (fallback)
				*fallback = 1;
			goto out;
		}
	}
	r = -EAGAIN;
out:
	ck_secret_free(buf, CK_WRAP_MAX);
	return r;
}

int ck_dep_probe(struct ck_dep *d, char *msg, size_t msg_len)
{
	int denied = 0, customers = 0, r;
	uint64_t now = (uint64_t)time(NULL);
	char m[256];

	if (msg_len)
		msg[0] = '\0';
	for (uint32_t i = 0; i < d->n_wraps; i++) {
		struct ck_wrap *w = &d->wraps[i];
		if (w->role != CK_ROLE_CUSTOMER)
			continue;
		customers++;
		r = ck_key_probe_uri(w->uri, m, sizeof(m));
		w->last_result = result_of(r);
		w->last_time = now;
		if (r == 0)
			return 0;
		if (r == -EKEYREVOKED)
			denied++;
		if (msg_len)
			snprintf(msg + strlen(msg), msg_len - strlen(msg), "%s%s: %s",
			         msg[0] ? "; " : "", w->uri, m);
	}
	return customers && denied == customers ? -EKEYREVOKED : -EAGAIN;
}

const char *ck_dep_state_name(uint32_t s)
{
	switch (s) {
	case CK_DEP_ACTIVE: return "active";
	case CK_DEP_REVOKED: return "revoked";
	case CK_DEP_PURGE_PENDING: return "purge-pending";
	case CK_DEP_PURGED: return "purged";
	default: return "unknown";
	}
}

const char *ck_tree_state_name(uint32_t s)
{
	switch (s) {
	case CK_TREE_ACTIVE: return "active";
	case CK_TREE_PENDING: return "pending-apply";
	case CK_TREE_PURGED: return "purged";
	case CK_TREE_APPLYING: return "applying";
	case CK_TREE_RETIRED: return "retired";
	default: return "unknown";
	}
}

const char *ck_role_name(uint8_t r)
{
	return r == CK_ROLE_CUSTOMER ? "customer" : r == CK_ROLE_AVAILABILITY ? "availability" : "unknown";
}

const char *ck_result_name(uint8_t r)
{
	switch (r) {
	case CK_RES_OK: return "ok";
	case CK_RES_DENIED: return "denied";
	case CK_RES_UNAVAILABLE: return "unavailable";
	default: return "none";
	}
}

int ck_dep_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > CK_DEP_NAME_MAX || name[0] == '-' || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

int ck_tree_path_normalise(const char *in, char *out, size_t n)
{
	size_t o = 0;
	const char *p = in;

	while (*p) {
		const char *s;
		size_t l;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		l = (size_t)(p - s);
		if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.') || l > 255)
			return -EINVAL;
		if (o + l + 2 > n)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, s, l);
		o += l;
	}
	if (o == 0)
		return -EINVAL;
	out[o] = '\0';
	return 0;
}

int ck_tree_key_from(const struct ck_tree_rec *t, const uint8_t *dep_key, uint8_t *tree_key)
{
	uint8_t buf[CK_WRAP_MAX];
	size_t len = 0;
	int r = -EBADMSG;

	if (ck_key_unwrap(dep_key, t->wrapped_key, t->wlen, buf, &len) == 0 && len == CK_KEY_LEN)
		r = 0;
	else if (t->next_wlen && ck_key_unwrap(dep_key, t->next_wrapped_key, t->next_wlen, buf,
	                                       &len) == 0 && len == CK_KEY_LEN)
		r = 0;
	if (r == 0)
		memcpy(tree_key, buf, CK_KEY_LEN);
	ck_wipe(buf, sizeof(buf));
	return r;
}

static const uint8_t config_id[CK_ID_LEN] = "volume-config";

int ck_config_save(const struct ck_volume *v, const struct ck_config *c)
{
	struct buf b = { 0 };
	uint8_t *out = NULL;
	size_t n;
	int r, fd;

	put64(&b, c->purge_wait);
	putstr(&b, c->availability, strlen(c->availability));
	if ((r = seal(v, KIND_CONFIG, config_id, &b, &out, &n)) < 0)
		goto out;
	fd = openat(v->fd, CK_VOLUME_DIR "/.config.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (write(fd, out, n) != (ssize_t)n || fsync(fd) < 0)
		r = -EIO;
	close(fd);
	if (r == 0 && renameat(v->fd, CK_VOLUME_DIR "/.config.tmp", v->fd, CK_VOLUME_DIR "/config") < 0)
		r = -errno;
out:
	free(out);
	free(b.p);
	return r;
}

int ck_config_load(const struct ck_volume *v, struct ck_config *c)
{
	uint8_t buf[4096], id[CK_ID_LEN], *pt = NULL;
	size_t len;
	ssize_t n;
	int fd, r;

	memset(c, 0, sizeof(*c));
	fd = openat(v->fd, CK_VOLUME_DIR "/config", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;    /* defaults */
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -EIO;
	if ((r = unseal(v, KIND_CONFIG, buf, (size_t)n, id, &pt, &len)) < 0)
		return r;
	struct rd rr = { pt, len, 0, 0 };
	c->purge_wait = get64(&rr);
	getstr(&rr, c->availability, sizeof(c->availability), 1);
	r = rr.err ? rr.err : rr.off != rr.len ? -EBADMSG : 0;
	free(pt);
	return r;
}

int ck_parse_duration(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	/* Digits only, then at most one unit letter: strtoull alone would
	 * accept blanks, signs, and wrap negative numbers around. */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return -EINVAL;
		}
		if (end[1])
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul / 2)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int ck_records_time(const struct ck_volume *v, struct timespec *t)
{
	struct stat a, b;
	int r = -ENOENT;

	t->tv_sec = 0;
	t->tv_nsec = 0;
	if (fstatat(v->fd, CK_VOLUME_DIR "/deps", &a, 0) == 0) {
		*t = a.st_mtim;
		r = 0;
	}
	if (fstatat(v->fd, CK_VOLUME_DIR "/trees", &b, 0) == 0) {
		if (b.st_mtim.tv_sec > t->tv_sec ||
		    (b.st_mtim.tv_sec == t->tv_sec && b.st_mtim.tv_nsec > t->tv_nsec))
			*t = b.st_mtim;
		r = 0;
	}
	return r;
}

static void seen_name(char *out, size_t n, const char *host, long pid)
{
	snprintf(out, n, "%s/seen/%s-%ld", CK_VOLUME_DIR, host, pid);
}

int ck_mount_seen(const struct ck_volume *v, const struct timespec *t)
{
	char host[256] = "localhost", path[512], tmp[560], line[64];
	int fd, n, r = 0;

	gethostname(host, sizeof(host) - 1);
	(void)ensure_dir(v, "seen");
	seen_name(path, sizeof(path), host, (long)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(line, sizeof(line), "%lld.%09ld\n", (long long)t->tv_sec, t->tv_nsec);
	fd = openat(v->fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, line, (size_t)n) != n)
		r = -EIO;
	close(fd);
	if (r == 0 && renameat(v->fd, tmp, v->fd, path) < 0)
		r = -errno;
	return r;
}

void ck_mount_gone(const struct ck_volume *v)
{
	char host[256] = "localhost", path[512];

	gethostname(host, sizeof(host) - 1);
	seen_name(path, sizeof(path), host, (long)getpid());
	unlinkat(v->fd, path, 0);
}

int ck_wait_mounts(const struct ck_volume *v, long timeout_ms)
{
	char host[256] = "localhost", prefix[300];
	struct timespec want, t0, now;
	size_t pl;

	gethostname(host, sizeof(host) - 1);
	snprintf(prefix, sizeof(prefix), "%s-", host);
	pl = strlen(prefix);
	if (ck_records_time(v, &want) < 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int dfd = openat(v->fd, CK_VOLUME_DIR "/seen", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int behind = 0;
		DIR *d;
		struct dirent *e;

		if (dfd < 0)
			return 0;       /* no mount has ever run */
		if (!(d = fdopendir(dfd))) {
			close(dfd);
			return 0;
		}
		while ((e = readdir(d))) {
			char buf[64], *end;
			long pid;
			ssize_t n;
			int fd;

			if (strncmp(e->d_name, prefix, pl) || strchr(e->d_name + pl, '.'))
				continue;
			pid = strtol(e->d_name + pl, &end, 10);
			if (*end || pid <= 0)
				continue;
			if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
				unlinkat(dirfd(d), e->d_name, 0);   /* a daemon that died */
				continue;
			}
			fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				continue;
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n <= 0)
				continue;
			buf[n] = '\0';
			long long sec = strtoll(buf, &end, 10);
			long nsec = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
			if (sec < want.tv_sec || (sec == want.tv_sec && nsec < want.tv_nsec))
				behind = 1;
		}
		closedir(d);
		if (!behind)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
			return -ETIMEDOUT;
		usleep(20 * 1000);
	}
}
