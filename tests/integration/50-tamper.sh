#!/bin/bash
# Tampering with the backing store is detected: flipped bytes (ciphertext,
# nonce, tag, header), blocks swapped within a file, files swapped, a file's
# ciphertext copied over another file (same or other directory), truncation
# at and between block boundaries, appended blocks.  Each read gives EIO,
# never another file's data; the daemon stays up, logs it, and untouched
# files keep working.  A corrupt volume header, a missing or wrong key and a
# plain directory make ckfs refuse to mount with a one-line reason.
. "$(dirname "$0")/lib.sh"

HDR=$CK_HDR      # file header (from keys/format.h)
CB=$CK_CBLOCK    # 12-byte nonce + 4096 ciphertext + 16-byte tag
BS=$CK_BLOCK
blk() { echo $((HDR + $1 * CB)); }
echo "# format: header $HDR bytes, blocks $BS plaintext / $CB on disk"

mkfs_ckfs "$VOL" || { notok "ck-mkfs"; summary; exit 1; }
mount_ckfs "$VOL" "$MNT" || { notok "mount"; summary; exit 1; }

VICTIMS="flip_block flip_nonce flip_tag flip_hdr_lo flip_hdr_hi swap_blocks swap_a swap_b
swap_hdr_a swap_hdr_b copy_dst_same trunc_block trunc_hdr trunc_hdr_part trunc_short
trunc_mid append_block"
export VICTIMS
py '
os.makedirs(mp("d1")); os.makedirs(mp("d2")); os.makedirs(mp("d3")); os.makedirs(mp("d4"))
for i, n in enumerate(os.environ["VICTIMS"].split()):
    write_file(mp("d1", n), rbytes(3 * 4096 + 1000, 100 + i))
write_file(mp("d1", "copy_src"), rbytes(3 * 4096 + 1000, 1))
write_file(mp("d2", "copy_dst_other"), rbytes(3 * 4096 + 1000, 2))
for d in ("d1", "d2", "d3", "d4"):
    write_file(mp(d, "control"), rbytes(10000, 3))
' || { notok "write the victim files"; summary; exit 1; }

declare -A B=()
for n in $VICTIMS; do B[$n]=$(backing_of "$MNT/d1/$n" "$VOL"); done
B[copy_src]=$(backing_of "$MNT/d1/copy_src" "$VOL")
B[copy_dst_other]=$(backing_of "$MNT/d2/copy_dst_other" "$VOL")
B[d3control]=$(backing_of "$MNT/d3/control" "$VOL")
D3=$(dirname "${B[d3control]}")
D4=$(dirname "$(backing_of "$MNT/d4/control" "$VOL")")
missing=0
for k in "${!B[@]}"; do [ -f "${B[$k]}" ] || { echo "# no backing file for $k"; missing=1; }; done
check "located every victim's backing file by inode" test $missing -eq 0
sh_check "backing file size matches the format (header + 4 blocks, last one padded or not)" '
s=$(stat -c %s "${B[flip_block]}"); echo "backing size $s for 13288 plaintext bytes"
[ "$s" -eq $((HDR + 3 * CB + 1000 + 28)) ] || [ "$s" -eq $((HDR + 4 * CB)) ]'

umount_ckfs "$MNT"

# ------------------------------------------------------------ tamper offline
tamper() {
	py "
B = {k: v for k, v in (l.split('=', 1) for l in '''$(for k in "${!B[@]}"; do echo "$k=${B[$k]}"; done)'''.split())}
flip(B['flip_block'], $(blk 1) + 12 + 100)            # block 1 ciphertext
flip(B['flip_nonce'], $(blk 0) + 3)                   # block 0 nonce
flip(B['flip_tag'], -1)                               # last block tag
flip(B['flip_hdr_lo'], 8)                             # header, early field
flip(B['flip_hdr_hi'], 200)                           # header, late field
swap_ranges(B['swap_blocks'], $(blk 0), B['swap_blocks'], $(blk 1), $CB)
swap_ranges(B['swap_hdr_a'], 0, B['swap_hdr_b'], 0, $HDR)
os.truncate(B['trunc_block'], $(blk 2))               # at a block boundary
os.truncate(B['trunc_hdr'], $HDR)                     # header only
os.truncate(B['trunc_hdr_part'], 100)                 # inside the header
os.truncate(B['trunc_short'], $HDR + 10)              # shorter than any block
os.truncate(B['trunc_mid'], $(blk 1) + 100)           # inside block 1
with open(B['append_block'], 'ab') as f:
    f.write(rbytes($CB, 77))                          # one extra garbage block
" || return 1
	# Whole files: swap two, copy one over another in the same and another dir.
	mv "${B[swap_a]}" "${B[swap_a]}.tmp" && mv "${B[swap_b]}" "${B[swap_a]}" && mv "${B[swap_a]}.tmp" "${B[swap_b]}" &&
	cp "${B[copy_src]}" "${B[copy_dst_same]}" &&
	cp "${B[copy_src]}" "${B[copy_dst_other]}" &&
	# The backing entry copied under its own (encrypted) name into d3.
	cp -p "${B[copy_src]}" "$D3/" &&
	# Garbage names in d3, a corrupt directory ID in d4.
	: >"$D3/!!not-base64!!" && head -c 5000 /dev/urandom >"$D3/$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')" &&
	: >"$D3/.Lgarbage" &&
	py "flip('$D4/.ckfs.dir', 10)"
}
check "tamper with the backing files while unmounted" tamper

