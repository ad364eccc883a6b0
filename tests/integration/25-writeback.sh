#!/bin/bash
# -o writeback_cache: the kernel merges writes in its page cache and owns
# sizes, so such a mount must be the volume's only one (.ckfs/mount.lock),
# only fsync makes data durable, and everything else must behave as
# without it. scripts/test also runs 10-fsx, 20-posix, 30-multiuser,
# 47-revoke and 60-tools with writeback_cache (its writeback pass); this
# test checks what only this mode has.
. "$(dirname "$0")/lib.sh"

MNT2=$T/mnt2

# refused WHAT MSG-REGEX ARGS...: ckfs ARGS fails with exit status 2 and a
# one-line error matching MSG-REGEX, and mounts nothing.
refused() {
	local re=$1; shift
	mkdir -p "$MNT2"
	local out rc
	out=$(timeout 20 "$CKFS" -f "$@" "$VOL" "$MNT2" 2>&1); rc=$?
	if mountpoint -q "$MNT2"; then fusermount3 -u "$MNT2"; echo "mounted"; return 1; fi
	echo "exit $rc: $out"
	[ "$rc" = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s\n' "$out" | grep -Eq "$re"
}

check "ck-mkfs" mkfs_ckfs "$VOL"
mount_check "mount -o writeback_cache" "$VOL" "$MNT" -o writeback_cache

# ------------------------------------------------------------ one mount only
check "a second mount of the volume is refused while a writeback_cache mount has it" \
	refused "mounted with writeback_cache" -o key_ttl=5
check "a second writeback_cache mount is refused too" \
	refused "writeback_cache needs the volume to itself" -o writeback_cache
sh_check "the lock is .ckfs/mount.lock, 0600, empty" '
[ "$(stat -c %a:%s "$VOL/.ckfs/mount.lock")" = 600:0 ]'

# ------------------------------------------------------------ small writes
check "512-byte O_APPEND records from two descriptors, fsync every 100: every record once, in order per writer" py '
p = mp("app")
fa = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
fb = os.open(p, os.O_WRONLY | os.O_APPEND)
want = []
for i in range(3000):
    rec = (b"%c%06d" % (b"AB"[i % 2], i)).ljust(511, b".") + b"\n"
    os.write(fa if i % 2 == 0 else fb, rec)
    want.append(rec)
    if i % 100 == 99:
        os.fsync(fa)
os.close(fa); os.close(fb)
eq(read_file(p), b"".join(want), "appended records")
eq(os.stat(p).st_size, 3000 * 512, "size")
'
check "partial-page writes, a hole, truncate down and up, mmap writes: content and size as written" py '
import mmap
p = mp("mix")
ref = bytearray()
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
def pw(data, off):
    global ref
    os.pwrite(fd, data, off)
    if len(ref) < off + len(data):
        ref += bytes(off + len(data) - len(ref))
    ref[off:off + len(data)] = data
pw(rbytes(1000, 1), 0)
pw(rbytes(10, 2), 5000)
pw(rbytes(70000, 3), 100000)
os.ftruncate(fd, 90000); del ref[90000:]
os.ftruncate(fd, 120000); ref += bytes(120000 - len(ref))
m = mmap.mmap(fd, 120000)
m[4096:4196] = rbytes(100, 4); ref[4096:4196] = rbytes(100, 4)
m.flush(); m.close()
pw(rbytes(3, 5), 119998)
eq(os.fstat(fd).st_size, len(ref), "size")
eq(pread_all(fd, 0, 200000), bytes(ref), "content through the open fd")
os.close(fd)
eq(read_file(p), bytes(ref), "content after close")
'

# ------------------------------------------------------------ mtime, remount
check "mtimes seen before and after an unmount are the same (pages written back late keep the kernel's mtime)" py '
import json
st = {}
for i in range(20):
    p = mp("mt%d" % i)
    write_file(p, rbytes(3000 + 4096 * i, 10 + i))
    st[p] = os.stat(p).st_mtime_ns
open("'"$T"'/mt.json", "w").write(json.dumps(st))
'
umount_check "unmount" "$MNT"
mount_check "mount again -o writeback_cache" "$VOL" "$MNT" -o writeback_cache
check "after the remount: the same mtimes, contents and sizes" py '
import json
st = json.loads(open("'"$T"'/mt.json").read())
for i in range(20):
    p = mp("mt%d" % i)
    eq(os.stat(p).st_mtime_ns, st[p], "mtime of mt%d" % i)
    eq(read_file(p), rbytes(3000 + 4096 * i, 10 + i), "content of mt%d" % i)
eq(os.stat(mp("app")).st_size, 3000 * 512, "size of app")
'

# ------------------------------------------------------------ kill -9
# Only fsync'ed data must survive (DESIGN.md 8): files fsync'ed before the
# kill are intact; the one being written when the daemon died is a prefix
# of what was written (or empty), never other bytes.
"$PY" - "$MNT" >"$T/writer.out" 2>&1 <<'EOF' &
import os, sys
m = sys.argv[1]
i = 0
while True:
    p = os.path.join(m, "k%05d" % i)
    data = (b"%05d" % i) * (200 + 37 * (i % 50))
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        break
    print(i, flush=True)
    i += 1
EOF
wpid=$!
sleep 2
check "kill -9 of the writeback_cache daemon during fsync'ed writes" kill_daemon "$MNT"
wait "$wpid" 2>/dev/null
n=$(tail -n 1 "$T/writer.out" | grep -Eo '^[0-9]+$' || echo -1)
mount_check "mount again after the kill" "$VOL" "$MNT" -o writeback_cache
check "every file fsync'ed before the kill ($((n + 1)) files) is intact" py '
n = '"$n"'
assert n >= 10, "only %d files were written before the kill" % (n + 1)
for i in range(n + 1):
    eq(read_file(mp("k%05d" % i)), (b"%05d" % i) * (200 + 37 * (i % 50)), "k%05d" % i)
p = mp("k%05d" % (n + 1))
if os.path.exists(p):
    got, want = read_file(p), (b"%05d" % (n + 1)) * (200 + 37 * ((n + 1) % 50))
    assert want.startswith(got), "the file cut by the kill holds other bytes"
'
check "the daemon log names no error but the kill" sh -c '! grep -Ei "corrupt|authentication" "$1"' _ "${MOUNT_LOG[$MNT]}"

umount_check "unmount" "$MNT"
mount_check "a plain mount once the writeback_cache mount is gone" "$VOL" "$MNT"
check "and a writeback_cache mount is refused beside it" \
	refused "writeback_cache needs the volume to itself" -o writeback_cache
umount_check "unmount" "$MNT"
summary
