"""Syscall-level helpers for the ckfs integration tests (python3 stdlib only).

Imported by lib.sh's py/py_check/py_as: every helper raises AssertionError
(or OSError) with a readable message, so a failing check prints why.
"""
import ctypes
import ctypes.util
import errno
import hashlib
import mmap
import os
import random
import stat
import struct
import sys
import time

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_SYMLINK_NOFOLLOW = 0x100

_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                            ctypes.c_char_p, ctypes.c_uint]
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p,
                            ctypes.POINTER(Timespec), ctypes.c_int]


def _check(r, what):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def renameat2(old, new, flags):
    _check(_libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                           os.fsencode(new), flags), "renameat2")


def fallocate(fd, mode, off, length):
    _check(_libc.fallocate(fd, mode, off, length), "fallocate")


def utimensat(path, atime, mtime, flags=0):
    """atime/mtime: (sec, nsec), or UTIME_NOW / UTIME_OMIT."""
    ts = (Timespec * 2)()
    for i, t in enumerate((atime, mtime)):
        if t in (UTIME_NOW, UTIME_OMIT):
            ts[i].tv_sec, ts[i].tv_nsec = 0, t
        else:
            ts[i].tv_sec, ts[i].tv_nsec = t
    _check(_libc.utimensat(AT_FDCWD, os.fsencode(path), ts, flags), "utimensat")


def ename(e):
    return errno.errorcode.get(e, str(e))


def expect_errno(want, fn, *args, **kw):
    """fn(*args) must fail with errno want (an int or a tuple of ints)."""
    wants = want if isinstance(want, tuple) else (want,)
    try:
        r = fn(*args, **kw)
    except OSError as e:
        if e.errno in wants:
            return
        raise AssertionError("%s%r: expected %s, got %s (%s)" % (
            getattr(fn, "__name__", fn), args, "/".join(ename(w) for w in wants),
            ename(e.errno), e))
    raise AssertionError("%s%r: expected %s, but it succeeded (-> %r)" % (
        getattr(fn, "__name__", fn), args, "/".join(ename(w) for w in wants), r))


def eq(got, want, what="value"):
    if got != want:
        g, w = got, want
        if isinstance(g, bytes) and len(g) > 64:
            g = "%d bytes sha256 %s" % (len(g), hashlib.sha256(g).hexdigest()[:16])
        if isinstance(w, bytes) and len(w) > 64:
            w = "%d bytes sha256 %s" % (len(w), hashlib.sha256(w).hexdigest()[:16])
        if isinstance(got, bytes) and isinstance(want, bytes):
            n = min(len(got), len(want))
            diff = next((i for i in range(n) if got[i] != want[i]), n)
            raise AssertionError("%s: got %s, want %s (first difference at byte %d)"
                                 % (what, g, w, diff))
        raise AssertionError("%s: got %r, want %r" % (what, g, w))


def rbytes(n, seed=0):
    """n reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pread_all(fd, off, n):
    out = b""
    while len(out) < n:
        b = os.pread(fd, n - len(out), off + len(out))
        if not b:
            break
        out += b
    return out


def pwrite_all(fd, data, off):
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, off)
        view = view[n:]
        off += n


def size(path):
    return os.stat(path).st_size


def mode_of(path, follow=True):
    return stat.S_IMODE(os.stat(path, follow_symlinks=follow).st_mode)


def owner(path):
    st = os.lstat(path)
    return (st.st_uid, st.st_gid)


def is_zero(b):
    return not any(b)


M = os.environ.get("MNT", "")
VOL = os.environ.get("VOL", "")
T = os.environ.get("T", "")


def mp(*parts):
    """A path on the mount."""
    return os.path.join(M, *parts)


def note(msg):
    """A line shown under the TAP summary (e.g. an allowed EOPNOTSUPP)."""
    with open(os.path.join(T, "notes"), "a") as f:
        f.write(msg + "\n")


def fresh(path):
    """Remove path (file or tree) if present; returns path."""
    import shutil
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return path


def manifest(root, big=64 << 20):
    """Everything observable about a tree except atime/ctime: {relpath: [...]}.
    Regular files larger than `big` are hashed by their first and last MiB."""
    out = {}
    for dirpath, dirnames, filenames, dfd in os.fwalk(root, follow_symlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        names = dirnames + filenames
        if rel_dir == ".":
            names = names + ["."]
        for n in names:
            rel = os.path.normpath(os.path.join(rel_dir, n))
            st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
            kind = stat.S_IFMT(st.st_mode)
            digest = link = None
            if stat.S_ISREG(st.st_mode):
                fd = os.open(n, os.O_RDONLY, dir_fd=dfd)
                try:
                    h = hashlib.sha256()
                    if st.st_size > big:
                        h.update(pread_all(fd, 0, 1 << 20))
                        h.update(pread_all(fd, st.st_size - (1 << 20), 1 << 20))
                    else:
                        while True:
                            b = os.read(fd, 1 << 20)
                            if not b:
                                break
                            h.update(b)
                    digest = h.hexdigest()
                finally:
                    os.close(fd)
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(n, dir_fd=dfd)
            full = os.path.join(dirpath, n)
            xs = {}
            try:
                for x in sorted(os.listxattr(full, follow_symlinks=False)):
                    xs[x] = os.getxattr(full, x, follow_symlinks=False).hex()
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.ENAMETOOLONG):
                    raise
            out[rel] = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        st.st_size if not stat.S_ISDIR(st.st_mode) else None,
                        st.st_mtime_ns, st.st_nlink, digest, link, xs]
    return out


def save_manifest(root, path):
    import json
    with open(path, "w") as f:
        json.dump(manifest(root), f)


def compare_manifest(root, path):
    import json
    with open(path) as f:
        want = json.load(f)
    got = json.loads(json.dumps(manifest(root)))
    fields = ["type", "mode", "uid", "gid", "size", "mtime_ns", "nlink", "sha256",
              "symlink", "xattrs"]
    errs = []
    for k in sorted(set(want) | set(got)):
        if k not in got:
            errs.append("%s: missing" % k)
        elif k not in want:
            errs.append("%s: unexpected new entry" % k)
        elif got[k] != want[k]:
            d = ["%s %r -> %r" % (fields[i], want[k][i], got[k][i])
                 for i in range(len(fields)) if want[k][i] != got[k][i]]
            errs.append("%s: %s" % (k, "; ".join(d)))
    if errs:
        raise AssertionError("%d entries differ (of %d):\n  %s" % (
            len(errs), len(want), "\n  ".join(errs[:40])))
    print("%d entries equal" % len(want))


def expect_eio(path, forbidden=()):
    """Opening and reading all of path must fail with EIO (at open or at a
    read), and no read may ever return any of the forbidden contents."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        if e.errno == errno.EIO:
            return "EIO at open"
        raise AssertionError("open %s: expected EIO, got %s" % (path, ename(e.errno)))
    data = b""
    try:
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            data += b
    except OSError as e:
        if e.errno == errno.EIO:
            for f in forbidden:
                if f and data and data == f[:len(data)] and len(data) >= 16:
                    raise AssertionError("read returned another file's data before EIO")
            return "EIO after %d bytes" % len(data)
        raise AssertionError("read %s: expected EIO, got %s" % (path, ename(e.errno)))
    finally:
        os.close(fd)
    for f in forbidden:
        if data == f:
            raise AssertionError("read %s returned ANOTHER file's data (%d bytes)" % (path, len(data)))
    raise AssertionError("read %s succeeded (%d bytes, sha256 %s), expected EIO" % (
        path, len(data), hashlib.sha256(data).hexdigest()[:16]))


