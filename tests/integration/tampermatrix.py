"""The tamper matrix of 51-tamper-matrix.sh: one table of attacks on the
backing store of a volume, each applied while unmounted and then checked
on a fresh mount: detected (EIO, or a clear refusal: the entry is not
listed, ENOENT, ENODATA, EKEYREVOKED/ENOKEY for a tree whose records were
edited), a new line in the daemon's log, and never wrong plaintext.
Documented limitations (docs/FORMAT.md "Rollback is not detected") are
asserted as documented.

  tampermatrix.py populate STATE      on the mount ($MNT): make the victims
  tampermatrix.py tamper STATE        offline: apply every attack
  tampermatrix.py check STATE LOG PID on the mount again: one line per attack
  tampermatrix.py volhdr STATE        offline: volume header field attacks
  tampermatrix.py audit STATE         offline: audit log attacks

Output: "PASS name" / "FAIL name" and "#" lines (turned into TAP by the
script). Offsets come from docs/FORMAT.md.
"""
import ctypes
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckt import flip, rbytes, read_file, write_file, ename, swap_ranges  # noqa: E402
import ckvol  # noqa: E402

MNT, VOL, T = os.environ["MNT"], os.environ["VOL"], os.environ["T"]
KEYS = os.environ["CKFS_KEY_DIR"]
B = os.environ["CKFS_BUILD"]
HDR, BS = 512, 4096
CB = BS + 28
SIZE = 3 * BS + 1000            # 4 blocks, the last one partly used
_xx = ctypes.CDLL("libxxhash.so.0")
_xx.XXH64.restype = ctypes.c_uint64
_xx.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def blk(i):
    return HDR + i * CB


def mp(*p):
    return os.path.join(MNT, *p)


def content(name):
    return rbytes(SIZE, sum(name.encode()) * 7 + len(name))


def fix_xxh(path, n):
    """Recompute the XXH64 checksum at offset n over bytes 0..n-1 (what an
    attacker without keys can do)."""
    b = bytearray(read_file(path))
    b[n:n + 8] = _xx.XXH64(bytes(b[:n]), n, 0).to_bytes(8, "little")
    with open(path, "r+b") as f:
        f.write(b)


# ---------------------------------------------------------------- the table
# Each attack: (name, kind, args). kind says how it is set up, tampered
# and checked; the file attacks name a victim file (in the service tree
# "s" or the DEP tree "mail/a").
HDR_FIELDS = [("magic", 0), ("version", 4), ("kind", 5), ("flags (unknown bit)", 7),
              ("file ID", 8), ("n_bind", 24), ("reserved after n_bind", 26),
              ("binding 0", 32), ("unused binding slot", 32 + 16 * 10),
              ("size box nonce", 352), ("size box ciphertext", 364), ("size box tag", 380),
              ("reserved after size box", 400), ("tree ID", 464), ("header MAC", 480), ("header MAC last byte", 511)]
BLOCK_FIELDS = [("block 0 nonce", blk(0) + 3), ("block 1 ciphertext", blk(1) + 12 + 100),
                ("block 1 tag", blk(1) + 12 + BS + 5), ("final block ciphertext", blk(3) + 12 + 2000),
                ("final block tag", blk(3) + CB - 1)]


