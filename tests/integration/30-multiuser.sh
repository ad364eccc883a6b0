#!/bin/bash
# Several users on one allow_other mount: permission checks, ownership of
# everything each uid creates, setgid and sticky directories, then a
# concurrent create/rename/delete stress by 4 uids x 3 processes (the
# mail-delivery pattern that breaks some encrypted FUSE filesystems with
# EPERM), after which every file's owner and mode are checked.
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is not installed"

mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
mount_ckfs "$VOL" "$MNT" -o allow_other || { notok "mount -o allow_other"; summary; exit 1; }

chmod 0755 "$MNT"
mkdir -m 1777 "$MNT/shared"
mkdir -m 0755 "$MNT/home"
for u in 2001 2002 2003 2004; do
	mkdir -m 0755 "$MNT/home/u$u" && chown "$u:$u" "$MNT/home/u$u"
done
mkdir "$MNT/team" && chown 0:3000 "$MNT/team" && chmod 2775 "$MNT/team"

check "a non-root user can use the mount (allow_other)" as_user 2001 ls "$MNT/home"

# ------------------------------------------------------------ ownership
for u in 2001 2002 2003 2004; do
	check "uid $u: its files, dirs, symlinks, FIFOs and links are owned by $u:$u" py_as $u '
h = mp("home", "u%d" % os.getuid())
me = (os.getuid(), os.getgid())
write_file(h + "/file", b"mine", 0o644)
os.mkdir(h + "/dir")
write_file(h + "/dir/inner", b"inner")
os.symlink("file", h + "/link")
os.mkfifo(h + "/fifo")
os.link(h + "/file", h + "/hard")
fd = os.open(h + "/excl", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600); os.close(fd)
write_file(mp("shared", "s%d" % os.getuid()), b"shared")
for p in ["file", "dir", "dir/inner", "link", "fifo", "hard", "excl"]:
    eq(owner(h + "/" + p), me, "owner of " + p)
eq(owner(mp("shared", "s%d" % os.getuid())), me, "owner in the shared dir")
'
done

check "umask is honoured for files and directories" py_as 2001 '
h = mp("home/u2001")
os.umask(0o027)
write_file(h + "/um", b"", 0o666); os.mkdir(h + "/umd", 0o777)
eq(mode_of(h + "/um"), 0o640, "file mode"); eq(mode_of(h + "/umd"), 0o750, "dir mode")
os.umask(0)
write_file(h + "/um0", b"", 0o666); os.mkdir(h + "/umd0", 0o777)
eq(mode_of(h + "/um0"), 0o666, "file mode, umask 0"); eq(mode_of(h + "/umd0"), 0o777, "dir mode, umask 0")
'

# ------------------------------------------------------------ permissions
py_as 2001 '
h = mp("home/u2001")
write_file(h + "/secret", b"secret", 0o600); os.chmod(h + "/secret", 0o600)
write_file(h + "/public", b"public", 0o644); os.chmod(h + "/public", 0o644)
write_file(h + "/open", b"open", 0o666); os.chmod(h + "/open", 0o666)
os.mkdir(h + "/private", 0o700); os.chmod(h + "/private", 0o700)
write_file(h + "/private/f", b"p")
' || notok "setup of uid 2001 files"

