#!/usr/bin/env python3
"""Crash harness for ckfs: kill -9 the daemon in the middle of a workload,
remount, and check that nothing fsynced was lost and nothing wrong is read.

One round:
  1. a fresh volume (ck-mkfs), a DEP "d1" assigned to the tree "dep";
  2. mount (ckfs -f), start W worker processes, each in its own directory
     (half in the service tree, half in the DEP tree) doing create, write,
     append, overwrite in place (mid-block and across 4096-byte block
     boundaries), writes past the end (holes), truncate (grow, shrink,
     O_TRUNC), rename (over an existing file and to a new name), hard link,
     unlink, setxattr, fsync, fdatasync, directory fsync, and the
     "write a temp file, fsync, rename over, fsync the directory" pattern;
     key operations run at the same time, in random order: ck-dep create
     k1, ck-dep roll d1 (--dep-key or --availability), and ck-assign
     --apply of a live tree to k1 (worker 0's directory, service -> DEP, or
     the whole tree "dep", DEP -> DEP) -- each only if the tools have it;
  3. after a random delay: SIGKILL the daemon, let the workers see ENOTCONN,
     fusermount3 -uz, wait until the daemon's PID is gone;
  4. remount and check (below), unmount cleanly (the daemon must exit 0),
     run ck-fsck (if built) and ck-dep audit --verify.

The journal (on the plain disk, outside the mount).  Every worker appends
one JSON line before each operation ("b": sequence number, the operation
and its arguments) and one after it ("e": sequence number, "err": 0 or the
errno).  After an fsync/fdatasync returns, the worker reads the file back
(it must equal the worker's own model), writes the exact content to a
snapshot file (temp file + rename: atomic), and only then logs the end
record naming the snapshot and its sha256.  An operation without an end
record, or ended by ENOTCONN/ECONNABORTED, was in flight at the kill; each
worker has at most one.

Identifiable data.  Every write covers whole 16-byte units at 16-aligned
offsets; each unit is  "Ck" | file id (u32) | offset/16 (u32) |
generation = the writing operation's sequence number (u32) | crc16.  So
any 16 bytes read back say which file, offset and operation they came
from, and bytes that were never written to that file at that offset are
recognised as such.

The checks (per worker, replaying its journal):
  * model: O = every completed operation applied, N = O plus the in-flight
    one.  The directory holds exactly O's or N's names; each file's size is
    one of its candidates' sizes (O's or N's content for that name; for a
    write in flight also any page boundary inside it, because the kernel
    may split one write(2) into several FUSE requests at page boundaries),
    and every 4096-byte block equals that block of one candidate
    (zero-padded).  Completed operations are in the backing file system's
    page cache when they return (the daemon has no write-back cache), so a
    SIGKILL of the daemon alone may tear only the operation in flight.
  * fsync: every file whose last operation before the kill was a completed
    fsync/fdatasync (nothing touched it afterwards: no write, truncate,
    xattr, rename, link or unlink of any of its names) reads back exactly
    as the snapshot, every byte, no EIO.
  * EIO: a read may fail with EIO only on a block the in-flight operation
    was writing (or anywhere in a file being created), the daemon must log
    it, and ck-fsck (when built) must name the file.  Any other error, or
    EIO anywhere else, fails the round.
  * xattrs: each user.* value is the completed or the in-flight one.
  * the daemon stays up through the checks and exits 0 on unmount;
    ck-fsck VOL exits 0 or 1 (4 only if it names just files that gave EIO
    and repairable leftovers, such as blocks after the final one, of files
    an in-flight operation was changing; then ck-fsck --repair must leave a
    clean volume);
    ck-dep VOL audit --verify exits 0; ck-dep VOL list --json parses and
    every DEP shows; a roll must have succeeded; an apply cut short by the
    kill must finish when re-run, and the tree ends active under k1; a file
    left unreadable by the crash can be unlinked.
  * live errors: any operation that fails on the live mount (other than
    ENOTCONN/ECONNABORTED after the kill) fails the round.

Self-test: --damage flip|rollback damages the backing store after the
kill (a flipped byte; backing files put back to a copy taken mid-run);
every such round must fail.

Usage: harness.py [--rounds N] [--seed S] [--workers W] [--max-delay SEC]
                  [--key-ops roll,apply|none] [--keep] [--workdir DIR]
       harness.py --replay ROUND_SEED      (one round, same workload and delay)
The build directory comes from $CKFS_BUILD (or --build).  Needs root and
/dev/fuse.  Prints one line per round and finally
"crash: N rounds, P passed, F failed (seed S)"; exits 1 if any round failed.
"""
import argparse
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

BLOCK = 4096
PAGE = os.sysconf("SC_PAGE_SIZE")
UNIT = 16
MAGIC = b"Ck"
MAX_FILE = 1 << 20          # keep each file under 1 MiB
CONN_ERRORS = (errno.ENOTCONN, errno.ECONNABORTED)


# ---------------------------------------------------------------- data units

def unit_tag(fid, unit, gen):
    body = MAGIC + struct.pack("<III", fid, unit, gen)
    return body + struct.pack("<H", zlib.crc32(body) & 0xFFFF)


