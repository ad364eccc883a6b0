#!/bin/bash
# Full disk: a ckfs volume on a small backing file system (a 64 MiB
# loop-mounted ext4 image made here, else a size=64m tmpfs).  Files written
# and fsynced before the fill keep their checksums; filling the volume gives
# ENOSPC (never EIO, never a daemon crash), also for create, mkdir and an
# append to an existing file (which must stay intact); ck-dep create on the
# full volume fails cleanly and leaves no corrupt record; after freeing
# space everything is intact, key tools work again, and a remount and
# ck-fsck (when built) agree.  The small file system is removed at exit.
#
# Run: CKFS_BUILD=<build dir> tests/crash/fulldisk.sh   (root, /dev/fuse)
# TAP output; exit 0 pass, 1 fail, 77 skip.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"

DEP=$CKFS_BUILD/ck-dep
ASSIGN=$CKFS_BUILD/ck-assign
FSCK=$CKFS_BUILD/ck-fsck
for b in "$DEP" "$ASSIGN"; do
	[ -x "$b" ] || { echo "fulldisk: $b is not built" >&2; exit 2; }
done

SMALL=$T/small
IMG=$T/small.img
SMALL_KIND=
mkdir -p "$SMALL"

small_cleanup() {
	local rc=$?
	umount_all
	if mountpoint -q "$SMALL"; then
		umount "$SMALL" 2>/dev/null || umount -l "$SMALL"
	fi
	# mount -o loop sets autoclear; detach by hand if the kernel did not.
	if [ -e "$IMG" ] && command -v losetup >/dev/null; then
		losetup -j "$IMG" -O NAME -n 2>/dev/null | while read -r dev; do losetup -d "$dev"; done
	fi
	(exit $rc)
	cleanup
}
trap small_cleanup EXIT

if command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ] &&
   truncate -s 64M "$IMG" && mkfs.ext4 -q -F -m 0 "$IMG" >/dev/null 2>&1 &&
   mount -o loop "$IMG" "$SMALL" 2>/dev/null; then
	SMALL_KIND="loop-mounted ext4, 64 MiB"
elif mount -t tmpfs -o size=64m,mode=0755 ckfs-fulldisk "$SMALL" 2>/dev/null; then
	SMALL_KIND="tmpfs, size=64m"
	rm -f "$IMG"
else
	skip_all "cannot make a small file system (no loop device and no tmpfs mount)"
fi
echo "# backing file system: $SMALL_KIND on $SMALL"

V=$SMALL/vol
dep() { "$DEP" "$V" "$@"; }
# clean_fail CMD...: exits non-zero by itself (no signal, no crash).
clean_fail() { "$@"; local rc=$?; [ $rc -ne 0 ] && [ $rc -lt 128 ]; }

check "ck-mkfs on the small file system" mkfs_ckfs "$V" || { summary; exit 1; }
check "ck-dep create d1" dep create d1
check "ck-assign dep d1" "$ASSIGN" "$V" dep d1
mount_ckfs "$V" "$MNT" || { notok "mount"; summary; exit 1; }
mkdir -p "$MNT/keep" "$MNT/dep/keep" "$MNT/fill"

# Files written and fsynced before the fill; checksums on the plain disk.
py_check "write and fsync 24 files (service and DEP trees), checksums kept" "
import hashlib, random
rnd = random.Random(7)
with open('$T/ref.sums', 'w') as out:
    for i in range(24):
        d = '$MNT/keep' if i % 2 else '$MNT/dep/keep'
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 100, 4096, 5000, 70000, 300000])))
        with open('%s/f%d' % (d, i), 'wb') as f:
            f.write(data); f.flush(); os.fsync(f.fileno())
        out.write('%s %s\n' % (hashlib.sha256(data).hexdigest(), '%s/f%d' % (d, i)))
"
sums_ok() {
	"$PY" - "$T/ref.sums" <<'EOF'
import hashlib, sys
bad = []
for line in open(sys.argv[1]):
    want, path = line.split()
    try:
        got = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    except OSError as e:
        got = str(e)
    if got != want:
        bad.append('%s: %s' % (path, got if got.startswith('[') else 'checksum differs'))
print('\n'.join(bad) or 'all %d files intact' % sum(1 for _ in open(sys.argv[1])))
sys.exit(1 if bad else 0)
EOF
}
check "the fsynced files read back before the fill" sums_ok