def file_attacks():
    a = []
    for tree, d in (("service", "s"), ("DEP", "mail/a")):
        for f, off in HDR_FIELDS + BLOCK_FIELDS:
            a.append(("%s tree: bit flip in %s" % (tree, f), "flip", {"dir": d, "off": off}))
        a += [
            ("%s tree: two blocks swapped within a file" % tree, "swapblk", {"dir": d}),
            ("%s tree: block 1 swapped between two files" % tree, "swapblk2", {"dir": d}),
            ("%s tree: two files swapped within a directory" % tree, "swapfile", {"dir": d, "dir2": d}),
            ("%s tree: two files swapped between directories" % tree, "swapfile", {"dir": d, "dir2": d + "/sub"}),
            ("%s tree: a file copied over another (same directory)" % tree, "copyfile", {"dir": d}),
            ("%s tree: truncated at a block boundary (blocks 0-1 left)" % tree, "trunc", {"dir": d, "len": blk(2)}),
            ("%s tree: truncated off a block boundary (inside block 1)" % tree, "trunc", {"dir": d, "len": blk(1) + 100}),
            ("%s tree: truncated inside the final block" % tree, "trunc", {"dir": d, "len": blk(3) + 3000}),
            ("%s tree: truncated to the header" % tree, "trunc", {"dir": d, "len": HDR}),
            ("%s tree: truncated inside the header" % tree, "trunc", {"dir": d, "len": 300}),
            ("%s tree: a garbage block appended" % tree, "append", {"dir": d, "n": CB}),
            ("%s tree: 100 garbage bytes appended" % tree, "append", {"dir": d, "n": 100}),
            ("%s tree: one of its own blocks appended again" % tree, "appendown", {"dir": d}),
            ("%s tree: header rolled back, same final block (documented: not detected, reads the old size)" % tree,
             "rollback_same", {"dir": d}),
            ("%s tree: header rolled back to fewer blocks" % tree, "rollback_fewer", {"dir": d}),
            ("%s tree: header rolled back to more blocks" % tree, "rollback_more", {"dir": d}),
            ("%s tree: .ckfs.dir bit flip in magic" % tree, "dirid", {"dir": d, "off": 0, "fix": False}),
            ("%s tree: .ckfs.dir bit flip in version" % tree, "dirid", {"dir": d, "off": 4, "fix": False}),
            ("%s tree: .ckfs.dir bit flip in reserved (checksum fixed)" % tree, "dirid", {"dir": d, "off": 6, "fix": True}),
            ("%s tree: .ckfs.dir bit flip in directory ID (checksum fixed)" % tree, "dirid", {"dir": d, "off": 12, "fix": True}),
            ("%s tree: .ckfs.dir bit flip in checksum" % tree, "dirid", {"dir": d, "off": 30, "fix": False}),
            ("%s tree: .ckfs.dir replaced by another directory's" % tree, "dirid_copy", {"dir": d}),
            ("%s tree: encrypted name changed" % tree, "name_flip", {"dir": d}),
            ("%s tree: encrypted name moved to another directory" % tree, "name_move", {"dir": d}),
            ("%s tree: long-name sidecar bit flip" % tree, "ln_flip", {"dir": d}),
            ("%s tree: long-name sidecars swapped" % tree, "ln_swap", {"dir": d}),
            ("%s tree: long-name sidecar deleted" % tree, "ln_del", {"dir": d}),
            ("%s tree: symlink target bit flip" % tree, "sym_flip", {"dir": d}),
            ("%s tree: xattr value bit flip" % tree, "xa_flip", {"dir": d}),
            ("%s tree: xattr value moved to another xattr name" % tree, "xa_move", {"dir": d}),
        ]
    a += [
        ("between trees: DEP-tree file and service-tree file swapped", "swaptree", {}),
        ("between trees: a DEP-tree block moved into a service-tree file", "blktree", {}),
        ("between trees: DEP-tree symlink target moved into a service-tree symlink", "symtree", {}),
        ("DEP record: state revoked -> active (ciphertext bits flipped)", "rec_state", {"dep": "depR", "dir": "mail/r"}),
        ("DEP record: a wrap dropped (cut out, n_wraps adjusted)", "rec_drop", {"dep": "depW", "dir": "mail/w"}),
        ("DEP record: a customer key URI changed", "rec_uri", {"dep": "depU", "dir": "mail/u"}),
        ("tree record: path changed", "rec_tree", {"dep": "depT", "dir": "mail/t"}),
        ("DEP record rolled back to its copy from before the revocation (documented: served again "
         "while the customer keys answer; the audit log keeps the revocation)", "rec_rollback",
         {"dep": "depB", "dir": "mail/b"}),
    ]
    for i, (f, off) in enumerate(REC_FIELDS):
        a.append(("DEP record: bit flip in envelope %s" % f, "rec_env",
                  {"dep": "depE%d" % i, "dir": "mail/e%d" % i, "off": off}))
    return a


# DEP record envelope (FORMAT.md "Key records"): one DEP each (51 makes
# depE0.. and their trees mail/e0..).
REC_FIELDS = [("magic", 0), ("kind", 8), ("version", 9), ("reserved", 10), ("record ID", 20),
              ("nonce", 30), ("payload (created time)", 40 + 5), ("tag", -1)]


