/* The volume audit log (keys/audit.h): appending awkward values, printing
 * both forms, detecting each kind of tampering, and concurrent writers.
 * Each test runs on a fresh volume in a mkdtemp directory; tampering is
 * done on the volume's files and undone from a saved copy between cases. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "keys/audit.h"
#include "keys/crypto.h"
#include "keys/secmem.h"
#include "keys/volume.h"

#define NREC 10

struct env {
	char top[4096], vol[4200], keys[4200], log[4300], head[4300];
	struct ck_volume v;
	char msg[512];
};

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, k;

	if (!f) {
		*len = 0;
		return NULL;
	}
	do {
		if (n + 65536 + 1 > cap) {
			cap = (n + 65536 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
	} while (k > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void write_all(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

/* The log split into lines (each keeps its "\n"). */
struct lines {
	char *buf;
	size_t n;
	char *at[4096];
	size_t len[4096];
};

static void split(struct lines *l, const char *path)
{
	size_t total, i = 0;

	l->buf = read_all(path, &total);
	assert_non_null(l->buf);
	l->n = 0;
	while (i < total) {
		char *nl = memchr(l->buf + i, '\n', total - i);
		size_t e = nl ? (size_t)(nl - l->buf) + 1 : total;

		assert_true(l->n < 4096);
		l->at[l->n] = l->buf + i;
		l->len[l->n++] = e - i;
		i = e;
	}
}

/* Writes the lines listed in order[] (0-based indexes into l). */
static void join(const struct lines *l, const char *path, const int *order, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fwrite(l->at[order[i]], 1, l->len[order[i]], f), l->len[order[i]]);
	assert_int_equal(fclose(f), 0);
}

static void assert_good_message(const char *msg)
{
	assert_true(msg[0] != '\0');
	if (isupper((unsigned char)msg[0]))
		fail_msg("message starts with a capital: \"%s\"", msg);
	assert_null(strchr(msg, '\n'));
}

static void append_ok(struct env *e, const char *event, const char *dep, const char *tree,
                      const char *uri, const char *result, const char *actor)
{
	struct ck_audit_event ev = { event, dep, tree, uri, result, actor };
	int r = ck_audit_append(&e->v, &ev);

	if (r != 0)
		fail_msg("ck_audit_append(%s): %s", event, strerror(-r));
}

static void verify_ok(struct env *e, long want)
{
	long count = -1;
	int r;

	e->msg[0] = '\0';
	r = ck_audit_verify(&e->v, &count, e->msg, sizeof(e->msg));
	if (r != 0)
		fail_msg("verify: %d: %s", r, e->msg);
	assert_int_equal(count, want);
}