mount_ckfs "$VOL" "$MNT" || { notok "remount after tampering"; summary; exit 1; }
PID=$LAST_PID
LOG=$LAST_LOG

# eio_case NAME PATH [forbidden-file...]: reading PATH gives EIO, the daemon
# is alive, a new log line appeared, control files still read fine.
eio_case() {
	local name=$1 path=$2; shift 2
	local before after
	before=$(wc -l <"$LOG")
	py "
forb = [read_file(p) for p in '''$*'''.split()]
print(expect_eio('$path', forb))
" || return 1
	sleep 0.2
	after=$(wc -l <"$LOG")
	kill -0 "$PID" || { echo "daemon $PID died"; return 1; }
	[ "$after" -gt "$before" ] || { echo "no log line about $name"; return 1; }
	tail -n $((after - before)) "$LOG" | head -n 3 | sed 's/^/log: /'
	cmp -s "$MNT/d1/control" "$MNT/d2/control" && cmp -s "$MNT/d1/control" "$MNT/d3/control" ||
		{ echo "control files differ or unreadable"; return 1; }
	py "eq(read_file(mp('d1/control')), rbytes(10000, 3), 'control')"
}

check "flipped ciphertext byte in block 1: EIO, logged, daemon alive" eio_case flip_block "$MNT/d1/flip_block"
sh_check "the log line about the flipped block names the file" 'grep -F flip_block "$LOG"'
check "flipped nonce byte: EIO" eio_case flip_nonce "$MNT/d1/flip_nonce"
check "flipped tag byte of the last block: EIO" eio_case flip_tag "$MNT/d1/flip_tag"
check "flipped header byte (offset 8): EIO" eio_case flip_hdr_lo "$MNT/d1/flip_hdr_lo"
check "flipped header byte (offset 200): EIO" eio_case flip_hdr_hi "$MNT/d1/flip_hdr_hi"
check "two blocks swapped within a file: EIO" eio_case swap_blocks "$MNT/d1/swap_blocks"
check "two files' backing swapped: first one EIO" eio_case swap_a "$MNT/d1/swap_a"
check "two files' backing swapped: second one EIO" eio_case swap_b "$MNT/d1/swap_b"
check "two files' headers swapped: EIO" eio_case swap_hdr_a "$MNT/d1/swap_hdr_a"
check "ciphertext copied over another file in the same dir: EIO, never the source's data" \
	eio_case copy_dst_same "$MNT/d1/copy_dst_same" "$MNT/d1/copy_src"
check "ciphertext copied over a file in another dir: EIO, never the source's data" \
	eio_case copy_dst_other "$MNT/d2/copy_dst_other" "$MNT/d1/copy_src"
check "the copied file itself still reads fine" py 'eq(read_file(mp("d1/copy_src")), rbytes(3 * 4096 + 1000, 1), "copy_src")'
check "backing truncated at a block boundary: EIO" eio_case trunc_block "$MNT/d1/trunc_block"
check "backing truncated to the header: EIO" eio_case trunc_hdr "$MNT/d1/trunc_hdr"
check "backing truncated inside the header: EIO" eio_case trunc_hdr_part "$MNT/d1/trunc_hdr_part"
check "backing truncated 10 bytes after the header: EIO" eio_case trunc_short "$MNT/d1/trunc_short"
check "backing truncated inside a block: EIO" eio_case trunc_mid "$MNT/d1/trunc_mid"
# Bytes after the sealed size are never plaintext: the file reads exactly its
# own content, the daemon logs the extra bytes, ck-fsck reports them (80-fsck).
# (Refusing the file would turn every interrupted append into lost data.)
check "a garbage block appended: never returned, the file reads its own content" \
	py "eq(read_file(mp('d1/append_block')), rbytes(3 * 4096 + 1000, 116), 'append_block')"
sh_check "... and the daemon logged the bytes after the final block" \
	'grep -F "append_block" "$LOG" | grep -q "after the final block"'