check "another user cannot read a 0600 file (EACCES)" py_as 2002 '
expect_errno(errno.EACCES, os.open, mp("home/u2001/secret"), os.O_RDONLY)
assert not os.access(mp("home/u2001/secret"), os.R_OK), "access(R_OK) says yes"
'
check "another user can read a 0644 file but not write or truncate it (EACCES)" py_as 2002 '
eq(read_file(mp("home/u2001/public")), b"public", "read")
expect_errno(errno.EACCES, os.open, mp("home/u2001/public"), os.O_WRONLY)
expect_errno(errno.EACCES, os.truncate, mp("home/u2001/public"), 0)
'
check "another user cannot create, unlink or rename in a 0755 dir (EACCES)" py_as 2002 '
expect_errno(errno.EACCES, os.open, mp("home/u2001/intruder"), os.O_CREAT | os.O_WRONLY, 0o644)
expect_errno(errno.EACCES, os.mkdir, mp("home/u2001/intruder.d"))
expect_errno(errno.EACCES, os.unlink, mp("home/u2001/public"))
expect_errno(errno.EACCES, os.rename, mp("home/u2001/public"), mp("home/u2001/stolen"))
expect_errno(errno.EACCES, os.rename, mp("home/u2001/public"), mp("shared/stolen"))
expect_errno(errno.EACCES, os.symlink, "x", mp("home/u2001/intruder.l"))
'
check "another user cannot list or traverse a 0700 dir (EACCES)" py_as 2002 '
expect_errno(errno.EACCES, os.listdir, mp("home/u2001/private"))
expect_errno(errno.EACCES, os.stat, mp("home/u2001/private/f"))
'
check "non-owners cannot chmod/chown; owners cannot give files away (EPERM)" py_as 2002 '
expect_errno(errno.EPERM, os.chmod, mp("home/u2001/open"), 0o777)
expect_errno(errno.EPERM, os.chown, mp("home/u2001/open"), 2002, 2002)
write_file(mp("home/u2002/mine"), b"")
expect_errno(errno.EPERM, os.chown, mp("home/u2002/mine"), 2001, -1)
expect_errno(errno.EPERM, os.chown, mp("home/u2002/mine"), -1, 3000)
'
check "an owner can chgrp to a supplementary group" py_as 2001:2001:3000 '
os.chown(mp("home/u2001/public"), -1, 3000)
eq(owner(mp("home/u2001/public")), (2001, 3000), "owner")
'
check "a non-owner with write access may touch (now) but not set explicit times (EPERM)" py_as 2002 '
f = mp("home/u2001/open")
os.utime(f)
expect_errno(errno.EPERM, os.utime, f, (1, 1))
fd = os.open(f, os.O_WRONLY | os.O_APPEND); os.write(fd, b"+b"); os.close(fd)
eq(owner(f), (2001, 2001), "owner after another user wrote")
'
check "root can read any file (default_permissions)" py 'eq(read_file(mp("home/u2001/secret")), b"secret", "read")'

setid_write() {
	py_as 2001 '
f = mp("home/u2001/suid"); write_file(f, b"#!/bin/sh\n"); os.chmod(f, 0o6777)
eq(mode_of(f), 0o6777, "mode set by the owner")' || return 1
	py_as 2002 '
f = mp("home/u2001/suid")
fd = os.open(f, os.O_WRONLY | os.O_APPEND); os.write(fd, b"true\n"); os.close(fd)
m = mode_of(f)
eq(m & 0o6000, 0, "setuid/setgid bits after a write by uid 2002 (mode %o)" % m)'
}
check "a write by another user clears setuid/setgid bits" setid_write

# ------------------------------------------------------------ sticky dir
py_as 2001 'write_file(mp("shared/a-file"), b"a", 0o666); os.chmod(mp("shared/a-file"), 0o666)' ||
	notok "setup: uid 2001 file in the sticky dir"
check "sticky dir: others cannot unlink, rename or replace a user's file (EPERM)" py_as 2002 '
expect_errno(errno.EPERM, os.unlink, mp("shared/a-file"))
expect_errno(errno.EPERM, os.rename, mp("shared/a-file"), mp("shared/b-took-it"))
write_file(mp("shared/b-file"), b"b")
expect_errno(errno.EPERM, os.rename, mp("shared/b-file"), mp("shared/a-file"))
eq(read_file(mp("shared/a-file")), b"a", "file untouched")
os.rename(mp("shared/b-file"), mp("shared/b-file2"))
os.unlink(mp("shared/b-file2"))
'
check "sticky dir: the owner can rename and remove its own file" py_as 2001 '
os.rename(mp("shared/a-file"), mp("shared/a-file2")); os.unlink(mp("shared/a-file2"))
'

# ------------------------------------------------------------ setgid dir
check "setgid dir: new files, symlinks and FIFOs get the dir group; subdirs also the setgid bit" \
	py_as 2001:2001:3000 '
d = mp("team")
write_file(d + "/f", b"team")
os.mkdir(d + "/sub")
os.symlink("f", d + "/l")
os.mkfifo(d + "/p")
for n in ("f", "sub", "l", "p"):
    eq(owner(d + "/" + n), (2001, 3000), "owner of " + n)
