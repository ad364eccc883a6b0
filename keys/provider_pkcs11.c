/* The pkcs11: key provider: a root key that lives in a PKCS#11 token (an
 * HSM, a smart card, SoftHSM2 in the tests). The key never leaves the
 * token; the token wraps and unwraps for us.
 *
 * URI (RFC 7512), for example
 *   pkcs11:token=ck;object=aeskey;id=%01?module-path=/usr/lib/softhsm/
 *          libsofthsm2.so&pin-source=file:/etc/ckfs/ck.pin
 * Path attributes: token (required), manufacturer, model, serial (further
 * token filters), object and/or id (at least one; id is pct-encoded bytes),
 * type (secret-key, private or public). Query attributes: module-path
 * (absolute; default /usr/lib/softhsm/libsofthsm2.so) and pin-source
 * (required; only file:/abs/path; the file holds the user PIN, a trailing
 * newline is stripped). The PIN is never taken from the URI (pin-value is
 * refused), argv or the environment. Unknown attributes are refused, so a
 * typo cannot silently select another key.
 *
 * Key kinds:
 * - AES secret key (type=secret-key, or no type and a secret key matches):
 *   wrap = C_WrapKey of a temporary session object holding our key, with
 *   CKM_AES_KEY_WRAP_PAD: the bytes are RFC 5649, the same format as the
 *   file: provider. Keys must be a multiple of 8 bytes (ours are 32):
 *   SoftHSM2 2.6 zero-pads other lengths before wrapping, so its output is
 *   not RFC 5649 for them and its unwrap returns the padded length; for
 *   multiples of 8 it is byte-for-byte RFC 5649 (the tests check). If the
 *   token lacks CKM_AES_KEY_WRAP_PAD we fall back to
 *   CKM_AES_KEY_WRAP (keys of a multiple of 8 bytes only), first with the
 *   RFC 5649 alternative IV as the mechanism parameter (PKCS#11 allows an IV
 *   there; for such lengths RFC 5649 needs no padding, so the bytes are
 *   still exactly RFC 5649), and if the token refuses an IV, with the
 *   default IV (RFC 3394 bytes; SoftHSM2 2.6 refuses an IV, so this is what
 *   it gives). A token answers the same way every time, so unwrap takes the
 *   same path as wrap did. Unwrap = C_UnwrapKey into a
 *   session object, read CKA_VALUE straight into the caller's buffer,
 *   destroy the object.
 * - RSA key pair (type=private/public, or no secret key matches): wrap =
 *   C_Encrypt with the public key, unwrap = C_Decrypt with the private key,
 *   both CKM_RSA_PKCS_OAEP with SHA-1, MGF1-SHA1 and no label. SHA-1 is not
 *   our choice: SoftHSM2 (2.6) implements OAEP only with SHA-1 and refuses
 *   any other hash or a label. OAEP-SHA1 is still sound for encryption (it
 *   needs no collision resistance).
 *
 * The AES key needs CKA_WRAP and CKA_UNWRAP (SoftHSM2's default), the RSA
 * public key CKA_ENCRYPT and the private key CKA_DECRYPT (pkcs11-tool
 * --keypairgen --usage-decrypt). Wrap needs both halves: a pair whose
 * private key is gone or revoked could never undo the wrap.
 *
 * Revocation of a pkcs11 key: destroy the object, or set its CKA_UNWRAP
 * (AES) or CKA_DECRYPT (RSA private key) to FALSE. Both answer denied, to
 * wrap, unwrap and probe.
 *
 * Modules are dlopen'ed once per path, C_Initialize'd with CKF_OS_LOCKING_OK
 * (the daemon calls us from many threads) and stay loaded for the life of
 * the process. Every call opens its own session and logs in; PKCS#11 login
 * state is per process and token, so CKR_USER_ALREADY_LOGGED_IN is fine
 * (and means a wrong PIN file goes unnoticed while another session of the
 * same token is open: it is checked again as soon as none is).
 *
 * Locks: one, modules_lock, held only while looking up or loading a module.
 * No other lock is taken under it. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>
#include "provider.h"

#define P11_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define P11_PIN_MAX        256
#define P11_LABEL_MAX      255   /* object labels; token labels are 32 */
#define P11_ID_MAX         255

/* Test hook (not in any header): pretend the token lacks
 * CKM_AES_KEY_WRAP_PAD, so the CKM_AES_KEY_WRAP fallback can be tested
 * against SoftHSM2, which has both. */
int ck_pkcs11_test_no_wrap_pad;

/* ---- messages and the CK_RV table ---------------------------------------- */

