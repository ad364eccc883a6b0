#!/bin/bash
# ck-mkfs refusals and options, ckfs --help/--version, key directory modes,
# clean daemon shutdown (SIGTERM, SIGINT, fusermount3 -u) with data flushed,
# daemon mode returning only once mounted (or failing with the reason), ro.
. "$(dirname "$0")/lib.sh"

# one_line_failure CMD...: exits non-zero (no signal) with exactly one
# non-empty line on stderr.
one_line_failure() {
	local rc lines
	"$@" >"$T/olf.out" 2>"$T/olf.err"; rc=$?
	lines=$(grep -c . "$T/olf.err")
	echo "exit $rc; stderr ($lines lines):"; cat "$T/olf.err"
	[ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ]
}
snapshot() { find "$1" -printf '%p %m %s\n' 2>/dev/null | sort; find "$1" -type f -exec sha256sum {} + 2>/dev/null | sort; }

# ------------------------------------------------------------ --help, --version
sh_check "ck-mkfs --help exits 0 and shows usage" '"$MKFS" --help | grep -i usage'
sh_check "ck-mkfs --version exits 0 and prints a version" '"$MKFS" --version | grep -E "[0-9]+\.[0-9]+"'
sh_check "ckfs --help exits 0 and shows usage" '"$CKFS" --help 2>&1 | grep -i usage'
sh_check "ckfs --version exits 0 and prints a version" '"$CKFS" --version 2>&1 | grep -E "[0-9]+\.[0-9]+"'

# ------------------------------------------------------------ ck-mkfs
check "ck-mkfs makes a volume in a new directory" "$MKFS" "$VOL"
sh_check "key directory is 0700 and key files 0600" '
[ "$(stat -c %a "$KEYS")" = 700 ] && n=$(find "$KEYS" -type f | wc -l) && [ "$n" -ge 1 ] &&
[ -z "$(find "$KEYS" -type f ! -perm 0600)" ]'
sh_check "ck-mkfs creates a missing key directory 0700 with 0600 key files" '
CKFS_KEY_DIR=$T/newkeys "$MKFS" "$T/volnk" >/dev/null &&
[ "$(stat -c %a "$T/newkeys")" = 700 ] && [ -n "$(find "$T/newkeys" -type f)" ] &&
[ -z "$(find "$T/newkeys" -type f ! -perm 0600)" ]'

mkdir "$T/nonempty"; echo data >"$T/nonempty/file"
check "ck-mkfs refuses a non-empty directory (one-line message)" one_line_failure "$MKFS" "$T/nonempty"
sh_check "the non-empty directory was left alone" '[ "$(ls -A "$T/nonempty")" = file ] && [ "$(cat "$T/nonempty/file")" = data ]'

snapshot "$KEYS" >"$T/keys.before"; snapshot "$VOL" >"$T/vol.before"
check "ck-mkfs refuses an existing volume (one-line message)" one_line_failure "$MKFS" "$VOL"
sh_check "the existing volume and its keys are unchanged" '
diff "$T/keys.before" <(snapshot "$KEYS") && diff "$T/vol.before" <(snapshot "$VOL")'

mkdir -m 0777 "$T/badkeys"; chmod 0777 "$T/badkeys"
check "ck-mkfs refuses a key directory with mode 0777 (one-line message)" \
	one_line_failure env CKFS_KEY_DIR="$T/badkeys" "$MKFS" "$T/volbad"
sh_check "no key was written to the unsafe key directory" '[ -z "$(ls -A "$T/badkeys")" ]'
echo x >"$T/regular"
check "ck-mkfs refuses a regular file as the volume (one-line message)" one_line_failure "$MKFS" "$T/regular"
check "ck-mkfs refuses a path under a regular file (one-line message)" one_line_failure "$MKFS" "$T/regular/vol"

sh_check "ck-mkfs --key-dir DIR and ckfs -o key_dir=DIR work without CKFS_KEY_DIR" '
mkdir -m 0700 "$T/k3" &&
env -u CKFS_KEY_DIR "$MKFS" --key-dir "$T/k3" "$T/vol3" >/dev/null &&
[ -n "$(find "$T/k3" -type f)" ] &&
mkdir -p "$T/mnt3" &&
{ env -u CKFS_KEY_DIR "$CKFS" -o "key_dir=$T/k3" "$T/vol3" "$T/mnt3"; rc=$?; mountpoint -q "$T/mnt3"; } &&
echo hello >"$T/mnt3/f" && [ "$(cat "$T/mnt3/f")" = hello ] &&
fusermount3 -u "$T/mnt3"'
EXTRA_MOUNTS+=("$T/mnt3")