garbage_names() {
	ls -la "$MNT/d3" >"$T/d3.ls" 2>&1; echo "ls d3 exit $?"; cat "$T/d3.ls"
	kill -0 "$PID" || { echo "daemon died"; return 1; }
	py "eq(read_file(mp('d3/control')), rbytes(10000, 3), 'control in d3')" || return 1
	! grep -F 'not-base64' "$T/d3.ls"
}
no_foreign_data() {
	py "
src = rbytes(3 * 4096 + 1000, 1)
seen = []
for n in os.listdir(mp('d3')):
    try:
        data = read_file(mp('d3', n))
    except OSError as e:
        seen.append('%s: %s' % (n[:20], ename(e.errno)))
        assert e.errno == errno.EIO, 'unexpected ' + ename(e.errno)
        continue
    seen.append('%s: %d bytes' % (n[:20], len(data)))
    assert data != src, 'entry %r of d3 returns the data of d1/copy_src' % n
print(seen)
"
}
check "a backing entry copied with its encrypted name into another directory never yields its data" no_foreign_data
check "garbage backing names: daemon survives, the good file reads, garbage not listed as is" garbage_names
corrupt_dirid() {
	py "
try:
    data = read_file(mp('d4/control'))
except OSError as e:
    assert e.errno == errno.EIO, 'expected EIO, got ' + ename(e.errno)
else:
    raise AssertionError('read through a corrupt directory ID succeeded: %d bytes' % len(data))
" || return 1
	kill -0 "$PID"
}
check "corrupt .ckfs.dir: reads in that directory fail with EIO, daemon survives" corrupt_dirid
check "daemon alive after all tamper reads" daemon_alive "$MNT"
check "untouched files in other directories still read" py '
for d in ("d1", "d2", "d3"):
    eq(read_file(mp(d, "control")), rbytes(10000, 3), d + "/control")
'
umount_ckfs "$MNT"; check "daemon exits 0 after the tamper reads" test $? -eq 0

# ------------------------------------------------------------ refuse to mount
MNT2=$T/mnt2
mkdir -p "$MNT2"
EXTRA_MOUNTS+=("$MNT2")
# refuse NAME ckfs-args...: ckfs -f must exit non-zero (not by a signal, not
# hang) without mounting, with a one-line reason on stderr.
refuse() {
	local out=$T/refuse.out rc lines
	timeout 20 "$CKFS" -f "$@" "$MNT2" >"$out" 2>&1; rc=$?
	if mountpoint -q "$MNT2"; then fusermount3 -u "$MNT2"; echo "it mounted"; return 1; fi
	lines=$(grep -c . "$out")
	echo "exit $rc, $lines line(s):"; cat "$out"
	[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -lt 128 ] && [ "$lines" -ge 1 ] && [ "$lines" -le 2 ]
}

cp -a "$VOL/.ckfs" "$T/ckfs-meta.bak"
py "flip('$VOL/.ckfs/volume', 40)"
check "corrupt .ckfs/volume: ckfs refuses with a one-line reason" refuse "$VOL"
cp "$T/ckfs-meta.bak/volume" "$VOL/.ckfs/volume"
: >"$VOL/.ckfs/volume"
check "empty .ckfs/volume: ckfs refuses with a one-line reason" refuse "$VOL"
cp "$T/ckfs-meta.bak/volume" "$VOL/.ckfs/volume"

mkdir -m 0700 "$T/keys.bak"
mv "$KEYS"/* "$T/keys.bak"/
check "missing key file: ckfs refuses with a one-line reason" refuse "$VOL"
# A wrong key: another volume's key file under this volume's key file name.
mkdir -m 0700 "$T/keys2"
CKFS_KEY_DIR=$T/keys2 "$MKFS" "$T/vol2" >/dev/null 2>&1
other=$(find "$T/keys2" -type f | head -n 1)
for k in "$T/keys.bak"/*; do cp "$other" "$KEYS/$(basename "$k")"; chmod 0600 "$KEYS/$(basename "$k")"; done
check "wrong key file: ckfs refuses with a one-line reason" refuse "$VOL"
rm -f "$KEYS"/*
mv "$T/keys.bak"/* "$KEYS"/

mkdir -p "$T/plain"; echo hello >"$T/plain/file"
check "a plain directory: ckfs refuses with a one-line reason" refuse "$T/plain"
check "a missing directory: ckfs refuses with a one-line reason" refuse "$T/does-not-exist"

if mount_ckfs "$VOL" "$MNT"; then
	check "after restoring header and key, the volume mounts and reads" \
		py 'eq(read_file(mp("d2/control")), rbytes(10000, 3), "control")'
else
	notok "mount after restoring header and key"
fi
summary
