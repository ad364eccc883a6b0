/* The exec: key provider (keys/provider_exec.c): the example helper
 * (tools/ck-keyhelper-example) round trip, denied and unavailable, and
 * every way a helper can misbehave (tests/providers/helpers/): hang, crash,
 * garbage, 10 MB of output, no answer, bad base64, closed stdin, answer
 * without exiting. Also how the helper is run: argv, a clean environment,
 * no leaked descriptors, the exact request bytes.
 *
 * Usage: test_provider_exec HELPERS_DIR EXAMPLE_HELPER (meson passes both).
 * SIGPIPE keeps its default action here: a provider that let one through
 * would kill the test. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "keys/crypto.h"
#include "keys/provider.h"
#include "keys/secmem.h"
#include "tests/unit/ck_test.h"

static const char *helpers_dir = "tests/providers/helpers";
static const char *example_helper = "tools/ck-keyhelper-example";

struct fixture {
	char *dir;                      /* private 0700 temp directory */
	uint8_t *key;                   /* CK_WRAP_MAX of secret memory */
	char msg[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = ck_test_tmpdir("exec");
	f->key = ck_secret_alloc(CK_WRAP_MAX);
	assert_non_null(f->key);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ck_test_rm_rf(f->dir);
	free(f->dir);
	ck_secret_free(f->key, CK_WRAP_MAX);
	free(f);
	return 0;
}

/* "exec:HELPERS/name" followed by a printf-formatted rest ("" for none). */
static char *helper_uri(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *helper_uri(const char *name, const char *fmt, ...)
{
	char *rest, *uri;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&rest, fmt, ap) >= 0);
	va_end(ap);
	assert_true(asprintf(&uri, "exec:%s/%s%s", helpers_dir, name, rest) > 0);
	free(rest);
	return uri;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int unwrap(struct fixture *f, const char *uri, const uint8_t *in, size_t n,
                  size_t *key_len)
{
	size_t dummy;

	f->msg[0] = '\0';
	return ck_provider_exec.unwrap(uri, in, n, f->key, key_len ? key_len : &dummy,
	                               f->msg, sizeof(f->msg));
}

static const uint8_t some_wrap[40] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

/* A fresh 256-bit key for the example helper; returns its path. */
static char *example_key(struct fixture *f, uint8_t kek[CK_KEY_LEN])
{
	char *path = ck_test_path(f->dir, "alice.kek");

	assert_int_equal(ck_random(kek, CK_KEY_LEN), 0);
	ck_test_write_file(path, kek, CK_KEY_LEN, 0600);
	return path;
}

/* ---- the example helper ---- */

static void example_helper_wraps_unwraps_and_probes(void **state)
{
	struct fixture *f = *state;
	uint8_t kek[CK_KEY_LEN], dek[CK_KEY_LEN], wrapped[CK_WRAP_MAX], check[CK_WRAP_MAX];
	size_t wlen = 0, klen = 0, clen = 0;
	char *kpath = example_key(f, kek), *uri;

	assert_true(asprintf(&uri, "exec:%s %s", example_helper, kpath) > 0);
	ck_test_fill(dek, sizeof(dek), 42);
	assert_int_equal(ck_provider_exec.check_uri(uri, f->msg, sizeof(f->msg)), 0);
	assert_int_equal(ck_provider_exec.probe(uri, f->msg, sizeof(f->msg)), 0);
	assert_int_equal(ck_provider_exec.wrap(uri, dek, sizeof(dek), wrapped, &wlen,
	                                       f->msg, sizeof(f->msg)), 0);
	assert_int_equal(wlen, CK_KEY_LEN + CK_WRAP_OVERHEAD);
	assert_int_equal(unwrap(f, uri, wrapped, wlen, &klen), 0);
	assert_int_equal(klen, sizeof(dek));
	assert_memory_equal(f->key, dek, sizeof(dek));
	/* The example's wrap is plain RFC 5649 under the key in the file:
	 * ckfs's own key unwrap opens it. */
	assert_int_equal(ck_key_unwrap(kek, wrapped, wlen, check, &clen), 0);
	assert_int_equal(clen, sizeof(dek));
	assert_memory_equal(check, dek, sizeof(dek));
	free(uri);
	free(kpath);
}

