#!/bin/bash
# Key material is not where it must not be. With every key of a volume
# known (read offline from the key files by ckvol.py: KEK, service key and
# its derived keys, customer and availability keys, DEP key, tree keys and
# the keys of open files), searched as raw bytes, hex and base64:
#  - the daemon's /proc/PID/environ and cmdline;
#  - its log, with -d (every FUSE request logged);
#  - a core dump: SIGABRT leaves none (PR_SET_DUMPABLE 0, RLIMIT_CORE 0,
#    even with `ulimit -c unlimited`), and one forced by root with gcore
#    holds no KEK, service, DEP, tree or file key and none of the
#    daemon's memory at all (it sets coredump_filter to 0; the secure heap
#    is MADV_DONTDUMP besides);
#  - swap: the key pages are locked (VmLck > 0 in /proc/PID/status);
#  - the tools: ck-dep and ck-assign's own environ and cmdline (read by an
#    exec: key helper while they run it) and the helper's argv and
#    environment never carry a key; their output neither.
. "$(dirname "$0")/lib.sh"

for b in "$CKDEP" "$CKASSIGN" "$CKFS_BUILD/tests/integration/ck-keyscan"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
"$PY" -c 'import cryptography' 2>/dev/null || ck_missing=python3-cryptography
command -v gcore >/dev/null || ck_missing="${ck_missing:-} gdb"
if [ -n "${ck_missing:-}" ]; then
	# scripts/lib.sh installs what the scripts need.
	. "$SRC_ROOT/scripts/lib.sh" && ck_install_packages $ck_missing >/dev/null 2>&1
	"$PY" -c 'import cryptography' 2>/dev/null || skip_all "python3-cryptography is not installed"
	command -v gcore >/dev/null || skip_all "gdb (gcore) is not installed"
fi
export CKVOL_DIR=$HERE

# An exec: key helper that records, every time it runs, its own argv and
# environment and its parent's (ck-dep's, ck-assign's, the daemon's)
# cmdline and environ, then serves the request with the example helper.
mkdir -m 0700 "$T/kms" "$T/rec"
install -m 0755 "$SRC_ROOT/tools/ck-keyhelper-example" "$T/kms/helper"
"$T/kms/helper" --create "$T/kms/c1.kek" >/dev/null
cat >"$T/kms/spy" <<EOF
#!/bin/sh
d=$T/rec/\$\$
mkdir -p "\$d"
for a in "\$0" "\$@"; do printf '%s\n' "\$a"; done >"\$d/argv"
cat /proc/\$\$/environ >"\$d/environ"
cat /proc/\$PPID/cmdline >"\$d/parent-cmdline" 2>/dev/null
cat /proc/\$PPID/environ >"\$d/parent-environ" 2>/dev/null
readlink /proc/\$PPID/exe >"\$d/parent-exe" 2>/dev/null
exec $T/kms/helper "\$@"
EOF
chmod 0755 "$T/kms/spy"

check "ck-mkfs" mkfs_ckfs "$VOL"
check "ck-dep create depF (file: customer keys)" "$CKDEP" "$VOL" create depF
check "ck-dep create depX (an exec: customer key)" "$CKDEP" "$VOL" create depX --customer-key "exec:$T/kms/spy $T/kms/c1.kek"
check "ck-assign mail/f depF" "$CKASSIGN" "$VOL" mail/f depF
check "ck-assign mail/x depX" "$CKASSIGN" "$VOL" mail/x depX
sh_check "ck-dep status and show run the exec: helper too" '"$CKDEP" "$VOL" status >"$T/tools.out" && "$CKDEP" "$VOL" show depX >>"$T/tools.out" && "$CKDEP" "$VOL" list --json >>"$T/tools.out"'

mkdir -p "$T/cwd"
# The daemon runs in $T/cwd (core_pattern "core" would put a dump there)
# with no core size limit of ours. mount_ckfs must run in this shell (it
# records the PID): cd and ulimit here.
cd "$T/cwd" || exit 1
ulimit -c unlimited 2>/dev/null
mount_check "mount with -d (debug: every request logged)" "$VOL" "$MNT" -d
PID=$LAST_PID
LOG=$LAST_LOG
cd / || exit 1

