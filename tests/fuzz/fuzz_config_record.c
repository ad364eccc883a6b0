/* Fuzz the volume config record (<volume>/.ckfs/config, a record of kind
 * 3): ck_config_load on a hand-made volume (a temporary directory made once,
 * record_key a fixed test key). Input: one mode byte, then either (bit 0
 * clear) the whole file or (bit 0 set) a payload that the target seals into
 * a record first. Property: a config that loads saves and loads back the
 * same. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "keys/dep.h"
#include "tests/fuzz/fuzz.h"

static struct ck_volume vol;
static uint8_t key[CK_KEY_LEN];
static char base[4096];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void cleanup(void)
{
	if (vol.fd >= 0)
		close(vol.fd);
	if (base[0])
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char meta[4200];

	snprintf(base, sizeof(base), "%s/ckfs-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("fuzz_config_record: mkdtemp");
		exit(1);
	}
	snprintf(meta, sizeof(meta), "%s/%s", base, CK_VOLUME_DIR);
	memset(&vol, 0, sizeof(vol));
	memcpy(key, fz_record_key, sizeof(key));
	vol.record_key = key;
	vol.path = base;
	if (mkdir(meta, 0700) < 0 || (vol.fd = open(base, O_RDONLY | O_DIRECTORY)) < 0) {
		perror("fuzz_config_record: setup");
		exit(1);
	}
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ck_config c, c2;
	uint8_t *rec = NULL;
	size_t n;
	int fd, r;

	if (size < 1 || size > 8192)
		return 0;
	if (data[0] & 1) {
		FZ_CHECK(fz_record_seal(FZ_KIND_CONFIG, data + 1, size - 1, &rec, &n) == 0);
	} else {
		rec = malloc(size);
		memcpy(rec, data + 1, size - 1);
		n = size - 1;
	}
	fd = openat(vol.fd, CK_VOLUME_DIR "/config", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0);
	FZ_CHECK(n == 0 || write(fd, rec, n) == (ssize_t)n);
	close(fd);
	free(rec);

	r = ck_config_load(&vol, &c);
	FZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT || r == -ENOMEM);
	if (r < 0)
		return 0;
	FZ_CHECK(memchr(c.availability, 0, sizeof(c.availability)) != NULL);
	FZ_CHECK(ck_config_save(&vol, &c) == 0);
	FZ_CHECK(ck_config_load(&vol, &c2) == 0);
	FZ_CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
	return 0;
}
