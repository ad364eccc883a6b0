#!/bin/bash
# A real KMS over KMIP: PyKMIP's server (Debian's python3-pykmip) on
# 127.0.0.1 with certificates made here by openssl, and scripts/kmip-provider
# as the exec: customer key provider of two DEPs.
#  - the helper by hand: probe, wrap/unwrap round trip, a foreign wrap is
#    unavailable (not denied), a bad config is unavailable;
#  - DEPs depK and depS, each with one KMIP customer key; trees mail/k and
#    mail/s written and read through a mount (-o key_ttl=3);
#  - the customer revokes and destroys depK's key on the KMIP server: the
#    mount's probe finds it denied and mail/k fails with EKEYREVOKED within
#    key_ttl + margin, depS and the service tree keep working;
#  - the KMIP server is stopped (by its PID): the running mount keeps serving
#    depS and audits customer-keys-unavailable; a new mount serves depS
#    through its availability key (audited availability-key-fallback, a
#    warning in the daemon log), and mail/k stays revoked.
# Budget: about a minute on an idle machine (each helper call starts python
# and PyKMIP, 1-5 s under load).
. "$(dirname "$0")/../integration/lib.sh"

for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
# shellcheck source=../../scripts/lib.sh
. "$SRC_ROOT/scripts/lib.sh"
(ck_install_packages python3-pykmip openssl) >"$T/apt.log" 2>&1 ||
	skip_all "python3-pykmip cannot be installed: $(tail -n 1 "$T/apt.log")"
/usr/bin/python3 -c 'import kmip.services.server' 2>/dev/null ||
	skip_all "python3-pykmip is installed but kmip.services.server does not import"

KEY_TTL=3
# The revocation bound is key_ttl + MARGIN. A probe round runs the helper
# (python + PyKMIP + a TLS handshake: 1-2 s idle, 6 s and more at a load of
# 20 on 2 cores) once per DEP, and the round in flight when the key goes
# counts too: MARGIN is 8 helper runs as measured below, at least 30 s.
MARGIN=30
export CK_MOUNT_WAIT=600   # the mount unwraps through the helper before it is ready
tnote() { echo "$*" >>"$T/notes"; }
K=$T/kmip
mkdir -m 0700 "$K"
install -m 0755 "$SRC_ROOT/scripts/kmip-provider" "$T/kmip-provider"
HELPER=$T/kmip-provider
CONF=$K/client.conf
KMIP_PID=

stop_kmip() { # stop the server we started, by its PID
	local i
	[ -n "$KMIP_PID" ] || return 0
	kill -TERM "$KMIP_PID" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$KMIP_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$KMIP_PID" 2>/dev/null && kill -KILL "$KMIP_PID" 2>/dev/null
	wait "$KMIP_PID" 2>/dev/null
	KMIP_PID=
}
trap 'rc=$?; stop_kmip; (exit $rc); cleanup' EXIT

make_certs() {
	(
		set -e
		cd "$K"
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
			-subj "/CN=ckfs test kmip ca" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign"
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		for n in server client; do
			openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj "/CN=ckfs-$n"
			openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-out $n.crt -days 2 -extfile $n.ext
		done
		chmod 0644 ca.crt server.crt client.crt
		openssl verify -CAfile ca.crt server.crt client.crt
	) >"$T/certs.log" 2>&1 || { cat "$T/certs.log"; return 1; }
}
check "CA, server and client certificates made with openssl" make_certs

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$K/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$PORT
certificate_path=$K/server.crt
key_path=$K/server.key
ca_path=$K/ca.crt
auth_suite=TLS1.2
enable_tls_client_auth=True
database_path=$K/pykmip.db
policy_path=$K/policies
logging_level=INFO
EOF
mkdir -m 0700 "$K/policies"
cat >"$CONF" <<EOF
# kmip-provider configuration (no secrets here: only file names)
[kmip]
host = 127.0.0.1
port = $PORT
ca = $K/ca.crt
client_cert = $K/client.crt
client_key = $K/client.key
timeout = 20
EOF
chmod 0644 "$CONF"