# Fill: one big file in 1 MiB writes, then small files, then the other
# operations that need space.  Every failure must be ENOSPC.
fill() {
	"$PY" - "$MNT" "$T/fill.json" <<'EOF'
import errno, json, os, sys
mnt, out = sys.argv[1], sys.argv[2]
res = {"big": 0, "small": 0, "errors": []}
def fail(what, e):
    res["errors"].append([what, e.errno, errno.errorcode.get(e.errno, "?")])
chunk = os.urandom(1 << 20)
fd = os.open(mnt + "/fill/big", os.O_CREAT | os.O_WRONLY, 0o644)
try:
    while True:
        n = os.write(fd, chunk)
        res["big"] += n
except OSError as e:
    fail("write big", e)
os.close(fd)
# Smaller writes until nothing fits.
for i in range(4000):
    p = "%s/fill/s%d" % (mnt, i)
    try:
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError as e:
        fail("create", e); break
    try:
        os.write(fd, chunk[:4096])
        res["small"] += 1
    except OSError as e:
        fail("write small", e); os.close(fd); break
    os.close(fd)
for what, fn in (("mkdir", lambda: os.mkdir(mnt + "/fill/newdir")),
                 ("create+write", lambda: open(mnt + "/fill/late", "wb").write(chunk[:8192])),
                 ("append to a fsynced file", lambda: open(mnt + "/keep/f5", "ab").write(chunk[:20000]))):
    try:
        fn()
        res.setdefault("succeeded", []).append(what)
    except OSError as e:
        fail(what, e)
json.dump(res, open(out, "w"))
bad = [e for e in res["errors"] if e[1] != errno.ENOSPC]
print("filled: big file %d bytes, %d small files; errors: %s" % (res["big"], res["small"],
      ", ".join("%s: %s" % (w, n) for w, _, n in res["errors"])))
if res.get("succeeded"):
    print("succeeded on the full volume: %s" % ", ".join(res["succeeded"]))
sys.exit(1 if bad or not res["errors"] else 0)
EOF
}
check "filling the volume: every failure is ENOSPC (write, create, mkdir, append)" fill
{ cat "$T/fill.json"; echo; } | sed 's/^/# /'
check "daemon still running on the full volume" daemon_alive "$MNT"
# ckfs needs a whole sealed block for any new data, so up to about one block
# of the backing file system can stay free; take that too, outside the
# volume, so that the key record updates below meet a really full disk.
pad() {
	"$PY" - "$SMALL/pad" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600)
for size in (65536, 4096, 512, 1):
    try:
        while True:
            os.write(fd, bytes(size))
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
os.close(fd)
EOF
}
check "pad the backing file system's last free bytes (outside the volume)" pad
echo "# df: $(df --output=avail -B1 "$SMALL" | tail -n1) bytes free"
check "df reports the backing file system full" sh -c "[ \$(df --output=avail -B1 '$SMALL' | tail -n1) -lt $((4096 * 16)) ]"

# The file that hit ENOSPC holds exactly what its writes reported.
py_check "the file that hit ENOSPC reads back whole, no EIO" "
import json
res = json.load(open('$T/fill.json'))
data = open('$MNT/fill/big', 'rb').read()
assert len(data) == res['big'], 'size %d, writes reported %d' % (len(data), res['big'])
" || show_log "$MNT" 10
check "the fsynced files are intact on the full volume" sums_ok

# Key records on the full volume.
check "ck-dep create d2 on the full volume fails cleanly" clean_fail dep create d2 ||
	echo "# df: $(df --output=avail -B1 "$SMALL" | tail -n1) bytes free"
check "ck-assign on the full volume fails cleanly" clean_fail "$ASSIGN" "$V" t2 d1
check "ck-dep list works on the full volume" dep list
check "ck-dep audit --verify on the full volume" dep audit --verify

# Free space and look again.
check "free space (rm the fill files and the pad)" rm -rf "$MNT/fill" "$SMALL/pad"
sleep 0.5
check "ck-dep list works after freeing space" dep list
check "ck-dep audit --verify after freeing space" dep audit --verify
sh_check "no half-made record: d2 is absent or complete" \
	'dep list --json | grep -q "\"name\":\"d2\"" && dep show d2 || ! dep list --json | grep -q "\"name\":\"d2\""'
check "ck-dep create d3 works once there is space" dep create d3
check "the fsynced files are intact after freeing space" sums_ok
py_check "a write works again after freeing space" "
open('$MNT/keep/after', 'wb').write(b'x' * 100000)
assert open('$MNT/keep/after', 'rb').read() == b'x' * 100000
"
check "daemon still running" daemon_alive "$MNT"
umount_ckfs "$MNT"; rc=$?
check "daemon exited 0 on unmount" test $rc -eq 0
if mount_ckfs "$V" "$MNT"; then
	check "after a remount, the fsynced files are intact" sums_ok
	umount_ckfs "$MNT"
else
	notok "remount after the full-disk run"
	show_log "$MNT" 20
fi
if [ -x "$FSCK" ]; then
	check_fsck() { "$FSCK" "$V"; local rc=$?; [ $rc -le 1 ]; }
	check "ck-fsck exits 0 or 1 after the full-disk run" check_fsck
else
	echo "# note: ck-fsck is not built; not run"
fi
summary