populate() {
	mkdir -p "$MNT/mail/f/cur" "$MNT/mail/x/cur" "$MNT/docs" &&
	for d in mail/f/cur mail/x/cur docs; do
		head -c 50000 /dev/urandom >"$MNT/$d/msg" && ln -s target "$MNT/$d/link" &&
		setfattr -n user.k -v value "$MNT/$d/msg" || return 1
	done
	cat "$MNT"/mail/*/cur/msg "$MNT/docs/msg" >/dev/null && ls -lR "$MNT" >/dev/null && sync
}
check "write, list and read files, symlinks and xattrs in both DEP trees and the service tree" populate
# Files held open (their file keys live) while the daemon is inspected.
"$PY" -c '
import os, sys, time
fds = [os.open(p, os.O_RDWR) for p in sys.argv[1:]]
for fd in fds:
    os.pwrite(fd, b"x" * 100, 10)
    os.pread(fd, 4096, 0)
while os.path.exists(os.path.dirname(sys.argv[1])):
    time.sleep(0.2)
' "$MNT/mail/f/cur/msg" "$MNT/mail/x/cur/msg" "$MNT/docs/msg" &
HOLDER=$!
sleep 0.5

# The known keys: name -> hex, written to $T/keys.json.
known_keys() {
	"$PY" - "$VOL" "$KEYS" "$T/keys.json" "$(backing_of "$MNT/mail/f/cur/msg" "$VOL")" \
		"$(backing_of "$MNT/mail/x/cur/msg" "$VOL")" "$(backing_of "$MNT/docs/msg" "$VOL")" "$T/kms/c1.kek" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["CKVOL_DIR"])
import ckvol
vol, keydir, out = sys.argv[1:4]
files = sys.argv[4:7]
v = ckvol.Volume(vol, keydir)
K = {"kek": v.kek, "service key": v.service_key, "records key": v.records_key,
     "audit key": v.audit_key, "volume mac key": v.vol_mac_key,
     "service tree key": v.service_tree_key}
for n, k in ckvol.tree_subkeys(v.service_tree_key).items():
    K["service tree " + n + " key"] = k
for d in v.deps().values():
    K["dep key " + d["name"]] = v.dep_key(d)
    for i, w in enumerate(d["wraps"]):
        if w["uri"].startswith("file:"):
            K["%s key %d of %s" % ("customer" if w["role"] == 1 else "availability", i, d["name"])] = ckvol.read(w["uri"][5:])[32:64]
K["exec: helper key"] = ckvol.read(sys.argv[7])
trees = v.tree_keys()
tk = {v.service_tree_id: v.service_tree_key}
for path, (tid, key, dk) in trees.items():
    K["tree key " + path] = key
    tk[tid] = key
    for n, k in ckvol.tree_subkeys(key).items():
        K["tree " + path + " " + n + " key"] = k
for f in files:
    h = ckvol.read(f)[:512]
    for n, k in ckvol.file_keys(tk[h[464:480]], h[8:24]).items():
        K["%s key of %s" % (n, os.path.relpath(f, vol)[:20] + "...")] = k
json.dump({n: k.hex() for n, k in K.items()}, open(out, "w"))
print("%d keys known (%d DEP trees)" % (len(K), len(trees)))
EOF
}
check "every key of the volume is known offline (ckvol.py)" known_keys

# search WHAT [--primary|--derived] FILE...: none of the known keys (raw
# and its 16-byte halves, hex, base64, base64url) in the files; prints what
# is found where. --primary: only the KEK, service, records, audit, DEP,
# customer, availability, tree and file keys; --derived: only the keys
# derived below a tree or file key (names, xattr, symlink, content, header
# MAC, size). ck-keyscan does the searching (dumps are hundreds of MB).
KEYSCAN=$CKFS_BUILD/tests/integration/ck-keyscan
search() {
	local what=$1 sel=all; shift
	case ${1:-} in --primary) sel=primary; shift ;; --derived) sel=derived; shift ;; esac
	"$PY" - "$T/keys.json" "$sel" >"$T/needles" <<'PYEOF' || return 2
import base64, json, re, sys
keys = {n: bytes.fromhex(h) for n, h in json.load(open(sys.argv[1])).items()}
sel = sys.argv[2]
derived = re.compile(r"(names|xname|xvalue|symlink) key$|^(content|header|size) key of")
for n, k in keys.items():
    if sel != "all" and bool(derived.search(n)) != (sel == "derived"):
        continue
    forms = {"raw": k, "raw first half": k[:16], "raw second half": k[16:],
             "hex": k.hex().encode(), "HEX": k.hex().upper().encode(),
             "base64": base64.b64encode(k).rstrip(b"="),
             "base64url": base64.urlsafe_b64encode(k).rstrip(b"=")}
    for f, b in forms.items():
        print("%s (%s)\t%s" % (n, f, b.hex()))
PYEOF
	local n; n=$(wc -l <"$T/needles")
	echo "$what: $n needles ($sel keys) in $# file(s), $(cat "$@" | wc -c) bytes"
	"$KEYSCAN" "$T/needles" "$@" | head -n 30
	[ "${PIPESTATUS[0]}" -eq 0 ]
}

sh_check "self-test: the search finds the keys in the key files and in a hex/base64 dump of them" '
! search "key dir" "$KEYS"/*.key >/dev/null && ! search "customer key" "$KEYS"/customer/* >/dev/null &&
od -An -tx1 "$KEYS"/*.key | tr -d " \n" >"$T/hex" && ! search hex "$T/hex" &&
k=$(ls "$KEYS"/customer/* | head -n 1) && { echo "key: "; tail -c +33 "$k" | head -c 32 | base64 -w0; } >"$T/b64" &&
! search base64 "$T/b64"'

# ------------------------------------------------------------ the daemon
cp "/proc/$PID/environ" "$T/d.environ"; cp "/proc/$PID/cmdline" "$T/d.cmdline"
check "daemon /proc/PID/environ and cmdline hold no key" search "environ+cmdline" "$T/d.environ" "$T/d.cmdline"
sh_check "the debug log is not empty (requests were logged)" 'n=$(wc -l <"$LOG"); echo "$n log lines"; [ "$n" -gt 50 ]'
check "the daemon's debug log holds no key" search "log" "$LOG"
sh_check "key pages are locked: VmLck > 0" '
l=$(awk "/^VmLck:/ {print \$2}" "/proc/$PID/status"); echo "VmLck: $l kB"; [ "${l:-0}" -gt 0 ]'
sh_check "the daemon is not dumpable (no core by the kernel, no ptrace by other users)" '
# /proc/PID files of a non-dumpable process are owned by root:root.
s=$(stat -c %U:%G "/proc/$PID/mem"); echo "/proc/$PID/mem owned by $s"; [ "$s" = root:root ] &&
grep -q "^Max core file size *0 " "/proc/$PID/limits" && grep "^Max core" "/proc/$PID/limits"'

gcore_dump() {
	rm -f "$T/core".*
	timeout 120 gcore -o "$T/core" "$PID" >"$T/gcore.out" 2>&1 || { tail -n 5 "$T/gcore.out"; return 1; }
	ls -l "$T"/core.*
	kill -0 "$PID" && daemon_alive "$MNT"
}
if ldd "$CKFS" 2>/dev/null | grep -q libasan; then
	# ASan's shadow memory makes a dump of terabytes of address space.
	echo "the core dump search is skipped under AddressSanitizer" >>"$T/notes"
elif check "gcore (root, ptrace) dumps the live daemon, which keeps running" gcore_dump; then
	core=$(ls "$T"/core.* | head -n 1)
	# The daemon keeps all of its memory out of dumps (coredump_filter 0,
	# which gcore honours): the volume path, which sits on its heap, must
	# be absent too. A dump of its memory would hold plaintext as well.
	sh_check "the daemon's memory is excluded from dumps (coredump_filter 0)" '
	f=$(cat "/proc/$PID/coredump_filter"); echo "coredump_filter: $f"; [ "$((16#$f))" -eq 0 ]'
	sh_check "the forced dump holds none of the daemon's memory (no volume path from its heap)" '
	n=$(grep -caF "$VOL" "$core" || :); echo "volume path found $n times"; [ "$n" -eq 0 ]'
	check "the core dump holds no KEK, service, DEP, customer, availability, tree or file key" search "core dump" --primary "$core"
	check "the core dump holds no key derived from a tree or file key (names, content, header MAC, size)" search "core dump" --derived "$core"
	rm -f "$T"/core.*
fi
check "the mount still works after the dump" cmp "$MNT/docs/msg" "$MNT/docs/msg"

# ------------------------------------------------------------ the tools
tools_out() {
	"$CKDEP" "$VOL" show depF --json >>"$T/tools.out" 2>&1 && "$CKDEP" "$VOL" status --json >>"$T/tools.out" 2>&1 &&
	"$CKDEP" "$VOL" audit >>"$T/tools.out" 2>&1 && search "tool output" "$T/tools.out"
}
check "ck-dep/ck-assign output (show, status, list, audit) holds no key" tools_out
tool_env() {
	local n; n=$(ls "$T/rec" | wc -l)
	echo "exec: helper ran $n times"; [ "$n" -ge 3 ] || return 1
	grep -l ck-dep "$T"/rec/*/parent-exe | head -n 1 | grep -q . || { echo "never run by ck-dep"; return 1; }
	grep -l ck-assign "$T"/rec/*/parent-exe | head -n 1 | grep -q . || { echo "never run by ck-assign"; return 1; }
	grep -l ckfs "$T"/rec/*/parent-exe | head -n 1 | grep -q . || { echo "never run by the daemon"; return 1; }
	search "helper argv/environ, ck-dep/ck-assign/ckfs cmdline/environ" "$T"/rec/*/argv "$T"/rec/*/environ \
		"$T"/rec/*/parent-cmdline "$T"/rec/*/parent-environ
}
check "the tools' and the daemon's argv and environment while they run a key helper, and the helper's own, hold no key" tool_env

kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
umount_check "unmount" "$MNT"
check "the log written up to the unmount holds no key" search "log" "$LOG"

# ------------------------------------------------------------ SIGABRT
abort_no_core() {
	local rc
	rm -f "$T/cwd"/core*
	cd "$T/cwd" && ulimit -c unlimited && mount_ckfs "$VOL" "$MNT" || return 1
	local pid=$LAST_PID
	cat "$MNT/docs/msg" >/dev/null
	echo "core_pattern: $(cat /proc/sys/kernel/core_pattern); daemon $pid, ulimit -c $(ulimit -c)"
	kill -ABRT "$pid"
	wait "$pid"; rc=$?
	fusermount3 -uz "$MNT" 2>/dev/null
	unset "MOUNT_PID[$MNT]"
	echo "daemon exit status $rc"
	[ $rc -eq $((128 + 6)) ] || return 1
	sleep 0.5
	ls -la "$T/cwd"
	! ls "$T/cwd" | grep -q core
}
if grep -q '^|' /proc/sys/kernel/core_pattern; then
	echo "core_pattern pipes to a helper; checking that it gets nothing is not possible here" >>"$T/notes"
fi
# Not in a subshell: mount_ckfs must register the daemon to clean it up.
cd "$T/cwd"; ulimit -c unlimited 2>/dev/null
abort_no_core >"$T/abort.out" 2>&1; rc=$?
cd /
if [ $rc -eq 0 ]; then ok "SIGABRT with ulimit -c unlimited: the daemon dies without a core file"; else notok "SIGABRT leaves no core"; fi
diag <"$T/abort.out"
summary
