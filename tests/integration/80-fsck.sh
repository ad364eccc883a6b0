#!/bin/bash
# ck-fsck: a volume written through a real mount (small, multi-block and
# sparse files, long names, symlinks, xattrs, hard links, a DEP tree)
# checks clean, in text and JSON, also after ck-assign --apply moved a
# tree under a DEP; then each corruption, made on a copy of
# the backing store, is found and named by its plaintext path with exit
# status 4; leftovers of interrupted operations (mkdir temp dir, orphan
# sidecar, trailing blocks of an interrupted truncate) are exit 4 without
# --repair, 1 with it, then 0; a revoked DEP's tree is skipped, not an
# error; a missing key directory is exit 8, bad usage 16.
. "$(dirname "$0")/lib.sh"

FSCK=$CKFS_BUILD/ck-fsck
DEP=$CKFS_BUILD/ck-dep
ASSIGN=$CKFS_BUILD/ck-assign
for b in "$FSCK" "$DEP" "$ASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
HDR=$CK_HDR
CB=$CK_CBLOCK
blk() { echo $((HDR + $1 * CB)); }
LONG=$(printf 'L%.0s' $(seq 230))             # a 230-byte name: stored as a long name

# run_fsck VOL [ARGS...]: runs ck-fsck; output in $T/fsck.out, status in $T/fsck.rc.
run_fsck() {
	local vol=$1; shift
	"$FSCK" "$@" "$vol" >"$T/fsck.out" 2>"$T/fsck.err"
	echo $? >"$T/fsck.rc"
}
# expect_fsck RC PATTERN VOL [ARGS...]: exit status RC and PATTERN (grep -E)
# in the output; shows the output either way.
expect_fsck() {
	local want=$1 pat=$2; shift 2
	run_fsck "$@"
	local rc; rc=$(cat "$T/fsck.rc")
	echo "ck-fsck $* -> exit $rc (want $want)"; cat "$T/fsck.out" "$T/fsck.err"
	[ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" "$T/fsck.out" "$T/fsck.err"; }
}
# copy_vol NAME: a copy of the volume (cp -a keeps sparse files and modes).
copy_vol() { rm -rf "$T/$1"; cp -a "$VOL" "$T/$1" && echo "$T/$1"; }
# in_copy COPY BACKINGPATH: the same backing file in the copy.
in_copy() { echo "$1${2#"$VOL"}"; }

# ------------------------------------------------------------ build a volume
mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
check "ck-dep creates dep contoso" "$DEP" "$VOL" create contoso
check "ck-assign mail/alice to contoso" "$ASSIGN" "$VOL" mail/alice contoso
mount_ckfs "$VOL" "$MNT" || { notok "mount"; summary; exit 1; }
export LONG
py_check "write small, multi-block, sparse, long-name files, symlinks, xattrs, hard links" '
write_file(mp("small"), b"hello\n")
write_file(mp("multi"), rbytes(3 * 4096 + 1000, 1))
write_file(mp("shrunk"), rbytes(3 * 4096 + 500, 2))
with open(mp("sparse"), "wb") as f:
    f.truncate(10 << 20)
    f.seek(5 << 20); f.write(b"middle")
os.makedirs(mp("d", "e"))
write_file(mp("d", os.environ["LONG"]), rbytes(5000, 3))
os.mkdir(mp("d", "e", os.environ["LONG"]))
write_file(mp("d", "e", os.environ["LONG"], "inner"), b"inner")
os.symlink("/etc/passwd", mp("lnk"))
os.symlink("t" * 2000, mp("d", "longtarget"))
os.setxattr(mp("small"), "user.colour", b"blue")
os.setxattr(mp("d"), "user.dir", b"x" * 300)
write_file(mp("linked"), rbytes(2 * 4096 + 10, 6))
os.link(mp("linked"), mp("d", "hard"))
os.link(mp("linked"), mp("d", "e", "hard2"))
os.makedirs(mp("sites", "emea", "sub"))
write_file(mp("sites", "emea", "sub", "report"), rbytes(3 * 4096, 7))
write_file(mp("sites", "emea", os.environ["LONG"]), rbytes(10, 8))
os.symlink("sub/report", mp("sites", "emea", "latest"))
os.setxattr(mp("sites", "emea", "sub", "report"), "user.owner", b"emea")
'
sleep 1.2       # the mount follows the tree record within a second
py_check "write into the DEP tree mail/alice" '
os.makedirs(mp("mail", "alice", "cur"))
write_file(mp("mail", "alice", "cur", "123"), rbytes(4 * 4096 + 7, 4))
write_file(mp("mail", "alice", "cur", os.environ["LONG"]), rbytes(100, 5))
os.setxattr(mp("mail", "alice", "cur", "123"), "user.flags", b"S")
os.symlink("../cur/123", mp("mail", "alice", "latest"))
'
B_multi=$(backing_of "$MNT/multi" "$VOL")
B_small=$(backing_of "$MNT/small" "$VOL")
B_shrunk=$(backing_of "$MNT/shrunk" "$VOL")
B_long=$(backing_of "$MNT/d/$LONG" "$VOL")
B_mail=$(backing_of "$MNT/mail/alice/cur/123" "$VOL")
B_linked=$(backing_of "$MNT/linked" "$VOL")
B_report=$(backing_of "$MNT/sites/emea/sub/report" "$VOL")
ROOTB=$(dirname "$B_small")
sh_check "located the backing files (the long name as .L + sidecar)" '
for f in "$B_multi" "$B_small" "$B_shrunk" "$B_long" "$B_mail" "$B_linked" "$B_report"; do [ -f "$f" ] || { echo "missing: $f"; exit 1; }; done
case $(basename "$B_long") in .L*) ;; *) echo "not a long-name entry: $B_long"; exit 1;; esac
[ -f "$(dirname "$B_long")/.N$(basename "$B_long" | cut -c3-)" ]'
# A shrink whose last step (cutting the backing file) a crash prevented:
# keep the blocks the truncate will cut, put them back afterwards.
cp "$B_shrunk" "$T/shrunk.before"
py_check "truncate a 4-block file to 100 bytes through the mount" 'os.truncate(mp("shrunk"), 100)'
if daemon_alive "$MNT"; then ok "the daemon is still up"; else notok "the daemon is still up"; show_log "$MNT"; fi
umount_ckfs "$MNT"; rc=$?
if [ $rc -eq 0 ]; then ok "unmount: the daemon exits 0"; else notok "unmount: the daemon exits 0 (got $rc)"; fi

