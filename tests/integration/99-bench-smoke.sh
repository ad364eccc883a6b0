#!/bin/bash
# scripts/bench --smoke: one run of every workload at tiny sizes on every
# system (raw backing, passthrough_hp, gocryptfs, securefs, ckfs service
# tree and DEP tree), only to show the script works from a fresh clone.
# Benchmarks are not tests: no timing is asserted here, only that every
# ckfs figure was measured (exit 0) and that the --json file holds them.
set -u
root=${CKFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ "$(id -u)" -eq 0 ] || { echo "99-bench-smoke: needs root (mounts, drop caches)"; exit 77; }
[ -c /dev/fuse ] || { echo "99-bench-smoke: no /dev/fuse"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ckfs-99-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0 failed=0
check() { n=$((n + 1)); if "$@"; then echo "ok $n - $desc"; else echo "not ok $n - $desc"; failed=$((failed + 1)); fi; }
desc="scripts/bench --smoke exits 0 (every ckfs figure measured)"
check "$root/scripts/bench" --smoke --json "$T/bench.json"
desc="the --json file holds a ckfs figure for every workload and the machine"
check python3 - "$T/bench.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
figs = o["figures"]
ids = {f["id"] for f in figs}
for sysname in ("ckfs-svc", "passthrough_hp"):
    got = {f["id"] for f in figs if f["system"] == sysname and f["error"] is None and f["median"] is not None}
    assert got, (sysname, "no figures")
    print("# %s: %d figures" % (sysname, len(got)))
ckfs = {f["id"] for f in figs if f["system"] == "ckfs-svc" and f["error"] is None}
peer = {f["id"] for f in figs if f["system"] == "passthrough_hp"}
assert peer <= ckfs, ("ckfs-svc lacks", sorted(peer - ckfs))
assert "machine" in o and o["ckfs_operations"], sorted(o)
PY
echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