def victim(name):
    """A plaintext file name for an attack (kept short: names are keys)."""
    import hashlib
    return "v" + hashlib.sha256(name.encode()).hexdigest()[:10]


# ---------------------------------------------------------------- populate
def populate(state):
    S = {"cases": {}}
    for d in ("s", "s/sub", "s/other", "mail/a/sub", "mail/a/other"):
        os.makedirs(mp(d), exist_ok=True)
    for name, kind, a in file_attacks():
        d = a.get("dir")
        v = victim(name)
        c = {"kind": kind, "a": a, "v": v}
        if kind in ("dirid", "dirid_copy"):
            dd = os.path.join(d, v)
            os.makedirs(mp(dd))
            write_file(mp(dd, "f"), content(name))
            c["path"] = os.path.join(dd, "f")
        elif kind in ("name_flip", "name_move"):
            write_file(mp(d, v), content(name))
            c["path"] = os.path.join(d, v)
            c["path2"] = os.path.join(d, "other")
        elif kind in ("ln_flip", "ln_swap", "ln_del"):
            dd = os.path.join(d, v)
            os.makedirs(mp(dd))
            for i in (1, 2):
                n = ("L%d" % i) * 100
                write_file(mp(dd, n), content(name + n))
            c["path"] = dd
        elif kind == "sym_flip":
            os.symlink("target-of-" + v, mp(d, v))
            c["path"] = os.path.join(d, v)
        elif kind in ("xa_flip", "xa_move"):
            write_file(mp(d, v), content(name))
            os.setxattr(mp(d, v), "user.one", b"value one " + v.encode())
            os.setxattr(mp(d, v), "user.two", b"value two")
            c["path"] = os.path.join(d, v)
        elif kind == "swapfile":
            write_file(mp(d, v + "a"), content(name + "a"))
            write_file(mp(a["dir2"], v + "b"), content(name + "b"))
            c["path"], c["path2"] = os.path.join(d, v + "a"), os.path.join(a["dir2"], v + "b")
        elif kind in ("swapblk2", "copyfile"):
            write_file(mp(d, v + "a"), content(name + "a"))
            write_file(mp(d, v + "b"), content(name + "b"))
            c["path"], c["path2"] = os.path.join(d, v + "a"), os.path.join(d, v + "b")
        elif kind in ("swaptree", "blktree"):
            write_file(mp("s", v), content(name + "s"))
            write_file(mp("mail/a", v), content(name + "a"))
            c["path"], c["path2"] = os.path.join("s", v), os.path.join("mail/a", v)
        elif kind == "symtree":
            os.symlink("service-target", mp("s", v))
            os.symlink("dep-target", mp("mail/a", v))
            c["path"], c["path2"] = os.path.join("s", v), os.path.join("mail/a", v)
        elif kind.startswith("rec_"):
            os.makedirs(mp(d), exist_ok=True)
            write_file(mp(d, v), content(name))
            c["path"] = os.path.join(d, v)
            if kind == "rec_rollback":
                dep = ckvol.Volume(VOL, KEYS).deps()[a["dep"]]
                c["rec"] = os.path.relpath(rec_path("deps", dep["id"]), VOL)
                c["dep_id"] = dep["id"].hex()
                c["old_rec"] = os.path.join(T, "oldrec-" + v)
                shutil.copyfile(os.path.join(VOL, c["rec"]), c["old_rec"])
        elif kind.startswith("rollback"):
            p = mp(d, v)
            n1, n2 = {"rollback_same": (SIZE - 500, SIZE),
                      "rollback_fewer": (BS + 100, SIZE),
                      "rollback_more": (SIZE, BS + 100)}[kind]
            write_file(p, content(name)[:n1])
            c["old_hdr"] = os.path.join(T, "oldhdr-" + v)
            c["sizes"] = (n1, n2)
            c["path"] = os.path.join(d, v)
            c["_p"] = p
        else:
            write_file(mp(d, v), content(name))
            c["path"] = os.path.join(d, v)
        S["cases"][name] = c
    # The backing files, by inode (ckfs reports the backing inode).
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(VOL):
        if "/.ckfs" in dirpath + "/" and dirpath.startswith(os.path.join(VOL, ".ckfs")):
            continue
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            inodes[os.lstat(p).st_ino] = p
    for name, c in S["cases"].items():
        for k in ("path", "path2"):
            if k in c:
                c["b" + k] = inodes[os.lstat(mp(c[k])).st_ino]
        if c["kind"].startswith("rollback"):
            p = c.pop("_p")
            shutil.copyfile(c["bpath"], c["old_hdr"])
            n1, n2 = c["sizes"]
            if n2 > n1:
                with open(p, "r+b") as f:
                    f.seek(0)
                    f.write(rbytes(n2, 99))
            else:
                with open(p, "r+b") as f:
                    f.write(rbytes(n2, 99))
                    f.truncate(n2)
            assert read_file(p) == rbytes(n2, 99)
    json.dump(S, open(state, "w"))
    print("populated %d attacks" % len(S["cases"]))


