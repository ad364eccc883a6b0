#!/bin/bash
# --json of every tool command that prints state (docs/JSON.md): each
# output parses with python3's json and has the documented fields with the
# documented types and a version field. And `ck-dep VOLUME status`: the
# mount serving a DEP, its probe answers with latency, time since the last
# successful probe, and how all of that changes after a customer-side
# revocation (the customer's file: keys deleted).
. "$(dirname "$0")/lib.sh"

for b in "$CKDEP" "$CKASSIGN" "$CKFS_BUILD/ck-fsck"; do
	[ -x "$b" ] || { echo "$TEST_NAME: $b is not built" >&2; exit 2; }
done
CKFSCK=$CKFS_BUILD/ck-fsck
KEY_TTL=1
N_TESTS=0 N_PASS=0 N_FAIL=0 FAILED_NAMES=()

# The documented schemas, as python: jcheck KIND FILE validates FILE.
cat >"$T/jschema.py" <<'EOF'
import json, sys

S, I, N, B, NULL = str, "int", "number", bool, type(None)
DEP_STATES = {"active", "revoked", "purge-pending", "purged"}
TREE_STATES = {"active", "pending-apply", "applying", "retired", "purged"}
RESULTS = {"ok", "denied", "unavailable", "none"}

def typed(v, t, where):
    if isinstance(t, tuple):
        assert any(_is(v, x) for x in t), "%s: %r is not %s" % (where, v, t)
    else:
        assert _is(v, t), "%s: %r is not %s" % (where, v, t)

def _is(v, t):
    if t == "int":
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, t)

def fields(o, spec, where):
    assert isinstance(o, dict), "%s: not an object: %r" % (where, o)
    for k, t in spec.items():
        opt = k.endswith("?")
        k = k.rstrip("?")
        if k not in o:
            assert opt, "%s: no field %r in %r" % (where, k, sorted(o))
            continue
        typed(o[k], t, "%s.%s" % (where, k))

def dep(o, where, top=False):
    fields(o, {"name": S, "id": S, "state": S, "created": I, "changed": I, "keys": list,
               "trees": list}, where)
    if top:
        assert o.get("version") == 1, where + ": version"
    assert len(o["id"]) == 32 and int(o["id"], 16) >= 0, where + ": id"
    assert o["state"] in DEP_STATES, o["state"]
    for k in o["keys"]:
        fields(k, {"role": S, "uri": S, "last_result": S, "last_time": I, "wrapped": B}, where + ".keys")
        assert k["role"] in ("customer", "availability") and k["last_result"] in RESULTS, k
    for t in o["trees"]:
        fields(t, {"path": S, "id": S, "state": S}, where + ".trees")
        assert t["state"] in TREE_STATES, t

def version(o, where):
    assert isinstance(o, dict) and o.get("version") == 1, "%s: no \"version\": 1" % where

def k_list(o):
    version(o, "list"); fields(o, {"deps": list}, "list")
    assert o["deps"], "no deps"
    for d in o["deps"]:
        dep(d, "list.deps[]")
    assert [d["name"] for d in o["deps"]] == sorted(d["name"] for d in o["deps"]), "not sorted"

def k_show(o):
    dep(o, "show", top=True)

def k_status(o):
    version(o, "status"); fields(o, {"time": I, "deps": list}, "status")
    for d in o["deps"]:
        fields(d, {"name": S, "id": S, "state": S, "probe": S, "keys": list, "mounts": list}, "status.deps[]")
        assert d["probe"] in {"ok", "denied", "unavailable", "error", "skipped"}, d["probe"]
        for k in d["keys"]:
            fields(k, {"index": I, "uri": S, "role": S, "result": S, "latency_ms": (N, NULL),
                       "time": I}, "status.keys[]")
            assert k["role"] == "customer" and k["result"] in RESULTS, k
        for m in d["mounts"]:
            fields(m, {"host": S, "pid": I, "mountpoint": S, "key_ttl": N, "status_written": I,
                       "trees_serving": I, "trees_stopped": I, "last_probe": (dict, NULL),
                       "last_ok": (I, NULL), "since_last_ok_s": (I, NULL), "keys": list}, "status.mounts[]")
            if m["last_probe"] is not None:
                fields(m["last_probe"], {"time": I, "result": S}, "status.mounts[].last_probe")
            for k in m["keys"]:
                fields(k, {"index": I, "uri": S, "result": S, "latency_ms": N, "time": I},
                       "status.mounts[].keys[]")

