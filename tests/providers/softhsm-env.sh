#!/bin/sh
# A private SoftHSM2 token for the pkcs11: provider tests.
#
#   softhsm-env.sh setup DIR      make DIR (must not exist or be empty) with
#                                 softhsm2.conf, tokens/, pin files and keys
#   softhsm-env.sh teardown DIR   remove DIR again
#
# Nothing outside DIR is touched: the token directory is private and
# SOFTHSM2_CONF is exported to our own children only (the caller sets it
# for itself: DIR/softhsm2.conf). Exits 77 (skip) when SoftHSM2 or
# pkcs11-tool is missing and cannot be installed.
#
# Token "cktest", user PIN 1234, SO PIN 5678. Objects (label, id):
#   aeskey 01, aeskey2 03, aesrevoke 04, aesdel 05, aesdestroy 0a:
#       AES-256, generated in the token (wrap/unwrap allowed)
#   aesknown 08: AES-256 imported from DIR/aesknown.key (to check that the
#       token's wrap output is byte-for-byte RFC 5649)
#   dup 0c, dup 0d: two AES keys with one label (an ambiguous uri)
#   rsakey 02, rsakey2 06, rsarevoke 07, rsadestroy 0b: RSA-2048 pairs
#   eckey 0e: a P-256 pair (a key kind the provider does not support)
# Pin files (0600 unless said): pin "1234\n", pin-nonl "1234",
#   wrongpin "9999\n", pin-open "1234\n" (0644), pin-empty "".
set -eu

MODULE=${CK_P11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

have_tools() {
	command -v softhsm2-util >/dev/null 2>&1 &&
	command -v pkcs11-tool >/dev/null 2>&1 &&
	[ -e "$MODULE" ]
}

ensure_tools() {
	have_tools && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "softhsm-env: installing softhsm2 and opensc" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 opensc \
			>/dev/null 2>&1 || true
	fi
	if ! have_tools; then
		echo "softhsm-env: softhsm2 and opensc (pkcs11-tool) are not installed" \
		     "and cannot be installed here; skipping" >&2
		exit 77
	fi
}

p11() {
	pkcs11-tool --module "$MODULE" --token-label cktest --login --pin 1234 "$@" \
		>/dev/null 2>"$DIR/pkcs11-tool.err" || {
		echo "softhsm-env: pkcs11-tool $*: failed:" >&2
		cat "$DIR/pkcs11-tool.err" >&2
		exit 1
	}
}

setup() {
	ensure_tools
	umask 077
	mkdir -p "$DIR/tokens"
	chmod 700 "$DIR"
	cat > "$DIR/softhsm2.conf" <<EOF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
	SOFTHSM2_CONF=$DIR/softhsm2.conf
	export SOFTHSM2_CONF
	softhsm2-util --init-token --free --label cktest --pin 1234 --so-pin 5678 \
		>/dev/null

	for k in aeskey:01 aeskey2:03 aesrevoke:04 aesdel:05 aesdestroy:0a dup:0c dup:0d; do
		p11 --keygen --key-type AES:32 --label "${k%%:*}" --id "${k#*:}" --usage-wrap
	done
	head -c 32 /dev/urandom > "$DIR/aesknown.key"
	p11 --write-object "$DIR/aesknown.key" --type secrkey --key-type AES:32 \
		--label aesknown --id 08 --usage-wrap
	for k in rsakey:02 rsakey2:06 rsarevoke:07 rsadestroy:0b; do
		p11 --keypairgen --key-type rsa:2048 --label "${k%%:*}" --id "${k#*:}" \
			--usage-decrypt
	done
	p11 --keypairgen --key-type EC:prime256v1 --label eckey --id 0e

	printf '1234\n' > "$DIR/pin"
	printf '1234' > "$DIR/pin-nonl"
	printf '9999\n' > "$DIR/wrongpin"
	: > "$DIR/pin-empty"
	printf '1234\n' > "$DIR/pin-open"
	chmod 644 "$DIR/pin-open"
	rm -f "$DIR/pkcs11-tool.err"
}

teardown() {
	# Refuse to remove anything that is not one of our token directories.
	if [ -f "$DIR/softhsm2.conf" ] && [ -d "$DIR/tokens" ]; then
		rm -rf -- "$DIR"
	fi
}

[ $# -eq 2 ] || { echo "usage: $0 setup|teardown DIR" >&2; exit 2; }
DIR=$2
case $DIR in
/*) ;;
*) echo "softhsm-env: DIR must be absolute" >&2; exit 2 ;;
esac
case $1 in
setup) setup ;;
teardown) teardown ;;
*) echo "usage: $0 setup|teardown DIR" >&2; exit 2 ;;
esac
