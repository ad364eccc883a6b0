#!/bin/bash
# Real tools on a mount: tar -x then tar -d, cp -a then diff -r (and the
# metadata cp -a preserves), git init/add/commit/gc/fsck/clone, sqlite3 in
# rollback-journal and WAL modes with PRAGMA integrity_check.  Then all of
# it is checked again after a remount.
. "$(dirname "$0")/lib.sh"

for t in tar git sqlite3 diff; do
	command -v $t >/dev/null || skip_all "$t is not installed"
done

mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
mount_ckfs "$VOL" "$MNT" || { notok "mount"; summary; exit 1; }

# ------------------------------------------------------------ tar
TARSRC=${TAR_SOURCE:-/usr/include}
tar -C "$(dirname "$TARSRC")" -cf "$T/src.tar" "$(basename "$TARSRC")" 2>/dev/null
echo "# tarball of $TARSRC: $(tar -tf "$T/src.tar" | wc -l) entries, $(du -h "$T/src.tar" | cut -f1)"
mkdir "$MNT/tar"
check "tar -x of a real tarball" tar -C "$MNT/tar" -xf "$T/src.tar"
check "tar -d (--compare) finds no differences" tar -C "$MNT/tar" -df "$T/src.tar"

# ------------------------------------------------------------ cp -a
DOCS=$(cd /usr/share/doc && ls | head -n 60)
mkdir "$MNT/doc"
cp_a() { (cd /usr/share/doc && cp -a $DOCS "$MNT/doc/"); }
check "cp -a of $(echo $DOCS | wc -w) /usr/share/doc directories" cp_a
diff_r() {
	local d rc=0
	for d in $DOCS; do diff -r --no-dereference "/usr/share/doc/$d" "$MNT/doc/$d" || rc=1; done
	return $rc
}
check "diff -r finds no differences" diff_r
# (directory sizes are left out: they depend on the backing names' length)
meta() { (cd "$1" && find $DOCS \( -type d -printf '%p d %m %U %G - %T@\n' \) -o -printf '%p %y %m %U %G %s %T@ %l\n' | sort); }
check "cp -a preserved types, modes, owners, sizes, mtimes and symlink targets" \
	diff <(meta /usr/share/doc) <(meta "$MNT/doc")

# ------------------------------------------------------------ git
G="git -c user.name=ckfs-test -c user.email=test@ckfs.invalid -c init.defaultBranch=main -c gc.auto=0"
git_work() {
	set -e
	cd "$MNT"
	$G init -q repo
	cp -a "$TARSRC/linux" repo/ 2>/dev/null || cp -a /usr/share/doc/$(echo $DOCS | cut -d' ' -f1) repo/linux
	cd repo
	$G add -A
	$G commit -q -m "first commit"
	echo "a change" >>"$(find linux -type f | head -n 1)"
	$G commit -q -a -m "second commit"
	$G gc -q
	$G fsck --full --strict
	[ -z "$($G status --porcelain)" ]
	[ "$($G rev-list --count HEAD)" = 2 ]
	cd "$MNT"
	$G clone -q repo clone
	diff -r --exclude=.git repo clone
	cd clone && $G fsck --full --strict
}
check "git init/add/commit/gc/fsck/clone" git_work

# ------------------------------------------------------------ sqlite3
batch() { # n transactions of 1000 rows
	local i
	for i in $(seq "$1"); do
		echo "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<1000)
		      INSERT INTO t(v, b) SELECT hex(randomblob(16)), randomblob(abs(random()) % 2000) FROM c; COMMIT;"
	done
}
sqlite_rollback() {
	local db=$MNT/db/rollback.sqlite
	mkdir -p "$MNT/db"
	{ echo "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);"
	  batch 10
	  for i in $(seq 200); do echo "INSERT INTO t(v) VALUES ('single $i');"; done
	  echo "DELETE FROM t WHERE id % 7 = 0; UPDATE t SET v = v || '!' WHERE id % 5 = 0;"
	  echo "CREATE INDEX tv ON t(v); VACUUM;"
	} | sqlite3 -bail "$db" >/dev/null || return 1
	[ "$(sqlite3 "$db" 'PRAGMA integrity_check;')" = ok ] || { sqlite3 "$db" 'PRAGMA integrity_check;' | head; return 1; }
	[ "$(sqlite3 "$db" 'SELECT count(*) FROM t;')" = $(( 10200 - 10200 / 7 )) ]
}
check "sqlite3: 10k rows in transactions, 200 single-row ones, VACUUM, integrity_check ok" sqlite_rollback
# Concurrent connections wait for each other's locks as applications do
# (the sqlite3 shell's default busy timeout is 0: any overlap is "locked").
sq() { sqlite3 -cmd ".timeout 20000" "$@"; }
sqlite_wal() {
	local db=$MNT/db/wal.sqlite
	[ "$(sq "$db" 'PRAGMA journal_mode=WAL;')" = wal ] || return 1
	{ echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);"; batch 10; } | sq -bail "$db" >/dev/null || return 1
	# a second connection reading while the first writes (shared memory in -shm)
	(batch 5 | sq -bail "$db" >/dev/null) & local w=$!
	local i
	for i in $(seq 20); do sq "$db" 'SELECT count(*) FROM t;' >/dev/null || return 1; done
	wait $w || return 1
	sq "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null || return 1
	[ "$(sq "$db" 'PRAGMA integrity_check;')" = ok ] || return 1
	[ "$(sq "$db" 'SELECT count(*) FROM t;')" = 15000 ]
}
check "sqlite3 WAL mode: concurrent reader and writer, checkpoint, integrity_check ok" sqlite_wal

# ------------------------------------------------------------ after remount
umount_ckfs "$MNT"; check "daemon exits 0 on unmount" test $? -eq 0
if mount_ckfs "$VOL" "$MNT"; then
	check "after remount: tar -d still clean" tar -C "$MNT/tar" -df "$T/src.tar"
	check "after remount: diff -r still clean" diff_r
	check "after remount: git fsck" bash -c "cd '$MNT/repo' && $G fsck --full --strict"
	check "after remount: sqlite integrity_check ok (both databases)" bash -c "
		[ \"\$(sqlite3 '$MNT/db/rollback.sqlite' 'PRAGMA integrity_check;')\" = ok ] &&
		[ \"\$(sqlite3 '$MNT/db/wal.sqlite' 'PRAGMA integrity_check;')\" = ok ]"
	check "daemon alive" daemon_alive "$MNT"
else
	notok "remount"
fi
summary