# ------------------------------------------------------------ clean volume
check "ck-fsck: the volume is clean (exit 0)" expect_fsck 0 'clean' "$VOL"
check "ck-fsck --json: one document, no problems, counts, exit 0" expect_fsck 0 '' "$VOL" --json
py_check "the --json output parses and says clean" '
import json
d = json.load(open(os.environ["T"] + "/fsck.out"))
print(d)
assert d["exit"] == 0 and d["problems"] == [] and d["skipped"] == [], d
assert d["files"] >= 12 and d["dirs"] >= 7, d
assert d["volume"] == os.environ["VOL"]
' 
check "ck-fsck --help exits 0" "$FSCK" --help
sh_check "ck-fsck with a bad option or no volume exits 16" '
"$FSCK" --bogus "$VOL" >/dev/null 2>&1; a=$?; "$FSCK" >/dev/null 2>&1; b=$?
echo "bad option: $a, no volume: $b"; [ $a = 16 ] && [ $b = 16 ]'

# ------------------------------------------------------------ corruptions
C=$(copy_vol c-block)
py "flip('$(in_copy "$C" "$B_multi")', $(blk 1) + 40)"
check "flipped byte in a block: exit 4, names /multi and the block" \
	expect_fsck 4 '^/multi: block 1 failed authentication' "$C"

C=$(copy_vol c-linked)
py "flip('$(in_copy "$C" "$B_linked")', $(blk 0) + 40)"
check "flipped byte in a file with three links: reported once, under one of its names" \
	expect_fsck 4 '^(/linked|/d/hard|/d/e/hard2): block 0 failed authentication' "$C"
