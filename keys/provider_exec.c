/* The exec: key provider: a helper program wraps and unwraps for us, so
 * that any KMS can be plugged in without linking its SDK. The protocol and
 * the URI syntax are specified in docs/PROVIDERS.md; in short:
 *
 *   URI      exec:/abs/helper[?timeout=SECONDS] [ARG]...
 *   request  "ckfs-keyhelper 1\n" then "wrap B64\n" | "unwrap B64\n" | "probe\n",
 *            then stdin is closed
 *   answer   one line on stdout: "ok B64" | "ok" (probe) |
 *            "denied MESSAGE" | "unavailable MESSAGE", then exit
 *
 * B64 is standard base64 (RFC 4648 section 4, "+/" and "=" padding); the
 * on-disk base64url codec in util.c is deliberately not reused.
 *
 * The helper runs without a shell (posix_spawn), with only PATH=/usr/bin:/bin
 * in its environment, "/" as its working directory, default signal
 * dispositions, an empty signal mask, stdin/stdout/stderr as its only open
 * files, in a new process group. Key bytes travel only through the pipes,
 * never argv or the environment. stderr is captured (bounded) and logged.
 *
 * Everything a helper can do wrong is UNAVAILABLE (-EAGAIN) plus a log
 * line: not answering within the timeout (the process group is SIGKILLed
 * and the helper reaped), dying by a signal, exiting without an answer,
 * answering "ok" with a non-zero exit status, printing more than
 * EXEC_ANSWER_MAX bytes, more than one line, an unknown verb or bad base64,
 * or closing stdin before taking the request. Only a well-formed "denied"
 * line from a helper that exited normally is DENIED (-EKEYREVOKED).
 *
 * Thread safety: every call owns its pipes and child; nothing is shared.
 * SIGPIPE is blocked in the calling thread around each write to the
 * helper, so a helper that exits early cannot kill the daemon. Callers must
 * not set SIGCHLD to SIG_IGN (the exit status would be lost: -EAGAIN). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "provider.h"
#include "secmem.h"
#include "util.h"

#define EXEC_PROTOCOL_LINE   "ckfs-keyhelper 1\n"
#define EXEC_TIMEOUT_DEFAULT 10        /* seconds */
#define EXEC_TIMEOUT_MAX     3600
#define EXEC_ARGS_MAX        64        /* words after the helper path */
#define EXEC_ANSWER_MAX      16384     /* bytes of stdout we accept */
#define EXEC_STDERR_MAX      4096      /* bytes of stderr we keep for the log */
#define EXEC_STDERR_LINES    10        /* lines of stderr we log */
#define EXEC_REAP_MS         2000      /* wait after SIGKILL before giving up */
/* "ckfs-keyhelper 1\n" + "unwrap " + base64(CK_WRAP_MAX) + "\n" + NUL */
#define EXEC_REQUEST_MAX     (sizeof(EXEC_PROTOCOL_LINE) + 8 + 4 * ((CK_WRAP_MAX + 2) / 3) + 2)

extern char **environ;

static void set_msg(char *msg, size_t msg_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msg_len, const char *fmt, ...)
{
	va_list ap;

	if (!msg || msg_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msg_len, fmt, ap);
	va_end(ap);
}

