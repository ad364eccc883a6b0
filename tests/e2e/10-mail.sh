#!/bin/bash
# A mail store end to end: a private Dovecot (IMAP + LMTP on 127.0.0.1,
# passwd-file users) with its Maildir homes on a ckfs mount:
#   mail/alice, mail/bob  under DEP "contoso"
#   mail/carol            under DEP "fabrikam"
#   mail/, spool/         under the service key (spool/ is Dovecot's
#                         mail_temp_dir; Dovecot's index files stay in
#                         each Maildir, under the mailbox's DEP)
#  - LMTP delivery of N (500) messages of 1 KB to 4 MB per user to all
#    three users at once, then IMAP (python3 imaplib): LIST, CREATE,
#    SELECT, SEARCH, FETCH of every body compared byte for byte with what
#    was sent, STORE, COPY, EXPUNGE; a new login after a remount sees the
#    same state.
#  - the customer of "fabrikam" takes their keys away (deletes the file:
#    key files): carol's open session, new logins and deliveries fail
#    within key_ttl + margin, with an answer, while alice and bob keep
#    receiving and reading mail with no error; then the purge path
#    (--purge-wait set at ck-mkfs time): carol's Maildir is gone from the
#    backing, the certificate verifies, alice and bob read everything.
#  - messages/s delivered and fetched on ckfs and, with the same Dovecot
#    config, on a plain directory next to the backing (printed only).
# Budget: about 3-6 minutes on 2 cores. CK_MAIL_N=100 for a quick run.
. "$(dirname "$0")/../integration/lib.sh"

for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
. "$SRC_ROOT/scripts/lib.sh"
if ! (ck_install_packages dovecot-imapd dovecot-lmtpd) >"$T/apt.log" 2>&1; then
	skip_all "dovecot-imapd and dovecot-lmtpd cannot be installed: $(tail -n 1 "$T/apt.log")"
fi
DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
[ -x "$DOVECOT" ] && [ -x /usr/lib/dovecot/lmtp ] && [ -x /usr/lib/dovecot/imap ] ||
	skip_all "dovecot, its imap or lmtp binary is missing after installing dovecot-imapd dovecot-lmtpd"
id dovecot >/dev/null 2>&1 && id dovenull >/dev/null 2>&1 ||
	skip_all "the dovecot and dovenull system users (made by dovecot-core) are missing"

N=${CK_MAIL_N:-500}       # messages per user
SHARED=10                 # messages to all three users in one LMTP transaction each
KEY_TTL=3
MARGIN=5                  # carol fails within key_ttl + MARGIN seconds
PURGE_WAIT=5
MAILPY=$T/mail.py
cp "$(dirname "$0")/mail/mail.py" "$MAILPY"
tnote() { echo "$*" >>"$T/notes"; }
declare -A UID_OF=([alice]=5001 [bob]=5002 [carol]=5003)
MAIL_GID=5000

# results FILE: "RESULT ok|fail name: detail" lines -> TAP; others as comments.
results() {
	local line
	while IFS= read -r line; do
		case $line in
		"RESULT ok "*) ok "${line#RESULT ok }" ;;
		"RESULT fail "*) notok "${line#RESULT fail }" ;;
		"# "*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done <"$1"
}
# mailpy CMD ARGS...: run mail.py, its results as TAP lines; returns its status.
mailpy() {
	local out=$T/mailpy.$1.$RANDOM rc
	"$PY" "$MAILPY" "$@" >"$out" 2>&1; rc=$?
	results "$out"
	grep '^RATE ' "$out" >>"$T/rates"
	[ $rc -eq 0 ] || { echo "mail.py $1 exited $rc" | diag; grep -v '^RESULT\|^RATE\|^#' "$out" | tail -n 20 | diag; }
	return $rc
}
# free_ports: two distinct free TCP ports on 127.0.0.1.
free_ports() {
	"$PY" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
}

