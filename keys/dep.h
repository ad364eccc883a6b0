/* DEP and tree records: the volume's key state, one file per record in
 * <volume>/.ckfs/deps/ and <volume>/.ckfs/trees/. Each record is encrypted
 * and authenticated (AES-256-GCM under v->record_key, the record's kind and
 * ID as associated data): DEP names and tree paths are customer data too.
 * Updates are atomic (temp file, fsync, rename); read-modify-write by
 * tools is serialised with ck_meta_lock. */
#ifndef CK_DEP_H
#define CK_DEP_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "crypto.h"
#include "provider.h"
#include "volume.h"

#define CK_DEP_NAME_MAX   64
#define CK_DEP_MAX_WRAPS  8
#define CK_TREE_PATH_MAX  1024

enum ck_dep_state { CK_DEP_ACTIVE = 1, CK_DEP_REVOKED = 2, CK_DEP_PURGE_PENDING = 3,
                    CK_DEP_PURGED = 4 };
enum ck_wrap_role { CK_ROLE_CUSTOMER = 1, CK_ROLE_AVAILABILITY = 2 };
enum ck_key_result { CK_RES_NONE = 0, CK_RES_OK = 1, CK_RES_DENIED = 2, CK_RES_UNAVAILABLE = 3 };

struct ck_wrap {
	uint8_t role;
	uint8_t last_result;
	uint64_t last_time;
	char uri[CK_URI_MAX];
	uint16_t len;
	uint8_t wrapped[CK_WRAP_MAX];
};

struct ck_dep {
	uint8_t id[CK_ID_LEN];
	char name[CK_DEP_NAME_MAX + 1];
	uint32_t state;
	uint64_t created, changed, purge_after, generation;
	uint32_t n_wraps;
	struct ck_wrap wraps[CK_DEP_MAX_WRAPS];
};

/* ACTIVE: served under its key. PENDING: assigned, data still under the
 * old key until applied. APPLYING: being re-encrypted from the key of
 * old_rec_id (all-zero: the service tree) to this record's key; mounts use
 * both. RETIRED: replaced by a newer record for the same path. */
enum ck_tree_state { CK_TREE_ACTIVE = 1, CK_TREE_PENDING = 2, CK_TREE_PURGED = 3,
                     CK_TREE_APPLYING = 4, CK_TREE_RETIRED = 5 };

struct ck_tree_rec {
	uint8_t id[CK_ID_LEN];
	uint8_t dep_id[CK_ID_LEN];
	uint32_t state;
	uint64_t created, generation;
	char path[CK_TREE_PATH_MAX];        /* relative to the volume root, no leading '/' */
	uint16_t wlen;
	uint8_t wrapped_key[CK_WRAP_MAX];   /* tree key, RFC 5649 under the DEP key */
	uint8_t old_rec_id[CK_ID_LEN];      /* APPLYING: where the data comes from */
	/* During 'ck-dep roll --dep-key': the tree key wrapped by the DEP's next
	 * key (readers try wrapped_key, then this). */
	uint16_t next_wlen;
	uint8_t next_wrapped_key[CK_WRAP_MAX];
};

/* Volume settings (.ckfs/config, a record of kind 3). */
struct ck_config {
	uint64_t purge_wait;                /* seconds between purge request and execution */
	/* Where each DEP's availability key is made: "file:/dir/" (one key
	 * file per DEP in that directory); empty: KEYDIR/availability/. */
	char availability[CK_URI_MAX];
};
int ck_config_load(const struct ck_volume *v, struct ck_config *c) CK_WUR;
int ck_config_save(const struct ck_volume *v, const struct ck_config *c) CK_WUR;
/* The handshake between tools and mounts on this host. Each daemon, after
 * it has loaded the records, writes .ckfs/seen/<host>-<pid> with the
 * records' time it has seen (ck_records_time). A tool that changed records
 * waits with ck_wait_mounts until every live daemon on this host has seen
 * them (or timeout_ms passes: -ETIMEDOUT). */
