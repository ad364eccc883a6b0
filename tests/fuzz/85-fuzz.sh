#!/bin/bash
# The fuzz smoke run of scripts/test: every libFuzzer target in tests/fuzz
# for CKFS_FUZZ_SECS seconds (default 20), two at a time, starting from the
# committed seed corpora; the kept reproducers in tests/fuzz/crashes are
# replayed first. Any crash, leak, timeout or out-of-memory input fails the
# test (scripts/fuzz prints the artifact path). Long runs: scripts/fuzz 600.
set -u
root=${CKFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${CKFS_FUZZ_SECS:-20}
cd "$root" || exit 2
export CK_FUZZ_DIR=${CK_FUZZ_DIR:-$root/build-fuzz-smoke}
scripts/fuzz --replay || { echo "85-fuzz: a kept reproducer crashes again"; exit 1; }
scripts/fuzz -j2 "$secs"