# ------------------------------------------------------------ Dovecot
# dovecot_conf NAME ROOT: a private config in $T/NAME for homes ROOT/mail/<user>.
dovecot_conf() {
	local d=$T/$1 root=$2 u ports
	mkdir -p "$d"
	ports=$(free_ports) || return 1
	: >"$d/users"
	for u in alice bob carol; do
		echo "$u:{PLAIN}pw-$u:${UID_OF[$u]}:$MAIL_GID::$root/mail/$u::" >>"$d/users"
	done
	chown root:dovecot "$d/users" && chmod 0640 "$d/users"
	cat >"$d/dovecot.conf" <<EOF
# A private Dovecot for $TEST_NAME: loopback only, its own base_dir.
instance_name = ckfs-$TEST_NAME-$1-$$
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
# Plaintext logins only on secured connections; without TLS those are the
# ones from this host's own address (127.0.0.1 -> 127.0.0.1).
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_username_format = %Ln
first_valid_uid = 5000
first_valid_gid = $MAIL_GID
mail_location = maildir:~
mail_temp_dir = $root/spool
lmtp_add_received_header = no
lmtp_hdr_delivery_address = none
# Read index files with read(), not mmap(): when a mailbox's DEP is revoked
# its files fail with EKEYREVOKED, which read() turns into an IMAP error
# but a mapped page turns into SIGBUS (the imap process dies, the client
# sees the connection drop). Dovecot advises the same for NFS.
mmap_disable = yes
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/users
}
userdb {
  driver = passwd-file
  args = $d/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${ports% *}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${ports#* }
  }
}
EOF
	mkdir -p "$root/mail" "$root/spool" && chmod 1777 "$root/spool" || return 1
	for u in alice bob carol; do
		[ -d "$root/mail/$u" ] || { mkdir -m 0700 "$root/mail/$u" && chown "${UID_OF[$u]}:$MAIL_GID" "$root/mail/$u"; } || return 1
	done
}
port_of() { # port_of NAME imap|lmtp
	sed -n "/inet_listener $2 {/,/}/s/^ *port = \([0-9]*\)/\1/p" "$T/$1/dovecot.conf"
}
DV_PID=
DV_NAME=
# start_dovecot NAME: `dovecot -F` in the background; waits for IMAP's greeting.
start_dovecot() {
	DV_NAME=$1
	"$DOVECOT" -c "$T/$1/dovecot.conf" -F >"$T/$1/master.out" 2>&1 &
	DV_PID=$!
	IMAP=$(port_of "$1" imap); LMTP=$(port_of "$1" lmtp)
	"$PY" - "$IMAP" "$LMTP" <<'EOF'
import socket, sys, time
deadline = time.time() + 30
for port in map(int, sys.argv[1:]):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            greeting = s.recv(200)
            s.close()
            if greeting:
                break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit("dovecot does not answer on port %d" % port)
        time.sleep(0.1)
EOF
	[ $? -eq 0 ] && sleep 0.2 && kill -0 "$DV_PID" 2>/dev/null && return 0
	echo "dovecot did not start (or another one answers on its ports)"
	stop_dovecot
	return 1
}
# stop_dovecot: SIGTERM to the master we started, which stops its
# children; passes when the master and every child it had are gone
# within 20 s (so that nothing of it is left in the mount).
stop_dovecot() {
	local i kids p left
	[ -n "$DV_PID" ] || return 0
	kids=$(pgrep -P "$DV_PID" | tr '\n' ' ')
	kill "$DV_PID" 2>/dev/null
	for i in $(seq 200); do
		left=
		for p in $DV_PID $kids; do running "$p" && left="$left $p"; done
		[ -z "$left" ] && break
		sleep 0.1
	done
	wait "$DV_PID" 2>/dev/null
	DV_PID=
	if [ -n "$left" ]; then
		echo "dovecot processes$left still running after 20 s; killing them" >&2
		kill -9 $left 2>/dev/null
		return 1
	fi
	return 0
}
# running PID: the process exists and is not a zombie.
running() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
# dovecot_check "name" NAME|stop: start_dovecot NAME or stop_dovecot in this
# shell (not in check's subshell, which would lose DV_PID), as one TAP line.
dovecot_check() {
	local name=$1 rc
	if [ "$2" = stop ]; then stop_dovecot >"$T/dv.err" 2>&1; else start_dovecot "$2" >"$T/dv.err" 2>&1; fi
	rc=$?
	if [ $rc -eq 0 ]; then ok "$name"; return 0; fi
	notok "$name"
	{ cat "$T/dv.err"; [ "$2" = stop ] || tail -n 20 "$T/$2/master.out" "$T/$2/dovecot.log"; } 2>/dev/null | diag
	return $rc
}
trap 'rc=$?; [ -n "$DV_PID" ] && stop_dovecot >/dev/null 2>&1; (exit $rc); cleanup' EXIT
# dovecot_errors WHO: Error/Panic/Fatal lines of the running Dovecot's log for WHO (a regex).
dovecot_errors() { grep -E "(Error|Panic|Fatal)" "$T/$DV_NAME/dovecot.log" | grep -E "$1"; }

