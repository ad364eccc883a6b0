"""Concurrency stress workload of 55-stress.sh (python3, stdlib only).

  stress.py run ROOT SEED NPROC NTHREADS OPS OUT   start NPROC worker
      processes of NTHREADS threads, each doing OPS operations picked by
      a seeded generator, then check everything against the model.
  stress.py verify ROOT OUT   check the final state again (after a remount)

Each thread mixes:
  private   files only it touches in ROOT/priv/P-T: create, pwrite (also
            past the end), truncate, O_APPEND, rename, unlink, fsync, read
            back; its model (name -> bytes) must equal the files.
  append    one record per write(2) with O_APPEND to the shared
            ROOT/append/log from every thread of every process: at the end
            every record is there exactly once and none is torn.
  slots     pwrite of one whole 4096-byte slot of a shared file
            (ROOT/shared/sN) and preads of slots by others: a slot read is
            always one writer's complete pattern (read/write atomicity).
  rename    a complete record written to a temp file, then renamed over
            ROOT/ren/cur; readers open and read ROOT/ren/cur at the same
            time: always one complete record, never ENOENT.
  churn     creates and unlinks of its own names in ROOT/churn while every
            thread lists it: a listing holds only well-formed names, no
            duplicates, and all of the lister's own live names.
Any error other than the ones an operation can expect, or any mismatch,
is recorded; OUT/result-P.json holds each process's counts and errors.
"""
import errno
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

SLOT = 4096
NSLOTS = 8
NSHARED = 4


def h8(b):
    return hashlib.sha1(b).hexdigest()[:8]


def write_all(fd, data):
    n = os.write(fd, data)
    if n != len(data):
        raise AssertionError("short write %d of %d" % (n, len(data)))


def pwrite_all(fd, data, off):
    n = os.pwrite(fd, data, off)
    if n != len(data):
        raise AssertionError("short pwrite %d of %d" % (n, len(data)))


def read_path(p):
    with open(p, "rb") as f:
        return f.read()