static void example_helper_denies_when_its_key_is_deleted(void **state)
{
	struct fixture *f = *state;
	uint8_t kek[CK_KEY_LEN], dek[CK_KEY_LEN] = { 7 }, wrapped[CK_WRAP_MAX];
	size_t wlen = 0;
	char *kpath = example_key(f, kek), *uri;

	assert_true(asprintf(&uri, "exec:%s %s", example_helper, kpath) > 0);
	assert_int_equal(ck_provider_exec.wrap(uri, dek, sizeof(dek), wrapped, &wlen,
	                                       f->msg, sizeof(f->msg)), 0);
	assert_int_equal(unlink(kpath), 0);
	assert_int_equal(unwrap(f, uri, wrapped, wlen, NULL), -EKEYREVOKED);
	assert_non_null(strstr(f->msg, "revoked"));
	assert_int_equal(ck_provider_exec.probe(uri, f->msg, sizeof(f->msg)), -EKEYREVOKED);
	free(uri);
	free(kpath);
}

static void example_helper_is_unavailable_while_down(void **state)
{
	struct fixture *f = *state;
	uint8_t kek[CK_KEY_LEN], dek[CK_KEY_LEN] = { 7 }, wrapped[CK_WRAP_MAX];
	size_t wlen = 0;
	char *kpath = example_key(f, kek), *down, *uri;

	assert_true(asprintf(&uri, "exec:%s %s", example_helper, kpath) > 0);
	assert_true(asprintf(&down, "%s.down", kpath) > 0);
	assert_int_equal(ck_provider_exec.wrap(uri, dek, sizeof(dek), wrapped, &wlen,
	                                       f->msg, sizeof(f->msg)), 0);
	ck_test_write_file(down, "", 0, 0600);
	assert_int_equal(unwrap(f, uri, wrapped, wlen, NULL), -EAGAIN);
	assert_non_null(strstr(f->msg, "kms down"));
	assert_int_equal(ck_provider_exec.probe(uri, f->msg, sizeof(f->msg)), -EAGAIN);
	assert_int_equal(unlink(down), 0);
	assert_int_equal(unwrap(f, uri, wrapped, wlen, NULL), 0);
	free(down);
	free(uri);
	free(kpath);
}

static void example_helper_wrap_of_another_key_is_unavailable_not_denied(void **state)
{
	struct fixture *f = *state;
	uint8_t kek[CK_KEY_LEN];
	char *kpath = example_key(f, kek), *uri;

	assert_true(asprintf(&uri, "exec:%s %s", example_helper, kpath) > 0);
	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	assert_non_null(strstr(f->msg, "does not match"));
	free(uri);
	free(kpath);
}

/* ---- misbehaving helpers ---- */

static int pid_is_gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *fp;
	int gone = 1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fp = fopen(path, "r"))) {
		/* A zombie waiting for init to reap it counts as dead. */
		if (fgets(buf, sizeof(buf), fp)) {
			const char *p = strrchr(buf, ')');
			gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
		}
		fclose(fp);
	}
	return gone;
}

static void hanging_helper_times_out_and_its_process_group_is_killed(void **state)
{
	struct fixture *f = *state;
	char *pidfile = ck_test_path(f->dir, "sleep.pid");
	char *uri = helper_uri("hang", "?timeout=1 %s", pidfile);
	char buf[32] = "";
	double t0 = now_s(), dt;
	pid_t child;

	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	dt = now_s() - t0;
	assert_true(dt >= 0.9 && dt < 4.0);
	assert_non_null(strstr(f->msg, "did not answer within 1 s"));
	/* The helper's own child (sleep 1000) died with it. */
	ck_test_read_file(pidfile, buf, sizeof(buf) - 1);
	child = (pid_t)atoi(buf);
	assert_true(child > 1);
	for (int i = 0; i < 100 && !pid_is_gone(child); i++)
		usleep(10000);
	assert_true(pid_is_gone(child));
	free(uri);
	free(pidfile);
}

