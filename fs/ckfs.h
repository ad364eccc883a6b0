/* ckfs daemon: shared state and the interfaces between fs/ files.
 *
 * Lock order (take left before right, never the other way):
 *   fs.ns_lock  ->  inode.io  ->  inode.lock  ->  fs.table_lock
 * ns_lock (the namespace lock, a writer-preferring rwlock) is held for
 * reading while a path is resolved and a namespace call (create, unlink,
 * link, ...) runs, and for writing by rename and rmdir, which change names
 * other threads may be resolving. inode.io orders content I/O (readers
 * shared, writers and header updates exclusive). inode.lock guards the small
 * mutable fields of an inode; table_lock guards the inode table and the
 * lookup/reference counts. Nothing that holds inode.io or inode.lock ever
 * takes ns_lock.
 */
#ifndef CKFS_H
#define CKFS_H
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include "keys/format.h"
#include "keys/names.h"
#include "keys/tree.h"
#include "keys/volume.h"

struct ck_inode;
struct ck_name {
	struct ck_inode *parent;
	char *name;                     /* plaintext */
	char *ename;                    /* backing entry name */
	struct ck_name *next;
};

struct ck_inode {
	/* Identity, fixed at creation. */
	dev_t dev;
	ino_t ino;
	mode_t type;                    /* S_IFMT bits */
	struct ck_tree *tree;           /* changes only from service to a new DEP tree */
	int tree_root;                  /* the root directory of a DEP tree */

	/* Under fs.table_lock. Invariant: the inode stays in the table while
	 * nlookup + refs > 0; refs counts children naming it as parent and
	 * in-flight users that pinned it. */
	uint64_t nlookup;
	uint64_t refs;
	struct ck_inode *hnext;

	/* The names it is known under, most recent first; each pins its
	 * parent (refs). A directory has one name, changed only under
	 * fs.ns_lock held for writing. A non-directory may have several (hard
	 * links); its list is under lock (and ns_lock held for reading). Empty
	 * only for root and for files whose every name was unlinked. */
	struct ck_name *names;

	pthread_rwlock_t io;
	pthread_mutex_t lock;
	/* Under lock. */
	int dirid_ok;
	uint8_t dirid[CK_ID_LEN];
	/* The backing directory's ctime when dirid was last read or checked:
	 * a lookup that sees another ctime re-reads the ID (another host may
	 * have removed the directory and made a new one under the same
	 * backing inode number). Zero: never checked. */
	struct timespec dirid_ctim;
	int fd;                         /* backing fd while nopen > 0 */
	unsigned nopen;
	/* Valid while nopen > 0: set by the first open, wiped by the last
	 * release (under lock); read by I/O under io without lock. keys are
	 * those of the tree ktree_id (the one the header names); keys2, only
	 * while the tree is being applied, those of the other tree. */
	uint8_t file_id[CK_ID_LEN];
	uint8_t ktree_id[CK_ID_LEN];
	struct ck_file_keys keys2;      /* secret */
	uint8_t k2tree_id[CK_ID_LEN];
	uint16_t hdr_flags;             /* cached header flags, under io */
	uint64_t psize;                 /* plaintext size, under io */
	/* Under io: the raw header last verified (or written) under keys, so
	 * that re-reading the same bytes needs no second MAC check (chunk.c). */
	uint8_t *hdr_seen;              /* CK_FILE_HDR_LEN bytes, see ostate */
	int hdr_seen_ok;
	/* Under lock: the plaintext size last read from the header of a file
	 * that is not open, valid while the backing stat matches. */
	struct {
		ino_t ino;
		off_t bsize;
		struct timespec mtim, ctim;
		uint64_t psize;
		int ok;
	} szc;
	/* Under lock: the page-cache stamp (chunk.c, ck_pcs_*): the backing
	 * stat at which this host's kernel caches (a file's pages, a
	 * directory's entries) were last known to hold its contents. */
	struct {
		ino_t ino;
		off_t bsize;
		struct timespec mtim, ctim;
		int ok;
	} pcs;
	/* The open file's state that a closed inode does not need: allocated
	 * by the first open (ck_file_ostate), freed by the last release or
	 * with the inode, so that the thousands of inodes the kernel keeps
	 * cached cost ~500 bytes each, not 1.3 KB. hdr_seen and logpath
	 * point into it (NULL when it is not there). */
	void *ostate;
	char *logpath;                  /* CK_LOGPATH_LEN: plaintext path at open, for logs */
	struct ck_file_keys keys;       /* secret */
};

