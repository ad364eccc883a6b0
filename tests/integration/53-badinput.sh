#!/bin/bash
# The bad-input matrix: every command (ck-mkfs, ckfs, each ck-dep
# subcommand, ck-assign, ck-fsck) run with missing arguments, unknown
# options, a path that is not a volume, a corrupt volume, unusable key
# dirs and key files, malformed file:/pkcs11:/exec: URIs, unreachable
# providers, a wrong PIN file, huge and empty names. Each case must exit
# with the status its man page documents (never a signal), print exactly
# one lower-case "prog: message" line on stderr and nothing on stdout,
# and change nothing on disk (the volumes and key dirs are hashed before
# and after each case). The table is in badinput.py.
. "$(dirname "$0")/lib.sh"

for b in "$CKDEP" "$CKASSIGN" "$CKFS_BUILD/ck-fsck"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done

W=$T/w
mkdir -p "$W"
export B=$CKFS_BUILD W
export CKFS_KEY_DIR=$W/keys
export KEYS=$W/keys
mkdir -m 0700 "$KEYS"
export V=$W/vol BADV=$W/badvol PLAIN=$W/plain HELPERS=$W/helpers
EXTRA_MOUNTS+=("$MNT")

setup() {
	"$MKFS" -q "$V" && "$CKDEP" "$V" create depA >/dev/null && "$CKDEP" "$V" create depR >/dev/null &&
	"$CKDEP" "$V" create depP >/dev/null && "$CKASSIGN" "$V" mail/a depA >/dev/null &&
	"$CKASSIGN" "$V" mail/r depR >/dev/null && "$CKDEP" "$V" revoke depR >/dev/null &&
	"$CKDEP" "$V" revoke depP >/dev/null && "$CKDEP" "$V" purge depP --confirm depP >"$W/good.cert" || return 1
	mount_ckfs "$V" "$MNT" || return 1
	mkdir -p "$MNT/mail/a/cur" "$MNT/docs" && head -c 20000 /dev/urandom >"$MNT/mail/a/cur/m1" &&
		head -c 20000 /dev/urandom >"$MNT/docs/d1" || return 1
	umount_ckfs "$MNT" || return 1
	# A corrupt copy: one bit of the volume header's wrapped service key.
	cp -a "$V" "$BADV" && "$PY" -c "import sys; sys.path.insert(0, '$T'); from ckt import flip; flip('$BADV/.ckfs/volume', 90)" &&
	mkdir -p "$PLAIN" && echo "just a file" >"$PLAIN/file" &&
	head -c 72 /dev/urandom >"$W/garbage.key" && chmod 600 "$W/garbage.key" &&
	echo 1234 >"$W/pin" && chmod 600 "$W/pin" &&
	cp "$KEYS"/*.key "$W/open.key" && chmod 644 "$W/open.key" && mkdir -p "$W/dir" &&
	head -c 10000000 /dev/zero | tr '\0' 'a' >"$T/huge.cert" &&
	sed 's/"trees":[0-9]*/"trees":99/' "$W/good.cert" >"$W/edited.cert" && ! cmp -s "$W/good.cert" "$W/edited.cert" || return 1
	local kf; kf=$(basename "$(ls "$KEYS"/*.key)")
	for n in open dirmode corrupt isdir empty wrong; do
		mkdir -m 0700 "$W/keys-$n"
	done
	cp -p "$KEYS/$kf" "$W/keys-open/" && chmod 0644 "$W/keys-open/$kf" &&
	cp -p "$KEYS/$kf" "$W/keys-dirmode/" && chmod 0755 "$W/keys-dirmode" &&
	head -c 10 "$KEYS/$kf" >"$W/keys-corrupt/$kf" && chmod 600 "$W/keys-corrupt/$kf" &&
	mkdir -m 0700 "$W/keys-isdir/$kf" &&
	mkdir -m 0700 "$T/k2" && "$MKFS" -q --key-dir "$T/k2" "$T/vol2" && cp -p "$T"/k2/*.key "$W/keys-wrong/$kf" || return 1
	# exec: helpers
	mkdir -p "$HELPERS"
	install -m 0755 "$SRC_ROOT/tools/ck-keyhelper-example" "$HELPERS/ok"
	printf '#!/bin/sh\necho ok\n' >"$HELPERS/noexec"; chmod 0644 "$HELPERS/noexec"
	printf '#!/bin/sh\nexec sleep 30\n' >"$HELPERS/hang"
	printf '#!/bin/sh\nkill -SEGV $$\n' >"$HELPERS/crash"
	printf '#!/bin/sh\necho "what is this"\n' >"$HELPERS/garbage"
	printf '#!/bin/sh\necho "unavailable kms down"\n' >"$HELPERS/unavailable"
	printf '#!/bin/sh\necho "denied key revoked"\n' >"$HELPERS/denied"
	printf '#!/bin/sh\nhead -c 1000000 /dev/zero | tr "\\0" a\n' >"$HELPERS/flood"
	chmod 0755 "$HELPERS/hang" "$HELPERS/crash" "$HELPERS/garbage" "$HELPERS/unavailable" "$HELPERS/denied" "$HELPERS/flood"
}
check "set up: a volume (depA active with a tree, depR revoked, depP purged), a corrupt copy, bad key dirs, helpers" setup ||
	{ summary; exit 1; }
DEPA_KEY1=$("$CKDEP" "$V" show depA --json | "$PY" -c 'import json,sys; print([k["uri"] for k in json.load(sys.stdin)["keys"] if k["role"] == "customer"][0])')
export DEPA_KEY1

# pkcs11: a SoftHSM2 token for the wrong/missing PIN cases (outside $W).
SOFTHSM_ENV=$SRC_ROOT/tests/providers/softhsm-env.sh
if "$SOFTHSM_ENV" setup "$T/hsm" >"$T/hsm.log" 2>&1; then
	export SOFTHSM2_CONF=$T/hsm/softhsm2.conf HSM=$T/hsm
	export P11="pkcs11:token=cktest;object=aeskey?module-path=/usr/lib/softhsm/libsofthsm2.so"
	check "self-test: the token's good URI wraps (so its bad cases fail for their own reason)" \
		"$CKDEP" "$T/vol2" --key-dir "$T/k2" create p11ok --customer-key "$P11&pin-source=file:$T/hsm/pin"
else
	echo "pkcs11 cases skipped: $(tail -n 1 "$T/hsm.log")" >>"$T/notes"
fi

"$PY" "$HERE/badinput.py" >"$T/matrix.out" 2>&1
name= ; diagl=()
flush() {
	[ -n "$name" ] || return
	if [ "$st" = PASS ]; then ok "$name"; else notok "$name"; fi
	printf '%s\n' "${diagl[@]}" | grep . | sed 's/^# /#   /'
	name= ; diagl=()
}
while IFS= read -r line; do
	case $line in
	PASS\ *|FAIL\ *) flush; st=${line%% *}; name=${line#* } ;;
	"# "*" cases, "*" failed") flush; echo "$line" ;;
	*) diagl+=("$line") ;;
	esac
done <"$T/matrix.out"
flush
grep -q ' cases, ' "$T/matrix.out" || { notok "badinput.py ran to its end"; tail -n 20 "$T/matrix.out" | diag; }
[ -n "${SOFTHSM2_CONF:-}" ] && "$SOFTHSM_ENV" teardown "$T/hsm" >/dev/null 2>&1
summary
