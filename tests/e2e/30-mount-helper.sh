#!/bin/bash
# The operator interface of mounting: `meson install` (into a DESTDIR under
# the test's temp dir) installs the binaries, the man pages, the mount(8)
# helper mount.fuse.ckfs (and mount.ckfs) and example systemd units; then
#  - the installed helper mounts by itself, drops fstab-only options, -f
#    only checks, bad input is a one-line error;
#  - `mount -t fuse.ckfs VOLUME MNT -o ...` and `mount -t ckfs` (mount(8)
#    runs /sbin/mount.fuse.ckfs or /sbin/mount.ckfs);
#  - `mount -T FSTAB MNT`, an fstab line with defaults,noauto,_netdev,nofail,
#    user,x-systemd...,comment=... and ckfs options, also with -o ro;
#  - without the helper, mount.fuse3 runs `ckfs` from mount's own PATH
#    (/usr/local/sbin:...: the caller's PATH is not used);
#  - every mount is written and read, unmounted with umount(8), and its
#    daemon exits and audits `unmounted`;
#  - the example units pass `systemd-analyze verify`, and the man pages
#    lint clean and mention the helper.
# mount(8) only looks for helpers in /sbin: the test puts symlinks there
# (and /usr/local/sbin/ckfs for the mount.fuse3 case) only where nothing
# exists, and removes exactly those in its EXIT trap.
. "$(dirname "$0")/../integration/lib.sh"

command -v mount >/dev/null && command -v umount >/dev/null || skip_all "mount/umount (util-linux) are not installed"
command -v meson >/dev/null || skip_all "meson is not installed"
[ -x /sbin/mount.fuse3 ] || [ -x /usr/sbin/mount.fuse3 ] || skip_all "mount.fuse3 (fuse3) is not installed"
# shellcheck source=../../scripts/lib.sh
. "$SRC_ROOT/scripts/lib.sh"
CKDEP=$CKFS_BUILD/ck-dep

LINKS=()   # symlinks this test made outside $T, removed on exit
unlink_ours() {
	local l
	for l in "${LINKS[@]+"${LINKS[@]}"}"; do
		[ -L "$l" ] && rm -f "$l"
	done
	LINKS=()
}
trap 'rc=$?; umount_all; unlink_ours; (exit $rc); cleanup' EXIT
# tmp_link TARGET LINK: make LINK -> TARGET unless LINK exists (then fail).
tmp_link() {
	local old
	# A dangling link into another run's (deleted) temp dir of this test
	# is a leftover of a run that was killed: ours to remove.
	if [ -L "$2" ] && [ ! -e "$2" ]; then
		old=$(readlink "$2")
		case $old in "${TMPDIR:-/tmp}/ckfs-$TEST_NAME."*) rm -f "$2" ;; esac
	fi
	if [ -e "$2" ] || [ -L "$2" ]; then
		echo "$2 already exists ($(ls -l "$2")); not touching it"
		return 1
	fi
	ln -s "$1" "$2" && LINKS+=("$2")
}
drop_link() { # drop_link LINK: remove a link made by tmp_link
	local l keep=()
	[ -L "$1" ] && rm -f "$1"
	for l in "${LINKS[@]+"${LINKS[@]}"}"; do [ "$l" = "$1" ] || keep+=("$l"); done
	LINKS=("${keep[@]+"${keep[@]}"}")
}