static int fail(char *msg, size_t len, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* strerror, first letter lowered (our messages are lowercase). */
static const char *errstr(int e, char *buf, size_t len)
{
	const char *s = strerror_r(e, buf, len);

	if (s != buf) {
		snprintf(buf, len, "%s", s);
		s = buf;
	}
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return s;
}

/* THE table: what a PKCS#11 return code means for the caller.
 *
 *   denied (-EKEYREVOKED, final): the key is gone or may no longer be used
 *     CKR_KEY_FUNCTION_NOT_PERMITTED   CKA_UNWRAP/CKA_DECRYPT/... is FALSE
 *     CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID,
 *     CKR_WRAPPING_KEY_HANDLE_INVALID, CKR_UNWRAPPING_KEY_HANDLE_INVALID
 *                                      the object was destroyed under us
 *     CKR_KEY_UNEXTRACTABLE            the token refuses to wrap
 *     CKR_PIN_EXPIRED, CKR_PIN_LOCKED  the token locked the user out
 *     (and, outside this table: no object matches the URI after a
 *     successful login to the right token)
 *   operator error (-EACCES): wrong PIN
 *     CKR_PIN_INCORRECT, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE
 *   not destroyable (-EPERM): CKR_ACTION_PROHIBITED (CKA_DESTROYABLE FALSE)
 *   usage error (-EINVAL): the key or token cannot do what the URI asks
 *     CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID,
 *     CKR_KEY_TYPE_INCONSISTENT, CKR_(UN)WRAPPING_KEY_TYPE_INCONSISTENT,
 *     CKR_KEY_SIZE_RANGE, CKR_DATA_LEN_RANGE
 *   corrupt input (-EBADMSG): "wrapped key is corrupt"
 *     CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE,
 *     CKR_WRAPPED_KEY_INVALID, CKR_WRAPPED_KEY_LEN_RANGE
 *     (SoftHSM2 2.6 answers CKR_GENERAL_ERROR when an AES unwrap or an
 *     OAEP decryption fails its check; see unwrap_failed())
 *   token policy (-EOPNOTSUPP): the token will not make or reveal the
 *     plain session key that carries our key in and out
 *     CKR_TEMPLATE_INCONSISTENT, CKR_TEMPLATE_INCOMPLETE,
 *     CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_SENSITIVE
 *   local (-ENOMEM): CKR_HOST_MEMORY
 *   unavailable (-EAGAIN, transient), listed and by default:
 *     CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED, CKR_SLOT_ID_INVALID,
 *     CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_DEVICE_REMOVED,
 *     CKR_SESSION_*, CKR_USER_NOT_LOGGED_IN, CKR_GENERAL_ERROR,
 *     CKR_FUNCTION_FAILED, CKR_FUNCTION_CANCELED,
 *     CKR_CRYPTOKI_NOT_INITIALIZED, CKR_OPERATION_ACTIVE,
 *     CKR_TOKEN_WRITE_PROTECTED, every code not listed;
 *     also (outside this table) no token with the URI's label is present,
 *     and the module cannot be loaded. */
static const struct p11_rv {
	CK_RV rv;
	int err;
	const char *what;
} rv_table[] = {
	{ CKR_KEY_FUNCTION_NOT_PERMITTED,     -EKEYREVOKED, "key use is not permitted (revoked)" },
	{ CKR_KEY_HANDLE_INVALID,             -EKEYREVOKED, "key object was destroyed" },
	{ CKR_OBJECT_HANDLE_INVALID,          -EKEYREVOKED, "key object was destroyed" },
	{ CKR_WRAPPING_KEY_HANDLE_INVALID,    -EKEYREVOKED, "wrapping key was destroyed" },
	{ CKR_UNWRAPPING_KEY_HANDLE_INVALID,  -EKEYREVOKED, "unwrapping key was destroyed" },
	{ CKR_KEY_UNEXTRACTABLE,              -EKEYREVOKED, "token refuses to wrap the key" },
	{ CKR_PIN_EXPIRED,                    -EKEYREVOKED, "pin expired" },
	{ CKR_PIN_LOCKED,                     -EKEYREVOKED, "pin locked" },
	{ CKR_PIN_INCORRECT,                  -EACCES,      "wrong pin" },
	{ CKR_PIN_INVALID,                    -EACCES,      "wrong pin (invalid characters)" },
	{ CKR_PIN_LEN_RANGE,                  -EACCES,      "wrong pin (bad length)" },
	{ CKR_ACTION_PROHIBITED,              -EPERM,       "key object may not be destroyed" },
	{ CKR_MECHANISM_INVALID,              -EINVAL,      "mechanism not supported by the token" },
	{ CKR_MECHANISM_PARAM_INVALID,        -EINVAL,      "mechanism parameter refused by the token" },
	{ CKR_KEY_TYPE_INCONSISTENT,          -EINVAL,      "key type does not fit the mechanism" },
	{ CKR_WRAPPING_KEY_TYPE_INCONSISTENT, -EINVAL,      "key type does not fit the mechanism" },
	{ CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, -EINVAL,    "key type does not fit the mechanism" },
	{ CKR_KEY_SIZE_RANGE,                 -EINVAL,      "key length not supported by the mechanism" },
	{ CKR_DATA_LEN_RANGE,                 -EINVAL,      "key too long for this wrapping key" },
	{ CKR_ENCRYPTED_DATA_INVALID,         -EBADMSG,     "wrapped key is corrupt" },
	{ CKR_ENCRYPTED_DATA_LEN_RANGE,       -EBADMSG,     "wrapped key is corrupt" },
	{ CKR_WRAPPED_KEY_INVALID,            -EBADMSG,     "wrapped key is corrupt" },
	{ CKR_WRAPPED_KEY_LEN_RANGE,          -EBADMSG,     "wrapped key is corrupt" },
	{ CKR_TEMPLATE_INCONSISTENT,          -EOPNOTSUPP,  "token policy refuses a plain session key" },
	{ CKR_TEMPLATE_INCOMPLETE,            -EOPNOTSUPP,  "token policy refuses a plain session key" },
	{ CKR_ATTRIBUTE_VALUE_INVALID,        -EOPNOTSUPP,  "token policy refuses a plain session key" },
	{ CKR_ATTRIBUTE_SENSITIVE,            -EOPNOTSUPP,  "token refuses to reveal the unwrapped key" },
	{ CKR_HOST_MEMORY,                    -ENOMEM,      "out of memory" },
	{ CKR_TOKEN_NOT_PRESENT,              -EAGAIN,      "token not present" },
	{ CKR_TOKEN_NOT_RECOGNIZED,           -EAGAIN,      "token not recognized" },
	{ CKR_SLOT_ID_INVALID,                -EAGAIN,      "slot went away" },
	{ CKR_DEVICE_ERROR,                   -EAGAIN,      "device error" },
	{ CKR_DEVICE_MEMORY,                  -EAGAIN,      "device out of memory" },
	{ CKR_DEVICE_REMOVED,                 -EAGAIN,      "device removed" },
	{ CKR_SESSION_CLOSED,                 -EAGAIN,      "session closed" },
	{ CKR_SESSION_COUNT,                  -EAGAIN,      "too many sessions" },
	{ CKR_SESSION_HANDLE_INVALID,         -EAGAIN,      "session lost" },
	{ CKR_SESSION_READ_ONLY,              -EAGAIN,      "session is read-only" },
	{ CKR_USER_NOT_LOGGED_IN,             -EAGAIN,      "login lost" },
	{ CKR_GENERAL_ERROR,                  -EAGAIN,      "general error" },
	{ CKR_FUNCTION_FAILED,                -EAGAIN,      "function failed" },
	{ CKR_FUNCTION_CANCELED,              -EAGAIN,      "function canceled" },
	{ CKR_CRYPTOKI_NOT_INITIALIZED,       -EAGAIN,      "module not initialized" },
	{ CKR_OPERATION_ACTIVE,               -EAGAIN,      "another operation is active" },
	{ CKR_TOKEN_WRITE_PROTECTED,          -EAGAIN,      "token is write-protected" },
};

static const struct p11_rv *rv_lookup(CK_RV rv)
{
	for (size_t i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++)
		if (rv_table[i].rv == rv)
			return &rv_table[i];
	return NULL;
}

static int rv_err(CK_RV rv)
{
	const struct p11_rv *e = rv_lookup(rv);

	return e ? e->err : -EAGAIN;
}

/* Map rv through the table and write "<op>: <what> (CKR 0x..)". */
static int rv_fail(char *msg, size_t len, CK_RV rv, const char *op, const char *name)
{
	const struct p11_rv *e = rv_lookup(rv);

	return fail(msg, len, e ? e->err : -EAGAIN, "pkcs11: %s %s: %s (ckr 0x%lx)",
	            op, name, e ? e->what : "token error", (unsigned long)rv);
}

/* ---- URI parsing ---------------------------------------------------------- */

enum p11_type { P11_ANY, P11_SECRET, P11_PRIVATE, P11_PUBLIC };

struct p11_uri {
	char token[33], manufacturer[33], model[17], serial[17];
	bool has_manufacturer, has_model, has_serial;
	char object[P11_LABEL_MAX + 1];
	bool has_object;
	uint8_t id[P11_ID_MAX];
	size_t id_len;
	bool has_id;
	enum p11_type type;
	char module[PATH_MAX];
	char pin_file[PATH_MAX];
	char name[96];           /* for messages: token/object, shortened */
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into out (cap bytes). */
static int pct_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *out_n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -EINVAL;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		}
		if (o >= cap)
			return -ERANGE;
		out[o++] = (uint8_t)c;
	}
	*out_n = o;
	return 0;
}