/* ---- standard base64 with padding (RFC 4648 section 4) ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_enclen(size_t n) { return 4 * ((n + 2) / 3); }

/* Writes b64_enclen(n) characters (no NUL). */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
	}
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Strict decoder: length a multiple of 4, '=' only as the last one or two
 * characters, unused bits zero (one encoding per byte string). Writes at
 * most cap bytes into out; on failure what was written is wiped.
 * Returns the decoded length or -EINVAL (-E2BIG if it does not fit). */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0, pad = 0, need;
	long r = -EINVAL;

	if (n == 0 || n % 4)
		goto fail;
	if (in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	need = n / 4 * 3 - pad;
	if (need > cap) {
		r = -E2BIG;
		goto fail;
	}
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int last = i + 4 == n;

		for (int j = 0; j < 4; j++) {
			v[j] = b64_val((unsigned char)in[i + j]);
			if (v[j] < 0 && !(last && in[i + j] == '=' && j >= 4 - (int)pad))
				goto fail;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			(uint32_t)(v[2] < 0 ? 0 : v[2]) << 6 | (uint32_t)(v[3] < 0 ? 0 : v[3]);
		if (last && pad == 2 && (w & 0xffff))
			goto fail;
		if (last && pad == 1 && (w & 0xff))
			goto fail;
		out[o++] = w >> 16 & 0xff;
		if (!(last && pad == 2))
			out[o++] = w >> 8 & 0xff;
		if (!(last && pad >= 1))
			out[o++] = w & 0xff;
	}
	return (long)o;
fail:
	OPENSSL_cleanse(out, o);
	return r;
}

/* ---- the URI ---- */

/* A parsed exec: URI. argv points into words (the unquoted words, each
 * NUL-terminated). Holds no secret. */
struct exec_cmd {
	char *words;
	char *argv[EXEC_ARGS_MAX + 2];
	int timeout_s;
};

static void exec_cmd_release(struct exec_cmd *c)
{
	free(c->words);
	c->words = NULL;
}

static int parse_query(struct exec_cmd *c, const char *q, char *msg, size_t msg_len)
{
	while (*q) {
		const char *end = strchr(q, '&');
		size_t n = end ? (size_t)(end - q) : strlen(q);

		if (n > 8 && !strncmp(q, "timeout=", 8)) {
			long v = 0;
			for (size_t i = 8; i < n; i++) {
				if (q[i] < '0' || q[i] > '9' || v > EXEC_TIMEOUT_MAX)
					goto bad;
				v = v * 10 + (q[i] - '0');
			}
			if (v < 1 || v > EXEC_TIMEOUT_MAX)
				goto bad;
			c->timeout_s = (int)v;
		} else {
			set_msg(msg, msg_len, "exec: uri has an unknown parameter \"%.*s\" "
			        "(only timeout=SECONDS)", (int)(n > 40 ? 40 : n), q);
			return -EINVAL;
		}
		q += n + (end ? 1 : 0);
	}
	return 0;
bad:
	set_msg(msg, msg_len, "exec: uri timeout must be a whole number of seconds "
	        "from 1 to %d", EXEC_TIMEOUT_MAX);
	return -EINVAL;
}

/* Split the URI into words: blanks (space, tab) separate words; '...'
 * quotes literally; "..." quotes with \" and \\ as the only escapes; a
 * backslash outside quotes takes the next character literally. No
 * variables, globs or other shell syntax. A '?' outside quotes in the
 * first word starts the parameters (timeout=N). */
