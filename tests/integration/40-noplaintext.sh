#!/bin/bash
# Nothing readable in the backing store: names, contents, symlink targets,
# xattr names and values that carry a marker string never show up in the
# backing directory (contents, names, backing xattrs, base64/hex-decoded
# names) or in the key directory, and backing sizes are rounded to blocks.
. "$(dirname "$0")/lib.sh"

mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
mount_ckfs "$VOL" "$MNT" || { notok "mount"; summary; exit 1; }

MARK=ckfsMARK$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
export MARK
echo "# marker: $MARK"

write_marked() {
	py '
m = os.environ["MARK"]; mb = m.encode()
d = mp("dir-" + m); os.mkdir(d)
write_file(mp("file-" + m + ".txt"), mb)
write_file(os.path.join(d, "inner-" + m), b"inner " + mb)
write_file(mp("tiny"), mb)
long = (m + "-") * (255 // (len(m) + 1)); long = long + "L" * (255 - len(long))
assert len(long) == 255
write_file(mp(long), b"long-named " + mb)
os.mkdir(mp("D" + long[1:]))
write_file(mp("D" + long[1:], long), mb * 10)
lines = b"".join(b"line %07d %s\n" % (i, mb) for i in range(300000))
write_file(mp("big-" + m), lines)
edge = bytearray(rbytes(3 * 4096, 1)); edge[4090:4090 + len(mb)] = mb
write_file(mp("edge"), bytes(edge))
os.symlink("target-" + m + "/path", mp("link-" + m))
os.symlink(("/" + m) * 40, mp("longlink"))
os.setxattr(mp("file-" + m + ".txt"), "user." + m, (m + "-value").encode())
os.setxattr(d, "user.dir-" + m, mb * 20)
os.link(mp("file-" + m + ".txt"), mp("hard-" + m))
os.mkfifo(mp("fifo-" + m))
write_file(mp("old-" + m), mb)
os.rename(mp("old-" + m), mp("new-" + m))
write_file(mp("deleted-" + m), mb); os.unlink(mp("deleted-" + m))
with open(mp("mapped"), "w+b") as f:
    f.truncate(8192)
    mm = mmap.mmap(f.fileno(), 8192)
    mm[100:100 + len(mb)] = mb
    mm.flush(); mm.close()
write_file(mp("same1"), rbytes(20000, 5)); write_file(mp("same2"), rbytes(20000, 5))
write_file(mp("aaaa"), b"A" * (1 << 20))
for n in (1, 100, 1000, 4000, 4096, 4097, 6000, 8192, 8193):
    write_file(mp("size%d" % n), b"s" * n)
'
}
check "write files, dirs, symlinks, xattrs and a 255-byte name carrying the marker" write_marked

# The backing inode of each size probe, for after the unmount.
declare -A BACK=()
for n in 1 100 1000 4000 4096 4097 6000 8192 8193; do BACK[$n]=$(backing_of "$MNT/size$n" "$VOL"); done
BACK_AAAA=$(backing_of "$MNT/aaaa" "$VOL")
BACK_SAME1=$(backing_of "$MNT/same1" "$VOL"); BACK_SAME2=$(backing_of "$MNT/same2" "$VOL")
check "found the backing files of the probes" test -n "${BACK[1]}" -a -n "${BACK[8193]}" -a -n "$BACK_AAAA"

umount_ckfs "$MNT"; check "daemon exited 0 on unmount" test $? -eq 0

sh_check "no backing file content contains the marker (grep -r -a)" '
if grep -r -a -l -F "$MARK" "$VOL"; then exit 1; fi; exit 0'
sh_check "no backing name contains the marker" '
! find "$VOL" | grep -F "$MARK"'
sh_check "the key directory does not contain the marker" '
if grep -r -a -l -F "$MARK" "$KEYS"; then exit 1; fi
! find "$KEYS" | grep -F "$MARK"'
sh_check "the marker is not there in hex either" '
hex=$(printf %s "$MARK" | od -An -tx1 | tr -d " \n")
if grep -r -a -l -i -F "$hex" "$VOL"; then exit 1; fi
! find "$VOL" | grep -i -F "$hex"'

py_check "backing names do not decode (base64url/base64/hex) to anything holding the marker" '
import base64, binascii
m = os.environ["MARK"].encode()
bad = []
for dp, dn, fn in os.walk(VOL):
    for n in dn + fn:
        for dec in (base64.urlsafe_b64decode, base64.b64decode, base64.b32decode, binascii.unhexlify):
            try:
                raw = dec(n.lstrip(".").encode() + b"=" * (-len(n.lstrip(".")) % 4 if dec is not binascii.unhexlify else 0))
            except Exception:
                continue
            if m in raw:
                bad.append(os.path.join(dp, n))
eq(bad, [], "names that decode to the marker")
'

py_check "backing xattrs (names and values) do not contain the marker" '
import base64
m = os.environ["MARK"].encode()
bad = []
for dp, dn, fn in os.walk(VOL):
    for n in dn + fn + ["."]:
        p = os.path.join(dp, n)
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError:
            continue
        for x in names:
            v = os.getxattr(p, x, follow_symlinks=False)
            for blob in (x.encode(), v):
                try:
                    dec = base64.urlsafe_b64decode(blob + b"=" * (-len(blob) % 4))
                except Exception:
                    dec = b""
                if m in blob or m in dec:
                    bad.append((p, x))
eq(bad, [], "backing xattrs with the marker")
'

export BACK_AAAA BACK_SAME1 BACK_SAME2
py_check "ciphertext looks random: no long runs in a 1 MiB file of A bytes" '
b = read_file(os.environ["BACK_AAAA"])[int(os.environ["CK_HDR"]):]
cb = int(os.environ["CK_CBLOCK"])
run = best = 1
for i in range(1, len(b)):
    run = run + 1 if b[i] == b[i - 1] else 1
    best = max(best, run)
assert best < 24, "a run of %d equal bytes" % best
# equal plaintext blocks must not give equal ciphertext blocks
blocks = set()
for i in range(0, len(b) - cb, cb):
    blocks.add(b[i:i + cb])
assert len(blocks) == len(range(0, len(b) - cb, cb)), "repeated ciphertext blocks"
'

py_check "two files with the same content have different ciphertext" '
a, b = read_file(os.environ["BACK_SAME1"]), read_file(os.environ["BACK_SAME2"])
eq(len(a), len(b), "backing sizes")
h, cb = int(os.environ["CK_HDR"]), int(os.environ["CK_CBLOCK"])
assert a[h:] != b[h:], "same ciphertext"
same = sum(1 for i in range(h, len(a), cb) if a[i:i + cb] == b[i:i + cb])
eq(same, 0, "identical ciphertext blocks")
'

size_of() { stat -c %s "$1"; }
sh_check "backing sizes differ from the plaintext sizes" '
for n in 1 100 1000 4000 4096 4097 6000 8192 8193; do
	s=$(size_of "${BACK[$n]}"); echo "plaintext $n -> backing $s"
	[ "$s" != "$n" ] || exit 1
done'
sh_check "backing sizes are rounded to blocks (1..4096 bytes alike, 4097..8192 alike)" '
a=$(size_of "${BACK[1]}")
for n in 100 1000 4000 4096; do [ "$(size_of "${BACK[$n]}")" = "$a" ] || { echo "size$n: $(size_of "${BACK[$n]}") vs size1: $a"; exit 1; }; done
b=$(size_of "${BACK[4097]}")
for n in 6000 8192; do [ "$(size_of "${BACK[$n]}")" = "$b" ] || { echo "size$n: $(size_of "${BACK[$n]}") vs size4097: $b"; exit 1; }; done
[ "$b" -gt "$a" ] && [ "$(size_of "${BACK[8193]}")" -gt "$b" ]'

# Sanity: the marker is really there in plaintext when mounted.
if mount_ckfs "$VOL" "$MNT"; then
	sh_check "the files read back with the marker after remount" '
	grep -q -F "$MARK" "$MNT/file-$MARK.txt" && grep -q -F "$MARK" "$MNT/edge" &&
	[ "$(readlink "$MNT/link-$MARK")" = "target-$MARK/path" ] &&
	[ "$(getfattr --only-values -n "user.$MARK" "$MNT/file-$MARK.txt")" = "$MARK-value" ] &&
	[ "$(grep -c -F "$MARK" "$MNT/big-$MARK")" = 300000 ]'
else
	notok "remount"
fi
summary