/* Decode an attribute value into a NUL-terminated string of at most cap-1
 * bytes; NUL bytes inside are refused. */
static int decode_str(const char *attr, const char *v, size_t n, char *out, size_t cap,
                      char *msg, size_t msg_len)
{
	size_t o;
	int r = pct_decode(v, n, (uint8_t *)out, cap - 1, &o);

	if (r == -EINVAL)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: bad percent-encoding in %s", attr);
	if (r < 0)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: %s is too long (at most %zu bytes)",
		            attr, cap - 1);
	if (o == 0)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: %s is empty", attr);
	if (memchr(out, 0, o))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: %s contains a nul byte", attr);
	out[o] = 0;
	return 0;
}

static int set_once(bool *seen, const char *attr, char *msg, size_t msg_len)
{
	if (*seen)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: attribute %s given twice", attr);
	*seen = true;
	return 0;
}

static int parse_path_attr(struct p11_uri *u, const char *a, size_t n, bool seen[],
                           char *msg, size_t msg_len)
{
	const char *eq = memchr(a, '=', n);
	char name[32], tmp[16];
	size_t an, vn, o;
	const char *v;
	int r;

	if (!eq)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: path attribute '%.*s' has no '='",
		            (int)(n > 40 ? 40 : n), a);
	an = eq - a;
	v = eq + 1;
	vn = n - an - 1;
	if (an == 0 || an >= sizeof(name))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: bad attribute name '%.*s'",
		            (int)(an > 40 ? 40 : an), a);
	memcpy(name, a, an);
	name[an] = 0;

	if (!strcmp(name, "token")) {
		if ((r = set_once(&seen[0], name, msg, msg_len)) < 0)
			return r;
		return decode_str(name, v, vn, u->token, sizeof(u->token), msg, msg_len);
	}
	if (!strcmp(name, "manufacturer")) {
		if ((r = set_once(&u->has_manufacturer, name, msg, msg_len)) < 0)
			return r;
		return decode_str(name, v, vn, u->manufacturer, sizeof(u->manufacturer), msg, msg_len);
	}
	if (!strcmp(name, "model")) {
		if ((r = set_once(&u->has_model, name, msg, msg_len)) < 0)
			return r;
		return decode_str(name, v, vn, u->model, sizeof(u->model), msg, msg_len);
	}
	if (!strcmp(name, "serial")) {
		if ((r = set_once(&u->has_serial, name, msg, msg_len)) < 0)
			return r;
		return decode_str(name, v, vn, u->serial, sizeof(u->serial), msg, msg_len);
	}
	if (!strcmp(name, "object")) {
		if ((r = set_once(&u->has_object, name, msg, msg_len)) < 0)
			return r;
		return decode_str(name, v, vn, u->object, sizeof(u->object), msg, msg_len);
	}
	if (!strcmp(name, "id")) {
		if ((r = set_once(&u->has_id, name, msg, msg_len)) < 0)
			return r;
		r = pct_decode(v, vn, u->id, sizeof(u->id), &u->id_len);
		if (r == -EINVAL)
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: bad percent-encoding in id");
		if (r < 0)
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: id is too long");
		if (u->id_len == 0)
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: id is empty");
		return 0;
	}
	if (!strcmp(name, "type")) {
		if ((r = set_once(&seen[1], name, msg, msg_len)) < 0)
			return r;
		r = pct_decode(v, vn, (uint8_t *)tmp, sizeof(tmp) - 1, &o);
		if (r < 0)
			o = 0;
		tmp[o] = 0;
		if (!strcmp(tmp, "secret-key"))
			u->type = P11_SECRET;
		else if (!strcmp(tmp, "private"))
			u->type = P11_PRIVATE;
		else if (!strcmp(tmp, "public"))
			u->type = P11_PUBLIC;
		else
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: type must be secret-key, "
			            "private or public, not '%.*s'", (int)(vn > 20 ? 20 : vn), v);
		return 0;
	}
	return fail(msg, msg_len, -EINVAL, "pkcs11 uri: unsupported path attribute '%s'", name);
}

