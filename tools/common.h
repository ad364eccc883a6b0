/* Shared bits of the command-line tools (ck-dep, ck-assign): opening the
 * volume, JSON string output, exit codes. */
#ifndef CK_TOOLS_COMMON_H
#define CK_TOOLS_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "keys/volume.h"
#include "tools/opterr.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_VOLUME = 3 };

/* Open volume path with the key dir (explicit or env/default); prints the
 * reason and exits EXIT_VOLUME on failure. */
void tool_open_volume(const char *prog, const char *path, const char *key_dir, struct ck_volume *v);
void json_str(FILE *f, const char *s);
void hex_id(const uint8_t id[16], char out[33]);

/* A progress bar on stderr for long operations (ck-assign --apply, ck-dep
 * purge, ck-fsck): one updating line with percentage, amount, rate and
 * ETA, at most 10 updates a second. Only when stderr is a terminal
 * (isatty): otherwise every call does nothing. bytes: amounts are bytes
 * (shown as KiB/MiB/GiB), else counts of unit. */
struct pbar {
	const char *label, *unit;
	int on, bytes, shown;
	uint64_t total, done;
	struct timespec start, last;
};
void pbar_init(struct pbar *p, const char *label, const char *unit, int bytes, uint64_t total);
/* Set the amount done (and the total, when it grew); extra: shown after
 * the ETA (NULL for nothing). */
void pbar_update(struct pbar *p, uint64_t done, uint64_t total, const char *extra);
/* Erase the bar (before printing other lines); the next update redraws. */
void pbar_clear(struct pbar *p);
/* The final state (100 % when done == total) and a newline. */
void pbar_done(struct pbar *p, const char *extra);

#endif