/* Verification fails with -EBADMSG and a message holding every needle. */
static void verify_bad(struct env *e, const char *what, ...)
{
	long count = -1;
	const char *needle;
	va_list ap;
	int r;

	e->msg[0] = '\0';
	r = ck_audit_verify(&e->v, &count, e->msg, sizeof(e->msg));
	if (r != -EBADMSG)
		fail_msg("%s: verify returned %d (want -EBADMSG), message \"%s\"", what, r, e->msg);
	assert_good_message(e->msg);
	va_start(ap, what);
	while ((needle = va_arg(ap, const char *)))
		if (!strstr(e->msg, needle))
			fail_msg("%s: message \"%s\" lacks \"%s\"", what, e->msg, needle);
	va_end(ap);
	print_message("  %-28s -> %s\n", what, e->msg);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	const char *base = getenv("TMPDIR");
	int r;

	if (!e)
		return -1;
	snprintf(e->top, sizeof(e->top), "%s/ck-audit-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(e->top))
		return -1;
	snprintf(e->vol, sizeof(e->vol), "%s/vol", e->top);
	snprintf(e->keys, sizeof(e->keys), "%s/keys", e->top);
	snprintf(e->log, sizeof(e->log), "%s/.ckfs/audit.log", e->vol);
	snprintf(e->head, sizeof(e->head), "%s/.ckfs/audit.head", e->vol);
	if ((r = ck_volume_create(e->vol, e->keys, 0, e->msg, sizeof(e->msg))) < 0 ||
	    (r = ck_volume_open(e->vol, e->keys, &e->v, e->msg, sizeof(e->msg))) < 0) {
		fprintf(stderr, "volume %s: %s\n", e->vol, e->msg);
		return -1;
	}
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	ck_volume_close(&e->v);
	(void)nftw(e->top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

/* Ten ordinary records, events "ev-1" .. "ev-10". */
static void fill(struct env *e)
{
	char ev[32];

	for (int i = 1; i <= NREC; i++) {
		snprintf(ev, sizeof(ev), "ev-%d", i);
		append_ok(e, ev, "finance", "/finance", "file:///keys/finance.key", "ok", "operator");
	}
	verify_ok(e, NREC);
}

static int have_python(void)
{
	return system("python3 -c 'import json' >/dev/null 2>&1") == 0;
}

/* ---- tests ---- */

static void missing_log_without_head_is_valid_and_empty(void **state)
{
	struct env *e = *state;
	char hex[65] = "x", *out = NULL;
	size_t n = 0;
	long count = -1;
	FILE *f;

	verify_ok(e, 0);
	assert_int_equal(ck_audit_head(&e->v, hex, &count), 0);
	assert_string_equal(hex, "");
	assert_int_equal(count, 0);
	f = open_memstream(&out, &n);
	assert_int_equal(ck_audit_print(&e->v, f, 1), 0);
	fclose(f);
	assert_string_equal(out, "[]\n");
	free(out);
}

static void append_without_event_is_einval(void **state)
{
	struct env *e = *state;
	struct ck_audit_event ev = { NULL, "d", NULL, NULL, NULL, NULL };

	assert_int_equal(ck_audit_append(&e->v, &ev), -EINVAL);
	ev.event = "";
	assert_int_equal(ck_audit_append(&e->v, &ev), -EINVAL);
	assert_int_equal(ck_audit_append(&e->v, NULL), -EINVAL);
	verify_ok(e, 0);
}

static const char *const awkward[] = {
	"finance team",                                   /* space */
	"a=b c=d",                                        /* '=' */
	"line1\nline2\r\n",                               /* line breaks */
	"f\xc3\xbcr \xe2\x82\xac \xf0\x9f\x94\x91",       /* unicode: für € 🔑 */
	"100% \"quoted\" \\back\\slash\t\x01\x7f",        /* quotes, controls */
	"x mac=0000 seq=99\nseq=3 time=now event=forged", /* field injection */
	"\xff\xfe not utf-8 \xc3",                        /* invalid UTF-8 */
	"-",                                              /* looks like absent */
};
#define NAWK (sizeof(awkward) / sizeof(awkward[0]))

static void awkward_values_stay_one_record_each_and_verify(void **state)
{
	struct env *e = *state;
	struct lines l;
	struct stat st;
	char hex[65];
	long count;

	for (size_t i = 0; i < NAWK; i++)
		append_ok(e, awkward[i], awkward[i], awkward[i], awkward[i], awkward[i], awkward[i]);
	append_ok(e, "availability-fallback", NULL, NULL, NULL, NULL, NULL);
	verify_ok(e, NAWK + 1);

	split(&l, e->log);
	assert_int_equal(l.n, NAWK + 1);
	for (size_t i = 0; i < l.n; i++) {
		size_t eq = 0, sp = 0;

		assert_true(l.len[i] <= 4096);
		assert_int_equal(l.at[i][l.len[i] - 1], '\n');
		for (size_t k = 0; k < l.len[i]; k++) {
			unsigned char c = (unsigned char)l.at[i][k];

			eq += c == '=';
			sp += c == ' ';
			if (k + 1 < l.len[i])
				assert_true(c >= 0x20 && c < 0x7f);   /* ASCII, one line */
		}
		assert_int_equal(eq, 11);                    /* no injected fields */
		assert_int_equal(sp, 10);
	}
	assert_non_null(strstr(l.at[0], " event=finance%20team dep=finance%20team "));
	assert_non_null(strstr(l.at[1], " dep=a%3Db%20c%3Dd "));
	assert_non_null(strstr(l.at[NAWK], " dep= tree= uri= result= actor= mac="));
	free(l.buf);

	assert_int_equal(stat(e->log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(e->head, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* The head names the last record's MAC. */
	assert_int_equal(ck_audit_head(&e->v, hex, &count), 0);
	assert_int_equal(count, NAWK + 1);
	split(&l, e->log);
	assert_int_equal(strlen(hex), 64);
	assert_non_null(strstr(l.at[NAWK], hex));
	free(l.buf);
}

static void long_values_are_cut_with_dots_at_a_character(void **state)
{
	struct env *e = *state;
	char *big = malloc(1 << 20), *eu = malloc(3001), *p;
	struct lines l;

	assert_non_null(big);
	assert_non_null(eu);
	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	for (int i = 0; i < 1000; i++)                 /* "é" x 1000 */
		memcpy(eu + 2 * i, "\xc3\xa9", 2);
	eu[2000] = '\0';
	append_ok(e, big, big, big, big, big, big);
	append_ok(e, "unicode", eu, eu, eu, eu, eu);
	verify_ok(e, 2);

	split(&l, e->log);
	assert_true(l.len[0] <= 4096);
	assert_true(l.len[1] <= 4096);
	/* tree allows 1024 encoded bytes: 1021 x and "..." */
	p = strstr(l.at[0], " tree=");
	assert_non_null(p);
	assert_int_equal(strspn(p + 6, "x"), 1021);
	assert_memory_equal(p + 6 + 1021, "... ", 4);
	/* é is %C3%A9 (6 bytes): 84 whole characters fit in 509 + "..." */
	p = strstr(l.at[1], " dep=");
	assert_non_null(p);
	assert_memory_equal(p + 5 + 84 * 6, "... ", 4);
	assert_memory_equal(p + 5 + 83 * 6, "%C3%A9...", 9);
	free(l.buf);
	free(big);
	free(eu);
}

/* Runs python3 on file with a program that exits 0 when happy. */
static int python_check(const char *file, const char *prog)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "python3 -c '%s' < '%s'", prog, file);
	return system(cmd);
}

static void print_gives_readable_lines_and_valid_json(void **state)
{
	struct env *e = *state;
	char *out = NULL, path[4400];
	size_t n = 0, lines = 0;
	FILE *f;

	for (size_t i = 0; i < NAWK; i++)
		append_ok(e, "dep-created", awkward[i], "/t", "pkcs11:token=a;object=b", "ok",
		          "operator");
	append_ok(e, "revoked", "finance", NULL, NULL, "denied", "probe");
	verify_ok(e, NAWK + 1);

	/* Human: one line per record, control characters never raw. */
	f = open_memstream(&out, &n);
	assert_int_equal(ck_audit_print(&e->v, f, 0), 0);
	fclose(f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		lines += c == '\n';
		assert_true(c == '\n' || c >= 0x20);
		assert_true(c != 0x7f);
	}
	assert_int_equal(lines, NAWK + 1);
	assert_non_null(strstr(out, " dep-created dep=\"finance team\" tree=/t "));
	assert_non_null(strstr(out, "dep=\"line1\\nline2\\x0d\\n\""));
	assert_non_null(strstr(out, "dep=\"f\xc3\xbcr \xe2\x82\xac \xf0\x9f\x94\x91\""));
	assert_non_null(strstr(out, "dep=\"-\""));
	assert_non_null(strstr(out, " revoked dep=finance tree=- uri=- result=denied actor=probe\n"));
	free(out);

	/* JSON: valid, and every value decodes to what was appended. */
	snprintf(path, sizeof(path), "%s/audit.json", e->top);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(ck_audit_print(&e->v, f, 1), 0);
	assert_int_equal(fclose(f), 0);
	if (!have_python()) {
		print_message("python3 missing: JSON not parsed\n");
		return;
	}
	assert_int_equal(python_check(path,
		"import json,sys\n"
		"a = json.load(sys.stdin)\n"
		"assert isinstance(a, list) and len(a) == 9, len(a)\n"
		"assert [r[\"seq\"] for r in a] == list(range(1, 10))\n"
		"assert a[0][\"dep\"] == \"finance team\"\n"
		"assert a[1][\"dep\"] == \"a=b c=d\"\n"
		"assert a[2][\"dep\"] == \"line1\\nline2\\r\\n\"\n"
		"assert a[3][\"dep\"] == \"f\\u00fcr \\u20ac \\U0001f511\"\n"
		"assert a[4][\"dep\"] == \"100% \\\"quoted\\\" \\\\back\\\\slash\\t\\x01\\x7f\"\n"
		"assert a[5][\"dep\"].startswith(\"x mac=0000 seq=99\\nseq=3\")\n"
		"assert a[6][\"dep\"] == \"\\ufffd\\ufffd not utf-8 \\ufffd\"\n"
		"assert a[8][\"tree\"] is None and a[8][\"result\"] == \"denied\"\n"
		"assert all(len(r[\"mac\"]) == 64 and r[\"pid\"] > 0 for r in a)\n"), 0);
}

/* ---- tampering ---- */

struct saved {
	char *log, *head;
	size_t log_len, head_len;
};

static void save(struct env *e, struct saved *s)
{
	s->log = read_all(e->log, &s->log_len);
	s->head = read_all(e->head, &s->head_len);
	assert_non_null(s->log);
	assert_non_null(s->head);
}

static void restore(struct env *e, const struct saved *s)
{
	write_all(e->log, s->log, s->log_len);
	write_all(e->head, s->head, s->head_len);
	verify_ok(e, NREC);
}

static void append_refused(struct env *e, const char *what)
{
	struct ck_audit_event ev = { "after-tamper", NULL, NULL, NULL, NULL, NULL };
	int r = ck_audit_append(&e->v, &ev);

	if (r != -EBADMSG)
		fail_msg("%s: append returned %d, want -EBADMSG (it must not hide the damage)",
		         what, r);
}

static void edited_record_is_named(void **state)
{
	struct env *e = *state;
	struct saved s;
	struct lines l;
	char *p;

	fill(e);
	save(e, &s);

	/* A changed letter in record 5's event. */
	split(&l, e->log);
	p = strstr(l.at[4], "event=ev-5");
	assert_non_null(p);
	p[6] = 'E';
	write_all(e->log, l.buf, s.log_len);
	verify_bad(e, "edited event", "record 5 ", "edited", NULL);
	free(l.buf);
	restore(e, &s);

	/* A byte flipped in the middle of record 5, wherever it falls. */
	split(&l, e->log);
	l.at[4][l.len[4] / 2] ^= 0x01;
	write_all(e->log, l.buf, s.log_len);
	verify_bad(e, "flipped middle byte", "record 5 ", NULL);
	free(l.buf);
	restore(e, &s);

	/* A changed MAC digit in record 7. */
	split(&l, e->log);
	p = strstr(l.at[6], " mac=");
	p[10] = p[10] == '0' ? '1' : '0';
	write_all(e->log, l.buf, s.log_len);
	verify_bad(e, "edited mac", "record 7 ", "edited", NULL);
	free(l.buf);
	restore(e, &s);

	/* A changed seq in record 3 (claims to be 4). */
	split(&l, e->log);
	assert_memory_equal(l.at[2], "seq=3 ", 6);
	l.at[2][4] = '4';
	write_all(e->log, l.buf, s.log_len);
	verify_bad(e, "edited seq", "record 3 ", "edited", NULL);
	free(l.buf);
	restore(e, &s);

	/* The middle byte of the whole file. */
	split(&l, e->log);
	{
		size_t mid = s.log_len / 2, rec = 0;
		char want[32];

		while ((size_t)(l.at[rec] - l.buf) + l.len[rec] <= mid)
			rec++;
		if (l.buf[mid] == '\n')
			mid--;
		l.buf[mid] ^= 0x04;
		write_all(e->log, l.buf, s.log_len);
		snprintf(want, sizeof(want), "record %zu ", rec + 1);
		verify_bad(e, "flipped file middle", want, NULL);
	}
	free(l.buf);
	restore(e, &s);
	free(s.log);
	free(s.head);
}

static void removed_reordered_and_inserted_records_are_named(void **state)
{
	struct env *e = *state;
	struct saved s;
	struct lines l;
	char forged[4096];

	fill(e);
	save(e, &s);
	split(&l, e->log);

	{	/* delete line 5 */
		int o[] = { 0, 1, 2, 3, 5, 6, 7, 8, 9 };
		join(&l, e->log, o, 9);
		verify_bad(e, "deleted record 5", "record 5 ", "removed", NULL);
		restore(e, &s);
	}
	{	/* delete lines 4 to 6 */
		int o[] = { 0, 1, 2, 6, 7, 8, 9 };
		join(&l, e->log, o, 7);
		verify_bad(e, "deleted records 4-6", "record 4 ", "removed", NULL);
		restore(e, &s);
	}
	{	/* delete the first line */
		int o[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
		join(&l, e->log, o, 9);
		verify_bad(e, "deleted record 1", "record 1 ", "removed", NULL);
		restore(e, &s);
	}
	{	/* swap lines 4 and 5 */
		int o[] = { 0, 1, 2, 4, 3, 5, 6, 7, 8, 9 };
		join(&l, e->log, o, 10);
		verify_bad(e, "swapped records 4 and 5", "record 4 ", "reordered", NULL);
		restore(e, &s);
	}
	{	/* move line 3 to the end */
		int o[] = { 0, 1, 3, 4, 5, 6, 7, 8, 9, 2 };
		join(&l, e->log, o, 10);
		verify_bad(e, "moved record 3 to the end", "record 3 ", "reordered", NULL);
		restore(e, &s);
	}
	{	/* a copy of record 2 inserted after record 6 */
		int o[] = { 0, 1, 2, 3, 4, 5, 1, 6, 7, 8, 9 };
		join(&l, e->log, o, 11);
		verify_bad(e, "replayed record 2", "record 7 ", NULL);
		restore(e, &s);
	}
	{	/* a forged, well-formed record 5 slipped in before the real one */
		FILE *f = fopen(e->log, "wb");
		char *m;

		assert_non_null(f);
		for (int i = 0; i < 4; i++)
			fwrite(l.at[i], 1, l.len[i], f);
		memcpy(forged, l.at[4], l.len[4]);
		forged[l.len[4]] = '\0';
		m = strstr(forged, "event=ev-5");
		memcpy(m, "event=XX-5", 10);
		fwrite(forged, 1, l.len[4], f);
		for (int i = 4; i < NREC; i++)
			fwrite(l.at[i], 1, l.len[i], f);
		fclose(f);
		verify_bad(e, "forged line before 5", "record 5 ", "inserted", NULL);
		restore(e, &s);
	}
	{	/* a forged record 11 appended after the last one */
		FILE *f = fopen(e->log, "ab");
		char *p;

		memcpy(forged, l.at[9], l.len[9]);
		forged[l.len[9]] = '\0';
		assert_memory_equal(forged, "seq=10 ", 7);
		forged[5] = '1';                        /* seq=11 */
		p = strstr(forged, "event=ev-10");
		memcpy(p, "event=ev-99", 11);
		assert_non_null(f);
		fwrite(forged, 1, l.len[9], f);
		fclose(f);
		verify_bad(e, "forged record 11 at the end", "record 11 ", NULL);
		restore(e, &s);
	}
	free(l.buf);
	free(s.log);
	free(s.head);
}

static void truncated_tail_and_damaged_head_are_detected(void **state)
{
	struct env *e = *state;
	struct saved s;
	struct lines l;
	char *old_head;
	size_t old_head_len;

	for (int i = 1; i <= NREC - 2; i++)
		append_ok(e, "early", NULL, NULL, NULL, NULL, NULL);
	old_head = read_all(e->head, &old_head_len);   /* head after record 8 */
	append_ok(e, "late", NULL, NULL, NULL, NULL, NULL);
	append_ok(e, "late", NULL, NULL, NULL, NULL, NULL);
	verify_ok(e, NREC);
	save(e, &s);
	split(&l, e->log);

	{	/* the last record removed */
		int o[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };
		join(&l, e->log, o, 9);
		verify_bad(e, "last record removed", "truncated", "record 10 ", NULL);
		append_refused(e, "last record removed");
		{
			char hex[65];
			long count;

			assert_int_equal(ck_audit_head(&e->v, hex, &count), -EBADMSG);
		}
		restore(e, &s);
	}
	{	/* the last two */
		int o[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
		join(&l, e->log, o, 8);
		verify_bad(e, "last two records removed", "truncated", "records 9 to 10", NULL);
		append_refused(e, "last two records removed");
		restore(e, &s);
	}
	{	/* cut in the middle of the last record */
		assert_int_equal(truncate(e->log, (off_t)(s.log_len - l.len[9] / 2)), 0);
		verify_bad(e, "last record cut short", "record 10 ", "truncated", NULL);
		append_refused(e, "last record cut short");
		restore(e, &s);
	}
	{	/* everything removed: an empty log, then no log at all */
		assert_int_equal(truncate(e->log, 0), 0);
		verify_bad(e, "empty log, head says 10", "truncated", NULL);
		append_refused(e, "empty log");
		restore(e, &s);
		assert_int_equal(unlink(e->log), 0);
		verify_bad(e, "log deleted", "truncated", NULL);
		append_refused(e, "log deleted");
		restore(e, &s);
	}
	{	/* the head's count edited to match a truncated log */
		char *h = strdup(s.head);
		int o[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };

		assert_memory_equal(h, "count=10 ", 9);
		memmove(h + 7, h + 8, strlen(h + 8) + 1);
		h[6] = '9';                                 /* count=9 */
		write_all(e->head, h, strlen(h));
		verify_bad(e, "head count edited", "head", "edited", NULL);
		append_refused(e, "head count edited");
		restore(e, &s);
		join(&l, e->log, o, 9);
		write_all(e->head, h, strlen(h));
		verify_bad(e, "head edited to match cut log", "head", "edited", NULL);
		restore(e, &s);
		free(h);
	}
	{	/* one flipped bit in the head's MAC, then garbage, then empty */
		char *h = strdup(s.head);

		h[s.head_len - 3] = h[s.head_len - 3] == '0' ? '1' : '0';
		write_all(e->head, h, s.head_len);
		verify_bad(e, "head mac flipped", "head", "edited", NULL);
		restore(e, &s);
		write_all(e->head, "\x01\xff garbage\n", 11);
		verify_bad(e, "head garbage", "head", "malformed", NULL);
		append_refused(e, "head garbage");
		restore(e, &s);
		write_all(e->head, "", 0);
		verify_bad(e, "head empty", "head", NULL);
		restore(e, &s);
		free(h);
	}
	{	/* the head deleted */
		assert_int_equal(unlink(e->head), 0);
		verify_bad(e, "head deleted", "missing", "truncated", "10 records", NULL);
		append_refused(e, "head deleted");
		restore(e, &s);
	}
	{	/* an older genuine head with the whole log: a writer that crashed
		 * before updating the head; accepted and caught up by the next append */
		write_all(e->head, old_head, old_head_len);
		verify_ok(e, NREC);
		{	/* the chain head is the log's last record, checked */
			char hex[65];
			long count;

			assert_int_equal(ck_audit_head(&e->v, hex, &count), 0);
			assert_int_equal(count, NREC);
			assert_int_equal(strlen(hex), 64);
			assert_non_null(strstr(l.at[NREC - 1], hex));
		}
		append_ok(e, "after-crash", NULL, NULL, NULL, NULL, NULL);
		verify_ok(e, NREC + 1);
		restore(e, &s);
		/* ... but not when a line past the head is not genuine */
		write_all(e->head, old_head, old_head_len);
		{
			struct lines l2;
			split(&l2, e->log);
			l2.at[9][14] ^= 1;                  /* a digit of record 10's year */
			write_all(e->log, l2.buf, s.log_len);
			free(l2.buf);
		}
		verify_bad(e, "stale head, edited tail", "record 10 ", NULL);
		append_refused(e, "stale head, edited tail");
		restore(e, &s);
	}
	{	/* the log from an empty state with a head of count 0 is fine */
		assert_int_equal(truncate(e->log, 0), 0);
		assert_int_equal(unlink(e->head), 0);
		verify_ok(e, 0);
		append_ok(e, "fresh", NULL, NULL, NULL, NULL, NULL);
		verify_ok(e, 1);
	}
	free(old_head);
	free(l.buf);
	free(s.log);
	free(s.head);
}

static void garbage_logs_fail_cleanly(void **state)
{
	struct env *e = *state;
	struct saved s;
	size_t big = 1 << 20;
	char *junk = malloc(big), *out = NULL, hex[65];
	size_t n = 0;
	long count;
	FILE *f;

	assert_non_null(junk);
	fill(e);
	save(e, &s);
	srand(7);
	for (size_t i = 0; i < big; i++)
		junk[i] = (char)(rand() & 0xff);

	struct { const char *what; int with_nl; int at_start; } cases[] = {
		{ "1 MB binary, no newline, at the end", 0, 0 },
		{ "1 MB binary with newlines, at the end", 1, 0 },
		{ "1 MB binary, at the start", 0, 1 },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		FILE *w = fopen(e->log, cases[c].at_start ? "wb" : "ab");

		assert_non_null(w);
		for (size_t i = 0; i < big; i++) {
			char ch = junk[i];

			if (!cases[c].with_nl && ch == '\n')
				ch = 'n';
			fputc(ch, w);
		}
		if (cases[c].at_start)
			fwrite(s.log, 1, s.log_len, w);
		fclose(w);
		verify_bad(e, cases[c].what, cases[c].at_start ? "record 1 " : "record 11", NULL);
		if (!cases[c].at_start)     /* appenders check the tail, not the start */
			append_refused(e, cases[c].what);
		f = open_memstream(&out, &n);
		assert_int_equal(ck_audit_print(&e->v, f, 1), -EBADMSG);
		fclose(f);
		free(out);
		f = open_memstream(&out, &n);
		assert_int_equal(ck_audit_print(&e->v, f, 0), -EBADMSG);
		fclose(f);
		free(out);
		assert_int_equal(ck_audit_head(&e->v, hex, &count), cases[c].at_start ? 0 : -EBADMSG);
		restore(e, &s);
	}

	/* Lines missing fields, or with them out of order or doubled. */
	static const char *const bad_lines[] = {
		"seq=11\n",
		"seq=11 time=2026-11-25T18:00:00.123Z host=h pid=1 event=e dep= tree= uri= result= actor=\n",
		"seq=11 time=2026-11-25T18:00:00.123Z host=h pid=1 event= dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"seq=11 time=2026-11-25 18:00:00.123Z host=h pid=1 event=e dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"seq=011 time=2026-11-25T18:00:00.123Z host=h pid=1 event=e dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"seq=11 time=2026-11-25T18:00:00.123Z host=h pid=1 event=e=f dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"seq=11 time=2026-11-25T18:00:00.123Z host=h pid=1 event=%4 dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"seq=11 time=2026-11-25T18:00:00.123Z host=h pid=1 event=e dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000 x=y\n",
		"seq=11  time=2026-11-25T18:00:00.123Z host=h pid=1 event=e dep= tree= uri= result= actor= mac=" \
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"seq=11 time=2026-11-25T18:00:00.123Z host=h pid=1 event=e dep= tree= uri= result= actor= mac=" \
		"00000000000000000000000000000000000000000000000000000000000000\n",
		"\n",
		"\0\0\0\n",
	};
	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		FILE *w = fopen(e->log, "ab");
		size_t len = i == sizeof(bad_lines) / sizeof(bad_lines[0]) - 1 ? 4 : strlen(bad_lines[i]);

		fwrite(bad_lines[i], 1, len, w);
		fclose(w);
		verify_bad(e, "malformed line", "record 11 ", NULL);
		restore(e, &s);
	}
	free(junk);
	free(s.log);
	free(s.head);
}

/* Every byte of a record is under its MAC or strictly parsed (the mac
 * field: lower-case hex only), and the head is MAC'd, so any change to
 * either file must be caught; no change may crash a reader. */
static void random_mutations_are_all_detected(void **state)
{
	struct env *e = *state;
	struct saved s;
	char *buf = malloc(1 << 16), hex[65], *out = NULL;
	size_t n, outlen;
	long count;
	FILE *f;

	assert_non_null(buf);
	fill(e);
	save(e, &s);
	srand(12345);
	for (int it = 0; it < 600; it++) {
		int head = it % 4 == 3, kind = rand() % 4;
		const char *src = head ? s.head : s.log;
		size_t len = head ? s.head_len : s.log_len, at = (size_t)rand() % len;

		memcpy(buf, src, len);
		n = len;
		switch (kind) {
		case 0:         /* change one byte */
			buf[at] = (char)(buf[at] ^ (1 + rand() % 255));
			break;
		case 1:         /* insert one byte */
			memmove(buf + at + 1, buf + at, len - at);
			buf[at] = (char)(rand() & 0xff);
			n++;
			break;
		case 2:         /* delete one byte */
			memmove(buf + at, buf + at + 1, len - at - 1);
			n--;
			break;
		case 3:         /* cut the file */
			n = at;
			break;
		}
		write_all(head ? e->head : e->log, buf, n);
		e->msg[0] = '\0';
		if (ck_audit_verify(&e->v, &count, e->msg, sizeof(e->msg)) != -EBADMSG)
			fail_msg("mutation %d (%s, kind %d at %zu) not detected", it,
			         head ? "head" : "log", kind, at);
		assert_good_message(e->msg);
		f = open_memstream(&out, &outlen);
		(void)!ck_audit_print(&e->v, f, it & 1);
		fclose(f);
		free(out);
		(void)!ck_audit_head(&e->v, hex, &count);
		restore(e, &s);
	}
	free(buf);
	free(s.log);
	free(s.head);
}

/* A FIFO planted as the head or the log fails at once instead of hanging
 * a reader or a writer. */
static void special_files_fail_without_blocking(void **state)
{
	struct env *e = *state;
	struct saved s;
	struct ck_audit_event ev = { "x", NULL, NULL, NULL, NULL, NULL };
	char hex[65];
	long count;

	fill(e);
	save(e, &s);
	alarm(30);                              /* a hang fails the run */
	assert_int_equal(unlink(e->head), 0);
	assert_int_equal(mkfifo(e->head, 0600), 0);
	verify_bad(e, "head is a fifo", "head", "malformed", NULL);
	assert_int_equal(ck_audit_append(&e->v, &ev), -EBADMSG);
	assert_int_equal(ck_audit_head(&e->v, hex, &count), -EBADMSG);
	assert_int_equal(unlink(e->head), 0);
	assert_int_equal(unlink(e->log), 0);
	assert_int_equal(mkfifo(e->log, 0600), 0);
	assert_int_equal(ck_audit_verify(&e->v, &count, e->msg, sizeof(e->msg)), -EINVAL);
	assert_int_equal(ck_audit_append(&e->v, &ev), -EINVAL);
	assert_int_equal(ck_audit_print(&e->v, stdout, 0), -EINVAL);
	alarm(0);
	assert_int_equal(unlink(e->log), 0);
	restore(e, &s);
	free(s.log);
	free(s.head);
}

/* ---- concurrency ---- */

#define WRITERS 4
#define EACH    200

struct worker {
	struct ck_volume *v;
	const char *tag;
	int id, failures;
};

static void *append_many(void *arg)
{
	struct worker *w = arg;
	char ev[64];

	for (int i = 0; i < EACH; i++) {
		struct ck_audit_event e = { ev, "dep", "/tree", NULL, "ok", w->tag };

		snprintf(ev, sizeof(ev), "%s-%d-%d", w->tag, w->id, i);
		if (ck_audit_append(w->v, &e) != 0)
			w->failures++;
	}
	return NULL;
}

/* Verifies over and over while the writers run: a reader must always see
 * a consistent log and head, from before the first record on. */
struct reader {
	struct ck_volume *v;
	volatile int stop;
	int runs, failures;
	long last;
	char msg[512];
};

static void *verify_many(void *arg)
{
	struct reader *rd = arg;
	char hex[65];
	long count, hcount;

	while (!rd->stop) {
		int r = ck_audit_verify(rd->v, &count, rd->msg, sizeof(rd->msg));

		if (r == 0)
			r = ck_audit_head(rd->v, hex, &hcount);
		if (r != 0 || count < rd->last) {
			rd->failures++;
			break;
		}
		rd->last = count;
		rd->runs++;
		usleep(2000);
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void concurrent_processes_and_threads_lose_nothing(void **state)
{
	struct env *e = *state;
	pid_t pids[WRITERS];
	pthread_t th[WRITERS];
	struct worker w[WRITERS];
	struct lines *l = malloc(sizeof(*l));
	char *events[2 * WRITERS * EACH], hex[65];
	long count;
	int status[WRITERS], joined[WRITERS];
	pid_t reaped[WRITERS];
	struct reader rdr = { .v = &e->v };
	pthread_t rth;

	assert_non_null(l);
	for (int i = 0; i < WRITERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct worker cw = { &e->v, "proc", i, 0 };

			append_many(&cw);
			_exit(cw.failures ? 1 : 0);
		}
	}
	/* Threads only after the forks: a child forked while a thread holds
	 * the log's lock would inherit that descriptor, and the lock with it
	 * (see the top of keys/audit.c). */
	assert_int_equal(pthread_create(&rth, NULL, verify_many, &rdr), 0);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct worker){ &e->v, "thread", i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, append_many, &w[i]), 0);
	}
	/* Everyone finishes before any assert can leave the test (teardown
	 * closes the volume they use). */
	for (int i = 0; i < WRITERS; i++)
		joined[i] = pthread_join(th[i], NULL);
	for (int i = 0; i < WRITERS; i++)
		reaped[i] = waitpid(pids[i], &status[i], 0);
	rdr.stop = 1;
	assert_int_equal(pthread_join(rth, NULL), 0);
	if (rdr.failures)
		fail_msg("a concurrent verify failed after %d good runs (count %ld): %s",
		         rdr.runs, rdr.last, rdr.msg);
	print_message("  %d concurrent verifications, all intact\n", rdr.runs);
	assert_true(rdr.runs > 0);
	for (int i = 0; i < WRITERS; i++) {
		assert_int_equal(joined[i], 0);
		if (w[i].failures)
			fail_msg("thread %d: %d of %d appends failed", i, w[i].failures, EACH);
		assert_int_equal(reaped[i], pids[i]);
		assert_true(WIFEXITED(status[i]));
		if (WEXITSTATUS(status[i]))
			fail_msg("process %d: some appends failed", i);
	}

	verify_ok(e, 2 * WRITERS * EACH);
	assert_int_equal(ck_audit_head(&e->v, hex, &count), 0);
	assert_int_equal(count, 2 * WRITERS * EACH);

	/* Every append is there exactly once. */
	split(l, e->log);
	assert_int_equal(l->n, 2 * WRITERS * EACH);
	assert_non_null(strstr(l->at[l->n - 1], hex));
	for (size_t i = 0; i < l->n; i++) {
		char *p = strstr(l->at[i], " event="), *end;

		assert_non_null(p);
		p += 7;
		end = strchr(p, ' ');
		*end = '\0';
		events[i] = p;
	}
	qsort(events, l->n, sizeof(events[0]), cmp_str);
	for (size_t i = 1; i < l->n; i++)
		if (!strcmp(events[i - 1], events[i]))
			fail_msg("event %s appended twice", events[i]);
	free(l->buf);
	free(l);
}

/* Optional argument: a cmocka test-name pattern (e.g. "*detected*"). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(missing_log_without_head_is_valid_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(append_without_event_is_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(awkward_values_stay_one_record_each_and_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(long_values_are_cut_with_dots_at_a_character, setup, teardown),
		cmocka_unit_test_setup_teardown(print_gives_readable_lines_and_valid_json, setup, teardown),
		cmocka_unit_test_setup_teardown(edited_record_is_named, setup, teardown),
		cmocka_unit_test_setup_teardown(removed_reordered_and_inserted_records_are_named, setup, teardown),
		cmocka_unit_test_setup_teardown(truncated_tail_and_damaged_head_are_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(garbage_logs_fail_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(random_mutations_are_all_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(special_files_fail_without_blocking, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_processes_and_threads_lose_nothing, setup, teardown),
	};
	int r = ck_secmem_init(1 << 20);

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	if (r < 0) {
		fprintf(stderr, "ck_secmem_init: %s\n", strerror(-r));
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