sh_check "... exactly one problem line" '[ "$(grep -c "block 0 failed" "$T/fsck.out")" = 1 ]'

C=$(copy_vol c-dep-block)
py "flip('$(in_copy "$C" "$B_mail")', $(blk 2) + 100)"
check "flipped byte in a DEP-tree block: exit 4, names /mail/alice/cur/123" \
	expect_fsck 4 '^/mail/alice/cur/123: block 2 failed' "$C"

C=$(copy_vol c-hdr)
py "flip('$(in_copy "$C" "$B_small")', 8)"
check "flipped byte in a file header: exit 4, names /small" \
	expect_fsck 4 '^/small: file header' "$C"

C=$(copy_vol c-side)
L=$(in_copy "$C" "$B_long")
rm -f "$(dirname "$L")/.N$(basename "$L" | cut -c3-)"
check "deleted long-name sidecar: exit 4, names /d and the sidecar" \
	expect_fsck 4 '^/d: entry .*sidecar .* is missing' "$C"

C=$(copy_vol c-append)
head -c 100 /dev/urandom >>"$(in_copy "$C" "$B_small")"
check "garbage appended to a file: exit 4, not fixable" \
	expect_fsck 4 '^/small: 100 bytes after the final block' "$C"
check "... and --repair leaves it (exit 4)" expect_fsck 4 '^/small: 100 bytes' "$C" --repair

C=$(copy_vol c-trunc)
py "
p = '$(in_copy "$C" "$B_multi")'
os.truncate(p, os.path.getsize(p) - $CB)"
check "backing file cut by one block: exit 4, /multi truncated" \
	expect_fsck 4 '^/multi: backing file is truncated' "$C"

C=$(copy_vol c-deprec)
py "import glob; flip(sorted(glob.glob('$C/.ckfs/deps/*'))[0], 50)"
check "corrupt DEP record: exit 4, record named, its tree skipped" \
	expect_fsck 4 '^\.ckfs/deps/[0-9a-f]{32}: dep record is corrupt' "$C"

C=$(copy_vol c-audit)
py "flip('$C/.ckfs/audit.log', 30)"
check "flipped byte in .ckfs/audit.log: exit 4" \
	expect_fsck 4 '^\.ckfs/audit\.log: audit log failed verification' "$C"

C=$(copy_vol c-volhdr)
py "flip('$C/.ckfs/volume', 40)"
check "flipped byte in the volume header: exit 4" expect_fsck 4 '^\.ckfs/volume: volume header' "$C"

C=$(copy_vol c-json)
py "flip('$(in_copy "$C" "$B_multi")', $(blk 2) + 40)"
run_fsck "$C" --json
py_check "--json reports the bad block with path, kind, detail, fixable" '
import json
d = json.load(open(os.environ["T"] + "/fsck.out"))
print(d)
assert d["exit"] == 4, d
p = [x for x in d["problems"] if x["path"] == "/multi"]
assert p and p[0]["kind"] == "block" and "block 2" in p[0]["detail"] and p[0]["fixable"] is False, d
'

# ------------------------------------------------------------ leftovers and --repair
C=$(copy_vol c-orphans)
CR=$(dirname "$(in_copy "$C" "$B_small")")
mkdir "$CR/.ckfs.tmp.x" && head -c 32 "$CR/.ckfs.dir" >"$CR/.ckfs.tmp.x/.ckfs.dir"
# A sidecar whose entry never came: a valid encoded name, hashed to its file name.
py "
import hashlib, base64
enc = base64.urlsafe_b64encode(os.urandom(230)).decode().rstrip('=')
h = base64.urlsafe_b64encode(hashlib.sha256(enc.encode()).digest()).decode().rstrip('=')
open('$CR/.N' + h, 'w').write(enc)"
check "orphan mkdir temp dir and orphan sidecar: exit 4 without --repair" \
	expect_fsck 4 'fixable with --repair' "$C"
