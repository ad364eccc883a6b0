/* See common.h. */
#include <stdlib.h>
#include <string.h>
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
