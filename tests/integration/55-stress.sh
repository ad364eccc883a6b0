#!/bin/bash
# Concurrency stress: several processes of several threads each do a fixed
# number of seeded random operations on one mount (stress.py): private
# files checked against a model, O_APPEND records from every thread into
# one file, whole-slot writes and reads of shared files, renames over a
# name that others read, creates and unlinks while others list the
# directory. No unexpected errno, no mismatch; the daemon stays up; the
# final state is checked again after a remount.
# Replay: CK_STRESS_SEED=<seed>; size: CK_STRESS_PROCS, CK_STRESS_THREADS,
# CK_STRESS_OPS (per thread).
. "$(dirname "$0")/lib.sh"

SEED=${CK_STRESS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
NPROC=${CK_STRESS_PROCS:-4}
NTHR=${CK_STRESS_THREADS:-4}
OPS=${CK_STRESS_OPS:-1000}
echo "# seed $SEED (replay with CK_STRESS_SEED=$SEED): $NPROC processes x $NTHR threads x $OPS ops"

check "ck-mkfs" mkfs_ckfs "$VOL"
mount_check "mount (threads=16)" "$VOL" "$MNT" -o threads=16 || { summary; exit 1; }
mkdir -p "$T/out"
run() {
	timeout 600 "$PY" "$HERE/stress.py" run "$MNT/stress" "$SEED" "$NPROC" "$NTHR" "$OPS" "$T/out" >"$T/run.out" 2>&1
	local rc=$?
	cat "$T/run.out"
	grep -E '^(seed|ops:)' "$T/run.out" >>"$T/notes"
	return $rc
}
check "$((NPROC * NTHR * OPS)) mixed operations from $NPROC processes x $NTHR threads: no unexpected errno, every check against the model holds" run
check "the daemon stayed up" daemon_alive "$MNT"
sh_check "the daemon logged no error" '! grep -E "error|corrupt|failed" "$LAST_LOG"'
umount_check "unmount (daemon exits 0)" "$MNT"
mount_check "remount" "$VOL" "$MNT" || { summary; exit 1; }
check "after the remount the state still matches every model (append log, private files, listings)" \
	"$PY" "$HERE/stress.py" verify "$MNT/stress" "$T/out"
umount_check "unmount" "$MNT"
check "ck-fsck: the volume is clean" "$CKFS_BUILD/ck-fsck" "$VOL"
summary
