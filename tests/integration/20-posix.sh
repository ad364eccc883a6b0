#!/bin/bash
# POSIX behaviour of a native filesystem on a ckfs mount (issue 3's list):
# every item is one or more assertions at the syscall level (python3).
# At the end the whole tree is recorded, the volume remounted, and the tree
# must be identical (contents, modes, owners, times in ns, links, xattrs).
. "$(dirname "$0")/lib.sh"

mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
mount_ckfs "$VOL" "$MNT" || { notok "mount"; summary; exit 1; }
P=$MNT/p
mkdir -p "$P"
export P

# ------------------------------------------------------------ basic I/O
py_check "create, write, read back files of sizes around block edges" '
os.makedirs(mp("p/sizes"), exist_ok=True)
for n in [0, 1, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12293, 65536, 100000, 1048577]:
    write_file(mp("p/sizes/f%d" % n), rbytes(n, n))
for n in [0, 1, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12293, 65536, 100000, 1048577]:
    eq(size(mp("p/sizes/f%d" % n)), n, "size of f%d" % n)
    eq(read_file(mp("p/sizes/f%d" % n)), rbytes(n, n), "content of f%d" % n)
'

py_check "read at and past EOF returns 0 bytes" '
fd = os.open(mp("p/sizes/f4097"), os.O_RDONLY)
eq(os.pread(fd, 100, 4097), b"", "read at EOF")
eq(os.pread(fd, 100, 1 << 20), b"", "read past EOF")
eq(os.pread(fd, 100, 4090), rbytes(4097, 4097)[4090:], "read across EOF")
os.close(fd)
'

py_check "unaligned reads across block boundaries" '
data = rbytes(100000, 100000)
fd = os.open(mp("p/sizes/f100000"), os.O_RDONLY)
for off, n in [(4095, 2), (4000, 200), (8191, 4098), (1, 99998), (12287, 1), (99999, 10)]:
    eq(os.pread(fd, n, off), data[off:off + n], "pread(%d, %d)" % (off, n))
os.close(fd)
'

py_check "O_APPEND: two appending fds both write at the end" '
f = mp("p/append")
write_file(f, b"a" * 10)
a = os.open(f, os.O_WRONLY | os.O_APPEND)
b = os.open(f, os.O_WRONLY | os.O_APPEND)
os.write(a, b"x" * 5000)
os.write(b, b"yyy")
os.write(a, b"z")
eq(os.lseek(a, 0, os.SEEK_CUR), 5014, "offset of the first fd")
os.lseek(b, 0, os.SEEK_SET)
os.write(b, b"w")
os.close(a); os.close(b)
eq(read_file(f), b"a" * 10 + b"x" * 5000 + b"yyy" + b"z" + b"w", "content")
'

py_check "O_TRUNC empties an existing file (no stale data after)" '
f = mp("p/trunc")
write_file(f, rbytes(10000, 1))
fd = os.open(f, os.O_WRONLY | os.O_TRUNC)
eq(os.fstat(fd).st_size, 0, "size after O_TRUNC")
os.pwrite(fd, b"abc", 0)
os.close(fd)
eq(read_file(f), b"abc", "content")
os.truncate(f, 9000)
eq(read_file(f), b"abc" + bytes(8997), "content after growing again")
'

