/* ck-fsx: a seeded, reproducible random-operation exerciser (after fsx).
 *
 * It applies one pseudo-random sequence of operations to a file on ckfs and
 * to a reference file on a plain filesystem, and after EVERY operation
 * compares the sizes (fstat of both, stat by path of the ckfs file) and the
 * full contents.  The reference file only ever sees pwrite/ftruncate, so the
 * expected state never depends on how well the reference filesystem does
 * fallocate, punch hole or mmap.
 *
 * The operation sequence depends only on the seed (own PRNG, splitmix64),
 * so a failure is replayed with `ck-fsx -S SEED ...`.  Operations ckfs
 * answers with EOPNOTSUPP (fallocate modes, mmap with ENODEV) are recorded
 * and left out from then on; the summary lists them.
 *
 * Usage: ck-fsx [-N ops] [-S seed] [-l maxlen] [-v] [-C op] CKFS_FILE REF_FILE
 * (-C N flips one byte of the reference after op N: a self-test showing
 * that a difference is caught; ck-fsx must then exit 1.)
 * Exit: 0 all equal; 1 mismatch or unexpected error; 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

#define BLK       4096u
#define MIB       (1024u * 1024u)
#define FAR_BASE  (16ull * MIB)        /* sparse jumps land in [16, 24) MiB */
#define FAR_SPAN  (8ull * MIB)
#define MAX_IO    (128u * 1024u)       /* largest single write/read */
#define CMP_CHUNK (1u * MIB)
#define LOG_KEEP  24

enum op {
	OP_WRITE, OP_WRITE_FAR, OP_WRITE2, OP_READ, OP_TRUNCATE, OP_TRUNCATE_FAR,
	OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_MMAP_WRITE, OP_MMAP_READ,
	OP_APPEND, OP_REOPEN, OP_RENAME, OP_LINK, OP_FSYNC, OP_COLD, OP_N
};
static const char *op_names[OP_N] = {
	"write", "write_far", "write_2nd_fd", "read", "truncate", "truncate_far",
	"fallocate", "fallocate_keep_size", "punch_hole", "mmap_write", "mmap_read",
	"append", "reopen", "rename", "link", "fsync", "cold_compare",
};
/* Relative weights of the operations. */
static const unsigned op_weight[OP_N] = {
	[OP_WRITE] = 300, [OP_WRITE_FAR] = 1, [OP_WRITE2] = 30, [OP_READ] = 80,
	[OP_TRUNCATE] = 100, [OP_TRUNCATE_FAR] = 1, [OP_FALLOC] = 30,
	[OP_FALLOC_KEEP] = 30, [OP_PUNCH] = 50, [OP_MMAP_WRITE] = 60,
	[OP_MMAP_READ] = 30, [OP_APPEND] = 50, [OP_REOPEN] = 30, [OP_RENAME] = 30,
	[OP_LINK] = 10, [OP_FSYNC] = 20, [OP_COLD] = 20,
};

static uint64_t seed, rng;
static long nops = 10000, opno;
static uint64_t maxlen = 256 * 1024;
static int verbose;
static long corrupt_at = -1;   /* -C: self-test, damage the reference at this op */

static char ck_path[PATH_MAX], ref_path[PATH_MAX];
static char alt_path[PATH_MAX + 32], sub_dir[PATH_MAX + 32], sub_path[PATH_MAX + 64], link_path[PATH_MAX + 32];
static const char *ck_cur;      /* the name the ckfs file has right now */
static int ckfd = -1, reffd = -1;
static uint64_t fsize;          /* expected size (the reference's) */

static unsigned long count[OP_N];
static int disabled[OP_N];
static const char *disabled_why[OP_N];

static uint8_t *buf, *buf2, *cmp_a, *cmp_b;
static long pagesz;

static char oplog[LOG_KEEP][192];
static long oplog_no[LOG_KEEP];

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void logop(const char *fmt, ...)
{
	char *s = oplog[opno % LOG_KEEP];
	oplog_no[opno % LOG_KEEP] = opno;
	int n = snprintf(s, sizeof oplog[0], "%6ld ", opno);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s + n, sizeof oplog[0] - n, fmt, ap);
	va_end(ap);
	if (verbose)
		printf("%s\n", s);
}

