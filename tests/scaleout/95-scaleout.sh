#!/bin/bash
# Scale-out: several ckfs daemons (separate processes, separate mountpoints,
# as separate hosts would run them) on one shared backing volume.
#
#  phase 1  two daemons, default cache_timeout (1 s): cross-mount workload
#           (write/read after close, appends from the other host after
#           reopen, overwrite/truncate, rename, hard link, directories,
#           Maildir delivery tmp -> new -> cur, concurrent delivery from two
#           hosts into one Maildir), explicit revoke measured per mount.
#  phase 2  three daemons with cache_timeout=0 (immediate visibility) and
#           key_ttl=3: the same workload with every host writing in turn,
#           and two hosts writing one file at once (byte-range lock);
#           explicit revoke (3 DEPs, latency per mount <= 1000 ms, or
#           CK_SCALEOUT_REVOKE_MS); customer side revoke (key files deleted,
#           every mount <= 2 x key_ttl); a DEP created and assigned while
#           mounted (usable on every mount within key_ttl); ck-dep roll
#           --dep-key under read/write loops on every
#           mount; ck-assign --apply of a populated tree while every mount
#           reads and writes it, with a second --apply from another "host"
#           refused; the record-update race (two processes creating 20 DEPs
#           each and assigning trees, also to one shared DEP, at once);
#           then every daemon unmounts cleanly, `ck-dep audit --verify`
#           passes on the one chain written by all of them, and a remount
#           sees the final state.
#
# Tools are run through different hosts' view of the volume in turn.
# For another backing engine (96-scaleout-gluster.sh) set:
#   CK_SCALEOUT_VOLS="V1 V2 ..."  the same (empty) volume directory as each
#                                 host sees it (one path per daemon); the
#                                 volume is made through V1
#   CK_SCALEOUT_HOSTS=N           daemons in phase 2 (default 3)
#   CK_SCALEOUT_PHASE1=0          skip phase 1
#   CK_SCALEOUT_ENGINE=NAME       printed in the notes
#   CK_SCALEOUT_RACE=N            rounds per process of the record race (20)
#   CK_SCALEOUT_SMALL=1           fewer rounds in the cross-mount workload
#   CK_SCALEOUT_REVOKE_MS=N       explicit revoke limit per mount (1000)
#   CK_SCALEOUT_APPLY_FILES=N     files in the applied tree (400)
# Measured latencies are printed as "# note:" lines under the summary.
. "$(dirname "$0")/../integration/lib.sh"

CKDEP=${CKDEP:-$CKFS_BUILD/ck-dep}
CKASSIGN=${CKASSIGN:-$CKFS_BUILD/ck-assign}
for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
export CKDEP CKASSIGN

# Every check says how long it took (budgets: docs/SHARED-STORAGE.md).
T_START=$(date +%s.%N)
eval "_lib_$(declare -f check)"
check() {
	local t0 rc
	t0=$(date +%s.%N)
	_lib_check "$@"; rc=$?
	echo "#   ($(elapsed "$t0") s; $(elapsed "$T_START") s since start)"
	return $rc
}

ENGINE=${CK_SCALEOUT_ENGINE:-local directory}
NHOSTS=${CK_SCALEOUT_HOSTS:-3}
PHASE1=${CK_SCALEOUT_PHASE1:-1}
TTL=3
# Explicit revoke: within 1 s on a local directory (every mount polls the
# records every 200 ms); on a networked engine every mount within key_ttl.
REVOKE_MS=${CK_SCALEOUT_REVOKE_MS:-1000}
HN=(A B C D E F)
if [ -n "${CK_SCALEOUT_VOLS:-}" ]; then
	read -r -a HVOL <<<"$CK_SCALEOUT_VOLS"
	while [ "${#HVOL[@]}" -lt "$NHOSTS" ]; do HVOL+=("${HVOL[0]}"); done
else
	HVOL=()
	for i in $(seq 0 $((NHOSTS - 1))); do HVOL+=("$VOL"); done
fi
HMNT=()
for i in $(seq 0 $((NHOSTS - 1))); do HMNT+=("$T/host${HN[$i]}"); done
V0=${HVOL[0]}
tnote() { echo "$*" >>"$T/notes"; }
tnote "engine: $ENGINE; backing as seen by each host: ${HVOL[*]:0:$NHOSTS}"

# ---------------------------------------------------------------- helpers
cat >"$T/so.py" <<'PYEOF'
"""Cross-mount helpers for 95-scaleout.sh. MOUNTS and VOLS (space separated,
one per host, same order) name each host's mountpoint and backing view."""
import ctypes, errno, fcntl, hashlib, json, os, random, struct, subprocess, sys, threading, time

T = os.environ["T"]
CKDEP = os.environ["CKDEP"]
CKASSIGN = os.environ["CKASSIGN"]
WAIT = float(os.environ.get("XWAIT", "0"))
# Slow engines (every operation a round trip): fewer rounds, same scenarios.
SMALL = os.environ.get("CK_SCALEOUT_SMALL") == "1"
HN = "ABCDEF"


def hosts():
    return os.environ["MOUNTS"].split()


def vols():
    return os.environ["VOLS"].split()


def hname(i):
    return HN[i]


def note(msg):
    with open(os.path.join(T, "notes"), "a") as f:
        f.write(msg + "\n")


def ename(e):
    return errno.errorcode.get(e, str(e)) if e is not None else "none"


def rb(n, seed):
    return random.Random(seed).randbytes(n)


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


