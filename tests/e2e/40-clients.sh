#!/bin/bash
# Real clients on a geo-site tree: sites/emea under DEP "emea" (default
# file: customer keys), on a real mount.
#  - git: clone a local repository into the tree, commit, gc, fsck --full;
#    clone it back out and compare with the source;
#  - sqlite3 in WAL mode: one writer process (transactions of 10 rows) and
#    two reader processes at the same time, every read a consistent
#    snapshot; then PRAGMA integrity_check and the row count;
#  - rsync -a of /usr/share/doc into the tree and back out, sha256
#    manifests (files, symlink targets, modes) compared, and rsync -c
#    --dry-run finding nothing to transfer into the tree;
#  - tar -x of a tarball of C headers into the tree, then tar --compare;
#  - after a remount: git fsck, integrity_check and tar --compare again, and
#    the tree's files really are under the DEP's tree key.
# Budget: about a minute on an idle 2-core machine (~200 MB through ckfs),
# well under three under load.
. "$(dirname "$0")/../integration/lib.sh"

for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
# shellcheck source=../../scripts/lib.sh
. "$SRC_ROOT/scripts/lib.sh"
(ck_install_packages git sqlite3 rsync tar) >"$T/apt.log" 2>&1 ||
	skip_all "git/sqlite3/rsync/tar cannot be installed: $(tail -n 1 "$T/apt.log")"
for c in git sqlite3 rsync tar sha256sum; do
	command -v "$c" >/dev/null || skip_all "$c is not installed"
done
[ -d /usr/share/doc ] || skip_all "/usr/share/doc is missing"
N_TESTS=0 N_PASS=0 N_FAIL=0 FAILED_NAMES=()
tnote() { echo "$*" >>"$T/notes"; }
T_START=$(date +%s.%N)
export GIT_CONFIG_NOSYSTEM=1 HOME=$T GIT_AUTHOR_NAME=ck GIT_AUTHOR_EMAIL=ck@example.invalid \
	GIT_COMMITTER_NAME=ck GIT_COMMITTER_EMAIL=ck@example.invalid
git config --global init.defaultBranch main
git config --global safe.directory '*'

mkfs_ckfs "$VOL" || exit 1
"$CKDEP" "$VOL" create emea >/dev/null || exit 1
mount_check "mount" "$VOL" "$MNT" || { summary; exit 1; }
check "sites/emea assigned to DEP emea (file: keys)" "$CKASSIGN" "$VOL" sites/emea emea
S=$MNT/sites/emea
mkdir -p "$S"

# ------------------------------------------------------------ git
make_src() {
	set -e
	mkdir -p "$T/src"
	cd "$T/src"
	git init -q
	local d n=0
	for d in keys fs tools docs; do
		cp -r "$SRC_ROOT/$d" .
		git add -A .
		git commit -qm "add $d"
		n=$((n + 1))
	done
	seq 1 20000 >numbers
	git add numbers
	git commit -qm numbers
	echo "source: $(git rev-list --count HEAD) commits, $(git ls-files | wc -l) files"
}
check "a local source repository" make_src
git_work() {
	set -e
	git clone -q "$T/src" "$S/repo"
	cd "$S/repo"
	git fsck --full --strict
	for i in 1 2 3; do
		seq "$i" 3 30000 >"numbers.$i"
		echo "change $i" >>README.ckfs
		git add -A .
		git commit -qm "commit $i on ckfs"
	done
	git mv numbers numbers.moved
	git commit -qm "a rename"
	git gc -q --aggressive --prune=now
	git fsck --full --strict
	[ "$(git rev-list --count HEAD)" -eq 9 ]
	git count-objects -v | grep -q '^count: 0$'        # everything packed by gc
	git diff --quiet HEAD
}
t0=$(date +%s.%N)
check "git: clone into the tree, 4 commits, gc --aggressive, fsck --full --strict" git_work
tnote "git clone/commit/gc/fsck on ckfs: $(elapsed "$t0") s"
git_back() {
	set -e
	git clone -q "$S/repo" "$T/back"
	cd "$T/back"
	git fsck --full --strict
	[ "$(git -C "$S/repo" rev-parse HEAD)" = "$(git rev-parse HEAD)" ]
	# The source's files are unchanged at the source's head in the copy.
	git diff --quiet "$(git -C "$T/src" rev-parse HEAD)" HEAD -- keys fs tools docs
	cmp numbers.moved "$T/src/numbers"
}
check "git: cloned back out, same head, the source's content intact" git_back