py_check "O_CREAT|O_EXCL fails with EEXIST on a file, dir and dangling symlink" '
f = mp("p/excl")
fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644); os.close(fd)
expect_errno(errno.EEXIST, os.open, f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.mkdir(mp("p/excl.d"))
expect_errno(errno.EEXIST, os.open, mp("p/excl.d"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.symlink("nowhere", mp("p/excl.l"))
expect_errno(errno.EEXIST, os.open, mp("p/excl.l"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
assert not os.path.lexists(mp("p/nowhere")), "O_EXCL followed the dangling symlink"
'

# ------------------------------------------------------------ truncate
py_check "truncate grows mid-block: old data kept, new range reads zeros" '
f = mp("p/tgrow"); d = rbytes(5000, 2)
write_file(f, d)
os.truncate(f, 10000)
eq(size(f), 10000, "size")
eq(read_file(f), d + bytes(5000), "content")
'

py_check "truncate shrinks mid-block, then grows: no stale bytes come back" '
f = mp("p/tshrink"); d = rbytes(20000, 3)
write_file(f, d)
for cut, grow in [(3000, 9000), (4096, 12288), (8193, 8200), (1, 5000), (0, 4096)]:
    write_file(f, d)
    os.truncate(f, cut)
    eq(read_file(f), d[:cut], "after truncate to %d" % cut)
    os.truncate(f, grow)
    eq(read_file(f), d[:cut] + bytes(grow - cut), "after truncate %d then %d" % (cut, grow))
'

py_check "ftruncate grow/shrink through an open fd, then write past the end" '
f = mp("p/ftrunc"); d = rbytes(10000, 4)
fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, d)
os.ftruncate(fd, 6000)
eq(os.fstat(fd).st_size, 6000, "fstat after shrink")
os.ftruncate(fd, 7000)
os.pwrite(fd, b"END", 9000)
eq(os.fstat(fd).st_size, 9003, "fstat after write")
os.close(fd)
eq(read_file(f), d[:6000] + bytes(3000) + b"END", "content")
'

# ------------------------------------------------------------ fallocate
py_check "fallocate mode 0 extends the file with zeros, keeps data" '
f = mp("p/falloc"); d = rbytes(1000, 5)
write_file(f, d)
fd = os.open(f, os.O_RDWR)
fallocate(fd, 0, 0, 20000)
eq(os.fstat(fd).st_size, 20000, "size")
fallocate(fd, 0, 100, 50)
eq(os.fstat(fd).st_size, 20000, "size after fallocate inside")
os.close(fd)
eq(read_file(f), d + bytes(19000), "content")
'

py_check "fallocate KEEP_SIZE keeps the size (or EOPNOTSUPP)" '
f = mp("p/fkeep"); d = rbytes(5000, 6)
write_file(f, d)
fd = os.open(f, os.O_RDWR)
try:
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 100000)
except OSError as e:
    if e.errno != errno.EOPNOTSUPP:
        raise
    note("fallocate(FALLOC_FL_KEEP_SIZE): EOPNOTSUPP")
eq(os.fstat(fd).st_size, 5000, "size")
os.ftruncate(fd, 30000)
os.close(fd)
eq(read_file(f), d + bytes(25000), "content after growing over the allocated range")
'

py_check "fallocate PUNCH_HOLE|KEEP_SIZE zeroes the range, keeps size (or EOPNOTSUPP)" '
f = mp("p/punch"); d = bytearray(rbytes(40000, 7))
write_file(f, bytes(d))
fd = os.open(f, os.O_RDWR)
try:
    for off, n in [(5000, 6000), (16384, 8192), (39990, 100), (100, 1), (0, 3)]:
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n)
        end = min(off + n, len(d))
        d[off:end] = bytes(end - off)
        eq(os.fstat(fd).st_size, 40000, "size after punch(%d, %d)" % (off, n))
        eq(pread_all(fd, 0, 50000), bytes(d), "content after punch(%d, %d)" % (off, n))
except OSError as e:
    if e.errno != errno.EOPNOTSUPP:
        raise
    note("fallocate(FALLOC_FL_PUNCH_HOLE): EOPNOTSUPP")
os.close(fd)
os.posix_fadvise(os.open(f, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)
eq(read_file(f), bytes(d), "content after dropping the page cache")
'

# ------------------------------------------------------------ sparse, big
py_check "sparse file: a write at 10 MiB leaves a hole that reads as zeros" '
f = mp("p/sparse")
fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(fd, b"tail", 10 << 20)
os.pwrite(fd, b"head", 0)
eq(os.fstat(fd).st_size, (10 << 20) + 4, "size")
h = pread_all(fd, 0, (10 << 20) + 4)
os.close(fd)
eq(h, b"head" + bytes((10 << 20) - 4) + b"tail", "content")
'

sh_check "truncate -s 5G: size beyond 4 GiB in stat -c %s, tail reads zeros" '
f=$P/five_g
truncate -s 5G "$f" &&
test "$(stat -c %s "$f")" = 5368709120 &&
tail -c 8192 "$f" | cmp - <(head -c 8192 /dev/zero) &&
dd if="$f" bs=4096 skip=1048574 count=4 status=none | cmp - <(head -c 16384 /dev/zero)'

sh_check "a 5 GiB sparse file stays sparse on the backing store (< 64 MiB used)" '
b=$(backing_of "$P/five_g" "$VOL") && [ -n "$b" ] &&
used=$(( $(stat -c %b "$b") * $(stat -c %B "$b") )) &&
echo "backing $b uses $used bytes" && [ "$used" -lt $((64 << 20)) ]'

py_check "5 GiB file: 1 MiB written at offset 5e9 reads back, holes read zero" '
f = mp("p/big5g"); d = rbytes(1 << 20, 8)
fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
pwrite_all(fd, d, 5000000000)
eq(os.fstat(fd).st_size, 5000000000 + (1 << 20), "size")
eq(os.stat(f).st_size, 5000000000 + (1 << 20), "stat size")
eq(pread_all(fd, 5000000000, 1 << 20), d, "data at 5e9")
eq(pread_all(fd, (1 << 32) - 10, 20), bytes(20), "zeros across 4 GiB")
eq(pread_all(fd, 0, 4096), bytes(4096), "zeros at 0")
os.close(fd)
fd = os.open(f, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
eq(pread_all(fd, 5000000000 - 7, (1 << 20) + 7), bytes(7) + d, "data at 5e9 (cold)")
os.close(fd)
'

py_check "writes across the 4 GiB boundary read back" '
f = mp("p/big4g"); d = rbytes(12288, 9)
fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
pwrite_all(fd, d, (1 << 32) - 5000)
os.close(fd)
fd = os.open(f, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
eq(pread_all(fd, (1 << 32) - 5000, 12288), d, "data")
eq(os.fstat(fd).st_size, (1 << 32) - 5000 + 12288, "size")
os.close(fd)
'

# ------------------------------------------------------------ mmap, fsync
py_check "mmap MAP_SHARED writes reach the file (read(2) and after reopen)" '
f = mp("p/mmap"); d = bytearray(rbytes(3 * 4096 + 100, 10))
write_file(f, bytes(d))
with open(f, "r+b") as fh:
    m = mmap.mmap(fh.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    eq(m[:], bytes(d), "mapped content")
    m[4000:4200] = b"M" * 200
    m[len(d) - 5:] = b"EEEEE"
    d[4000:4200] = b"M" * 200; d[len(d) - 5:] = b"EEEEE"
    m.flush()
    eq(os.pread(fh.fileno(), len(d) + 10, 0), bytes(d), "read(2) of the mapped file")
    m.close()
fd = os.open(f, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
eq(pread_all(fd, 0, len(d) + 10), bytes(d), "content after dropping the cache")
os.close(fd)
'

py_check "mmap after ftruncate grow: writes in the new range persist" '
f = mp("p/mmap2")
fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"x" * 100)
os.ftruncate(fd, 8192)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED)
m[8000:8010] = b"0123456789"
m.flush(); m.close(); os.close(fd)
eq(read_file(f), b"x" * 100 + bytes(7900) + b"0123456789" + bytes(182), "content")
'

py_check "fsync and fdatasync on files, fsync on a directory" '
f = mp("p/sync")
fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, rbytes(10000, 11))
os.fsync(fd)
os.pwrite(fd, b"z", 5)
os.fdatasync(fd)
os.close(fd)
dfd = os.open(mp("p"), os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.close(dfd)
'

# ------------------------------------------------------------ rename
py_check "rename within a directory keeps content and inode" '
a, b = mp("p/ren_a"), mp("p/ren_b")
d = rbytes(9000, 12); write_file(a, d)
ino = os.stat(a).st_ino
os.rename(a, b)
expect_errno(errno.ENOENT, os.stat, a)
eq(read_file(b), d, "content"); eq(os.stat(b).st_ino, ino, "st_ino")
'

py_check "rename across directories (file, then directory with contents)" '
os.makedirs(mp("p/rd1/sub/deeper"), exist_ok=True); os.makedirs(mp("p/rd2"), exist_ok=True)
d = rbytes(7000, 13)
write_file(mp("p/rd1/x"), d)
write_file(mp("p/rd1/sub/f"), d[:100]); write_file(mp("p/rd1/sub/deeper/g"), d[:5000])
os.rename(mp("p/rd1/x"), mp("p/rd2/y"))
eq(read_file(mp("p/rd2/y")), d, "moved file")
eq(sorted(os.listdir(mp("p/rd1"))), ["sub"], "source dir listing")
os.rename(mp("p/rd1/sub"), mp("p/rd2/sub2"))
eq(read_file(mp("p/rd2/sub2/f")), d[:100], "file in moved dir")
eq(read_file(mp("p/rd2/sub2/deeper/g")), d[:5000], "file two levels down in moved dir")
eq(sorted(os.listdir(mp("p/rd2"))), ["sub2", "y"], "target dir listing")
'

py_check "rename over an existing file replaces it (open fd keeps the old data)" '
a, b = mp("p/over_a"), mp("p/over_b")
write_file(a, b"new content"); write_file(b, b"old content that is longer" * 300)
fd = os.open(b, os.O_RDONLY)
os.rename(a, b)
eq(read_file(b), b"new content", "target content")
assert not os.path.exists(a)
eq(os.stat(b).st_nlink, 1, "st_nlink")
eq(os.pread(fd, 30, 0), b"old content that is longerold ", "old data through the open fd")
os.close(fd)
'

py_check "rename a directory over an empty directory" '
os.makedirs(mp("p/dsrc/in"), exist_ok=True); os.makedirs(mp("p/ddst"), exist_ok=True)
write_file(mp("p/dsrc/in/f"), b"hello")
os.rename(mp("p/dsrc"), mp("p/ddst"))
eq(read_file(mp("p/ddst/in/f")), b"hello", "content")
assert not os.path.exists(mp("p/dsrc"))
'

py_check "rename a directory over a non-empty directory fails with ENOTEMPTY" '
os.makedirs(mp("p/ne_src"), exist_ok=True); os.makedirs(mp("p/ne_dst"), exist_ok=True)
write_file(mp("p/ne_dst/keep"), b"k")
expect_errno((errno.ENOTEMPTY, errno.EEXIST), os.rename, mp("p/ne_src"), mp("p/ne_dst"))
eq(read_file(mp("p/ne_dst/keep")), b"k", "target untouched")
'

py_check "rename file over dir gives EISDIR, dir over file ENOTDIR, dir into itself EINVAL" '
os.makedirs(mp("p/rt_dir/child"), exist_ok=True); write_file(mp("p/rt_file"), b"f")
expect_errno(errno.EISDIR, os.rename, mp("p/rt_file"), mp("p/rt_dir"))
expect_errno(errno.ENOTDIR, os.rename, mp("p/rt_dir"), mp("p/rt_file"))
expect_errno(errno.EINVAL, os.rename, mp("p/rt_dir"), mp("p/rt_dir/child/x"))
'

py_check "rename of a name onto a hard link of the same file is a no-op" '
a, b = mp("p/same_a"), mp("p/same_b")
write_file(a, b"same"); os.link(a, b)
os.rename(a, b)
assert os.path.exists(a) and os.path.exists(b), "both names must remain"
eq(os.stat(a).st_nlink, 2, "st_nlink")
'

py_check "renameat2 RENAME_NOREPLACE: EEXIST if the target exists, renames otherwise" '
a, b, c = mp("p/nr_a"), mp("p/nr_b"), mp("p/nr_c")
write_file(a, b"A"); write_file(b, b"B")
expect_errno(errno.EEXIST, renameat2, a, b, RENAME_NOREPLACE)
eq(read_file(b), b"B", "target kept")
renameat2(a, c, RENAME_NOREPLACE)
eq(read_file(c), b"A", "renamed"); assert not os.path.exists(a)
'

py_check "renameat2 RENAME_EXCHANGE swaps two files across directories, and file with dir" '
os.makedirs(mp("p/ex1"), exist_ok=True); os.makedirs(mp("p/ex2"), exist_ok=True)
a, b = mp("p/ex1/a"), mp("p/ex2/b")
da, db = rbytes(5000, 14), rbytes(300, 15)
write_file(a, da); write_file(b, db)
renameat2(a, b, RENAME_EXCHANGE)
eq(read_file(a), db, "a after exchange"); eq(read_file(b), da, "b after exchange")
os.mkdir(mp("p/ex2/dir")); write_file(mp("p/ex2/dir/in"), b"inside")
renameat2(a, mp("p/ex2/dir"), RENAME_EXCHANGE)
eq(read_file(mp("p/ex1/a/in")), b"inside", "file inside the exchanged dir")
eq(read_file(mp("p/ex2/dir")), db, "exchanged file")
expect_errno(errno.ENOENT, renameat2, mp("p/ex1/none"), b, RENAME_EXCHANGE)
'

py_check "an fd stays valid across a cross-directory rename; writes land in the file" '
os.makedirs(mp("p/fdr1"), exist_ok=True); os.makedirs(mp("p/fdr2"), exist_ok=True)
a, b = mp("p/fdr1/f"), mp("p/fdr2/g")
write_file(a, b"0123456789")
fd = os.open(a, os.O_RDWR)
os.rename(a, b)
os.pwrite(fd, b"ABC", 8)
eq(os.pread(fd, 20, 0), b"01234567ABC", "through the fd")
os.close(fd)
fd = os.open(b, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
eq(read_file(b), b"01234567ABC", "by the new name")
'

# ------------------------------------------------------------ hard links
py_check "hard links: link count, same inode, shared content, across directories" '
os.makedirs(mp("p/hl/other"), exist_ok=True)
a, b, c = mp("p/hl/a"), mp("p/hl/b"), mp("p/hl/other/c")
write_file(a, b"first")
os.link(a, b); os.link(b, c)
for x in (a, b, c):
    eq(os.stat(x).st_nlink, 3, "st_nlink of " + x)
eq(os.stat(a).st_ino, os.stat(c).st_ino, "st_ino")
fd = os.open(b, os.O_WRONLY | os.O_APPEND); os.write(fd, b" second"); os.close(fd)
eq(read_file(c), b"first second", "content through another name")
os.chmod(c, 0o600)
eq(mode_of(a), 0o600, "mode shared")
'

py_check "unlinking one hard link keeps the others" '
a, b, c = mp("p/hl/a"), mp("p/hl/b"), mp("p/hl/other/c")
os.unlink(a)
eq(os.stat(b).st_nlink, 2, "st_nlink"); eq(read_file(c), b"first second", "content")
os.unlink(c)
eq(os.stat(b).st_nlink, 1, "st_nlink"); eq(read_file(b), b"first second", "content")
'

py_check "rename of one hard link keeps both names working" '
a, b = mp("p/hl/r1"), mp("p/hl/r2")
write_file(a, rbytes(9000, 16)); os.link(a, b)
os.rename(a, mp("p/hl/other/r1moved"))
eq(read_file(mp("p/hl/other/r1moved")), rbytes(9000, 16), "renamed link")
eq(read_file(b), rbytes(9000, 16), "other link")
eq(os.stat(b).st_nlink, 2, "st_nlink")
'

py_check "link errors: EEXIST on an existing name, EPERM on a directory" '
write_file(mp("p/hl/e1"), b"1"); write_file(mp("p/hl/e2"), b"2")
expect_errno(errno.EEXIST, os.link, mp("p/hl/e1"), mp("p/hl/e2"))
expect_errno(errno.EPERM, os.link, mp("p/hl/other"), mp("p/hl/dirlink"))
'

py_check "many hard links: 10 names work, more work or fail with EMLINK; a full file still renames" '
os.makedirs(mp("p/hl/many"), exist_ok=True)
base = mp("p/hl/many/l0"); write_file(base, b"many")
for i in range(1, 10):
    os.link(base, mp("p/hl/many/l%d" % i))
eq(os.stat(base).st_nlink, 10, "st_nlink")
n = 10
try:
    while n < 20:
        os.link(base, mp("p/hl/many/l%d" % n)); n += 1
except OSError as e:
    if e.errno != errno.EMLINK:
        raise
    note("hard links: a file has at most %d names (EMLINK beyond)" % n)
eq(os.stat(base).st_nlink, n, "st_nlink at the limit")
os.rename(mp("p/hl/many/l1"), mp("p/hl/renamed-l1"))
os.rename(mp("p/hl/renamed-l1"), mp("p/hl/many/l1"))
for i in range(0, n):
    eq(read_file(mp("p/hl/many/l%d" % i)), b"many", "content of l%d" % i)
'

# ------------------------------------------------------------ symlinks
py_check "symlinks: readlink, lstat type and size, absolute and relative targets" '
os.makedirs(mp("p/sl/d"), exist_ok=True)
write_file(mp("p/sl/d/target"), b"through the link")
os.symlink("d/target", mp("p/sl/rel"))
os.symlink("../sl/d", mp("p/sl/dirlink"))
os.symlink("/etc/hostname", mp("p/sl/abs"))
eq(os.readlink(mp("p/sl/rel")), "d/target", "readlink")
st = os.lstat(mp("p/sl/rel"))
assert stat.S_ISLNK(st.st_mode), "not a symlink"
eq(st.st_size, len("d/target"), "symlink st_size")
eq(read_file(mp("p/sl/rel")), b"through the link", "read through relative link")
eq(read_file(mp("p/sl/dirlink/target")), b"through the link", "through a dir symlink")
eq(read_file(mp("p/sl/abs")), read_file("/etc/hostname"), "absolute target")
'

py_check "dangling symlink: lstat works, stat ENOENT, O_CREAT creates the target" '
os.symlink("missing-target", mp("p/sl/dangling"))
assert stat.S_ISLNK(os.lstat(mp("p/sl/dangling")).st_mode)
expect_errno(errno.ENOENT, os.stat, mp("p/sl/dangling"))
fd = os.open(mp("p/sl/dangling"), os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b"made"); os.close(fd)
eq(read_file(mp("p/sl/missing-target")), b"made", "created through the link")
'

py_check "symlink targets of 1000 and 3000 bytes; 4095 bytes works or fails with ENAMETOOLONG" '
for n in (1000, 3000, 4095):
    t = ("x" * 99 + "/") * (n // 100) + "y" * (n % 100)
    assert len(t) == n
    try:
        os.symlink(t, mp("p/sl/long%d" % n))
    except OSError as e:
        if n > 3000 and e.errno == errno.ENAMETOOLONG:
            note("symlink targets longer than 3000 bytes: ENAMETOOLONG (documented limit)")
            continue
        raise
    eq(os.readlink(mp("p/sl/long%d" % n)), t, "target of %d bytes" % n)
    eq(os.lstat(mp("p/sl/long%d" % n)).st_size, n, "st_size")
'

py_check "symlink rename across directories, hard link to a symlink, lchown" '
os.makedirs(mp("p/sl/moved"), exist_ok=True)
os.symlink("some/where", mp("p/sl/mv"))
os.rename(mp("p/sl/mv"), mp("p/sl/moved/mv2"))
eq(os.readlink(mp("p/sl/moved/mv2")), "some/where", "after rename")
os.link(mp("p/sl/moved/mv2"), mp("p/sl/moved/hard"), follow_symlinks=False)
eq(os.readlink(mp("p/sl/moved/hard")), "some/where", "hard link to symlink")
eq(os.lstat(mp("p/sl/moved/hard")).st_nlink, 2, "st_nlink of the symlink")
os.chown(mp("p/sl/moved/mv2"), 4321, 8765, follow_symlinks=False)
eq(owner(mp("p/sl/moved/mv2")), (4321, 8765), "lchown")
'

# ------------------------------------------------------------ special files
py_check "mkfifo: a FIFO node that passes data" '
f = mp("p/fifo")
os.mkfifo(f, 0o640)
st = os.lstat(f)
assert stat.S_ISFIFO(st.st_mode), "not a FIFO: %o" % st.st_mode
r = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
w = os.open(f, os.O_WRONLY)
os.write(w, b"through the fifo")
eq(os.read(r, 100), b"through the fifo", "data")
os.close(w); os.close(r)
'

py_check "a unix socket can be bound on the mount" '
import socket
f = mp("p/sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(f)
assert stat.S_ISSOCK(os.lstat(f).st_mode), "not a socket"
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.sendto(b"ping", f)
eq(s.recv(10), b"ping", "datagram")
s.close(); c.close()
'

# ------------------------------------------------------------ attributes
py_check "new files, dirs and FIFOs get exactly the requested mode under umask 0 and 027" '
d = mp("p/modes"); os.makedirs(d, exist_ok=True)
for um in (0, 0o027):
    os.umask(um)
    fd = os.open("%s/f%o" % (d, um), os.O_CREAT | os.O_WRONLY, 0o666); os.close(fd)
    os.mkdir("%s/d%o" % (d, um), 0o777)
    os.mkfifo("%s/p%o" % (d, um), 0o666)
    eq(mode_of("%s/f%o" % (d, um)), 0o666 & ~um, "file mode under umask %o" % um)
    eq(mode_of("%s/d%o" % (d, um)), 0o777 & ~um, "dir mode under umask %o" % um)
    eq(mode_of("%s/p%o" % (d, um), False), 0o666 & ~um, "fifo mode under umask %o" % um)
'

py_check "chmod and fchmod, including setuid/setgid/sticky bits" '
f = mp("p/attrs"); write_file(f, b"x")
for m in (0o640, 0o4755, 0o2711, 0o000, 0o777, 0o644):
    os.chmod(f, m); eq(mode_of(f), m, "mode")
fd = os.open(f, os.O_RDONLY); os.fchmod(fd, 0o600); os.close(fd)
eq(mode_of(f), 0o600, "fchmod")
os.makedirs(mp("p/attrs.d"), exist_ok=True)
os.chmod(mp("p/attrs.d"), 0o1777); eq(mode_of(mp("p/attrs.d")), 0o1777, "dir mode")
'

py_check "chown and fchown; chown of a setuid file clears the setuid bit" '
f = mp("p/attrs")
os.chown(f, 1234, 5678); eq(owner(f), (1234, 5678), "chown")
fd = os.open(f, os.O_RDONLY); os.fchown(fd, 42, 43); os.close(fd)
eq(owner(f), (42, 43), "fchown")
os.chown(f, -1, 44); eq(owner(f), (42, 44), "chgrp only")
os.chmod(f, 0o4755)
os.chown(f, 1000, 1000)
eq(mode_of(f) & 0o4000, 0, "S_ISUID after chown")
os.chown(f, 0, 0)
'

sh_check "touch -d with nanoseconds sets atime and mtime exactly" '
f=$P/times; : >"$f"
TZ=UTC touch -d "2001-02-03 04:05:06.123456789" "$f" &&
test "$(TZ=UTC stat -c %Y.%y "$f")" = "981173106.2001-02-03 04:05:06.123456789 +0000" &&
TZ=UTC stat -c %x "$f" | grep -F "2001-02-03 04:05:06.123456789"'

py_check "os.utime with ns precision, far past and after 2038" '
f = mp("p/times")
for a, m in [(1234567890123456789, 987654321987654321), (1, 999999999), (4102444800 * 10**9 + 5, 4102444800 * 10**9 + 7)]:
    os.utime(f, ns=(a, m))
    st = os.stat(f)
    eq((st.st_atime_ns, st.st_mtime_ns), (a, m), "atime/mtime ns")
'

py_check "utimensat UTIME_OMIT and UTIME_NOW" '
f = mp("p/times")
os.utime(f, ns=(10**18, 2 * 10**18))
utimensat(f, (5, 6), UTIME_OMIT)
st = os.stat(f); eq((st.st_atime_ns, st.st_mtime_ns), (5 * 10**9 + 6, 2 * 10**18), "after atime set, mtime OMIT")
t0 = time.time_ns()
utimensat(f, UTIME_OMIT, UTIME_NOW)
st = os.stat(f)
eq(st.st_atime_ns, 5 * 10**9 + 6, "atime after OMIT")
assert abs(st.st_mtime_ns - t0) < 5 * 10**9, "mtime not now: %d vs %d" % (st.st_mtime_ns, t0)
utimensat(f, UTIME_NOW, UTIME_OMIT)
st2 = os.stat(f)
assert abs(st2.st_atime_ns - t0) < 5 * 10**9, "atime not now"
eq(st2.st_mtime_ns, st.st_mtime_ns, "mtime after OMIT")
'

sh_check "touch -a and touch -m change only their own time" '
f=$P/times2; : >"$f"
touch -d "2010-01-01 00:00:00" "$f" &&
m0=$(stat -c %Y "$f") && a0=$(stat -c %X "$f") &&
touch -a -d "2011-01-01 00:00:00" "$f" &&
[ "$(stat -c %Y "$f")" = "$m0" ] && [ "$(stat -c %X "$f")" != "$a0" ] &&
a1=$(stat -c %X "$f") && touch -m "$f" &&
[ "$(stat -c %X "$f")" = "$a1" ] && [ "$(stat -c %Y "$f")" -gt "$m0" ]'

py_check "open and close without reading or writing leave atime and mtime alone" '
f = mp("p/times4"); write_file(f, b"data")
old = (1293840000 * 10**9, 1262304000 * 10**9)   # atime 2011 > mtime 2010, both > 24 h old
for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR):
    os.utime(f, ns=old)
    fd = os.open(f, flags); os.close(fd)
    time.sleep(1.2)                              # let the kernel attribute cache expire
    st = os.stat(f)
    eq((st.st_atime_ns, st.st_mtime_ns), old, "atime/mtime after open(%s)/close" % flags)
'

py_check "write updates mtime and ctime; chmod updates ctime only; utime on a symlink itself" '
f = mp("p/times3"); write_file(f, b"x")
os.utime(f, ns=(10**18, 10**18))
st0 = os.stat(f)
time.sleep(0.02)
os.chmod(f, 0o640)
st1 = os.stat(f)
eq(st1.st_mtime_ns, 10**18, "mtime after chmod")
assert st1.st_ctime_ns > st0.st_ctime_ns or st1.st_ctime_ns > 10**18, "ctime not updated by chmod"
fd = os.open(f, os.O_WRONLY); os.write(fd, b"y"); os.close(fd)
st2 = os.stat(f)
assert st2.st_mtime_ns != 10**18 and abs(st2.st_mtime_ns - time.time_ns()) < 5 * 10**9, "mtime not updated by write"
os.symlink("times3", mp("p/times3.l"))
os.utime(mp("p/times3.l"), ns=(3 * 10**9, 4 * 10**9), follow_symlinks=False)
eq(os.lstat(mp("p/times3.l")).st_mtime_ns, 4 * 10**9, "symlink mtime")
eq(os.stat(f).st_mtime_ns, st2.st_mtime_ns, "target mtime unchanged")
'

py_check "creating and removing entries updates the directory mtime" '
d = mp("p/dtime"); os.makedirs(d, exist_ok=True)
os.utime(d, ns=(10**18, 10**18))
write_file(os.path.join(d, "new"), b"")
assert os.stat(d).st_mtime_ns != 10**18, "dir mtime not updated by create"
os.utime(d, ns=(10**18, 10**18))
os.unlink(os.path.join(d, "new"))
assert os.stat(d).st_mtime_ns != 10**18, "dir mtime not updated by unlink"
'

# ------------------------------------------------------------ xattrs
sh_check "setfattr/getfattr: set, get, list, remove (user.*)" '
f=$P/xa; : >"$f"
setfattr -n user.color -v blue "$f" &&
setfattr -n user.shape -v round "$f" &&
test "$(getfattr --only-values -n user.color "$f")" = blue &&
getfattr -d "$f" | grep -qx "user.shape=\"round\"" &&
setfattr -x user.color "$f" &&
! getfattr -n user.color "$f" 2>/dev/null &&
getfattr -d "$f" | grep -q user.shape'

py_check "xattrs: binary and empty values, CREATE/REPLACE flags, ENODATA" '
f = mp("p/xa2"); write_file(f, b"")
v = bytes(range(256)) * 4
os.setxattr(f, "user.bin", v)
eq(os.getxattr(f, "user.bin"), v, "binary value")
os.setxattr(f, "user.empty", b"")
eq(os.getxattr(f, "user.empty"), b"", "empty value")
expect_errno(errno.EEXIST, os.setxattr, f, "user.bin", b"x", os.XATTR_CREATE)
expect_errno(errno.ENODATA, os.setxattr, f, "user.none", b"x", os.XATTR_REPLACE)
os.setxattr(f, "user.bin", b"replaced", os.XATTR_REPLACE)
eq(os.getxattr(f, "user.bin"), b"replaced", "replaced value")
eq(sorted(os.listxattr(f)), ["user.bin", "user.empty"], "listxattr")
os.removexattr(f, "user.bin")
expect_errno(errno.ENODATA, os.getxattr, f, "user.bin")
expect_errno(errno.ENODATA, os.removexattr, f, "user.bin")
eq(os.listxattr(f), ["user.empty"], "listxattr after remove")
'

py_check "xattrs: several names, a 1 KiB value, a 169-byte name, on a directory" '
f = mp("p/xa3"); write_file(f, b"")
for i in range(5):
    os.setxattr(f, "user.k%d" % i, rbytes(64, i))
os.setxattr(f, "user.big", rbytes(1024, 99))
for i in range(5):
    eq(os.getxattr(f, "user.k%d" % i), rbytes(64, i), "user.k%d" % i)
eq(os.getxattr(f, "user.big"), rbytes(1024, 99), "1 KiB value")
n = "user." + "n" * 164
os.setxattr(f, n, b"long name")
eq(os.getxattr(f, n), b"long name", "value of a 169-byte name")
assert n in os.listxattr(f), "169-byte name not listed"
n = "user." + "n" * 250
try:
    os.setxattr(f, n, b"longer name")
    eq(os.getxattr(f, n), b"longer name", "value of a 255-byte name")
except OSError as e:
    if e.errno not in (errno.ERANGE, errno.ENAMETOOLONG):
        raise
    note("xattr names longer than 169 bytes: %s (docs/FORMAT.md says ENAMETOOLONG)" % ename(e.errno))
os.makedirs(mp("p/xa.d"), exist_ok=True)
os.setxattr(mp("p/xa.d"), "user.dir", b"on a dir")
eq(os.getxattr(mp("p/xa.d"), "user.dir"), b"on a dir", "dir xattr")
'

py_check "xattrs follow renames and are shared by hard links" '
os.makedirs(mp("p/xa.d2"), exist_ok=True)
f = mp("p/xa4"); write_file(f, b"")
os.setxattr(f, "user.keep", b"kept")
os.rename(f, mp("p/xa.d2/xa4"))
os.link(mp("p/xa.d2/xa4"), mp("p/xa4.link"))
eq(os.getxattr(mp("p/xa4.link"), "user.keep"), b"kept", "through the link after rename")
os.setxattr(mp("p/xa4.link"), "user.more", b"m")
eq(os.getxattr(mp("p/xa.d2/xa4"), "user.more"), b"m", "set through the other name")
'

# ------------------------------------------------------------ statfs
sh_check "statfs: sizes, free space and a 255-byte name limit" '
read -r bl bs nl fr av < <(stat -f -c "%b %S %l %f %a" "$MNT") &&
echo "blocks=$bl bsize=$bs namelen=$nl free=$fr avail=$av" &&
[ "$bl" -gt 0 ] && [ "$bs" -gt 0 ] && [ "$nl" -ge 255 ] && [ "$fr" -le "$bl" ] && [ "$av" -le "$fr" ] &&
df -P "$MNT" >/dev/null'

# ------------------------------------------------------------ directories
py_check "directory errors: EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, ENOENT" '
d = mp("p/dirs"); os.makedirs(d + "/sub", exist_ok=True); write_file(d + "/file", b"")
expect_errno(errno.EEXIST, os.mkdir, d)
expect_errno(errno.ENOTEMPTY, os.rmdir, d)
expect_errno(errno.ENOTDIR, os.rmdir, d + "/file")
expect_errno(errno.EISDIR, os.unlink, d + "/sub")
expect_errno(errno.ENOENT, os.open, d + "/none/f", os.O_CREAT | os.O_WRONLY)
expect_errno(errno.EISDIR, os.open, d + "/sub", os.O_WRONLY)
expect_errno(errno.ENOTDIR, os.listdir, d + "/file")
os.rmdir(d + "/sub")
'

py_check "directory link count is 2 + number of subdirectories" '
d = mp("p/nlink"); os.makedirs(d, exist_ok=True)
eq(os.stat(d).st_nlink, 2, "empty dir")
for s in ("a", "b", "c"):
    os.mkdir(os.path.join(d, s))
write_file(os.path.join(d, "f"), b"")
eq(os.stat(d).st_nlink, 5, "with three subdirs")
os.rename(os.path.join(d, "c"), mp("p/nlink_c"))
eq(os.stat(d).st_nlink, 4, "after moving one out")
os.rmdir(mp("p/nlink_c"))
'

py_check "readdir of 500 entries: exact names, d_type, d_ino equals st_ino, unique inodes" '
d = mp("p/r500"); os.makedirs(d, exist_ok=True)
names = set()
for i in range(500):
    n = "entry-%03d-%s" % (i, "x" * (i % 50))
    names.add(n)
    if i % 50 == 1:
        os.mkdir(os.path.join(d, n))
    elif i % 50 == 2:
        os.symlink("target", os.path.join(d, n))
    else:
        write_file(os.path.join(d, n), b"")
got = {}
for e in os.scandir(d):
    got[e.name] = e
eq(set(got), names, "names")
inos = set()
for n, e in got.items():
    st = os.lstat(os.path.join(d, n))
    eq(e.inode(), st.st_ino, "d_ino of " + n)
    inos.add(st.st_ino)
    eq(e.is_dir(follow_symlinks=False), stat.S_ISDIR(st.st_mode), "d_type dir of " + n)
    eq(e.is_symlink(), stat.S_ISLNK(st.st_mode), "d_type symlink of " + n)
eq(len(inos), 500, "distinct inode numbers")
'

check "telldir/seekdir positions are stable over 500 entries" "$SEEKDIR" "$P/r500" 500

sh_check "rm -r of a 500-entry directory removes everything (readdir while deleting)" '
cp -a "$P/r500" "$P/r500copy" && rm -r "$P/r500copy" && [ ! -e "$P/r500copy" ]'

sh_check "empty directory lists only . and .." '
mkdir "$P/emptyd" && test "$(ls -a "$P/emptyd" | tr "\n" " ")" = ". .. "'

# ------------------------------------------------------------ names
py_check "255-byte names: create, stat, readdir, rename, link, unlink; 256 gives ENAMETOOLONG" '
d = mp("p/long"); os.makedirs(d, exist_ok=True)
n1 = "L" * 250 + "-one!"
n2 = "M" * 251 + ".two"
assert len(n1) == 255 and len(n2) == 255
f1 = os.path.join(d, n1)
write_file(f1, rbytes(5000, 20))
eq(os.stat(f1).st_size, 5000, "stat")
assert n1 in os.listdir(d), "not in readdir"
os.rename(f1, os.path.join(d, n2))
eq(sorted(os.listdir(d)), [n2], "readdir after rename")
os.link(os.path.join(d, n2), os.path.join(d, n1))
eq(read_file(f1), rbytes(5000, 20), "through a long hard link")
os.unlink(f1)
eq(read_file(os.path.join(d, n2)), rbytes(5000, 20), "content")
os.unlink(os.path.join(d, n2))
eq(os.listdir(d), [], "readdir after unlink")
expect_errno(errno.ENAMETOOLONG, os.open, os.path.join(d, "x" * 256), os.O_CREAT | os.O_WRONLY)
expect_errno(errno.ENAMETOOLONG, os.mkdir, os.path.join(d, "y" * 256))
expect_errno(errno.ENAMETOOLONG, os.stat, os.path.join(d, "z" * 300))
'

py_check "255-byte names for dirs, symlinks, multibyte UTF-8, and long names with a shared prefix" '
d = mp("p/long2"); os.makedirs(d, exist_ok=True)
dn = os.path.join(d, "D" * 255)
os.mkdir(dn)
write_file(os.path.join(dn, "F" * 255), b"in a long dir")
eq(read_file(os.path.join(dn, "F" * 255)), b"in a long dir", "file in long dir")
os.symlink("T" * 200, os.path.join(d, "S" * 255))
eq(os.readlink(os.path.join(d, "S" * 255)), "T" * 200, "long-named symlink")
u = "\u00e9" * 127 + "x"
assert len(u.encode()) == 255
write_file(os.path.join(d, u), b"utf8")
eq(read_file(os.path.join(d, u)), b"utf8", "UTF-8 name")
prefix = "P" * 240
want = set()
for i in range(60):
    n = prefix + "%015d" % i
    want.add(n)
    write_file(os.path.join(d, n), n.encode())
got = {n for n in os.listdir(d) if n.startswith(prefix)}
eq(got, want, "names sharing a 240-byte prefix")
for n in want:
    eq(read_file(os.path.join(d, n)), n.encode(), "content of " + n[-15:])
'

py_check "odd bytes in names: newline, spaces, non-UTF-8, leading dash" '
d = mp("p/odd").encode(); os.makedirs(d, exist_ok=True)
names = [b"a\nb", b" sp ace ", b"\xff\xfe\x80", b"-rf", b"*?[]", b"tab\there", b"..." , b"%s%n"]
for n in names:
    write_file(os.path.join(d, n), n)
eq(sorted(os.listdir(d)), sorted(names), "readdir (bytes)")
for n in names:
    eq(read_file(os.path.join(d, n)), n, "content of %r" % n)
'

# ------------------------------------------------------------ deep trees
py_check "deep tree: depth 60 with 40-char names (backing path > 4096 bytes)" '
p = mp("p/deep")
comps = ["%02d" % i + "d" * 38 for i in range(60)]
os.makedirs(os.path.join(p, *comps))
leaf = os.path.join(p, *comps, "leaf")
write_file(leaf, rbytes(9000, 21))
eq(read_file(leaf), rbytes(9000, 21), "leaf content")
n = sum(1 for _ in os.walk(p))
eq(n, 61, "directories walked")
os.rename(os.path.join(p, *comps[:59], comps[59]), os.path.join(p, *comps[:59], "renamed"))
eq(read_file(os.path.join(p, *comps[:59], "renamed", "leaf")), rbytes(9000, 21), "after rename")
'

sh_check "the deep tree backing path is longer than 4096 bytes" '
n=$(find "$VOL" -depth -type d | awk "{ if (length(\$0) > m) m = length(\$0) } END { print m }") &&
echo "longest backing dir path: $n bytes" && [ "$n" -gt 4096 ]'

py_check "deep tree through openat: depth 120 (plaintext path > 4096 bytes)" '
os.makedirs(mp("p/deeper"), exist_ok=True)
fd = os.open(mp("p/deeper"), os.O_RDONLY | os.O_DIRECTORY)
fds = [fd]
for i in range(120):
    n = "%03d" % i + "e" * 37
    os.mkdir(n, dir_fd=fd)
    fd = os.open(n, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    fds.append(fd)
w = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
os.write(w, b"very deep"); os.close(w)
r = os.open("leaf", os.O_RDONLY, dir_fd=fd)
eq(os.read(r, 100), b"very deep", "leaf"); os.close(r)
for f in fds:
    os.close(f)
import shutil
shutil.rmtree(mp("p/deeper"))
assert not os.path.exists(mp("p/deeper"))
'

sh_check "rm -rf of the depth-60 tree" 'rm -rf "$P/deep" && [ ! -e "$P/deep" ]'

# ------------------------------------------------------------ unlinked files
sh_check "an open, unlinked file stays readable and writable; its backing file goes away at close" '
before=$(find "$VOL" -type f | wc -l)
py "
f = mp(\"p/unl\")
fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, rbytes(10000, 22))
os.unlink(f)
eq(os.fstat(fd).st_nlink, 0, \"st_nlink\")
assert \"unl\" not in os.listdir(mp(\"p\")), \"still listed\"
os.pwrite(fd, b\"more\", 10000)
os.ftruncate(fd, 20000)
eq(pread_all(fd, 0, 30000), rbytes(10000, 22) + b\"more\" + bytes(9996), \"content\")
os.close(fd)
assert not [n for n in os.listdir(mp(\"p\")) if n.startswith(\".fuse_hidden\")], \"fuse_hidden left\"
" || exit 1
for i in $(seq 30); do [ "$(find "$VOL" -type f | wc -l)" -le "$before" ] && exit 0; sleep 0.1; done
echo "backing files: $before before, $(find "$VOL" -type f | wc -l) after close"; exit 1'

# ------------------------------------------------------------ inode reuse
# The backing filesystem reuses an inode number as soon as it is freed; the
# kernel may still hold the old ckfs inode (an open O_PATH fd, a cwd, or just
# a FORGET not yet sent).  A new entry with that number must not inherit it.
py_check "a file reusing the backing inode number of a removed, still referenced directory works" '
base = mp("p/reuse1"); os.makedirs(base, exist_ok=True)
hits = 0
for trial in range(5):
    a = "%s/old%d" % (base, trial); os.mkdir(a)
    ino = os.stat(a).st_ino
    fd = os.open(a, os.O_PATH)
    os.rmdir(a)
    for i in range(300):
        b = "%s/new%d-%d" % (base, trial, i)
        write_file(b, b"new file")
        if os.lstat(b).st_ino == ino:
            hits += 1
            os.chmod(b, 0o600)
            eq(mode_of(b), 0o600, "mode")
            eq(read_file(b), b"new file", "content")
            assert stat.S_ISREG(os.stat(b).st_mode), "not a regular file"
            break
    os.close(fd)
if not hits:
    note("inode reuse (dir->file) did not happen; test inconclusive")
'

py_check "a directory reusing the backing inode number of a removed, still referenced directory works" '
base = mp("p/reuse2"); os.makedirs(base, exist_ok=True)
hits = 0
for trial in range(5):
    a = "%s/old%d" % (base, trial); os.mkdir(a)
    write_file(a + "/x", b"old")
    os.unlink(a + "/x")
    ino = os.stat(a).st_ino
    fd = os.open(a, os.O_PATH)
    os.rmdir(a)
    for i in range(300):
        b = "%s/new%d-%d" % (base, trial, i)
        os.mkdir(b)
        if os.lstat(b).st_ino == ino:
            hits += 1
            write_file(b + "/inside", b"inside")
            eq(read_file(b + "/inside"), b"inside", "file in the new dir")
            eq(os.listdir(b), ["inside"], "listing of the new dir")
            break
    os.close(fd)
if not hits:
    note("inode reuse (dir->dir) did not happen; test inconclusive")
'

py_check "concurrent mkdir/create/stat/unlink/rmdir by 8 processes: no spurious ENOENT" '
base = mp("p/churn"); os.makedirs(base, exist_ok=True)
pids = []
for w in range(8):
    pid = os.fork()
    if pid == 0:
        bad = 0
        for i in range(150):
            d = "%s/w%d-%d" % (base, w, i)
            try:
                os.mkdir(d)
                write_file(d + "/f", b"x")
                os.stat(d + "/f")
                os.unlink(d + "/f")
                os.rmdir(d)
            except OSError as e:
                bad += 1
                if bad < 3:
                    print("worker %d step %d: %s" % (w, i, e))
        os._exit(1 if bad else 0)
    pids.append(pid)
fails = sum(1 for p in pids if os.waitpid(p, 0)[1] != 0)
eq(fails, 0, "workers that saw errors")
'

# ------------------------------------------------------------ concurrency
py_check "concurrent writers of interleaved 1000-byte stripes in shared blocks" '
f = mp("p/stripes"); n_stripes = 2048; write_file(f, b"")
def stripe(i):
    return bytes([(i * 7 + k) % 251 for k in range(1000)])
pids = []
for w in range(4):
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(f, os.O_WRONLY)
            idx = [i for i in range(n_stripes) if i % 4 == w]
            random.Random(w).shuffle(idx)
            for i in idx:
                pwrite_all(fd, stripe(i), i * 1000)
            os.close(fd)
            os._exit(0)
        except BaseException as e:
            print("writer", w, e); os._exit(1)
    pids.append(pid)
for p in pids:
    eq(os.waitpid(p, 0)[1], 0, "writer exit status")
want = b"".join(stripe(i) for i in range(n_stripes))
eq(read_file(f), want, "content")
fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
eq(read_file(f), want, "content (cold)")
'

py_check "concurrent readers during rewrites never see errors or foreign bytes" '
f = mp("p/rw"); nb = 64
write_file(f, bytes([1]) * (nb * 4096))
pid = os.fork()
if pid == 0:
    try:
        fd = os.open(f, os.O_WRONLY)
        for v in range(2, 40):
            for b in range(nb):
                os.pwrite(fd, bytes([v]) * 4096, b * 4096)
        os.close(fd); os._exit(0)
    except BaseException as e:
        print("writer", e); os._exit(1)
readers = []
for r in range(3):
    rp = os.fork()
    if rp == 0:
        try:
            while True:
                data = read_file(f)
                if len(data) != nb * 4096 or not set(data) <= set(range(1, 40)):
                    print("reader saw", len(data), sorted(set(data))[:10]); os._exit(1)
                if data[-1] == 39:
                    os._exit(0)
        except BaseException as e:
            print("reader", e); os._exit(1)
    readers.append(rp)
eq(os.waitpid(pid, 0)[1], 0, "writer exit status")
for rp in readers:
    eq(os.waitpid(rp, 0)[1], 0, "reader exit status")
eq(read_file(f), bytes([39]) * (nb * 4096), "final content")
'

py_check "concurrent O_APPEND writers: every record exactly once" '
f = mp("p/applog"); write_file(f, b"")
pids = []
for w in range(4):
    pid = os.fork()
    if pid == 0:
        fd = os.open(f, os.O_WRONLY | os.O_APPEND)
        for i in range(200):
            rec = ("w%d-%04d " % (w, i)).encode().ljust(99, b".") + b"\n"
            os.write(fd, rec)
        os.close(fd); os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
lines = read_file(f).split(b"\n")[:-1]
eq(len(lines), 800, "records")
eq(sorted(l.split()[0] for l in lines), sorted(("w%d-%04d" % (w, i)).encode() for w in range(4) for i in range(200)), "record ids")
assert all(len(l) == 99 for l in lines), "torn record"
'

# ------------------------------------------------------------ remount
rm -rf "$P/deep" 2>/dev/null
check "record the tree before unmount" py "save_manifest(mp(\"p\"), \"$T/manifest.json\")"
umount_ckfs "$MNT"; rc=$?
check "daemon exits 0 after fusermount3 -u" test $rc -eq 0
if mount_ckfs "$VOL" "$MNT"; then
	check "after remount: every file, dir, link, mode, owner, mtime, xattr is unchanged" \
		py "compare_manifest(mp(\"p\"), \"$T/manifest.json\")"
	check "daemon alive at the end" daemon_alive "$MNT"
else
	notok "remount"
fi
summary