assert os.stat(d + "/sub").st_mode & stat.S_ISGID, "subdir lacks the setgid bit"
write_file(d + "/sub/g", b"x")
eq(owner(d + "/sub/g"), (2001, 3000), "owner in the inherited setgid subdir")
os.mkdir(d + "/sub/sub2")
assert os.stat(d + "/sub/sub2").st_mode & stat.S_ISGID, "setgid not inherited by a sub-subdir"
eq(owner(d + "/sub/sub2"), (2001, 3000), "owner of a sub-subdir")
'
check "setgid dir: a user outside the group cannot create in a 2775 dir (EACCES)" py_as 2002 '
expect_errno(errno.EACCES, os.open, mp("team/nope"), os.O_CREAT | os.O_WRONLY, 0o644)
'

# ------------------------------------------------------------ stress
cat >"$T/stress.py" <<'PYEOF'
# One worker of the multi-user stress: creates, renames, rewrites, chmods and
# deletes its own files in the shared sticky dir and in its private home
# (Maildir-like tmp/ -> new/ delivery), records the state it expects and
# every error it got.
import json, os, random, sys
sys.path.insert(0, os.environ["T"])
from ckt import *

uid, w, nops, seed, out = os.getuid(), int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(seed)
os.umask(0)
home = mp("home", "u%d" % uid)
areas = [mp("shared"), home + "/maildir/new"]
tmp = home + "/maildir/tmp"
files = {}     # path -> (mode, content)
dirs = {}      # path -> mode
errors = []
modes = [0o600, 0o640, 0o644, 0o660, 0o664, 0o400]
seq = 0

def newname(area):
    global seq
    seq += 1
    return os.path.join(area, "u%d-w%d-%d" % (uid, w, seq))

def attempt(what, fn, *a):
    try:
        fn(*a)
        return True
    except OSError as e:
        errors.append("%s %r: %s" % (what, a, errno.errorcode.get(e.errno, e.errno)))
        return False

for i in range(nops):
    r = rnd.random()
    mine = sorted(files)
    if r < 0.35 or not mine:
        area = rnd.choice(areas + [mp("shared")])
        if dirs and rnd.random() < 0.3:
            area = rnd.choice(sorted(dirs))
        mode = rnd.choice(modes)
        content = ("%d %d %d" % (uid, w, i)).encode()
        if area.endswith("/new"):
            # delivery: write in tmp/, then rename into new/
            t = newname(tmp)
            f = newname(area)
            if attempt("create", write_file, t, content, mode) and attempt("rename", os.rename, t, f):
                files[f] = (mode, content)
        else:
            f = newname(area)
            if attempt("create", write_file, f, content, mode):
                files[f] = (mode, content)
    elif r < 0.55:
        src = rnd.choice(mine)
        area = rnd.choice(areas + sorted(dirs))
        dst = newname(area)
        if rnd.random() < 0.2 and len(mine) > 1:
            dst = rnd.choice([m for m in mine if m != src])   # rename over an own file
        if attempt("rename", os.rename, src, dst):
            files[dst] = files.pop(src)
    elif r < 0.70:
        victim = rnd.choice(mine)
        if attempt("unlink", os.unlink, victim):
            del files[victim]
    elif r < 0.78:
        f = rnd.choice(mine)
        mode = rnd.choice(modes)
        if attempt("chmod", os.chmod, f, mode):
            files[f] = (mode, files[f][1])
    elif r < 0.86:
        f = rnd.choice(mine)
        mode, content = files[f]
        if mode & 0o200:
            content = content + b"+"
            def app(p):
                fd = os.open(p, os.O_WRONLY | os.O_APPEND)
                os.write(fd, b"+"); os.close(fd)
            if attempt("append", app, f):
                files[f] = (mode, content)
    elif r < 0.93:
        d = newname(mp("shared")) + "-d"
        if attempt("mkdir", os.mkdir, d, 0o755):
            dirs[d] = 0o755
    else:
        empty = [d for d in sorted(dirs) if not any(f.startswith(d + "/") for f in files)]
        if empty:
            d = rnd.choice(empty)
            if attempt("rmdir", os.rmdir, d):
                del dirs[d]

with open(out, "w") as fh:
    json.dump({"files": {k: [v[0], v[1].decode()] for k, v in files.items()},
               "dirs": dirs, "errors": errors, "uid": uid}, fh)