def k_config(o):
    version(o, "config"); fields(o, {"purge_wait": I, "availability": S}, "config")

def k_audit(o):
    assert isinstance(o, list) and o, "audit: not a non-empty array"
    seqs = []
    for r in o:
        fields(r, {"version": I, "seq": I, "time": S, "host": S, "pid": I, "event": S,
                   "dep": (S, NULL), "tree": (S, NULL), "uri": (S, NULL), "result": (S, NULL),
                   "actor": (S, NULL), "mac": S}, "audit[]")
        assert r["version"] == 1 and len(r["mac"]) == 64, r
        assert r["dep"] is None or r["dep"].startswith("dep:"), r
        seqs.append(r["seq"])
    assert seqs == list(range(1, len(seqs) + 1)), "seq not 1..n"

def k_verify(o):
    version(o, "audit --verify")
    fields(o, {"intact": B, "records": (I, NULL), "error": (S, NULL)}, "audit --verify")
    assert o["intact"] is True and o["records"] > 0 and o["error"] is None, o

def k_action(o):
    version(o, "action"); fields(o, {"action": S, "dep": S, "state": S}, "action")
    assert o["state"] in DEP_STATES, o

def k_assign(o):
    version(o, "assign"); fields(o, {"tree": S, "dep": S, "state": S}, "assign")
    assert o["state"] in TREE_STATES, o

def k_apply(lines):
    objs = [json.loads(l) for l in lines if l.strip()]
    assert objs, "no output"
    for p in objs[:-1]:
        version(p, "apply progress")
        fields(p["progress"], {"files_done": I, "files_total": I, "bytes_done": I, "bytes_total": I}, "progress")
    last = objs[-1]
    k_assign(last)
    fields(last, {"files": I, "converted": I, "bytes": I}, "apply final")
    assert last["state"] == "active", last

CERT = {"certificate": S, "dep": S, "id": S, "time": I, "trees": I, "keys_destroyed": I,
        "audit_head": S, "audit_count": I}

def k_purge(lines):
    objs = [json.loads(l) for l in lines if l.strip()]
    assert len(objs) == 2, "want 2 lines, got %d" % len(objs)
    fields(objs[0], CERT, "certificate")
    assert objs[0]["certificate"] == "ckfs purge", objs[0]
    fields(objs[1], {"mac": S}, "certificate mac")
    assert len(objs[1]["mac"]) == 64

def k_cert(o):
    version(o, "verify-certificate")
    fields(o, {"valid": B, "file": S, "certificate": dict}, "verify-certificate")
    assert o["valid"] is True
    fields(o["certificate"], CERT, "verify-certificate.certificate")

def k_fsck(o):
    version(o, "fsck")
    fields(o, {"volume": S, "volume_id?": S, "error?": S, "problems": list, "skipped": list,
               "files": I, "dirs": I, "fixed": I, "left": I, "exit": I}, "fsck")
    for p in o["problems"]:
        fields(p, {"path": S, "kind": S, "detail": S, "fixable": B, "fixed": B}, "fsck.problems[]")
    for s in o["skipped"]:
        fields(s, {"path": S, "reason": S}, "fsck.skipped[]")

kind, path = sys.argv[1], sys.argv[2]
text = open(path).read()
if kind in ("apply", "purge"):
    globals()["k_" + kind](text.splitlines())
else:
    assert text.endswith("\n") and text.count("\n") == (1 if kind != "audit" else text.count("\n")), \
        "want one document and a newline"
    globals()["k_" + kind](json.loads(text))