static void dump_log(void)
{
	long first = opno - 20 < 0 ? 0 : opno - 20;
	fprintf(stderr, "ck-fsx: last operations (op number, operation, arguments, size before):\n");
	for (long i = first; i <= opno; i++)
		if (oplog[i % LOG_KEEP][0] && oplog_no[i % LOG_KEEP] == i)
			fprintf(stderr, "  %s\n", oplog[i % LOG_KEEP]);
}

static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ck-fsx: FAILED at op %ld (seed %" PRIu64 "): ", opno, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	dump_log();
	fprintf(stderr, "ck-fsx: replay with: ck-fsx -S %" PRIu64 " -N %ld -l %" PRIu64 " CKFS_FILE REF_FILE\n",
	        seed, nops, maxlen);
	exit(1);
}

#define SYS(call, what) do { if ((call) < 0) fail("%s: %s", what, strerror(errno)); } while (0)

static void fill(uint8_t *p, size_t n)
{
	switch (below(10)) {
	case 0:
		memset(p, 0, n);          /* written zeros are data, not holes */
		return;
	case 1:
		for (size_t i = 0; i < n; i++)   /* readable pattern: op number + offset */
			p[i] = (uint8_t)(opno + i);
		return;
	default:
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rnd();
			memcpy(p + i, &r, n - i < 8 ? n - i : 8);
		}
	}
}

static uint64_t rand_len(void)
{
	switch (below(8)) {
	case 0: return 1 + below(16);
	case 1: return BLK;
	case 2: return BLK - 8 + below(17);                 /* around one block */
	case 3: return 2 * BLK - 8 + below(17);             /* around two blocks */
	case 4: return 1 + below(MAX_IO);
	default: return 1 + below(3 * BLK);
	}
}

static uint64_t rand_off(void)
{
	uint64_t lim = maxlen ? maxlen : 1;
	switch (below(6)) {
	case 0: {                                    /* near a block boundary */
		uint64_t b = below(lim / BLK + 1) * BLK;
		uint64_t d = below(33);
		return b + d >= 16 ? b + d - 16 : 0;
	}
	case 1: {                                    /* near the end of file */
		uint64_t d = below(2 * BLK);
		uint64_t o = below(2) ? fsize + d : (fsize > d ? fsize - d : 0);
		return o;
	}
	default:
		return below(lim);
	}
}

static void pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off, const char *what)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0)
			fail("%s: pwrite(%zu bytes at %" PRIu64 "): %s", what, n, off, strerror(errno));
		if (w == 0)
			fail("%s: pwrite returned 0", what);
		p += w; n -= (size_t)w; off += (uint64_t)w;
	}
}