# ---------------------------------------------------------------- tamper
def b64flip(s, i):
    al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return s[:i] + al[(al.index(s[i]) + 1) % 64] + s[i + 1:]


def long_entries(bdir):
    return sorted(n for n in os.listdir(bdir) if n.startswith(".N"))


def backing_xattrs(p):
    return [x for x in os.listxattr(p, follow_symlinks=False) if x.startswith("user.ck.")]


def rec_path(kind, rid):
    return os.path.join(VOL, ".ckfs", kind, rid.hex())


def tamper(state):
    S = json.load(open(state))
    v = ckvol.Volume(VOL, KEYS)
    deps = v.deps()
    for name, c in S["cases"].items():
        k, a, bp = c["kind"], c["a"], c.get("bpath")
        if k == "flip":
            flip(bp, a["off"], 0x02 if a["off"] == 7 else 0x01)
        elif k == "swapblk":
            swap_ranges(bp, blk(0), bp, blk(1), CB)
        elif k == "swapblk2":
            swap_ranges(bp, blk(1), c["bpath2"], blk(1), CB)
        elif k in ("swapfile", "swaptree"):
            tmp = bp + ".x"
            os.rename(bp, tmp)
            os.rename(c["bpath2"], bp)
            os.rename(tmp, c["bpath2"])
        elif k == "copyfile":
            shutil.copyfile(c["bpath2"], bp)
        elif k == "trunc":
            os.truncate(bp, a["len"])
        elif k == "append":
            with open(bp, "ab") as f:
                f.write(rbytes(a["n"], 5))
        elif k == "appendown":
            b = read_file(bp)[blk(1):blk(2)]
            with open(bp, "ab") as f:
                f.write(b)
        elif k.startswith("rollback"):
            old = read_file(c["old_hdr"])
            with open(bp, "r+b") as f:
                f.write(old[:HDR])
        elif k == "dirid":
            p = os.path.join(os.path.dirname(bp), ".ckfs.dir")
            flip(p, a["off"])
            if a["fix"]:
                fix_xxh(p, 24)
        elif k == "dirid_copy":
            p = os.path.join(os.path.dirname(bp), ".ckfs.dir")
            other = os.path.join(os.path.dirname(os.path.dirname(bp)), ".ckfs.dir")
            shutil.copyfile(other, p)
        elif k == "name_flip":
            d, n = os.path.split(bp)
            os.rename(bp, os.path.join(d, b64flip(n, 10)))
        elif k == "name_move":
            os.rename(bp, os.path.join(c["bpath2"], os.path.basename(bp)))
        elif k in ("ln_flip", "ln_swap", "ln_del"):
            ns = long_entries(bp)
            assert len(ns) == 2, "expected 2 sidecars in %s: %s" % (bp, os.listdir(bp))
            s1, s2 = os.path.join(bp, ns[0]), os.path.join(bp, ns[1])
            if k == "ln_flip":
                t = read_file(s1).decode()
                with open(s1, "w") as f:
                    f.write(b64flip(t, 40))
            elif k == "ln_swap":
                t1, t2 = read_file(s1), read_file(s2)
                write_file(s1, t2)
                write_file(s2, t1)
            else:
                os.unlink(s1)
        elif k == "sym_flip":
            t = os.readlink(bp)
            os.unlink(bp)
            os.symlink(b64flip(t, 20), bp)
        elif k == "symtree":
            t = os.readlink(c["bpath2"])
            os.unlink(bp)
            os.symlink(t, bp)
        elif k == "blktree":
            b = read_file(c["bpath2"])[blk(1):blk(2)]
            with open(bp, "r+b") as f:
                f.seek(blk(1))
                f.write(b)
        elif k in ("xa_flip", "xa_move"):
            xs = backing_xattrs(bp)
            assert len(xs) == 2, xs
            if k == "xa_flip":
                for x in xs:
                    val = bytearray(os.getxattr(bp, x))
                    val[14] ^= 1
                    os.setxattr(bp, x, bytes(val))
            else:
                v0, v1 = os.getxattr(bp, xs[0]), os.getxattr(bp, xs[1])
                os.setxattr(bp, xs[0], v1)
                os.setxattr(bp, xs[1], v0)
        elif k == "rec_rollback":
            shutil.copyfile(c["old_rec"], os.path.join(VOL, c["rec"]))
        elif k == "rec_env":
            p = rec_path("deps", deps[a["dep"]]["id"])
            c["rec"] = os.path.relpath(p, VOL)
            flip(p, a["off"])
        elif k in ("rec_state", "rec_drop", "rec_uri"):
            dep = deps[a["dep"]]
            p = rec_path("deps", dep["id"])
            c["rec"] = os.path.relpath(p, VOL)
            raw = bytearray(read_file(p))
            _, _, pt = v.open_record(p)
            if k == "rec_state":
                assert pt[0] == 2, "depR is not revoked (state %d)" % pt[0]
                raw[40] ^= 0x03                     # 2 (revoked) -> 1 (active)
            elif k == "rec_uri":
                u = pt.find(dep["wraps"][0]["uri"].encode())
                raw[40 + u + 10] ^= 0x01
            else:
                # payload: ... name str, n_wraps u32, wraps; drop the last wrap
                w = dep["wraps"][-1]
                wl = 1 + 1 + 8 + 2 + len(w["uri"]) + 2 + len(w["wrapped"])
                nw = 4 + 8 * 4 + 2 + len(dep["name"])
                raw[40 + nw] ^= len(dep["wraps"]) ^ (len(dep["wraps"]) - 1)
                n = len(raw) - 16
                raw = raw[:n - wl] + raw[n:]
            with open(p, "wb") as f:
                f.write(raw)
        elif k == "rec_tree":
            t = [t for t in v.trees() if t["path"] == a["dir"]][0]
            p = rec_path("trees", t["id"])
            c["rec"] = os.path.relpath(p, VOL)
            raw = bytearray(read_file(p))
            _, _, pt = v.open_record(p)
            i = pt.find(a["dir"].encode())
            raw[40 + i + len(a["dir"]) - 1] ^= 0x01      # mail/t -> mail/u
            with open(p, "wb") as f:
                f.write(raw)
        else:
            raise AssertionError("unknown kind " + k)
    json.dump(S, open(state, "w"))
    print("tampered %d" % len(S["cases"]))