static void helper_that_answers_but_does_not_exit_is_killed(void **state)
{
	struct fixture *f = *state;
	char *uri = helper_uri("answer-then-hang", "?timeout=1");
	double t0 = now_s();

	assert_int_equal(ck_provider_exec.probe(uri, f->msg, sizeof(f->msg)), -EAGAIN);
	assert_true(now_s() - t0 < 4.0);
	assert_non_null(strstr(f->msg, "did not exit"));
	free(uri);
}

static void crashing_helper_is_unavailable(void **state)
{
	struct fixture *f = *state;
	char *uri = helper_uri("crash", "%s", "");

	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	assert_non_null(strstr(f->msg, "killed by signal 11"));
	free(uri);
}

static void helper_printing_10_mb_is_cut_off_and_unavailable(void **state)
{
	struct fixture *f = *state;
	char *uri = helper_uri("flood", "%s", "");
	double t0 = now_s();

	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	assert_non_null(strstr(f->msg, "printed too much"));
	assert_true(now_s() - t0 < 5.0);
	free(uri);
}

static void silent_helper_is_unavailable(void **state)
{
	struct fixture *f = *state;
	char *uri = helper_uri("silent", "%s", "");

	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	assert_non_null(strstr(f->msg, "without an answer"));
	assert_int_equal(ck_provider_exec.probe(uri, f->msg, sizeof(f->msg)), -EAGAIN);
	free(uri);
}

/* The "say" helper prints a given answer and exits with a given status. */
struct said {
	const char *answer;             /* printf %b format, shell-quoted */
	int status;
	int want;                       /* unwrap's result */
	const char *msg_part;           /* expected in msg, or NULL */
};

static const struct said said_table[] = {
	{ "'denied revoked by customer\\n'", 0, -EKEYREVOKED, "revoked by customer" },
	/* A denial stays a denial whatever the exit status (documented). */
	{ "'denied revoked by customer\\n'", 1, -EKEYREVOKED, "revoked by customer" },
	{ "'denied\\n'", 0, -EKEYREVOKED, "no reason given" },
	{ "'unavailable kms down\\n'", 0, -EAGAIN, "kms down" },
	{ "'unavailable kms down\\n'", 75, -EAGAIN, "kms down" },
	{ "'ok QUJD\\n'", 0, 0, NULL },
	{ "'ok QUJD'", 0, 0, NULL },                  /* final newline optional */
	{ "'ok QUJD\\r\\n'", 0, 0, NULL },
	{ "'ok QUJD\\n'", 1, -EAGAIN, "exited with status 1" },
	{ "'hello\\001\\377world\\n'", 0, -EAGAIN, "garbage" },
	{ "'\\0ok QUJD\\n'", 0, -EAGAIN, "garbage" },
	{ "'maybe later\\n'", 0, -EAGAIN, "garbage" },
	{ "'OK QUJD\\n'", 0, -EAGAIN, "garbage" },
	{ "'ok QUJD\\nok QUJD\\n'", 0, -EAGAIN, "more than one line" },
	{ "'ok\\n'", 0, -EAGAIN, "without a payload" },
	{ "'ok \\n'", 0, -EAGAIN, "without a payload" },
	{ "'ok not*base64!\\n'", 0, -EAGAIN, "not base64" },
	{ "'ok QUJ\\n'", 0, -EAGAIN, "not base64" },    /* length not 4k */
	{ "'ok QU=D\\n'", 0, -EAGAIN, "not base64" },   /* '=' inside */
	{ "'ok QUJ=\\n'", 0, -EAGAIN, "not base64" },   /* non-zero spare bits */
	{ "'ok ====\\n'", 0, -EAGAIN, "not base64" },
	{ "'ok  QUJD\\n'", 0, -EAGAIN, "not base64" },  /* two spaces */
	{ "'ok QUJD extra\\n'", 0, -EAGAIN, "not base64" },
	{ "'ok QUJD-_\\n'", 0, -EAGAIN, "not base64" }, /* base64url is not ours */
	{ "''", 3, -EAGAIN, "exited with status 3 without an answer" },
	{ "'\\n'", 0, -EAGAIN, "garbage" },
};