print("%s: ok (%d bytes)" % (kind, len(text)))
EOF
# jcheck "name" KIND CMD...: CMD exits 0 and its stdout passes KIND's schema.
jcheck() {
	local name=$1 kind=$2; shift 2
	JOUT=$T/out.$N_TESTS.json JKIND=$kind
	_j() { "$@" >"$JOUT" 2>"$JOUT.err" || { echo "exit $?"; cat "$JOUT.err"; return 1; }
	       "$PY" "$T/jschema.py" "$JKIND" "$JOUT" || { head -c 2000 "$JOUT"; return 1; }; }
	check "$name" _j "$@"
}
status_py() { # status_py DEP 'python assertions on d (the DEP's status object)'
	"$CKDEP" "$VOL" status "$1" --json >"$T/status.json" 2>"$T/status.err" || { cat "$T/status.err"; return 1; }
	"$PY" - "$T/status.json" "$1" <<EOF
import json, sys
o = json.load(open(sys.argv[1]))
d = [x for x in o["deps"] if x["name"] == sys.argv[2]][0]
print(json.dumps(d))
$2
EOF
}

mkfs_ckfs "$VOL" || exit 1
mount_check "mount with key_ttl=$KEY_TTL" "$VOL" "$MNT" -o key_ttl=$KEY_TTL || { summary; exit 1; }
jcheck "create --json: the new DEP (version, fields, types)" show "$CKDEP" "$VOL" create sitesdep --json
"$CKDEP" "$VOL" create other >/dev/null
"$CKDEP" "$VOL" create spare >/dev/null
jcheck "ck-assign --json on an empty path: state active" assign "$CKASSIGN" --json "$VOL" sites/emea sitesdep
mkdir -p "$MNT/sites/emea" "$MNT/data"
for i in $(seq 40); do head -c 20000 /dev/urandom >"$MNT/data/f$i"; done
echo hello >"$MNT/sites/emea/index.html"
jcheck "ck-assign --json on a path with data: pending-apply" assign "$CKASSIGN" --json "$VOL" data other
jcheck "ck-assign --json again: still pending-apply" assign "$CKASSIGN" --json "$VOL" data other
jcheck "ck-assign --apply --json: progress lines, then the final state" apply "$CKASSIGN" --apply --json "$VOL" data other
jcheck "ck-assign --json when already under the DEP" assign "$CKASSIGN" --json "$VOL" data other
jcheck "list --json" list "$CKDEP" "$VOL" list --json
jcheck "show --json" show "$CKDEP" "$VOL" show sitesdep --json
jcheck "config --json" config "$CKDEP" "$VOL" config --json
jcheck "config --purge-wait 0 --json" config "$CKDEP" "$VOL" config --purge-wait 0 --json
jcheck "audit --json (an array of records, seq 1..n)" audit "$CKDEP" "$VOL" audit --json
jcheck "audit --verify --json" verify "$CKDEP" "$VOL" audit --verify --json
jcheck "roll --json" action "$CKDEP" "$VOL" roll spare --dep-key --json
jcheck "status --json (all DEPs)" status "$CKDEP" "$VOL" status --json