port_open() { "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT" 2>/dev/null; }
start_kmip() {
	local i
	if command -v pykmip-server >/dev/null; then
		pykmip-server -f "$K/server.conf" -l "$K/server.log" >"$K/server.out" 2>&1 &
	else
		/usr/bin/python3 -m kmip.services.server.server -f "$K/server.conf" -l "$K/server.log" >"$K/server.out" 2>&1 &
	fi
	KMIP_PID=$!
	for i in $(seq 300); do
		port_open && return 0
		kill -0 "$KMIP_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "PyKMIP server did not come up on 127.0.0.1:$PORT"
	tail -n 20 "$K/server.out" "$K/server.log" 2>/dev/null
	return 1
}
if start_kmip >"$T/start.out" 2>&1; then
	ok "PyKMIP server (pid $KMIP_PID) listens on 127.0.0.1:$PORT (TLS 1.2, client certificates)"
else
	notok "PyKMIP server starts"; diag <"$T/start.out"
	summary; exit 1
fi

t_create=$(date +%s.%N)
UID1=$("$HELPER" --create "$CONF" ckfs-depK 2>"$T/create.err") &&
UID2=$("$HELPER" --create "$CONF" ckfs-depS 2>>"$T/create.err")
if [ -n "${UID1:-}" ] && [ -n "${UID2:-}" ] && [ "$UID1" != "$UID2" ]; then
	ok "kmip-provider --create: two AES-256 keys on the server (uids $UID1, $UID2; $(elapsed "$t_create") s)"
else
	notok "kmip-provider --create makes two keys"; diag <"$T/create.err"
	summary; exit 1
fi

# req UID VERB [PAYLOAD]: one request to the helper, as ckfs makes it
# (clean environment, / as working directory).
req() {
	local uid=$1; shift
	printf 'ckfs-keyhelper 1\n%s\n' "$*" | (cd / && env -i PATH=/usr/bin:/bin "$HELPER" "$CONF" "$uid")
}
KEY_B64=$(head -c 32 /dev/urandom | base64 -w0)
t_probe=$(date +%s.%N)
sh_check "by hand: probe of key $UID1 answers ok" '[ "$(req "$UID1" probe)" = ok ]'
PROBE_S=$(elapsed "$t_probe")
MARGIN=$("$PY" -c 'import math, sys; print(max(30, math.ceil(8 * float(sys.argv[1]))))' "$PROBE_S")
echo "# one helper probe: $PROBE_S s; revocation margin $MARGIN s"
tnote "one kmip-provider probe (python + PyKMIP + TLS + GetAttributes): $PROBE_S s"
sh_check "by hand: wrap then unwrap gives the key back; the wrap is not the key" '
w=$(req "$UID1" wrap "$KEY_B64"); echo "$w" | cut -c1-12; case $w in "ok "*) ;; *) exit 1;; esac
echo "${w#ok }" >"$T/wrap1"; [ "${w#ok }" != "$KEY_B64" ] &&
u=$(req "$UID1" unwrap "${w#ok }"); [ "$u" = "ok $KEY_B64" ]'
sh_check "by hand: a wrap of key $UID1 under key $UID2 is unavailable (not denied)" '
a=$(req "$UID2" unwrap "$(cat "$T/wrap1")"); echo "$a"; case $a in "unavailable "*) ;; *) exit 1;; esac'
sh_check "by hand: an unknown protocol version and a missing config are unavailable" '
a=$(printf "ckfs-keyhelper 2\nprobe\n" | "$HELPER" "$CONF" "$UID1"); echo "$a"; case $a in "unavailable "*) ;; *) exit 1;; esac
a=$(printf "ckfs-keyhelper 1\nprobe\n" | "$HELPER" "$K/missing.conf" "$UID1"); echo "$a"; case $a in "unavailable "*) ;; *) exit 1;; esac'
sh_check "by hand: the config names no secret, the client key is 0600 and the helper refuses it group-readable" '
! grep -q "PRIVATE KEY" "$CONF" && [ "$(stat -c %a "$K/client.key")" = 600 ] &&
chmod 0640 "$K/client.key" && a=$(req "$UID1" probe); chmod 0600 "$K/client.key"; echo "$a"
case $a in "unavailable "*chmod*) ;; *) exit 1;; esac'