static int parse_query_attr(struct p11_uri *u, const char *a, size_t n, bool seen[],
                            char *msg, size_t msg_len)
{
	const char *eq = memchr(a, '=', n);
	char name[32], val[PATH_MAX + 16];
	size_t an;
	int r;

	if (!eq)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: query attribute '%.*s' has no '='",
		            (int)(n > 40 ? 40 : n), a);
	an = eq - a;
	if (an == 0 || an >= sizeof(name))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: bad attribute name '%.*s'",
		            (int)(an > 40 ? 40 : an), a);
	memcpy(name, a, an);
	name[an] = 0;

	if (!strcmp(name, "pin-value"))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: pin-value is refused (a pin in the "
		            "uri leaks into records and logs); use pin-source=file:/path/to/pinfile");
	if (!strcmp(name, "module-name"))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: module-name is not supported; "
		            "use module-path=/absolute/path/to/module.so");
	if (strcmp(name, "module-path") && strcmp(name, "pin-source"))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: unsupported query attribute '%s'", name);

	if ((r = decode_str(name, eq + 1, n - an - 1, val, sizeof(val), msg, msg_len)) < 0)
		return r;
	if (!strcmp(name, "module-path")) {
		if ((r = set_once(&seen[2], name, msg, msg_len)) < 0)
			return r;
		if (val[0] != '/' || strlen(val) >= sizeof(u->module))
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: module-path must be an "
			            "absolute path");
		strcpy(u->module, val);
		return 0;
	}
	if ((r = set_once(&seen[3], name, msg, msg_len)) < 0)
		return r;
	/* file:/abs, file:///abs (RFC 8089); nothing else (no commands). */
	if (!strncmp(val, "file:///", 8))
		memmove(val, val + 7, strlen(val + 7) + 1);
	else if (!strncmp(val, "file:/", 6) && val[6] != '/')
		memmove(val, val + 5, strlen(val + 5) + 1);
	else
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: pin-source must be "
		            "file:/absolute/path (only pin files are supported)");
	if (strlen(val) >= sizeof(u->pin_file))
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: pin-source path is too long");
	strcpy(u->pin_file, val);
	return 0;
}

static int parse_uri(const char *uri, struct p11_uri *u, char *msg, size_t msg_len)
{
	bool seen[4] = { false };   /* token, type, module-path, pin-source */
	const char *p, *q, *end;
	size_t len;
	int r;

	memset(u, 0, sizeof(*u));
	if (!uri || strncasecmp(uri, "pkcs11:", 7) != 0)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri must start with 'pkcs11:'");
	len = strnlen(uri, CK_URI_MAX + 1);
	if (len > CK_URI_MAX)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri is longer than %d bytes", CK_URI_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)uri[i];

		if (c <= 0x20 || c >= 0x7f || c == '#' || c == '"' || c == '<' || c == '>' ||
		    c == '\\' || c == '`' || c == '{' || c == '}' || c == '^')
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: character 0x%02x at offset %zu "
			            "must be percent-encoded", c, i);
	}
	p = uri + 7;
	end = uri + len;
	q = memchr(p, '?', end - p);
	if (!q)
		q = end;
	/* Path attributes, separated by ';' (empty ones are tolerated). */
	while (p < q) {
		const char *semi = memchr(p, ';', q - p);
		const char *e = semi ? semi : q;

		if (e > p && (r = parse_path_attr(u, p, e - p, seen, msg, msg_len)) < 0)
			return r;
		p = e + 1;
	}
	/* Query attributes, separated by '&'. */
	if (q < end) {
		if (memchr(q + 1, '?', end - q - 1))
			return fail(msg, msg_len, -EINVAL, "pkcs11 uri: more than one '?'");
		p = q + 1;
		while (p < end) {
			const char *amp = memchr(p, '&', end - p);
			const char *e = amp ? amp : end;

			if (e > p && (r = parse_query_attr(u, p, e - p, seen, msg, msg_len)) < 0)
				return r;
			p = e + 1;
		}
	}
	if (!seen[0])
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: token=<label> is missing");
	if (strlen(u->token) > 32)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: token label is longer than 32 bytes");
	if (!u->has_object && !u->has_id)
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: name the key with object=<label> "
		            "and/or id=<%%xx...>");
	if (!seen[3])
		return fail(msg, msg_len, -EINVAL, "pkcs11 uri: pin-source=file:/path/to/pinfile "
		            "is missing");
	if (!seen[2])
		strcpy(u->module, P11_DEFAULT_MODULE);
	if (u->has_object) {
		snprintf(u->name, sizeof(u->name), "%.32s/%.60s", u->token, u->object);
	} else {
		size_t o = (size_t)snprintf(u->name, sizeof(u->name), "%.32s/id=", u->token);

		for (size_t i = 0; i < u->id_len && o + 4 < sizeof(u->name); i++, o += 3)
			snprintf(u->name + o, sizeof(u->name) - o, "%%%02x", u->id[i]);
	}
	return 0;
}

/* ---- the PIN file --------------------------------------------------------- */

/* Read the PIN into pin (P11_PIN_MAX + 1 bytes, wiped by the caller).
 * Misconfiguration of the pin file is the operator's: -EACCES. */
static int read_pin(const struct p11_uri *u, char *pin, size_t *pin_len, char *msg, size_t msg_len)
{
	char eb[128];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd, r;

	fd = open(u->pin_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(msg, msg_len, -EACCES, "pkcs11: cannot open pin file %s: %s",
		            u->pin_file, errstr(errno, eb, sizeof(eb)));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = fail(msg, msg_len, -EACCES, "pkcs11: pin file %s is not a regular file",
		         u->pin_file);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IRWXO)) {
		r = fail(msg, msg_len, -EACCES, "pkcs11: pin file %s is accessible by others; "
		         "chmod 600 it", u->pin_file);
		goto out;
	}
	do
		n = read(fd, pin, P11_PIN_MAX + 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = fail(msg, msg_len, -EACCES, "pkcs11: cannot read pin file %s: %s",
		         u->pin_file, errstr(errno, eb, sizeof(eb)));
		goto out;
	}
	len = (size_t)n;
	if (len > 0 && pin[len - 1] == '\n')
		len--;
	if (len > 0 && pin[len - 1] == '\r')
		len--;
	if (len > P11_PIN_MAX) {
		r = fail(msg, msg_len, -EACCES, "pkcs11: pin file %s is longer than %d bytes",
		         u->pin_file, P11_PIN_MAX);
		goto out;
	}
	if (len == 0) {
		r = fail(msg, msg_len, -EACCES, "pkcs11: pin file %s is empty", u->pin_file);
		goto out;
	}
	*pin_len = len;
	r = 0;
out:
	close(fd);
	return r;
}

/* ---- modules -------------------------------------------------------------- */

struct p11_module {
	struct p11_module *next;
	CK_FUNCTION_LIST_PTR f;
	void *dl;
	char path[];
};

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct p11_module *modules;   /* under modules_lock; never freed */