int ck_records_time(const struct ck_volume *v, struct timespec *t);
int ck_mount_seen(const struct ck_volume *v, const struct timespec *t);
void ck_mount_gone(const struct ck_volume *v);
int ck_wait_mounts(const struct ck_volume *v, long timeout_ms);

/* Parse "0", "90s", "30m", "12h", "30d" into seconds; -EINVAL if malformed. */
int ck_parse_duration(const char *s, uint64_t *out) CK_WUR;
/* Unwrap a tree key wrapped by dep_key: wrapped_key, else next_wrapped_key. */
int ck_tree_key_from(const struct ck_tree_rec *t, const uint8_t *dep_key, uint8_t *tree_key) CK_WUR;

int ck_dep_encode(const struct ck_volume *v, const struct ck_dep *d, uint8_t **out, size_t *n) CK_WUR;
int ck_dep_decode(const struct ck_volume *v, const uint8_t *buf, size_t n, struct ck_dep *d) CK_WUR;
int ck_tree_rec_encode(const struct ck_volume *v, const struct ck_tree_rec *t, uint8_t **out, size_t *n) CK_WUR;
int ck_tree_rec_decode(const struct ck_volume *v, const uint8_t *buf, size_t n, struct ck_tree_rec *t) CK_WUR;

int ck_dep_save(const struct ck_volume *v, const struct ck_dep *d) CK_WUR;
int ck_tree_rec_save(const struct ck_volume *v, const struct ck_tree_rec *t) CK_WUR;
/* Load every record; *out is malloc'ed (free it). Undecodable records are
 * reported through ck_log and counted in *bad (may be NULL). */
int ck_dep_load_all(const struct ck_volume *v, struct ck_dep **out, size_t *n, int *bad) CK_WUR;
int ck_tree_rec_load_all(const struct ck_volume *v, struct ck_tree_rec **out, size_t *n, int *bad) CK_WUR;
int ck_dep_find(const struct ck_volume *v, const char *name, struct ck_dep *out) CK_WUR;

/* Exclusive lock over the volume's records (fcntl OFD lock on
 * .ckfs/lock); returns an fd to pass to ck_meta_unlock. */
int ck_meta_lock(const struct ck_volume *v) CK_WUR;
void ck_meta_unlock(int fd);

/* Unwrap the DEP key into key (CK_KEY_LEN, secret memory). Customer keys
 * first, updating each wrap's last_result. Every customer key denied:
 * -EKEYREVOKED. Every one unavailable (none denied) and allow_fallback:
 * the availability key, *fallback set. Otherwise -EAGAIN. */
int ck_dep_unwrap(struct ck_dep *d, uint8_t *key, int allow_fallback, int *fallback,
                  char *msg, size_t msg_len) CK_WUR;
/* Probe the customer keys: 0 if one answers ok, -EKEYREVOKED if every
 * one is denied, -EAGAIN otherwise. Updates last_result. */
int ck_dep_probe(struct ck_dep *d, char *msg, size_t msg_len) CK_WUR;

/* The keys of tree record t: its DEP (found in deps) unwrapped through its
 * customer keys (availability-key fallback allowed; *fallback tells), then
 * the tree key. -EKEYREVOKED when the DEP is not active or every customer
 * key denies. */
int ck_tree_key_unwrap(const struct ck_volume *v, const struct ck_tree_rec *t,
                       struct ck_dep *deps, size_t nd, struct ck_tree *out, int allow_fallback,
                       int *fallback, char *msg, size_t msg_len) CK_WUR;

const char *ck_dep_state_name(uint32_t s);
const char *ck_tree_state_name(uint32_t s);
const char *ck_role_name(uint8_t r);
const char *ck_result_name(uint8_t r);
int ck_dep_name_valid(const char *name);
/* Normalise a tree path ("/mail//alice/" -> "mail/alice"); -EINVAL for
 * ".", "..", empty components of note, or too long. */
int ck_tree_path_normalise(const char *in, char *out, size_t n) CK_WUR;

#endif