static int parse_uri(const char *uri, struct exec_cmd *c, char *msg, size_t msg_len)
{
	const char *p;
	char *o, *query = NULL;
	size_t n;
	int argc = 0, r = -EINVAL;

	memset(c, 0, sizeof(*c));
	c->timeout_s = EXEC_TIMEOUT_DEFAULT;
	if (!uri || strncmp(uri, "exec:", 5) != 0) {
		set_msg(msg, msg_len, "not an exec: uri");
		return -EINVAL;
	}
	n = strnlen(uri, CK_URI_MAX);
	if (n >= CK_URI_MAX) {
		set_msg(msg, msg_len, "exec: uri is longer than %d bytes", CK_URI_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)uri[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			set_msg(msg, msg_len, "exec: uri contains a control character");
			return -EINVAL;
		}
	}
	/* Unquoting never lengthens a word, and each word adds one NUL. */
	if (!(c->words = malloc(n + 1)))
		return -ENOMEM;
	o = c->words;
	p = uri + 5;
	for (;;) {
		int in_word = 0;
		char *start = o;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		while (*p && *p != ' ' && *p != '\t') {
			in_word = 1;
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');
				if (!e) {
					set_msg(msg, msg_len, "exec: uri has an unterminated ' quote");
					goto out;
				}
				memcpy(o, p + 1, (size_t)(e - p - 1));
				o += e - p - 1;
				p = e + 1;
			} else if (*p == '"') {
				for (p++; *p != '"'; p++) {
					if (!*p) {
						set_msg(msg, msg_len, "exec: uri has an unterminated \" quote");
						goto out;
					}
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					*o++ = *p;
				}
				p++;
			} else if (*p == '\\') {
				if (!p[1]) {
					set_msg(msg, msg_len, "exec: uri ends with a backslash");
					goto out;
				}
				*o++ = p[1];
				p += 2;
			} else {
				if (*p == '?' && argc == 0 && !query)
					query = o;
				*o++ = *p++;
			}
		}
		if (!in_word)
			break;
		*o++ = '\0';
		if (argc == EXEC_ARGS_MAX + 1) {
			set_msg(msg, msg_len, "exec: uri has more than %d arguments", EXEC_ARGS_MAX);
			goto out;
		}
		c->argv[argc++] = start;
	}
	if (argc == 0) {
		set_msg(msg, msg_len, "exec: uri names no helper (exec:/path/to/helper [ARGS])");
		goto out;
	}
	if (query) {
		*query = '\0';
		if ((r = parse_query(c, query + 1, msg, msg_len)) < 0)
			goto out;
		r = -EINVAL;
	}
	if (c->argv[0][0] != '/') {
		set_msg(msg, msg_len, "exec: helper path \"%s\" is not absolute", c->argv[0]);
		goto out;
	}
	c->argv[argc] = NULL;
	r = 0;
out:
	if (r < 0)
		exec_cmd_release(c);
	return r;
}

/* The helper must be a regular, executable file that others cannot
 * modify (it runs with our privileges and sees our keys). */
static int check_helper(const char *path, char *msg, size_t msg_len)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		set_msg(msg, msg_len, "exec: helper %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode)) {
		set_msg(msg, msg_len, "exec: helper %s is not a regular file", path);
		return -EINVAL;
	}
	if (access(path, X_OK) < 0 || !(st.st_mode & 0111)) {
		set_msg(msg, msg_len, "exec: helper %s is not executable; chmod +x it", path);
		return -EINVAL;
	}
	if (st.st_mode & S_IWOTH) {
		set_msg(msg, msg_len, "exec: helper %s is writable by others; chmod o-w it", path);
		return -EINVAL;
	}
	return 0;
}

static int exec_check_uri(const char *uri, char *msg, size_t msg_len)
{
	struct exec_cmd c;
	int r;

	if ((r = parse_uri(uri, &c, msg, msg_len)) < 0)
		return r;
	r = check_helper(c.argv[0], msg, msg_len);
	exec_cmd_release(&c);
	return r;
}