def wr(path, data, fsync=False, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def eq(got, want, what):
    if got != want:
        if isinstance(got, bytes) and isinstance(want, bytes):
            n = min(len(got), len(want))
            d = next((i for i in range(n) if got[i] != want[i]), n)
            raise AssertionError("%s: got %d bytes (%s), want %d bytes (%s), first difference at %d"
                                 % (what, len(got), sha(got), len(want), sha(want), d))
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def settle():
    """What a reader on another host waits after the writer closed: the
    attribute/entry cache time of the readers' mounts."""
    if WAIT:
        time.sleep(WAIT)


def expect_enoent(path):
    try:
        os.lstat(path)
    except FileNotFoundError:
        return
    raise AssertionError("%s still exists" % path)


def run(cmd, vol_index=0, check=True):
    """A tool run on host vol_index: the volume argument is that host's view."""
    cmd = [c.replace("@VOL@", vols()[vol_index]) for c in cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def dep_json(name, vol_index=0):
    return json.loads(run([CKDEP, "@VOL@", "show", name, "--json"], vol_index).stdout)


def tree_id(dep, path, vol_index=0):
    for t in dep_json(dep, vol_index)["trees"]:
        if t["path"] == path and t["state"] not in ("retired", "purged"):
            return t["id"]
    raise AssertionError("dep %s has no tree %s" % (dep, path))


# ---- backing files: ckfs reports the backing inode as st_ino
_dir_cache = {}


def _find_ino(root, ino, want_dir):
    for dp, dns, fns, dfd in os.fwalk(root):
        if not want_dir and ".ckfs" in dns and dp == root:
            dns.remove(".ckfs")
        for n in (dns if want_dir else fns):
            try:
                if os.stat(n, dir_fd=dfd, follow_symlinks=False).st_ino == ino:
                    return os.path.join(dp, n)
            except FileNotFoundError:
                pass
    return None


def backing(mnt_path, vol):
    """Backing file of a regular file on a mount (through its parent dir)."""
    par = os.path.dirname(mnt_path)
    pino = os.stat(par).st_ino
    ino = os.stat(mnt_path).st_ino
    key = (vol, pino)
    d = _dir_cache.get(key)
    if d is None or not os.path.isdir(d):
        d = vol if os.stat(vol).st_ino == pino else _find_ino(vol, pino, True)
        if d is None:
            raise AssertionError("no backing directory for %s (ino %d)" % (par, pino))
        _dir_cache[key] = d
    for n in os.listdir(d):
        p = os.path.join(d, n)
        try:
            if os.lstat(p).st_ino == ino:
                return p
        except FileNotFoundError:
            pass
    p = _find_ino(vol, ino, False)
    if p is None:
        raise AssertionError("no backing file for %s (ino %d)" % (mnt_path, ino))
    return p


def file_tree(mnt_path, vol, bpath=None):
    with open(bpath or backing(mnt_path, vol), "rb") as f:
        return f.read(512)[464:480].hex()


def backing_files(vol, sub_ino):
    """Backing regular files under the backing directory whose inode is
    sub_ino: inode -> path (one walk: slow engines make per-file searches
    cost minutes)."""
    top = _find_ino(vol, sub_ino, True)
    if top is None:
        raise AssertionError("no backing directory with inode %d" % sub_ino)
    m = {}
    for dp, dns, fns, dfd in os.fwalk(top):
        for n in fns:
            try:
                m[os.stat(n, dir_fd=dfd, follow_symlinks=False).st_ino] = os.path.join(dp, n)
            except FileNotFoundError:
                pass
    return m


# ---- cross-mount workload -----------------------------------------------
def xm_write(sub):
    """Each host in turn writes files (sizes around block edges); after
    close every other host reads them."""
    ms = hosts()
    sizes = [0, 1, 4095, 4096, 4097, 100000, 262145]
    for w, m in enumerate(ms):
        d = os.path.join(m, sub, "w")
        os.makedirs(d, exist_ok=True)
        refs = {}
        for k, n in enumerate(sizes):
            name = "from%s-%d" % (hname(w), k)
            refs[name] = rb(n, seed=w * 100 + k)
            wr(os.path.join(d, name), refs[name])
        settle()
        for r, m2 in enumerate(ms):
            for name, data in refs.items():
                p = os.path.join(m2, sub, "w", name)
                eq(os.stat(p).st_size, len(data), "size of %s on host %s" % (name, hname(r)))
                eq(rd(p), data, "%s written on %s, read on %s" % (name, hname(w), hname(r)))
    print("%d hosts x %d files: every host reads every other host's files" % (len(ms), len(sizes)))


def xm_append(sub, rounds=12):
    """Appends from every host in turn; each writer reopens and first reads
    the whole file (it must see the previous host's append)."""
    ms = hosts()
    rounds = min(rounds, 6) if SMALL else rounds
    p0 = os.path.join(ms[0], sub, "appended")
    os.makedirs(os.path.dirname(p0), exist_ok=True)
    ref = rb(5000, 1)
    wr(p0, ref)
    settle()
    for i in range(rounds):
        w = (i + 1) % len(ms)
        p = os.path.join(ms[w], sub, "appended")
        eq(rd(p), ref, "host %s before its append %d" % (hname(w), i))
        add = rb(random.Random(i).randint(1, 9000), seed=1000 + i)
        wr(p, add, mode="ab")
        ref += add
        settle()
    for r, m in enumerate(ms):
        eq(rd(os.path.join(m, sub, "appended")), ref, "appended file on host %s" % hname(r))
    print("%d appends from alternating hosts, %d bytes, identical on all" % (rounds, len(ref)))


def xm_overwrite(sub):
    """A writes, B overwrites a range in the middle, C truncates down and
    extends; the others see each step after reopen."""
    ms = hosts()
    n = len(ms)
    h = lambda i: ms[i % n]
    p = lambda i: os.path.join(h(i), sub, "over")
    ref = bytearray(rb(50000, 7))
    os.makedirs(os.path.dirname(p(0)), exist_ok=True)
    wr(p(0), bytes(ref))
    settle()
    fd = os.open(p(1), os.O_WRONLY)
    patch = rb(7000, 8)
    os.pwrite(fd, patch, 10000)
    os.close(fd)
    ref[10000:17000] = patch
    settle()
    eq(rd(p(2)), bytes(ref), "after an overwrite on host %s, read on %s" % (hname(1 % n), hname(2 % n)))
    os.truncate(p(2), 12345)
    del ref[12345:]
    settle()
    eq(rd(p(0)), bytes(ref), "after truncate down on %s" % hname(2 % n))
    os.truncate(p(0), 20000)
    ref += bytes(20000 - 12345)
    settle()
    for r in range(n):
        eq(rd(p(r)), bytes(ref), "after extend on %s, host %s" % (hname(0), hname(r)))
    print("overwrite, truncate down, extend: seen on every host")


def xm_cache(sub):
    """The kernel caches a host keeps across opens (file pages, directory
    entries: the page-cache stamp) are dropped when another host changed
    the file or directory: same-size overwrites in place (only the backing
    times tell), after a chmod, new and removed entries. No settle(): an
    open (and an opendir) after the other host's close sees its change at
    once, while this host's attributes are still cached."""
    ms = hosts()
    A, B = ms[0], ms[1]
    d = os.path.join(sub, "cache")
    os.makedirs(os.path.join(A, d), exist_ok=True)
    ref = bytearray(rb(3 * 4096 + 100, 21))
    wr(os.path.join(A, d, "f"), bytes(ref))
    for _ in range(2):          # A's page cache now holds the file
        eq(rd(os.path.join(A, d, "f")), bytes(ref), "read back on A")
    for rnd in range(3):
        patch = rb(4096, 22 + rnd)
        fd = os.open(os.path.join(B, d, "f"), os.O_WRONLY)
        os.pwrite(fd, patch, 4096 * rnd)
        os.close(fd)
        ref[4096 * rnd:4096 * (rnd + 1)] = patch
        eq(rd(os.path.join(A, d, "f")), bytes(ref), "same-size overwrite %d on B, read on A" % rnd)
        eq(rd(os.path.join(A, d, "f")), bytes(ref), "same-size overwrite %d on B, read again on A" % rnd)
    os.chmod(os.path.join(A, d, "f"), 0o600)
    patch = rb(100, 30)
    fd = os.open(os.path.join(B, d, "f"), os.O_WRONLY)
    os.pwrite(fd, patch, 3 * 4096)
    os.close(fd)
    ref[3 * 4096:] = patch
    eq(rd(os.path.join(A, d, "f")), bytes(ref), "overwrite of the partial last page on B after a chmod on A")
    # Directory entries: A lists (the kernel caches the listing), B adds
    # and removes entries, A lists again.
    want = {"f"}
    for rnd in range(3):
        eq(set(os.listdir(os.path.join(A, d))), want, "listing on A, round %d" % rnd)
        eq(set(os.listdir(os.path.join(A, d))), want, "listing on A again, round %d" % rnd)
        n = "n%d" % rnd
        wr(os.path.join(B, d, n), b"x")
        want.add(n)
        if rnd:
            os.unlink(os.path.join(B, d, "n%d" % (rnd - 1)))
            want.discard("n%d" % (rnd - 1))
        eq(set(os.listdir(os.path.join(A, d))), want, "listing on A after B's change, round %d" % rnd)
    print("kept caches dropped on another host's change: 4 overwrites, 3 directory changes")


def xm_rename_link(sub):
    ms = hosts()
    A, B = ms[0], ms[1]
    C = ms[2] if len(ms) > 2 else ms[1]
    j = lambda m, *x: os.path.join(m, sub, "rl", *x)
    os.makedirs(j(A), exist_ok=True)
    data, other = rb(30000, 11), rb(4000, 12)
    wr(j(A, "x"), data)
    wr(j(A, "victim"), other)
    settle()
    eq(rd(j(B, "x")), data, "x on B")
    eq(rd(j(B, "victim")), other, "victim on B")
    os.rename(j(A, "x"), j(A, "y"))
    settle()
    expect_enoent(j(B, "x"))
    eq(rd(j(B, "y")), data, "renamed y on B")
    os.link(j(A, "y"), j(A, "z"))
    settle()
    eq(rd(j(B, "z")), data, "hard link z on B")
    sy, sz = os.stat(j(B, "y")), os.stat(j(B, "z"))
    eq((sy.st_nlink, sz.st_nlink), (2, 2), "nlink of y, z on B")
    eq(sy.st_ino, sz.st_ino, "inode of y and z on B")
    # rename over an existing file on A; B sees the new content under the old name
    os.rename(j(A, "z"), j(A, "victim"))
    settle()
    eq(rd(j(C, "victim")), data, "victim replaced by a rename on A, read on C")
    eq(os.stat(j(C, "y")).st_nlink, 2, "nlink of y on C after the replace")
    # renameat2(RENAME_NOREPLACE) through ckfs: the engine may refuse the
    # flag (GlusterFS), ckfs then falls back without ever replacing
    libc = ctypes.CDLL(None, use_errno=True)

    def noreplace(a, b):
        return 0 if libc.renameat2(-100, a.encode(), -100, b.encode(), 1) == 0 else ctypes.get_errno()
    wr(j(A, "nr1"), b"one")
    wr(j(A, "nr2"), b"two")
    os.mkdir(j(A, "nd1"))
    os.mkdir(j(A, "nd2"))
    eq(ename(noreplace(j(A, "nr1"), j(A, "nr2"))), "EEXIST", "renameat2 NOREPLACE of a file onto a file")
    eq(ename(noreplace(j(A, "nd1"), j(A, "nd2"))), "EEXIST", "renameat2 NOREPLACE of a directory onto one")
    eq(noreplace(j(A, "nr1"), j(A, "nr3")), 0, "renameat2 NOREPLACE of a file to a free name")
    eq(noreplace(j(A, "nd1"), j(A, "nd3")), 0, "renameat2 NOREPLACE of a directory to a free name")
    settle()
    eq((rd(j(B, "nr2")), rd(j(B, "nr3")), os.path.isdir(j(B, "nd3"))), (b"two", b"one", True),
       "after NOREPLACE renames on A, read on B")
    expect_enoent(j(B, "nr1"))
    expect_enoent(j(B, "nd1"))
    os.unlink(j(B, "y"))
    settle()
    eq(os.stat(j(A, "victim")).st_nlink, 1, "nlink on A after B unlinked y")
    expect_enoent(j(A, "y"))
    eq(rd(j(A, "victim")), data, "victim on A")
    # a directory renamed on A, its files read through the new path on B
    os.makedirs(j(A, "d1", "sub"), exist_ok=True)
    wr(j(A, "d1", "sub", "f"), other)
    os.rename(j(A, "d1"), j(A, "d2"))
    settle()
    expect_enoent(j(B, "d1"))
    eq(rd(j(B, "d2", "sub", "f")), other, "file in a renamed directory on B")
    # directories: mkdir on A, files from B, rmdir refused then done on A
    os.mkdir(j(A, "dd"))
    settle()
    wr(j(B, "dd", "f"), b"b")
    settle()
    try:
        os.rmdir(j(A, "dd"))
        raise AssertionError("rmdir of a directory holding B's file succeeded on A")
    except OSError as e:
        if e.errno != errno.ENOTEMPTY:
            raise
    os.unlink(j(B, "dd", "f"))
    settle()
    os.rmdir(j(A, "dd"))
    settle()
    expect_enoent(j(C, "dd"))
    print("rename, rename over, renameat2 NOREPLACE, hard link (nlink, inode), unlink, dir rename, mkdir/rmdir: "
          "seen across hosts")


def xm_maildir(sub, n=None):
    """Delivery on A (tmp -> fsync -> rename to new), read on B, B moves
    new -> cur (an IMAP server on another host), C sees it; then A and B
    deliver into one Maildir at the same time and C reads everything."""
    ms = hosts()
    n = n or (8 if SMALL else 20)
    nconc = 12 if SMALL else 50
    A, B = ms[0], ms[1]
    C = ms[2] if len(ms) > 2 else ms[0]
    md = lambda m, *x: os.path.join(m, sub, "Maildir", *x)
    for s in ("tmp", "new", "cur"):
        os.makedirs(md(A, s), exist_ok=True)
    msgs = {}
    for i in range(n):
        name = "%d.M%dP%d.hostA" % (1700000000 + i, i, os.getpid())
        body = b"From: a@example.org\r\nSubject: %d\r\n\r\n" % i + rb(500 + 997 * i, 100 + i)
        wr(md(A, "tmp", name), body, fsync=True)
        os.rename(md(A, "tmp", name), md(A, "new", name))
        msgs[name] = body
    settle()
    eq(sorted(os.listdir(md(B, "new"))), sorted(msgs), "new/ on B")
    eq(os.listdir(md(B, "tmp")), [], "tmp/ on B")
    for name, body in msgs.items():
        eq(rd(md(B, "new", name)), body, "message %s on B" % name)
        os.rename(md(B, "new", name), md(B, "cur", name + ":2,S"))
    settle()
    eq(os.listdir(md(C, "new")), [], "new/ on C after B moved everything to cur/")
    eq(sorted(os.listdir(md(C, "cur"))), sorted(k + ":2,S" for k in msgs), "cur/ on C")
    for name, body in msgs.items():
        eq(rd(md(C, "cur", name + ":2,S")), body, "cur message on C")
    # concurrent delivery from two hosts into one Maildir
    errs = []
    got = {}

    def deliver(m, tag):
        try:
            for i in range(nconc):
                name = "%d.M%dP%d.host%s" % (1700001000 + i, i, os.getpid(), tag)
                body = b"Subject: %s %d\r\n\r\n" % (tag.encode(), i) + rb(100 + 311 * i, hash(tag) % 1000 + i)
                wr(md(m, "tmp", name), body, fsync=True)
                os.rename(md(m, "tmp", name), md(m, "new", name))
                got[name] = body
        except Exception as e:
            errs.append("%s: %r" % (tag, e))
    th = [threading.Thread(target=deliver, args=(A, "A")), threading.Thread(target=deliver, args=(B, "B"))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    if errs:
        raise AssertionError("; ".join(errs))
    settle()
    for r, m in enumerate(ms):
        eq(sorted(os.listdir(md(m, "new"))), sorted(got), "new/ on host %s after concurrent delivery" % hname(r))
        for name, body in got.items():
            eq(rd(md(m, "new", name)), body, "concurrently delivered %s on %s" % (name, hname(r)))
    print("%d messages delivered on A, read and moved on B, seen on C; 2 x %d concurrent deliveries seen on all"
          % (n, nconc))


def xm_concurrent(sub, n=None):
    """Two hosts write one file at once (the byte-range lock of
    docs/SHARED-STORAGE.md): O_APPEND records into one file (each append
    re-reads the size under the lock), and 100-byte records into
    alternating slots of another, so every block is read-modify-written by
    both hosts. Nothing may be lost or torn."""
    ms = hosts()
    n = n or (60 if SMALL else 200)
    A = ms[0]
    d = lambda m, *x: os.path.join(m, sub, "conc", *x)
    os.makedirs(d(A), exist_ok=True)
    wr(d(A, "log"), b"")
    wr(d(A, "slots"), bytes(2 * n * 100))
    settle()
    errs = []

    def work(i, m):
        try:
            fa = os.open(d(m, "log"), os.O_WRONLY | os.O_APPEND)
            fs = os.open(d(m, "slots"), os.O_WRONLY)
            for k in range(n):
                os.write(fa, b"%s %05d\n" % (hname(i).encode(), k))
                os.pwrite(fs, bytes([65 + i]) * 99 + b"\n", (2 * k + i) * 100)
            os.close(fa)
            os.close(fs)
        except Exception as e:
            errs.append("host %s: %r" % (hname(i), e))
    th = [threading.Thread(target=work, args=(i, ms[i])) for i in range(2)]
    t0 = time.time()
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.time() - t0
    if errs:
        raise AssertionError("; ".join(errs))
    settle()
    want_slots = b"".join(bytes([65 + (s % 2)]) * 99 + b"\n" for s in range(2 * n))
    for r, m in enumerate(ms):
        log = rd(d(m, "log"))
        recs = log.split(b"\n")
        eq(recs[-1], b"", "log on %s ends with a whole record" % hname(r))
        for i in range(2):
            mine = b"\n".join(x for x in recs[:-1] if x.startswith(hname(i).encode() + b" "))
            eq(mine, b"\n".join(b"%s %05d" % (hname(i).encode(), k) for k in range(n)),
               "host %s's appends, in order, read on %s" % (hname(i), hname(r)))
        eq(len(log), 2 * n * 8, "log size on %s" % hname(r))
        eq(rd(d(m, "slots")), want_slots, "slots written by both hosts, read on %s" % hname(r))
    line = "2 hosts at once, %d O_APPEND records + %d partial-block writes each: none lost (%.1f s)" % (n, n, dt)
    print(line)
    note(line)


def xm_dir_reuse(sub, rounds=None):
    """A directory B has used is removed on A and new directories are made on
    A (the backing filesystem may give them the old inode number): B must
    see the new directories and their files."""
    ms = hosts()
    rounds = rounds or (4 if SMALL else 10)
    A, B = ms[0], ms[1]
    j = lambda m, *x: os.path.join(m, sub, "reuse", *x)
    os.makedirs(j(A), exist_ok=True)
    settle()
    bad, reused = [], 0
    for r in range(rounds):
        os.mkdir(j(A, "old%d" % r))
        settle()
        wr(j(B, "old%d" % r, "f"), b"b")
        ino = os.stat(j(A, "old%d" % r)).st_ino
        os.unlink(j(A, "old%d" % r, "f"))
        os.rmdir(j(A, "old%d" % r))
        os.mkdir(j(A, "new%d" % r))
        os.mkdir(j(A, "new%d" % r, "sub"))
        wr(j(A, "new%d" % r, "sub", "m"), b"m%d" % r)
        same = ino in (os.stat(j(A, "new%d" % r)).st_ino, os.stat(j(A, "new%d" % r, "sub")).st_ino)
        reused += same
        settle()
        try:
            eq(rd(j(B, "new%d" % r, "sub", "m")), b"m%d" % r, "new%d/sub/m on B" % r)
        except (OSError, AssertionError) as e:
            bad.append("round %d (backing inode number reused: %s): %s" % (r, same, e))
    print("%d rounds, backing inode number reused in %d, failures on B: %d" % (rounds, reused, len(bad)))
    if bad:
        raise AssertionError("\n".join(bad[:5]))


# ---- revocation ------------------------------------------------------------
def revoke_latency(rel, action, limit_ms, label):
    """Every mount polls reading rel (5 ms steps) from t0; action() revokes.
    Prints and returns per-mount latency in ms; asserts each <= limit_ms and
    that fds opened before t0 fail too."""
    ms = hosts()
    for m in ms:
        rd(os.path.join(m, rel))
    held = [os.open(os.path.join(m, rel), os.O_RDONLY) for m in ms]
    res = {}
    go = threading.Event()
    t0 = [0.0]

    def poll(i, m):
        p = os.path.join(m, rel)
        go.wait()
        while True:
            try:
                with open(p, "rb") as f:
                    f.read()
            except OSError as e:
                res[i] = ((time.time() - t0[0]) * 1000, e.errno)
                return
            if time.time() - t0[0] > limit_ms / 1000 + 10:
                res[i] = (None, None)
                return
            time.sleep(0.005)
    th = [threading.Thread(target=poll, args=(i, m)) for i, m in enumerate(ms)]
    for t in th:
        t.start()
    t0[0] = time.time()
    go.set()
    action()
    for t in th:
        t.join()
    bad = []
    parts = []
    for i in range(len(ms)):
        lat, e = res[i]
        parts.append("%s %s" % (hname(i), "never" if lat is None else "%.0f ms" % lat))
        if lat is None:
            bad.append("host %s still reads %d s after t0" % (hname(i), limit_ms // 1000 + 10))
        else:
            if e not in (errno.EKEYREVOKED, errno.EACCES):
                bad.append("host %s failed with %s, not EKEYREVOKED/EACCES" % (hname(i), ename(e)))
            if lat > limit_ms:
                bad.append("host %s took %.0f ms > %d ms" % (hname(i), lat, limit_ms))
    for i, fd in enumerate(held):
        try:
            os.pread(fd, 4096, 0)
            bad.append("host %s: an fd opened before the revoke still reads" % hname(i))
        except OSError as e:
            if e.errno not in (errno.EKEYREVOKED, errno.EACCES, errno.EIO):
                bad.append("host %s: held fd failed with %s" % (hname(i), ename(e.errno)))
        os.close(fd)
    line = "%s: %s (limit %d ms)" % (label, ", ".join(parts), limit_ms)
    print(line)
    note(line)
    if bad:
        raise AssertionError("; ".join(bad))
    return [res[i][0] for i in range(len(ms))]


# ---- live create + assign ---------------------------------------------------
def live_assign(dep, rel, limit_s=1.0):
    ms, vs = hosts(), vols()
    n = len(ms)
    run([CKDEP, "@VOL@", "create", dep], 1 % n)
    run([CKASSIGN, "@VOL@", rel, dep], 2 % n)
    t0 = time.time()
    tid = tree_id(dep, rel)
    res, errs, written = {}, [], []

    def probe(i, m):
        k = 0
        try:
            while True:
                d = os.path.join(m, rel)
                os.makedirs(d, exist_ok=True)
                p = os.path.join(d, "probe-%s-%03d" % (hname(i), k))
                wr(p, b"probe %s %d\n" % (hname(i).encode(), k))
                written.append(os.path.basename(p))
                if file_tree(p, vs[i]) == tid:
                    res[i] = (time.time() - t0, k)
                    return
                k += 1
                if time.time() - t0 > 5:
                    raise AssertionError("host %s: after 5 s new files are still not under the new tree" % hname(i))
                time.sleep(0.02)
        except Exception as e:
            errs.append("host %s: %s" % (hname(i), e))
    th = [threading.Thread(target=probe, args=(i, m)) for i, m in enumerate(ms)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    with open(os.path.join(T, "live.json"), "w") as f:
        json.dump(written, f)
    if errs:
        raise AssertionError("; ".join(errs))
    parts = ["%s %.0f ms (%d files before)" % (hname(i), res[i][0] * 1000, res[i][1]) for i in range(n)]
    line = "DEP created and assigned live, new files under its tree: " + ", ".join(parts)
    print(line)
    note(line)
    slow = [hname(i) for i in range(n) if res[i][0] > limit_s]
    if slow:
        raise AssertionError("hosts %s took longer than %.1f s" % (slow, limit_s))


def all_probes_readable(rel):
    """Every probe file written (whichever key it was written under) is
    listed and readable on every host."""
    ms = hosts()
    with open(os.path.join(T, "live.json")) as f:
        names = set(json.load(f))
    for m in ms:
        names |= set(os.listdir(os.path.join(m, rel)))
    for r, m in enumerate(ms):
        have = set(os.listdir(os.path.join(m, rel)))
        if have != names:
            raise AssertionError("host %s lists %d of %d probe files; missing %s"
                                 % (hname(r), len(have), len(names), sorted(names - have)[:5]))
        for nm in names:
            b = rd(os.path.join(m, rel, nm))
            if not b.startswith(b"probe "):
                raise AssertionError("host %s: %s reads %r" % (hname(r), nm, b[:20]))
    print("%d probe files listed and readable on each of %d hosts" % (len(names), len(ms)))


# ---- load loops (roll, apply) ---------------------------------------------------
class Loops:
    """One thread per host: reads and checks the shared files (refs: relpath ->
    bytes), writes/reads/appends its own files under own_dir, and appends to
    the files it owns in `mine` (relpath -> bytearray, shared with others'
    expectations only after stop())."""

    def __init__(self, base, refs, own_dir, mine=None):
        self.base, self.refs, self.own_dir = base, refs, own_dir
        self.mine = mine or {}
        self.stop_ev = threading.Event()
        self.errors, self.rounds, self.reads = {}, {}, {}
        self.th = []

    t_ref = None

    def _err(self, i, msg):
        self.errors.setdefault(i, []).append("%+.3f s %s" % (time.time() - (self.t_ref or 0), msg))

    def _loop(self, i, m):
        names = sorted(self.refs)
        own = os.path.join(m, self.base, self.own_dir, "io-%s" % hname(i))
        mine = self.mine.get(i, {})
        rnd = 0
        try:
            os.makedirs(own, exist_ok=True)
        except OSError as e:
            self._err(i, "mkdir %s: %s" % (own, e))
        while not self.stop_ev.is_set():
            for k, rel in enumerate(names):
                if k % 7 != rnd % 7 and len(names) > 40:
                    continue
                p = os.path.join(m, self.base, rel)
                try:
                    got = rd(p)
                    self.reads[i] = self.reads.get(i, 0) + 1
                    if got != self.refs[rel]:
                        self._err(i, "%s: content differs (%d bytes, want %d)" % (rel, len(got), len(self.refs[rel])))
                except OSError as e:
                    self._err(i, "read %s: %s" % (rel, e))
            for k in range(4):
                p = os.path.join(own, "f%d" % k)
                data = rb(3000 + 4093 * k + rnd % 50, seed=rnd * 10 + k)
                try:
                    wr(p, data)
                    if k == 0:
                        wr(p, b"tail", mode="ab")
                        data += b"tail"
                    got = rd(p)
                    if got != data:
                        self._err(i, "own file %s differs" % p)
                    os.rename(p, p + ".r")
                    os.rename(p + ".r", p)
                except OSError as e:
                    self._err(i, "own file %s: %s" % (p, e))
            for rel, buf in mine.items():
                p = os.path.join(m, self.base, rel)
                add = b"host %s round %d\n" % (hname(i).encode(), rnd)
                try:
                    wr(p, add, mode="ab")
                    buf += add
                    got = rd(p)
                    if got != bytes(buf):
                        self._err(i, "%s after append: %d bytes, want %d" % (rel, len(got), len(buf)))
                except OSError as e:
                    self._err(i, "append %s: %s" % (rel, e))
            rnd += 1
            self.rounds[i] = rnd
            time.sleep(0.01)

    def start(self):
        for i, m in enumerate(hosts()):
            t = threading.Thread(target=self._loop, args=(i, m))
            t.start()
            self.th.append(t)
        self.wait_rounds(1)

    def wait_rounds(self, more, timeout=120):
        """Wait until every host has done `more` more full rounds (slow
        engines: a round can take seconds)."""
        base = {i: self.rounds.get(i, 0) for i in range(len(hosts()))}
        t = time.time()
        while time.time() - t < timeout:
            if all(self.rounds.get(i, 0) >= base[i] + more for i in base):
                return
            if any(not th.is_alive() for th in self.th):
                return
            time.sleep(0.05)

    def stop(self, what):
        self.stop_ev.set()
        for t in self.th:
            t.join()
        parts = ["%s %d rounds/%d reads/%d errors" % (hname(i), self.rounds.get(i, 0), self.reads.get(i, 0),
                                                    len(self.errors.get(i, []))) for i in range(len(hosts()))]
        line = "%s: %s" % (what, ", ".join(parts))
        print(line)
        note(line)
        allerr = [(hname(i), e) for i in range(len(hosts())) for e in self.errors.get(i, [])]
        if allerr:
            log = os.path.join(T, "loops-%d.log" % int(time.time() * 1000))
            with open(log, "w") as f:
                for h, e in allerr:
                    f.write("host %s: %s\n" % (h, e))
            ts = sorted(float(e.split(" s ", 1)[0]) for h, e in allerr)
            kinds = {}
            for h, e in allerr:
                k = e.split("] ")[0].split("[")[-1] if "[Errno" in e else e.split(": ", 1)[-1][:40]
                kinds[k] = kinds.get(k, 0) + 1
            print("errors from %+.3f s to %+.3f s (relative to the reference time); kinds: %s; all in %s"
                  % (ts[0], ts[-1], kinds, log))
        bad = []
        for i in range(len(hosts())):
            if self.rounds.get(i, 0) < 2:
                bad.append("host %s ran only %d rounds" % (hname(i), self.rounds.get(i, 0)))
            for e in self.errors.get(i, [])[:5]:
                bad.append("host %s: %s" % (hname(i), e))
        if bad:
            raise AssertionError("\n".join(bad))


def make_refs(base, nfiles, seed, maxsize=65536):
    """Files written on host A under base: relpath -> content."""
    A = hosts()[0]
    refs = {}
    r = random.Random(seed)
    for k in range(nfiles):
        rel = "d%02d/f%03d" % (k % 12, k)
        size = r.choice([0, 1, 4096, 4097, 8192, r.randint(1, maxsize), r.randint(1, maxsize)])
        refs[rel] = rb(size, seed * 1000 + k)
        p = os.path.join(A, base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        wr(p, refs[rel])
    return refs


def roll_under_load(base, dep, nrolls=3):
    refs = make_refs(base, 30, 5)
    settle()
    lp = Loops(base, refs, "own")
    lp.start()
    n = len(hosts())
    done = []
    try:
        for k in range(nrolls):
            t = time.time()
            run([CKDEP, "@VOL@", "roll", dep, "--dep-key"], k % n)
            done.append("roll %d on host %s: %.0f ms" % (k + 1, hname(k % n), (time.time() - t) * 1000))
            time.sleep(0.7)
            lp.wait_rounds(1)
        time.sleep(1.0)
        lp.wait_rounds(2)
    finally:
        lp.stop("read/write loops during %d x ck-dep roll --dep-key" % nrolls)
    print("; ".join(done))
    for r, m in enumerate(hosts()):
        for rel, data in refs.items():
            eq(rd(os.path.join(m, base, rel)), data, "%s on %s after the rolls" % (rel, hname(r)))


def lock_held(path):
    """Someone holds a lock on path (F_GETLK: takes none itself; through a
    networked engine it asks the lock server)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fl = struct.pack("hhxxxxqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        return struct.unpack("hhxxxxqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, fl))[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


def apply_under_load(base, dep, nfiles):
    ms, vs = hosts(), vols()
    n = len(ms)
    t = time.time()
    refs = make_refs(base, nfiles, 9, maxsize=160000)
    os.symlink("d00/f000", os.path.join(ms[0], base, "link"))
    os.link(os.path.join(ms[0], base, "d01/f001"), os.path.join(ms[0], base, "hardlink"))
    os.setxattr(os.path.join(ms[0], base, "d02/f002"), "user.tag", b"applied-xattr")
    total = sum(len(v) for v in refs.values())
    print("populated %s on A: %d files, %d bytes in %.1f s" % (base, nfiles, total, time.time() - t))
    p = run([CKASSIGN, "@VOL@", base, dep], 0)
    print(p.stdout.strip())
    settle()
    # Each host appends to files of its own during the apply.
    mine = {}
    for i in range(n):
        mine[i] = {}
        for k in range(3):
            rel = "own%s-%d" % (hname(i), k)
            wr(os.path.join(ms[0], base, rel), b"start\n")
            mine[i][rel] = bytearray(b"start\n")
    settle()
    lp = Loops(base, refs, "live", mine)
    lp.start()
    second = None
    loop_exc = None
    try:
        t0 = time.time()
        lp.t_ref = t0
        first = subprocess.Popen([CKASSIGN, "--apply", vs[(n - 1)], base, dep], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        # The second starts as soon as host B sees the first's apply lock
        # (a fast apply is over in well under a second).
        lockp = os.path.join(vs[1 % n], ".ckfs", "apply.lock")
        while first.poll() is None and time.time() - t0 < 60 and not lock_held(lockp):
            time.sleep(0.002)
        second = subprocess.run([CKASSIGN, "--apply", vs[1 % n], base, dep], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        t_second = time.time()
        first_running = first.poll() is None
        out, err = first.communicate(timeout=600)
        dt = time.time() - t0
        print("apply started at +0.000 s, second apply returned at %+.3f s, first finished at %+.3f s"
              % (t_second - t0, dt))
        time.sleep(1.0)
        lp.wait_rounds(2)
    finally:
        try:
            lp.stop("read/write loops during ck-assign --apply (%d files)" % nfiles)
        except AssertionError as e:
            loop_exc = e
    line = "ck-assign --apply of %d files / %d bytes took %.1f s under load on %d hosts" % (nfiles, total, dt, n)
    print(line)
    note(line)
    if first.returncode != 0:
        raise AssertionError("the apply failed: exit %d: %s" % (first.returncode, err.strip()))
    print("apply: " + out.strip())
    # the second apply: refused with exit 1 and one line on stderr
    print("second apply (host %s, started once the first held the lock; first still running: %s): exit %d: %s"
          % (hname(1 % n), first_running, second.returncode, second.stderr.strip()))
    return refs, mine, first_running, second, loop_exc


def same_tree_everywhere(base, refs, mine, dep):
    """Content identical on all hosts and as expected; every regular file of
    the tree in the new tree's key (backing header names its tree)."""
    ms, vs = hosts(), vols()
    tid = tree_id(dep, base)
    want = dict(refs)
    for i in mine:
        for rel, buf in mine[i].items():
            want[rel] = bytes(buf)
    views = []
    for r, m in enumerate(ms):
        view = {}
        root = os.path.join(m, base)
        for dp, dns, fns in os.walk(root):
            for fn in fns:
                p = os.path.join(dp, fn)
                rel = os.path.relpath(p, root)
                st = os.lstat(p)
                if os.path.islink(p):
                    view[rel] = ("link", os.readlink(p))
                else:
                    view[rel] = ("file", sha(rd(p)), st.st_size, st.st_nlink, st.st_mtime_ns, st.st_mode)
        views.append(view)
        for rel, data in want.items():
            eq(rd(os.path.join(root, rel)), data, "%s on host %s" % (rel, hname(r)))
        eq(os.getxattr(os.path.join(root, "d02/f002"), "user.tag"), b"applied-xattr", "xattr on %s" % hname(r))
        eq(os.readlink(os.path.join(root, "link")), "d00/f000", "symlink on %s" % hname(r))
        eq(rd(os.path.join(root, "hardlink")), refs["d01/f001"], "hard link on %s" % hname(r))
    for r in range(1, len(ms)):
        if views[r] != views[0]:
            diff = [k for k in set(views[0]) | set(views[r]) if views[0].get(k) != views[r].get(k)]
            raise AssertionError("host %s differs from A in %d entries, e.g. %s: %r vs %r" % (
                hname(r), len(diff), diff[0], views[0].get(diff[0]), views[r].get(diff[0])))
    # backing headers: every regular file under the tree
    wrong = []
    bmap = backing_files(vs[0], os.stat(os.path.join(ms[0], base)).st_ino)
    for rel, v in views[0].items():
        if v[0] != "file":
            continue
        ino = os.lstat(os.path.join(ms[0], base, rel)).st_ino
        if ino not in bmap:
            raise AssertionError("no backing file for %s (ino %d)" % (rel, ino))
        got = file_tree(None, None, bmap[ino])
        if got != tid:
            wrong.append("%s: tree %s" % (rel, got))
    if wrong:
        raise AssertionError("%d files not under the new tree %s: %s" % (len(wrong), tid, wrong[:5]))
    print("%d entries identical on %d hosts (content, size, nlink, mtime, mode); every file under tree %s"
          % (len(views[0]), len(ms), tid))
PYEOF
chmod 0644 "$T/so.py"
sp() { MOUNTS="$MOUNTS" VOLS="$VOLS" XWAIT="${XWAIT:-0}" "$PY" -c "import sys; sys.path.insert(0, '$T'); from so import *; $1"; }
sp_check() { check "$1" sp "$2"; }
set_hosts() {   # set_hosts N: the first N hosts are the ones in MOUNTS/VOLS
	MOUNTS="${HMNT[*]:0:$1}"; VOLS="${HVOL[*]:0:$1}"
	export MOUNTS VOLS
}
mount_hosts() {   # mount_hosts N OPTS: one daemon per host
	local i ok=0
	for i in $(seq 0 $(($1 - 1))); do
		mount_check "host ${HN[$i]}: ckfs -o $2 (own daemon, PID follows)" "${HVOL[$i]}" "${HMNT[$i]}" -o "$2" || ok=1
		[ -n "${MOUNT_PID[${HMNT[$i]}]:-}" ] && echo "#   host ${HN[$i]}: PID ${MOUNT_PID[${HMNT[$i]}]} on ${HMNT[$i]} over ${HVOL[$i]}"
	done
	return $ok
}
umount_hosts() {
	local i
	for i in $(seq 0 $(($1 - 1))); do
		umount_check "host ${HN[$i]}: unmounts, daemon exits 0" "${HMNT[$i]}"
	done
}
daemons_alive() {
	local i bad=0
	for i in $(seq 0 $(($1 - 1))); do
		daemon_alive "${HMNT[$i]}" || { echo "host ${HN[$i]}: daemon gone"; show_log "${HMNT[$i]}" 10; bad=1; }
	done
	return $bad
}
ckdep() { "$CKDEP" "$V0" "$@"; }

# ---------------------------------------------------------------- setup
check "ck-mkfs (through host A's view)" mkfs_ckfs "$V0"
setup_deps() {
	local d
	for d in depA depR1 depR2a depR2b depR2c depC depRoll depApp; do
		ckdep create "$d" >/dev/null || return 1
	done
	ckdep create depShared >/dev/null &&
	"$CKASSIGN" "$V0" mail/alice depA >/dev/null &&
	"$CKASSIGN" "$V0" mail/r1 depR1 >/dev/null &&
	"$CKASSIGN" "$V0" mail/r2a depR2a >/dev/null &&
	"$CKASSIGN" "$V0" mail/r2b depR2b >/dev/null &&
	"$CKASSIGN" "$V0" mail/r2c depR2c >/dev/null &&
	"$CKASSIGN" "$V0" mail/cust depC >/dev/null &&
	"$CKASSIGN" "$V0" mail/roll depRoll >/dev/null
}
check "DEPs and trees for every scenario (ck-dep create, ck-assign)" setup_deps

# ---------------------------------------------------------------- phase 1
if [ "$PHASE1" = 1 ]; then
	echo "# phase 1: two daemons, default cache_timeout (1 s): readers wait 1.2 s after close"
	set_hosts 2
	if mount_hosts 2 "key_ttl=$TTL"; then
		export XWAIT=1.2
		sp_check "2 hosts: files written on each host read on the other after close" 'xm_write("mail/alice/p1")'
		sp_check "2 hosts: appends from alternating hosts seen after reopen" 'xm_append("mail/alice/p1")'
		sp_check "2 hosts: overwrite, truncate, extend seen on the other host" 'xm_overwrite("docs/p1")'
		sp_check "2 hosts: kept page cache and directory listings dropped after the other host's change" 'xm_cache("docs/p1")'
		sp_check "2 hosts: renames, hard links, unlink, directories made on one host seen on the other" 'xm_rename_link("mail/alice/p1")'
		sp_check "2 hosts: Maildir delivery on A (tmp -> new) read on B; concurrent delivery from both" 'xm_maildir("mail/alice/p1")'
		sp_check "2 hosts: directories removed and made on A (backing inode numbers reused) are usable on B" 'xm_dir_reuse("mail/alice/p1")'
		XWAIT=0
		sh_check "2 hosts: a file for the revoke test, readable on both" '
		mkdir -p "${HMNT[0]}/mail/r1" && echo revoke-me-1 >"${HMNT[0]}/mail/r1/f" && sleep 1.2 && [ "$(cat "${HMNT[1]}/mail/r1/f")" = revoke-me-1 ]'
		sp_check "2 hosts: explicit revoke (ck-dep on host B) stops reads on every mount within $REVOKE_MS ms" '
revoke_latency("mail/r1/f", lambda: run([CKDEP, "@VOL@", "revoke", "depR1"], 1), '"$REVOKE_MS"', "explicit revoke, 2 hosts (cache_timeout=1)")'
		sh_check "2 hosts: the other trees still read on both after the revoke" '
		for m in "${HMNT[0]}" "${HMNT[1]}"; do cat "$m/mail/alice/p1/appended" >/dev/null || exit 1; done'
		check "2 hosts: both daemons alive" daemons_alive 2
	fi
	umount_hosts 2
fi

# ---------------------------------------------------------------- phase 2
echo "# phase 2: $NHOSTS daemons, cache_timeout=0 (immediate visibility), key_ttl=$TTL"
set_hosts "$NHOSTS"
XWAIT=0
mount_hosts "$NHOSTS" "cache_timeout=0,key_ttl=$TTL" || true
check "$NHOSTS daemons mounted, each its own process" daemons_alive "$NHOSTS"

sp_check "$NHOSTS hosts: every host writes in turn, all others read at once after close" 'xm_write("mail/alice/p2")'
sp_check "$NHOSTS hosts: appends from every host in turn, seen at the next reopen" 'xm_append("mail/alice/p2", 15)'
sp_check "$NHOSTS hosts: overwrite, truncate down, extend, each on another host, seen on all" 'xm_overwrite("docs/p2")'
sp_check "$NHOSTS hosts: kept page cache and directory listings dropped after another host's change" 'xm_cache("docs/p2")'
sp_check "$NHOSTS hosts: renames, hard links, unlink, directories across hosts" 'xm_rename_link("mail/alice/p2")'
sp_check "$NHOSTS hosts: Maildir: deliver on A, read + move to cur on B, seen on C; concurrent delivery A+B" 'xm_maildir("mail/alice/p2")'
sp_check "$NHOSTS hosts: directories removed and made on A (backing inode numbers reused) are usable on B" 'xm_dir_reuse("mail/alice/p2")'
sp_check "2 hosts write one file at once (O_APPEND records; partial writes into the same blocks): nothing lost or torn" 'xm_concurrent("docs/p2")'

# explicit revoke, three times, each from another host
for k in a b c; do
	case $k in a) h=0 ;; b) h=$((1 % NHOSTS)) ;; c) h=$((2 % NHOSTS)) ;; esac
	{ mkdir -p "${HMNT[0]}/mail/r2$k" && echo "revoke-me-$k" >"${HMNT[0]}/mail/r2$k/f"; } 2>&1 | diag
	sp_check "$NHOSTS hosts: explicit revoke of depR2$k (ck-dep on host ${HN[$h]}): every mount fails reads within $REVOKE_MS ms" "
revoke_latency('mail/r2$k/f', lambda: run([CKDEP, '@VOL@', 'revoke', 'depR2$k'], $h), $REVOKE_MS, 'explicit revoke depR2$k from host ${HN[$h]}, $NHOSTS hosts')"
done
sh_check "after the revokes: depR2a/b/c are revoked in the record; other trees read on every host" '
for d in depR2a depR2b depR2c; do s=$(ckdep show "$d" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)[\"state\"])"); echo "$d: $s"; [ "$s" = revoked ] || exit 1; done
for m in $MOUNTS; do cmp "$m/mail/alice/p2/appended" "${HMNT[0]}/mail/alice/p2/appended" || exit 1; done'

# customer-side revoke: the customer deletes depC's key files
cust_keys() {
	ckdep show depC --json | "$PY" -c '
import json, sys
for k in json.load(sys.stdin)["keys"]:
    if k["role"] == "customer" and k["uri"].startswith("file:"):
        print(k["uri"][5:])'
}
{ mkdir -p "${HMNT[0]}/mail/cust" && echo customer-data >"${HMNT[0]}/mail/cust/f"; } 2>&1 | diag
CUST_KEYS=$(cust_keys | tr '\n' ' ')
export CUST_KEYS
sh_check "depC has file: customer keys ($CUST_KEYS)" '[ -n "$CUST_KEYS" ] && for k in $CUST_KEYS; do [ -f "$k" ] || exit 1; done'
# The first probe after the deletion comes within key_ttl; the revocation
# then reaches the other mounts through the record (2 x key_ttl: margin).
sp_check "$NHOSTS hosts: customer-side revoke (depC key files deleted), key_ttl=$TTL: every mount within $((2 * TTL)) s" "
revoke_latency('mail/cust/f', lambda: [os.unlink(k) for k in os.environ['CUST_KEYS'].split()], $((2 * TTL * 1000)), 'customer-side revoke (key files deleted), key_ttl=$TTL, $NHOSTS hosts')"
sh_check "depC revoked in its record; the availability key is still there and was not used to serve" '
s=$(ckdep show depC --json | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d[\"state\"]); [print(k[\"uri\"]) for k in d[\"keys\"] if k[\"role\"]==\"availability\"]")
echo "$s"; [ "$(echo "$s" | head -n 1)" = revoked ] && f=$(echo "$s" | sed -n "2s/^file://p") && [ -f "$f" ] &&
for m in $MOUNTS; do ! cat "$m/mail/cust/f" 2>/dev/null || exit 1; done'
sh_check "the customer-side revocation is in the audit log, written by one or more daemons (the others follow the record)" '
id=$(ckdep show depC --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)[\"id\"])")
ckdep audit --json | "$PY" -c "
import json,sys
# the dep field is the name, or (newer logs) a label holding the DEP id
r=[x for x in json.load(sys.stdin) if x[\"event\"]==\"revoked\" and x[\"dep\"] and
   (x[\"dep\"]==\"depC\" or sys.argv[2] in x[\"dep\"])]
for x in r: print(x[\"event\"], x[\"dep\"], \"pid\", x[\"pid\"], x[\"actor\"], x[\"result\"])
assert 1 <= len(r) <= int(sys.argv[1]), \"%d revoked records for depC\" % len(r)" "$NHOSTS" "$id"'

# a DEP created and assigned while all are mounted
sp_check "$NHOSTS hosts: DEP created (host B) and assigned (host C) while mounted: usable on every mount within key_ttl ($TTL s)" \
	"live_assign('depLive', 'mail/live', $TTL)"
sp_check "$NHOSTS hosts: every probe file of the live-assigned tree is listed and readable on every host" 'all_probes_readable("mail/live")'

# roll the DEP key while everyone serves
mkdir -p "${HMNT[0]}/mail/roll" 2>&1 | diag
sp_check "$NHOSTS hosts: ck-dep roll --dep-key x3 (from each host) under read/write loops: no error on any mount" \
	'roll_under_load("mail/roll", "depRoll", 3)'

# apply a populated tree while all read and write it
N_APPLY=${CK_SCALEOUT_APPLY_FILES:-400}
cat >"$T/apply.py" <<'PYEOF'
import pickle
refs, mine, first_running, second, loop_exc = apply_under_load("sites/web", "depApp", int(os.environ["N_APPLY"]))
pickle.dump((refs, mine, first_running, second.returncode, second.stderr), open(os.path.join(T, "apply.pickle"), "wb"))
if loop_exc:
    raise loop_exc
PYEOF
export N_APPLY
sp_check "$NHOSTS hosts: ck-assign --apply ($N_APPLY files, host ${HN[$((NHOSTS - 1))]}) while every mount reads, writes and appends: no errors" \
	'exec(open(os.path.join(T, "apply.py")).read())'
sp_check "a second ck-assign --apply (host B) while the first runs: refused cleanly (exit 1, one line, says why)" '
import pickle
refs, mine, first_running, rc, err = pickle.load(open(os.path.join(T, "apply.pickle"), "rb"))
lines = [l for l in err.splitlines() if l.strip()]
print("first still running when the second returned: %s; second: exit %d: %r" % (first_running, rc, err))
assert first_running, "the first apply had already finished: the refusal was not exercised"
assert rc == 1 and len(lines) == 1 and lines[0].startswith("ck-assign: "), "not a clean one-line refusal"
assert "apply" in lines[0], "does not say why"'
sp_check "after the apply: content identical on all $NHOSTS hosts and as written; every file under the new tree" '
import pickle
refs, mine, fr, rc, err = pickle.load(open(os.path.join(T, "apply.pickle"), "rb"))
same_tree_everywhere("sites/web", refs, mine, "depApp")'
sh_check "after the apply: the tree is active under depApp; a re-run of --apply is a clean no-op" '
s=$(ckdep show depApp --json | "$PY" -c "import json,sys; print(\" \".join(t[\"state\"] for t in json.load(sys.stdin)[\"trees\"] if t[\"path\"]==\"sites/web\"))")
echo "tree states: $s"; [ "$s" = active ] && "$CKASSIGN" --apply "$V0" sites/web depApp'

# the record-update race (CK_SCALEOUT_RACE rounds per process, 2 digits)
RACE_N=${CK_SCALEOUT_RACE:-20}
RACE_MID=$(printf %02d $(( (RACE_N + 1) / 2 ))) RACE_LAST=$(printf %02d "$RACE_N")
export RACE_N RACE_MID RACE_LAST
race() {   # race TAG VOLVIEW: RACE_N x (create own DEP, assign own tree, assign a tree to depShared)
	local tag=$1 v=$2 i
	for i in $(seq -f %02g 1 "$RACE_N"); do
		"$CKDEP" "$v" create "race$tag-$i" >/dev/null || { echo "$tag: create race$tag-$i failed"; return 1; }
		"$CKASSIGN" "$v" "race/$tag-$i" "race$tag-$i" >/dev/null || { echo "$tag: assign race/$tag-$i failed"; return 1; }
		"$CKASSIGN" "$v" "shared/$tag-$i" depShared >/dev/null || { echo "$tag: assign shared/$tag-$i failed"; return 1; }
	done
}
run_race() {
	local t0 r1 r2
	t0=$(date +%s.%N)
	race a "${HVOL[0]}" >"$T/race.a" 2>&1 & local p1=$!
	race b "${HVOL[$((1 % NHOSTS))]}" >"$T/race.b" 2>&1 & local p2=$!
	wait $p1; r1=$?; wait $p2; r2=$?
	cat "$T/race.a" "$T/race.b"
	echo "two processes x ($RACE_N creates + $((2 * RACE_N)) assigns) at once: $(elapsed "$t0") s"
	tnote "record race: 2 x ($RACE_N ck-dep create + $((2 * RACE_N)) ck-assign) at once in $(elapsed "$t0") s"
	[ $r1 -eq 0 ] && [ $r2 -eq 0 ]
}
check "record race: two processes (hosts A, B) each create $RACE_N DEPs and assign $((2 * RACE_N)) trees at once" run_race
sh_check "record race: all $((2 * RACE_N)) DEPs listed (distinct IDs), each with its tree; depShared holds all $((2 * RACE_N)) shared trees" '
ckdep list --json | "$PY" -c "
import json, os, sys
deps = json.load(sys.stdin)[\"deps\"]
race = {d[\"name\"]: d for d in deps if d[\"name\"].startswith(\"race\")}
want = {\"race%s-%02d\" % (t, i) for t in \"ab\" for i in range(1, int(os.environ[\"RACE_N\"]) + 1)}
missing = sorted(want - set(race))
print(\"%d race DEPs listed, %d distinct ids\" % (len(race), len({d[\"id\"] for d in race.values()})))
assert not missing, \"lost: %s\" % missing[:10]
assert len({d[\"id\"] for d in deps}) == len(deps), \"duplicate ids\"
bad = [n for n, d in race.items() if [t[\"path\"] for t in d[\"trees\"]] != [\"race/%s\" % n[4:]]]
assert not bad, \"trees lost or wrong: %s\" % bad[:5]
sh = [d for d in deps if d[\"name\"] == \"depShared\"][0]
paths = {t[\"path\"] for t in sh[\"trees\"]}
wantp = {\"shared/%s-%02d\" % (t, i) for t in \"ab\" for i in range(1, int(os.environ[\"RACE_N\"]) + 1)}
print(\"depShared: %d trees\" % len(paths))
assert paths == wantp, \"depShared lost %s\" % sorted(wantp - paths)[:10]"'
sp_check "after the race: new trees (race/a-$RACE_MID, race/b-$RACE_LAST, shared/b-01) usable on every host, files readable across hosts" '
import time
time.sleep(0.5)
ms, vs = hosts(), vols()
mid, last = os.environ["RACE_MID"], os.environ["RACE_LAST"]
for rel, dep in (("race/a-" + mid, "racea-" + mid), ("race/b-" + last, "raceb-" + last), ("shared/b-01", "depShared")):
    tid = tree_id(dep, rel)
    for i, m in enumerate(ms):
        os.makedirs(os.path.join(m, rel), exist_ok=True)
        p = os.path.join(m, rel, "from-" + hname(i))
        wr(p, b"race " + rel.encode())
        eq(file_tree(p, vs[i]), tid, "tree of %s written on %s" % (rel, hname(i)))
    for i, m in enumerate(ms):
        for j in range(len(ms)):
            eq(rd(os.path.join(m, rel, "from-" + hname(j))), b"race " + rel.encode(), "on " + hname(i))
print("ok")'
check "$NHOSTS daemons alive after all scenarios" daemons_alive "$NHOSTS"
sh_check "no daemon logged an error (log lines at err level)" '
bad=0; for m in $MOUNTS; do l=$(grep -E "^ckfs: error" "${MOUNT_LOG[$m]}" | head -n 5); [ -z "$l" ] || { echo "$m:"; echo "$l"; bad=1; }; done; exit $bad'
umount_hosts "$NHOSTS"

# ---------------------------------------------------------------- audit, remount
check "ck-dep audit --verify: one chain with daemons and tools of every host writing" "$CKDEP" "$V0" audit --verify
sh_check "the chain has records from every daemon (mounted + unmounted) and from tools in many processes" '
ckdep audit --json | "$PY" -c "
import json, sys
r = json.load(sys.stdin)
seqs = [x[\"seq\"] for x in r]
assert seqs == list(range(1, len(r) + 1)), \"sequence numbers not contiguous\"
m = [x[\"pid\"] for x in r if x[\"event\"] == \"mounted\"]
u = [x[\"pid\"] for x in r if x[\"event\"] == \"unmounted\"]
pids = {x[\"pid\"] for x in r}
print(\"%d records, %d writer processes, %d mounted / %d unmounted records\" % (len(r), len(pids), len(m), len(u)))
want = int(sys.argv[1])
assert len(set(m)) == want and sorted(m) == sorted(u), \"mount/unmount records do not pair up\"
" '"$(( NHOSTS + (PHASE1 == 1 ? 2 : 0) ))"
mount_check "remount host A" "${HVOL[0]}" "${HMNT[0]}"
set_hosts 1
sp_check "after remount: every probe file written while the live tree was assigned is listed and readable" 'all_probes_readable("mail/live")'
sh_check "after remount: roll, apply and race trees read; revoked trees stay refused" '
M=${HMNT[0]}
cat "$M/mail/alice/p2/appended" "$M/mail/roll/d00/f000" "$M/sites/web/d03/f003" "$M/race/a-$RACE_MID/from-A" >/dev/null &&
for f in mail/r2a/f mail/r2b/f mail/r2c/f mail/cust/f; do ! cat "$M/$f" 2>/dev/null || { echo "$f readable"; exit 1; }; done'
umount_check "unmount host A" "${HMNT[0]}"

summary
