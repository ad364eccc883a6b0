#!/usr/bin/env python3
"""Races on a live mount that once lost data, as regression checks.

  races.py unlink-reuse [SECONDS]
      Six processes, each in its own directory (service and DEP tree):
      create f, link f to l, unlink f, create g, write l, rename g over l,
      append to l.  An unlink frees a backing inode number that a create in
      another directory may get at once; the daemon once dropped the new
      file's inode then, so that the rename did not reach it and the append
      failed with ENOENT.  The window is narrow: the old bug showed about
      once in 3,000 iterations, so run it for minutes (not run by 90-crash).
  races.py apply-links [SECONDS]
      Two processes link, rename, unlink and read files in a DEP tree while
      ck-assign --apply moves the tree between DEPs again and again.  The
      apply tool once rebuilt a file's header from the names it had seen
      before (its scan), so a link or rename made since lost its binding
      and the file read as EIO.

Every operation must succeed and every file must read back what was written
into it; afterwards the daemon exits 0 on unmount and ck-fsck finds nothing.
The build directory comes from $CKFS_BUILD.  Needs root and /dev/fuse.
Exit 0 pass, 1 fail, 77 skip (last line says why).
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CKFS_BUILD", "")


def tool(env, name, *args, check=True):
    p = subprocess.run([os.path.join(BUILD, name)] + list(args), env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode(errors="replace")
    if check and p.returncode:
        raise RuntimeError("%s %s: exit %d: %s" % (name, " ".join(args[1:]), p.returncode,
                                                   out.strip()[-500:]))
    return p.returncode, out


# ------------------------------------------------------------ the workers

def data(tag, n):
    return (b"%s:" % tag.encode()) * n


def append(path, b):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b)
    finally:
        os.close(fd)


def w_unlink_reuse(d, seconds, seed):
    """create f, link f l, unlink f, create g, write l, rename g l, append l."""
    os.makedirs(d, exist_ok=True)
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        i += 1
        f, l, g = (os.path.join(d, "%s%d" % (c, i)) for c in "flg")
        os.close(os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        append(f, data("f%d" % i, 700))
        os.link(f, l)
        os.unlink(f)
        os.close(os.open(g, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        append(g, data("g%d" % i, 30))
        fd = os.open(l, os.O_WRONLY)
        os.write(fd, b"x" * 600)
        os.close(fd)
        os.rename(g, l)
        append(l, b"y" * 96)        # ENOENT when the inode was lost
        if i % 10 == 0:
            with open(l, "rb") as fh:
                if fh.read() != data("g%d" % i, 30) + b"y" * 96:
                    raise RuntimeError("%s: wrong content after rename over a link" % l)
        os.unlink(l)
    return i


def w_apply_links(d, seconds, seed):
    """Links, renames, unlinks and reads of files with up to 5 names."""
    rng = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    names = {}
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        i += 1
        x = rng.random()
        if len(names) < 30 or x < 0.2:
            n = "f%d" % i
            with open(os.path.join(d, n), "xb") as fh:
                fh.write(data(n, 300))
            names[n] = n
        elif x < 0.5:
            src = rng.choice(sorted(names))
            if sum(1 for v in names.values() if v == names[src]) < 5:
                os.link(os.path.join(d, src), os.path.join(d, "l%d" % i))
                names["l%d" % i] = names[src]
        elif x < 0.7:
            src = rng.choice(sorted(names))
            os.rename(os.path.join(d, src), os.path.join(d, "r%d" % i))
            names["r%d" % i] = names.pop(src)
        elif x < 0.8:
            src = rng.choice(sorted(names))
            os.unlink(os.path.join(d, src))
            del names[src]
        else:
            for n in rng.sample(sorted(names), 3):
                with open(os.path.join(d, n), "rb") as fh:
                    if fh.read() != data(names[n], 300):
                        raise RuntimeError("%s: wrong content" % n)
    for n in sorted(names):
        with open(os.path.join(d, n), "rb") as fh:
            if fh.read() != data(names[n], 300):
                raise RuntimeError("%s: wrong content at the end" % n)
    return i


WORKERS = {"unlink-reuse": w_unlink_reuse, "apply-links": w_apply_links}


# ------------------------------------------------------------ the check

def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        _, _, kind, d, seconds, seed = sys.argv
        try:
            n = WORKERS[kind](d, float(seconds), int(seed))
        except (OSError, RuntimeError) as e:
            print("%s: %s" % (d, e), flush=True)
            return 1
        print("%s: %d iterations" % (d, n), flush=True)
        return 0
    if len(sys.argv) < 2 or sys.argv[1] not in WORKERS:
        print("usage: races.py unlink-reuse|apply-links [SECONDS]", file=sys.stderr)
        return 2
    kind = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("races: skipped: needs root, /dev/fuse and fusermount3")
        return 77
    if not BUILD or not os.access(os.path.join(BUILD, "ckfs"), os.X_OK):
        print("races: skipped: CKFS_BUILD does not hold a built ckfs")
        return 77

    top = tempfile.mkdtemp(prefix="ckfs-races.")
    vol, mnt, keys = (os.path.join(top, x) for x in ("vol", "mnt", "keys"))
    os.makedirs(vol)
    os.makedirs(mnt)
    os.mkdir(keys, 0o700)
    env = dict(os.environ, CKFS_KEY_DIR=keys)
    daemon = None
    failed = []
    log = os.path.join(top, "ckfs.log")
    try:
        tool(env, "ck-mkfs", "-q", vol)
        tool(env, "ck-dep", vol, "create", "d1")
        tool(env, "ck-assign", vol, "dep", "d1")
        with open(log, "wb") as lf:
            daemon = subprocess.Popen([os.path.join(BUILD, "ckfs"), "-f", vol, mnt], env=env,
                                      stdin=subprocess.DEVNULL, stdout=lf,
                                      stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.ismount(mnt) or daemon.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.ismount(mnt):
            raise RuntimeError("mount failed: " + open(log, errors="replace").read()[-500:])
        os.mkdir(os.path.join(mnt, "dep"))
        if kind == "unlink-reuse":
            dirs = [os.path.join(mnt, *p) for p in (("a",), ("b",), ("c",), ("dep", "d"),
                                                    ("dep", "e"), ("dep", "f"))]
        else:
            # Files for the apply to work on besides the racing ones.
            pre = os.path.join(mnt, "dep", "pre")
            os.makedirs(pre)
            for i in range(200):
                with open(os.path.join(pre, "p%d" % i), "wb") as fh:
                    fh.write(os.urandom(9000))
            dirs = [os.path.join(mnt, "dep", "x"), os.path.join(mnt, "dep", "y")]
            tool(env, "ck-dep", vol, "create", "k1")
            tool(env, "ck-dep", vol, "create", "k2")
        procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", kind,
                                   d, str(seconds), str(n)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for n, d in enumerate(dirs)]
        applies = 0
        if kind == "apply-links":
            deps = ["k1", "k2", "d1"]
            while any(p.poll() is None for p in procs):
                rc, out = tool(env, "ck-assign", "--apply", vol, "dep", deps[applies % 3],
                               check=False)
                if rc:
                    failed.append("ck-assign --apply dep %s: exit %d: %s" %
                                  (deps[applies % 3], rc, out.strip()[-300:]))
                    break
                applies += 1
        for p in procs:
            out = p.communicate(timeout=seconds + 120)[0].decode(errors="replace").strip()
            print("races: " + out)
            if p.returncode:
                failed.append(out)
        if kind == "apply-links":
            print("races: %d applies during the workload" % applies)
            if applies < 2:
                failed.append("only %d applies ran during the workload" % applies)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        failed.append(str(e))
    finally:
        if daemon is not None:
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
                if os.path.ismount(mnt):
                    subprocess.run(["fusermount3", "-uz", mnt], stderr=subprocess.DEVNULL)
            try:
                rc = daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                rc = daemon.wait()
            if rc:
                failed.append("daemon exit %d after the unmount" % rc)
    if os.access(os.path.join(BUILD, "ck-fsck"), os.X_OK) and not failed:
        rc, out = tool(env, "ck-fsck", vol, check=False)
        if rc:
            failed.append("ck-fsck exit %d: %s" % (rc, out.strip()[-800:]))
    with open(log, errors="replace") as f:
        errs = [ln for ln in f.read().splitlines() if "error" in ln]
    for ln in errs[:10]:
        print("races: daemon: " + ln)
    if errs and not failed:
        failed.append("%d error lines in the daemon log" % len(errs))
    for f in failed:
        print("races: FAIL: " + f)
    if failed:
        print("races: %s failed (kept %s)" % (kind, top))
        return 1
    shutil.rmtree(top, ignore_errors=True)
    print("races: %s passed" % kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