# ------------------------------------------------------------ sqlite3 (WAL)
cat >"$T/db.py" <<'EOF'
import os, sqlite3, sys, time
db, role = sys.argv[1], sys.argv[2]
TX, ROWS = 300, 10
if role == "init":
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad TEXT NOT NULL)")
    c.commit()
elif role == "writer":
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    for i in range(TX):
        c.execute("BEGIN IMMEDIATE")
        for j in range(ROWS):
            n = i * ROWS + j + 1
            c.execute("INSERT INTO t (id, v, pad) VALUES (?, ?, ?)", (n, n * 7, os.urandom(200).hex()))
        c.execute("COMMIT")
        if i % 50 == 0:
            c.execute("PRAGMA wal_checkpoint(PASSIVE)")
    open(sys.argv[3], "w").write("done")
    print("writer: %d rows" % (TX * ROWS))
else:
    c = sqlite3.connect(db, timeout=30)
    reads, last = 0, 0
    while True:
        done = os.path.exists(sys.argv[3])
        # One statement: one read transaction, one snapshot of the WAL.
        n, s, mx = c.execute("SELECT count(*), coalesce(sum(v), 0), coalesce(max(id), 0) FROM t").fetchone()
        assert n % ROWS == 0, "torn transaction: %d rows" % n
        assert s == 7 * n * (n + 1) // 2 and mx == n, "inconsistent snapshot: n=%d sum=%d max=%d" % (n, s, mx)
        assert n >= last, "went back from %d to %d rows" % (last, n)
        last, reads = n, reads + 1
        if done:
            break
        time.sleep(0.005)
    assert last == TX * ROWS, last
    print("%s: %d consistent reads, last %d rows" % (role, reads, last))
EOF
sqlite_run() {
	local db=$S/app.db flag=$T/writer.done pids=() p rc=0
	"$PY" "$T/db.py" "$db" init || return 1
	"$PY" "$T/db.py" "$db" reader1 "$flag" & pids+=($!)
	"$PY" "$T/db.py" "$db" reader2 "$flag" & pids+=($!)
	"$PY" "$T/db.py" "$db" writer "$flag" || rc=1
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc -eq 0 ] || return 1
	sqlite_check
}
sqlite_check() {
	local r
	r=$(sqlite3 "$S/app.db" "PRAGMA journal_mode; PRAGMA integrity_check; SELECT count(*), sum(v) FROM t;") || return 1
	echo "$r"
	[ "$r" = "$(printf 'wal\nok\n3000|31510500')" ]
}
t0=$(date +%s.%N)
check "sqlite3 WAL: a writer and two readers at once, every read consistent, integrity_check ok" sqlite_run
tnote "sqlite3 WAL, 300 transactions with 2 readers: $(elapsed "$t0") s"

