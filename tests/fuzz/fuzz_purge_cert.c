/* Fuzz the purge certificate check ('ck-dep VOLUME verify-certificate
 * FILE': cmd_verify_cert in tools/ck_dep.c). The function is static in a
 * program, so this target includes tools/ck_dep.c with its main() renamed
 * (scripts/fuzz then leaves tools/ck_dep.c out of the link) and its output
 * sent to /dev/null. An exported verifier in libck would let the target use
 * the public API instead.
 *
 * Input: mode byte, then the certificate file. Mode bit 0: give the
 * certificate the right MAC (HMAC-SHA256 under the volume's certificate
 * key over its first line, as 'ck-dep purge' makes it) wherever it has a
 * {"mac":"<64 characters> after the first line, so that the check passes
 * and what follows it is reached. The volume is hand-made: cert_key is a
 * fixed test key. Property: a certificate that verifies has a first line
 * whose MAC is the one it carries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "keys/crypto.h"
#include "keys/util.h"

static FILE *fz_null;
#define main ck_dep_main
#define printf(...) fprintf(fz_null, __VA_ARGS__)
#undef stderr
#define stderr fz_null
#include "tools/ck_dep.c"
#undef stderr
#define stderr stderr
#undef printf
#undef main

#include "tests/fuzz/fuzz.h"

static struct ck_volume vol;
static uint8_t key[CK_KEY_LEN];
static char path[4096];

static void cleanup(void)
{
	if (path[0])
		unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	fz_null = fopen("/dev/null", "w");
	snprintf(path, sizeof(path), "%s/ckfs-fuzz-cert.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!fz_null || (fd = mkstemp(path)) < 0) {
		perror("fuzz_purge_cert: setup");
		exit(1);
	}
	close(fd);
	memset(&vol, 0, sizeof(vol));
	vol.fd = -1;
	memcpy(key, fz_cert_key, sizeof(key));
	vol.cert_key = key;
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cert, *nl, *mac, hex[65];
	uint8_t m[CK_HASH_LEN];
	size_t n;
	FILE *f;
	int r;

	if (size < 1 || size > 20000)
		return 0;
	n = size - 1;
	cert = fz_strndup(data + 1, n);
	nl = memchr(cert, '\n', n);
	mac = nl ? strstr(nl, "{\"mac\":\"") : NULL;
	if ((data[0] & 1) && nl && mac && strlen(mac) >= 8 + 64) {
		const void *parts[] = { cert };
		size_t lens[] = { (size_t)(nl - cert) };
		FZ_CHECK(ck_hmac_sha256(fz_cert_key, parts, lens, 1, m) == 0);
		ck_hex(m, CK_HASH_LEN, hex);
		memcpy(mac + 8, hex, 64);
	}
	FZ_CHECK((f = fopen(path, "w")) != NULL);
	FZ_CHECK(n == 0 || fwrite(cert, 1, n, f) == n);
	FZ_CHECK(fclose(f) == 0);

	r = cmd_verify_cert(&vol, path);
	FZ_CHECK(r == EXIT_OK || r == EXIT_FAIL);
	if (r == EXIT_OK) {
		/* what was verified: the file's first line, as read (the file is
		 * read up to its first NUL and at most 16383 bytes) */
		FZ_CHECK(nl && mac);
		const void *parts[] = { cert };
		size_t lens[] = { (size_t)(nl - cert) };
		FZ_CHECK(ck_hmac_sha256(fz_cert_key, parts, lens, 1, m) == 0);
		ck_hex(m, CK_HASH_LEN, hex);
		FZ_CHECK(strncmp(mac + 8, hex, 64) == 0);
	}
	free(cert);
	return 0;
}
