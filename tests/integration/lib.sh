# Shared helpers for the ckfs integration tests.  Source it from bash:
#   . "$(dirname "$0")/lib.sh"
#
# Gives: $CKFS $MKFS $FSX (binaries), $T (private temp dir, 0755), $VOL,
# $MNT, $KEYS (CKFS_KEY_DIR is exported to point at it), $PY (a python3
# every uid can run), mount helpers that always clean up (EXIT trap), and
# TAP helpers: check, check_fail, ok, notok, summary.
#
# Every mount is made with `ckfs -f` in the background; its stderr goes to
# a log file and its PID is remembered, so that a test can check that the
# daemon survived, read its log, and stop exactly what it started.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

skip_all() {
	echo "1..0 # SKIP $*"
	echo "$TEST_NAME: skipped: $*" >&2
	exit 77
}

[ "$(id -u)" = 0 ] || skip_all "needs root (mounts with allow_other, switches uids)"
[ -c /dev/fuse ] || skip_all "/dev/fuse is missing (no FUSE in this machine or container)"
command -v fusermount3 >/dev/null || skip_all "fusermount3 is not installed (apt-get install fuse3)"
command -v mountpoint >/dev/null || skip_all "mountpoint (util-linux) is not installed"

if [ -z "${CKFS_BUILD:-}" ]; then
	echo "$TEST_NAME: CKFS_BUILD is not set (meson build directory, absolute path)" >&2
	exit 2
fi
CKFS=$CKFS_BUILD/ckfs
MKFS=$CKFS_BUILD/ck-mkfs
FSX=$CKFS_BUILD/tests/integration/ck-fsx
SEEKDIR=$CKFS_BUILD/tests/integration/ck-seekdir
for b in "$CKFS" "$MKFS"; do
	if [ ! -x "$b" ]; then
		echo "$TEST_NAME: $b is not built (run ninja -C $CKFS_BUILD)" >&2
		exit 2
	fi
done

# On-disk geometry, read from the source so the tests follow the format:
# file header length, plaintext block size, sealed block size (+ nonce + tag).
SRC_ROOT=${CKFS_SRC:-$(cd "$HERE/../.." && pwd)}
fmt_define() { sed -n "s/^#define $1[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$SRC_ROOT/keys/$2" 2>/dev/null | head -n 1; }
CK_HDR=$(fmt_define CK_FILE_HDR_LEN format.h); CK_HDR=${CK_HDR:-256}
CK_BLOCK=$(fmt_define CK_BLOCK_SIZE format.h); CK_BLOCK=${CK_BLOCK:-4096}
CK_CBLOCK=$((CK_BLOCK + 12 + 16))
export CK_HDR CK_BLOCK CK_CBLOCK

# A python3 outside root's home, so that other uids can run it too.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

T=$(mktemp -d "${TMPDIR:-/tmp}/ckfs-$TEST_NAME.XXXXXX")
chmod 0755 "$T"
VOL=$T/vol
MNT=$T/mnt
KEYS=$T/keys
mkdir -p "$VOL" "$MNT"
mkdir -m 0700 "$KEYS"
export CKFS_KEY_DIR=$KEYS
export T VOL MNT KEYS
: >"$T/notes"; chmod 0666 "$T/notes"
# Python helpers, copied where every uid can read them.
cp "$HERE/ckt.py" "$T/ckt.py"
chmod 0644 "$T/ckt.py"

# ---------------------------------------------------------------- TAP
N_TESTS=0
N_PASS=0
N_FAIL=0
FAILED_NAMES=()

ok() {
	N_TESTS=$((N_TESTS + 1)); N_PASS=$((N_PASS + 1))
	echo "ok $N_TESTS - $1"
}
notok() {
	N_TESTS=$((N_TESTS + 1)); N_FAIL=$((N_FAIL + 1))
	FAILED_NAMES+=("$1")
	echo "not ok $N_TESTS - $1"
}
diag() { sed 's/^/#   /' ; }

# check "name" cmd args...: passes when cmd exits 0; on failure its output
# is shown as TAP diagnostics.
check() {
	local name=$1; shift
	local out rc
	out=$("$@" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then
		ok "$name"
	else
		notok "$name"
		echo "exit status $rc: $*" | diag
		[ -n "$out" ] && printf '%s\n' "$out" | tail -n 40 | diag
	fi
	return $rc
}
# check_fail "name" cmd...: passes when cmd exits non-zero (and not by a signal).
check_fail() {
	local name=$1; shift
	local out rc
	out=$("$@" 2>&1); rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ]; then
		ok "$name"
	else
		notok "$name"
		echo "expected a clean failure, got exit status $rc: $*" | diag
		[ -n "$out" ] && printf '%s\n' "$out" | tail -n 20 | diag
	fi
}
# sh_check "name" 'shell code': check with a bash snippet run in a subshell
# (sees every variable and function of the test).
_sh_eval() { ( set -o pipefail; eval "$1" ); }
sh_check() { check "$1" _sh_eval "$2"; }
# py "code": runs python3 with the helpers imported (from ckt import *).
py() { "$PY" -c "import sys; sys.path.insert(0, '$T'); from ckt import *; $1"; }
py_check() { check "$1" py "$2"; }