# ------------------------------------------------------------ rsync
# manifest DIR: every entry's type, mode, path and symlink target, then
# every file's sha256.
manifest_fast() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 -printf '%y %m %p %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	)
}
rsync_in() {
	local t0=$(date +%s.%N)
	rsync -a /usr/share/doc/ "$S/doc/" || return 1
	echo "rsync in: $(du -sh /usr/share/doc | cut -f1) in $(elapsed "$t0") s"
	tnote "rsync -a /usr/share/doc ($(du -sh /usr/share/doc | cut -f1)) into ckfs: $(elapsed "$t0") s"
	manifest_fast /usr/share/doc >"$T/doc.src" && manifest_fast "$S/doc" >"$T/doc.ck" &&
		echo "$(wc -l <"$T/doc.src") entries" && diff "$T/doc.src" "$T/doc.ck" | head -n 20 &&
		cmp -s "$T/doc.src" "$T/doc.ck"
}
check "rsync -a /usr/share/doc in: sha256, mode and symlink manifest identical" rsync_in
sh_check "rsync -c --dry-run: nothing differs by checksum" '
out=$(rsync -a -c -n -i /usr/share/doc/ "$S/doc/"); [ -z "$out" ] || { echo "$out" | head; exit 1; }'
rsync_out() {
	local t0=$(date +%s.%N)
	rsync -a "$S/doc/" "$T/doc.out/" || return 1
	echo "rsync out: $(elapsed "$t0") s"
	manifest_fast "$T/doc.out" >"$T/doc.back" && cmp -s "$T/doc.src" "$T/doc.back"
}
t0=$(date +%s.%N)
check "rsync -a back out: manifest identical to the source" rsync_out
tnote "rsync back out + manifest: $(elapsed "$t0") s"

# ------------------------------------------------------------ tar
INC=()
for d in linux c++ openssl x86_64-linux-gnu asm-generic; do [ -d "/usr/include/$d" ] && INC+=("include/$d"); done
[ ${#INC[@]} -gt 0 ] || INC=(share/doc)
tar -cf "$T/src.tar" -C /usr "${INC[@]}"
tar_x() {
	mkdir -p "$S/tar" && tar -xf "$T/src.tar" -C "$S/tar" || return 1
	echo "$(tar -tf "$T/src.tar" | wc -l) entries, $(du -sh "$T/src.tar" | cut -f1)"
	tar --compare -f "$T/src.tar" -C "$S/tar"
}
t0=$(date +%s.%N)
check "tar -x of C headers into the tree, then tar --compare finds no difference" tar_x
tnote "tar -x + tar --compare ($(du -sh "$T/src.tar" | cut -f1)): $(elapsed "$t0") s"

# ------------------------------------------------------------ after a remount
umount_check "unmount" "$MNT"
mount_check "mount again" "$VOL" "$MNT" || { summary; exit 1; }
sh_check "after the remount: git fsck --full --strict, same head" '
cd "$S/repo" && git fsck --full --strict && [ "$(git rev-parse HEAD)" = "$(git -C "$T/back" rev-parse HEAD)" ]'
check "after the remount: sqlite integrity_check ok, 3000 rows" sqlite_check
sh_check "after the remount: tar --compare, and the sha256 of every 10th doc file" '
tar --compare -f "$T/src.tar" -C "$S/tar" &&
grep -E "^[0-9a-f]{64}  " "$T/doc.src" | awk "NR % 10 == 1" >"$T/doc.sample" &&
echo "$(wc -l <"$T/doc.sample") doc files checked" && (cd "$S/doc" && sha256sum --quiet -c "$T/doc.sample")'
sh_check "the files of sites/emea are under the DEP tree key (header tree ID)" '
want=$(dep_tree_id "$VOL" emea sites/emea); [ -n "$want" ] || exit 1
for f in "$S/repo/numbers.moved" "$S/app.db" "$S/doc/$(ls /usr/share/doc | head -n 1)/copyright"; do
	[ -f "$f" ] || continue
	b=$(backing_of "$f" "$VOL") && [ "$(file_tree_id "$b")" = "$want" ] || { echo "$f: not under $want"; exit 1; }
done'
sh_check "no plaintext of the test data in the backing store" '! grep -rqF "commit 3 on ckfs" "$VOL" && ! grep -rqF "change 3" "$VOL"'
check "daemon alive, log without errors" sh -c 'kill -0 '"${MOUNT_PID[$MNT]}"' && ! grep -Ei "error|EIO" '"${MOUNT_LOG[$MNT]}"
umount_check "unmount" "$MNT"
tnote "40-clients total: $(elapsed "$T_START") s"
summary