static int module_get(const char *path, CK_FUNCTION_LIST_PTR *out, char *msg, size_t msg_len)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get_list;
	struct p11_module *m;
	void *dl = NULL;
	CK_RV rv;
	int r;

	pthread_mutex_lock(&modules_lock);
	for (m = modules; m; m = m->next)
		if (!strcmp(m->path, path)) {
			*out = m->f;
			r = 0;
			goto out;
		}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		r = fail(msg, msg_len, -EAGAIN, "pkcs11: cannot load module %s: %s", path, dlerror());
		goto out;
	}
	get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (!get_list) {
		r = fail(msg, msg_len, -EAGAIN, "pkcs11: %s is not a pkcs#11 module "
		         "(no C_GetFunctionList)", path);
		goto out;
	}
	m = calloc(1, sizeof(*m) + strlen(path) + 1);
	if (!m) {
		r = fail(msg, msg_len, -ENOMEM, "pkcs11: out of memory");
		goto out;
	}
	strcpy(m->path, path);
	if ((rv = get_list(&m->f)) != CKR_OK || !m->f) {
		free(m);
		r = fail(msg, msg_len, -EAGAIN, "pkcs11: module %s: C_GetFunctionList failed "
		         "(ckr 0x%lx)", path, (unsigned long)rv);
		goto out;
	}
	rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		free(m);
		r = rv_fail(msg, msg_len, rv, "initialize module", path);
		goto out;
	}
	m->dl = dl;
	dl = NULL;
	m->next = modules;
	modules = m;
	*out = m->f;
	r = 0;
out:
	if (dl)
		dlclose(dl);
	pthread_mutex_unlock(&modules_lock);
	return r;
}

/* ---- sessions and objects ------------------------------------------------- */

struct p11_ctx {
	struct p11_uri u;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	bool open;
};

/* Compare a blank-padded token field with a URI value. */
static bool padded_eq(const unsigned char *field, size_t n, const char *want)
{
	size_t len = n;

	while (len > 0 && field[len - 1] == ' ')
		len--;
	return strlen(want) == len && memcmp(field, want, len) == 0;
}

static int find_slot(struct p11_ctx *c, char *msg, size_t msg_len)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	int found = 0, r;

	for (int tries = 0;; tries++) {
		if ((rv = c->f->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK) {
			r = rv_fail(msg, msg_len, rv, "list slots for", c->u.name);
			goto out;
		}
		free(slots);
		slots = calloc(n ? n : 1, sizeof(*slots));
		if (!slots) {
			r = fail(msg, msg_len, -ENOMEM, "pkcs11: out of memory");
			goto out;
		}
		rv = c->f->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv == CKR_OK)
			break;
		if (rv != CKR_BUFFER_TOO_SMALL || tries > 3) {
			r = rv_fail(msg, msg_len, rv, "list slots for", c->u.name);
			goto out;
		}
	}
	for (CK_ULONG i = 0; i < n; i++) {
		if (c->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;   /* removed meanwhile: as if absent */
		if (!padded_eq(ti.label, sizeof(ti.label), c->u.token))
			continue;
		if (c->u.has_manufacturer &&
		    !padded_eq(ti.manufacturerID, sizeof(ti.manufacturerID), c->u.manufacturer))
			continue;
		if (c->u.has_model && !padded_eq(ti.model, sizeof(ti.model), c->u.model))
			continue;
		if (c->u.has_serial &&
		    !padded_eq(ti.serialNumber, sizeof(ti.serialNumber), c->u.serial))
			continue;
		if (found++)
			break;
		c->slot = slots[i];
	}
	if (found == 0)
		r = fail(msg, msg_len, -EAGAIN, "pkcs11: token \"%s\" not found in %s "
		         "(not present?)", c->u.token, c->u.module);
	else if (found > 1)
		r = fail(msg, msg_len, -EINVAL, "pkcs11: more than one token matches \"%s\"; "
		         "add serial= to the uri", c->u.token);
	else
		r = 0;
out:
	free(slots);
	return r;
}

/* Parse, load, find the token, open a session and log in. */
static int p11_open(const char *uri, struct p11_ctx *c, bool rw, char *msg, size_t msg_len)
{
	char pin[P11_PIN_MAX + 1];
	size_t pin_len = 0;
	CK_RV rv;
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = parse_uri(uri, &c->u, msg, msg_len)) < 0)
		return r;
	if ((r = read_pin(&c->u, pin, &pin_len, msg, msg_len)) < 0)
		goto out;
	if ((r = module_get(c->u.module, &c->f, msg, msg_len)) < 0)
		goto out;
	if ((r = find_slot(c, msg, msg_len)) < 0)
		goto out;
	rv = c->f->C_OpenSession(c->slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0),
	                         NULL, NULL, &c->s);
	if (rv != CKR_OK) {
		r = rv_fail(msg, msg_len, rv, "open session on", c->u.name);
		goto out;
	}
	c->open = true;
	rv = c->f->C_Login(c->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		if (rv == CKR_PIN_INCORRECT)
			r = fail(msg, msg_len, -EACCES, "pkcs11: wrong pin for token \"%s\" (pin file %s)",
			         c->u.token, c->u.pin_file);
		else
			r = rv_fail(msg, msg_len, rv, "log in to", c->u.name);
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(pin, sizeof(pin));
	if (r < 0 && c->open) {
		c->f->C_CloseSession(c->s);
		c->open = false;
	}
	return r;
}

static void p11_close(struct p11_ctx *c)
{
	if (c->open)
		c->f->C_CloseSession(c->s);
	c->open = false;
}

/* Find the one object of class cls matching the URI. Returns 0 and *h,
 * -ENOENT if none (the caller decides what that means), -EINVAL if more
 * than one, or a table answer. */