summary() {
	echo "1..$N_TESTS"
	[ -s "$T/notes" ] && sed 's/^/# note: /' "$T/notes"
	echo "# $N_PASS passed, $N_FAIL failed"
	local n
	for n in "${FAILED_NAMES[@]+"${FAILED_NAMES[@]}"}"; do echo "# failed: $n"; done
	[ "$N_FAIL" -eq 0 ]
}

# ---------------------------------------------------------------- mounts
declare -A MOUNT_PID=()   # mountpoint -> daemon PID
declare -A MOUNT_LOG=()   # mountpoint -> log file
LAST_PID=
LAST_LOG=
LOG_SEQ=0

# mkfs_ckfs VOL: makes a volume with the private key dir.
mkfs_ckfs() {
	mkdir -p "$1"
	"$MKFS" "$1" >"$T/mkfs.out" 2>&1 || { cat "$T/mkfs.out" >&2; return 1; }
}

# mount_ckfs VOL MNT [-o OPTS | other ckfs args...]: starts `ckfs -f` in the
# background, waits up to 10 s (CK_MOUNT_WAIT tenths) for the mount; sets
# LAST_PID and LAST_LOG.
mount_ckfs() {
	local vol=$1 mnt=$2; shift 2
	LOG_SEQ=$((LOG_SEQ + 1))
	local log=$T/ckfs.$LOG_SEQ.log
	mkdir -p "$mnt"
	# A background job of a non-interactive shell ignores SIGINT/SIGQUIT;
	# give the daemon default dispositions so SIGINT can be tested.
	# CKFS_TEST_OPTS: mount options added to every mount (scripts/test's
	# writeback pass runs tests with writeback_cache).
	( trap - INT QUIT; exec "$CKFS" -f ${CKFS_TEST_OPTS:+-o "$CKFS_TEST_OPTS"} "$@" "$vol" "$mnt" ) >"$log" 2>&1 &
	local pid=$!
	LAST_PID=$pid
	LAST_LOG=$log
	local i
	# CK_MOUNT_WAIT: tenths of a second to wait (slow key providers).
	for i in $(seq "${CK_MOUNT_WAIT:-100}"); do
		if mountpoint -q "$mnt"; then
			MOUNT_PID[$mnt]=$pid
			MOUNT_LOG[$mnt]=$log
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "mount_ckfs: $vol on $mnt did not come up; daemon log:" >&2
	tail -n 20 "$log" >&2
	if kill -0 "$pid" 2>/dev/null; then
		mountpoint -q "$mnt" && fusermount3 -uz "$mnt" 2>/dev/null
		kill "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 1
}

# kill_daemon MNT: kill -9 the daemon of MNT (ours), clear the dead mount.
kill_daemon() {
	local pid=${MOUNT_PID[$1]}
	kill -9 "$pid"; wait "$pid" 2>/dev/null
	fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1"
	unset "MOUNT_PID[$1]"
	! mountpoint -q "$1"
}

# daemon_alive MNT: the daemon serving MNT is still running and mounted.
daemon_alive() {
	local pid=${MOUNT_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && mountpoint -q "$1"
}

# umount_ckfs MNT: unmounts, waits for the daemon (10 s), returns its exit
# status (124 if it did not exit; it is then killed).
umount_ckfs() {
	local mnt=$1 pid=${MOUNT_PID[$1]:-} rc=0 i
	if mountpoint -q "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || {
			sleep 0.5
			fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
		}
	fi
	if [ -n "$pid" ]; then
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "umount_ckfs: daemon $pid for $mnt did not exit; killing it" >&2
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			rc=124
		else
			wait "$pid" 2>/dev/null; rc=$?
		fi
	fi
	unset "MOUNT_PID[$mnt]"
	return $rc
}

umount_all() {
	local m
	for m in "${!MOUNT_PID[@]}"; do umount_ckfs "$m" >/dev/null 2>&1; done
	# Mounts made by other means (daemon mode) registered in EXTRA_MOUNTS.
	for m in "${EXTRA_MOUNTS[@]+"${EXTRA_MOUNTS[@]}"}"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; }
	done
}
EXTRA_MOUNTS=()