# ------------------------------------------------------------ volume, DEPs, trees
check "ck-mkfs --purge-wait ${PURGE_WAIT}s" "$MKFS" --purge-wait ${PURGE_WAIT}s "$VOL"
sh_check "DEPs contoso and fabrikam, each on two file: customer keys in the customer's own key directory" '
mkdir -m 0700 "$T/customer-contoso" "$T/customer-fabrikam" &&
for d in contoso fabrikam; do
	"$CKDEP" "$VOL" create $d --customer-key "file:$T/customer-$d/1.key" \
		--customer-key "file:$T/customer-$d/2.key" >/dev/null || exit 1
done
ls -l "$T"/customer-*/'
sh_check "ck-assign mail/alice and mail/bob to contoso, mail/carol to fabrikam" '
"$CKASSIGN" "$VOL" mail/alice contoso && "$CKASSIGN" "$VOL" mail/bob contoso && "$CKASSIGN" "$VOL" mail/carol fabrikam'
mount_check "mount -o allow_other,key_ttl=$KEY_TTL" "$VOL" "$MNT" -o allow_other,key_ttl=$KEY_TTL || { summary; exit 1; }
check "Dovecot config (private base_dir, passwd-file users, homes on the mount)" dovecot_conf dv "$MNT"
dovecot_check "start Dovecot (dovecot -F, IMAP and LMTP on 127.0.0.1)" dv || { summary; exit 1; }
IMAP=$(port_of dv imap); LMTP=$(port_of dv lmtp)
echo "# dovecot $DV_PID: imap 127.0.0.1:$IMAP, lmtp 127.0.0.1:$LMTP"
sh_check "plaintext login is refused on a connection that is not from this host's own address" '
"$PY" - "$IMAP" <<EOF
import socket, sys
# Same port, but from 127.0.0.2 to 127.0.0.1: Dovecot must not offer LOGIN.
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10, source_address=("127.0.0.2", 0))
greet = s.recv(1000).decode()
print(greet.strip())
s.sendall(b"a LOGIN alice pw-alice\r\n")
ans = s.recv(1000).decode()
print(ans.strip())
assert "LOGINDISABLED" in greet and not ans.startswith("a OK"), "plaintext login accepted from 127.0.0.2"
EOF'

ST=$T/state; mkdir -p "$ST"
mailpy deliver --lmtp "$LMTP" --users alice,bob,carol --n "$N" --shared "$SHARED" --label ckfs
mailpy exercise --imap "$IMAP" --users alice,bob,carol --n "$N" --shared "$SHARED" --state "$ST" --label ckfs
check "Dovecot logged no error" sh -c "! grep -E 'Error|Panic|Fatal' '$T/dv/dovecot.log'"

# Where it all is in the backing store: every file of a Maildir (messages,
# dovecot-uidlist, index files) under its mailbox's DEP tree.
backing_dir() { find "$VOL" -xdev -inum "$(stat -c %i "$1")" -type d -print -quit; }
tree_check() { # tree_check HOME DEP: every backing file under HOME's backing dir names DEP's tree
	local b id
	b=$(backing_dir "$MNT/$1") && id=$(dep_tree_id "$VOL" "$2" "$1") && [ -n "$b" ] && [ -n "$id" ] || return 1
	"$PY" - "$b" "$id" "$N" <<'EOF'
import os, sys
root, want = sys.argv[1], sys.argv[2]
n = 0
for d, dirs, files in os.walk(root):
    for f in files:
        if f.startswith(".") and not f.startswith(".L"):    # ckfs's own: .ckfs.dir, sidecars
            continue
        with open(os.path.join(d, f), "rb") as fh:
            fh.seek(464)
            tid = fh.read(16).hex()
        assert tid == want, "%s: tree %s, want %s" % (os.path.join(d, f), tid, want)
        n += 1
print("%d backing files, all in tree %s" % (n, want))
assert n > int(sys.argv[3]), "only %d files" % n
EOF
}
check "every backing file of mail/alice (messages, uidlist, indexes) is in contoso's tree for mail/alice" tree_check mail/alice contoso
check "every backing file of mail/bob is in contoso's tree for mail/bob" tree_check mail/bob contoso
check "every backing file of mail/carol is in fabrikam's tree" tree_check mail/carol fabrikam