# ------------------------------------------------------------ shutdown
# shutdown_by HOW: mount -f, write (no fsync), stop the daemon, check exit 0,
# mount gone, data there after remount.
shutdown_by() {
	local how=$1 pid rc i
	mount_ckfs "$VOL" "$MNT" || return 1
	pid=$LAST_PID
	head -c 300000 /dev/urandom >"$T/data.$how"
	cp "$T/data.$how" "$MNT/written-before-$how"
	case $how in
	TERM|INT) kill -"$how" "$pid" ;;
	umount) fusermount3 -u "$MNT" ;;
	esac
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then echo "daemon did not exit within 10 s"; umount_ckfs "$MNT"; return 1; fi
	wait "$pid"; rc=$?
	unset "MOUNT_PID[$MNT]"
	echo $rc >"$T/rc.$how"
	echo "daemon exit status $rc"; tail -n 3 "$LAST_LOG"
	if mountpoint -q "$MNT"; then echo "still mounted"; fusermount3 -uz "$MNT"; return 1; fi
	mount_ckfs "$VOL" "$MNT" || return 1
	cmp "$T/data.$how" "$MNT/written-before-$how"; rc=$?
	umount_ckfs "$MNT"
	return $rc
}
exit_status() { local rc; rc=$(cat "$T/rc.$1" 2>/dev/null); echo "daemon exit status: ${rc:-unknown}"; [ "$rc" = 0 ]; }
check "SIGTERM: the daemon unmounts, written data survives" shutdown_by TERM
check "SIGTERM: the daemon exits 0" exit_status TERM
check "SIGINT: the daemon unmounts, written data survives" shutdown_by INT
check "SIGINT: the daemon exits 0" exit_status INT
check "fusermount3 -u: the daemon unmounts, written data survives" shutdown_by umount
check "fusermount3 -u: the daemon exits 0" exit_status umount

# ------------------------------------------------------------ daemon mode
daemon_pids() { # PIDs of ckfs processes serving $1 (read-only look-up)
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF " $1" &&
			[ "$(readlink "$p/exe" 2>/dev/null)" = "$(readlink -f "$CKFS")" ] && echo "${p#/proc/}"
	done
}
daemon_mode() {
	local rc pids i
	EXTRA_MOUNTS+=("$MNT")
	"$CKFS" "$VOL" "$MNT"; rc=$?
	mountpoint -q "$MNT" || { echo "ckfs returned $rc but $MNT is not mounted yet"; return 1; }
	[ $rc -eq 0 ] || { echo "ckfs returned $rc"; return 1; }
	echo "daemon mode" >"$MNT/dm" && [ "$(cat "$MNT/dm")" = "daemon mode" ] || return 1
	pids=$(daemon_pids "$MNT")
	echo "daemon pid(s): $pids"
	[ -n "$pids" ] || { echo "no daemon process found"; return 1; }
	fusermount3 -u "$MNT" || return 1
	for i in $(seq 100); do
		[ -z "$(daemon_pids "$MNT")" ] && return 0
		sleep 0.1
	done
	echo "daemon still running 10 s after fusermount3 -u: $(daemon_pids "$MNT")"
	return 1
}
check "daemon mode returns only once mounted, and exits after fusermount3 -u" daemon_mode

mkdir -p "$T/plain"
daemon_mode_fails() {
	local rc
	"$CKFS" "$T/plain" "$MNT" 2>"$T/dmf.err"; rc=$?
	echo "exit $rc:"; cat "$T/dmf.err"
	if mountpoint -q "$MNT"; then fusermount3 -u "$MNT"; echo "it mounted"; return 1; fi
	[ $rc -ne 0 ] && [ -s "$T/dmf.err" ]
}
check "daemon mode on a plain directory fails with the reason (exit status and stderr)" daemon_mode_fails

# ------------------------------------------------------------ ro
ro_mount() {
	mount_ckfs "$VOL" "$MNT" -o ro || return 1
	local rc=0
	cmp "$T/data.TERM" "$MNT/written-before-TERM" || rc=1
	if echo x 2>"$T/ro.err" >"$MNT/new-file"; then echo "write on ro mount succeeded"; rc=1; fi
	grep -q "Read-only file system" "$T/ro.err" || { cat "$T/ro.err"; rc=1; }
	umount_ckfs "$MNT" || rc=1
	return $rc
}
check "-o ro: reads work, writes fail with EROFS" ro_mount
summary