def slot_pattern(wid, ver):
    unit = ("%07d:%07d:" % (wid, ver)).encode()       # 16 bytes
    return unit * (SLOT // 16)


def slot_ok(b):
    if len(b) != SLOT:
        return "short slot read (%d bytes)" % len(b)
    unit = b[:16]
    if b != unit * (SLOT // 16):
        return "torn slot: %r ... %r" % (b[:16], b[-16:])
    if not re.match(rb"^\d{7}:\d{7}:$", unit):
        return "slot holds no pattern: %r" % unit
    return None


def rec_make(tag, rnd):
    body = ("%s %s" % (tag, "x" * rnd.randint(1, 6000))).encode()
    return b"%08d %s %s\n" % (len(body), h8(body).encode(), body)


def rec_check(b):
    try:
        n = int(b[:8])
        hh = b[9:17]
        body = b[18:18 + n]
        if len(b) != 18 + n + 1 or b[-1:] != b"\n" or h8(body).encode() != hh:
            return "torn or partial record (%d bytes)" % len(b)
    except ValueError:
        return "not a record (%r)" % b[:20]
    return None


class Worker:
    def __init__(self, root, seed, p, t, ops, errors, counts):
        self.root, self.p, self.t, self.ops = root, p, t, ops
        self.rnd = random.Random("%s-%d-%d" % (seed, p, t))
        self.errors, self.counts = errors, counts
        self.priv = os.path.join(root, "priv", "%d-%d" % (p, t))
        self.model = {}
        self.nfile = 0
        self.seq = 0
        self.aseq = 0
        self.live = set()
        self.wid = p * 100 + t

    def err(self, what, e):
        self.errors.append("p%d t%d %s: %s" % (self.p, self.t, what, e))

    def count(self, k):
        self.counts[k] = self.counts.get(k, 0) + 1

    # ---- private files
    def op_private(self):
        r = self.rnd
        names = sorted(self.model)
        choice = r.random()
        if not names or choice < 0.15:
            n = "f%d" % self.nfile
            self.nfile += 1
            data = r.randbytes(r.randint(0, 20000))
            fd = os.open(os.path.join(self.priv, n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            self.model[n] = bytearray(data)
            return "create"
        n = r.choice(names)
        p = os.path.join(self.priv, n)
        m = self.model[n]
        if choice < 0.40:
            off = r.randint(0, len(m) + 5000)
            data = r.randbytes(r.randint(1, 9000))
            fd = os.open(p, os.O_WRONLY)
            try:
                pwrite_all(fd, data, off)
            finally:
                os.close(fd)
            if off > len(m):
                m.extend(bytes(off - len(m)))
            m[off:off + len(data)] = data
            return "pwrite"
        if choice < 0.50:
            size = r.randint(0, len(m) + 5000)
            os.truncate(p, size)
            if size < len(m):
                del m[size:]
            else:
                m.extend(bytes(size - len(m)))
            return "truncate"
        if choice < 0.60:
            data = r.randbytes(r.randint(1, 5000))
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            try:
                write_all(fd, data)
                if r.random() < 0.3:
                    os.fsync(fd)
            finally:
                os.close(fd)
            m.extend(data)
            return "append"
        if choice < 0.70:
            n2 = "f%d" % self.nfile
            self.nfile += 1
            os.rename(p, os.path.join(self.priv, n2))
            self.model[n2] = self.model.pop(n)
            return "rename"
        if choice < 0.78 and len(names) > 2:
            os.unlink(p)
            del self.model[n]
            return "unlink"
        got = read_path(p)
        if got != bytes(m):
            raise AssertionError("%s differs from the model (%d vs %d bytes)" % (p, len(got), len(m)))
        return "readback"

    # ---- shared append log
    def op_append(self):
        self.aseq += 1
        rec = rec_make("a.%d.%d.%d" % (self.p, self.t, self.aseq), self.rnd)
        fd = os.open(os.path.join(self.root, "append", "log"), os.O_WRONLY | os.O_APPEND)
        try:
            write_all(fd, rec)
        finally:
            os.close(fd)
        return "append-shared"

    # ---- shared slots
    def op_slots(self):
        r = self.rnd
        p = os.path.join(self.root, "shared", "s%d" % r.randrange(NSHARED))
        s = r.randrange(NSLOTS)
        if r.random() < 0.4:
            self.seq += 1
            fd = os.open(p, os.O_WRONLY)
            try:
                pwrite_all(fd, slot_pattern(self.wid, self.seq), s * SLOT)
            finally:
                os.close(fd)
            return "slot-write"
        fd = os.open(p, os.O_RDONLY)
        try:
            b = os.pread(fd, SLOT, s * SLOT)
        finally:
            os.close(fd)
        bad = slot_ok(b)
        if bad:
            raise AssertionError("%s slot %d: %s" % (p, s, bad))
        return "slot-read"

    # ---- rename over a shared name
    def op_rename(self):
        r = self.rnd
        cur = os.path.join(self.root, "ren", "cur")
        if r.random() < 0.4:
            self.seq += 1
            tmp = os.path.join(self.root, "ren", "tmp-%d-%d-%d" % (self.p, self.t, self.seq))
            rec = rec_make("r.%d.%d.%d" % (self.p, self.t, self.seq), r)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                write_all(fd, rec)
            finally:
                os.close(fd)
            os.rename(tmp, cur)
            return "rename-over"
        try:
            data = read_path(cur)
        except OSError as e:
            # ckfs(8) BUGS: an open racing with two renames over the name
            # (the kernel retries once) can fail with ESTALE.
            if e.errno != errno.ESTALE:
                raise
            return "rename-read-estale"
        bad = rec_check(data)
        if bad:
            raise AssertionError("ren/cur: " + bad)
        return "rename-read"

    # ---- readdir during creates and deletes
    NAME = re.compile(r"^(stable-\d+-\d+|c-\d+-\d+-\d+)$")

    def op_churn(self):
        r = self.rnd
        d = os.path.join(self.root, "churn")
        x = r.random()
        if x < 0.3 or not self.live:
            self.seq += 1
            n = "c-%d-%d-%d" % (self.p, self.t, self.seq)
            fd = os.open(os.path.join(d, n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            self.live.add(n)
            return "churn-create"
        if x < 0.55:
            n = r.choice(sorted(self.live))
            os.unlink(os.path.join(d, n))
            self.live.discard(n)
            return "churn-unlink"
        names = os.listdir(d)
        if len(names) != len(set(names)):
            raise AssertionError("churn listing has duplicates")
        bad = [n for n in names if not self.NAME.match(n)]
        if bad:
            raise AssertionError("churn listing has unknown names: %r" % bad[:5])
        mine = self.live | {"stable-%d-%d" % (self.p, self.t)}
        missing = mine - set(names)
        if missing:
            raise AssertionError("churn listing misses live names: %r" % sorted(missing)[:5])
        return "readdir"

    def run(self):
        os.makedirs(self.priv)
        os.close(os.open(os.path.join(self.root, "churn", "stable-%d-%d" % (self.p, self.t)),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        kinds = [(0.40, self.op_private), (0.55, self.op_append), (0.72, self.op_slots),
                 (0.85, self.op_rename), (1.0, self.op_churn)]
        for i in range(self.ops):
            x = self.rnd.random()
            fn = next(f for w, f in kinds if x < w)
            try:
                self.count(fn())
            except OSError as e:
                self.err("op %d %s" % (i, fn.__name__), "%s (%s)" % (errno.errorcode.get(e.errno, e.errno), e))
            except AssertionError as e:
                self.err("op %d %s" % (i, fn.__name__), e)
        # The private dir must hold exactly the model.
        try:
            names = set(os.listdir(self.priv))
            if names != set(self.model):
                self.err("final", "priv listing %r != model %r" % (sorted(names)[:5], sorted(self.model)[:5]))
            for n, m in self.model.items():
                if read_path(os.path.join(self.priv, n)) != bytes(m):
                    self.err("final", "%s differs from the model" % n)
        except OSError as e:
            self.err("final", e)


def worker(root, seed, p, nthreads, ops, out):
    errors, counts = [], {}
    ws = [Worker(root, seed, p, t, ops, errors, counts) for t in range(nthreads)]
    th = [threading.Thread(target=w.run) for w in ws]
    for x in th:
        x.start()
    for x in th:
        x.join()
    model = {"priv": {}, "appends": [], "live": []}
    for w in ws:
        model["priv"]["%d-%d" % (p, w.t)] = {n: hashlib.sha256(bytes(m)).hexdigest() for n, m in w.model.items()}
        model["appends"] += ["a.%d.%d.%d" % (p, w.t, s) for s in range(1, w.aseq + 1)]
        model["live"] += sorted(w.live) + ["stable-%d-%d" % (p, w.t)]
    json.dump({"errors": errors, "counts": counts, "model": model},
              open(os.path.join(out, "result-%d.json" % p), "w"))


def setup(root):
    for d in ("priv", "append", "shared", "ren", "churn"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "append", "log"), "wb").close()
    for i in range(NSHARED):
        with open(os.path.join(root, "shared", "s%d" % i), "wb") as f:
            for s in range(NSLOTS):
                f.write(slot_pattern(0, 0))
    with open(os.path.join(root, "ren", "cur"), "wb") as f:
        f.write(rec_make("r.init", random.Random(0)))


def verify(root, out):
    """The state every process left, against their models."""
    res = [json.load(open(os.path.join(out, f))) for f in sorted(os.listdir(out)) if f.startswith("result-")]
    errs = []
    # append log: every record once, none torn
    log = read_path(os.path.join(root, "append", "log"))
    seen, i = {}, 0
    while i < len(log):
        try:
            n = int(log[i:i + 8])
        except ValueError:
            errs.append("append log: garbage at offset %d: %r" % (i, log[i:i + 20]))
            break
        rec = log[i:i + 18 + n + 1]
        bad = rec_check(rec)
        if bad:
            errs.append("append log at offset %d: %s" % (i, bad))
            break
        tag = rec[18:].split(b" ", 1)[0].decode()
        seen[tag] = seen.get(tag, 0) + 1
        i += len(rec)
    want = [a for r in res for a in r["model"]["appends"]]
    missing = [a for a in want if a not in seen]
    dup = [a for a, c in seen.items() if c > 1]
    extra = [a for a in seen if a not in set(want)]
    if missing or dup or extra:
        errs.append("append log: %d missing, %d duplicated, %d unknown (of %d): %r %r %r" % (
            len(missing), len(dup), len(extra), len(want), missing[:3], dup[:3], extra[:3]))
    # private dirs
    for r in res:
        for pt, files in r["model"]["priv"].items():
            d = os.path.join(root, "priv", pt)
            names = set(os.listdir(d))
            if names != set(files):
                errs.append("priv/%s: listing differs from the model" % pt)
            for n, h in files.items():
                if n in names and hashlib.sha256(read_path(os.path.join(d, n))).hexdigest() != h:
                    errs.append("priv/%s/%s differs from the model" % (pt, n))
    # churn: exactly the live names
    live = {n for r in res for n in r["model"]["live"]}
    names = set(os.listdir(os.path.join(root, "churn")))
    if names != live:
        errs.append("churn: %d names listed, %d live; extra %r, missing %r" % (
            len(names), len(live), sorted(names - live)[:3], sorted(live - names)[:3]))
    # ren: only cur left, a complete record
    rn = os.listdir(os.path.join(root, "ren"))
    if rn != ["cur"]:
        errs.append("ren: %r left, want only cur" % sorted(rn)[:5])
    bad = rec_check(read_path(os.path.join(root, "ren", "cur")))
    if bad:
        errs.append("ren/cur: " + bad)
    for i in range(NSHARED):
        b = read_path(os.path.join(root, "shared", "s%d" % i))
        for s in range(NSLOTS):
            bad = slot_ok(b[s * SLOT:(s + 1) * SLOT])
            if bad:
                errs.append("shared/s%d slot %d: %s" % (i, s, bad))
    print("verify: %d appended records, %d private dirs, %d churn names" % (
        len(want), sum(len(r["model"]["priv"]) for r in res), len(live)))
    return errs


def main():
    if sys.argv[1] == "worker":
        root, seed, p, nt, ops, out = sys.argv[2:8]
        worker(root, seed, int(p), int(nt), int(ops), out)
        return
    if sys.argv[1] == "verify":
        errs = verify(sys.argv[2], sys.argv[3])
        for e in errs[:30]:
            print("ERROR " + e)
        sys.exit(1 if errs else 0)
    root, seed, nproc, nthreads, ops, out = sys.argv[2:8]
    setup(root)
    t0 = time.time()
    procs = [subprocess.Popen([sys.executable, __file__, "worker", root, seed, str(p), nthreads, ops, out])
             for p in range(int(nproc))]
    rcs = [p.wait() for p in procs]
    dt = time.time() - t0
    res = [json.load(open(os.path.join(out, "result-%d.json" % p))) for p in range(int(nproc))
           if os.path.exists(os.path.join(out, "result-%d.json" % p))]
    counts = {}
    for r in res:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    total = sum(counts.values())
    print("seed %s: %d processes x %s threads x %s ops in %.1f s (%d ops ok, %.0f ops/s)" % (
        seed, int(nproc), nthreads, ops, dt, total, total / dt if dt else 0))
    print("ops: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    errs = [e for r in res for e in r["errors"]]
    st, rr = counts.get("rename-read-estale", 0), counts.get("rename-read", 0)
    if st > max(3, (st + rr) // 20):
        errs.append("%d of %d opens racing with renames failed with ESTALE (more than 5 %%)" % (st, st + rr))
    if any(rcs) or len(res) != int(nproc):
        errs.append("worker exit statuses %r" % rcs)
    errs += verify(root, out)
    for e in errs[:40]:
        print("ERROR " + e)
    print("%d errors" % len(errs))
    sys.exit(1 if errs else 0)


if __name__ == "__main__":
    main()
