/* ckfs: mount a ckfs volume. Option parsing, volume opening, the FUSE
 * session and a clean shutdown (keys wiped) on unmount or SIGTERM/SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fs/ckfs.h"
#include "keys/keyfile.h"
#include "keys/secmem.h"
#include "keys/util.h"

extern const struct fuse_lowlevel_ops ck_ops;

enum { EXIT_USAGE = 1, EXIT_VOLUME = 2, EXIT_MOUNT = 3 };

struct options {
	char *volume;
	char *mountpoint;
	char *key_dir;
	char *timeout;
	char *key_ttl;
	int foreground, debug, help, version, ro, threads, writeback;
};

enum { KEY_FG, KEY_DEBUG, KEY_HELP, KEY_VERSION, KEY_RO };

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt opt_spec[] = {
	OPT("key_dir=%s", key_dir),
	OPT("cache_timeout=%s", timeout),
	OPT("threads=%d", threads),
	OPT("key_ttl=%s", key_ttl),
	OPT("writeback_cache", writeback),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct options *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->volume) {
			o->volume = strdup(arg);
			return 0;
		}
		if (!o->mountpoint) {
			o->mountpoint = strdup(arg);
			return 0;
		}
		fprintf(stderr, "ckfs: unexpected argument '%s'\n", arg);
		return -1;
	case KEY_FG: o->foreground = 1; return 0;
	case KEY_DEBUG: o->debug = 1; o->foreground = 1; return 1;
	case KEY_HELP: o->help = 1; return 0;
	case KEY_VERSION: o->version = 1; return 0;
	case KEY_RO: o->ro = 1; return 1;
	default: return 1;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ckfs [-f] [-d] [-o OPTIONS] VOLUME MOUNTPOINT\n"
		"Mount the ckfs volume VOLUME (made by ck-mkfs) on MOUNTPOINT.\n\n"
		"  -f                 stay in the foreground (log to stderr)\n"
		"  -d                 debug output (implies -f)\n"
		"  -o key_dir=DIR     key directory (default: $CKFS_KEY_DIR, else "
		CK_KEY_DIR_DEFAULT ")\n"
		"  -o allow_other     let other users use the mount (permissions are always\n"
		"                     checked by the kernel: default_permissions)\n"
		"  -o ro              read-only\n"
		"  -o cache_timeout=S kernel attribute/entry cache time in seconds (default 1;\n"
		"                     86400 with writeback_cache)\n"
		"  -o threads=N       maximum worker threads (default 10)\n"
		"  -o key_ttl=S       probe each DEP's customer keys every S seconds (default 30)\n"
		"  -o writeback_cache let the kernel merge writes in its page cache (faster\n"
		"                     small writes; data is durable at fsync; the volume must\n"
		"                     not be mounted anywhere else, which ckfs enforces)\n"
		"  -h, --help         this help;  -V, --version  the version\n\n"
		"exit status: 0 unmounted cleanly, 1 usage error, 2 cannot open the volume,\n"
		"3 cannot mount\n");
}

/* Daemon mode. We fork before anything is set up (libfuse's
 * fuse_daemonize forks after the mount, which loses the watcher thread
 * and the mlock of the secure heap), and the parent returns only when the
 * child reports the mount ready, or with the child's exit status and the
 * reason it printed on the shared stderr. */
static int ready_fd = -1;

static void daemon_fork(void)
{
	int p[2], status;
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "ckfs: cannot start the daemon: %s\n", strerror(errno));
		exit(EXIT_MOUNT);
	}
	if (pid > 0) {
		close(p[1]);
		ssize_t n;
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (n == 1)
			exit(0);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : EXIT_MOUNT);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
}

static void daemon_ready(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	char c = 0;

	if (ready_fd < 0)
		return;
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	(void)!chdir("/");
	(void)!write(ready_fd, &c, 1);
	close(ready_fd);
	ready_fd = -1;
}