sh_check "... nothing was removed without --repair" '[ -d "$CR/.ckfs.tmp.x" ] && ls "$CR"/.N* >/dev/null'
check "... exit 1 with --repair" expect_fsck 1 '\(fixed\)' "$C" --repair
check "... exit 0 on a re-run" expect_fsck 0 'clean' "$C"
sh_check "... the orphans are gone, the long name's sidecar is not" '
n=$(ls -a "$CR" | grep -c "^\.N" || true); echo "sidecars left in the root: $n"
m=$(ls -a "$(dirname "$(in_copy "$C" "$B_long")")" | grep -c "^\.N" || true); echo "sidecars in /d: $m"
[ ! -e "$CR/.ckfs.tmp.x" ] && [ "$n" = 0 ] && [ "$m" = 1 ]'

C=$(copy_vol c-tmpuser)
CR=$(dirname "$(in_copy "$C" "$B_small")")
mkdir "$CR/.ckfs.tmp.y" && echo data >"$CR/.ckfs.tmp.y/userfile"
check "a temp dir holding anything but ckfs metadata is reported, not removed" \
	expect_fsck 4 'holds entries other than ckfs metadata' "$C" --repair
sh_check "... and is still there" '[ -f "$CR/.ckfs.tmp.y/userfile" ]'

C=$(copy_vol c-trail)
S=$(in_copy "$C" "$B_shrunk")
sh_check "re-append the blocks the truncate cut (an interrupted shrink)" '
now=$(stat -c %s "$S"); echo "backing now $now bytes"; [ "$now" = $(blk 1) ] &&
tail -c +$((now + 1)) "$T/shrunk.before" >>"$S" && stat -c %s "$S"'
check "trailing authenticated blocks: exit 4, fixable" \
	expect_fsck 4 '^/shrunk: 3 blocks after the final block.*fixable' "$C"
check "... exit 1 with --repair" expect_fsck 1 '^/shrunk: .*\(fixed\)' "$C" --repair
check "... exit 0 on a re-run, backing file cut back" expect_fsck 0 'clean' "$C"
MNT2=$T/mnt2
if mount_ckfs "$C" "$MNT2"; then
	py_check "the repaired copy reads back the right data" "
eq(read_file('$MNT2/shrunk'), rbytes(3 * 4096 + 500, 2)[:100], 'shrunk')
eq(read_file('$MNT2/multi'), rbytes(3 * 4096 + 1000, 1), 'multi')
eq(read_file('$MNT2/mail/alice/cur/123'), rbytes(4 * 4096 + 7, 4), 'mail')"
	umount_ckfs "$MNT2"
else
	notok "mount the repaired copy"
fi

# ------------------------------------------------------------ apply
C=$(copy_vol c-apply)
INO=$(stat -c %i "$(in_copy "$C" "$B_report")")
check "ck-assign --apply moves sites/emea (service data) under contoso (on a copy)" \
	"$ASSIGN" --apply "$C" sites/emea contoso
check "after the apply the copy is clean, checked under the tree's keys" expect_fsck 0 'clean' "$C"
R=$(find "$C" -inum "$INO" -type f -print -quit)
py "flip('$R', $(blk 1) + 9)"
check "a flipped block in the applied tree is found under its plaintext path" \
	expect_fsck 4 '^/sites/emea/sub/report: block 1 failed' "$C"

# ------------------------------------------------------------ keys
C=$(copy_vol c-revoked)
check "ck-dep revoke contoso (on a copy)" "$DEP" "$C" revoke contoso
check "a revoked DEP's tree is skipped, not an error (exit 0)" \
	expect_fsck 0 '^/mail/alice: not checkable: dep "contoso" is revoked' "$C"
check "missing key directory: exit 8" \
	expect_fsck 8 'key directory' "$VOL" --key-dir "$T/no-such-keys"
sh_check "missing key directory (CKFS_KEY_DIR): exit 8, one line on stderr" '
CKFS_KEY_DIR=$T/no-such-keys "$FSCK" "$VOL" >/dev/null 2>"$T/e8"; rc=$?; cat "$T/e8"
[ $rc = 8 ] && [ "$(grep -c . "$T/e8")" = 1 ]'
check "not a volume: exit 8" expect_fsck 8 'not a ckfs volume' "$T"
check "the original volume is still clean" expect_fsck 0 'clean' "$VOL"

summary