# ---------------------------------------------------------------- check
DETECT = (errno.EIO,)
KEYERR = (errno.EIO, errno.ENOKEY, errno.EKEYREVOKED, errno.EACCES)


class Fail(Exception):
    pass


def read_all(p):
    try:
        return read_file(p), None
    except OSError as e:
        return None, e.errno


def expect_detect(p, forbidden=(), errs=DETECT):
    data, e = read_all(p)
    if e is None:
        for i, f in enumerate(forbidden):
            if data == f or (len(data) >= 16 and f.startswith(data)):
                raise Fail("read returned another file's or an old plaintext (%d bytes, forbidden #%d)" % (len(data), i))
        raise Fail("read succeeded (%d bytes), expected %s" % (len(data), "/".join(ename(x) for x in errs)))
    if e not in errs:
        raise Fail("got %s, expected %s" % (ename(e), "/".join(ename(x) for x in errs)))
    return ename(e)


def check_case(name, c):
    k, a = c["kind"], c["a"]
    p = mp(c["path"]) if "path" in c else None
    own = content(name)
    if k in ("flip", "swapblk", "trunc"):
        return expect_detect(p, [own])
    if k in ("swapblk2", "copyfile", "swapfile", "swaptree", "blktree"):
        r1 = expect_detect(p, [content(name + "a"), content(name + "b"), content(name + "s")])
        if k in ("copyfile", "blktree"):
            d = read_file(mp(c["path2"]))
            if d != content(name + ("b" if k == "copyfile" else "a")):
                raise Fail("the source file itself no longer reads")
            return r1 + "; the source still reads"
        r2 = expect_detect(mp(c["path2"]), [content(name + "a"), content(name + "b"), content(name + "s")])
        return r1 + " / " + r2
    if k in ("append", "appendown"):
        data, e = read_all(p)
        if e is None and data != own:
            raise Fail("read returned %d bytes that are not the file's content" % len(data))
        if e is not None and e != errno.EIO:
            raise Fail("got " + ename(e))
        return "reads exactly its own content" if e is None else "EIO"
    if k.startswith("rollback"):
        n1, n2 = c["sizes"]
        cur = rbytes(n2, 99)
        data, e = read_all(p)
        if k == "rollback_same":
            # FORMAT.md: the old size of the same final block is not
            # detected; the file reads shorter, never other bytes.
            if e is not None:
                raise Fail("documented as undetected, but got " + ename(e))
            if data != cur[:n1]:
                raise Fail("read %d bytes that are not the current content cut to the old size %d" % (len(data), n1))
            return "documented limitation, not detected: reads %d of %d bytes (the current blocks, old size)" % (n1, n2)
        if e is None:
            raise Fail("read succeeded (%d bytes)" % len(data))
        if e != errno.EIO:
            raise Fail("got " + ename(e))
        return "EIO"
    if k in ("dirid", "dirid_copy"):
        dd = os.path.dirname(p)
        try:
            names = os.listdir(mp(dd))
        except OSError as e:
            names = ["(%s)" % ename(e.errno)]
        if "f" in names:
            raise Fail("listing shows the name through a tampered directory ID")
        try:
            os.stat(p)
        except OSError as e:
            if e.errno not in (errno.EIO, errno.ENOENT):
                raise Fail("lookup: " + ename(e.errno))
            r = ename(e.errno)
        else:
            return expect_detect(p, [own])
        return "lookup %s, listing %s" % (r, names)
    if k == "name_flip":
        d = os.path.dirname(p)
        names = os.listdir(mp(d))
        if os.path.basename(p) in names:
            raise Fail("the changed name is still listed")
        try:
            os.stat(p)
            raise Fail("lookup of the original name succeeded")
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise Fail("lookup: " + ename(e.errno))
        return "not listed, lookup ENOENT"
    if k == "name_move":
        o = mp(c["path2"])
        names = os.listdir(o)
        if os.path.basename(p) in names:
            raise Fail("the moved name is listed in " + c["path2"])
        for n in names:
            data, e = read_all(os.path.join(o, n))
            if data == own:
                raise Fail("the moved file's data appears as %s/%s" % (c["path2"], n))
        if os.path.exists(p):
            raise Fail("still found under its old name")
        return "not listed in its new directory, gone from the old one"
    if k in ("ln_flip", "ln_swap", "ln_del"):
        want = {("L%d" % i) * 100 for i in (1, 2)}
        names = set(os.listdir(p))
        odd = names - want
        if odd:
            raise Fail("listing shows names that were never made: %r" % [n[:20] for n in odd])
        # Lookup by the full name opens the .L entry directly; it must
        # read its own content or fail, never another's.
        for n in want:
            data, e = read_all(os.path.join(p, n))
            if e is None and data != content(name + n):
                raise Fail("%s read another file's content" % n[:10])
        missing = want - names
        if not missing:
            raise Fail("every long name still listed")
        return "%d of 2 long names not listed" % len(missing)
    if k in ("sym_flip", "symtree"):
        try:
            t = os.readlink(p)
            raise Fail("readlink succeeded: %r" % t)
        except OSError as e:
            if e.errno != errno.EIO:
                raise Fail("readlink: " + ename(e.errno))
        if k == "symtree" and os.readlink(mp(c["path2"])) != "dep-target":
            raise Fail("the source symlink no longer reads")
        return "readlink EIO"
    if k in ("xa_flip", "xa_move"):
        res = []
        for x in ("user.one", "user.two"):
            try:
                val = os.getxattr(p, x)
                raise Fail("getxattr %s returned %r" % (x, val))
            except OSError as e:
                if e.errno != errno.EIO:
                    raise Fail("getxattr %s: %s" % (x, ename(e.errno)))
                res.append(ename(e.errno))
        return "getxattr " + "/".join(res)
    if k == "rec_rollback":
        # KEYS.md "Durability": a restored older copy of the record makes
        # new mounts serve the DEP again if its customer keys still answer;
        # the audit log (and the customer's keys) make a revocation final.
        data, e = read_all(p)
        if e is None and data != own:
            raise Fail("read returned %d bytes that are not the file's content" % len(data))
        if e is not None and e not in KEYERR:
            raise Fail("got " + ename(e))
        audit = read_file(os.path.join(VOL, ".ckfs", "audit.log")).decode(errors="replace")
        if not re.search(r"event=revoked dep=(%s|dep:%s) " % (a["dep"], c["dep_id"]), audit):
            raise Fail("the audit log has no revocation of " + a["dep"])
        r = subprocess.run([os.path.join(B, "ck-dep"), VOL, "audit", "--verify"], capture_output=True)
        if r.returncode != 0:
            raise Fail("audit --verify fails: %s" % r.stderr.decode(errors="replace").strip())
        return ("documented limitation: served again (%s); the audit log still records the "
                "revocation and verifies" % ("reads its own content" if e is None else ename(e)))
    if k.startswith("rec_"):
        logged = [l for l in read_file(LOG).decode(errors="replace").splitlines()
                  if c["rec"] in l]
        if not logged:
            raise Fail("the daemon never logged the corrupt record " + c["rec"])
    if k == "rec_tree":
        # The record's path cannot be read, so the path is the service
        # tree's now: the tree's names and files fail under its keys
        # (hidden, logged; ENOENT or EIO), never readable. New entries
        # made there are the service tree's (THREAT-MODEL.md).
        r = expect_detect(p, [own], (errno.ENOENT, errno.EIO))
        names = os.listdir(mp(a["dir"]))
        if os.path.basename(p) in names:
            raise Fail("the tree's file is still listed")
        return r + ", not listed; record logged at mount: " + logged[0][:80]
    if k.startswith("rec_"):
        r = expect_detect(p, [own], KEYERR)
        # Nothing new may land in the tree under another key either.
        try:
            write_file(mp(c["path"] + ".new"), b"new data")
            raise Fail("a new file could be created in the tree")
        except OSError as e:
            if e.errno not in KEYERR:
                raise Fail("create in the tree: " + ename(e.errno))
            ce = ename(e.errno)
        return r + ", create " + ce + "; record logged at mount: " + logged[0][:80]
    raise Fail("no check for kind " + k)