# ------------------------------------------------------------ remount, same state
dovecot_check "stop Dovecot" stop
umount_check "unmount" "$MNT"
mount_check "remount" "$VOL" "$MNT" -o allow_other,key_ttl=$KEY_TTL || { summary; exit 1; }
dovecot_check "start Dovecot again" dv || { summary; exit 1; }
mailpy verify --imap "$IMAP" --users alice,bob,carol --state "$ST" --label ckfs-after-remount

# ------------------------------------------------------------ the customer of fabrikam revokes
CAROL_B=$(backing_dir "$MNT/mail/carol")
CAROL_TREE=$(dep_tree_id "$VOL" fabrikam mail/carol)
echo "# mail/carol: backing $CAROL_B, tree $CAROL_TREE"
rm -f "$T/stop.steady" "$T/steady.errors" "$T/t0" "$T/t0.ready"
"$PY" "$MAILPY" steady --imap "$IMAP" --lmtp "$LMTP" --users alice,bob --state "$ST" \
	--stop "$T/stop.steady" --errors "$T/steady.errors" >"$T/steady.out" 2>&1 &
STEADY_PID=$!
"$PY" "$MAILPY" revoked --imap "$IMAP" --lmtp "$LMTP" --user carol --state "$ST" \
	--t0 "$T/t0" --ttl $KEY_TTL --margin $MARGIN >"$T/revoked.out" 2>&1 &
