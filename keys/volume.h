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

#endif