static size_t pread_full(int fd, uint8_t *p, size_t n, uint64_t off, const char *what)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r < 0)
			fail("%s: pread(%zu bytes at %" PRIu64 "): %s", what, n - got, off + got, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static void report_diff(const char *what, uint64_t base, const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;
	while (i < n && a[i] == b[i])
		i++;
	uint64_t off = base + i;
	char ha[64] = "", hb[64] = "";
	for (size_t k = 0; k < 16 && i + k < n; k++) {
		sprintf(ha + 3 * k, "%02x ", a[i + k]);
		sprintf(hb + 3 * k, "%02x ", b[i + k]);
	}
	uint64_t last = off;
	for (size_t k = i; k < n; k++)
		if (a[k] != b[k])
			last = base + k;
	fail("%s: content differs, first differing offset %" PRIu64 " (block %" PRIu64
	     ", offset %" PRIu64 " in block), last differing offset in this range %" PRIu64
	     "; file size %" PRIu64 "\n  ckfs:      %s\n  reference: %s",
	     what, off, off / BLK, off % BLK, last, fsize, ha, hb);
}

/* Compare sizes and the whole content of fd (ckfs) with the reference. */
static void compare_fd(int fd, const char *what)
{
	struct stat sc, sr, sp;
	SYS(fstat(fd, &sc), "fstat ckfs");
	SYS(fstat(reffd, &sr), "fstat reference");
	if ((uint64_t)sr.st_size != fsize)
		fail("internal: reference size %jd, model %" PRIu64, (intmax_t)sr.st_size, fsize);
	if (sc.st_size != sr.st_size)
		fail("%s: size differs: ckfs fstat %jd, reference %jd", what,
		     (intmax_t)sc.st_size, (intmax_t)sr.st_size);
	SYS(stat(ck_cur, &sp), "stat ckfs by path");
	if (sp.st_size != sr.st_size)
		fail("%s: size differs: ckfs stat(%s) %jd, reference %jd", what, ck_cur,
		     (intmax_t)sp.st_size, (intmax_t)sr.st_size);
	for (uint64_t off = 0; off < fsize; off += CMP_CHUNK) {
		size_t n = fsize - off < CMP_CHUNK ? (size_t)(fsize - off) : CMP_CHUNK;
		size_t ga = pread_full(fd, cmp_a, n, off, "compare ckfs");
		size_t gb = pread_full(reffd, cmp_b, n, off, "compare reference");
		if (gb != n)
			fail("internal: short read of the reference");
		if (ga != n)
			fail("%s: short read from ckfs: %zu of %zu bytes at %" PRIu64 " (size %" PRIu64 ")",
			     what, ga, n, off, fsize);
		if (memcmp(cmp_a, cmp_b, n))
			report_diff(what, off, cmp_a, cmp_b, n);
	}
	/* Nothing past the end. */
	ssize_t r = pread(fd, cmp_a, 16, (off_t)fsize);
	if (r != 0)
		fail("%s: read at EOF (%" PRIu64 ") returned %zd, want 0 (%s)", what, fsize, r,
		     r < 0 ? strerror(errno) : "data past EOF");
}

static void reopen(int flags)
{
	SYS(close(ckfd), "close");
	ckfd = open(ck_cur, O_RDWR | flags);
	if (ckfd < 0)
		fail("reopen %s: %s", ck_cur, strerror(errno));
}

static void disable(enum op o, const char *why)
{
	if (!disabled[o])
		printf("ck-fsx: %s not supported by ckfs (%s): op left out from now on\n", op_names[o], why);
	disabled[o] = 1;
	disabled_why[o] = why;
}

/* One operation; returns 0 if it was done, -1 if it was skipped. */
static int do_op(enum op o)
{
	uint64_t off, len, old = fsize;
	switch (o) {
	case OP_WRITE:
	case OP_WRITE_FAR:
	case OP_WRITE2: {
		off = o == OP_WRITE_FAR ? FAR_BASE + below(FAR_SPAN) : rand_off();
		len = rand_len();
		if (o != OP_WRITE_FAR && off + len > maxlen)
			len = off < maxlen ? maxlen - off : 1 + below(BLK);
		fill(buf, len);
		logop("%-20s off %-9" PRIu64 " len %-6" PRIu64 " size %" PRIu64,
		      op_names[o], off, len, old);
		int fd = ckfd;
		if (o == OP_WRITE2) {
			fd = open(ck_cur, O_RDWR);
			if (fd < 0)
				fail("open second fd: %s", strerror(errno));
		}
		pwrite_full(fd, buf, len, off, op_names[o]);
		if (o == OP_WRITE2)
			SYS(close(fd), "close second fd");
		pwrite_full(reffd, buf, len, off, "reference write");
		if (off + len > fsize)
			fsize = off + len;
		return 0;
	}
	case OP_READ: {
		off = below(4) ? below(fsize + 1) : rand_off();
		len = rand_len();
		logop("%-20s off %-9" PRIu64 " len %-6" PRIu64 " size %" PRIu64, op_names[o], off, len, fsize);
		size_t ga = pread_full(ckfd, buf, len, off, "read");
		size_t gb = pread_full(reffd, buf2, len, off, "reference read");
		if (ga != gb)
			fail("read at %" PRIu64 " len %" PRIu64 ": ckfs returned %zu bytes, reference %zu",
			     off, len, ga, gb);
		if (memcmp(buf, buf2, ga))
			report_diff("read", off, buf, buf2, ga);
		return 0;
	}
	case OP_TRUNCATE:
	case OP_TRUNCATE_FAR: {
		uint64_t ns;
		if (o == OP_TRUNCATE_FAR)
			ns = FAR_BASE + below(FAR_SPAN);
		else if (fsize > maxlen)
			ns = below(maxlen);                    /* come back from a sparse jump */
		else switch (below(7)) {
		case 0: ns = 0; break;
		case 1: case 2: ns = below(maxlen / BLK + 1) * BLK; break;       /* block boundary */
		case 3: ns = below(maxlen / BLK) * BLK + 1 + below(BLK - 1); break; /* mid-block */
		case 4: { uint64_t d = below(64); ns = fsize + d > 32 ? fsize + d - 32 : 0; break; }
		default: ns = below(maxlen + 1);
		}
		int by_fd = below(2);
		logop("%-20s %s size %" PRIu64 " -> %" PRIu64, op_names[o],
		      by_fd ? "ftruncate" : "truncate(path)", old, ns);
		if (by_fd) {
			SYS(ftruncate(ckfd, (off_t)ns), "ftruncate");
		} else {
			SYS(truncate(ck_cur, (off_t)ns), "truncate by path");
		}
		SYS(ftruncate(reffd, (off_t)ns), "reference ftruncate");
		fsize = ns;
		return 0;
	}
	case OP_FALLOC:
	case OP_FALLOC_KEEP:
	case OP_PUNCH: {
		int mode = o == OP_FALLOC ? 0 : o == OP_FALLOC_KEEP ? FALLOC_FL_KEEP_SIZE
		         : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		if (o == OP_PUNCH && fsize && below(2)) {
			off = below(fsize);
			len = 1 + below(fsize - off + BLK);
		} else {
			off = rand_off();
			len = rand_len();
		}
		if (o != OP_PUNCH && off + len > maxlen)
			len = off < maxlen ? maxlen - off : 1;
		logop("%-20s off %-9" PRIu64 " len %-6" PRIu64 " size %" PRIu64,
		      op_names[o], off, len, fsize);
		if (fallocate(ckfd, mode, (off_t)off, (off_t)len) < 0) {
			if (errno == EOPNOTSUPP) {
				disable(o, "EOPNOTSUPP");
				return -1;
			}
			fail("fallocate(mode %#x, off %" PRIu64 ", len %" PRIu64 "): %s",
			     mode, off, len, strerror(errno));
		}
		if (o == OP_FALLOC && off + len > fsize) {
			SYS(ftruncate(reffd, (off_t)(off + len)), "reference extend");
			fsize = off + len;
		} else if (o == OP_PUNCH && off < fsize) {
			uint64_t end = off + len < fsize ? off + len : fsize;
			for (uint64_t p = off; p < end; p += MAX_IO) {
				size_t n = end - p < MAX_IO ? (size_t)(end - p) : MAX_IO;
				memset(buf2, 0, n);
				pwrite_full(reffd, buf2, n, p, "reference punch");
			}
		}
		return 0;
	}
	case OP_MMAP_WRITE:
	case OP_MMAP_READ: {
		if (!fsize)
			return -1;
		off = below(fsize);
		len = 1 + below(fsize - off < MAX_IO ? fsize - off : MAX_IO);
		uint64_t pg = off & ~(uint64_t)(pagesz - 1);
		size_t maplen = (size_t)(off + len - pg);
		int prot = o == OP_MMAP_WRITE ? PROT_READ | PROT_WRITE : PROT_READ;
		logop("%-20s off %-9" PRIu64 " len %-6" PRIu64 " size %" PRIu64, op_names[o], off, len, fsize);
		uint8_t *m = mmap(NULL, maplen, prot, MAP_SHARED, ckfd, (off_t)pg);
		if (m == MAP_FAILED) {
			if (errno == ENODEV || errno == EOPNOTSUPP) {
				disable(OP_MMAP_WRITE, strerror(errno));
				disable(OP_MMAP_READ, strerror(errno));
				return -1;
			}
			fail("mmap(%zu bytes at %" PRIu64 "): %s", maplen, pg, strerror(errno));
		}
		if (o == OP_MMAP_WRITE) {
			fill(buf, len);
			memcpy(m + (off - pg), buf, len);
			if (msync(m, maplen, MS_SYNC) < 0)
				fail("msync: %s", strerror(errno));
			pwrite_full(reffd, buf, len, off, "reference mmap write");
		} else {
			size_t gb = pread_full(reffd, buf2, len, off, "reference read");
			if (gb != len)
				fail("internal: short reference read");
			if (memcmp(m + (off - pg), buf2, len))
				report_diff("mmap read", off, m + (off - pg), buf2, len);
		}
		SYS(munmap(m, maplen), "munmap");
		return 0;
	}
	case OP_APPEND: {
		len = rand_len();
		fill(buf, len);
		logop("%-20s len %-6" PRIu64 " size %" PRIu64, op_names[o], len, old);
		int fd = open(ck_cur, O_WRONLY | O_APPEND);
		if (fd < 0)
			fail("open O_APPEND: %s", strerror(errno));
		ssize_t w = write(fd, buf, len);
		if (w != (ssize_t)len)
			fail("O_APPEND write of %" PRIu64 " bytes returned %zd (%s)", len, w,
			     w < 0 ? strerror(errno) : "short");
		off_t pos = lseek(fd, 0, SEEK_CUR);
		SYS(close(fd), "close O_APPEND fd");
		pwrite_full(reffd, buf, len, fsize, "reference append");
		fsize += len;
		if (pos != (off_t)fsize)
			fail("O_APPEND: file offset after write is %jd, want %" PRIu64, (intmax_t)pos, fsize);
		return 0;
	}
	case OP_REOPEN: {
		int trunc = below(25) == 0;
		logop("%-20s%s size %" PRIu64, op_names[o], trunc ? " O_TRUNC" : "", fsize);
		reopen(trunc ? O_TRUNC : 0);
		if (trunc) {
			SYS(ftruncate(reffd, 0), "reference truncate");
			fsize = 0;
		}
		return 0;
	}
	case OP_RENAME: {
		int sub = below(2);
		int re = below(2);
		const char *to = sub ? sub_path : alt_path;
		logop("%-20s -> %s%s and back, size %" PRIu64, op_names[o], to,
		      re ? " (reopen by new name)" : "", fsize);
		SYS(rename(ck_path, to), "rename away");
		ck_cur = to;
		compare_fd(ckfd, "after rename (old fd)");
		if (re) {
			reopen(0);
			compare_fd(ckfd, "after rename (reopened)");
		}
		struct stat st;
		if (stat(ck_path, &st) == 0 || errno != ENOENT)
			fail("after rename: old name %s still exists", ck_path);
		SYS(rename(to, ck_path), "rename back");
		ck_cur = ck_path;
		if (stat(to, &st) == 0 || errno != ENOENT)
			fail("after rename back: %s still exists", to);
		return 0;
	}
	case OP_LINK: {
		logop("%-20s %s, size %" PRIu64, op_names[o], link_path, fsize);
		if (link(ck_path, link_path) < 0) {
			if (errno == EPERM || errno == EOPNOTSUPP) {
				disable(o, strerror(errno));
				return -1;
			}
			fail("link: %s", strerror(errno));
		}
		struct stat st;
		SYS(fstat(ckfd, &st), "fstat");
		if (st.st_nlink != 2)
			fail("link: st_nlink %ju, want 2", (uintmax_t)st.st_nlink);
		int fd = open(link_path, O_RDONLY);
		if (fd < 0)
			fail("open by link name: %s", strerror(errno));
		compare_fd(fd, "through the hard link");
		SYS(close(fd), "close");
		SYS(unlink(link_path), "unlink link");
		SYS(fstat(ckfd, &st), "fstat");
		if (st.st_nlink != 1)
			fail("unlink of link: st_nlink %ju, want 1", (uintmax_t)st.st_nlink);
		return 0;
	}
	case OP_FSYNC: {
		int data = below(2);
		logop("%-20s%s size %" PRIu64, op_names[o], data ? " (fdatasync)" : "", fsize);
		SYS(data ? fdatasync(ckfd) : fsync(ckfd), data ? "fdatasync" : "fsync");
		return 0;
	}
	case OP_COLD: {
		/* Drop the kernel's cached pages so the compare reads from the daemon. */
		logop("%-20s size %" PRIu64, op_names[o], fsize);
		SYS(fsync(ckfd), "fsync");
		int e = posix_fadvise(ckfd, 0, 0, POSIX_FADV_DONTNEED);
		if (e)
			fail("posix_fadvise(DONTNEED): %s", strerror(e));
		return 0;
	}
	case OP_N:
		break;
	}
	return -1;
}

static enum op pick_op(void)
{
	/* After a sparse jump, come back soon: full compares of 20 MiB are slow. */
	if (fsize > maxlen && below(2) == 0)
		return OP_TRUNCATE;
	unsigned total = 0;
	for (int i = 0; i < OP_N; i++)
		total += op_weight[i];
	unsigned r = (unsigned)below(total);
	for (int i = 0; i < OP_N; i++) {
		if (r < op_weight[i])
			return (enum op)i;
		r -= op_weight[i];
	}
	return OP_WRITE;
}

static void usage(void)
{
	fprintf(stderr, "usage: ck-fsx [-N ops] [-S seed] [-l maxlen] [-v] [-C op] CKFS_FILE REF_FILE\n"
	        "  applies the same random operations to CKFS_FILE and REF_FILE and\n"
	        "  compares sizes and contents after every operation\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int c, have_seed = 0;
	while ((c = getopt(argc, argv, "N:S:l:vC:h")) != -1) {
		switch (c) {
		case 'N': nops = strtol(optarg, NULL, 0); break;
		case 'S': seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
		case 'l': maxlen = strtoull(optarg, NULL, 0); break;
		case 'v': verbose = 1; break;
		case 'C': corrupt_at = strtol(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (argc - optind != 2 || nops < 0 || maxlen < 2 * BLK)
		usage();
	if (!have_seed) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		seed = ((uint64_t)tv.tv_sec * 1000003u) ^ (uint64_t)tv.tv_usec ^ ((uint64_t)getpid() << 20);
		seed %= 1000000000ull;
	}
	rng = seed;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ck-fsx: seed %" PRIu64 " ops %ld maxlen %" PRIu64 "\n", seed, nops, maxlen);

	pagesz = sysconf(_SC_PAGESIZE);
	snprintf(ck_path, sizeof ck_path, "%s", argv[optind]);
	snprintf(ref_path, sizeof ref_path, "%s", argv[optind + 1]);
	snprintf(alt_path, sizeof alt_path, "%s.fsx-renamed", ck_path);
	snprintf(sub_dir, sizeof sub_dir, "%s.fsx-dir", ck_path);
	snprintf(sub_path, sizeof sub_path, "%s/moved-here", sub_dir);
	snprintf(link_path, sizeof link_path, "%s.fsx-link", ck_path);
	ck_cur = ck_path;

	buf = malloc(MAX_IO);
	buf2 = malloc(MAX_IO);
	cmp_a = malloc(CMP_CHUNK);
	cmp_b = malloc(CMP_CHUNK);
	if (!buf || !buf2 || !cmp_a || !cmp_b)
		fail("out of memory");

	if (mkdir(sub_dir, 0755) < 0 && errno != EEXIST)
		fail("mkdir %s: %s", sub_dir, strerror(errno));
	unlink(alt_path);
	unlink(link_path);
	unlink(sub_path);
	ckfd = open(ck_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (ckfd < 0)
		fail("open %s: %s", ck_path, strerror(errno));
	reffd = open(ref_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (reffd < 0)
		fail("open %s: %s", ref_path, strerror(errno));
	fsize = 0;
	compare_fd(ckfd, "initial");

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (opno = 1; opno <= nops; opno++) {
		enum op o;
		int tries = 0;
		do {
			o = pick_op();
		} while (disabled[o] && ++tries < 100);
		if (disabled[o])
			o = OP_WRITE;
		if (do_op(o) == 0)
			count[o]++;
		else
			logop("%-20s skipped", op_names[o]);
		if (opno >= corrupt_at && corrupt_at >= 0 && fsize) {
			uint8_t b;
			uint64_t at = below(fsize);
			pread_full(reffd, &b, 1, at, "self-test");
			b ^= 0x20;
			pwrite_full(reffd, &b, 1, at, "self-test");
			corrupt_at = -1;
		}
		compare_fd(ckfd, op_names[o]);
		if (!verbose && opno % 5000 == 0)
			printf("ck-fsx: %ld ops done, size %" PRIu64 "\n", opno, fsize);
	}
	opno = nops;

	/* Final: close, drop the cache, reopen and compare once more. */
	SYS(fsync(ckfd), "final fsync");
	SYS(close(ckfd), "final close");
	ckfd = open(ck_path, O_RDWR);
	if (ckfd < 0)
		fail("final reopen: %s", strerror(errno));
	(void)posix_fadvise(ckfd, 0, 0, POSIX_FADV_DONTNEED);
	compare_fd(ckfd, "final reopen");
	close(ckfd);
	close(reffd);
	rmdir(sub_dir);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("ck-fsx: %ld ops OK in %.1f s (seed %" PRIu64 "), final size %" PRIu64 "\n",
	       nops, secs, seed, fsize);
	printf("ck-fsx: counts:");
	for (int i = 0; i < OP_N; i++)
		printf(" %s=%lu", op_names[i], count[i]);
	printf("\n");
	for (int i = 0; i < OP_N; i++)
		if (disabled[i])
			printf("ck-fsx: note: %s was not supported (%s)\n", op_names[i], disabled_why[i]);
	return 0;
}