/* A tree as this mount serves it: its keys plus whether they may be used.
 * Inodes point at .k; ck_stree_of() recovers the whole. */
struct ck_stree {
	struct ck_tree k;               /* keys; first member */
	/* Held for reading by every operation that uses the keys (tree_enter),
	 * for writing by revocation, which then wipes them. */
	pthread_rwlock_t lock;
	int status;                     /* 0 serving, -EKEYREVOKED, -ENOKEY */
	int is_service;
	/* While the tree's data is re-encrypted (ck-assign --apply) from the
	 * keys in old to those in k, operations use both (see chunk.c and the
	 * apply notes in trees.c). old is a copy of the service keys (owned
	 * elsewhere) when old_is_service. Under lock (write to change). */
	int applying;
	int retired;                    /* replaced by a newer record */
	struct ck_tree old;
	int old_is_service;
	char path[1024];                /* tree root, relative; "" for service */
	uint8_t rec_id[CK_ID_LEN];
	uint8_t dep_id[CK_ID_LEN];
	char dep_name[72];
	struct ck_stree *next;
};
#define ck_stree_of(t) ((struct ck_stree *)(t))

struct ck_fs {
	struct ck_volume vol;
	struct ck_stree service;
	struct ck_stree *trees;         /* DEP trees; list only grows (under trees_lock) */
	pthread_mutex_t trees_lock;
	double key_ttl;
	char mountpoint[4096];         /* absolute, for the status file */
	struct ck_inode root;
	pthread_rwlock_t ns_lock;
	pthread_mutex_t table_lock;
	struct ck_inode **table;
	size_t table_size, table_count;
	double timeout;                 /* attr and entry cache, seconds */
	int writeback;                  /* -o writeback_cache: one host only */
	int mount_lock_fd;              /* .ckfs/mount.lock, held while mounted */
	int ro;
	int debug;
	struct fuse_session *se;
};

extern struct ck_fs ck;

/* inode.c */
void ck_inode_table_init(void);
struct ck_inode *ck_inode_get(fuse_ino_t ino);
/* Find or create the inode of (st) and record (parent, name) as its
 * newest name; adds one lookup. Caller holds ns_lock for reading; returns
 * with *dir_moved set if a directory's name changed behind our back (the
 * caller then calls ck_inode_set_name under ns_lock held for writing). */
struct ck_inode *ck_inode_learn(struct ck_inode *parent, const char *name, const char *ename,
                                const struct stat *st, int *dir_moved);
struct ck_inode *ck_inode_find(dev_t dev, ino_t ino);
/* The same, pinned (release with ck_inode_unpin); NULL for the root. */
struct ck_inode *ck_inode_find_pinned(dev_t dev, ino_t ino);
void ck_inode_forget(struct ck_inode *in, uint64_t n);
/* The backing object is gone (last link removed): take the inode out of
 * the table so that a new object reusing the inode number gets its own. */
void ck_inode_unhash(struct ck_inode *in);
void ck_inode_pin(struct ck_inode *in);
void ck_inode_unpin(struct ck_inode *in);
/* Replace the name (parent, old) by (parent2, name, ename); for
 * directories the only name. Locking as for the name list. */
int ck_inode_set_name(struct ck_inode *in, struct ck_inode *old_parent, const char *old_name,
                      struct ck_inode *parent, const char *name, const char *ename);
/* Forget the name (parent, name) after an unlink. */
void ck_inode_drop_name(struct ck_inode *in, struct ck_inode *parent, const char *name);
/* Where a non-root inode lives now: a pinned parent, an O_PATH fd of the
 * parent's backing dir, and copies of the names. Tries each known name
 * until one still exists. Caller holds ns_lock for reading; releases with
 * ck_loc_release. */
