#!/bin/bash
# ck-assign --apply ("the mailbox move") on a real mount: a populated tree
# (1,000+ files: several MB ones, hard links, symlinks, xattrs, names over
# 200 bytes, deep directories) re-encrypted from the service key to a DEP
# while a reader and a writer loop run on it; kill -9 of the apply, and of
# the daemon, in the middle, then resume; a move from one DEP to another;
# --json progress lines.
. "$(dirname "$0")/lib.sh"

for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
tnote() { echo "$*" >>"$T/notes"; }
N_FILES=${CK_APPLY_FILES:-1000}

# ------------------------------------------------------------ helpers (python)
cat >"$T/ap.py" <<'EOF'
import hashlib, json, os, random, sys, time
sys.path.insert(0, os.environ["T"])
from ckt import *


def populate(root, seed, n):
    r = random.Random(seed)
    os.makedirs(root)
    dirs = [root]
    for i in range(40):
        d = os.path.join(r.choice(dirs), "d%02d" % i)
        os.mkdir(d)
        dirs.append(d)
    deep = root
    for i in range(12):
        deep = os.path.join(deep, "nest%d" % i)
        os.mkdir(deep)
    dirs.append(deep)
    longdir = os.path.join(root, "D" * 230)
    os.mkdir(longdir)
    dirs.append(longdir)
    files = []
    for i in range(n):
        d = r.choice(dirs)
        size = r.choice([0, 1, 100, 4095, 4096, 4097, 8192, r.randint(0, 60000)])
        name = "f%04d" % i
        if i % 50 == 7:
            name = "L%04d-" % i + "x" * (200 + r.randint(5, 50))    # 206..255 bytes
        p = os.path.join(d, name)
        write_file(p, r.randbytes(size))
        files.append(p)
    os.mkdir(os.path.join(root, "big"))
    for i, size in enumerate([3 << 20, (5 << 20) + 123, (7 << 20) + 4097, (2 << 20) + 1]):
        p = os.path.join(root, "big", "big%d" % i)
        write_file(p, r.randbytes(size))
        files.append(p)
    for i in range(12):                      # hard links, one file with 3 names
        src = r.choice(files)
        os.link(src, os.path.join(r.choice(dirs), "h%02d" % i))
        if i == 0:
            os.link(src, os.path.join(r.choice(dirs), "h-third"))
    for i in range(25):                      # symlinks of every kind
        d = r.choice(dirs)
        tgt = [os.path.relpath(r.choice(files), d), "/etc/hostname", "dangling-%d" % i,
               "t" * 300][i % 4]
        os.symlink(tgt, os.path.join(d, "s%02d" % i))
    for i in range(40):                      # xattrs on files and dirs
        p = r.choice(files) if i % 8 else r.choice(dirs)
        os.setxattr(p, "user.k%d" % i, r.randbytes(r.randint(1, 200)))
    for i in range(10):
        p = r.choice(files)
        os.chmod(p, r.choice([0o600, 0o640, 0o755, 0o444]))
        os.utime(p, ns=(1600000000 * 10**9 + i, 1500000000 * 10**9 + i * 7))
    print("%d files, %d dirs" % (len(files), len(dirs)))


def sums(root):
    out = {}
    for dp, dn, fn in os.walk(root):
        for n in fn:
            p = os.path.join(dp, n)
            if os.path.islink(p):
                continue
            out[os.path.relpath(p, root)] = hashlib.sha256(read_file(p)).hexdigest()
    return out