cleanup() {
	local rc=$?
	umount_all
	if [ -n "${KEEP_TMP:-}" ] || { [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -n "${KEEP_TMP_ON_FAIL:-}" ]; }; then
		echo "# temp dir kept: $T" >&2
	else
		# Never recurse into a live mount.
		if ! grep -qF " $T/" /proc/mounts; then rm -rf "$T"; fi
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# show_log MNT: the daemon's log, as TAP diagnostics.
show_log() { tail -n "${2:-20}" "${MOUNT_LOG[$1]:-$LAST_LOG}" | diag; }

# ---------------------------------------------------------------- backing
# backing_of PLAINPATH VOL: the backing file of a file on the mount.  ckfs
# reports the backing inode as st_ino, so this is inode-exact.
backing_of() {
	local ino
	ino=$(stat -c %i "$1") || return 1
	find "$2" -xdev -inum "$ino" -type f -print -quit
}

# as_user UID[:GID[:GROUPS]] cmd...: runs cmd with that uid/gid and no
# other supplementary groups (or the listed ones).
as_user() {
	local spec=$1; shift
	local uid=${spec%%:*} rest gid groups
	rest=${spec#"$uid"}; rest=${rest#:}
	gid=${rest%%:*}; [ -n "$gid" ] || gid=$uid
	groups=${rest#"$gid"}; groups=${groups#:}
	if [ -n "$groups" ]; then
		setpriv --reuid="$uid" --regid="$gid" --groups="$groups" -- "$@"
	else
		setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
	fi
}
# py_as UID[:GID[:GROUPS]] "code"
py_as() {
	local u=$1; shift
	as_user "$u" "$PY" -c "import sys; sys.path.insert(0, '$T'); from ckt import *; $1"
}

# ---------------------------------------------------------------- DEPs
# For the DEP tests (45-48): the tools, and small readers of their --json.
CKDEP=$CKFS_BUILD/ck-dep
CKASSIGN=$CKFS_BUILD/ck-assign
export CKDEP CKASSIGN
# Background loops (ckt.stopped) end when this script does.
export CK_TEST_PID=$$

# dep_field VOL NAME FIELD: a top-level field of `ck-dep VOL show NAME --json`.
dep_field() {
	"$CKDEP" "$1" show "$2" --json 2>/dev/null |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$3"
}
dep_state() { dep_field "$1" "$2" state; }
# dep_tree_id VOL NAME PATH: the tree ID (hex) of PATH under DEP NAME.
dep_tree_id() {
	"$CKDEP" "$1" show "$2" --json 2>/dev/null | "$PY" -c '
import json, sys
for t in json.load(sys.stdin)["trees"]:
    if t["path"] == sys.argv[1] and t["state"] != "retired":
        print(t["id"])' "$3"
}
# dep_tree_state VOL NAME PATH
dep_tree_state() {
	"$CKDEP" "$1" show "$2" --json 2>/dev/null | "$PY" -c '
import json, sys
s = [t["state"] for t in json.load(sys.stdin)["trees"] if t["path"] == sys.argv[1]]
print(s[-1] if s else "none")' "$3"
}
# file_tree_id BACKINGFILE: the tree ID (hex) in a backing file's header.
file_tree_id() { od -An -tx1 -j 464 -N 16 "$1" | tr -d ' \n'; echo; }
# one_line_error CMD...: CMD fails (exit 1..127) with exactly one non-empty
# line on stderr, "PROG: message" with a lower-case start. Prints it.
one_line_error() {
	local rc lines
	"$@" >"$T/ole.out" 2>"$T/ole.err"; rc=$?
	lines=$(grep -c . "$T/ole.err")
	echo "exit $rc; stderr ($lines lines):"; cat "$T/ole.err"
	[ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] &&
		grep -qE '^[a-z-]+: [a-z"/]' "$T/ole.err"
}
# elapsed T0: seconds since T0 (a `date +%s.%N` value), 3 decimals.
elapsed() { "$PY" -c 'import sys,time; print("%.3f" % (time.time() - float(sys.argv[1])))' "$1"; }
# mount_check "name" VOL MNT [ckfs args]: mount_ckfs in this shell (not in
# check's subshell, so that umount_ckfs knows the daemon), as one TAP line.
mount_check() {
	local name=$1; shift
	if mount_ckfs "$@" 2>"$T/mount.err"; then ok "$name"; else notok "$name"; diag <"$T/mount.err"; return 1; fi
}
# umount_check "name" MNT: unmount in this shell; passes when the daemon
# exits 0.
umount_check() {
	local name=$1 rc
	umount_ckfs "$2"; rc=$?
	if [ $rc -eq 0 ]; then ok "$name"; else notok "$name"; echo "daemon exit status $rc" | diag; show_log "$2"; fi
	return $rc
}
# dep_re VOL NAME: a regex matching how the audit log names the DEP (its
# name, or dep:<hex ID>).
dep_re() { printf '(%s|dep:%s)' "$2" "$(dep_field "$1" "$2" id)"; }