/* ---- running the helper ---- */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* write() that cannot raise SIGPIPE: the signal is blocked in this thread
 * for the call, and a SIGPIPE it generated is consumed before unblocking
 * (one that was already pending is left alone). EPIPE is returned as
 * -1/errno as usual. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n)
{
	sigset_t pipe_set, old, pending;
	int was_pending, saved;
	ssize_t w;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	w = write(fd, buf, n);
	saved = errno;
	if (w < 0 && saved == EPIPE && !was_pending) {
		const struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return w;
}

/* Move fd above 2 so that the dup2s in the child cannot clobber each
 * other (the daemon may run with 0..2 closed). */
static int fd_above_stdio(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

/* SIGKILL the helper's process group (it may have children of its own)
 * and reap it. Returns its wait status, or -1 if it could not be reaped
 * in EXEC_REAP_MS (stuck in the kernel; it stays a zombie). */
static int kill_and_reap(pid_t pid, const char *path)
{
	long until = now_ms() + EXEC_REAP_MS;
	int st;

	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	for (long ms = 1;; ms = ms < 50 ? ms * 2 : 50) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		if (w < 0 && errno != EINTR)
			return -1;
		if (now_ms() > until) {
			ck_log(CK_LOG_WARNING, "exec helper %s (pid %d) did not die after SIGKILL",
			       path, (int)pid);
			return -1;
		}
		sleep_ms(ms);
	}
}

/* Log the helper's stderr: at most EXEC_STDERR_LINES lines, unprintable
 * bytes replaced. level is WARNING when the call failed, else DEBUG. */
static void log_stderr(int level, const char *path, char *err, size_t n, int truncated)
{
	size_t i = 0;

	for (size_t j = 0; j < n; j++)
		if (((unsigned char)err[j] < 0x20 && err[j] != '\n') ||
		    (unsigned char)err[j] >= 0x7f)
			err[j] = '?';
	for (int lines = 0; i < n && lines < EXEC_STDERR_LINES; lines++) {
		size_t e = i;
		while (e < n && err[e] != '\n')
			e++;
		if (e > i)
			ck_log(level, "exec helper %s: stderr: %.*s", path, (int)(e - i), err + i);
		i = e + 1;
	}
	if (truncated || i < n)
		ck_log(level, "exec helper %s: stderr: (more output not logged)", path);
}

/* The outcome of one run of the helper. ans is secret memory of
 * EXEC_ANSWER_MAX bytes (an unwrap answer carries the key). */
struct exec_run {
	uint8_t *ans;
	size_t ans_len;
	char err[EXEC_STDERR_MAX];
	size_t err_len;
	int err_truncated;
	int stdin_closed;       /* the helper closed stdin before taking the
	                           whole request */
	int status;             /* waitpid status */
};

/* Spawn the helper, send req, collect stdout/stderr and the exit status
 * within the timeout. 0 when the helper ran to its end (whatever its
 * status; run->stdin_closed says whether it took the request), else
 * -EAGAIN with msg set (timeout, too much output, could not start). */
static int exec_run(const struct exec_cmd *c, const char *req, size_t req_len,
                    struct exec_run *run, char *msg, size_t msg_len)
{
	static char *const clean_env[] = { "PATH=/usr/bin:/bin", NULL };
	const char *path = c->argv[0];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	pid_t pid = -1;
	size_t sent = 0;
	long deadline;
	int r, fa_ok = 0, attr_ok = 0, reaped = 0;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		set_msg(msg, msg_len, "exec helper %s: cannot make pipes: %s", path, strerror(errno));
		r = -EAGAIN;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		in[i] = fd_above_stdio(in[i]);
		out[i] = fd_above_stdio(out[i]);
		err[i] = fd_above_stdio(err[i]);
		if (in[i] < 0 || out[i] < 0 || err[i] < 0) {
			r = -EAGAIN;
			set_msg(msg, msg_len, "exec helper %s: out of file descriptors", path);
			goto out;
		}
	}
	sigfillset(&all);
	sigemptyset(&none);
	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		goto spawn_fail;
	fa_ok = 1;
	if ((r = posix_spawnattr_init(&attr)) != 0)
		goto spawn_fail;
	attr_ok = 1;
	/* dup2 clears FD_CLOEXEC on the copies; every other descriptor is
	 * closed, whether or not the daemon marked it close-on-exec. */
	if ((r = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) != 0 ||
	    (r = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) != 0 ||
	    (r = posix_spawn_file_actions_adddup2(&fa, err[1], 2)) != 0 ||
	    (r = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
	    (r = posix_spawn_file_actions_addchdir_np(&fa, "/")) != 0 ||
	    (r = posix_spawnattr_setsigdefault(&attr, &all)) != 0 ||
	    (r = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (r = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
	                                         POSIX_SPAWN_SETPGROUP)) != 0)
		goto spawn_fail;
	r = posix_spawn(&pid, path, &fa, &attr, c->argv, clean_env);
	if (r != 0) {
		pid = -1;
		goto spawn_fail;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) < 0 || fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(err[0], F_SETFL, O_NONBLOCK) < 0) {
		set_msg(msg, msg_len, "exec helper %s: fcntl: %s", path, strerror(errno));
		r = -EAGAIN;
		goto out;
	}

	deadline = now_ms() + (long)c->timeout_s * 1000;
	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd pf[3];
		int np = 0, i_in = -1, i_out = -1, i_err = -1;
		long left = deadline - now_ms();
		int pr;

		if (left <= 0) {
			set_msg(msg, msg_len, "exec helper %s did not answer within %d s; killed it",
			        path, c->timeout_s);
			r = -EAGAIN;
			goto out;
		}
		if (in[1] >= 0) {
			i_in = np;
			pf[np++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
		}
		if (out[0] >= 0) {
			i_out = np;
			pf[np++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
		}
		if (err[0] >= 0) {
			i_err = np;
			pf[np++] = (struct pollfd){ .fd = err[0], .events = POLLIN };
		}
		pr = poll(pf, (nfds_t)np, (int)(left > INT_MAX ? INT_MAX : left));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			set_msg(msg, msg_len, "exec helper %s: poll: %s", path, strerror(errno));
			r = -EAGAIN;
			goto out;
		}
		if (i_in >= 0 && pf[i_in].revents) {
			ssize_t w = write_nosigpipe(in[1], req + sent, req_len - sent);
			if (w > 0)
				sent += (size_t)w;
			/* EPIPE: the helper closed stdin. It may still answer
			 * denied or unavailable without reading; parse_answer
			 * refuses an ok to a request it did not take. */
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				run->stdin_closed = 1;
			if (sent == req_len || run->stdin_closed) {
				close(in[1]);   /* EOF: the request is complete */
				in[1] = -1;
			}
		}
		if (i_out >= 0 && pf[i_out].revents) {
			ssize_t rd;
			if (run->ans_len < EXEC_ANSWER_MAX) {
				rd = read(out[0], run->ans + run->ans_len, EXEC_ANSWER_MAX - run->ans_len);
			} else {
				char one;
				rd = read(out[0], &one, 1);
				if (rd > 0) {
					r = -EAGAIN;
					set_msg(msg, msg_len, "exec helper %s printed too much (more than "
					        "%d bytes on stdout); killed it", path, EXEC_ANSWER_MAX);
					goto out;
				}
			}
			if (rd > 0) {
				run->ans_len += (size_t)rd;
			} else if (rd == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(out[0]);
				out[0] = -1;
			}
		}
		if (i_err >= 0 && pf[i_err].revents) {
			char sink[512];
			ssize_t rd;
			size_t room = sizeof(run->err) - run->err_len;
			if (room > 0) {
				rd = read(err[0], run->err + run->err_len, room);
				if (rd > 0)
					run->err_len += (size_t)rd;
			} else {
				rd = read(err[0], sink, sizeof(sink));
				if (rd > 0)
					run->err_truncated = 1;
			}
			if (rd == 0 || (rd < 0 && errno != EAGAIN && errno != EINTR)) {
				close(err[0]);
				err[0] = -1;
			}
		}
	}
	if (in[1] >= 0) {
		/* stdout and stderr are closed before the whole request was
		 * written: the helper is exiting without reading it. */
		close(in[1]);
		in[1] = -1;
		run->stdin_closed = 1;
	}
	/* Both pipes are at EOF: the helper has exited or is about to. */
	for (long ms = 1;; ms = ms < 20 ? ms * 2 : 20) {
		pid_t w = waitpid(pid, &run->status, WNOHANG);
		if (w == pid) {
			reaped = 1;
			break;
		}
		if (w < 0 && errno != EINTR) {
			r = -EAGAIN;
			set_msg(msg, msg_len, "exec helper %s: cannot read its exit status: %s",
			        path, strerror(errno));
			reaped = 1;   /* ECHILD: someone else reaped it */
			goto out;
		}
		if (now_ms() >= deadline) {
			r = -EAGAIN;
			set_msg(msg, msg_len, "exec helper %s closed its output but did not exit "
			        "within %d s; killed it", path, c->timeout_s);
			goto out;
		}
		sleep_ms(ms);
	}
	r = 0;
	goto out;

spawn_fail:
	set_msg(msg, msg_len, "exec helper %s cannot be started: %s", path, strerror(r));
	r = -EAGAIN;
out:
	if (pid > 0 && !reaped) {
		int st = kill_and_reap(pid, path);
		if (st != -1)
			run->status = st;
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return r;
}

/* What the helper answered, after exec_run returned 0. For "ok" with a
 * payload, the decoded bytes go to payload (cap bytes, secret memory when
 * they are a key); want_payload says whether the request expects one. */
static int parse_answer(const struct exec_cmd *c, struct exec_run *run, int want_payload,
                        uint8_t *payload, size_t cap, size_t *payload_len,
                        char *msg, size_t msg_len)
{
	const char *path = c->argv[0];
	char *line = (char *)run->ans, *sp;
	size_t n = run->ans_len;
	int st = run->status;

	if (WIFSIGNALED(st)) {
		set_msg(msg, msg_len, "exec helper %s was killed by signal %d (%s)", path,
		        WTERMSIG(st), strsignal(WTERMSIG(st)));
		return -EAGAIN;
	}
	if (n == 0) {
		if (run->stdin_closed)
			set_msg(msg, msg_len, "exec helper %s closed its stdin before reading the "
			        "request and exited without an answer", path);
		else if (WEXITSTATUS(st) != 0)
			set_msg(msg, msg_len, "exec helper %s exited with status %d without an answer",
			        path, WEXITSTATUS(st));
		else
			set_msg(msg, msg_len, "exec helper %s exited without an answer", path);
		return -EAGAIN;
	}
	/* Exactly one line: a final "\n" (or "\r\n") is optional, nothing
	 * else may be a control character. */
	if (line[n - 1] == '\n')
		n--;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch < 0x20 || ch == 0x7f) {
			set_msg(msg, msg_len, "exec helper %s printed garbage (%s, not one line of "
			        "text)", path, ch == '\n' ? "more than one line" : "control characters");
			return -EAGAIN;
		}
	}
	line[n] = '\0';   /* ans has EXEC_ANSWER_MAX + 1 bytes */
	sp = strchr(line, ' ');
	if (sp)
		*sp++ = '\0';

	if (!strcmp(line, "denied")) {
		set_msg(msg, msg_len, "exec helper %s denied the key: %s", path,
		        sp && *sp ? sp : "(no reason given)");
		return -EKEYREVOKED;
	}
	if (!strcmp(line, "unavailable")) {
		set_msg(msg, msg_len, "exec helper %s: key unavailable: %s", path,
		        sp && *sp ? sp : "(no reason given)");
		return -EAGAIN;
	}
	if (strcmp(line, "ok") != 0) {
		/* The line is not echoed: it might be a key the helper forgot to
		 * prefix with "ok". */
		set_msg(msg, msg_len, "exec helper %s printed garbage (expected ok, denied or "
		        "unavailable)", path);
		return -EAGAIN;
	}
	if (WEXITSTATUS(st) != 0) {
		set_msg(msg, msg_len, "exec helper %s answered ok but exited with status %d",
		        path, WEXITSTATUS(st));
		return -EAGAIN;
	}
	if (run->stdin_closed) {
		set_msg(msg, msg_len, "exec helper %s answered ok without reading the request",
		        path);
		return -EAGAIN;
	}
	if (!want_payload) {
		if (sp) {
			set_msg(msg, msg_len, "exec helper %s answered probe with a payload", path);
			return -EAGAIN;
		}
		return 0;
	}
	if (!sp || !*sp) {
		set_msg(msg, msg_len, "exec helper %s answered ok without a payload", path);
		return -EAGAIN;
	}
	long dn = b64_decode(sp, strlen(sp), payload, cap);
	if (dn == -E2BIG) {
		set_msg(msg, msg_len, "exec helper %s answered ok with a payload longer than %zu "
		        "bytes", path, cap);
		return -EAGAIN;
	}
	if (dn <= 0) {
		set_msg(msg, msg_len, "exec helper %s answered ok with a payload that is not "
		        "base64", path);
		return -EAGAIN;
	}
	*payload_len = (size_t)dn;
	return 0;
}

