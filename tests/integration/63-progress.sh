#!/bin/bash
# Progress bars of the long operations (tools/common.c pbar_*): on a
# terminal (a pty from util-linux `script`), ck-assign --apply, ck-dep
# purge and ck-fsck draw a bar with a percentage, a rate and an ETA on
# stderr; without a terminal none of it appears (no carriage returns, no
# escape sequences, no rate or ETA), and the result lines are unchanged.
. "$(dirname "$0")/lib.sh"

CKFSCK=$CKFS_BUILD/ck-fsck
for b in "$CKDEP" "$CKASSIGN" "$CKFSCK"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
command -v script >/dev/null || skip_all "script (util-linux) is not installed"
N_TESTS=0 N_PASS=0 N_FAIL=0 FAILED_NAMES=()

# on_tty OUT CMD...: run CMD with a pty as its terminal, transcript in OUT.
on_tty() {
	local out=$1; shift
	script -qec "$(printf '%q ' "$@")" /dev/null </dev/null >"$out" 2>&1
}
# has_bar FILE LABEL: FILE holds LABEL's bar with a percentage, a rate and
# an ETA, and its final state at 100 %.
has_bar() {
	tr '\r' '\n' <"$1" | grep -a "^$2 \[" >"$1.bars"
	echo "$(wc -l <"$1.bars") bar states; last:"; tail -n 1 "$1.bars"
	grep -Eq "^$2 \[[#.]{24}\] +[0-9]+%  .*[0-9.]+ ?[A-Za-z]*/s  ETA [0-9]+:[0-9]{2}" "$1.bars" &&
		grep -Eq "^$2 \[#{24}\] 100%" "$1.bars"
}
# quiet FILE: no trace of a bar in FILE (stderr of a run without a tty).
quiet() {
	cat "$1"
	! grep -qa $'\r' "$1" && ! grep -qa $'\033' "$1" && ! grep -Eqa 'ETA|/s |\[[#.]{10}' "$1"
}

mkfs_ckfs "$VOL" || exit 1
"$CKDEP" "$VOL" create pdep >/dev/null
"$CKDEP" "$VOL" create qdep >/dev/null
mount_check "mount" "$VOL" "$MNT" || { summary; exit 1; }
mkdir -p "$MNT/a" "$MNT/b"
for i in $(seq 200); do
	head -c 50000 /dev/urandom >"$MNT/a/f$i"
	head -c 50000 /dev/urandom >"$MNT/b/f$i"
done
"$CKASSIGN" "$VOL" a pdep >/dev/null
"$CKASSIGN" "$VOL" b qdep >/dev/null

check "ck-assign --apply on a terminal exits 0" on_tty "$T/apply.tty" "$CKASSIGN" --apply "$VOL" a pdep
check "ck-assign --apply on a terminal: bar with rate and ETA" has_bar "$T/apply.tty" apply
sh_check "ck-assign --apply on a terminal: the result line follows the bar" 'grep -aq "re-encrypted: 200 files" "$T/apply.tty"'
check "ck-assign --apply without a terminal exits 0" sh -c '"$1" --apply "$2" b qdep >"$3.out" 2>"$3.err"' _ "$CKASSIGN" "$VOL" "$T/apply.notty"
check "ck-assign --apply without a terminal: nothing of the bar on stderr" quiet "$T/apply.notty.err"
sh_check "ck-assign --apply without a terminal: the result line on stdout" 'grep -q "re-encrypted: 200 files" "$T/apply.notty.out"'

"$CKDEP" "$VOL" revoke pdep >/dev/null
"$CKDEP" "$VOL" revoke qdep >/dev/null
umount_ckfs "$MNT"
check "ck-fsck on a terminal" on_tty "$T/fsck.tty" "$CKFSCK" "$VOL"
check "ck-fsck on a terminal: bar with rate and ETA" has_bar "$T/fsck.tty" ck-fsck
check "ck-fsck without a terminal" sh -c '"$1" "$2" >"$3.out" 2>"$3.err"' _ "$CKFSCK" "$VOL" "$T/fsck.notty"
check "ck-fsck without a terminal: nothing of the bar on stderr" quiet "$T/fsck.notty.err"
sh_check "ck-fsck without a terminal: the summary line on stdout" 'cat "$T/fsck.notty.out"; grep -q "directories, .* files" "$T/fsck.notty.out"'

check "ck-dep purge on a terminal" on_tty "$T/purge.tty" "$CKDEP" "$VOL" purge pdep --confirm pdep
check "ck-dep purge on a terminal: bar with rate and ETA" has_bar "$T/purge.tty" purge
check "ck-dep purge without a terminal" sh -c '"$1" "$2" purge qdep --confirm qdep >"$3.out" 2>"$3.err"' _ "$CKDEP" "$VOL" "$T/purge.notty"
check "ck-dep purge without a terminal: nothing of the bar on stderr" quiet "$T/purge.notty.err"
sh_check "ck-dep purge without a terminal: the certificate on stdout" 'grep -q "\"certificate\":\"ckfs purge\"" "$T/purge.notty.out"'
summary
