#!/bin/bash
# Revocation on a real mount.
#  - explicit (ck-dep revoke): within 1 s a cached file fails with
#    EKEYREVOKED, an fd opened before fails, an mmap'ed page not yet faulted
#    is not served; the other DEP tree and the service tree keep working
#    (I/O loops that must see no error); latency measured.
#  - customer side, through each provider (file:, exec:, pkcs11:), with
#    -o key_ttl=3: every customer key of the DEP answers denied -> the
#    daemon's probe revokes within key_ttl + 2 s; latency measured.
#  - durable: after a remount the DEPs stay revoked and their data stays
#    unreadable although the availability keys still exist.
. "$(dirname "$0")/lib.sh"

for b in "$CKDEP" "$CKASSIGN"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
tnote() { echo "$*" >>"$T/notes"; }
KEY_TTL=3
HELPER_SRC=$SRC_ROOT/tools/ck-keyhelper-example
SOFTHSM_ENV=$SRC_ROOT/tests/providers/softhsm-env.sh
P11_MODULE=${CK_P11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

# results FILE: turn "RESULT ok|fail name: detail" lines into TAP lines.
results() {
	local st name
	while IFS= read -r line; do
		case $line in
		"RESULT ok "*) ok "${line#RESULT ok }" ;;
		"RESULT fail "*) notok "${line#RESULT fail }" ;;
		*) echo "# $line" ;;
		esac
	done <"$1"
}
start_io() { # start_io NAME DIR...: I/O loops (must see no error) on DIRs
	local name=$1 d i=0; shift
	rm -f "$T/stop.$name"; : >"$T/io.$name.log"
	IO_PIDS=()
	for d in "$@"; do
		i=$((i + 1))
		py "io_loop('$d', '$T/stop.$name', '$T/io.$name.log', tag='$name$i')" >"$T/io.$name.$i.out" 2>&1 &
		IO_PIDS+=($!)
	done
}
stop_io() { # stop_io NAME: stop the loops (in this shell: they are its children)
	local p
	touch "$T/stop.$1"
	for p in "${IO_PIDS[@]}"; do wait "$p" || echo "loop $p exited $?" >>"$T/io.$1.log"; done
}
io_clean() { # io_clean NAME: passes when no loop saw an error
	local name=$1 rc=0
	cat "$T"/io."$name".*.out
	if [ -s "$T/io.$name.log" ]; then echo "errors:"; head -n 10 "$T/io.$name.log"; rc=1; fi
	return $rc
}

check "ck-mkfs" mkfs_ckfs "$VOL"
sh_check "DEPs: depA (alice), depB (bob), depF (file: keys), depE (exec: keys)" '
for d in depA depB depF; do "$CKDEP" "$VOL" create $d >/dev/null || exit 1; done
install -m 0755 "$HELPER_SRC" "$T/ck-keyhelper" && mkdir -m 0700 "$T/kms" &&
"$T/ck-keyhelper" --create "$T/kms/e1.kek" && "$T/ck-keyhelper" --create "$T/kms/e2.kek" &&
"$CKDEP" "$VOL" create depE --customer-key "exec:$T/ck-keyhelper $T/kms/e1.kek" \
	--customer-key "exec:$T/ck-keyhelper $T/kms/e2.kek" >/dev/null'
HAVE_P11=0
if "$SOFTHSM_ENV" setup "$T/hsm" >"$T/hsm.log" 2>&1; then
	export SOFTHSM2_CONF=$T/hsm/softhsm2.conf      # the daemon needs it too
	P11Q="?module-path=$P11_MODULE&pin-source=file:$T/hsm/pin"
	check "DEP depP on two SoftHSM2 pkcs11: keys (AES aeskey2, AES aesrevoke)" "$CKDEP" "$VOL" create depP \
		--customer-key "pkcs11:token=cktest;object=aeskey2$P11Q" \
		--customer-key "pkcs11:token=cktest;object=aesrevoke$P11Q" && HAVE_P11=1