struct ck_loc {
	struct ck_inode *parent;
	int dirfd;
	char name[CK_NAME_MAX + 1];
	char ename[CK_ENC_NAME_MAX];
};
int ck_inode_locate(struct ck_inode *in, struct ck_loc *loc);
void ck_loc_release(struct ck_loc *loc);
/* Record the directory renames found mid-apply (watcher thread). */
void ck_inode_apply_fixups(void);
/* Open the backing directory of dir (O_PATH). Caller holds ns_lock. */
int ck_dir_open(struct ck_inode *dir, int flags);
/* Plaintext path for log lines ("/mail/alice/x"); caller holds ns_lock. */
void ck_inode_path(struct ck_inode *in, char *buf, size_t n);
/* The directory ID of dir, reading .ckfs.dir on first use. */
int ck_dirid(struct ck_inode *dir, int dirfd, uint8_t out[static CK_ID_LEN]);
/* Lookup found directory entry ename (stat st) in parent_fd: if the table
 * holds an inode with st's backing inode number whose cached directory ID
 * is not this directory's (removed and remade on another host, number
 * reused), take it out of the table so the lookup makes a fresh inode.
 * Re-reads the ID file only when st's ctime differs from the one seen. */
void ck_dir_verify(int parent_fd, const char *ename, const struct stat *st);
/* A new object (st) was just made here: any inode in the table with its
 * backing inode number is a removed object's; take it out. */
void ck_inode_drop_stale(const struct stat *st);

/* names.c: mapping a plaintext child name to its backing entry. */
struct ck_ename {
	char entry[CK_ENC_NAME_MAX];    /* backing entry name */
	char full[CK_ENC_NAME_MAX];     /* full encoded name (long names) */
	int is_long;
};
int ck_ename_make(struct ck_inode *dir, int dirfd, const char *name, struct ck_ename *e);
/* The entry that exists for name in dir (its encoding under the tree's
 * keys, or mid-apply under the old keys) and its stat; -ENOENT if none. */
int ck_entry_find(struct ck_inode *dir, int dirfd, const char *name, struct ck_ename *e,
                  struct stat *st);
int ck_sidecar_write(int dirfd, const struct ck_ename *e);
void ck_sidecar_remove(int dirfd, const char *entry);
/* Plaintext name of a backing entry, or a negative errno (skip it). */
int ck_ename_decode(struct ck_inode *dir, int dirfd, const uint8_t dirid[static CK_ID_LEN],
                    const char *entry, char out[static CK_NAME_MAX + 1]);
/* Make a directory's .ckfs.dir in dirfd/entry. */
int ck_dirid_create(int dirfd, const char *entry, uint8_t out[static CK_ID_LEN]);

/* trees.c: DEP trees, revocation, the watcher thread. */
int ck_trees_start(void);
int ck_trees_watch(void);
void ck_trees_stop(void);

/* status.c: the mount's status file .ckfs/status/<host>-<pid>. */
struct ck_dep;
int ck_status_probe(struct ck_dep *d, char *msg, size_t msg_len);   /* as ck_dep_probe, recorded */
void ck_status_write(void);
void ck_status_remove(void);
/* The tree a new inode named name under parent belongs to. Caller holds
 * ns_lock. */
struct ck_tree *ck_tree_for_child(struct ck_inode *parent, const char *name);
/* 1 if the plaintext path of (parent, name) is a tree root or holds one
 * (such directories may not be renamed or removed). Caller holds ns_lock. */
int ck_path_holds_tree(struct ck_inode *parent, const char *name);
/* Gate an operation on in's tree: 0 and the tree's lock held for reading,
 * or -EKEYREVOKED / -ENOKEY. tree_leave releases. */
int ck_tree_enter(struct ck_tree *t);
void ck_tree_leave(struct ck_tree *t);
/* 1 while t is being re-encrypted by ck-assign --apply. */
static inline int ck_tree_applying(struct ck_tree *t) { return ck_stree_of(t)->applying; }
/* While applying: a shared OFD lock on fd (a backing file or a directory's
 * .ckfs.dir) against the apply tool, which takes it exclusively while it
 * converts that object. Returns 0; ck_apply_unlock releases. */
int ck_apply_lock(struct ck_tree *t, int fd);
void ck_apply_unlock(int fd);
/* While applying, the shared lock on a directory's ID file: returns an fd
 * to pass to ck_dir_unlock, or -1 when the tree is not being applied. */
int ck_dir_lock(struct ck_inode *dir, int dirfd);
void ck_dir_unlock(int fd);

/* chunk.c: content. All take in->io as documented there. */
int ck_file_init(struct ck_inode *dir, const uint8_t dirid[static CK_ID_LEN], const char *name,
                 struct ck_tree *t, int fd);