# ------------------------------------------------------------ meson install
opt() { meson introspect "$CKFS_BUILD" --buildoptions | "$PY" -c '
import json, sys
print({o["name"]: o["value"] for o in json.load(sys.stdin)}[sys.argv[1]])' "$1"; }
PREFIX=$(opt prefix); SBIN=$(opt sbindir); DATA=$(opt datadir); MAN=$(opt mandir); LIBEXEC=$(opt libexecdir)
case $SBIN in /*) ;; *) SBIN=$PREFIX/$SBIN ;; esac
case $LIBEXEC in /*) ;; *) LIBEXEC=$PREFIX/$LIBEXEC ;; esac
case $DATA in /*) ;; *) DATA=$PREFIX/$DATA ;; esac
case $MAN in /*) ;; *) MAN=$PREFIX/$MAN ;; esac
DEST=$T/dest
DSBIN=$DEST$SBIN
EXAMPLES=$DEST$DATA/doc/ckfs/examples/systemd
check "meson install --destdir (prefix $PREFIX)" meson install -C "$CKFS_BUILD" --destdir "$DEST" --no-rebuild --quiet
sh_check "installed: the five programs, mount.fuse.ckfs (+ mount.ckfs link), the five man pages, the example units, kmip-provider" '
for p in ckfs ck-mkfs ck-dep ck-assign ck-fsck mount.fuse.ckfs; do [ -f "$DSBIN/$p" ] && [ -x "$DSBIN/$p" ] || { echo "missing $DSBIN/$p"; exit 1; }; done
[ "$(readlink "$DSBIN/mount.ckfs")" = mount.fuse.ckfs ] || { echo "mount.ckfs is not a link to mount.fuse.ckfs"; exit 1; }
for m in ckfs ck-mkfs ck-dep ck-assign ck-fsck; do [ -f "$DEST$MAN/man8/$m.8" ] || { echo "missing man8/$m.8"; exit 1; }; done
[ -f "$EXAMPLES/srv-ckfs.mount" ] && [ -f "$EXAMPLES/ckfs@.service" ] &&
grep -q "^ExecStart=$SBIN/ckfs " "$EXAMPLES/ckfs@.service" && ! grep -q @SBINDIR@ "$DSBIN/mount.fuse.ckfs" &&
[ -x "$DEST$LIBEXEC/ckfs/kmip-provider" ]'
HELPER=$DSBIN/mount.fuse.ckfs

# ------------------------------------------------------------ the helper itself
check "ck-mkfs (the installed one)" "$DSBIN/ck-mkfs" "$VOL"
sh_check "mount.fuse.ckfs -f only checks: prints the ckfs command with fstab-only options dropped" '
out=$("$HELPER" "$VOL" "$MNT" -f -o defaults,noauto,_netdev,nofail,user,users,nouser,owner,group,user=bob,comment=x,x-systemd.automount,key_ttl=5,allow_other 2>&1) || exit 1
echo "$out"; [ "$out" = "mount.fuse.ckfs: $DSBIN/ckfs $VOL $MNT -o key_ttl=5,allow_other" ] && ! mountpoint -q "$MNT"'
one_line() { # one_line CMD...: fails (exit 1..127) with one "prog: lowercase" line on stderr
	local rc n
	"$@" >"$T/ol.out" 2>"$T/ol.err"; rc=$?
	n=$(grep -c . "$T/ol.err"); echo "exit $rc; stderr ($n lines):"; cat "$T/ol.err"
	[ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$n" -eq 1 ] && grep -qE '^[a-z][a-z.-]*: [a-z/"]' "$T/ol.err"
}
check "bad input: another type (-t nfs) is a one-line error" one_line "$HELPER" "$VOL" "$MNT" -t nfs
check "bad input: a third argument is a one-line error" one_line "$HELPER" "$VOL" "$MNT" extra
check "bad input: not a volume is ckfs's one-line error (exit 2)" sh -c '
"$1" "$2" "$3" -o key_dir="$4" 2>"$5"; rc=$?; cat "$5"; [ $rc -eq 2 ] && [ "$(grep -c . "$5")" -eq 1 ]' _ "$HELPER" "$T" "$MNT" "$KEYS" "$T/nv.err"
check "bad input: without arguments: usage and an error, exit 1" sh -c '"$1" 2>&1; [ $? -eq 1 ]' _ "$HELPER"

# mounted_pid: the PID of the daemon serving $VOL, from the last `mounted`
# audit record; wait_gone PID: the daemon exits (10 s) and audits unmounted.
mounted_pid() { "$CKDEP" "$VOL" audit | awk '$5 == "mounted" { sub("pid=", "", $4); p = $4 } END { print p }'; }
wait_gone() {
	local i
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$1" 2>/dev/null || { echo "daemon $1 still running"; return 1; }
	"$CKDEP" "$VOL" audit | grep -E "pid=$1 unmounted .*result=ok"
}
echo 0 >"$T/n"
# use_mount: write a new file, read it and every earlier one back (the
# count is kept in a file: checks run in subshells); print the mount line.
use_mount() {
	local N
	N=$(($(cat "$T/n") + 1)); echo "$N" >"$T/n"
	head -c $((50000 + N * 1000)) /dev/urandom >"$T/ref.$N" && cp "$T/ref.$N" "$MNT/file.$N" || return 1
	local i
	for i in $(seq "$N"); do cmp "$T/ref.$i" "$MNT/file.$i" || return 1; done
	grep -E "^ckfs:$VOL $MNT fuse.ckfs " /proc/mounts
}
# umount_daemon NAME: umount(8), then the daemon exits and audits it.
umount_daemon() {
	local pid
	pid=$(mounted_pid)
	if umount "$MNT" && ! mountpoint -q "$MNT" && wait_gone "$pid" >"$T/gone.out" 2>&1; then
		ok "$1"
	else
		notok "$1"; diag <"$T/gone.out"
		mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
	fi
}
EXTRA_MOUNTS+=("$MNT")

check "the installed mount.fuse.ckfs mounts (fstab-only options dropped)" "$HELPER" "$VOL" "$MNT" \
	-o "key_dir=$KEYS,_netdev,nofail,allow_other"
sh_check "write and read a file; /proc/mounts shows fuse.ckfs with allow_other" 'use_mount | grep allow_other'
umount_daemon "umount(8) unmounts it; the daemon exits and audits unmounted"

# ------------------------------------------------------------ mount(8) with /sbin/mount.fuse.ckfs
if tmp_link "$HELPER" /sbin/mount.fuse.ckfs >"$T/link.out" 2>&1 &&
   tmp_link "$DSBIN/mount.ckfs" /sbin/mount.ckfs >>"$T/link.out" 2>&1; then
	ok "mount(8) helpers linked for the test: /sbin/mount.fuse.ckfs -> $HELPER, /sbin/mount.ckfs"
	check "mount -t fuse.ckfs VOLUME MNT -o key_dir=...,key_ttl=5" mount -t fuse.ckfs "$VOL" "$MNT" -o "key_dir=$KEYS,key_ttl=5"
	sh_check "write and read through it" 'use_mount'
	umount_daemon "umount; the daemon exits"
	check "mount -t ckfs (mount.ckfs) works too" mount -t ckfs "$VOL" "$MNT" -o "key_dir=$KEYS"
	sh_check "write and read through it" 'use_mount'
	umount_daemon "umount; the daemon exits"

	printf '# a temporary fstab\n%s %s fuse.ckfs defaults,noauto,_netdev,nofail,user,key_dir=%s,key_ttl=5,x-systemd.requires=network-online.target,comment=ckfs-test 0 0\n' \
		"$VOL" "$MNT" "$KEYS" >"$T/fstab"
	check "mount -T FSTAB MNT (defaults,noauto,_netdev,nofail,user,x-systemd...,comment=...)" mount -T "$T/fstab" "$MNT"
	sh_check "write and read; the user option's noexec,nosuid,nodev reached the mount" '
use_mount | tee /dev/stderr | grep -E " [^ ]*noexec[^ ]* " | grep nosuid | grep -q nodev'
	umount_daemon "umount; the daemon exits"
	check "mount -T FSTAB MNT -o ro: mounted read-only" mount -T "$T/fstab" "$MNT" -o ro
	py_check "reads work, writes fail with EROFS" "
expect_errno(errno.EROFS, write_file, mp('new'), b'x')
assert read_file(mp('file.1')) == open(os.path.join(T, 'ref.1'), 'rb').read()"
	umount_daemon "umount; the daemon exits"
	drop_link /sbin/mount.fuse.ckfs; drop_link /sbin/mount.ckfs
else
	notok "mount(8) helpers linked for the test (/sbin/mount.fuse.ckfs, /sbin/mount.ckfs)"; diag <"$T/link.out"
fi

# ------------------------------------------------------------ without the helper: mount.fuse3 + PATH
sh_check "without /sbin/mount.fuse.ckfs, mount(8) resets PATH: a ckfs only in the caller's PATH is not found" '
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
	[ -e "$d/ckfs" ] && { echo "a ckfs is installed in $d: nothing to show"; exit 0; }
done
[ ! -e /sbin/mount.fuse.ckfs ] || { echo "/sbin/mount.fuse.ckfs exists"; exit 0; }
PATH=$DSBIN:$PATH mount -t fuse.ckfs "$VOL" "$MNT" -o "key_dir=$KEYS" 2>&1; rc=$?
mountpoint -q "$MNT" && { umount "$MNT"; exit 1; }; [ $rc -ne 0 ]'
if [ ! -e /sbin/mount.fuse.ckfs ] && tmp_link "$DSBIN/ckfs" /usr/local/sbin/ckfs >"$T/link.out" 2>&1; then
	check "with ckfs in /usr/local/sbin (prefix /usr/local), mount.fuse3 runs it: mount -t fuse.ckfs ... -o _netdev" \
		mount -t fuse.ckfs "$VOL" "$MNT" -o "key_dir=$KEYS,_netdev,nofail"
	sh_check "write and read through it" 'use_mount'
	umount_daemon "umount; the daemon exits"
	drop_link /usr/local/sbin/ckfs
else
	echo "# mount.fuse3 + PATH case not run: $(cat "$T/link.out" 2>/dev/null)"
	echo "mount.fuse3 + /usr/local/sbin case not run (something is installed there)" >>"$T/notes"
fi

# ------------------------------------------------------------ systemd units, man pages
SDA=$(command -v systemd-analyze || true)
if [ -z "$SDA" ]; then
	(ck_install_packages systemd) >"$T/apt.log" 2>&1
	SDA=$(command -v systemd-analyze || true)
fi
if [ -n "$SDA" ]; then
	mkdir -p "$T/units"
	cp "$EXAMPLES/srv-ckfs.mount" "$T/units/"
	# The template as an instance, its programs pointing into the DESTDIR.
	sed "s|$SBIN/|$DSBIN/|g" "$EXAMPLES/ckfs@.service" >"$T/units/ckfs@test.service"
	check "systemd-analyze verify srv-ckfs.mount: no warning" sh -c '
cd "$1" && out=$("$2" verify --man=no ./srv-ckfs.mount 2>&1); rc=$?; echo "$out"; [ $rc -eq 0 ] && [ -z "$out" ]' _ "$T/units" "$SDA"
	check "systemd-analyze verify ckfs@.service (as ckfs@test.service): no warning" sh -c '
cd "$1" && out=$("$2" verify --man=no ./ckfs@test.service 2>&1); rc=$?; echo "$out"; [ $rc -eq 0 ] && [ -z "$out" ]' _ "$T/units" "$SDA"
	sh_check "systemd-analyze verify catches a broken unit (the check can fail)" '
sed "s/^Type=forking/Type=forked/" "$T/units/ckfs@test.service" >"$T/units/ckfs@bad.service"
cd "$T/units" && out=$("$SDA" verify --man=no ./ckfs@bad.service 2>&1); echo "$out"; [ -n "$out" ]'
else
	echo "systemd-analyze not available (package systemd): units not verified" >>"$T/notes"
fi
if command -v man >/dev/null; then
	sh_check "man --warnings -l docs/*.8: no warnings" '
out=$(cd "$SRC_ROOT" && for p in docs/*.8; do man --warnings -l "$p" 2>&1 >/dev/null | sed "s|^|$p: |"; done); echo "$out"; [ -z "$out" ]'
	sh_check "the installed ckfs(8) describes mount.fuse.ckfs and fstab" '
txt=$(MANWIDTH=200 man -l "$DEST$MAN/man8/ckfs.8" 2>/dev/null); echo "$txt" | grep -E "mount\.fuse\.ckfs" && echo "$txt" | grep -E "fstab"'
else
	echo "man (man-db) not installed: pages not linted" >>"$T/notes"
fi
summary