else
	echo "# SoftHSM2 not usable: $(tail -n 1 "$T/hsm.log"); pkcs11: revocation skipped"
	tnote "pkcs11: customer-side revocation SKIPPED (no SoftHSM2)"
fi
sh_check "assign mail/alice, mail/bob, mail/ffile, mail/fexec (and mail/fp11)" '
"$CKASSIGN" "$VOL" mail/alice depA && "$CKASSIGN" "$VOL" mail/bob depB &&
"$CKASSIGN" "$VOL" mail/ffile depF && "$CKASSIGN" "$VOL" mail/fexec depE &&
{ [ $HAVE_P11 = 0 ] || "$CKASSIGN" "$VOL" mail/fp11 depP; }'
mount_check "mount with -o key_ttl=$KEY_TTL" "$VOL" "$MNT" -o key_ttl=$KEY_TTL
fill() {
	local d
	mkdir -p "$MNT/docs" || return 1
	for d in alice bob ffile fexec fp11; do
		[ $d = fp11 ] && [ $HAVE_P11 = 0 ] && continue
		mkdir -p "$MNT/mail/$d" && head -c 100000 /dev/urandom >"$T/$d.ref" &&
			cp "$T/$d.ref" "$MNT/mail/$d/cached" || return 1
	done
	head -c 100000 /dev/urandom >"$T/docs.ref" && cp "$T/docs.ref" "$MNT/docs/cached" &&
	head -c $((8 << 20)) /dev/urandom >"$T/big.ref" && cp "$T/big.ref" "$MNT/mail/alice/big" &&
	echo "open before revoke" >"$MNT/mail/alice/open" && echo "rw before revoke" >"$MNT/mail/alice/rw" && sync
}
check "write files in every tree" fill
sh_check "everything reads back (and alice/cached is now in the page cache)" '
for d in alice bob ffile fexec; do cmp "$T/$d.ref" "$MNT/mail/$d/cached" || exit 1; done
[ $HAVE_P11 = 0 ] || cmp "$T/fp11.ref" "$MNT/mail/fp11/cached"'

# ------------------------------------------------------------ explicit revoke
start_io explicit "$MNT/mail/bob/io" "$MNT/docs/io"
sleep 1
cat >"$T/explicit.py" <<'EOF'
import errno, hashlib, mmap, os, subprocess, sys, time
sys.path.insert(0, os.environ["T"])
from ckt import *
A = mp("mail", "alice")
def res(good, name, detail=""):
    print("RESULT %s %s%s" % ("ok" if good else "fail", name, (": " + detail) if detail else ""), flush=True)