# ------------------------------------------------------------ DEPs on KMIP keys
check "ck-mkfs" mkfs_ckfs "$VOL"
URI1="exec:$HELPER?timeout=30 $CONF $UID1"
URI2="exec:$HELPER?timeout=30 $CONF $UID2"
check "ck-dep create depK and depS, each with a KMIP customer key (exec:kmip-provider)" sh -c '
"$CKDEP" "$1" create depK --customer-key "$2" >/dev/null && "$CKDEP" "$1" create depS --customer-key "$3" >/dev/null' \
	_ "$VOL" "$URI1" "$URI2"
sh_check "ck-dep show: depK's customer key is the exec: URI of the helper; no secret in it" '
"$CKDEP" "$VOL" show depK --json | "$PY" -c "
import json, sys
k = [k for k in json.load(sys.stdin)[\"keys\"] if k[\"role\"] == \"customer\"]
print(k); assert len(k) == 1 and k[0][\"uri\"] == sys.argv[1]" "$URI1"'
check "assign mail/k to depK, mail/s to depS" sh -c '"$CKASSIGN" "$1" mail/k depK && "$CKASSIGN" "$1" mail/s depS' _ "$VOL"

t_mount=$(date +%s.%N)
mount_check "mount with -o key_ttl=$KEY_TTL (tree keys unwrapped through KMIP Decrypt)" "$VOL" "$MNT" -o key_ttl=$KEY_TTL
echo "# mount ready after $(elapsed "$t_mount") s"
fill() {
	local d
	for d in k s; do
		mkdir -p "$MNT/mail/$d/sub" && head -c 300000 /dev/urandom >"$T/$d.ref" &&
			cp "$T/$d.ref" "$MNT/mail/$d/data" && echo "small $d" >"$MNT/mail/$d/sub/small" || return 1
	done
	mkdir -p "$MNT/docs" && head -c 100000 /dev/urandom >"$T/docs.ref" && cp "$T/docs.ref" "$MNT/docs/data" && sync
}
check "write files in mail/k, mail/s and the service tree" fill
sh_check "everything reads back (and the backing store holds no plaintext name)" '
cmp "$T/k.ref" "$MNT/mail/k/data" && cmp "$T/s.ref" "$MNT/mail/s/data" && cmp "$T/docs.ref" "$MNT/docs/data" &&
grep -qx "small k" "$MNT/mail/k/sub/small" && ! find "$VOL" -name "small*" | grep -q .'
sh_check "ck-dep status: depK's KMIP key answers ok" '
"$CKDEP" "$VOL" status depK --json | tee "$T/status.json" | "$PY" -c "
import json, sys
keys = [k for d in json.load(sys.stdin)[\"deps\"] for k in d[\"keys\"] if k[\"uri\"] == sys.argv[1]]
print(keys); assert len(keys) == 1 and keys[0][\"result\"] == \"ok\"" "$URI1"'

# ------------------------------------------------------------ customer-side revocation on the KMIP server
# t0: when the key is gone on the server (the destroy command returned).
check "the customer revokes and destroys depK's key on the KMIP server" "$HELPER" --destroy "$CONF" "$UID1"
date +%s.%N >"$T/t0"
sh_check "the helper now answers denied for key $UID1" 'a=$(req "$UID1" probe); echo "$a"; case $a in "denied "*) ;; *) exit 1;; esac'
py_check "mail/k fails with EKEYREVOKED within key_ttl + $MARGIN s" "
t0 = float(open(os.path.join(T, 't0')).read())
lat = wait_errno(mp('mail', 'k', 'data'), (errno.EKEYREVOKED,), timeout=$KEY_TTL + $MARGIN + 5, t0=t0, step=0.05)
print('revoked %.3f s after the key was destroyed' % lat)
note('customer-side revocation through KMIP (key_ttl=$KEY_TTL): %.3f s after the key was destroyed (bound: key_ttl + $MARGIN s)' % lat)
assert lat <= $KEY_TTL + $MARGIN, 'slower than key_ttl + margin'
expect_errno(errno.EKEYREVOKED, os.listdir, mp('mail', 'k'))
expect_errno(errno.EKEYREVOKED, read_file, mp('mail', 'k', 'sub', 'small'))
expect_errno(errno.EKEYREVOKED, os.open, mp('mail', 'k', 'new'), os.O_CREAT | os.O_WRONLY, 0o644)"
sh_check "depS and the service tree still read back" 'cmp "$T/s.ref" "$MNT/mail/s/data" && cmp "$T/docs.ref" "$MNT/docs/data"'
sh_check "show --json: depK revoked, depS active" '[ "$(dep_state "$VOL" depK)" = revoked ] && [ "$(dep_state "$VOL" depS)" = active ]'
sh_check "the audit log records depK revoked by the probe" '"$CKDEP" "$VOL" audit | grep -E "revoked.*dep=$(dep_re "$VOL" depK).*actor=probe"'
check "daemon still running" daemon_alive "$MNT"

# ------------------------------------------------------------ KMIP server outage
unavail() { "$CKDEP" "$VOL" audit --json | "$PY" -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["event"] == sys.argv[1] and r["dep"] in sys.argv[2:]))' "$1" depS "dep:$(dep_field "$VOL" depS id)"; }
U0=$(unavail customer-keys-unavailable)
FB0=$(unavail availability-key-fallback)
KPID=$KMIP_PID
stop_kmip
sh_check "the KMIP server (pid $KPID) is stopped and its port closed" '! kill -0 "$KPID" 2>/dev/null && ! port_open'
sh_check "the helper answers unavailable (not denied) while the server is down" '
a=$(req "$UID2" probe); echo "$a"; case $a in "unavailable "*) ;; *) exit 1;; esac'
sh_check "the running mount keeps serving depS; its probe audits customer-keys-unavailable" '
for i in $(seq $((KEY_TTL + MARGIN))); do
	n=$(unavail customer-keys-unavailable); [ "$n" -gt "$U0" ] && break; sleep 1
done
echo "customer-keys-unavailable records: $U0 -> $n"; [ "$n" -gt "$U0" ] &&
cmp "$T/s.ref" "$MNT/mail/s/data" && echo during-outage >"$MNT/mail/s/outage1"'
umount_check "unmount" "$MNT"
mount_check "mount again while the KMIP server is down" "$VOL" "$MNT" -o key_ttl=$KEY_TTL
sh_check "depS is served through its availability key (data and writes work)" '
cmp "$T/s.ref" "$MNT/mail/s/data" && grep -qx during-outage "$MNT/mail/s/outage1" &&
echo during-outage2 >"$MNT/mail/s/outage2" && grep -qx during-outage2 "$MNT/mail/s/outage2"'
sh_check "the audit log has an availability-key-fallback record for depS" '
n=$(unavail availability-key-fallback); echo "fallback records: $FB0 -> $n"; [ "$n" -gt "$FB0" ]'
sh_check "the daemon logged a warning about the fallback, with the KMIP failure" '
grep -i "availability" "$LAST_LOG" && grep -i "kmip server 127.0.0.1:$PORT" "$LAST_LOG"'
py_check "mail/k stays revoked (EKEYREVOKED); the availability key is not used for it" "
expect_errno(errno.EKEYREVOKED, read_file, mp('mail', 'k', 'data'))"
sh_check "no availability-key fallback for depK" '
n=$("$CKDEP" "$VOL" audit --json | "$PY" -c "
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r[\"event\"] == \"availability-key-fallback\" and r[\"dep\"] in sys.argv[1:]))" depK "dep:$(dep_field "$VOL" depK id)")
[ "$n" -eq 0 ]'
check "the service tree reads back" cmp "$T/docs.ref" "$MNT/docs/data"
umount_check "unmount" "$MNT"
summary