LOG = None


def check(state, log, pid):
    global LOG
    LOG = log
    S = json.load(open(state))
    bad = 0
    for name, c in S["cases"].items():
        n0 = len(read_file(log).splitlines())
        why = None
        try:
            res = check_case(name, c)
        except Fail as e:
            why = str(e)
        except (OSError, AssertionError) as e:
            why = "unexpected %s: %s" % (type(e).__name__, e)
        time.sleep(0.02)
        lines = read_file(log).splitlines()[n0:]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            why = (why + "; " if why else "") + "the daemon died"
        if why is None and not lines and c["kind"] not in ("rollback_same", "rec_rollback") and not c["kind"].startswith("rec_"):
            why = "detected (%s) but no line in the daemon log" % res
        print("%s %s" % ("FAIL" if why else "PASS", name))
        if why:
            bad += 1
            print("# " + why)
        else:
            print("#   %s" % res)
        for l in lines[:2]:
            print("#   log: " + l.decode(errors="replace")[:200])
        sys.stdout.flush()
    print("# %d attacks checked, %d failed" % (len(S["cases"]), bad))


# ---------------------------------------------------------------- volume header
VOL_FIELDS = [("magic", 0), ("version", 8), ("flags", 12), ("block_size", 17), ("reserved", 20),
              ("created", 24), ("volume ID", 32), ("service tree ID", 48), ("KEK ID", 64),
              ("wrapped service key", 90), ("header MAC", 130), ("reserved tail", 200), ("checksum", 250)]