def make_data(fid, off, length, gen):
    assert off % UNIT == 0 and length % UNIT == 0, (off, length)
    u0 = off // UNIT
    head = MAGIC + struct.pack("<I", fid)
    out = bytearray()
    for k in range(length // UNIT):
        body = head + struct.pack("<II", u0 + k, gen)
        out += body + struct.pack("<H", zlib.crc32(body) & 0xFFFF)
    return bytes(out)


def describe_unit(u):
    """What 16 read-back bytes are: zeros, a tag, or garbage."""
    if u == bytes(len(u)):
        return "zeros"
    if len(u) == UNIT and u[:2] == MAGIC:
        fid, unit, gen = struct.unpack("<III", u[2:14])
        ok = struct.unpack("<H", u[14:])[0] == zlib.crc32(u[:14]) & 0xFFFF
        return "tag(file %d, offset %d, op #%d%s)" % (fid, unit * UNIT, gen,
                                                       "" if ok else ", bad crc")
    return "garbage %s" % u.hex()


def xattr_value(fid, seq, rng):
    return ("%d:%d:" % (fid, seq)).encode() + bytes(rng.randrange(32, 127)
                                                    for _ in range(rng.randrange(0, 200)))


# ---------------------------------------------------------------- the model

class Model:
    """One worker's directory: names -> file ids, file ids -> content."""

    def __init__(self):
        self.names = {}
        self.data = {}
        self.xattrs = {}

    def copy(self):
        m = Model()
        m.names = dict(self.names)
        m.data = {f: bytearray(d) for f, d in self.data.items()}
        m.xattrs = {f: dict(x) for f, x in self.xattrs.items()}
        return m

    def touched(self, rec):
        """File ids whose content, names or xattrs the operation changes."""
        op = rec["op"]
        if op in ("write", "truncate", "setxattr", "unlink"):
            return {self.names.get(rec["name"])} - {None}
        if op == "rename":
            return {self.names.get(rec["src"]), self.names.get(rec["dst"])} - {None}
        if op == "link":
            return {self.names.get(rec["src"])} - {None}
        return set()

    def apply(self, rec):
        op = rec["op"]
        if op == "create":
            self.names[rec["name"]] = rec["fid"]
            self.data[rec["fid"]] = bytearray()
            self.xattrs[rec["fid"]] = {}
        elif op == "write":
            d = self.data[self.names[rec["name"]]]
            off, ln = rec["off"], rec["len"]
            if off > len(d):
                d.extend(bytes(off - len(d)))
            d[off:off + ln] = make_data(self.names[rec["name"]], off, ln, rec["b"])
        elif op == "truncate":
            d = self.data[self.names[rec["name"]]]
            size = rec["size"]
            if size < len(d):
                del d[size:]
            else:
                d.extend(bytes(size - len(d)))
        elif op == "rename":
            self.names[rec["dst"]] = self.names.pop(rec["src"])
        elif op == "link":
            self.names[rec["dst"]] = self.names[rec["src"]]
        elif op == "unlink":
            del self.names[rec["name"]]
        elif op == "setxattr":
            self.xattrs[self.names[rec["name"]]][rec["key"]] = bytes.fromhex(rec["val"])
        # fsync, fdatasync, fsyncdir change nothing a reader can see

    def affected_blocks(self, rec):
        """(file id, set of blocks or None for the whole file) a crash in
        the middle of rec may tear."""
        op = rec["op"]
        if op == "create":
            return rec["fid"], None
        if op not in ("write", "truncate"):
            return None, set()
        fid = self.names[rec["name"]]
        size = len(self.data[fid])
        old_final = final_block(size)
        if op == "write":
            end = rec["off"] + rec["len"]
            blocks = set(range(rec["off"] // BLOCK, (end - 1) // BLOCK + 1))
            blocks |= {old_final, final_block(max(size, end))}
        else:
            lo, hi = sorted((old_final, final_block(rec["size"])))
            blocks = set(range(lo, hi + 1))
        return fid, blocks


def final_block(size):
    """The file's last block (ck_final_block): an empty file has block 0."""
    return (size - 1) // BLOCK if size else 0


def pad_block(content, b, length):
    """Block b of content, zero-padded to the file's end, cut at length."""
    start = b * BLOCK
    end = min(start + BLOCK, length)
    if end <= start:
        return b""
    chunk = bytes(content[start:end])
    return chunk + bytes(end - start - len(chunk))


# ---------------------------------------------------------------- worker

class Worker:
    """Runs in its own process: random operations on its directory."""

    def __init__(self, a):
        self.dir = a["dir"]
        self.wid = a["wid"]
        self.rng = random.Random(a["seed"])
        self.snapdir = a["snapdir"]
        self.jfd = os.open(a["journal"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.model = Model()
        self.seq = 0
        self.fid_next = self.wid * 100000 + 1
        self.name_next = 0
        self.active = set()     # file ids still worked on
        self.retired = set()    # fsynced, then never touched again

    def log(self, rec):
        rec["t"] = round(time.time(), 4)
        os.write(self.jfd, (json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def path(self, name):
        return os.path.join(self.dir, name)

    def new_name(self, prefix):
        self.name_next += 1
        return "%s%d" % (prefix, self.name_next)

    def active_names(self):
        return [n for n, f in self.model.names.items() if f in self.active]

    def run_op(self, rec, fn):
        self.seq += 1
        rec["b"] = self.seq
        self.log(rec)
        try:
            extra = fn(rec) or {}
        except OSError as e:
            self.log({"e": self.seq, "err": e.errno, "msg": str(e)})
            if e.errno in CONN_ERRORS:
                os._exit(0)
            os._exit(3)         # unexpected: the harness reports it
        self.model.apply(rec)
        if rec["op"] == "create":
            self.active.add(rec["fid"])
        live = set(self.model.names.values())
        self.active &= live
        self.retired &= live
        end = {"e": self.seq, "err": 0}
        end.update(extra)
        self.log(end)

    # -- the operations
    def do_create(self, name=None):
        name = name or self.new_name("f")
        fid = self.fid_next
        self.fid_next += 1

        def fn(rec):
            os.close(os.open(self.path(rec["name"]), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        self.run_op({"op": "create", "name": name, "fid": fid}, fn)
        return name

    def do_write(self, name, off, length, append=False):
        length = max(UNIT, length - length % UNIT)
        fid = self.model.names[name]
        size = len(self.model.data[fid])
        if append:
            off = size
            if off % UNIT:      # O_APPEND writes at the size: align it first
                self.do_truncate(name, (size + UNIT - 1) // UNIT * UNIT)
                off = len(self.model.data[fid])
        off -= off % UNIT
        if off + length > MAX_FILE:
            length = max(UNIT, (MAX_FILE - off) // UNIT * UNIT)
            if off + length > MAX_FILE:
                return

        def fn(rec):
            data = make_data(fid, rec["off"], rec["len"], rec["b"])
            flags = os.O_WRONLY | (os.O_APPEND if append else 0)
            fd = os.open(self.path(name), flags)
            try:
                if append:
                    n = os.write(fd, data)
                else:
                    n = os.pwrite(fd, data, rec["off"])
                if n != len(data):
                    raise OSError(errno.EIO, "short write %d of %d" % (n, len(data)))
            finally:
                os.close(fd)
        self.run_op({"op": "write", "name": name, "off": off, "len": length,
                     "append": append}, fn)

    def do_truncate(self, name, size, via_open=False):
        def fn(rec):
            if via_open:
                os.close(os.open(self.path(name), os.O_WRONLY | os.O_TRUNC))
            else:
                os.truncate(self.path(name), rec["size"])
        self.run_op({"op": "truncate", "name": name, "size": 0 if via_open else size,
                     "via_open": via_open}, fn)

    def do_rename(self, src, dst):
        self.run_op({"op": "rename", "src": src, "dst": dst},
                    lambda rec: os.rename(self.path(src), self.path(dst)))

    def do_link(self, src):
        dst = self.new_name("l")
        self.run_op({"op": "link", "src": src, "dst": dst},
                    lambda rec: os.link(self.path(src), self.path(dst)))

    def do_unlink(self, name):
        self.run_op({"op": "unlink", "name": name}, lambda rec: os.unlink(self.path(name)))

    def do_setxattr(self, name):
        key = "user.k%d" % self.rng.randrange(3)
        val = xattr_value(self.model.names[name], self.seq + 1, self.rng)
        self.run_op({"op": "setxattr", "name": name, "key": key, "val": val.hex()},
                    lambda rec: os.setxattr(self.path(name), key, val))

    def do_fsync(self, name, data_only):
        fid = self.model.names[name]

        def fn(rec):
            fd = os.open(self.path(name), os.O_RDWR)
            try:
                (os.fdatasync if data_only else os.fsync)(fd)
                got = b""
                while True:
                    chunk = os.pread(fd, 1 << 20, len(got))
                    if not chunk:
                        break
                    got += chunk
            finally:
                os.close(fd)
            want = bytes(self.model.data[fid])
            if got != want:
                raise OSError(errno.EIO, "read back after fsync differs from what was "
                              "written: %s" % first_diff(want, got))
            snap = "w%d-%d.bin" % (self.wid, rec["b"])
            tmp = os.path.join(self.snapdir, "." + snap)
            with open(tmp, "wb") as f:
                f.write(want)
            os.rename(tmp, os.path.join(self.snapdir, snap))
            return {"snap": snap, "size": len(want), "sha": hashlib.sha256(want).hexdigest()}
        self.run_op({"op": "fdatasync" if data_only else "fsync", "name": name, "fid": fid}, fn)
        if self.rng.random() < 0.3:
            self.active.discard(fid)
            self.retired.add(fid)

    def do_fsyncdir(self):
        def fn(rec):
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.run_op({"op": "fsyncdir"}, fn)

    def random_write(self, name):
        size = len(self.model.data[self.model.names[name]])
        r = self.rng
        kind = r.choice(["inplace", "inplace", "boundary", "boundary", "append", "append",
                         "hole", "big"])
        if kind == "inplace" and size >= UNIT:
            off = r.randrange(0, size) // UNIT * UNIT
            self.do_write(name, off, r.randrange(UNIT, 3000))
        elif kind == "boundary" and size > BLOCK:
            b = r.randrange(1, size // BLOCK + 1) * BLOCK
            before = r.randrange(1, 64) * UNIT
            self.do_write(name, b - before, before + r.randrange(1, 64) * UNIT)
        elif kind == "hole" and size < MAX_FILE // 2:
            off = (size + r.randrange(1, 5) * BLOCK + r.randrange(0, 256) * UNIT)
            self.do_write(name, off, r.randrange(UNIT, 6000))
        elif kind == "big":
            self.do_write(name, r.randrange(0, size + 1), r.choice([64, 128, 256]) * 1024)
        else:
            self.do_write(name, 0, r.choice([16, 100, 4096, 4096 * 3 + 48, 20000, 70000]),
                          append=True)

    def step(self):
        r = self.rng
        names = self.active_names()
        if len(self.active) < 3 or (len(self.active) < 7 and r.random() < 0.08):
            name = self.do_create()
            self.do_write(name, 0, r.choice([16, 1000, 4096, 5000, 9000, 30000]), append=True)
            return
        name = r.choice(names)
        fid = self.model.names[name]
        size = len(self.model.data[fid])
        x = r.random()
        if x < 0.40:
            self.random_write(name)
        elif x < 0.50:
            if r.random() < 0.15:
                self.do_truncate(name, 0, via_open=True)
            elif r.random() < 0.5 and size > 0:
                self.do_truncate(name, r.randrange(0, size))
            else:
                self.do_truncate(name, min(MAX_FILE, size + r.randrange(1, 3 * BLOCK)))
        elif x < 0.56:
            others = [n for n in names if self.model.names[n] != fid]
            if others and r.random() < 0.7:
                self.do_rename(name, r.choice(others))      # over an existing file
            else:
                self.do_rename(name, self.new_name("f"))
        elif x < 0.61:
            if sum(1 for f in self.model.names.values() if f == fid) < 4:
                self.do_link(name)
        elif x < 0.65:
            if sum(1 for f in self.model.names.values() if f == fid) > 1 or len(self.active) > 3:
                self.do_unlink(name)
        elif x < 0.72:
            self.do_setxattr(name)
        elif x < 0.90:
            self.do_fsync(name, data_only=r.random() < 0.4)
        elif x < 0.93:
            self.do_fsyncdir()
        else:
            # Atomic replace: temp file, write, fsync, rename over, fsync dir.
            tmp = self.do_create(self.new_name("t"))
            self.do_write(tmp, 0, r.choice([100, 4096, 12000]), append=True)
            self.do_fsync(tmp, data_only=False)
            target = name if fid in self.active else self.new_name("f")
            tfid = self.model.names[tmp]
            self.do_rename(tmp, target)
            if tfid in self.retired:
                self.retired.discard(tfid)      # renamed after its fsync
                self.active.add(tfid)
            self.do_fsyncdir()

    def run(self, max_ops):
        while self.seq < max_ops:
            self.step()
        os._exit(0)


def brief(rec):
    """An operation record for a message: no long values, no timestamps."""
    r = {k: v for k, v in rec.items() if k not in ("t", "val")}
    return "#%s %s" % (r.pop("b", "?"), json.dumps(r, separators=(",", ":")))


def first_diff(want, got):
    n = min(len(want), len(got))
    i = next((k for k in range(n) if want[k] != got[k]), n)
    if i == n and len(want) == len(got):
        return "identical"
    u = i // UNIT * UNIT
    return ("size want %d got %d; first difference at offset %d (block %d): want %s, got %s"
            % (len(want), len(got), i, i // BLOCK, describe_unit(bytes(want[u:u + UNIT])),
               describe_unit(bytes(got[u:u + UNIT]))))


# ---------------------------------------------------------------- round

class Fail(Exception):
    pass


def mounted(path):
    """path is a mount point in /proc/self/mounts (os.path.ismount says no
    for a FUSE mount whose daemon is gone: stat fails with ENOTCONN)."""
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ").replace("\\011", "\t") \
                .replace("\\012", "\n").replace("\\134", "\\")
            if mp == path:
                return True
    return False


def run_cmd(args, env, timeout=60):
    try:
        p = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode(errors="replace") + "\n(timed out)"


class Round:
    def __init__(self, h, num, seed):
        self.h = h
        self.num = num
        self.seed = seed
        self.rng = random.Random(seed)
        self.problems = []
        self.notes = []
        self.stats = {}
        self.dir = tempfile.mkdtemp(prefix="r%d-" % num, dir=h.workdir)
        os.chmod(self.dir, 0o755)
        self.vol = os.path.join(self.dir, "vol")
        self.mnt = os.path.join(self.dir, "mnt")
        self.keys = os.path.join(self.dir, "keys")
        self.jdir = os.path.join(self.dir, "journal")
        self.snapdir = os.path.join(self.jdir, "snap")
        for d in (self.vol, self.mnt, self.snapdir):
            os.makedirs(d)
        os.mkdir(self.keys, 0o700)
        self.env = dict(os.environ, CKFS_KEY_DIR=self.keys)
        self.daemon = None
        self.workers = []
        self.key_results = []
        self.apply_path = None
        self.logs = []
        self.inflight_paths = set()     # names of files an in-flight op changed

    def problem(self, msg):
        self.problems.append(msg)

    def tool(self, name, *args, timeout=60):
        return run_cmd([os.path.join(self.h.build, name)] + list(args), self.env, timeout)

    # -- mounts
    def mount(self):
        log = os.path.join(self.dir, "ckfs.%d.log" % (len(self.logs) + 1))
        self.logs.append(log)
        with open(log, "wb") as lf:
            self.daemon = subprocess.Popen([os.path.join(self.h.build, "ckfs"), "-f", self.vol,
                                            self.mnt], env=self.env, stdin=subprocess.DEVNULL,
                                           stdout=lf, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.ismount(self.mnt):
                return log
            if self.daemon.poll() is not None:
                break
            time.sleep(0.05)
        with open(log, errors="replace") as f:
            tail = f.read()[-2000:]
        self.stop_daemon_hard()
        raise Fail("mount failed (daemon exit %s): %s" % (self.daemon.returncode, tail.strip()))

    def stop_daemon_hard(self):
        for p in self.workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
        if mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        if self.daemon:
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def unmount_clean(self):
        """fusermount3 -u; the daemon must exit 0."""
        for i in range(50):
            p = subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.PIPE)
            if p.returncode == 0 or not os.path.ismount(self.mnt):
                break
            time.sleep(0.1)
        else:
            subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
            self.problem("fusermount3 -u kept failing: %s" % p.stderr.decode().strip())
        try:
            rc = self.daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            self.problem("daemon did not exit within 20 s of the unmount")
            return
        if rc != 0:
            self.problem("daemon exited with status %d after a clean unmount%s (log %s)" % (
                rc, " (signal %s)" % signal.Signals(-rc).name if rc < 0 else "", self.logs[-1]))

    # -- the round
    def run(self):
        h = self.h
        t0 = time.time()
        rc, out = self.tool("ck-mkfs", "-q", self.vol)
        if rc:
            raise Fail("ck-mkfs failed (%d): %s" % (rc, out.strip()))
        rc, out = self.tool("ck-dep", self.vol, "create", "d1")
        if rc:
            raise Fail("ck-dep create d1 failed (%d): %s" % (rc, out.strip()))
        rc, out = self.tool("ck-assign", self.vol, "dep", "d1")
        if rc:
            raise Fail("ck-assign dep d1 failed (%d): %s" % (rc, out.strip()))
        self.mount()
        os.mkdir(os.path.join(self.mnt, "dep"))
        wdirs = []
        for w in range(h.workers):
            d = os.path.join(self.mnt, "dep" if w % 2 else "", "w%d" % w)
            os.mkdir(d)
            wdirs.append(d)

        # The kill moment: mostly well into the workload, sometimes early.
        if self.rng.random() < 0.2 and not h.damage:
            delay = self.rng.uniform(0.05, 0.4)
        else:
            delay = self.rng.uniform(1.0 if h.damage else 0.4, max(h.max_delay, 1.5))
        self.stats["delay"] = "%.2fs" % delay
        workers = self.workers
        for w, d in enumerate(wdirs):
            arg = {"dir": d, "wid": w, "seed": self.rng.randrange(1 << 62),
                   "journal": os.path.join(self.jdir, "w%d.jsonl" % w), "snapdir": self.snapdir}
            workers.append(subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                             "--worker", json.dumps(arg)],
                                            stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        # Start the clock once every worker has begun (a loaded machine can
        # take a while to start a python process).
        deadline = time.time() + 60
        for w in range(len(workers)):
            jpath = os.path.join(self.jdir, "w%d.jsonl" % w)
            while time.time() < deadline and workers[w].poll() is None and not (
                    os.path.exists(jpath) and os.path.getsize(jpath) > 0):
                time.sleep(0.01)
        keyop = threading.Thread(target=self.key_ops,
                                 args=(self.rng.uniform(0, delay), self.plan_key_ops()))
        keyop.start()
        if h.damage == "rollback":
            # Self-test: copy the backing store now, put old copies back
            # after the kill (valid ciphertext, stale content).
            time.sleep(delay / 2)
            old_copy = os.path.join(self.dir, "vol-copy")
            subprocess.run(["cp", "-a", self.vol, old_copy], stderr=subprocess.DEVNULL)
            time.sleep(delay / 2)
        else:
            time.sleep(delay)

        if self.daemon.poll() is not None:
            self.problem("the daemon died during the workload, before the kill (status %s%s; "
                         "log %s)" % (self.daemon.returncode, " = signal %s" %
                                      signal.Signals(-self.daemon.returncode).name
                                      if self.daemon.returncode < 0 else "", self.logs[-1]))
        else:
            os.kill(self.daemon.pid, signal.SIGKILL)
        # The workers now get ENOTCONN/ECONNABORTED and exit by themselves.
        wstatus = []
        deadline = time.time() + 20
        for p in workers:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.notes.append("worker %d did not exit after the kill; killed it" % p.pid)
            wstatus.append((p.returncode, p.stdout.read().decode(errors="replace")))
        subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        try:
            self.daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise Fail("the killed daemon (pid %d) is still there after 20 s" % self.daemon.pid)
        keyop.join(timeout=600)
        if keyop.is_alive():
            raise Fail("the key operations did not finish within 600 s")
        self.check_key_results()
        for w, (rc, out) in enumerate(wstatus):
            # 3: stopped on an unexpected error, which the replay reports.
            if rc not in (0, 3, -signal.SIGKILL):
                self.problem("worker %d ended with status %d: %s" %
                             (w, rc, out.strip()[-800:] or "see its journal"))

        if h.damage:
            self.damage(h.damage)

        # Check.
        log = self.mount()
        eio = {}
        for w, d in enumerate(wdirs):
            self.check_worker(w, d, eio)
        self.check_tree_walk()
        if self.daemon.poll() is not None:
            self.problem("the daemon died during the checks (status %s; log %s)" %
                         (self.daemon.returncode, log))
            self.stop_daemon_hard()
        else:
            self.unmount_clean()
        with open(log, errors="replace") as f:
            logtext = f.read()
        for rel, what in sorted(eio.items()):
            self.notes.append("EIO on a block the crash tore: %s: %s" % (rel, what))
            if "/" + rel + ":" not in logtext:
                self.problem("%s: EIO (%s) without a log line from the daemon" % (rel, what))
        self.check_fsck(eio)
        self.check_keys()
        if eio and not self.problems:
            self.remove_eio_files(eio)
        self.stats["eio"] = len(eio)
        self.stats["time"] = "%.1fs" % (time.time() - t0)

    def backing_files(self, root):
        out = {}
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if x != ".ckfs"]
            for f in files:
                p = os.path.join(d, f)
                if not f.startswith(".") and os.path.isfile(p) and not os.path.islink(p):
                    out[os.path.relpath(p, root)] = p
        return out

    def damage(self, how):
        """Self-test of the checks: damage the backing store the way a buggy
        daemon would, so that the round must fail."""
        files = self.backing_files(self.vol)
        done = []
        if how == "flip":
            for rel in sorted(files):
                p = files[rel]
                if os.path.getsize(p) > 512 + 4124 and len(done) < 3:
                    with open(p, "r+b") as f:
                        f.seek(600)
                        b = f.read(1)
                        f.seek(600)
                        f.write(bytes([b[0] ^ 0xFF]))
                    done.append(rel)
        elif how == "rollback":
            old = self.backing_files(os.path.join(self.dir, "vol-copy"))
            for rel in sorted(files):
                if rel in old and len(done) < 5:
                    with open(old[rel], "rb") as f:
                        a = f.read()
                    with open(files[rel], "rb") as f:
                        b = f.read()
                    if a != b:
                        with open(files[rel], "wb") as f:
                            f.write(a)
                        done.append(rel)
        self.notes.append("self-test: damaged (%s) %d backing file(s)" % (how, len(done)))

    def remove_eio_files(self, eio):
        """A file left unreadable by the crash can at least be removed."""
        log = self.mount()
        for rel in sorted(eio):
            try:
                os.unlink(os.path.join(self.mnt, rel))
                if os.path.lexists(os.path.join(self.mnt, rel)):
                    self.problem("%s: still there after unlink" % rel)
            except OSError as e:
                self.problem("%s (EIO after the crash) cannot be removed: %s" % (rel, e))
        if self.daemon.poll() is not None:
            self.problem("the daemon died removing the EIO files (log %s)" % log)
        else:
            self.unmount_clean()

    def plan_key_ops(self):
        """What the key operation thread does this round (from the seed)."""
        plan = [("ck-dep", self.vol, "create", "k1")]
        steps = []
        if self.h.has_roll and "roll" in self.h.key_ops:
            steps.append(("ck-dep", self.vol, "roll", "d1",
                          self.rng.choice(["--dep-key", "--availability"])))
        if self.h.has_apply and "apply" in self.h.key_ops:
            # A live tree: worker 0's directory (service tree -> k1) or the
            # whole DEP tree "dep" (d1 -> k1) while workers 1 and 3 write.
            self.apply_path = self.rng.choice(["w0", "dep"])
            steps.append(("ck-assign", "--apply", self.vol, self.apply_path, "k1"))
        else:
            steps.append(("ck-assign", self.vol, "kt1", "k1"))
        self.rng.shuffle(steps)
        return plan + steps

    def key_ops(self, delay, plan):
        """The key operations that run while the workload does."""
        time.sleep(delay)
        try:
            for args in plan:
                t = time.time()
                rc, out = self.tool(*args, timeout=300)
                self.key_results.append((args, rc, out, time.time() - t))
                if rc and args[2:4] == ("create", "k1"):
                    break
        except Exception as e:     # a thread must not die silently
            self.problem("key operation thread: %r" % e)

    def check_key_results(self):
        """A roll is atomic and needs no daemon: it must succeed.  An apply
        cut short by the daemon's death must finish when re-run."""
        names = []
        for args, rc, out, secs in self.key_results:
            what = " ".join(a for a in args if a != self.vol)
            short = (" ".join(args[2:]) if args[0] == "ck-dep" else
                     ("apply " if "--apply" in args else "assign ") + args[-2])
            names.append(short + ("" if rc == 0 else "(exit %d)" % rc))
            if rc == 0:
                continue
            if args[0] == "ck-assign" and "--apply" in args:
                self.notes.append("%s exited %d (daemon killed under it?): %s" %
                                  (what, rc, out.strip()[-300:]))
                rc2, out2 = self.tool(*args, timeout=300)
                if rc2 and os.access(os.path.join(self.h.build, "ck-fsck"), os.X_OK):
                    # What an operator does when the apply names leftovers
                    # (e.g. the empty file of a create the crash cut short):
                    # ck-fsck --repair, which removes only such leftovers.
                    rc3, out3 = self.tool("ck-fsck", "--repair", self.vol, timeout=300)
                    self.notes.append("%s: re-run failed (%s); ck-fsck --repair exit %d: %s" % (
                        what, out2.strip().splitlines()[0][:200] if out2.strip() else rc2,
                        rc3, " | ".join(out3.strip().splitlines()[:3])[:300]))
                    rc2, out2 = self.tool(*args, timeout=300)
                if rc2:
                    self.problem("%s: re-run after the crash (resume) exit %d: %s" %
                                 (what, rc2, out2.strip()[-800:]))
                else:
                    self.notes.append("%s: resumed after the crash" % what)
            else:
                self.problem("%s during the workload exit %d: %s%s" % (
                    what, rc, out.strip()[-800:], " (usage error: if the command's "
                    "arguments changed, update plan_key_ops in tests/crash/harness.py)"
                    if rc == 2 else ""))
        self.stats["keyops"] = ",".join(n.replace(" ", "_") for n in names) or "none"

    # -- checks
    def replay(self, w):
        path = os.path.join(self.jdir, "w%d.jsonl" % w)
        begins, ends = [], {}
        with open(path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        for ln in lines[:-1]:       # the last piece has no newline: torn or empty
            rec = json.loads(ln)
            if "b" in rec:
                begins.append(rec)
            else:
                ends[rec["e"]] = rec
        model = Model()
        inflight = None
        fsynced = {}                # fid -> (seq, end record) for untouched fsyncs
        for i, rec in enumerate(begins):
            end = ends.get(rec["b"])
            if end is None or end["err"] in CONN_ERRORS:
                if i != len(begins) - 1:
                    raise Fail("worker %d journal: op #%d has no end but is not the last" %
                               (w, rec["b"]))
                inflight = rec
                break
            if end["err"]:
                self.problem("worker %d: op %s returned %s (%s) on a live mount" %
                             (w, brief(rec), errno.errorcode.get(end["err"], "?"),
                              end.get("msg", "")))
                inflight = rec      # it may have been half done
                break
            for fid in model.touched(rec):
                fsynced.pop(fid, None)
            if rec["op"] in ("fsync", "fdatasync"):
                fsynced[rec["fid"]] = (rec["b"], end)
            model.apply(rec)
        new = model
        if inflight:
            for fid in model.touched(inflight):
                fsynced.pop(fid, None)
            new = model.copy()
            try:
                new.apply(inflight)
            except KeyError as e:
                raise Fail("worker %d journal: in-flight op %s does not apply: %r" %
                           (w, json.dumps(inflight), e))
        self.stats["ops"] = self.stats.get("ops", 0) + len(begins)
        return model, new, inflight, fsynced

    def read_file(self, path):
        """(content with None for EIO blocks, eio_on_open, other error)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            return None, e.errno == errno.EIO, None if e.errno == errno.EIO else e
        try:
            size = os.fstat(fd).st_size
            blocks = []
            for b in range((size + BLOCK - 1) // BLOCK):
                try:
                    chunk = os.pread(fd, BLOCK, b * BLOCK)
                except OSError as e:
                    if e.errno != errno.EIO:
                        return None, False, e
                    chunk = None
                blocks.append(chunk)
            try:
                extra = os.pread(fd, BLOCK, size)
            except OSError as e:
                return None, False, e
            if extra:
                return None, False, OSError(0, "read %d bytes past the size %d" %
                                            (len(extra), size))
            return (size, blocks), False, None
        finally:
            os.close(fd)

    def check_worker(self, w, d, eio):
        old, new, inflight, fsynced = self.replay(w)
        rel_d = os.path.relpath(d, self.mnt)
        try:
            listing = set(os.listdir(d))
        except OSError as e:
            self.problem("%s: readdir failed: %s" % (rel_d, e))
            return
        if listing != set(old.names) and listing != set(new.names):
            self.problem("%s: names %s; expected %s%s" % (
                rel_d, sorted(listing), sorted(old.names),
                " or %s" % sorted(new.names) if new is not old else ""))
        aff_fid, aff_blocks = (old.affected_blocks(inflight) if inflight
                               and inflight["op"] in ("create", "write", "truncate")
                               else (None, set()))
        where = " (in flight: %s)" % brief(inflight) if inflight else ""
        for name in sorted(listing):
            rel = os.path.join(rel_d, name)
            path = os.path.join(d, name)
            cands = []
            for m in (old, new):
                if name in m.names:
                    fid = m.names[name]
                    if (fid, m.data[fid]) not in cands:
                        cands.append((fid, m.data[fid]))
            if not cands:
                continue
            fids = {f for f, _ in cands}
            got, eio_open, err = self.read_file(path)
            if err is not None:
                self.problem("%s: read failed with %s (not EIO)%s" % (rel, err, where))
                continue
            if eio_open:
                if aff_fid in fids and aff_blocks is None:
                    eio[rel] = "open, file being created%s" % where
                else:
                    self.problem("%s: open fails with EIO, but the crash interrupted no "
                                 "create of it%s" % (rel, where))
                continue
            size, blocks = got
            sizes = {len(c) for _, c in cands}
            if aff_fid in fids and inflight["op"] == "write":
                # The kernel may split one write(2) into several FUSE
                # requests, cut at page boundaries (a partial page that
                # is not cached goes alone); a crash between them leaves
                # a prefix of the write, so the size can stop at a page.
                off, end = inflight["off"], inflight["off"] + inflight["len"]
                osize = len(old.data[aff_fid])
                sizes |= {max(osize, p) for p in range((off // PAGE + 1) * PAGE, end, PAGE)}
            if size not in sizes:
                self.problem("%s: size %d, expected %s%s" % (rel, size, sorted(sizes), where))
                continue
            for b, chunk in enumerate(blocks):
                if chunk is None:
                    if aff_fid in fids and (aff_blocks is None or b in aff_blocks):
                        eio.setdefault(rel, "block %d%s" % (b, where))
                    else:
                        self.problem("%s: block %d gives EIO, but the crash was not writing "
                                     "it%s" % (rel, b, where))
                    continue
                want = [pad_block(c, b, size) for _, c in cands]
                if chunk not in want:
                    i = next(k for k in range(len(chunk)) if chunk[k] != want[0][k]) \
                        if len(chunk) == len(want[0]) else 0
                    u = (b * BLOCK + i) // UNIT * UNIT - b * BLOCK
                    self.problem("%s: block %d is neither the old nor the new content: at "
                                 "offset %d want %s, read %s%s" % (
                                     rel, b, b * BLOCK + u,
                                     " or ".join(describe_unit(x[u:u + UNIT]) for x in want),
                                     describe_unit(chunk[u:u + UNIT]), where))
                    break
            # xattrs: the completed or the in-flight value
            try:
                keys = set(os.listxattr(path))
                allowed = set()
                for m in (old, new):
                    if name in m.names:
                        allowed |= set(m.xattrs[m.names[name]])
                if not keys <= allowed:
                    self.problem("%s: unexpected xattrs %s" % (rel, sorted(keys - allowed)))
                for k in allowed:
                    vals = [m.xattrs[m.names[name]].get(k) for m in (old, new)
                            if name in m.names]
                    try:
                        v = os.getxattr(path, k)
                    except OSError as e:
                        if e.errno != errno.ENODATA:
                            raise
                        v = None
                    if v not in vals:
                        self.problem("%s: xattr %s = %r, expected one of %r" %
                                     (rel, k, v and v[:40], [x and x[:40] for x in vals]))
            except OSError as e:
                self.problem("%s: xattr read failed: %s" % (rel, e))
        # The fsync promise: exact content, every byte.
        n = 0
        for fid, (seq, end) in sorted(fsynced.items()):
            names = [nm for nm, f in old.names.items() if f == fid]
            if not names:
                continue
            with open(os.path.join(self.snapdir, end["snap"]), "rb") as f:
                want = f.read()
            if hashlib.sha256(want).hexdigest() != end["sha"]:
                raise Fail("snapshot %s does not match its journal sha256" % end["snap"])
            n += 1
            for nm in names:
                rel = os.path.join(rel_d, nm)
                try:
                    with open(os.path.join(d, nm), "rb") as f:
                        got = f.read()
                except OSError as e:
                    self.problem("FSYNC LOST: %s (file %d, fsynced by op #%d, %d bytes): %s"
                                 % (rel, fid, seq, len(want), e))
                    continue
                if got != want:
                    self.problem("FSYNC LOST: %s (file %d, fsynced by op #%d): %s" % (
                        rel, fid, seq, first_diff(want, got)))
        self.stats["fsynced"] = self.stats.get("fsynced", 0) + n
        if inflight:
            self.stats["inflight"] = self.stats.get("inflight", 0) + 1
            fids = old.touched(inflight) | ({inflight["fid"]} if inflight["op"] == "create"
                                            else set())
            for m in (old, new):
                for nm, f in m.names.items():
                    if f in fids:
                        self.inflight_paths.add(os.path.join(rel_d, nm))

    def check_tree_walk(self):
        """Every name on the mount can be stat'ed; nothing is left behind
        in the plain mountpoint."""
        for root, dirs, files in os.walk(self.mnt, onerror=lambda e: self.problem(
                "walk: %s" % e)):
            for n in dirs + files:
                try:
                    os.lstat(os.path.join(root, n))
                except OSError as e:
                    self.problem("stat %s: %s" % (os.path.relpath(os.path.join(root, n),
                                                                  self.mnt), e))

    def check_fsck(self, eio):
        fsck = os.path.join(self.h.build, "ck-fsck")
        if not os.access(fsck, os.X_OK):
            if eio:
                self.notes.append("ck-fsck not built: %d EIO file(s) not cross-checked" %
                                  len(eio))
            return
        rc, out = self.tool("ck-fsck", self.vol, "--json", timeout=300)
        if rc in (0, 1):
            if eio:
                missing = [r for r in eio if r not in out]
                if missing:
                    self.problem("ck-fsck exit %d does not name the EIO file(s) %s" %
                                 (rc, ", ".join(missing)))
            return
        if rc == 4:
            missing = [r for r in eio if r not in out]
            if missing:
                self.problem("ck-fsck exit 4 does not name the EIO file(s) %s" %
                             ", ".join(missing))
            # Every problem it reports must be one of the EIO files, or a
            # leftover it can repair (blocks after the final one, ...) of a
            # file the crash interrupted an operation on.
            try:
                probs = json.loads(out)["problems"]
            except (ValueError, KeyError, TypeError):
                self.problem("ck-fsck exit 4, output not the JSON expected: %s" % out[-1500:])
                return
            leftovers = []
            for p in probs:
                path = (p.get("path") or "").lstrip("/")
                if path in eio:
                    continue
                if p.get("fixable") and path in self.inflight_paths:
                    leftovers.append("%s (%s)" % (path, p.get("kind")))
                    continue
                self.problem("ck-fsck exit 4 also reports %s: %s: %s (no EIO on a read, not a "
                             "leftover of an interrupted operation)" %
                             (path or "(no path)", p.get("kind"), p.get("detail")))
            if leftovers and not self.problems:
                # What an operator does: --repair, then a clean check.
                self.notes.append("ck-fsck: leftovers of interrupted operations: %s" %
                                  ", ".join(leftovers))
                rc2, out2 = self.tool("ck-fsck", "--repair", self.vol, "--json", timeout=300)
                rc3, out3 = self.tool("ck-fsck", self.vol, "--json", timeout=300)
                left = []
                if rc3 == 4:
                    try:
                        left = [(p.get("path") or "").lstrip("/")
                                for p in json.loads(out3)["problems"]]
                    except (ValueError, KeyError, TypeError):
                        left = ["(output not JSON)"]
                if rc2 not in (1, 4) or rc3 not in (0, 4) or [x for x in left if x not in eio]:
                    self.problem("ck-fsck --repair exit %d did not leave a clean volume (then "
                                 "ck-fsck exit %d): %s" % (rc2, rc3, (out2 + out3)[-1500:]))
            return
        self.problem("ck-fsck exit %d%s: %s" % (rc, " with no EIO file" if not eio else "",
                                                out.strip()[-1500:]))

    def check_keys(self):
        rc, out = self.tool("ck-dep", self.vol, "audit", "--verify")
        if rc:
            self.problem("ck-dep audit --verify exit %d: %s" % (rc, out.strip()[-800:]))
        rc, out = self.tool("ck-dep", self.vol, "list", "--json")
        if rc:
            self.problem("ck-dep list --json exit %d: %s" % (rc, out.strip()[-800:]))
            return
        try:
            deps = {d["name"]: d for d in json.loads(out)["deps"]}
        except (ValueError, KeyError, TypeError) as e:
            self.problem("ck-dep list --json: unreadable output (%s): %s" % (e, out[:300]))
            return
        if "d1" not in deps or deps["d1"].get("state") != "active":
            self.problem("ck-dep list: d1 missing or not active: %s" % out[:500])
        trees = {}
        for name, dep in deps.items():
            for t in dep.get("trees", []):
                trees.setdefault(t.get("path"), []).append((name, t.get("state")))
        if self.apply_path and any(a[0] == "ck-assign" for a, _, _, _ in self.key_results):
            live = [x for x in trees.get(self.apply_path, []) if x[1] != "retired"]
            if live != [("k1", "active")]:
                self.problem("after the apply, tree %s is %s (want k1, active)" %
                             (self.apply_path, live))
        for name in deps:
            rc, out2 = self.tool("ck-dep", self.vol, "show", name)
            if rc:
                self.problem("ck-dep show %s exit %d: %s" % (name, rc, out2.strip()[-300:]))


# ---------------------------------------------------------------- main

class Harness:
    def __init__(self, a):
        self.build = os.path.abspath(a.build or os.environ.get("CKFS_BUILD", ""))
        self.workers = a.workers
        self.max_delay = a.max_delay
        self.keep = a.keep
        self.damage = a.damage
        self.key_ops = set(a.key_ops.split(","))
        self.workdir = a.workdir or tempfile.mkdtemp(prefix="ckfs-crash.")
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        _, helptext = run_cmd([os.path.join(self.build, "ck-dep"), "--help"], dict(os.environ))
        self.has_roll = any(ln.strip().startswith("roll") for ln in helptext.splitlines())
        _, helptext = run_cmd([os.path.join(self.build, "ck-assign"), "--help"],
                              dict(os.environ))
        self.has_apply = "--apply" in helptext


def preflight(build):
    if os.geteuid() != 0:
        return "needs root (FUSE mounts, SIGKILL of the daemon)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed (package fuse3)"
    if not build:
        return "CKFS_BUILD is not set (the meson build directory)"
    for b in ("ckfs", "ck-mkfs", "ck-dep", "ck-assign"):
        if not os.access(os.path.join(build, b), os.X_OK):
            return "%s is not built in %s" % (b, build)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None, help="master seed (default: random)")
    ap.add_argument("--replay", type=int, default=None, metavar="ROUND_SEED",
                    help="run one round with this round seed")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--max-delay", type=float, default=3.0)
    ap.add_argument("--build", default=None)
    ap.add_argument("--workdir", default=None, help="where round directories go")
    ap.add_argument("--keep", action="store_true", help="keep every round's directory")
    ap.add_argument("--key-ops", default="roll,apply",
                    help="key operations during the workload besides ck-dep create: "
                         "roll, apply (comma list; 'none' for neither)")
    ap.add_argument("--damage", choices=("flip", "rollback"), default=None,
                    help="self-test: damage the backing store after the kill (rounds must fail)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        Worker(json.loads(a.worker)).run(10 ** 6)
        return 0
    # scripts/test's timeout sends SIGTERM: unwind so that mounts are undone.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    why = preflight(os.path.abspath(a.build or os.environ.get("CKFS_BUILD", "")) if
                    (a.build or os.environ.get("CKFS_BUILD")) else "")
    if why:
        print("crash: skipped: %s" % why)
        return 77
    h = Harness(a)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    master = random.Random(seed)
    rounds = [a.replay] if a.replay is not None else [master.randrange(1 << 48)
                                                      for _ in range(a.rounds)]
    notes = []
    if not h.has_roll:
        notes.append("ck-dep has no roll yet: the key operation is ck-dep create + ck-assign")
    if not h.has_apply:
        notes.append("ck-assign has no --apply yet: not in the workload")
    if not os.access(os.path.join(h.build, "ck-fsck"), os.X_OK):
        notes.append("ck-fsck is not built: its checks are skipped")
    for n in notes:
        print("crash: note: %s" % n)
    print("crash: %d round(s), seed %d, %d workers, work dir %s" %
          (len(rounds), seed, h.workers, h.workdir), flush=True)
    passed = failed = 0
    failures = []
    for i, rs in enumerate(rounds, 1):
        r = None
        try:
            r = Round(h, i, rs)
            r.run()
        except Fail as e:
            r.problem(str(e))
        except Exception as e:      # a harness bug is a failed round too
            import traceback
            if r is None:
                raise
            r.problem("harness error: %s" % traceback.format_exc().strip().replace("\n", "\n    "))
        finally:
            if r is not None:
                r.stop_daemon_hard()
        st = " ".join("%s=%s" % kv for kv in r.stats.items())
        if r.problems:
            failed += 1
            failures.append((i, rs, r.problems[0]))
            print("round %d/%d seed=%d FAIL %s (kept %s)" % (i, len(rounds), rs, st, r.dir))
            for p in r.problems[:30]:
                print("    " + p)
            if len(r.problems) > 30:
                print("    ... and %d more" % (len(r.problems) - 30))
            for log in r.logs:
                print("    daemon log %s:" % log)
                with open(log, errors="replace") as f:
                    for ln in f.read().splitlines()[-15:]:
                        print("      | " + ln)
        else:
            passed += 1
            print("round %d/%d seed=%d ok %s" % (i, len(rounds), rs, st))
        for n in r.notes:
            print("    note: " + n)
        sys.stdout.flush()
        if not r.problems and not h.keep:
            if not mounted(r.mnt):
                shutil.rmtree(r.dir, ignore_errors=True)
    same = "".join(" --%s %s" % (k.replace("_", "-"), v) for k, v in
                   (("workers", a.workers), ("max_delay", a.max_delay), ("key_ops", a.key_ops))
                   if v != ap.get_default(k))
    print("crash: %d rounds, %d passed, %d failed (seed %d; replay a round: scripts/crash "
          "--replay ROUND_SEED%s)" % (len(rounds), passed, failed, seed, same))
    for i, rs, p in failures:
        print("crash: failed round %d seed=%d: %s" % (i, rs, p[:300]))
    if not failed and not h.keep and not a.workdir:
        shutil.rmtree(h.workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