static int find_object(struct p11_ctx *c, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h,
                       char *msg, size_t msg_len)
{
	CK_ATTRIBUTE t[3];
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0, nt = 0;
	CK_RV rv;

	t[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if (c->u.has_object)
		t[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, c->u.object, strlen(c->u.object) };
	if (c->u.has_id)
		t[nt++] = (CK_ATTRIBUTE){ CKA_ID, c->u.id, c->u.id_len };
	if ((rv = c->f->C_FindObjectsInit(c->s, t, nt)) != CKR_OK)
		return rv_fail(msg, msg_len, rv, "search", c->u.name);
	rv = c->f->C_FindObjects(c->s, found, 2, &n);
	c->f->C_FindObjectsFinal(c->s);
	if (rv != CKR_OK)
		return rv_fail(msg, msg_len, rv, "search", c->u.name);
	if (n > 1)
		return fail(msg, msg_len, -EINVAL, "pkcs11: more than one key object matches %s; "
		            "add id= or object= to the uri", c->u.name);
	if (n == 0)
		return -ENOENT;
	*h = found[0];
	return 0;
}

enum p11_kind { KIND_AES, KIND_RSA };
enum p11_use { USE_WRAP, USE_UNWRAP, USE_DESTROY };

/* The key object for a use: the AES secret key, or the RSA public key
 * (wrap) or private key (unwrap, destroy). A missing object is denied: we
 * are logged in to the right token and the key is not there (for destroy:
 * -ENOENT, no message). */
static int find_key(struct p11_ctx *c, enum p11_use use, enum p11_kind *kind,
                    CK_OBJECT_HANDLE *h, char *msg, size_t msg_len)
{
	CK_OBJECT_CLASS rsa_cls = use == USE_WRAP ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_RV rv;
	int r = -ENOENT;

	if (c->u.type == P11_ANY || c->u.type == P11_SECRET) {
		r = find_object(c, CKO_SECRET_KEY, h, msg, msg_len);
		if (r == 0)
			*kind = KIND_AES;
		if (r != -ENOENT)
			goto found;
	}
	if (c->u.type != P11_SECRET) {
		r = find_object(c, rsa_cls, h, msg, msg_len);
		if (r == 0)
			*kind = KIND_RSA;
	}
found:
	if (r == -ENOENT && use == USE_DESTROY)
		return r;
	if (r == -ENOENT)
		return fail(msg, msg_len, -EKEYREVOKED, "pkcs11: key object %s not found%s",
		            c->u.name, use == USE_WRAP && c->u.type != P11_SECRET &&
		            c->u.type != P11_ANY ? " (rsa wrap needs the public key)" : "");
	if (r < 0)
		return r;
	if ((rv = c->f->C_GetAttributeValue(c->s, *h, &a, 1)) != CKR_OK)
		return rv_fail(msg, msg_len, rv, "read key type of", c->u.name);
	if (*kind == KIND_AES ? kt != CKK_AES : kt != CKK_RSA)
		return fail(msg, msg_len, -EINVAL, "pkcs11: key object %s is neither an aes key "
		            "nor an rsa key pair (key type 0x%lx)", c->u.name, (unsigned long)kt);
	return 0;
}

/* CKA_UNWRAP / CKA_DECRYPT (or any boolean) of h; FALSE means revoked. */
static int check_permitted(struct p11_ctx *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                           char *msg, size_t msg_len)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };
	CK_RV rv;

	if ((rv = c->f->C_GetAttributeValue(c->s, h, &a, 1)) != CKR_OK)
		return rv_fail(msg, msg_len, rv, "read attributes of", c->u.name);
	if (v != CK_TRUE)
		return fail(msg, msg_len, -EKEYREVOKED, "pkcs11: key object %s may no longer %s "
		            "(revoked)", c->u.name, type == CKA_UNWRAP ? "unwrap" : "decrypt");
	return 0;
}

/* The RSA OAEP parameters SoftHSM2 supports: SHA-1, MGF1-SHA1, no label. */
static CK_RSA_PKCS_OAEP_PARAMS oaep_params(void)
{
	return (CK_RSA_PKCS_OAEP_PARAMS){
		.hashAlg = CKM_SHA_1, .mgf = CKG_MGF1_SHA1,
		.source = CKZ_DATA_SPECIFIED, .pSourceData = NULL, .ulSourceDataLen = 0,
	};
}

/* AES mechanism choice (see the top of the file). The fallback tries the
 * RFC 5649 alternative IV as parameter; *iv_refused is set (and kept by the
 * caller) when the token refuses it. */
static bool token_has_wrap_pad(struct p11_ctx *c)
{
	CK_MECHANISM_INFO mi;

	if (ck_pkcs11_test_no_wrap_pad)
		return false;
	return c->f->C_GetMechanismInfo(c->slot, CKM_AES_KEY_WRAP_PAD, &mi) == CKR_OK &&
	       (mi.flags & (CKF_WRAP | CKF_UNWRAP)) == (CKF_WRAP | CKF_UNWRAP);
}

static void rfc5649_aiv(uint8_t aiv[8], size_t n)
{
	aiv[0] = 0xa6; aiv[1] = 0x59; aiv[2] = 0x59; aiv[3] = 0xa6;
	aiv[4] = (uint8_t)(n >> 24); aiv[5] = (uint8_t)(n >> 16);
	aiv[6] = (uint8_t)(n >> 8);  aiv[7] = (uint8_t)n;
}

static bool iv_refused(CK_RV rv)
{
	return rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD;
}

/* A failed unwrap/decrypt: the token's answer, except that SoftHSM2 2.6
 * answers CKR_GENERAL_ERROR (not CKR_WRAPPED_KEY_INVALID or
 * CKR_ENCRYPTED_DATA_INVALID) when the integrity check of an AES unwrap or
 * the OAEP decoding fails. If the session and the key still answer and the
 * key is still permitted, that failure was the input's: corrupt. */
static int unwrap_failed(struct p11_ctx *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE perm,
                         CK_RV rv, char *msg, size_t msg_len)
{
	CK_SESSION_INFO si;
	int r;

	if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) {
		if (c->f->C_GetSessionInfo(c->s, &si) != CKR_OK)
			return rv_fail(msg, msg_len, rv, "unwrap with", c->u.name);
		if ((r = check_permitted(c, h, perm, msg, msg_len)) < 0)
			return r;
		return fail(msg, msg_len, -EBADMSG, "pkcs11: wrapped key is corrupt or was not "
		            "wrapped by %s (ckr 0x%lx)", c->u.name, (unsigned long)rv);
	}
	if (rv_err(rv) == -EBADMSG)
		return fail(msg, msg_len, -EBADMSG, "pkcs11: wrapped key is corrupt or was not "
		            "wrapped by %s (ckr 0x%lx)", c->u.name, (unsigned long)rv);
	return rv_fail(msg, msg_len, rv, "unwrap with", c->u.name);
}

/* The key can unwrap: the object is there and its CKA_UNWRAP (AES) or
 * CKA_DECRYPT (RSA private key) is TRUE. probe answers this; wrap checks it
 * first too, so a revoked key is not given new wraps it could never undo. */
static int usable_for_unwrap(struct p11_ctx *c, char *msg, size_t msg_len)
{
	enum p11_kind kind;
	CK_OBJECT_HANDLE h;
	int r;

	if ((r = find_key(c, USE_UNWRAP, &kind, &h, msg, msg_len)) < 0)
		return r;
	return check_permitted(c, h, kind == KIND_AES ? CKA_UNWRAP : CKA_DECRYPT, msg, msg_len);
}

/* ---- wrap ------------------------------------------------------------------ */