cached = os.path.join(A, "cached")
read_file(cached)                                   # into the page cache
fd = os.open(os.path.join(A, "open"), os.O_RDONLY)
os.read(fd, 5)
rw = os.open(os.path.join(A, "rw"), os.O_RDWR)
big_ref = open(os.path.join(os.environ["T"], "big.ref"), "rb").read()
child = subprocess.Popen([sys.executable, "-c", r'''
import hashlib, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
first = m[0:16]
print("ready", first.hex(), flush=True)
sys.stdin.readline()
try:
    b = m[6 << 20:(6 << 20) + 4096]
    print("READ", hashlib.sha256(b).hexdigest(), flush=True)
except Exception as e:
    print("EXC", type(e).__name__, e, flush=True)
''', os.path.join(A, "big")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
ready = child.stdout.readline().split()
res(ready[:1] == ["ready"] and ready[1] == big_ref[:16].hex(), "mmap of alice/big: first page faulted and right before the revoke")

t0 = time.time()
r = subprocess.run([os.environ["CKDEP"], VOL, "revoke", "depA"], capture_output=True, text=True)
t_cmd = time.time() - t0
res(r.returncode == 0, "ck-dep revoke depA exits 0 (%.3f s)" % t_cmd, r.stderr.strip())
try:
    lat = wait_errno(cached, (errno.EKEYREVOKED,), timeout=5.0, t0=t0, step=0.002)
    res(lat <= 1.0, "explicit revoke: cached alice/cached fails with EKEYREVOKED within 1 s (%.3f s after the command started)" % lat)
    with open(os.path.join(os.environ["T"], "notes"), "a") as f:
        f.write("explicit revoke latency (ck-dep revoke started -> cached read fails EKEYREVOKED): %.3f s (command itself %.3f s)\n" % (lat, t_cmd))
except AssertionError as e:
    res(False, "explicit revoke: cached alice/cached fails with EKEYREVOKED within 1 s", str(e))

def fails(name, fn, want=(errno.EKEYREVOKED,)):
    try:
        v = fn()
        res(False, name, "succeeded: %r" % (v[:40] if isinstance(v, (bytes, str)) else v,))
    except OSError as e:
        res(e.errno in want, name, "" if e.errno in want else "got %s" % ename(e.errno))

fails("the fd opened before the revoke: read fails with EKEYREVOKED", lambda: os.pread(fd, 100, 0))
fails("the fd opened before the revoke: read at the cached offset fails too", lambda: os.read(fd, 10))
fails("an O_RDWR fd opened before: write fails with EKEYREVOKED", lambda: os.pwrite(rw, b"after", 0))
fails("cat of the cached file fails again (no page cache served)", lambda: read_file(cached))
fails("open of another alice file fails", lambda: os.open(os.path.join(A, "big"), os.O_RDONLY))
fails("readdir of mail/alice fails", lambda: os.listdir(A))
fails("create in mail/alice fails", lambda: os.open(os.path.join(A, "new"), os.O_CREAT | os.O_WRONLY, 0o644))
fails("stat of an encrypted name in mail/alice fails (EKEYREVOKED or EACCES)",
      lambda: os.stat(os.path.join(A, "cached")), (errno.EKEYREVOKED, errno.EACCES))
fails("getxattr in mail/alice fails (EKEYREVOKED or EACCES)",
      lambda: os.getxattr(os.path.join(A, "cached"), "user.x"), (errno.EKEYREVOKED, errno.EACCES))

try:
    child.stdin.write("go\n"); child.stdin.flush()
except BrokenPipeError:
    pass
out = child.stdout.read().strip()
rc = child.wait()
served = out.startswith("READ") and out.split()[1] == hashlib.sha256(big_ref[6 << 20:(6 << 20) + 4096]).hexdigest()
desc = "killed by signal %d" % -rc if rc < 0 else "exit %d, said %r" % (rc, out[:80])
res(not served and (rc == -7 or "Error" in out), "mmap page not yet faulted is not served after the revoke (SIGBUS or EIO)", desc)
print("mmap child: " + desc)
with open(os.path.join(os.environ["T"], "notes"), "a") as f:
    f.write("mmap of a not-yet-faulted page after revoke: %s\n" % desc)
os.close(fd); os.close(rw)
EOF
T=$T MNT=$MNT VOL=$VOL "$PY" "$T/explicit.py" >"$T/explicit.out" 2>&1
results "$T/explicit.out"
sleep 0.5
stop_io explicit
check "I/O loops on mail/bob (depB) and docs/ (service) saw no error during the revoke" io_clean explicit
sh_check "bob and the service tree still read back" 'cmp "$T/bob.ref" "$MNT/mail/bob/cached" && cmp "$T/docs.ref" "$MNT/docs/cached"'
sh_check "show --json: depA revoked" '[ "$(dep_state "$VOL" depA)" = revoked ]'
sh_check "the audit log records the revocation by the operator" '"$CKDEP" "$VOL" audit | grep -E "revoked.*dep=$(dep_re "$VOL" depA).*actor=operator"'
check "daemon still running" daemon_alive "$MNT"

# ------------------------------------------------------------ customer side, through each provider
# t0 = when the last customer key was made to answer denied.
customer_revoke() { # NAME DEP DIR
	local name=$1 dep=$2 dir=$3
	T=$T MNT=$MNT DIR=$dir TTL=$KEY_TTL NAME=$name py '
t0 = float(open(os.path.join(T, "t0")).read())
p = mp("mail", os.environ["DIR"], "cached")
lat = wait_errno(p, (errno.EKEYREVOKED,), timeout=float(os.environ["TTL"]) + 10, t0=t0, step=0.01)
print("%s: unreadable %.3f s after the keys were denied" % (os.environ["NAME"], lat))
note("customer-side revocation via %s (key_ttl=%s): %.3f s" % (os.environ["NAME"], os.environ["TTL"], lat))
assert lat <= float(os.environ["TTL"]) + 2, "slower than key_ttl + 2 s"
expect_errno(errno.EKEYREVOKED, os.listdir, mp("mail", os.environ["DIR"]))'
}
start_io customer "$MNT/mail/bob/io2" "$MNT/docs/io2"

uris_of() { "$CKDEP" "$VOL" show "$1" --json | "$PY" -c 'import json,sys; [print(k["uri"]) for k in json.load(sys.stdin)["keys"] if k["role"] == sys.argv[1]]' "$2"; }
sleep 1
sh_check "file: delete both customer key files of depF" '
for u in $(uris_of depF customer); do rm -v "${u#file:}" || exit 1; done; date +%s.%N >"$T/t0"'
check "file: depF's tree stops being served within key_ttl + 2 s (EKEYREVOKED)" customer_revoke file: depF ffile

sh_check "exec: delete both helper key files of depE (the helper answers denied)" '
rm -v "$T/kms/e1.kek" "$T/kms/e2.kek" && date +%s.%N >"$T/t0" &&
printf "ckfs-keyhelper 1\nprobe\n" | "$T/ck-keyhelper" "$T/kms/e1.kek" | grep "^denied"'
check "exec: depE's tree stops being served within key_ttl + 2 s (EKEYREVOKED)" customer_revoke exec: depE fexec

if [ $HAVE_P11 = 1 ]; then
	cat >"$T/p11unwrap.py" <<'EOF'
# Set CKA_UNWRAP of an AES key to FALSE, the way an HSM operator revokes it.
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
UL = ctypes.c_ulong
class Attr(ctypes.Structure):
    _fields_ = [("type", UL), ("p", ctypes.c_void_p), ("len", UL)]
def ck(rv, what):
    if rv not in (0, 0x100):      # CKR_OK, CKR_USER_ALREADY_LOGGED_IN
        raise SystemExit("%s: rv 0x%x" % (what, rv))
ck(lib.C_Initialize(None), "C_Initialize")
n = UL(16); slots = (UL * 16)()
ck(lib.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(n)), "C_GetSlotList")
slot = None
for i in range(n.value):
    info = ctypes.create_string_buffer(1024)
    if lib.C_GetTokenInfo(slots[i], info) == 0 and info.raw[:32].rstrip(b" ") == b"cktest":
        slot = slots[i]
h = UL()
ck(lib.C_OpenSession(slot, UL(6), None, None, ctypes.byref(h)), "C_OpenSession")
ck(lib.C_Login(h, UL(1), b"1234", UL(4)), "C_Login")
cls = UL(4); label = sys.argv[2].encode()
t = (Attr * 2)(Attr(0, ctypes.cast(ctypes.byref(cls), ctypes.c_void_p), ctypes.sizeof(cls)),
               Attr(3, ctypes.cast(ctypes.c_char_p(label), ctypes.c_void_p), len(label)))
ck(lib.C_FindObjectsInit(h, t, UL(2)), "C_FindObjectsInit")
obj = UL(); cnt = UL()
ck(lib.C_FindObjects(h, ctypes.byref(obj), UL(1), ctypes.byref(cnt)), "C_FindObjects")
lib.C_FindObjectsFinal(h)
if cnt.value != 1:
    raise SystemExit("object %s not found" % sys.argv[2])
false = ctypes.c_ubyte(0)
a = Attr(0x107, ctypes.cast(ctypes.byref(false), ctypes.c_void_p), 1)    # CKA_UNWRAP
ck(lib.C_SetAttributeValue(h, obj, ctypes.byref(a), UL(1)), "C_SetAttributeValue")
lib.C_CloseSession(h); lib.C_Finalize(None)
print("CKA_UNWRAP of %s set to FALSE" % sys.argv[2])
EOF
	sh_check "pkcs11: destroy aeskey2 on the token and set CKA_UNWRAP of aesrevoke to FALSE" '
pkcs11-tool --module "$P11_MODULE" --token-label cktest --login --pin 1234 --delete-object --type secrkey --label aeskey2 >/dev/null 2>&1 &&
"$PY" "$T/p11unwrap.py" "$P11_MODULE" aesrevoke && date +%s.%N >"$T/t0"'
	check "pkcs11: depP's tree stops being served within key_ttl + 2 s (EKEYREVOKED)" customer_revoke pkcs11: depP fp11
fi
sleep 0.5
stop_io customer
check "I/O loops on bob and the service tree saw no error through the customer-side revocations" io_clean customer
sh_check "show --json: depF, depE (and depP) are revoked (recorded by the daemon)" '
for d in depF depE; do s=$(dep_state "$VOL" $d); echo "$d: $s"; [ "$s" = revoked ] || exit 1; done
[ $HAVE_P11 = 0 ] || [ "$(dep_state "$VOL" depP)" = revoked ]'
sh_check "the audit log records probe revocations" '
"$CKDEP" "$VOL" audit | grep -E "revoked.*dep=$(dep_re "$VOL" depF).*actor=probe" && "$CKDEP" "$VOL" audit | grep -E "revoked.*dep=$(dep_re "$VOL" depE).*actor=probe"'
sh_check "bob and the service tree still read back" 'cmp "$T/bob.ref" "$MNT/mail/bob/cached" && cmp "$T/docs.ref" "$MNT/docs/cached"'
check "daemon still running" daemon_alive "$MNT"
umount_check "unmount" "$MNT"

# ------------------------------------------------------------ durable
sh_check "the availability keys of the revoked DEPs still exist" '
for d in depA depF depE; do for u in $(uris_of $d availability); do ls -l "${u#file:}" || exit 1; done; done'
mount_check "remount (default key_ttl)" "$VOL" "$MNT"
sleep 0.5
py_check "after remount: every revoked DEP's tree is unreadable (EKEYREVOKED), bob and the service tree read" "
for d in ['alice', 'ffile', 'fexec'] + (['fp11'] if $HAVE_P11 else []):
    expect_errno(errno.EKEYREVOKED, os.listdir, mp('mail', d))
    expect_errno(errno.EKEYREVOKED, read_file, mp('mail', d, 'cached'))
eq(read_file(mp('mail', 'bob', 'cached')), read_file('$T/bob.ref'), 'bob')
eq(read_file(mp('docs', 'cached')), read_file('$T/docs.ref'), 'docs')"
sh_check "after remount: show --json still says revoked for each" '
for d in depA depF depE; do [ "$(dep_state "$VOL" $d)" = revoked ] || exit 1; done'
sh_check "no availability-key fallback was ever used for a revoked DEP" '! "$CKDEP" "$VOL" audit | grep -E "availability-key-fallback"'
check "recover is refused for a revoked DEP (even with the availability key present)" \
	one_line_error "$CKDEP" "$VOL" recover depA --customer-key "file:$T/new-customer.key"
sh_check "the exec: keys coming back does not un-revoke depE" '
"$T/ck-keyhelper" --create "$T/kms/e1.kek" && sleep 1 && [ "$(dep_state "$VOL" depE)" = revoked ] &&
"$PY" -c "import errno,os,sys
try: os.listdir(sys.argv[1]); sys.exit(1)
except OSError as e: sys.exit(0 if e.errno == errno.EKEYREVOKED else 1)" "$MNT/mail/fexec"'
umount_check "unmount" "$MNT"
check "audit log verifies" "$CKDEP" "$VOL" audit --verify
[ $HAVE_P11 = 1 ] && "$SOFTHSM_ENV" teardown "$T/hsm"
summary
