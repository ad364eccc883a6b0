/* Shared bits of the command-line tools (ck-dep, ck-assign): opening the
 * volume, JSON string output, exit codes. */
#ifndef CK_TOOLS_COMMON_H
#define CK_TOOLS_COMMON_H
#include <stdio.h>
#include "keys/volume.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_VOLUME = 3 };

/* Open volume path with the key dir (explicit or env/default); prints the
 * reason and exits EXIT_VOLUME on failure. */
void tool_open_volume(const char *prog, const char *path, const char *key_dir, struct ck_volume *v);
void json_str(FILE *f, const char *s);
void hex_id(const uint8_t id[16], char out[33]);

#endif