def try_mount(label):
    m = os.path.join(T, "mnt-vh")
    os.makedirs(m, exist_ok=True)
    try:
        p = subprocess.run([os.path.join(B, "ckfs"), "-f", VOL, m], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=20)
        rc, err = p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        rc, err = "timeout", ""
    if os.path.ismount(m):
        subprocess.run(["fusermount3", "-uz", m])
        return "it mounted"
    lines = [l for l in err.splitlines() if l.strip()]
    if rc != 2:
        return "exit status %s, want 2 (cannot open the volume): %s" % (rc, lines[:2])
    if len(lines) != 1 or not lines[0].startswith("ckfs: "):
        return "want one 'ckfs: ...' line, got %r" % lines[:3]
    return None, lines[0]


def volhdr(state):
    h = os.path.join(VOL, ".ckfs", "volume")
    orig = read_file(h)
    bad = 0
    for f, off in VOL_FIELDS:
        for fix in (False, True):
            if fix and off >= 248:
                continue
            name = "volume header: bit flip in %s%s" % (f, " (checksum recomputed)" if fix else "")
            flip(h, off)
            if fix:
                fix_xxh(h, 248)
            r = try_mount(name)
            write_file(h, orig, 0o600)
            if isinstance(r, tuple):
                print("PASS " + name)
                print("#   refused: " + r[1][:200])
            else:
                bad += 1
                print("FAIL " + name)
                print("# " + r)
    print("# volume header attacks, %d failed" % bad)


