/* See common.h. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/util.h"
#include "tools/common.h"

void tool_open_volume(const char *prog, const char *path, const char *key_dir, struct ck_volume *v)
{
	char msg[1024];

	if (ck_secmem_init(1 << 20) < 0) {
		fprintf(stderr, "%s: cannot set up secure memory\n", prog);
		exit(EXIT_VOLUME);
	}
	ck_log_init(prog, 0, 0);
	ck_log_quiet(1);
	if (ck_volume_open(path, ck_key_dir(key_dir), v, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, msg);
		exit(EXIT_VOLUME);
	}
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void hex_id(const uint8_t id[16], char out[33])
{
	ck_hex(id, 16, out);
}

void pbar_init(struct pbar *p, const char *label, const char *unit, int bytes, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->unit = unit;
	p->bytes = bytes;
	p->total = total;
	p->on = isatty(2);
	clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static void amount(char *out, size_t n, const struct pbar *p, double v)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	if (!p->bytes) {
		snprintf(out, n, "%.0f", v);
		return;
	}
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void draw(struct pbar *p, const struct timespec *now, const char *extra, int final)
{
	double secs = (double)(now->tv_sec - p->start.tv_sec) +
	              (double)(now->tv_nsec - p->start.tv_nsec) / 1e9;
	uint64_t total = p->total < p->done ? p->done : p->total;
	int pct = total ? (int)(p->done * 100 / total) : final ? 100 : 0;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char bar[25], done[32], tot[32], r[32], eta[32];
	int fill = pct * 24 / 100;

	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(24 - fill));
	bar[24] = '\0';
	amount(done, sizeof(done), p, (double)p->done);
	amount(tot, sizeof(tot), p, (double)total);
	amount(r, sizeof(r), p, rate);
	if (final || p->done >= total) {
		snprintf(eta, sizeof(eta), "ETA 0:00");
	} else if (rate > 0) {
		unsigned long s = (unsigned long)((double)(total - p->done) / rate + 0.5);
		if (s >= 3600)
			snprintf(eta, sizeof(eta), "ETA %lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
		else
			snprintf(eta, sizeof(eta), "ETA %lu:%02lu", s / 60, s % 60);
	} else {
		snprintf(eta, sizeof(eta), "ETA --:--");
	}
	fprintf(stderr, "\r%s [%s] %3d%%  %s/%s%s%s  %s%s%s/s  %s%s%s\033[K", p->label, bar, pct, done,
	        tot, p->bytes ? "" : " ", p->bytes ? "" : p->unit, r, p->bytes ? "" : " ",
	        p->bytes ? "" : p->unit, eta, extra ? "  " : "", extra ? extra : "");
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
	p->shown = !final;
	p->last = *now;
}

void pbar_update(struct pbar *p, uint64_t done, uint64_t total, const char *extra)
{
	struct timespec now;

	if (!p->on)
		return;
	p->done = done;
	if (total > p->total)
		p->total = total;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->shown && (now.tv_sec - p->last.tv_sec) * 1000000000L +
	    (now.tv_nsec - p->last.tv_nsec) < 100000000L)
		return;
	draw(p, &now, extra, 0);
}

void pbar_clear(struct pbar *p)
{
	if (p->on && p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->shown = 0;
	}
}

void pbar_done(struct pbar *p, const char *extra)
{
	struct timespec now;

	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	draw(p, &now, extra, 1);
}
