#!/bin/bash
# Scale-out over a real distributed engine: a single-brick GlusterFS volume
# on loopback, started and torn down here, mounted twice (one GlusterFS
# client per "host"), with one ckfs daemon over each client mount; then the
# core of 95-scaleout.sh (cross-mount workload, explicit and customer-side
# revoke with latency per mount, live DEP create/assign, roll --dep-key and
# --apply under load, second apply refused, record race, audit chain) runs
# on it with two hosts.
#
# Engine set-up (everything private to this test's temp dir except port
# 24007 and the brick's socket under /var/run/gluster, removed afterwards):
#   glusterd -N with its own glusterd.vol (working, run and log dirs, CLI
#   socket), bound to 127.0.0.2 (the gluster CLI refuses 127.0.0.1 and
#   localhost as brick hosts; 127.0.0.2 is loopback too); volume created
#   with `force` (brick on the root filesystem); client-side caches that
#   break coherence between two clients turned off; each client mounted
#   with attribute/entry/negative timeouts 0 and direct-io-mode=enable
#   (see docs/SHARED-STORAGE.md: without it a client serves stale pages of
#   a file another client changed, which ckfs detects as EIO).
#
# Exits 77 with the reason when the engine cannot run here (no glusterd,
# port taken, glusterd or the brick does not start, mount fails), after
# checking whether an NFS export on loopback would be possible instead.

set -u
TEST_NAME=$(basename "$0" .sh)
HERE=$(cd "$(dirname "$0")" && pwd)

skip() {
	echo "1..0 # SKIP $*"
	echo "$TEST_NAME: skipped: $*" >&2
	exit 77
}
nfs_reason() {
	if grep -qw nfsd /proc/filesystems 2>/dev/null; then
		echo "nfsd is available in this kernel (an NFS export on loopback could be tried)"
	elif modprobe -n nfsd >/dev/null 2>&1; then
		echo "nfsd is a loadable module here"
	else
		echo "NFS on loopback is not possible either: no nfsd in /proc/filesystems and no nfsd module ($(uname -r))"
	fi
}