REVOKED_PID=$!
for i in $(seq 300); do [ -e "$T/t0.ready" ] || ! kill -0 $REVOKED_PID 2>/dev/null && break; sleep 0.1; done
sleep 2      # alice and bob under way
sh_check "the customer of fabrikam deletes both its key files (alice and bob are receiving and reading meanwhile)" '
rm -v "$T"/customer-fabrikam/*.key && date +%s.%N >"$T/t0.tmp" && mv "$T/t0.tmp" "$T/t0"'
wait $REVOKED_PID
results "$T/revoked.out"
[ -s "$ST/notes" ] && cat "$ST/notes" >>"$T/notes"
sh_check "ck-dep show: fabrikam revoked (by the mount's probe), contoso active" '
[ "$(dep_state "$VOL" fabrikam)" = revoked ] && [ "$(dep_state "$VOL" contoso)" = active ] &&
"$CKDEP" "$VOL" audit | grep -E "revoked.*dep=$(dep_re "$VOL" fabrikam).*actor=probe"'
sh_check "Dovecot reported carol's failures in its log" 'dovecot_errors "carol" | head -n 3 | cut -c1-240 | grep .'

# ------------------------------------------------------------ purge fabrikam
sh_check "ck-dep purge fabrikam --confirm fabrikam: the ${PURGE_WAIT} s waiting period starts" '
"$CKDEP" "$VOL" purge fabrikam --confirm fabrikam && [ "$(dep_state "$VOL" fabrikam)" = purge-pending ]'
check_fail "purge again at once: refused during the waiting period" "$CKDEP" "$VOL" purge fabrikam --confirm fabrikam
sleep $((PURGE_WAIT + 1))
sh_check "after it: the purge executes and prints a certificate" '
"$CKDEP" "$VOL" purge fabrikam --confirm fabrikam >"$T/fabrikam.cert" && [ -s "$T/fabrikam.cert" ] &&
[ "$(dep_state "$VOL" fabrikam)" = purged ]'
sh_check "ck-dep verify-certificate verifies it: dep fabrikam, 1 tree deleted" '
"$CKDEP" "$VOL" verify-certificate "$T/fabrikam.cert" &&
"$CKDEP" "$VOL" verify-certificate "$T/fabrikam.cert" --json | "$PY" -c "import json, sys
c = json.load(sys.stdin)[\"certificate\"]
assert c[\"dep\"] == \"fabrikam\" and c[\"trees\"] == 1, c"'
sh_check "the certificate with its DEP name edited does not verify" '
sed "s/\"dep\":\"fabrikam\"/\"dep\":\"fabrikan\"/" "$T/fabrikam.cert" >"$T/edited.cert" &&
! cmp -s "$T/fabrikam.cert" "$T/edited.cert" && ! "$CKDEP" "$VOL" verify-certificate "$T/edited.cert" 2>&1'
sh_check "carol's Maildir is gone from the backing: its directory, and every file of its tree" '
[ -n "$CAROL_B" ] && [ ! -e "$CAROL_B" ] && "$PY" - "$VOL" "$CAROL_TREE" <<EOF
import os, sys
n = 0
for d, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [x for x in dirs if x != ".ckfs"]
    for f in files:
        if f.startswith(".") and not f.startswith(".L"):
            continue
        with open(os.path.join(d, f), "rb") as fh:
            fh.seek(464)
            assert fh.read(16).hex() != sys.argv[2], "%s is in the purged tree" % os.path.join(d, f)
        n += 1
print("%d backing files left, none in tree %s" % (n, sys.argv[2]))
EOF'
sleep 2      # alice and bob after the purge
touch "$T/stop.steady"
wait $STEADY_PID
results "$T/steady.out"
sh_check "not one error for alice and bob during the revocation and purge (client side)" '
[ ! -s "$T/steady.errors" ] || { head -n 5 "$T/steady.errors"; exit 1; }'
check "Dovecot logged no error for alice or bob" sh -c "! grep -E 'Error|Panic|Fatal' '$T/dv/dovecot.log' | grep -E '\\((alice|bob)[@)]'"
mailpy verify --imap "$IMAP" --users alice,bob --state "$ST" --label ckfs-after-purge
check "daemon still running" daemon_alive "$MNT"
dovecot_check "stop Dovecot" stop
umount_check "unmount" "$MNT"
check "audit log verifies" "$CKDEP" "$VOL" audit --verify

# ------------------------------------------------------------ the same Dovecot on a plain directory
PLAIN=$T/plain
check "Dovecot config for the plain directory $PLAIN (same settings)" dovecot_conf dvplain "$PLAIN"
dovecot_check "start Dovecot on the plain directory" dvplain || { summary; exit 1; }
IMAP=$(port_of dvplain imap); LMTP=$(port_of dvplain lmtp)
PST=$T/state-plain; mkdir -p "$PST"
mailpy deliver --lmtp "$LMTP" --users alice,bob,carol --n "$N" --shared "$SHARED" --label plain
mailpy exercise --imap "$IMAP" --users alice,bob,carol --n "$N" --shared "$SHARED" --state "$PST" --label plain
mailpy verify --imap "$IMAP" --users alice,bob,carol --state "$PST" --label plain-fetch
dovecot_check "stop Dovecot (plain)" stop

# ------------------------------------------------------------ rates
rate_of() { sed -n "s/^RATE $1 $2 .*: \([0-9.]*\) msg\/s.*/\1/p" "$T/rates" | head -n 1; }
{
	echo "mail store, $N messages per user + $SHARED to all, 3 users at once (msg/s; not asserted):"
	printf '  %-28s %10s %10s\n' "" ckfs plain
	printf '  %-28s %10s %10s\n' "LMTP delivered" "$(rate_of ckfs delivered)" "$(rate_of plain delivered)"
	printf '  %-28s %10s %10s\n' "IMAP fetched (every body)" "$(rate_of ckfs-after-remount fetched)" "$(rate_of plain-fetch fetched)"
} | tee -a "$T/rates.txt" | sed 's/^/# /'
sed 's/^/# /' "$T/rates"
while IFS= read -r l; do tnote "$l"; done <"$T/rates.txt"
summary