/* Every mount holds a shared OFD lock on the first byte of
 * .ckfs/mount.lock while it runs; a writeback_cache mount holds it
 * exclusively, so that it never shares the volume with another mount on
 * this or another host (the kernel of each would keep sizes and pages the
 * other cannot see). The lock goes with the process, however it ends. */
static int mount_lock(int exclusive)
{
	struct flock fl = { .l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
	                    .l_start = 0, .l_len = 1 };
	int fd = openat(ck.vol.fd, CK_VOLUME_DIR "/mount.lock",
	                O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	ck.mount_lock_fd = -1;
	if (fd < 0 && !exclusive && (errno == EROFS || errno == EACCES))
		fd = openat(ck.vol.fd, CK_VOLUME_DIR "/mount.lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (!exclusive && (errno == EROFS || errno == EACCES || errno == ENOENT))
			return 0;       /* a read-only backing store written by nobody */
		fprintf(stderr, "ckfs: cannot open %s/mount.lock: %s\n", CK_VOLUME_DIR, strerror(errno));
		return -1;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
		ck.mount_lock_fd = fd;
		return 0;
	}
	int e = errno;
	close(fd);
	if (e == EAGAIN || e == EACCES) {
		fprintf(stderr, exclusive
		        ? "ckfs: writeback_cache needs the volume to itself, and another ckfs mount "
		          "(on this or another host) has it\n"
		        : "ckfs: the volume is mounted with writeback_cache (on this or another host), "
		          "which must be its only mount\n");
		return -1;
	}
	if (!exclusive)
		return 0;               /* no locks on this backing store: nothing to check */
	fprintf(stderr, "ckfs: writeback_cache: the backing store refuses locks (%s), so ckfs "
	        "cannot make sure no other host mounts the volume\n", strerror(e));
	return -1;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { .threads = 10 };
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	char msg[1024], fsname[4200], *end;
	struct stat st;
	int r = EXIT_MOUNT, mounted = 0;

	ck.mount_lock_fd = -1;
	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) < 0)
		{ r = EXIT_USAGE; goto early; }
	if (o.help) {
		usage(stdout);
		{ r = 0; goto early; }
	}
	if (o.version) {
		printf("ckfs %s (libfuse %s)\n", CKFS_VERSION, fuse_pkgversion());
		{ r = 0; goto early; }
	}
	if (!o.volume || !o.mountpoint) {
		fprintf(stderr, "ckfs: expected VOLUME and MOUNTPOINT (see ckfs --help)\n");
		{ r = EXIT_USAGE; goto early; }
	}
	/* One second by default: other hosts' changes show within it. A
	 * writeback_cache mount has the volume to itself (mount_lock), so the
	 * kernel may cache entries and attributes as long as it likes, as on
	 * a native filesystem; revocation invalidates them either way. */
	ck.timeout = o.writeback ? 86400.0 : 1.0;
	if (o.timeout) {
		ck.timeout = strtod(o.timeout, &end);
		if (*end || ck.timeout < 0 || ck.timeout > 86400) {
			fprintf(stderr, "ckfs: cache_timeout=%s is not a number of seconds "
			        "between 0 and 86400\n", o.timeout);
			{ r = EXIT_USAGE; goto early; }
		}
	}
	ck.key_ttl = 30;
	if (o.key_ttl) {
		ck.key_ttl = strtod(o.key_ttl, &end);
		if (*end || ck.key_ttl < 1 || ck.key_ttl > 86400) {
			fprintf(stderr, "ckfs: key_ttl=%s is not a number of seconds between 1 and "
			        "86400\n", o.key_ttl);
			{ r = EXIT_USAGE; goto early; }
		}
	}
	if (o.threads < 1 || o.threads > 1024) {
		fprintf(stderr, "ckfs: threads=%d is out of range (1..1024)\n", o.threads);
		{ r = EXIT_USAGE; goto early; }
	}
	if (!o.foreground)
		daemon_fork();
	ck.ro = o.ro;
	/* Modes come from the callers (their umask applied by the kernel or
	 * by us); the daemon's own umask must not mask them again. */
	umask(0);
	ck.debug = o.debug;

	if (ck_secmem_init(1 << 22) < 0) {
		fprintf(stderr, "ckfs: cannot set up secure memory for keys\n");
		{ r = EXIT_VOLUME; goto early; }
	}
	ck_log_init("ckfs", 0, o.debug);
	if (ck_volume_open(o.volume, ck_key_dir(o.key_dir), &ck.vol, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "ckfs: %s\n", msg);
		{ r = EXIT_VOLUME; goto early; }
	}
	ck.writeback = o.writeback;
	if (mount_lock(o.writeback) < 0)
		{ r = EXIT_VOLUME; goto out; }
	if (stat(o.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "ckfs: mountpoint %s %s\n", o.mountpoint,
		        errno == ENOENT ? "does not exist" : "is not a directory");
		goto out;
	}

	if (fstat(ck.vol.fd, &st) < 0)
		goto out;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&ck.ns_lock, &ra);
	pthread_mutex_init(&ck.table_lock, NULL);
	ck_inode_table_init();
	ck.root.dev = st.st_dev;
	ck.root.ino = st.st_ino;
	ck.root.type = S_IFDIR;
	ck.root.tree = &ck.service.k;
	ck.root.fd = -1;
	ck.root.nlookup = 1;
	pthread_rwlock_init(&ck.root.io, NULL);
	pthread_mutex_init(&ck.root.lock, NULL);

	if (ck_trees_start() < 0) {
		fprintf(stderr, "ckfs: cannot start the key watcher\n");
		goto out;
	}
	snprintf(fsname, sizeof(fsname), "-ofsname=ckfs:%s,subtype=ckfs,default_permissions", o.volume);
	if (fuse_opt_add_arg(&args, fsname) < 0)
		goto out;
	se = fuse_session_new(&args, &ck_ops, sizeof(ck_ops), NULL);
	if (!se)
		goto out;
	ck.se = se;
	if (fuse_set_signal_handlers(se) < 0)
		goto out;
	if (fuse_session_mount(se, o.mountpoint) < 0) {
		fprintf(stderr, "ckfs: cannot mount on %s\n", o.mountpoint);
		goto out_signals;
	}
	mounted = 1;
	if (!realpath(o.mountpoint, ck.mountpoint))
		snprintf(ck.mountpoint, sizeof(ck.mountpoint), "%s", o.mountpoint);
	if (!o.foreground)
		ck_log_init("ckfs", 1, o.debug);
	ck_log(CK_LOG_INFO, "mounted %s on %s", o.volume, o.mountpoint);
	if (ck_trees_watch() < 0) {
		ck_log(CK_LOG_ERR, "cannot start the key watcher thread; unmounting");
		goto out_signals;
	}

	daemon_ready();
	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)o.threads);
	fuse_loop_cfg_set_idle_threads(cfg, (unsigned)(o.threads / 2 > 0 ? o.threads / 2 : 1));
	/* The loop returns the signal number after SIGTERM/SIGINT/SIGHUP:
	 * a requested, clean shutdown. */
	int lr = fuse_session_loop_mt(se, cfg);
	r = lr == 0 || lr == SIGTERM || lr == SIGINT || lr == SIGHUP ? 0 : EXIT_MOUNT;
	fuse_loop_cfg_destroy(cfg);
	ck_log(CK_LOG_INFO, "unmounting %s", o.mountpoint);
out_signals:
	if (mounted)
		fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
out:
	ck_trees_stop();
	ck.se = NULL;
	if (se)
		fuse_session_destroy(se);
	ck_volume_close(&ck.vol);    /* wipes the service and tree keys */
	if (ck.mount_lock_fd >= 0)
		close(ck.mount_lock_fd);
early:
	fuse_opt_free_args(&args);
	free(o.volume);
	free(o.mountpoint);
	free(o.key_dir);
	free(o.timeout);
	free(o.key_ttl);
	return r;
}
