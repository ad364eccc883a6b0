#!/bin/bash
# Random-operation exerciser: the same seeded operations on a ckfs file and on
# a reference file on the plain disk, compared after every operation.
# Replay a failure with FSX_SEED=<printed seed>.
. "$(dirname "$0")/lib.sh"

[ -x "$FSX" ] || { echo "10-fsx: $FSX is not built" >&2; exit 2; }

SEED=${FSX_SEED:-$(( (RANDOM << 15 | RANDOM) % 1000000000 ))}
SEED2=$(( (SEED * 7 + 13) % 1000000000 ))
echo "# seed $SEED (second run $SEED2, concurrent runs $((SEED + 1)) and $((SEED + 2))); replay with FSX_SEED=$SEED"

mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
mount_ckfs "$VOL" "$MNT" || { notok "mount"; summary; exit 1; }
mkdir -p "$MNT/fsx" "$T/ref"

run_fsx() { # name ops maxlen seed
	local out=$T/fsx.$1.out rc
	"$FSX" -N "$2" -l "$3" -S "$4" "$MNT/fsx/$1" "$T/ref/$1" >"$out" 2>&1; rc=$?
	tail -n 4 "$out"
	if [ $rc -ne 0 ]; then
		echo "--- full ck-fsx output:"; cat "$out"
		echo "--- daemon log:"; tail -n 20 "$LAST_LOG"
	fi
	return $rc
}

sh_check "ck-fsx detects a difference (self-test with -C)" \
	'{ "$FSX" -N 300 -C 200 -S $SEED "$MNT/fsx/selftest" "$T/ref/selftest"; true; } 2>&1 | grep "content differs"'
rm -f "$MNT/fsx/selftest" "$T/ref/selftest"

check "ck-fsx 20000 ops, maxlen 256 KiB, seed $SEED" run_fsx main 20000 262144 "$SEED"
grep -E "OK in|counts|not supported" "$T/fsx.main.out" | sed 's/^/# /'
check "ck-fsx 5000 ops, maxlen 1 MiB, seed $SEED2" run_fsx big 5000 1048576 "$SEED2"
check "ck-fsx 3000 ops, maxlen 16 KiB (dense block edges), seed $SEED2" run_fsx small 3000 16384 "$SEED2"

# Two exercisers at once in one directory: concurrent writers must not
# disturb each other's files.
conc() {
	local rc=0
	run_fsx c1 3000 131072 $((SEED + 1)) >"$T/c1.log" 2>&1 & local p1=$!
	run_fsx c2 3000 131072 $((SEED + 2)) >"$T/c2.log" 2>&1 & local p2=$!
	wait $p1 || { rc=1; cat "$T/c1.log"; }
	wait $p2 || { rc=1; cat "$T/c2.log"; }
	return $rc
}
check "two concurrent ck-fsx runs (3000 ops each)" conc
check "daemon still running" daemon_alive "$MNT"

# The final states must survive an unmount and a fresh mount.
umount_ckfs "$MNT"; rc=$?
check "daemon exited 0 on unmount" test $rc -eq 0
if mount_ckfs "$VOL" "$MNT"; then
	for f in main big small c1 c2; do
		check "after remount, $f equals the reference" cmp "$MNT/fsx/$f" "$T/ref/$f"
	done
else
	notok "remount"
fi
summary
