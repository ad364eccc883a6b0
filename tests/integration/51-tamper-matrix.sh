#!/bin/bash
# The tamper matrix: one table of attacks on a volume's backing store
# (tampermatrix.py), one TAP line each. A bit flip in every field of every
# on-disk structure (volume header, file header incl. bindings, size box,
# tree ID and MAC, block nonce/ciphertext/tag, .ckfs.dir, encrypted names,
# long-name sidecars, symlink targets, xattrs), blocks swapped within and
# between files, files swapped within and between directories and between
# a DEP tree and the service tree, truncation at and off block boundaries,
# appended garbage, header rollback, DEP and tree record edits, audit log
# edits. Each must be detected (EIO or a clear refusal, plus a line in the
# daemon's log) and never yield wrong plaintext; bytes after the sealed
# size are ignored and logged (by design); a rolled-back header whose
# final block is unchanged reads the old size (documented limitation).
. "$(dirname "$0")/lib.sh"

for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
"$PY" -c 'import cryptography' 2>/dev/null || {
	. "$SRC_ROOT/scripts/lib.sh" && ck_install_packages python3-cryptography >/dev/null 2>&1
	"$PY" -c 'import cryptography' 2>/dev/null || skip_all "python3-cryptography is not installed"
}
export CKFS_BUILD
TM=$HERE/tampermatrix.py
STATE=$T/state.json

# Turn PASS/FAIL lines of tampermatrix.py into TAP.
tap() {
	local line st= name= d=()
	flush() {
		[ -n "$name" ] || return 0
		if [ "$st" = PASS ]; then ok "$name"; else notok "$name"; fi
		[ ${#d[@]} -gt 0 ] && printf '%s\n' "${d[@]}" | sed 's/^# /#   /'
		name= ; d=()
	}
	while IFS= read -r line; do
		case $line in
		PASS\ *|FAIL\ *) flush; st=${line%% *}; name=${line#* } ;;
		"# "*failed) flush; echo "$line" ;;
		*) d+=("$line") ;;
		esac
	done
	flush
}

setup() {
	mkfs_ckfs "$VOL" &&
	for d in A B R W U T E0 E1 E2 E3 E4 E5 E6 E7; do "$CKDEP" "$VOL" create "dep$d" >/dev/null || return 1; done
	for i in 0 1 2 3 4 5 6 7; do "$CKASSIGN" "$VOL" mail/e$i depE$i >/dev/null || return 1; done
	"$CKASSIGN" "$VOL" mail/a depA >/dev/null && "$CKASSIGN" "$VOL" mail/r depR >/dev/null &&
	"$CKASSIGN" "$VOL" mail/b depB >/dev/null &&
	"$CKASSIGN" "$VOL" mail/w depW >/dev/null && "$CKASSIGN" "$VOL" mail/u depU >/dev/null &&
	"$CKASSIGN" "$VOL" mail/t depT >/dev/null
}
check "a volume with DEP trees mail/a, mail/r, mail/w, mail/u, mail/t, mail/e0..7 and the service tree" setup ||
	{ summary; exit 1; }
mount_check "mount" "$VOL" "$MNT" || { summary; exit 1; }
check "write the victims (one per attack)" "$PY" "$TM" populate "$STATE"
check "revoke depR and depB (their records are then edited or rolled back to active)" sh -c '"$0" "$1" revoke depR && "$0" "$1" revoke depB' "$CKDEP" "$VOL"
umount_check "unmount" "$MNT"
check "tamper with the backing store (every attack at once, offline)" "$PY" "$TM" tamper "$STATE"

mount_check "mount the tampered volume" "$VOL" "$MNT" || { summary; exit 1; }
PID=$LAST_PID
LOG=$LAST_LOG
"$PY" "$TM" check "$STATE" "$LOG" "$PID" >"$T/check.out" 2>&1
tap <"$T/check.out"
grep -q ' attacks checked' "$T/check.out" || { notok "tampermatrix.py check ran to its end"; tail -n 20 "$T/check.out" | diag; }
check "daemon alive after every attack" daemon_alive "$MNT"
sh_check "ck-dep show of each DEP with an edited record fails (exit 1), naming the corrupt records" '
for d in depR depW depU depE0; do
	"$CKDEP" "$VOL" show $d >"$T/show.out" 2>&1; rc=$?; echo "show $d: exit $rc"; cat "$T/show.out"
	[ $rc -eq 1 ] && grep -q corrupt "$T/show.out" && ! grep -q "^$d " "$T/show.out" || exit 1
done'
umount_check "daemon exits 0 after the attacks" "$MNT"
sh_check "ck-fsck reports problems (exit 4), never a clean volume" '
"$CKFS_BUILD/ck-fsck" "$VOL" >"$T/fsck.out" 2>&1; rc=$?; echo "exit $rc, $(wc -l <"$T/fsck.out") lines"; head -n 5 "$T/fsck.out"
[ $((rc & 4)) -eq 4 ]'

"$PY" "$TM" volhdr "$STATE" >"$T/volhdr.out" 2>&1
tap <"$T/volhdr.out"
"$PY" "$TM" audit "$STATE" >"$T/audit.out" 2>&1
tap <"$T/audit.out"
grep -q 'audit attacks' "$T/audit.out" || { notok "tampermatrix.py audit ran to its end"; tail -n 20 "$T/audit.out" | diag; }
summary
