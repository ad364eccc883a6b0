/* ck-seekdir: checks that telldir/seekdir positions in a directory are
 * stable, i.e. that after seekdir(telldir at entry k) the entries k, k+1, ...
 * come back in the same order (what NFS exports, Samba and `rm -r` of large
 * directories rely on), and that rewinddir restarts the same sequence.
 *
 * Usage: ck-seekdir DIR [EXPECTED_ENTRIES]   (EXPECTED excludes . and ..)
 * Exit 0 when stable, 1 with a message otherwise. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ent { long pos; char *name; };

static int fails;
#define FAIL(...) do { fprintf(stderr, "ck-seekdir: " __VA_ARGS__); fputc('\n', stderr); fails++; } while (0)

static size_t read_all(DIR *d, struct ent **out)
{
	size_t n = 0, cap = 64;
	struct ent *e = malloc(cap * sizeof *e);
	for (;;) {
		long pos = telldir(d);
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				FAIL("readdir: %s", strerror(errno));
			break;
		}
		if (n == cap)
			e = realloc(e, (cap *= 2) * sizeof *e);
		e[n].pos = pos;
		e[n].name = strdup(de->d_name);
		n++;
	}
	*out = e;
	return n;
}

/* seekdir to entry k and check that the next m entries follow. */
static void check_from(DIR *d, struct ent *e, size_t n, size_t k, size_t m, const char *how)
{
	seekdir(d, e[k].pos);
	for (size_t i = k; i < n && i < k + m; i++) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			FAIL("%s: after seekdir to entry %zu, readdir ended early at entry %zu (%s)",
			     how, k, i, errno ? strerror(errno) : "EOF");
			return;
		}
		if (strcmp(de->d_name, e[i].name)) {
			FAIL("%s: after seekdir to entry %zu, entry %zu is \"%s\", want \"%s\"",
			     how, k, i, de->d_name, e[i].name);
			return;
		}
	}
	if (k + m >= n) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de)
			FAIL("%s: after seekdir to entry %zu, extra entry \"%s\" past the end", how, k, de->d_name);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ck-seekdir DIR [EXPECTED_ENTRIES]\n");
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (!d) {
		fprintf(stderr, "ck-seekdir: opendir %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct ent *e;
	size_t n = read_all(d, &e);
	size_t real = 0;
	int dot = 0, dotdot = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(e[i].name, "."))
			dot++;
		else if (!strcmp(e[i].name, ".."))
			dotdot++;
		else
			real++;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(e[i].name, e[j].name))
				FAIL("entry \"%s\" returned twice (entries %zu and %zu)", e[i].name, j, i);
	}
	if (dot != 1 || dotdot != 1)
		FAIL("'.' seen %d times and '..' %d times, want 1 each", dot, dotdot);
	if (argc > 2 && real != strtoul(argv[2], NULL, 0))
		FAIL("%zu entries besides . and .., want %s", real, argv[2]);

	/* Seek back to a spread of positions, from the end of the stream. */
	size_t picks[] = { 0, 1, 2, n / 7, n / 3, n / 2, n - n / 4, n - 2, n - 1 };
	for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++)
		if (picks[i] < n)
			check_from(d, e, n, picks[i], n, "seek back from the end");
	srand(12345);
	for (int i = 0; i < 40 && n; i++)
		check_from(d, e, n, (size_t)rand() % n, 1 + (size_t)rand() % 80, "random seek");

	/* telldir in the middle of a sequential read, read on, seek back. */
	rewinddir(d);
	for (size_t k = 0; k < n; k++) {
		struct dirent *de = readdir(d);
		if (!de || strcmp(de->d_name, e[k].name)) {
			FAIL("after rewinddir, entry %zu is \"%s\", want \"%s\"", k,
			     de ? de->d_name : "(end)", e[k].name);
			break;
		}
		if (k == n / 2 || k == n / 5) {
			long here = telldir(d);
			size_t ahead = 0;
			while (ahead < 120 && readdir(d))
				ahead++;
			seekdir(d, here);
			for (size_t j = k + 1; j < n && j <= k + ahead; j++) {
				de = readdir(d);
				if (!de || strcmp(de->d_name, e[j].name)) {
					FAIL("telldir after entry %zu, read %zu on, seekdir back: entry %zu is \"%s\", want \"%s\"",
					     k, ahead, j, de ? de->d_name : "(end)", e[j].name);
					break;
				}
			}
			seekdir(d, here);
		}
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
	if (fails)
		return 1;
	printf("ck-seekdir: %zu entries, positions stable\n", n);
	return 0;
}
