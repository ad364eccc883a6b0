/* A volume: its backing directory, header, service key and service tree. */
#ifndef CK_VOLUME_H
#define CK_VOLUME_H
#include <stddef.h>
#include "format.h"
#include "tree.h"

struct ck_volume {
	char *path;
	int fd;                          /* backing root, O_DIRECTORY */
	struct ck_volume_hdr hdr;
	struct ck_tree service;          /* the service tree (keys secret) */
	/* Secrets derived from the service key (ck_secret_alloc), set by
	 * ck_volume_open, wiped by ck_volume_close. */
	uint8_t *record_key;             /* CK_KEY_LEN: records (GCM) */
	uint8_t *audit_key;              /* CK_KEY_LEN: audit chain (HMAC) */
	uint8_t *cert_key;               /* CK_KEY_LEN: purge certificates */
};

/* Initialise a volume in path (created if missing). force allows a
 * non-empty directory and an existing volume (whose header is kept as
 * .ckfs/volume.old-<id>; its key file is never deleted).
 * On failure returns a negative errno and writes a one-line reason. */
int ck_volume_create(const char *path, const char *key_dir, int force,
                     char *msg, size_t msg_len) CK_WUR;
int ck_volume_open(const char *path, const char *key_dir, struct ck_volume *v,
                   char *msg, size_t msg_len) CK_WUR;
void ck_volume_close(struct ck_volume *v);



/* Resolve a normalised plaintext path whose every component lives in the
 * service tree (true for any tree root) to its backing path relative to the
 * volume root. -ENOENT when a component does not exist. */
int ck_volume_backing_path(const struct ck_volume *v, const char *plain, char *out, size_t n) CK_WUR;

/* renameat2(RENAME_NOREPLACE) that also works where the backing engine
 * refuses rename flags (GlusterFS and NFS clients answer EINVAL): a
 * non-directory is then linked under the new name (link fails with EEXIST
 * if the name is taken: atomic) and unlinked under the old one; a
 * directory, after checking that the new name is free, is renamed with
 * plain renameat, which cannot replace a non-empty directory (every ckfs
 * directory holds its ID file) nor a non-directory: those give EEXIST.
 * See docs/SHARED-STORAGE.md. Returns 0 or -1 with errno set. */
int ck_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname);

#endif