/* A file just made by ck_file_init_keep: its keys, ID and header, so that
 * its first open (ck_file_adopt) needs no header read and key derivation.
 * Zero it before use; ck_file_new_release wipes what was not adopted. */
struct ck_file_new {
	struct ck_file_keys keys;       /* secret */
	struct ck_tree *tree;
	uint8_t file_id[CK_ID_LEN];
	uint8_t hdr[CK_FILE_HDR_LEN];
};
int ck_file_init_keep(struct ck_inode *dir, const uint8_t dirid[static CK_ID_LEN],
                      const char *name, struct ck_tree *t, int fd, struct ck_file_new *keep);
void ck_file_new_release(struct ck_file_new *nf);
/* As ck_file_load for the file nf describes (falls back to ck_file_load
 * when nf holds nothing or another tree's keys). Caller holds in->lock. */
int ck_file_adopt(struct ck_inode *in, int fd, struct ck_file_new *nf,
                  const uint8_t dirid[static CK_ID_LEN], const char *name);
/* First open: verify the header of fd and its binding to (dirid, name),
 * then set in->fd, file_id, hdr_flags and keys. Caller holds in->lock. */
int ck_file_load(struct ck_inode *in, int fd, const uint8_t dirid[static CK_ID_LEN],
                 const char *name);
/* Re-read the size and flags from the header (another host may have
 * changed the file: close-to-open consistency). */
int ck_file_refresh(struct ck_inode *in);
#define CK_LOGPATH_LEN 256
/* Allocate in->ostate (hdr_seen, logpath) if missing: 0 or -ENOMEM.
 * Caller holds in->lock. ck_file_ostate_free frees it. */
int ck_file_ostate(struct ck_inode *in);
void ck_file_ostate_free(struct ck_inode *in);
/* Last release: wipe the keys and close the fd. Caller holds in->lock. */
void ck_file_unload(struct ck_inode *in);
ssize_t ck_file_read(struct ck_inode *in, char *buf, size_t size, off_t off);
ssize_t ck_file_write(struct ck_inode *in, const char *buf, size_t size, off_t off, int append);
/* in->keys must be loaded (open); fd is the backing fd. */
int ck_file_truncate(struct ck_inode *in, off_t size);
int ck_file_fallocate(struct ck_inode *in, int mode, off_t off, off_t len);
/* Writers on several hosts: every change of a file's blocks or header
 * holds an OFD write lock on the one byte at CK_WLOCK_OFF of the backing
 * file (past any data: sizes stop at 2^62) and re-reads the header under
 * it; the apply lock (ck_apply_lock) covers only [0, CK_WLOCK_OFF), the
 * apply tool's whole-file lock covers both. docs/SHARED-STORAGE.md. */
#define CK_WLOCK_OFF ((off_t)1 << 62)
/* End of an operation (ck_tree_leave): wipe the keys chunk.c kept for it. */
void ck_file_op_end(void);
/* Header binding updates: add or remove (dirid, name) in the file's header. */
int ck_file_bind(struct ck_tree *t, int fd, struct ck_inode *in,
                 const uint8_t dirid[static CK_ID_LEN], const char *name, int add);
int ck_file_check_binding(struct ck_tree *t, int fd, const uint8_t dirid[static CK_ID_LEN],
                          const char *name);
/* The page-cache stamp. At open: 1 if the kernel may keep what it cached
 * of in (st, the backing stat now, matches the stamp), then stamp st.
 * Caller holds in->lock.
 * ck_pcs_meta_begin/end bracket a metadata change this host makes to a
 * file it may have cached (chmod, chown, utimens): under the multi-host
 * write lock, the stamp follows the change only if it matched before it. */
int ck_pcs_open(struct ck_inode *in, const struct stat *st);
struct ck_pcs_meta {
	int fd;
	struct stat before;
	int have;
};
void ck_pcs_meta_begin(struct ck_inode *in, int dirfd, const char *ename, struct ck_pcs_meta *m);
void ck_pcs_meta_end(struct ck_inode *in, struct ck_pcs_meta *m);
/* The plaintext size of the file open at fd (header read and verified). */
int ck_file_stat_size(struct ck_tree *t, int fd, uint64_t *size);

#endif