# ------------------------------------------------------------ status and its mounts
# The first probe comes key_ttl after the mount; wait for it (with margin).
wait_probed() {
	local i
	for i in $(seq 50); do
		status_py sitesdep 'm = d["mounts"]; assert m and m[0]["last_probe"] and m[0]["last_probe"]["result"] == "'"$1"'"' >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	status_py sitesdep 'assert False, "no probe answer \"'"$1"'\" from the mount"'
}
check "a probe answer from the mount within key_ttl + 10 s" wait_probed ok
check "status: the mount serving sitesdep, its probe answers with latency, time since the last ok" status_py sitesdep "
import os
assert d['state'] == 'active' and d['probe'] == 'ok', d
assert len(d['keys']) == 2 and all(k['result'] == 'ok' and k['latency_ms'] >= 0 for k in d['keys']), d['keys']
m = d['mounts']
assert len(m) == 1, m
m = m[0]
assert m['mountpoint'] == os.path.realpath('$MNT') and m['pid'] == $LAST_PID, m
assert m['trees_serving'] == 1 and m['trees_stopped'] == 0, m
assert m['last_probe']['result'] == 'ok' and m['last_ok'] is not None, m
assert 0 <= m['since_last_ok_s'] <= $KEY_TTL + 10, m
assert m['keys'] and m['keys'][0]['result'] == 'ok' and m['keys'][0]['latency_ms'] >= 0, m['keys']
assert m['keys'][0]['uri'] == d['keys'][0]['uri'], (m['keys'], d['keys'])
"
sh_check "status (text): names the mount point and a latency in ms" '
"$CKDEP" "$VOL" status sitesdep | tee /dev/stderr | grep -F "$(realpath "$MNT")" | grep -q "serving 1" &&
"$CKDEP" "$VOL" status sitesdep | grep -Eq "key 0 +ok +[0-9.]+ ms"'
sh_check "the status file holds no names, paths, URIs or key bytes" '
f=$(ls "$VOL"/.ckfs/status/* | grep -v "\.tmp$"); cat $f >&2
! grep -Eq "sitesdep|sites/emea|file:|customer" $f && [ $(wc -c <$f) -lt 4096 ] && [ "$(stat -c %a $f)" = 600 ]'

# Customer-side revocation: the customer deletes their file: keys.
for u in $("$CKDEP" "$VOL" show sitesdep --json | "$PY" -c 'import json,sys; [print(k["uri"][5:]) for k in json.load(sys.stdin)["keys"] if k["role"] == "customer"]'); do
	rm -f "$u"
done
wait_revoked() {
	local i
	for i in $(seq 75); do
		status_py sitesdep 'm = d["mounts"][0]; assert d["state"] == "revoked" and m["trees_stopped"] == 1 and m["last_probe"]["result"] == "denied"' >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	status_py sitesdep 'assert False, "status did not change after the revocation"'
}
check "after the customer deletes the keys: status shows revoked, the mount stopped, its probe denied" wait_revoked
check "after the revocation: every key's last answer is denied, last ok is older than the probe" status_py sitesdep "
m = d['mounts'][0]
assert d['probe'] == 'skipped' and d['state'] == 'revoked', d
assert m['trees_serving'] == 0 and m['trees_stopped'] == 1, m
assert all(k['result'] == 'denied' for k in m['keys']) and len(m['keys']) == 2, m['keys']
assert m['last_ok'] is None or m['last_ok'] <= m['last_probe']['time'], m
assert all(k['result'] == 'denied' for k in d['keys']), ('the DEP record keeps the denials', d['keys'])
"
jcheck "status --json after the revocation" status "$CKDEP" "$VOL" status --json
jcheck "revoke --json" action "$CKDEP" "$VOL" revoke spare --json
sh_check "revoke --json says revoked" '"$CKDEP" "$VOL" list --json | "$PY" -c "import json,sys; assert [d for d in json.load(sys.stdin)[\"deps\"] if d[\"name\"] == \"spare\"][0][\"state\"] == \"revoked\""'
jcheck "purge --json: the certificate (two JSON lines)" purge "$CKDEP" "$VOL" purge spare --confirm spare --json
"$CKDEP" "$VOL" purge spare --confirm spare >/dev/null 2>&1  # already purged: refused
CERT=$(ls "$VOL"/.ckfs/certificates/*.json | head -n 1)
jcheck "verify-certificate --json" cert "$CKDEP" "$VOL" verify-certificate "$CERT" --json
sh_check "the kept certificate is 0600" '[ "$(stat -c %a "$CERT")" = 600 ]'
sh_check "status file removed at unmount" '
umount_ckfs "$MNT"; ! ls "$VOL"/.ckfs/status/* 2>/dev/null | grep -q .'
sh_check "status --json without mounts: empty mounts lists" '
"$CKDEP" "$VOL" status --json | "$PY" -c "import json,sys; o=json.load(sys.stdin); assert all(d[\"mounts\"] == [] for d in o[\"deps\"]), o"'
_fsck() { "$CKFSCK" --json "$VOL" >"$T/fsck.json" 2>"$T/fsck.err"; local rc=$?
	[ $rc -lt 8 ] || { cat "$T/fsck.err"; return 1; }
	"$PY" "$T/jschema.py" fsck "$T/fsck.json" &&
	"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["exit"] == int(sys.argv[2]) and o["skipped"], o' "$T/fsck.json" $rc; }
check "ck-fsck --json (the revoked tree skipped, exit code in the document)" _fsck
summary