def flip(path, off, mask=0x01):
    """XOR one byte of a (backing) file; negative off counts from the end."""
    fd = os.open(path, os.O_RDWR)
    try:
        if off < 0:
            off += os.fstat(fd).st_size
        b = os.pread(fd, 1, off)
        assert len(b) == 1, "offset %d past the end of %s" % (off, path)
        os.pwrite(fd, bytes([b[0] ^ mask]), off)
    finally:
        os.close(fd)


def swap_ranges(p1, o1, p2, o2, n):
    """Swap n bytes at p1:o1 with n bytes at p2:o2 (p1 may equal p2)."""
    a = read_file(p1)[o1:o1 + n]
    b = read_file(p2)[o2:o2 + n]
    assert len(a) == n and len(b) == n, "short ranges"
    fd = os.open(p1, os.O_RDWR); os.pwrite(fd, b, o1); os.close(fd)
    fd = os.open(p2, os.O_RDWR); os.pwrite(fd, a, o2); os.close(fd)


# ---- DEP tests (45-48) ----

def read_errno(path):
    """None if path opens and reads, else the errno of the failure."""
    try:
        with open(path, "rb") as f:
            f.read()
        return None
    except OSError as e:
        return e.errno


def wait_errno(path, want=(errno.EKEYREVOKED,), timeout=10.0, t0=None, step=0.005):
    """Poll reading path until it fails with one of want; returns seconds
    since t0 (default: now). Raises if another errno comes or time runs out."""
    t0 = time.time() if t0 is None else t0
    while True:
        e = read_errno(path)
        if e in want:
            return time.time() - t0
        if e is not None:
            raise AssertionError("%s: expected %s, got %s" % (
                path, "/".join(ename(w) for w in want), ename(e)))
        if time.time() - t0 > timeout:
            raise AssertionError("%s still readable %.1f s after t0" % (path, timeout))
        time.sleep(step)


def stopped(stopfile):
    """A background loop's end: stopfile exists, its directory is gone, or
    the test script (CK_TEST_PID) has exited."""
    if os.path.exists(stopfile) or not os.path.isdir(os.path.dirname(stopfile) or "."):
        return True
    pid = os.environ.get("CK_TEST_PID")
    if pid:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
    return False


def io_loop(root, stopfile, logfile, tag="io", nfiles=8, size=20000):
    """Write, fsync, read back and compare files under root until stopfile
    exists. Every error or mismatch is appended to logfile; prints the
    number of rounds. For a background loop that must see no error."""
    os.makedirs(root, exist_ok=True)
    rounds = errs = 0
    while not stopped(stopfile):
        for i in range(nfiles):
            p = os.path.join(root, "%s-%d" % (tag, i))
            data = rbytes(size + rounds % 97, seed=rounds * 31 + i)
            try:
                write_file(p, data)
                fd = os.open(p, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
                got = read_file(p)
                if got != data:
                    raise AssertionError("content differs")
                os.listdir(root)
                if i % 4 == 0:
                    with open(p, "ab") as f:
                        f.write(b"x" * 100)
            except (OSError, AssertionError) as e:
                errs += 1
                with open(logfile, "a") as f:
                    f.write("%.3f %s: %s\n" % (time.time(), p, e))
        rounds += 1
    print("%s: %d rounds, %d errors" % (tag, rounds, errs))