def reader(root, ref, stop, log):
    """Read and checksum every file, list every directory, read symlinks and
    xattrs, over and over until stop exists; errors go to log."""
    want = json.load(open(ref))
    listing = {}
    for rel in want:
        d = os.path.dirname(rel)
        listing.setdefault(d, set())
    for dp, dn, fn in os.walk(root):
        listing[os.path.relpath(dp, root)] = set(dn + fn)
    rounds = reads = errs = 0
    r = random.Random(1)
    keys = sorted(want)
    while not stopped(stop):
        r.shuffle(keys)
        for rel in keys:
            if stopped(stop):
                break
            p = os.path.join(root, rel)
            try:
                got = hashlib.sha256(read_file(p)).hexdigest()
                if got != want[rel]:
                    raise AssertionError("content differs")
                reads += 1
                if reads % 20 == 0:
                    d = os.path.dirname(rel) or "."
                    names = set(os.listdir(os.path.join(root, d)))
                    if names != listing[d]:
                        raise AssertionError("listing of %s differs: missing %s, extra %s" % (
                            d, sorted(listing[d] - names)[:3], sorted(names - listing[d])[:3]))
                    for n in names:
                        q = os.path.join(root, d, n)
                        if os.path.islink(q):
                            os.readlink(q)
                        for x in os.listxattr(q, follow_symlinks=False):
                            os.getxattr(q, x, follow_symlinks=False)
            except (OSError, AssertionError) as e:
                errs += 1
                with open(log, "a") as f:
                    f.write("%.3f reader %s: %s\n" % (time.time(), rel[:80], e))
        rounds += 1
    print("reader: %d reads (%d full rounds), %d errors" % (reads, rounds, errs))


