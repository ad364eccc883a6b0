/* ck-keyscan: find any of many byte strings in big files (a core dump of
 * the daemon), for 52-secrets.sh. A Python find() per key and form takes
 * minutes on a dump of a few hundred MB; this indexes the first 8 bytes
 * of every needle and looks each file offset up once.
 *
 *   ck-keyscan NEEDLES FILE...
 *
 * NEEDLES: one needle per line, "NAME<TAB>HEX" (at least 8 bytes each).
 * Prints "FOUND NAME at offset N of FILE" for the first occurrence of
 * each needle in each file; exits 1 if anything was found, 0 if not,
 * 2 on an error. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS 8192          /* power of two, > 2 x the needles */

struct needle {
	char name[200];
	unsigned char *b;
	size_t n;
	uint64_t head;
	int found;
};

static struct needle nd[SLOTS / 2];
static int slot[SLOTS];     /* needle index + 1, 0: empty */
static int nn;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static int load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[8192];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && nn < SLOTS / 2 - 1) {
		char *tab = strchr(line, '\t');
		size_t hl;
		if (!tab)
			continue;
		*tab++ = '\0';
		hl = strcspn(tab, "\r\n");
		if (hl < 16 || hl % 2)
			continue;
		struct needle *p = &nd[nn];
		snprintf(p->name, sizeof(p->name), "%s", line);
		p->n = hl / 2;
		p->b = malloc(p->n);
		for (size_t i = 0; i < p->n; i++)
			sscanf(tab + 2 * i, "%2hhx", &p->b[i]);
		memcpy(&p->head, p->b, 8);
		uint64_t h = mix(p->head) & (SLOTS - 1);
		while (slot[h])
			h = (h + 1) & (SLOTS - 1);
		slot[h] = ++nn;
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	int any = 0, zero_head = 0;

	if (argc < 3 || load(argv[1]) < 0) {
		fprintf(stderr, "usage: ck-keyscan NEEDLES FILE...\n");
		return 2;
	}
	for (int i = 0; i < nn; i++)
		zero_head |= nd[i].head == 0;
	for (int a = 2; a < argc; a++) {
		int fd = open(argv[a], O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			perror(argv[a]);
			return 2;
		}
		for (int i = 0; i < nn; i++)
			nd[i].found = 0;
		if (st.st_size < 8) {
			close(fd);
			continue;
		}
		const unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			perror(argv[a]);
			return 2;
		}
		size_t len = (size_t)st.st_size;
		for (size_t off = 0; off + 8 <= len; off++) {
			uint64_t w;
			memcpy(&w, m + off, 8);
			if (w == 0 && !zero_head)
				continue;
			for (uint64_t h = mix(w) & (SLOTS - 1); slot[h]; h = (h + 1) & (SLOTS - 1)) {
				struct needle *p = &nd[slot[h] - 1];
				if (p->head == w && !p->found && off + p->n <= len &&
				    !memcmp(m + off, p->b, p->n)) {
					p->found = 1;
					any = 1;
					printf("FOUND %s at offset %zu of %s\n", p->name, off, argv[a]);
				}
			}
		}
		munmap((void *)m, len);
		close(fd);
	}
	return any;
}