static void helper_answers_map_to_ok_denied_or_unavailable(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(said_table) / sizeof(said_table[0]); i++) {
		const struct said *s = &said_table[i];
		char *uri = helper_uri("say", " %s %d", s->answer, s->status);
		size_t klen = 0;
		int r;

		memset(f->key, 0x55, CK_WRAP_MAX);
		r = unwrap(f, uri, some_wrap, sizeof(some_wrap), &klen);
		if (r != s->want)
			fail_msg("helper saying %s (exit %d): got %d (%s), want %d", s->answer,
			         s->status, r, f->msg, s->want);
		if (r == 0) {
			assert_int_equal(klen, 3);
			assert_memory_equal(f->key, "ABC", 3);
		}
		if (s->msg_part && !strstr(f->msg, s->msg_part))
			fail_msg("helper saying %s: message \"%s\" lacks \"%s\"", s->answer, f->msg,
			         s->msg_part);
		free(uri);
	}
}

static void probe_expects_a_bare_ok_and_wrap_expects_a_payload(void **state)
{
	struct fixture *f = *state;
	uint8_t out[CK_WRAP_MAX], dek[CK_KEY_LEN] = { 1 };
	size_t olen = 0;
	char *bare = helper_uri("say", " 'ok\\n'");
	char *with = helper_uri("say", " 'ok QUJD\\n'");

	assert_int_equal(ck_provider_exec.probe(bare, f->msg, sizeof(f->msg)), 0);
	assert_int_equal(ck_provider_exec.probe(with, f->msg, sizeof(f->msg)), -EAGAIN);
	assert_int_equal(ck_provider_exec.wrap(bare, dek, sizeof(dek), out, &olen,
	                                       f->msg, sizeof(f->msg)), -EAGAIN);
	assert_int_equal(ck_provider_exec.wrap(with, dek, sizeof(dek), out, &olen,
	                                       f->msg, sizeof(f->msg)), 0);
	assert_int_equal(olen, 3);
	assert_memory_equal(out, "ABC", 3);
	free(bare);
	free(with);
}

static void payload_longer_than_the_buffer_is_unavailable(void **state)
{
	struct fixture *f = *state;
	/* 1368 base64 characters are 1026 bytes: more than CK_WRAP_MAX. */
	char *uri = helper_uri("long-ok", " 1368");
	size_t klen = 0;

	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	assert_non_null(strstr(f->msg, "longer than"));
	free(uri);
	/* 1364 characters are 1023 bytes: fits. */
	uri = helper_uri("long-ok", " 1364");
	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), &klen), 0);
	assert_int_equal(klen, 1023);
	free(uri);
	/* 16000 characters: fits the answer limit, not the key buffer. */
	uri = helper_uri("long-ok", " 16000");
	assert_int_equal(unwrap(f, uri, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
	free(uri);
}

static void helper_closing_stdin_early_never_kills_us(void **state)
{
	struct fixture *f = *state;
	char *nothing = helper_uri("close-stdin", "%s", "");
	char *denies = helper_uri("close-stdin", " 'denied gone\\n'");

	/* Usually the request is already in the pipe when the helper closes
	 * it; when it is not, the write fails with EPIPE and must raise no
	 * SIGPIPE (its default action would end this test). Either way the
	 * answer decides. */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(unwrap(f, nothing, some_wrap, sizeof(some_wrap), NULL), -EAGAIN);
		assert_int_equal(unwrap(f, denies, some_wrap, sizeof(some_wrap), NULL),
		                 -EKEYREVOKED);
	}
	free(nothing);
	free(denies);
}

/* ---- how the helper is run ---- */

static char *slurp(const char *dir, const char *name)
{
	char *path = ck_test_path(dir, name), *buf = calloc(1, 8192);

	assert_non_null(buf);
	ck_test_read_file(path, buf, 8191);
	free(path);
	return buf;
}