static int wrap_aes(struct p11_ctx *c, CK_OBJECT_HANDLE kek, const uint8_t *key, size_t n,
                    uint8_t *out, size_t *out_len, char *msg, size_t msg_len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_SENSITIVE, &no, sizeof(no) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
		{ CKA_VALUE, (void *)key, n },
	};
	CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	uint8_t aiv[8];
	CK_ULONG olen = CK_WRAP_MAX;
	CK_RV rv;
	int r;

	if (n % 8 != 0)
		return fail(msg, msg_len, -EINVAL, "pkcs11: aes wrapping by a token takes keys of "
		            "a multiple of 8 bytes, not %zu", n);
	if (!token_has_wrap_pad(c)) {
		if (n < 16)
			return fail(msg, msg_len, -EINVAL, "pkcs11: token of %s lacks "
			            "CKM_AES_KEY_WRAP_PAD and CKM_AES_KEY_WRAP needs a key of at "
			            "least 16 bytes (not %zu)", c->u.name, n);
		rfc5649_aiv(aiv, n);
		mech = (CK_MECHANISM){ CKM_AES_KEY_WRAP, aiv, sizeof(aiv) };
	}
	if ((rv = c->f->C_CreateObject(c->s, t, sizeof(t) / sizeof(t[0]), &tmp)) != CKR_OK) {
		r = rv_fail(msg, msg_len, rv, "load key for wrapping by", c->u.name);
		goto out;
	}
	rv = c->f->C_WrapKey(c->s, &mech, kek, tmp, out, &olen);
	if (mech.mechanism == CKM_AES_KEY_WRAP && iv_refused(rv)) {
		mech = (CK_MECHANISM){ CKM_AES_KEY_WRAP, NULL, 0 };
		olen = CK_WRAP_MAX;
		rv = c->f->C_WrapKey(c->s, &mech, kek, tmp, out, &olen);
	}
	if (rv != CKR_OK) {
		r = rv_fail(msg, msg_len, rv, "wrap with", c->u.name);
		goto out;
	}
	*out_len = olen;
	r = 0;
out:
	if (tmp != CK_INVALID_HANDLE)
		c->f->C_DestroyObject(c->s, tmp);
	return r;
}

static int wrap_rsa(struct p11_ctx *c, CK_OBJECT_HANDLE pub, const uint8_t *key, size_t n,
                    uint8_t *out, size_t *out_len, char *msg, size_t msg_len)
{
	CK_RSA_PKCS_OAEP_PARAMS p = oaep_params();
	CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &p, sizeof(p) };
	uint8_t modulus[CK_WRAP_MAX];
	CK_ATTRIBUTE a = { CKA_MODULUS, modulus, sizeof(modulus) };
	CK_ULONG olen = CK_WRAP_MAX;
	CK_RV rv;

	/* OAEP with SHA-1 carries at most modulus - 2 * 20 - 2 bytes (SoftHSM2
	 * answers a longer input with a general error, not CKR_DATA_LEN_RANGE). */
	if ((rv = c->f->C_GetAttributeValue(c->s, pub, &a, 1)) != CKR_OK)
		return rv_fail(msg, msg_len, rv, "read the modulus of", c->u.name);
	if (a.ulValueLen < 64 || n > a.ulValueLen - 42)
		return fail(msg, msg_len, -EINVAL, "pkcs11: a key of %zu bytes is too long for "
		            "rsa-%lu oaep (at most %lu bytes)", n, (unsigned long)a.ulValueLen * 8,
		            a.ulValueLen < 64 ? 0UL : (unsigned long)a.ulValueLen - 42);

	if ((rv = c->f->C_EncryptInit(c->s, &mech, pub)) != CKR_OK)
		return rv_fail(msg, msg_len, rv, "wrap with", c->u.name);
	rv = c->f->C_Encrypt(c->s, (CK_BYTE_PTR)key, n, out, &olen);
	if (rv != CKR_OK)
		return rv_fail(msg, msg_len, rv, "wrap with", c->u.name);
	*out_len = olen;
	return 0;
}

static int p11_wrap(const char *uri, const uint8_t *key, size_t n,
                    uint8_t *out, size_t *out_len, char *msg, size_t msg_len)
{
	struct p11_ctx c;
	enum p11_kind kind;
	CK_OBJECT_HANDLE h;
	int r;

	if (n == 0 || n > CK_WRAP_MAX - 16)
		return fail(msg, msg_len, -EINVAL, "pkcs11: cannot wrap a key of %zu bytes", n);
	if (!key || !out || !out_len)
		return fail(msg, msg_len, -EINVAL, "pkcs11: wrap without a buffer");
	if ((r = p11_open(uri, &c, false, msg, msg_len)) < 0)
		return r;
	if ((r = usable_for_unwrap(&c, msg, msg_len)) < 0)
		goto out;
	if ((r = find_key(&c, USE_WRAP, &kind, &h, msg, msg_len)) < 0)
		goto out;
	if (kind == KIND_AES)
		r = wrap_aes(&c, h, key, n, out, out_len, msg, msg_len);
	else
		r = wrap_rsa(&c, h, key, n, out, out_len, msg, msg_len);
out:
	p11_close(&c);
	return r;
}

/* ---- unwrap ---------------------------------------------------------------- */