# ---------------------------------------------------------------- audit
def audit(state):
    d = os.path.join(VOL, ".ckfs")
    log, head = os.path.join(d, "audit.log"), os.path.join(d, "audit.head")
    L, H = read_file(log), read_file(head)
    lines = L.splitlines(keepends=True)
    assert len(lines) >= 4, "audit log has only %d records" % len(lines)

    def edit_event(ls):
        ls = list(ls)
        ls[1] = ls[1].replace(b"event=", b"event=x", 1)
        return ls

    attacks = [
        ("audit log: a record deleted", lambda: (b"".join(lines[:1] + lines[2:]), H)),
        ("audit log: a record edited (event)", lambda: (b"".join(edit_event(lines)), H)),
        ("audit log: a record's mac edited", lambda: (b"".join(lines[:2] + [lines[2][:-3] + (b"0" if lines[2][-3:-2] != b"0" else b"1") + lines[2][-2:]] + lines[3:]), H)),
        ("audit log: two records swapped", lambda: (b"".join([lines[1], lines[0]] + lines[2:]), H)),
        ("audit log: the last record deleted", lambda: (b"".join(lines[:-1]), H)),
        ("audit log: a record duplicated", lambda: (b"".join(lines[:2] + lines[1:]), H)),
        ("audit log: the head's count edited", lambda: (L, H.replace(b"count=", b"count=1", 1))),
        ("audit log: log and head both cut to an earlier consistent state by dropping the last record (head MAC)",
         lambda: (b"".join(lines[:-1]), H.replace(b"count=%d" % len(lines), b"count=%d" % (len(lines) - 1)))),
    ]
    bad = 0
    for name, f in attacks:
        nl, nh = f()
        write_file(log, nl, 0o600)
        write_file(head, nh, 0o600)
        p = subprocess.run([os.path.join(B, "ck-dep"), VOL, "audit", "--verify"], capture_output=True,
                           stdin=subprocess.DEVNULL)
        err = [l for l in p.stderr.decode(errors="replace").splitlines() if l.strip()]
        write_file(log, L, 0o600)
        write_file(head, H, 0o600)
        ok = p.returncode == 1 and len(err) == 1
        print("%s %s" % ("PASS" if ok else "FAIL", name))
        if not ok:
            bad += 1
            print("# ck-dep audit --verify: exit %d, stderr %r, stdout %r" % (
                p.returncode, err[:3], p.stdout.decode(errors="replace")[-200:]))
        else:
            print("#   " + err[0][:200])
    p = subprocess.run([os.path.join(B, "ck-dep"), VOL, "audit", "--verify"], capture_output=True)
    print("%s audit log restored: --verify passes again" % ("PASS" if p.returncode == 0 else "FAIL"))
    print("# audit attacks, %d failed" % bad)


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"populate": lambda: populate(sys.argv[2]), "tamper": lambda: tamper(sys.argv[2]),
     "check": lambda: check(sys.argv[2], sys.argv[3], sys.argv[4]),
     "volhdr": lambda: volhdr(sys.argv[2]), "audit": lambda: audit(sys.argv[2])}[cmd]()