[ "$(id -u)" = 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
[ -n "${CKFS_BUILD:-}" ] || { echo "$TEST_NAME: CKFS_BUILD is not set" >&2; exit 2; }

if ! command -v glusterd >/dev/null || ! command -v mount.glusterfs >/dev/null; then
	if [ -z "${CK_NO_INSTALL:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq glusterfs-server glusterfs-client \
			>/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 &&
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq glusterfs-server glusterfs-client >/dev/null 2>&1; }
	fi
	command -v glusterd >/dev/null && command -v mount.glusterfs >/dev/null ||
		skip "glusterfs-server/glusterfs-client are not installed and could not be installed; $(nfs_reason)"
fi
GVER=$(glusterd --version 2>/dev/null | head -n 1)
if (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -qE '[:.]24007[[:space:]]'; then
	skip "TCP port 24007 is in use (another glusterd runs here); $(nfs_reason)"
fi

T_ENGINE=$(date +%s)
G=$(mktemp -d "${TMPDIR:-/tmp}/ckfs-gluster.XXXXXX")
SNAPS_EXISTED=$([ -d /var/run/gluster/snaps ] && echo 1)
GVOL=ckso$$
GLUSTERD_PID=
BRICK_SOCK=
BRICK_PID=
GL() { timeout 120 gluster --mode=script --glusterd-sock="$G/cli.socket" --log-file="$G/log/cli.log" "$@"; }

teardown() {
	local m
	for m in "$G/c1" "$G/c2"; do
		mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	if [ -n "$GLUSTERD_PID" ] && kill -0 "$GLUSTERD_PID" 2>/dev/null; then
		[ -S "$G/cli.socket" ] && { GL volume stop "$GVOL" force >/dev/null 2>&1; GL volume delete "$GVOL" >/dev/null 2>&1; }
	fi
	# The brick process (if the stop did not end it), then glusterd: only ours.
	local f p
	for f in "$G"/run/vols/"$GVOL"/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		if [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--volfile-id $GVOL."; then
			kill "$p" 2>/dev/null
		fi
	done
	if [ -n "$GLUSTERD_PID" ]; then
		kill "$GLUSTERD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$GLUSTERD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$GLUSTERD_PID" 2>/dev/null
		wait "$GLUSTERD_PID" 2>/dev/null
	fi
	[ -n "$BRICK_SOCK" ] && rm -f "$BRICK_SOCK"
	# glusterd makes /var/run/gluster/snaps whatever its run directory is.
	[ -z "$SNAPS_EXISTED" ] && rmdir /var/run/gluster/snaps 2>/dev/null
	if [ -n "${KEEP_TMP:-}" ]; then echo "# gluster dir kept: $G" >&2
	elif ! grep -qF " $G/" /proc/mounts; then rm -rf "$G"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- glusterd
mkdir -p "$G/wd" "$G/run" "$G/log" "$G/brick" "$G/c1" "$G/c2"
cat >"$G/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $G/wd
    option run-directory $G/run
    option logging-directory $G/log
    option glusterd-sockfile $G/cli.socket
    option transport-type socket
    option transport.socket.bind-address 127.0.0.2
    option transport.socket.listen-port 24007
    option transport.socket.keepalive-time 10
    option transport.socket.keepalive-interval 2
    option transport.socket.read-fail-log off
    option ping-timeout 0
    option event-threads 1
    option max-port 60999
end-volume
EOF
( cd "$G" && exec glusterd -N -f "$G/glusterd.vol" -p "$G/glusterd.pid" -l "$G/log/glusterd.log" \
	-S "$G/glusterd.socket" ) >"$G/glusterd.out" 2>&1 &
GLUSTERD_PID=$!
for _ in $(seq 150); do
	[ -S "$G/cli.socket" ] && GL volume list >/dev/null 2>&1 && break
	kill -0 "$GLUSTERD_PID" 2>/dev/null || break
	sleep 0.1
done
if ! kill -0 "$GLUSTERD_PID" 2>/dev/null || ! GL volume list >/dev/null 2>&1; then
	why=$(grep -E '\] (E|C) \[' "$G/log/glusterd.log" 2>/dev/null | tail -n 2 | cut -c1-300 | tr '\n' ' ')
	skip "glusterd ($GVER) did not start here: ${why:-$(tail -n 2 "$G/glusterd.out")}; $(nfs_reason)"
fi
echo "# engine: $GVER; glusterd PID $GLUSTERD_PID (no systemd: started in the foreground, private dirs under $G)"

# ---------------------------------------------------------------- volume
if ! out=$(GL volume create "$GVOL" "127.0.0.2:$G/brick/b0" force 2>&1); then
	skip "gluster volume create failed: $out; $(nfs_reason)"
fi
# Two clients must see each other's changes: no client-side data/metadata
# caches, no write-behind (close must mean the data is on the brick).
for o in performance.quick-read performance.io-cache performance.read-ahead performance.readdir-ahead \
	performance.open-behind performance.stat-prefetch performance.write-behind performance.flush-behind \
	performance.nl-cache; do
	GL volume set "$GVOL" "$o" off >/dev/null 2>&1 || echo "# note: volume set $o off failed"
done
if ! out=$(GL volume start "$GVOL" 2>&1); then
	why=$(grep -E '\] E \[' "$G/log/glusterd.log" | tail -n 2 | cut -c1-300 | tr '\n' ' ')
	skip "gluster volume start failed: $out ($why); $(nfs_reason)"
fi
for f in "$G"/run/vols/"$GVOL"/*.pid; do [ -f "$f" ] && BRICK_PID=$(cat "$f"); done
[ -n "$BRICK_PID" ] && BRICK_SOCK=$(tr '\0' '\n' <"/proc/$BRICK_PID/cmdline" 2>/dev/null | sed -n '/^-S$/{n;p}')
echo "# volume $GVOL: one brick 127.0.0.2:$G/brick/b0 (brick PID ${BRICK_PID:-?})"

GOPTS="attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable"
for c in c1 c2; do
	if ! out=$(mount -t glusterfs -o "log-file=$G/log/$c.log,$GOPTS" "127.0.0.2:/$GVOL" "$G/$c" 2>&1) ||
		! mountpoint -q "$G/$c"; then
		skip "mount -t glusterfs 127.0.0.2:/$GVOL failed: $out $(tail -n 2 "$G/log/$c.log" 2>/dev/null | tr '\n' ' '); $(nfs_reason)"
	fi
done
echo hello >"$G/c1/probe" && [ "$(cat "$G/c2/probe" 2>/dev/null)" = hello ] ||
	skip "the two GlusterFS client mounts do not see each other's files"
rm -f "$G/c1/probe"
echo "# two GlusterFS clients: $G/c1 and $G/c2 (-o $GOPTS); engine up in $(( $(date +%s) - T_ENGINE )) s"

# ---------------------------------------------------------------- ckfs on it
# Every file operation is a round trip to the brick (milliseconds on a busy
# 2-CPU machine): the record race and the applied tree are smaller than on
# a local directory (budget: 10 minutes in all), and the explicit revoke
# must reach every mount within key_ttl (3 s) rather than 1 s.
ENV=(CK_SCALEOUT_VOLS="$G/c1/vol $G/c2/vol" CK_SCALEOUT_HOSTS=2 CK_SCALEOUT_PHASE1=0
	CK_SCALEOUT_RACE="${CK_SCALEOUT_RACE:-6}" CK_SCALEOUT_APPLY_FILES="${CK_SCALEOUT_APPLY_FILES:-120}"
	CK_SCALEOUT_SMALL=1 CK_SCALEOUT_REVOKE_MS="${CK_SCALEOUT_REVOKE_MS:-3000}"
	CK_SCALEOUT_ENGINE="$GVER, single brick on 127.0.0.2, one client mount per host (-o $GOPTS)")
env "${ENV[@]}" "$HERE/95-scaleout.sh"
rc=$?
exit $rc