static int unwrap_aes(struct p11_ctx *c, CK_OBJECT_HANDLE kek, const uint8_t *in, size_t n,
                      uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_SENSITIVE, &no, sizeof(no) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
	};
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
	CK_ATTRIBUTE val = { CKA_VALUE, NULL, 0 };
	uint8_t aiv[8];
	CK_RV rv;
	int r;

	/* RFC 5649 output is a multiple of 8 bytes, at least 16. */
	if (n < 16 || n % 8 != 0)
		return fail(msg, msg_len, -EBADMSG, "pkcs11: wrapped key is corrupt "
		            "(%zu bytes is no aes key wrap)", n);
	if (!token_has_wrap_pad(c)) {
		rfc5649_aiv(aiv, n - 8);
		mech = (CK_MECHANISM){ CKM_AES_KEY_WRAP, aiv, sizeof(aiv) };
	}
	rv = c->f->C_UnwrapKey(c->s, &mech, kek, (CK_BYTE_PTR)in, n, t,
	                       sizeof(t) / sizeof(t[0]), &tmp);
	if (mech.mechanism == CKM_AES_KEY_WRAP && iv_refused(rv)) {
		mech = (CK_MECHANISM){ CKM_AES_KEY_WRAP, NULL, 0 };
		rv = c->f->C_UnwrapKey(c->s, &mech, kek, (CK_BYTE_PTR)in, n, t,
		                       sizeof(t) / sizeof(t[0]), &tmp);
	}
	if (rv != CKR_OK) {
		tmp = CK_INVALID_HANDLE;
		r = unwrap_failed(c, kek, CKA_UNWRAP, rv, msg, msg_len);
		goto out;
	}
	if ((rv = c->f->C_GetAttributeValue(c->s, tmp, &val, 1)) != CKR_OK) {
		r = rv_fail(msg, msg_len, rv, "read unwrapped key from", c->u.name);
		goto out;
	}
	if (val.ulValueLen == 0 || val.ulValueLen > CK_WRAP_MAX) {
		r = fail(msg, msg_len, -EBADMSG, "pkcs11: unwrapped key has a bad length (%lu)",
		         (unsigned long)val.ulValueLen);
		goto out;
	}
	val.pValue = key;   /* straight into the caller's secret buffer */
	if ((rv = c->f->C_GetAttributeValue(c->s, tmp, &val, 1)) != CKR_OK) {
		r = rv_fail(msg, msg_len, rv, "read unwrapped key from", c->u.name);
		goto out;
	}
	*key_len = val.ulValueLen;
	r = 0;
out:
	if (tmp != CK_INVALID_HANDLE)
		c->f->C_DestroyObject(c->s, tmp);
	return r;
}

static int unwrap_rsa(struct p11_ctx *c, CK_OBJECT_HANDLE priv, const uint8_t *in, size_t n,
                      uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	CK_RSA_PKCS_OAEP_PARAMS p = oaep_params();
	CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &p, sizeof(p) };
	uint8_t modulus[CK_WRAP_MAX];
	CK_ATTRIBUTE a = { CKA_MODULUS, modulus, sizeof(modulus) };
	CK_ULONG klen = CK_WRAP_MAX;
	CK_RV rv;

	/* An OAEP ciphertext is exactly as long as the modulus. */
	if (c->f->C_GetAttributeValue(c->s, priv, &a, 1) == CKR_OK && a.ulValueLen != n)
		return fail(msg, msg_len, -EBADMSG, "pkcs11: wrapped key is corrupt (%zu bytes, "
		            "the rsa key %s takes %lu)", n, c->u.name, (unsigned long)a.ulValueLen);
	if ((rv = c->f->C_DecryptInit(c->s, &mech, priv)) != CKR_OK)
		return rv_fail(msg, msg_len, rv, "unwrap with", c->u.name);
	rv = c->f->C_Decrypt(c->s, (CK_BYTE_PTR)in, n, key, &klen);
	if (rv != CKR_OK)
		return unwrap_failed(c, priv, CKA_DECRYPT, rv, msg, msg_len);
	if (klen == 0)
		return fail(msg, msg_len, -EBADMSG, "pkcs11: wrapped key is corrupt (empty key)");
	*key_len = klen;
	return 0;
}

static int p11_unwrap(const char *uri, const uint8_t *in, size_t n,
                      uint8_t *key, size_t *key_len, char *msg, size_t msg_len)
{
	struct p11_ctx c;
	enum p11_kind kind;
	CK_OBJECT_HANDLE h;
	int r;

	if (!in || !key || !key_len)
		return fail(msg, msg_len, -EINVAL, "pkcs11: unwrap without a buffer");
	if (n == 0 || n > CK_WRAP_MAX)
		return fail(msg, msg_len, -EBADMSG, "pkcs11: wrapped key is corrupt (%zu bytes)", n);
	if ((r = p11_open(uri, &c, false, msg, msg_len)) < 0)
		return r;
	if ((r = find_key(&c, USE_UNWRAP, &kind, &h, msg, msg_len)) < 0)
		goto out;
	if (kind == KIND_AES)
		r = unwrap_aes(&c, h, in, n, key, key_len, msg, msg_len);
	else
		r = unwrap_rsa(&c, h, in, n, key, key_len, msg, msg_len);
out:
	if (r < 0)
		OPENSSL_cleanse(key, CK_WRAP_MAX);
	p11_close(&c);
	return r;
}

/* ---- probe, destroy, check_uri --------------------------------------------- */

static int p11_probe(const char *uri, char *msg, size_t msg_len)
{
	struct p11_ctx c;
	int r;

	if ((r = p11_open(uri, &c, false, msg, msg_len)) < 0)
		return r;
	r = usable_for_unwrap(&c, msg, msg_len);
	p11_close(&c);
	return r;
}

/* Destroy the key: the secret key, or both halves of an RSA pair. A key
 * that is already gone is success, as for file: keys: a purge interrupted
 * after the destroy can be re-run. */
static int p11_destroy(const char *uri, char *msg, size_t msg_len)
{
	struct p11_ctx c;
	enum p11_kind kind;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r;

	if ((r = p11_open(uri, &c, true, msg, msg_len)) < 0)
		return r;
	if ((r = find_key(&c, USE_DESTROY, &kind, &h, msg, msg_len)) < 0) {
		if (r == -ENOENT)
			r = fail(msg, msg_len, 0, "pkcs11: key object %s was already gone",
			         c.u.name);
		goto out;
	}
	if ((rv = c.f->C_DestroyObject(c.s, h)) != CKR_OK) {
		r = rv_fail(msg, msg_len, rv, "destroy", c.u.name);
		goto out;
	}
	if (kind == KIND_RSA) {
		r = find_object(&c, CKO_PUBLIC_KEY, &h, msg, msg_len);
		if (r == -ENOENT) {
			r = 0;
			goto out;
		}
		if (r < 0)
			goto out;
		if ((rv = c.f->C_DestroyObject(c.s, h)) != CKR_OK) {
			r = rv_fail(msg, msg_len, rv, "destroy public key of", c.u.name);
			goto out;
		}
	}
	r = 0;
out:
	p11_close(&c);
	return r;
}

static int p11_check_uri(const char *uri, char *msg, size_t msg_len)
{
	struct p11_uri u;

	return parse_uri(uri, &u, msg, msg_len);
}

const struct ck_provider ck_provider_pkcs11 = {
	.scheme    = "pkcs11",
	.wrap      = p11_wrap,
	.unwrap    = p11_unwrap,
	.probe     = p11_probe,
	.create    = NULL,
	.destroy   = p11_destroy,
	.check_uri = p11_check_uri,
};