static void helper_gets_args_clean_env_no_fds_and_the_exact_request(void **state)
{
	struct fixture *f = *state;
	uint8_t dek[CK_KEY_LEN], out[CK_WRAP_MAX];
	size_t olen = 0, klen = 0;
	char *rec = ck_test_path(f->dir, "rec dir"), *uri, *s, *want, b64[64];
	char *marker = ck_test_path(f->dir, "leak-marker");
	int leak;

	assert_int_equal(mkdir(rec, 0700), 0);
	/* A descriptor the daemon forgot to mark close-on-exec. */
	leak = open(marker, O_WRONLY | O_CREAT, 0600);
	assert_true(leak >= 0);
	assert_true(asprintf(&uri, "exec:%s/record?timeout=5 '%s' \"two words\" "
	                     "back\\ slash 'it''s'", helpers_dir, rec) > 0);
	ck_test_fill(dek, sizeof(dek), 9);

	assert_int_equal(ck_provider_exec.wrap(uri, dek, sizeof(dek), out, &olen,
	                                       f->msg, sizeof(f->msg)), 0);
	/* The record helper is a mirror: it answers the payload it got. */
	assert_int_equal(olen, sizeof(dek));
	assert_memory_equal(out, dek, sizeof(dek));

	s = slurp(rec, "argv");
	assert_true(asprintf(&want, "%s\ntwo words\nback slash\nits\n", rec) > 0);
	assert_string_equal(s, want);
	free(want);
	free(s);

	s = slurp(rec, "environ");
	assert_string_equal(s, "PATH=/usr/bin:/bin\n");
	free(s);

	s = slurp(rec, "cwd");
	assert_string_equal(s, "/\n");
	free(s);

	s = slurp(rec, "fds");
	if (strstr(s, "leak-marker"))
		fail_msg("helper inherited a descriptor: %s", s);
	free(s);

	/* Standard base64 of the key, in the documented framing, and the
	 * key nowhere else. */
	snprintf(b64, sizeof(b64), "CRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+I=");
	s = slurp(rec, "request");
	assert_true(asprintf(&want, "ckfs-keyhelper 1\nwrap %s\n", b64) > 0);
	assert_string_equal(s, want);
	free(want);
	free(s);
	s = slurp(rec, "argv");
	assert_null(strstr(s, b64));
	free(s);

	assert_int_equal(unwrap(f, uri, dek, sizeof(dek), &klen), 0);
	assert_int_equal(klen, sizeof(dek));
	assert_memory_equal(f->key, dek, sizeof(dek));
	s = slurp(rec, "request");
	assert_true(asprintf(&want, "ckfs-keyhelper 1\nunwrap %s\n", b64) > 0);
	assert_string_equal(s, want);
	free(want);
	free(s);

	assert_int_equal(ck_provider_exec.probe(uri, f->msg, sizeof(f->msg)), 0);
	s = slurp(rec, "request");
	assert_string_equal(s, "ckfs-keyhelper 1\nprobe\n");
	free(s);

	close(leak);
	free(marker);
	free(uri);
	free(rec);
}

/* Every base64 padding case (0, 1, 2 '=') survives the trip both ways. */
static void payloads_of_every_length_round_trip_through_a_mirror(void **state)
{
	struct fixture *f = *state;
	char *rec = ck_test_path(f->dir, "rec"), *uri;
	uint8_t in[CK_WRAP_MAX];
	size_t klen;

	assert_int_equal(mkdir(rec, 0700), 0);
	assert_true(asprintf(&uri, "exec:%s/record %s", helpers_dir, rec) > 0);
	ck_test_fill(in, sizeof(in), 3);
	for (size_t n = 1; n <= 7; n++) {
		klen = 0;
		assert_int_equal(unwrap(f, uri, in, n, &klen), 0);
		assert_int_equal(klen, n);
		assert_memory_equal(f->key, in, n);
	}
	klen = 0;
	assert_int_equal(unwrap(f, uri, in, CK_WRAP_MAX, &klen), 0);
	assert_int_equal(klen, CK_WRAP_MAX);
	assert_memory_equal(f->key, in, CK_WRAP_MAX);
	assert_int_equal(unwrap(f, uri, in, CK_WRAP_MAX + 1, &klen), -EINVAL);
	assert_int_equal(unwrap(f, uri, in, 0, &klen), -EINVAL);
	free(uri);
	free(rec);
}

