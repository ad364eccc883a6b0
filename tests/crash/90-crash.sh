#!/bin/bash
# Crash safety (run by scripts/test and by scripts/crash --quick): 10 rounds
# of tests/crash/harness.py (kill -9 of the daemon in the middle of a
# workload while ck-dep roll and ck-assign --apply run, then remount:
# fsynced files exact, every block old or new or a torn block that ck-fsck
# names, key records and audit log verify, an apply cut short resumes), the
# harness's self-tests (damage it must catch), tests/crash/races.py (races
# that once lost an inode or a binding on a live mount), and
# tests/crash/fulldisk.sh (ENOSPC on a small backing file system).
# Longer runs: scripts/crash N.  Replay a round: harness.py --replay SEED.
. "$(dirname "$0")/../integration/lib.sh"

CRASH=$SRC_ROOT/tests/crash
ROUNDS=${CKFS_CRASH_ROUNDS:-10}
for b in ck-dep ck-assign; do
	[ -x "$CKFS_BUILD/$b" ] || { echo "90-crash: $CKFS_BUILD/$b is not built" >&2; exit 2; }
done

# harness ARGS...: runs the harness with its work under $T; each round
# line becomes a TAP line, everything else a diagnostic.  Returns the
# harness's exit status.
harness() {
	local out=$T/harness.$N_TESTS.out rc line
	"$PY" "$CRASH/harness.py" --workdir "$T/rounds.$N_TESTS" "$@" >"$out" 2>&1
	rc=$?
	cp "$out" "$T/last-harness.out"
	return $rc
}

# The rounds: each runs both key operations (a roll and an apply of a live
# tree, in random order) during the workload.
harness --rounds "$ROUNDS" --key-ops "${CRASH_KEY_OPS:-roll,apply}"; rc=$?
while IFS= read -r line; do
	case $line in
	"round "*" ok "*) ok "${line%% keyops=*}" ;;
	"round "*" FAIL "*) notok "${line%% keyops=*}"; echo "#   $line" ;;
	*) echo "# $line" ;;
	esac
done <"$T/last-harness.out"
if [ $rc -eq 77 ]; then
	skip_all "$(tail -n 1 "$T/last-harness.out")"
fi
check "crash harness exit status is 0 ($ROUNDS rounds)" test "$rc" -eq 0

# Self-tests: damage the backing store after the kill the way a buggy
# daemon would; the harness must fail the round.
selftest() { # damage expected-text
	harness --rounds 1 --seed 11 --damage "$1"
	local rc=$?
	if [ $rc -ne 1 ] || ! grep -qE "$2" "$T/last-harness.out"; then
		echo "harness exit $rc (want 1); output:"
		cat "$T/last-harness.out"
		return 1
	fi
}
check "self-test: a flipped ciphertext byte fails the round" \
	selftest flip "gives EIO, but the crash was not writing it"
check "self-test: backing files rolled back to older valid versions fail the round" \
	selftest rollback "FSYNC LOST|neither the old nor the new|open fails with EIO|size [0-9]+, expected"

# Races on a live mount that once lost an inode or a binding mid-apply.
races_out=$T/races.out
CKFS_BUILD=$CKFS_BUILD "$PY" "$CRASH/races.py" apply-links "${CRASH_RACE_SECONDS:-20}" \
	>"$races_out" 2>&1; rc=$?
sed 's/^/# /' "$races_out"
case $rc in
0) ok "links and renames during repeated ck-assign --apply keep their bindings" ;;
77) ok "apply-links race # SKIP $(tail -n 1 "$races_out")" ;;
*) notok "links and renames during repeated ck-assign --apply (tests/crash/races.py exit $rc)" ;;
esac

# Full disk.
fd_out=$T/fulldisk.out
CKFS_BUILD=$CKFS_BUILD "$CRASH/fulldisk.sh" >"$fd_out" 2>&1; rc=$?
sed 's/^/# fulldisk: /' "$fd_out"
case $rc in
0) ok "full disk: ENOSPC, clean key record failures, everything intact after freeing space" ;;
77) ok "full disk # SKIP $(tail -n 1 "$fd_out")" ;;
*) notok "full disk (tests/crash/fulldisk.sh exit $rc; its failures are listed above)"
   grep '^# failed:' "$fd_out" | sed 's/^# failed: /#   /' ;;
esac
summary