/* One request/answer exchange. verb is "wrap", "unwrap" or "probe"; in is
 * its payload (NULL for probe). */
static int exec_call(const char *uri, const char *verb, const uint8_t *in, size_t n,
                     uint8_t *payload, size_t cap, size_t *payload_len,
                     char *msg, size_t msg_len)
{
	struct exec_cmd c;
	struct exec_run run;
	char *req = NULL, m[512] = "";
	size_t req_len = 0;
	int r;

	memset(&run, 0, sizeof(run));
	if ((r = parse_uri(uri, &c, msg, msg_len)) < 0)
		return r;
	if ((r = check_helper(c.argv[0], msg, msg_len)) < 0)
		goto out;
	/* Messages go to m first so that they are logged even when the
	 * caller passes no msg buffer. */
	if (in && (n == 0 || n > CK_WRAP_MAX)) {
		set_msg(msg, msg_len, "exec: cannot %s %zu bytes", verb, n);
		r = -EINVAL;
		goto out;
	}
	/* The request of a wrap carries the key: secret memory. */
	if (!(req = ck_secret_alloc(EXEC_REQUEST_MAX)) ||
	    !(run.ans = ck_secret_alloc(EXEC_ANSWER_MAX + 1))) {
		set_msg(msg, msg_len, "exec: out of secure memory");
		r = -ENOMEM;
		goto out;
	}
	req_len = (size_t)snprintf(req, EXEC_REQUEST_MAX, "%s%s%s", EXEC_PROTOCOL_LINE, verb,
	                           in ? " " : "");
	if (in) {
		b64_encode(in, n, req + req_len);
		req_len += b64_enclen(n);
	}
	req[req_len++] = '\n';

	r = exec_run(&c, req, req_len, &run, m, sizeof(m));
	if (r == 0)
		r = parse_answer(&c, &run, in != NULL, payload, cap, payload_len, m, sizeof(m));
	/* A helper that misbehaves or reports an outage is logged here; a
	 * denial is the caller's to log and audit. */
	if (r < 0 && r != -EKEYREVOKED)
		ck_log(CK_LOG_WARNING, "%s", m);
	if (r < 0)
		set_msg(msg, msg_len, "%s", m);
	log_stderr(r < 0 ? CK_LOG_WARNING : CK_LOG_DEBUG, c.argv[0], run.err, run.err_len,
	           run.err_truncated);
out:
	ck_secret_free(req, EXEC_REQUEST_MAX);
	ck_secret_free(run.ans, EXEC_ANSWER_MAX + 1);
	OPENSSL_cleanse(run.err, sizeof(run.err));
	exec_cmd_release(&c);
	return r;
}

static int exec_wrap(const char *uri, const uint8_t *key, size_t n,
                     uint8_t *out, size_t *out_len, char *msg, size_t msg_len)
{
	return exec_call(uri, "wrap", key, n, out, CK_WRAP_MAX, out_len, msg, msg_len);
}

/* The key is decoded straight into the caller's secret buffer. */
static int exec_unwrap(const char *uri, const uint8_t *in, size_t n,
                       uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	return exec_call(uri, "unwrap", in, n, key, CK_WRAP_MAX, key_len, msg, msg_len);
}

static int exec_probe(const char *uri, char *msg, size_t msg_len)
{
	return exec_call(uri, "probe", NULL, 0, NULL, 0, NULL, msg, msg_len);
}

const struct ck_provider ck_provider_exec = {
	.scheme = "exec",
	.wrap = exec_wrap,
	.unwrap = exec_unwrap,
	.probe = exec_probe,
	.create = NULL,         /* keys are made in the KMS, not by us */
	.destroy = NULL,
	.check_uri = exec_check_uri,
};