struct worker {
	char *uri;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t *key = ck_secret_alloc(CK_WRAP_MAX), in[CK_KEY_LEN];
	char msg[256];
	size_t n;

	ck_test_fill(in, sizeof(in), (uint8_t)(uintptr_t)w);
	for (int i = 0; i < 5; i++) {
		if (ck_provider_exec.unwrap(w->uri, in, sizeof(in), key, &n, msg, sizeof(msg)) ||
		    n != sizeof(in) || memcmp(key, in, n))
			w->failures++;
	}
	ck_secret_free(key, CK_WRAP_MAX);
	return NULL;
}

/* Concurrent calls (as FUSE worker threads make them) do not mix up pipes
 * or hang on each other's descriptors. */
static void concurrent_calls_from_threads_each_get_their_answer(void **state)
{
	struct fixture *f = *state;
	struct worker w[8];
	pthread_t t[8];
	int failures = 0;

	/* One record directory per thread: the helper keeps its request
	 * there before it answers. */
	for (int i = 0; i < 8; i++) {
		char *rec;

		assert_true(asprintf(&rec, "%s/rec%d", f->dir, i) > 0);
		assert_int_equal(mkdir(rec, 0700), 0);
		w[i] = (struct worker){ .uri = NULL };
		assert_true(asprintf(&w[i].uri, "exec:%s/record?timeout=20 %s", helpers_dir,
		                     rec) > 0);
		free(rec);
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	/* Join every thread before asserting: they use w[] on this stack. */
	for (int i = 0; i < 8; i++) {
		if (pthread_join(t[i], NULL) != 0)
			abort();
		failures += w[i].failures;
		free(w[i].uri);
	}
	assert_int_equal(failures, 0);
}

/* ---- URIs ---- */

static void bad_uris_and_bad_helpers_are_einval(void **state)
{
	struct fixture *f = *state;
	char *noexec = ck_test_path(f->dir, "noexec"), *writable = ck_test_path(f->dir, "ww");
	char *long_uri = malloc(CK_URI_MAX + 16);
	char *uris[32];
	int n = 0;

	ck_test_write_file(noexec, "#!/bin/sh\necho ok\n", 18, 0644);
	ck_test_write_file(writable, "#!/bin/sh\necho ok\n", 18, 0777);
	assert_non_null(long_uri);
	memcpy(long_uri, "exec:/bin/true ", 15);
	memset(long_uri + 15, 'a', CK_URI_MAX);
	long_uri[CK_URI_MAX + 15] = '\0';

	uris[n++] = strdup("exec:");
	uris[n++] = strdup("exec:   ");
	uris[n++] = strdup("exec:relative/helper");
	uris[n++] = strdup("exec:ck-keyhelper-example /tmp/k");
	uris[n++] = strdup("exec:/nonexistent/helper");
	uris[n++] = strdup("exec:/tmp");
	uris[n++] = strdup("file:/bin/true");
	uris[n++] = strdup("exec:/bin/true 'unterminated");
	uris[n++] = strdup("exec:/bin/true \"unterminated");
	uris[n++] = strdup("exec:/bin/true trailing\\");
	uris[n++] = strdup("exec:/bin/true?timeout=0");
	uris[n++] = strdup("exec:/bin/true?timeout=3601");
	uris[n++] = strdup("exec:/bin/true?timeout=");
	uris[n++] = strdup("exec:/bin/true?timeout=1s");
	uris[n++] = strdup("exec:/bin/true?timeout=99999999999999999999");
	uris[n++] = strdup("exec:/bin/true?retries=3");
	uris[n++] = strdup("exec:/bin/true arg\nwith-newline");
	uris[n++] = long_uri;
	assert_true(asprintf(&uris[n++], "exec:%s", noexec) > 0);
	assert_true(asprintf(&uris[n++], "exec:%s", writable) > 0);

	for (int i = 0; i < n; i++) {
		uint8_t out[CK_WRAP_MAX], dek[CK_KEY_LEN] = { 0 };
		size_t olen;

		f->msg[0] = '\0';
		if (ck_provider_exec.check_uri(uris[i], f->msg, sizeof(f->msg)) != -EINVAL)
			fail_msg("check_uri accepted \"%.60s\"", uris[i]);
		assert_true(f->msg[0] != '\0');
		assert_int_equal(ck_provider_exec.probe(uris[i], f->msg, sizeof(f->msg)), -EINVAL);
		assert_int_equal(ck_provider_exec.wrap(uris[i], dek, sizeof(dek), out, &olen,
		                                       f->msg, sizeof(f->msg)), -EINVAL);
		assert_int_equal(unwrap(f, uris[i], some_wrap, sizeof(some_wrap), NULL), -EINVAL);
		free(uris[i]);
	}
	free(noexec);
	free(writable);
}

static void good_uris_pass_check_uri(void **state)
{
	struct fixture *f = *state;
	const char *ok[] = {
		"exec:/bin/true",
		"exec:/bin/true?timeout=1",
		"exec:/bin/true?timeout=3600 a 'b c' \"d \\\" e\" f\\ g",
		"exec:  /bin/true\targ",
		"exec:/bin/true 'a?timeout=x'",      /* '?' only counts in the path */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ck_provider_exec.check_uri(ok[i], f->msg, sizeof(f->msg)) != 0)
			fail_msg("check_uri refused \"%s\": %s", ok[i], f->msg);
	assert_string_equal(ck_provider_exec.scheme, "exec");
	assert_null(ck_provider_exec.create);
}

/* The msg buffer is optional. */
static void calls_without_a_message_buffer_work(void **state)
{
	struct fixture *f = *state;
	char *uri = helper_uri("say", " 'unavailable x\\n'");
	size_t n;

	assert_int_equal(ck_provider_exec.unwrap(uri, some_wrap, sizeof(some_wrap), f->key, &n,
	                                         NULL, 0), -EAGAIN);
	assert_int_equal(ck_provider_exec.probe("exec:rel", NULL, 0), -EINVAL);
	free(uri);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(example_helper_wraps_unwraps_and_probes),
		T(example_helper_denies_when_its_key_is_deleted),
		T(example_helper_is_unavailable_while_down),
		T(example_helper_wrap_of_another_key_is_unavailable_not_denied),
		T(hanging_helper_times_out_and_its_process_group_is_killed),
		T(helper_that_answers_but_does_not_exit_is_killed),
		T(crashing_helper_is_unavailable),
		T(helper_printing_10_mb_is_cut_off_and_unavailable),
		T(silent_helper_is_unavailable),
		T(helper_answers_map_to_ok_denied_or_unavailable),
		T(probe_expects_a_bare_ok_and_wrap_expects_a_payload),
		T(payload_longer_than_the_buffer_is_unavailable),
		T(helper_closing_stdin_early_never_kills_us),
		T(helper_gets_args_clean_env_no_fds_and_the_exact_request),
		T(payloads_of_every_length_round_trip_through_a_mirror),
		T(concurrent_calls_from_threads_each_get_their_answer),
		T(bad_uris_and_bad_helpers_are_einval),
		T(good_uris_pass_check_uri),
		T(calls_without_a_message_buffer_work),
	};

	/* exec: wants absolute paths; accept relative ones when run by hand. */
	helpers_dir = realpath(argc > 1 ? argv[1] : helpers_dir, NULL);
	example_helper = realpath(argc > 2 ? argv[2] : example_helper, NULL);
	if (!helpers_dir || !example_helper) {
		fprintf(stderr, "usage: %s HELPERS_DIR EXAMPLE_HELPER\n", argv[0]);
		return 1;
	}
	signal(SIGPIPE, SIG_DFL);
	if (ck_test_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("provider_exec", tests, NULL, NULL);
}
