# shellcheck shell=bash
# Shared shell functions for scripts/demo, scripts/test and the integration
# tests. Source it with bash; it sets nothing but variables prefixed CK_ and
# functions prefixed ck_, and never changes the caller's shell options.
#
#   CK_ROOT       the repository root (found from this file's location)
#   CK_BUILD_DIR  the meson build directory (default: $CK_ROOT/build;
#                 override with the environment variable of the same name)

CK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CK_BUILD_DIR=${CK_BUILD_DIR:-$CK_ROOT/build}

# Every Debian package the build, the tests and the demo need. Keep one per
# line so that a diff shows what was added and why.
CK_PACKAGES=(
	gcc meson ninja-build pkg-config   # build
	libfuse3-dev fuse3                 # FUSE low-level API, fusermount3
	libssl-dev                         # OpenSSL 3: GCM, SIV, HKDF, key wrap
	libxxhash-dev                      # header checksums
	libcmocka-dev                      # unit tests
	libp11-kit-dev                     # PKCS#11 header (key providers)
	softhsm2 opensc                    # a real PKCS#11 token and pkcs11-tool for tests
	python3-cryptography               # independent check of the format vectors
	openssl                            # the example exec: key helper
	attr acl                           # setfattr/getfattr, setfacl in tests
	git sqlite3 tar rsync              # real tools run on a mount in tests
	python3                            # test helpers
	util-linux procps kmod xxd         # mountpoint, pgrep/ps, modprobe, xxd
	gdb                                # gcore: 52-secrets searches a dump of the daemon
)

# ck_say TEXT...: one progress line on stderr (stdout stays for results).
ck_say() { printf '==> %s\n' "$*" >&2; }

# ck_die TEXT...: print an error and exit 1.
ck_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ck_missing_packages [PKG...]: print the packages (CK_PACKAGES plus any
# given) that dpkg does not list as installed, one per line.
ck_missing_packages() {
	local p
	for p in "${CK_PACKAGES[@]}" "$@"; do
		dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null |
			grep -qx installed || printf '%s\n' "$p"
	done
}

# ck_install_packages [PKG...]: install whatever of CK_PACKAGES (plus the
# extra packages given) is missing. Idempotent and quiet: does nothing when
# all are present; runs 'apt-get update' only if a first install fails
# (a fresh machine may have no package lists yet). Needs root for apt-get.
ck_install_packages() {
	local missing log rc=0
	command -v dpkg-query >/dev/null 2>&1 ||
		{ ck_say "not a Debian system: install ${CK_PACKAGES[*]} yourself"; return 0; }
	missing=$(ck_missing_packages "$@" | tr '\n' ' ')
	missing=${missing% }
	[ -n "${missing// /}" ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		ck_say "missing packages: $missing"
		ck_die "run as root (or install them yourself: apt-get install $missing)"
	fi
	ck_say "installing packages: $missing"
	log=$(mktemp "${TMPDIR:-/tmp}/ck-apt.XXXXXX")
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	ck_apt_install $missing >"$log" 2>&1 || {
		apt-get update -qq >>"$log" 2>&1 &&
			ck_apt_install $missing >>"$log" 2>&1
	} || rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		ck_die "apt-get install failed for: $missing"
	fi
	rm -f "$log"
}

# The one apt-get command line; waits for the dpkg lock rather than failing
# when another script installs at the same time.
ck_apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends -o DPkg::Lock::Timeout=300 "$@" </dev/null
}

# ck_build: configure (once) and build with meson + ninja in CK_BUILD_DIR.
# The configure output goes to a log shown only on failure; ninja's own
# one-line-per-step output is kept.
# ck_install_build: `meson install` of $CK_BUILD_DIR into its prefix
# (/usr/local unless configured otherwise): the programs in sbin (where
# mount(8)'s `mount -t fuse.ckfs` finds ckfs: mount resets PATH before it
# runs mount.fuse3), mount.fuse.ckfs, the man pages, the KMIP helper and
# the example systemd units. Root only; quiet; fails loudly.
ck_install_build() {
	local log
	[ "$(id -u)" -eq 0 ] || { ck_say "not root: skipping meson install (mount -t fuse.ckfs needs it)"; return 0; }
	log=$(mktemp "${TMPDIR:-/tmp}/ck-install.XXXXXX")
	if ! meson install -C "$CK_BUILD_DIR" --no-rebuild --quiet >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		ck_die "meson install failed"
	fi
	rm -f "$log"
	ck_say "installed into $(meson introspect "$CK_BUILD_DIR" --buildoptions 2>/dev/null |
		python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])' 2>/dev/null || echo the prefix)"
}

ck_build() {
	local log
	if [ ! -f "$CK_BUILD_DIR/build.ninja" ]; then
		ck_say "configuring $CK_BUILD_DIR"
		log=$(mktemp "${TMPDIR:-/tmp}/ck-meson.XXXXXX")
		# A configure that failed half-way leaves a directory meson
		# will not set up again without --wipe.
		if ! meson setup "$CK_BUILD_DIR" "$CK_ROOT" \
				--buildtype=debugoptimized ${CK_MESON_OPTS:-} >"$log" 2>&1 &&
		   ! { [ -d "$CK_BUILD_DIR/meson-private" ] &&
		       meson setup --wipe "$CK_BUILD_DIR" "$CK_ROOT" \
				--buildtype=debugoptimized ${CK_MESON_OPTS:-} >"$log" 2>&1; }; then
			cat "$log" >&2
			rm -f "$log"
			ck_die "meson setup failed"
		fi
		rm -f "$log"
	fi
	ck_say "building in $CK_BUILD_DIR"
	ninja -C "$CK_BUILD_DIR" >&2 || ck_die "build failed"
}

# ck_fuse_usable: 0 if this machine can mount FUSE filesystems; otherwise
# prints the reason on stdout and returns 1 (tests then exit 77 with it).
ck_fuse_usable() {
	if [ ! -c /dev/fuse ]; then
		modprobe fuse >/dev/null 2>&1 || true
		[ -c /dev/fuse ] || { echo "no /dev/fuse on this machine"; return 1; }
	fi
	if [ ! -r /dev/fuse ] || [ ! -w /dev/fuse ]; then
		echo "/dev/fuse is not readable and writable by $(id -un)"
		return 1
	fi
	command -v fusermount3 >/dev/null 2>&1 ||
		{ echo "fusermount3 not installed (package fuse3)"; return 1; }
	return 0
}

# ck_wait_mounted MNT [SECONDS]: wait until MNT is a mount point.
ck_wait_mounted() {
	local mnt=$1 tries=$(( ${2:-10} * 10 ))
	while [ "$tries" -gt 0 ]; do
		mountpoint -q "$mnt" && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

# ck_unmount MNT [SECONDS]: unmount a ckfs mount we made and wait until it
# is gone (the daemon flushes and wipes its keys before it exits). Falls
# back to a lazy unmount if the mount stays busy.
ck_unmount() {
	local mnt=$1 tries=$(( ${2:-10} * 10 ))
	mountpoint -q "$mnt" || return 0
	while [ "$tries" -gt 0 ]; do
		fusermount3 -u "$mnt" 2>/dev/null && return 0
		mountpoint -q "$mnt" || return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	fusermount3 -uz "$mnt"
}