def writer(root, stop, log, state):
    """Create files and append to logs (each fsync'ed) until stop exists;
    remember what must be there. An operation that failed leaves its file
    uncertain (it may or may not have happened): only checked if present."""
    os.makedirs(root, exist_ok=True)
    r = random.Random(2)
    want, logs, uncertain = {}, {}, set()
    i = errs = 0
    while not stopped(stop) or i < 20:
        name = "w%05d" % i
        k = "log%d" % (i % 5)
        stage = name
        try:
            data = r.randbytes(r.randint(0, 9000))
            want[name] = data
            p = os.path.join(root, name)
            write_file(p, data)
            fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.close(fd)
            stage = k
            line = b"line %d of %s %s\n" % (i, k.encode(), r.randbytes(8).hex().encode())
            fd = os.open(os.path.join(root, k), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, line); os.fsync(fd); os.close(fd)
            logs[k] = logs.get(k, b"") + line
            if i % 10 == 0:
                for n in (k, "w%05d" % (i // 2)):
                    stage = "check"
                    exp = logs.get(n, want.get(n))
                    if n not in uncertain and read_file(os.path.join(root, n)) != exp:
                        raise AssertionError("%s reads back different" % n)
        except (OSError, AssertionError) as e:
            errs += 1
            if stage != "check":
                uncertain.add(stage)
            with open(log, "a") as f:
                f.write("%.3f writer %d: %s\n" % (time.time(), i, e))
        i += 1
    want.update(logs)
    json.dump({k: [hashlib.sha256(v).hexdigest(), k not in uncertain] for k, v in want.items()},
              open(state, "w"))
    print("writer: %d files created, %d appends, %d errors" % (i, i, errs))


def check_sums(root, ref):
    want = json.load(open(ref))
    got = sums(root)
    bad, maybe = [], 0
    for k, v in want.items():
        sha, certain = (v, True) if isinstance(v, str) else v
        if got.get(k) == sha:
            continue
        if not certain and k not in got:
            maybe += 1
            continue
        if not certain and k.startswith("log"):
            maybe += 1          # an append of unknown outcome
            continue
        bad.append(k)
    extra = [k for k in got if k not in want]
    if bad or extra:
        raise AssertionError("%d files differ or are missing (%s), %d unexpected (%s)" % (
            len(bad), bad[:5], len(extra), extra[:5]))
    print("%d files equal%s" % (len(want) - maybe, ", %d of unknown outcome absent" % maybe if maybe else ""))


def cmp_manifest(root, path, what):
    """what = "all-but-dir-mtimes": every field of every entry except the
    mtime of directories; "dir-mtimes": only those."""
    import stat as st_
    want = json.load(open(path))
    got = json.loads(json.dumps(manifest(root)))
    fields = ["type", "mode", "uid", "gid", "size", "mtime_ns", "nlink", "sha256", "symlink", "xattrs"]
    errs = []
    for k in sorted(set(want) | set(got)):
        if k not in got or k not in want:
            if what != "dir-mtimes":
                errs.append("%s: %s" % (k[:60], "missing" if k not in got else "unexpected"))
            continue
        isdir = st_.S_ISDIR(want[k][0])
        for i, f in enumerate(fields):
            if want[k][i] == got[k][i]:
                continue
            if (what == "dir-mtimes") == (isdir and f == "mtime_ns"):
                errs.append("%s: %s %r -> %r" % (k[:60], f, want[k][i], got[k][i]))
    for e in errs[:12]:
        print(e)
    if errs:
        raise AssertionError("%d differences in %d entries (%s)" % (len(errs), len(want), what))
    print("%d entries equal (%s)" % (len(want), what))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "populate":
        populate(args[0], int(args[1]), int(args[2]))
    elif cmd == "sums":
        json.dump(sums(args[0]), open(args[1], "w"))
    elif cmd == "reader":
        reader(*args)
    elif cmd == "writer":
        writer(*args)
    elif cmd == "manifest":
        cmp_manifest(*args)
    elif cmd == "check":
        check_sums(*args)
EOF
ap() { "$PY" "$T/ap.py" "$@"; }

# backing_dir PLAINDIR: the backing directory of a directory on the mount.
backing_dir() { find "$VOL" -xdev -inum "$(stat -c %i "$1")" -type d -print -quit; }
# tree_ids_under BACKINGDIR: "ID COUNT" per tree ID named by the headers of
# the regular backing files under it.
tree_ids_under() {
	find "$1" -type f ! -name '.*' -print0 | xargs -0 -r -n 200 "$PY" -c '
import sys
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        print(f.read(512)[464:480].hex())' | sort | uniq -c | awk '{print $2, $1}'
}
all_under() { # BACKINGDIR TREEID
	local got
	got=$(tree_ids_under "$1")
	echo "tree IDs in the backing headers under $1:"; echo "$got"
	[ -n "$got" ] && [ "$(echo "$got" | wc -l)" -eq 1 ] && [ "${got%% *}" = "$2" ]
}
svc_id() { od -An -tx1 -j 48 -N 16 "$VOL/.ckfs/volume" | tr -d ' \n'; }

# ------------------------------------------------------------ setup
check "ck-mkfs" mkfs_ckfs "$VOL"
sh_check "ck-dep create depA, depB" '"$CKDEP" "$VOL" create depA && "$CKDEP" "$VOL" create depB'
mount_check "mount" "$VOL" "$MNT"
t0=$(date +%s.%N)
check "populate sites/emea on the service tree ($N_FILES+ files, big files, links, symlinks, xattrs, long names)" \
	ap populate "$MNT/sites/emea/data" 1 "$N_FILES"
echo "# populated in $(elapsed "$t0") s"
sh_check "reference checksums and manifest" 'ap sums "$MNT/sites/emea/data" "$T/emea.sums" &&
	"$PY" -c "import sys; sys.path.insert(0, \"$T\"); from ckt import *; save_manifest(\"$MNT/sites/emea/data\", \"$T/emea.manifest\")"'
BEMEA=$(backing_dir "$MNT/sites/emea")
sh_check "before apply every backing file of sites/emea is under the service tree" 'all_under "$BEMEA" "$(svc_id)"'

out_pending() { local o; o=$("$CKASSIGN" "$VOL" sites/emea depA 2>&1) || return 1; echo "$o"; echo "$o" | grep -qi pending; }
check "ck-assign of the populated tree records it as pending and says so" out_pending
sh_check "show --json: tree pending; data still under the service key and readable" '
s=$(dep_tree_state "$VOL" depA sites/emea); echo "state: $s"; case $s in pending*) ;; *) exit 1;; esac && sleep 0.5 && all_under "$BEMEA" "$(svc_id)" &&
"$PY" "$T/ap.py" check "$MNT/sites/emea/data" "$T/emea.sums"'