PYEOF
chmod 0644 "$T/stress.py"
mkdir -m 0777 "$T/stress"
for u in 2001 2002 2003 2004; do
	mkdir -p "$MNT/home/u$u/maildir/tmp" "$MNT/home/u$u/maildir/new"
	chown -R "$u:$u" "$MNT/home/u$u/maildir"
	chmod 0700 "$MNT/home/u$u/maildir" "$MNT/home/u$u/maildir/tmp" "$MNT/home/u$u/maildir/new"
done

NOPS=${STRESS_OPS:-300}
stress() {
	local pids=() u w rc=0
	for u in 2001 2002 2003 2004; do
		for w in 1 2 3; do
			as_user "$u" "$PY" "$T/stress.py" "$w" "$NOPS" "$((u * 10 + w))" "$T/stress/$u-$w.json" \
				>"$T/stress/$u-$w.log" 2>&1 &
			pids+=($!)
		done
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc -eq 0 ] || cat "$T"/stress/*.log
	return $rc
}
check "stress: 4 uids x 3 processes x $NOPS create/rename/chmod/append/delete ops ran" stress

check "stress: no operation failed (no EPERM, no EACCES, no EIO)" py '
import glob, json, collections
errs = []
for f in sorted(glob.glob(T + "/stress/*.json")):
    errs += json.load(open(f))["errors"]
if errs:
    c = collections.Counter(e.rsplit(" ", 1)[-1] for e in errs)
    raise AssertionError("%d failed operations %s; first: %s" % (len(errs), dict(c), errs[:10]))
'

check "stress: every remaining file has the right owner, mode and content; nothing extra or missing" py '
import glob, json
want_f, want_d = {}, {}
for f in sorted(glob.glob(T + "/stress/*.json")):
    j = json.load(open(f))
    for k, v in j["files"].items():
        want_f[k] = (j["uid"], v[0], v[1].encode())
    for k, v in j["dirs"].items():
        want_d[k] = (j["uid"], v)
got_f, got_d = {}, {}
for root in [mp("shared")] + [mp("home", "u%d" % u, "maildir") for u in (2001, 2002, 2003, 2004)]:
    for dp, dn, fn in os.walk(root):
        for n in dn:
            p = os.path.join(dp, n)
            if os.path.basename(p).startswith("u"):
                got_d[p] = p
        for n in fn:
            got_f[os.path.join(dp, n)] = 1
bad = []
for p in sorted(set(want_f) | set(got_f)):
    if os.path.basename(p) in ("s2001", "s2002", "s2003", "s2004"):
        continue
    if p not in got_f:
        bad.append("missing " + p); continue
    if p not in want_f:
        bad.append("unexpected " + p); continue
    uid, mode, content = want_f[p]
    st = os.lstat(p)
    if (st.st_uid, st.st_gid) != (uid, uid):
        bad.append("%s owned by %d:%d, want %d:%d" % (p, st.st_uid, st.st_gid, uid, uid))
    if stat.S_IMODE(st.st_mode) != mode:
        bad.append("%s mode %o, want %o" % (p, stat.S_IMODE(st.st_mode), mode))
    if read_file(p) != content:
        bad.append("%s content %r, want %r" % (p, read_file(p)[:40], content[:40]))
for p in sorted(set(want_d) | set(got_d)):
    if p not in got_d:
        bad.append("missing dir " + p)
    elif p not in want_d:
        bad.append("unexpected dir " + p)
    else:
        st = os.lstat(p)
        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (want_d[p][0], want_d[p][0], 0o755):
            bad.append("dir %s: %d:%d %o" % (p, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
if bad:
    raise AssertionError("%d problems (of %d files, %d dirs):\n  %s" % (len(bad), len(want_f), len(want_d), "\n  ".join(bad[:30])))
print("%d files, %d dirs checked" % (len(want_f), len(want_d)))
'
tmp_empty() {
	local u n
	for u in 2001 2002 2003 2004; do
		n=$(ls -A "$MNT/home/u$u/maildir/tmp" | wc -l)
		[ "$n" -eq 0 ] || { echo "u$u maildir/tmp has $n entries"; return 1; }
	done
}
check "stress: maildir tmp/ dirs are empty after delivery" tmp_empty
check "daemon alive after the stress" daemon_alive "$MNT"
grep -iE "error|fail|denied" "$LAST_LOG" | head -5 | diag
summary
