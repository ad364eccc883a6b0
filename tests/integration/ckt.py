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


def ok():
    pass
