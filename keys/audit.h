/* The volume's audit log: <volume>/.ckfs/audit.log, one record per line,
 * MAC-chained (HMAC-SHA256 under v->audit_key; each MAC covers the
 * previous MAC and the record), with the chain head and record count also
 * kept in <volume>/.ckfs/audit.head so that truncation of the tail is
 * detected. Appends from several processes (daemon, tools) are serialised
 * with an fcntl lock on audit.log. Records never hold key bytes. */
#ifndef CK_AUDIT_H
#define CK_AUDIT_H
#include <stdio.h>
#include "volume.h"

struct ck_audit_event {
	const char *event;     /* e.g. "dep-created", "revoked", "availability-fallback" */
	const char *dep;       /* DEP name or NULL */
	const char *tree;      /* tree path or NULL */
	const char *uri;       /* provider URI or NULL */
	const char *result;    /* "ok", "denied", "unavailable", free text or NULL */
	const char *actor;     /* "operator", "probe", "daemon", ... or NULL */
};

/* Append one record (time, host, pid filled in). 0 or negative errno. */
int ck_audit_append(const struct ck_volume *v, const struct ck_audit_event *e) CK_WUR;

/* Verify the whole chain. 0 if intact; else -EBADMSG and msg names the
 * first bad record (1-based) and what is wrong (edited, removed,
 * reordered, inserted, truncated tail). *count receives the number of
 * records checked. */
int ck_audit_verify(const struct ck_volume *v, long *count, char *msg, size_t msg_len) CK_WUR;

/* Print every record, human-readable or one JSON object per record inside a
 * JSON array. 0 or negative errno. */
int ck_audit_print(const struct ck_volume *v, FILE *out, int json) CK_WUR;

/* The current chain head (hex MAC of the last record, "" when empty). */
int ck_audit_head(const struct ck_volume *v, char hex[65], long *count) CK_WUR;

#endif