# ------------------------------------------------------------ apply under load
rm -f "$T/stop" "$T/io.log"; : >"$T/io.log"
ap reader "$MNT/sites/emea/data" "$T/emea.sums" "$T/stop" "$T/io.log" >"$T/reader.out" 2>&1 &
RPID=$!
ap writer "$MNT/sites/emea/writer" "$T/stop" "$T/io.log" "$T/writer.state" >"$T/writer.out" 2>&1 &
WPID=$!
sleep 1
t0=$(date +%s.%N)
"$CKASSIGN" --apply --json "$VOL" sites/emea depA >"$T/apply.json" 2>"$T/apply.err"; arc=$?
APPLY_S=$(elapsed "$t0")
sleep 1
touch "$T/stop"; wait $RPID; rrc=$?; wait $WPID; wrc=$?
tnote "apply of sites/emea ($N_FILES+ files, ~17 MB) with reader+writer: $APPLY_S s"
sh_check "ck-assign --apply --json exits 0 (took $APPLY_S s)" '[ $arc -eq 0 ] || { cat "$T/apply.err"; tail -n 3 "$T/apply.json"; exit 1; }'
sh_check "every --json line parses as JSON: progress lines, then the final state" '
"$PY" -c "
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
objs = [json.loads(l) for l in lines]
prog = [o[\"progress\"] for o in objs if \"progress\" in o]
print(len(lines), \"lines,\", len(prog), \"progress lines; last:\", lines[-1].strip())
assert prog, \"no progress line\"
for p in prog:
    assert set(p) >= {\"files_done\", \"files_total\", \"bytes_done\", \"bytes_total\"}, p
assert prog[-1][\"files_done\"] >= prog[-1][\"files_total\"], prog[-1]
assert objs[-1].get(\"state\") == \"active\" and objs[-1].get(\"tree\") == \"sites/emea\", objs[-1]
" "$T/apply.json"'
sh_check "the reader loop saw no error and only matching content during the apply" '
cat "$T/reader.out"; [ $rrc -eq 0 ] && ! grep reader "$T/io.log" | head -n 10 | grep . && grep -q " 0 errors" "$T/reader.out"'
sh_check "the writer loop saw no error during the apply" '
cat "$T/writer.out"; [ $wrc -eq 0 ] && ! grep writer "$T/io.log" | head -n 10 | grep . && grep -q " 0 errors" "$T/writer.out"'
check "after apply: all reference files compare (checksums)" ap check "$MNT/sites/emea/data" "$T/emea.sums"
check "after apply: manifest compares (types, modes, owners, sizes, file mtimes, link counts, symlinks, xattrs)" \
	ap manifest "$MNT/sites/emea/data" "$T/emea.manifest" all-but-dir-mtimes
check "after apply: directory mtimes unchanged" ap manifest "$MNT/sites/emea/data" "$T/emea.manifest" dir-mtimes
check "after apply: everything the writer wrote compares" ap check "$MNT/sites/emea/writer" "$T/writer.state"
sh_check "show --json: tree active under depA" '[ "$(dep_tree_state "$VOL" depA sites/emea)" = active ]'
sh_check "every backing file of sites/emea now names depA's tree (none left under the service key)" '
all_under "$BEMEA" "$(dep_tree_id "$VOL" depA sites/emea)"'
sh_check "the audit log has the apply" '"$CKDEP" "$VOL" audit | grep -E "applied.*tree=(sites/emea|tree:$(dep_tree_id "$VOL" depA sites/emea))"'
umount_check "unmount" "$MNT"
mount_check "remount" "$VOL" "$MNT"
check "after remount: reference files compare" ap check "$MNT/sites/emea/data" "$T/emea.sums"
check "after remount: manifest compares (all but directory mtimes)" ap manifest "$MNT/sites/emea/data" "$T/emea.manifest" all-but-dir-mtimes
check "after remount: writer files compare" ap check "$MNT/sites/emea/writer" "$T/writer.state"
check "a re-run of --apply on the finished tree is a no-op that exits 0" "$CKASSIGN" --apply "$VOL" sites/emea depA

# ------------------------------------------------------------ kill -9 of the apply, resume
check "populate sites/apac (service tree)" ap populate "$MNT/sites/apac" 2 "$N_FILES"
sh_check "apac reference checksums" '"$PY" "$T/ap.py" sums "$MNT/sites/apac" "$T/apac.sums"'
BAPAC=$(backing_dir "$MNT/sites/apac")
# ck-assign --apply waits 1.2 s for the mounts before it converts anything;
# kill in the conversion phase (1.2 s + the measured apply time).
span=$("$PY" -c "print(max(0.3, float('$APPLY_S') - 1.2))")
kills=0
for round in 1 2 3 4; do
	delay=$("$PY" -c "import random; print('%.2f' % (random.uniform(0.1, 2.0) if $round == 1 else 1.2 + random.uniform(0.05, $span)))")
	"$CKASSIGN" --apply "$VOL" sites/apac depA >"$T/kill.$round.out" 2>&1 &
	apid=$!
	sleep "$delay"
	if kill -9 "$apid" 2>/dev/null; then
		wait "$apid" 2>/dev/null
		kills=$((kills + 1))
		echo "# round $round: ck-assign --apply killed (kill -9) after $delay s; tree $(dep_tree_state "$VOL" depA sites/apac); headers: $(tree_ids_under "$BAPAC" | tr '\n' ' ')"
		check "round $round: mid-apply (killed at $delay s) every file of apac still reads back right" \
			ap check "$MNT/sites/apac" "$T/apac.sums"
	else
		wait "$apid"
		echo "# round $round: the apply finished within $delay s"
		break
	fi
done
tnote "apply of sites/apac killed $kills times before it was resumed"
check "re-run of --apply after kill -9 completes" "$CKASSIGN" --apply "$VOL" sites/apac depA
check "after resume: every apac file compares to the reference" ap check "$MNT/sites/apac" "$T/apac.sums"
sh_check "after resume: every backing file of apac names depA's apac tree" '
all_under "$BAPAC" "$(dep_tree_id "$VOL" depA sites/apac)"'
sh_check "after resume: tree active" '[ "$(dep_tree_state "$VOL" depA sites/apac)" = active ]'

# ------------------------------------------------------------ kill -9 of the daemon during an apply
check "populate sites/amer (service tree)" ap populate "$MNT/sites/amer" 3 "$N_FILES"
sh_check "amer reference checksums and manifest" '"$PY" "$T/ap.py" sums "$MNT/sites/amer" "$T/amer.sums" &&
	"$PY" -c "import sys; sys.path.insert(0, \"$T\"); from ckt import *; save_manifest(\"$MNT/sites/amer\", \"$T/amer.manifest\")"'
BAMER=$(backing_dir "$MNT/sites/amer")
"$CKASSIGN" --apply "$VOL" sites/amer depB >"$T/dkill.out" 2>&1 &
apid=$!
delay=$("$PY" -c "import random; print('%.2f' % (1.2 + random.uniform(0.05, $span)))")
sleep "$delay"
check "kill -9 of the ckfs daemon $delay s into an apply" kill_daemon "$MNT"
wait "$apid"; arc=$?
echo "# the apply the daemon died under exited $arc: $(tail -n 1 "$T/dkill.out")"
mount_check "remount after the daemon was killed" "$VOL" "$MNT"
check "re-run of --apply completes" "$CKASSIGN" --apply "$VOL" sites/amer depB
check "every amer file compares to the reference" ap check "$MNT/sites/amer" "$T/amer.sums"
check "amer manifest compares (all but directory mtimes)" ap manifest "$MNT/sites/amer" "$T/amer.manifest" all-but-dir-mtimes
sh_check "every backing file of amer names depB's amer tree" 'all_under "$BAMER" "$(dep_tree_id "$VOL" depB sites/amer)"'
sh_check "emea and apac still compare" '"$PY" "$T/ap.py" check "$MNT/sites/emea/data" "$T/emea.sums" && "$PY" "$T/ap.py" check "$MNT/sites/apac" "$T/apac.sums"'

# ------------------------------------------------------------ move depA -> depB, then revoke
OLD_EMEA=$(dep_tree_id "$VOL" depA sites/emea)
rm -f "$T/stop"; : >"$T/io-move.log"
ap reader "$MNT/sites/emea/data" "$T/emea.sums" "$T/stop" "$T/io-move.log" >"$T/reader2.out" 2>&1 &
RPID=$!
check "ck-assign without --apply refuses to move a tree to another DEP" one_line_error "$CKASSIGN" "$VOL" sites/emea depB
check "ck-assign --apply moves sites/emea from depA to depB" "$CKASSIGN" --apply "$VOL" sites/emea depB
sleep 0.5; touch "$T/stop"; wait $RPID
sh_check "the reader loop saw no error during the move" 'cat "$T/reader2.out"; grep -q " 0 errors" "$T/reader2.out" || { head "$T/io-move.log"; exit 1; }'
check "after the move: all emea files compare" ap check "$MNT/sites/emea/data" "$T/emea.sums"
sh_check "show --json: emea active under depB (and not active under depA)" '
[ "$(dep_tree_state "$VOL" depB sites/emea)" = active ] && s=$(dep_tree_state "$VOL" depA sites/emea) && echo "under depA: $s" && [ "$s" != active ]'
sh_check "every backing file of emea names depB's new tree" '
new=$(dep_tree_id "$VOL" depB sites/emea); [ "$new" != "$OLD_EMEA" ] && all_under "$BEMEA" "$new"'
check "revoke depA" "$CKDEP" "$VOL" revoke depA
sleep 1.5
check "after revoking depA: emea (moved to depB) still compares" ap check "$MNT/sites/emea/data" "$T/emea.sums"
py_check "after revoking depA: apac (still under depA) is unreadable: EKEYREVOKED" \
	"expect_errno(errno.EKEYREVOKED, read_file, '$MNT/sites/apac/f0000' if os.path.exists('$MNT/sites/apac/f0000') else '$MNT/sites/apac/big/big0')"
check "purge depA (the DEP emea was moved away from)" "$CKDEP" "$VOL" purge depA --confirm depA
sleep 1
check "after purging depA: emea (now under depB) still compares; nothing of depB was deleted" \
	ap check "$MNT/sites/emea/data" "$T/emea.sums"
sh_check "after purging depA: apac (depA) is gone or unreadable" '
[ ! -e "$BAPAC" ] && ! ls "$MNT/sites/apac" >/dev/null 2>&1'
check "revoke depB" "$CKDEP" "$VOL" revoke depB
py_check "after revoking depB: emea is unreadable within 1 s (EKEYREVOKED)" "
dt = wait_errno('$MNT/sites/emea/data/big/big1', timeout=1.0)
print('unreadable after %.3f s' % dt)
expect_errno(errno.EKEYREVOKED, os.listdir, '$MNT/sites/emea/data')"
py_check "the service tree keeps working" "
write_file(mp('svc-after'), b'still here'); eq(read_file(mp('svc-after')), b'still here')"
umount_check "unmount" "$MNT"
mount_check "remount" "$VOL" "$MNT"
py_check "after remount: emea stays unreadable, service tree fine" "
expect_errno(errno.EKEYREVOKED, os.listdir, '$MNT/sites/emea')
eq(read_file(mp('svc-after')), b'still here')"
umount_check "unmount" "$MNT"
check "audit log verifies" "$CKDEP" "$VOL" audit --verify
summary
