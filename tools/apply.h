/* The apply step ("the mailbox move"): re-encrypt every file, name,
 * symlink and xattr of a tree from old keys to new keys, online and
 * resumable. See apply.c. */
#ifndef CK_TOOLS_APPLY_H
#define CK_TOOLS_APPLY_H
#include <stdint.h>
#include "keys/tree.h"
#include "keys/volume.h"

struct apply_stats {
	uint64_t files, bytes, dirs, done_files, done_bytes, converted, problems;
};

/* Convert the backing subtree at backing_root (relative to the volume
 * root; plain_root names it in messages) from tree o to tree n. json: progress lines on stdout; tty: a
 * progress bar on stderr. Returns 0, or a negative errno; problems (blocks
 * or names that authenticate under neither key) are counted, reported and
 * left alone. */
int ck_apply_tree(const struct ck_volume *v, const char *backing_root, const char *plain_root,
                  struct ck_tree *o, struct ck_tree *n, int json, int tty, struct apply_stats *st);

#endif
