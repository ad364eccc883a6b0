"""The bad-input matrix of 53-badinput.sh.

Runs every command with bad input and checks each run: the exit status is
the one its man page (docs/*.8) documents for that failure, never a signal;
stderr is exactly one line, "PROG: message" starting lower-case; no
sanitizer report; stdout is empty; and nothing on disk changed (a hash of
every file, its mode and size, of the work dir W: volumes and key dirs).

Environment: B (build dir), W (work dir), and the paths set by the script.
Prints "PASS name" or "FAIL name" followed by "#" lines.
"""
import hashlib
import os
import re
import subprocess
import sys
import time

B, W = os.environ["B"], os.environ["W"]
E = os.environ
MKFS, CKFS, DEP, ASSIGN, FSCK = (os.path.join(B, x) for x in
                                 ("ck-mkfs", "ckfs", "ck-dep", "ck-assign", "ck-fsck"))
V, BAD, PLAIN, NONE = E["V"], E["BADV"], E["PLAIN"], os.path.join(W, "does-not-exist")
K = E["KEYS"]
MNT = E["MNT"]
KV = {n: os.path.join(W, "keys-" + n) for n in ("open", "dirmode", "corrupt", "isdir", "empty", "wrong")}
HUGE = "x" * 100000
LONGCOMP = "y" * 256
HELPERS = E["HELPERS"]
P11 = E.get("P11", "")

# Documented exit statuses (docs/ck-mkfs.8, ckfs.8, ck-dep.8, ck-assign.8, ck-fsck.8).
MK_USAGE, MK_REFUSED, MK_OPER = 1, 2, 3
FS_USAGE, FS_VOLUME, FS_MOUNT = 1, 2, 3
D_FAIL, D_USAGE, D_VOLUME = 1, 2, 3          # ck-dep and ck-assign
F_LEFT, F_OPER, F_USAGE = 4, 8, 16                       # ck-fsck


def cases():
    c = []

    def add(name, want, argv, timeout=30, stream="stderr"):
        c.append((name, want, argv, timeout, stream))

    # ---- ck-mkfs
    add("ck-mkfs: no arguments", MK_USAGE, [MKFS])
    add("ck-mkfs: unknown option", MK_USAGE, [MKFS, "--bogus", os.path.join(W, "new1")])
    add("ck-mkfs: two volumes", MK_USAGE, [MKFS, os.path.join(W, "new1"), os.path.join(W, "new2")])
    add("ck-mkfs: --key-dir without its value", MK_USAGE, [MKFS, os.path.join(W, "new1"), "--key-dir"])
    add("ck-mkfs: malformed --purge-wait", MK_USAGE, [MKFS, "--purge-wait", "soon", os.path.join(W, "new1")])
    add("ck-mkfs: an existing volume", MK_REFUSED, [MKFS, V])
    add("ck-mkfs: a non-empty plain directory", MK_REFUSED, [MKFS, PLAIN])
    add("ck-mkfs: a key dir with unsafe permissions", MK_REFUSED, [MKFS, "--key-dir", KV["dirmode"], os.path.join(W, "new1")])
    add("ck-mkfs: a path below a regular file", MK_REFUSED, [MKFS, os.path.join(PLAIN, "file", "vol")])
    add("ck-mkfs: empty volume name", MK_USAGE, [MKFS, ""])
    # ENAMETOOLONG is none of the listed refusals: "anything else" (3).
    add("ck-mkfs: a name component of 256 bytes", MK_OPER, [MKFS, os.path.join(W, LONGCOMP)])
    add("ck-mkfs: a huge path (100,000 bytes)", MK_OPER, [MKFS, os.path.join(W, HUGE)])
    add("ck-mkfs: malformed --availability-key", MK_USAGE, [MKFS, "--availability-key", "bogus:x", os.path.join(W, "new1")])

    # ---- ckfs
    add("ckfs: no arguments", FS_USAGE, [CKFS, "-f"])
    add("ckfs: no mount point", FS_USAGE, [CKFS, "-f", V])
    add("ckfs: an extra argument", FS_USAGE, [CKFS, "-f", V, MNT, MNT])
    add("ckfs: key_ttl=0", FS_USAGE, [CKFS, "-f", "-o", "key_ttl=0", V, MNT])
    add("ckfs: threads=0", FS_USAGE, [CKFS, "-f", "-o", "threads=0", V, MNT])
    add("ckfs: cache_timeout=abc", FS_USAGE, [CKFS, "-f", "-o", "cache_timeout=abc", V, MNT])
    add("ckfs: a plain directory", FS_VOLUME, [CKFS, "-f", PLAIN, MNT])
    add("ckfs: a missing volume", FS_VOLUME, [CKFS, "-f", NONE, MNT])
    add("ckfs: empty volume name", FS_VOLUME, [CKFS, "-f", "", MNT])
    add("ckfs: a huge volume path", FS_VOLUME, [CKFS, "-f", os.path.join(W, HUGE), MNT])
    add("ckfs: a corrupt volume header", FS_VOLUME, [CKFS, "-f", BAD, MNT])
    for n, want in (("open", FS_VOLUME), ("dirmode", FS_VOLUME), ("corrupt", FS_VOLUME),
                    ("isdir", FS_VOLUME), ("empty", FS_VOLUME), ("wrong", FS_VOLUME)):
        add("ckfs: key dir '%s'" % n, want, [CKFS, "-f", "-o", "key_dir=" + KV[n], V, MNT])
    add("ckfs: a missing key dir", FS_VOLUME, [CKFS, "-f", "-o", "key_dir=" + NONE, V, MNT])
    add("ckfs: a missing mount point", FS_MOUNT, [CKFS, "-f", V, NONE])
    add("ckfs: a mount point that is a file", FS_MOUNT, [CKFS, "-f", V, os.path.join(PLAIN, "file")])
    add("ckfs: an option unknown to ckfs and FUSE", FS_MOUNT, [CKFS, "-f", "-o", "nosuchoption", V, MNT])

    # ---- ck-dep: usage
    add("ck-dep: no arguments", D_USAGE, [DEP])
    add("ck-dep: no command", D_USAGE, [DEP, V])
    add("ck-dep: unknown command", D_USAGE, [DEP, V, "frobnicate"])
    add("ck-dep: unknown option", D_USAGE, [DEP, V, "list", "--bogus"])
    add("ck-dep: --key-dir without its value", D_USAGE, [DEP, V, "list", "--key-dir"])
    for cmd in ("create", "show", "revoke", "purge", "roll", "recover", "verify-certificate"):
        add("ck-dep %s: missing argument" % cmd, D_USAGE, [DEP, V, cmd])
    add("ck-dep show: an extra argument", D_USAGE, [DEP, V, "show", "depA", "depB"])
    add("ck-dep roll: no kind", D_USAGE, [DEP, V, "roll", "depA"])
    add("ck-dep roll: --customer-key without =", D_USAGE, [DEP, V, "roll", "depA", "--customer-key", "file:/x"])
    add("ck-dep recover: no customer key", D_USAGE, [DEP, V, "recover", "depA"])
    add("ck-dep config: malformed --purge-wait", D_USAGE, [DEP, V, "config", "--purge-wait", "soon"])
    add("ck-dep config: --purge-wait without its value", D_USAGE, [DEP, V, "config", "--purge-wait"])
    add("ck-dep audit: unknown option", D_USAGE, [DEP, V, "audit", "--bogus"])
    add("ck-dep create: empty name", D_USAGE, [DEP, V, "create", ""])
    add("ck-dep create: 65-character name", D_USAGE, [DEP, V, "create", "n" * 65])
    add("ck-dep create: huge name (100,000 bytes)", D_USAGE, [DEP, V, "create", HUGE])
    add("ck-dep create: name with a slash", D_USAGE, [DEP, V, "create", "a/b"])
    add("ck-dep create: name starting with a dot", D_USAGE, [DEP, V, "create", ".hidden"])
    add("ck-dep create: 8 customer keys", D_USAGE, [DEP, V, "create", "many"] +
        sum((["--customer-key", "file:%s/k%d.key" % (W, i)] for i in range(8)), []))
    add("ck-dep show: empty name", D_FAIL, [DEP, V, "show", ""])
    add("ck-dep show: huge name", D_FAIL, [DEP, V, "show", HUGE])
    # ---- ck-dep: failures
    add("ck-dep show: unknown DEP", D_FAIL, [DEP, V, "show", "nosuch"])
    add("ck-dep status: unknown DEP", D_FAIL, [DEP, V, "status", "nosuch"])
    add("ck-dep revoke: unknown DEP", D_FAIL, [DEP, V, "revoke", "nosuch"])
    add("ck-dep roll: unknown DEP", D_FAIL, [DEP, V, "roll", "nosuch", "--dep-key"])
    add("ck-dep recover: unknown DEP", D_FAIL, [DEP, V, "recover", "nosuch", "--customer-key", "file:%s/r.key" % W])
    add("ck-dep purge: unknown DEP", D_FAIL, [DEP, V, "purge", "nosuch", "--confirm", "nosuch"])
    add("ck-dep purge: an active DEP", D_FAIL, [DEP, V, "purge", "depA", "--confirm", "depA"])
    add("ck-dep purge: wrong confirmation", D_FAIL, [DEP, V, "purge", "depR", "--confirm", "depA"])
    add("ck-dep purge --cancel: nothing pending", D_FAIL, [DEP, V, "purge", "depR", "--cancel"])
    add("ck-dep revoke: already revoked", D_FAIL, [DEP, V, "revoke", "depR"])
    add("ck-dep roll: a revoked DEP", D_FAIL, [DEP, V, "roll", "depR", "--dep-key"])
    add("ck-dep recover: a revoked DEP", D_FAIL, [DEP, V, "recover", "depR", "--customer-key", "file:%s/r.key" % W])
    add("ck-dep create: an existing name", D_FAIL, [DEP, V, "create", "depA"])
    add("ck-dep roll: an OLD key the DEP does not have", D_USAGE,
        [DEP, V, "roll", "depA", "--customer-key", "file:/nosuch.key=file:%s/r.key" % W])
    add("ck-dep verify-certificate: a missing file", D_FAIL, [DEP, V, "verify-certificate", os.path.join(W, "nosuch.cert")])
    add("ck-dep verify-certificate: garbage", D_FAIL, [DEP, V, "verify-certificate", os.path.join(PLAIN, "file")])
    add("ck-dep verify-certificate: a huge file", D_FAIL, [DEP, V, "verify-certificate", os.path.join(E["T"], "huge.cert")])
    add("ck-dep verify-certificate: a directory", D_FAIL, [DEP, V, "verify-certificate", PLAIN])
    add("ck-dep verify-certificate: an edited certificate", D_FAIL, [DEP, V, "verify-certificate", os.path.join(W, "edited.cert")])
    # malformed URIs and unreachable providers
    uris = [
        ("a scheme nobody knows", "bogus:x"),
        ("empty", ""),
        ("file: empty path", "file:"),
        ("file: relative path", "file:relative/k.key"),
        ("file: //host form", "file://host/k.key"),
        ("file: trailing slash", "file:%s/dir/" % W),
        ("file: below a regular file", "file:%s/file/k.key" % PLAIN),
        ("file: a directory", "file:" + PLAIN),
        ("file: a corrupt key file", "file:%s/garbage.key" % W),
        ("file: a key file readable by others", "file:%s/open.key" % W),
        ("file: 5000-byte path", "file:/" + "z" * 5000),
        ("pkcs11: garbage", "pkcs11:%%%"),
        ("pkcs11: no module-path", "pkcs11:token=t;object=o?pin-source=file:%s/pin" % W),
        ("pkcs11: pin-value in the URI", "pkcs11:token=t;object=o?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"),
        ("pkcs11: unknown attribute", "pkcs11:token=t;object=o;colour=red?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:%s/pin" % W),
        ("pkcs11: a module that does not exist (unreachable)", "pkcs11:token=t;object=o?module-path=/nonexistent/lib.so&pin-source=file:%s/pin" % W),
        ("pkcs11: a module that is not PKCS#11", "pkcs11:token=t;object=o?module-path=/lib/x86_64-linux-gnu/libc.so.6&pin-source=file:%s/pin" % W),
        ("exec: relative helper", "exec:bin/helper"),
        ("exec: missing helper", "exec:/nonexistent/helper"),
        ("exec: unterminated quote", "exec:%s/ok 'unterminated" % HELPERS),
        ("exec: timeout=0", "exec:%s/ok?timeout=0" % HELPERS),
        ("exec: unknown parameter", "exec:%s/ok?colour=red" % HELPERS),
        ("exec: a helper that is not executable", "exec:%s/noexec" % HELPERS),
        ("exec: a helper that hangs (unreachable, timeout=1)", "exec:%s/hang?timeout=1" % HELPERS),
        ("exec: a helper that crashes", "exec:%s/crash" % HELPERS),
        ("exec: a helper that answers garbage", "exec:%s/garbage" % HELPERS),
        ("exec: a helper that answers unavailable", "exec:%s/unavailable" % HELPERS),
        ("exec: a helper that answers denied", "exec:%s/denied" % HELPERS),
        ("exec: a helper answering a huge line", "exec:%s/flood" % HELPERS),
    ]
    if P11:
        uris += [("pkcs11: wrong PIN file", P11 + "&pin-source=file:%s/wrongpin" % E["HSM"]),
                 ("pkcs11: missing PIN file", P11 + "&pin-source=file:%s/nopin" % E["HSM"]),
                 ("pkcs11: PIN file readable by others", P11 + "&pin-source=file:%s/pin-open" % E["HSM"]),
                 ("pkcs11: empty PIN file", P11 + "&pin-source=file:%s/pin-empty" % E["HSM"]),
                 ("pkcs11: no such object", P11.replace("aeskey", "nosuch") + "&pin-source=file:%s/pin" % E["HSM"]),
                 ("pkcs11: no such token", P11.replace("cktest", "nosuch") + "&pin-source=file:%s/pin" % E["HSM"])]
    for what, uri in uris:
        add("ck-dep create --customer-key, %s" % what, D_FAIL, [DEP, V, "create", "bad", "--customer-key", uri], 60)
    for what, uri in uris[:3] + uris[-3:]:
        add("ck-dep create --availability-key, %s" % what, D_FAIL,
            [DEP, V, "create", "bad", "--customer-key", E["DEPA_KEY1"], "--availability-key", uri], 60)
        # OLD=NEW is split where NEW has a known scheme: otherwise a usage error.
        known = uri.split(":")[0] in ("file", "pkcs11", "exec")
        add("ck-dep roll --customer-key OLD=%s" % what, D_FAIL if known else D_USAGE,
            [DEP, V, "roll", "depA", "--customer-key", "%s=%s" % (E["DEPA_KEY1"], uri)], 60)
        add("ck-dep roll --availability-key %s" % what, D_FAIL,
            [DEP, V, "roll", "depA", "--availability", "--availability-key", uri], 60)
    # volume cannot be opened
    for cmd in (["list"], ["show", "depA"], ["status"], ["audit", "--verify"], ["revoke", "depA"], ["create", "depZ"]):
        add("ck-dep %s: not a volume" % cmd[0], D_VOLUME, [DEP, PLAIN] + cmd)
        add("ck-dep %s: corrupt volume header" % cmd[0], D_VOLUME, [DEP, BAD] + cmd)
    add("ck-dep: a missing volume", D_VOLUME, [DEP, NONE, "list"])
    add("ck-dep: a huge volume path", D_VOLUME, [DEP, os.path.join(W, HUGE), "list"])
    for n in KV:
        add("ck-dep: key dir '%s'" % n, D_VOLUME, [DEP, "--key-dir", KV[n], V, "list"])

    # ---- ck-assign
    add("ck-assign: no arguments", D_USAGE, [ASSIGN])
    add("ck-assign: no PATH", D_USAGE, [ASSIGN, V])
    add("ck-assign: no DEP", D_USAGE, [ASSIGN, V, "mail/b"])
    add("ck-assign: an extra argument", D_USAGE, [ASSIGN, V, "mail/b", "depA", "x"])
    add("ck-assign: unknown option", D_USAGE, [ASSIGN, "--bogus", V, "mail/b", "depA"])
    add("ck-assign: empty PATH", D_USAGE, [ASSIGN, V, "", "depA"])
    add("ck-assign: PATH /", D_USAGE, [ASSIGN, V, "/", "depA"])
    add("ck-assign: PATH with ..", D_USAGE, [ASSIGN, V, "mail/../x", "depA"])
    add("ck-assign: PATH with .", D_USAGE, [ASSIGN, V, "mail/./x", "depA"])
    add("ck-assign: a 256-byte component", D_USAGE, [ASSIGN, V, "mail/" + LONGCOMP, "depA"])
    add("ck-assign: a huge PATH", D_USAGE, [ASSIGN, V, "mail/" + "/".join(["p"] * 50000), "depA"])
    add("ck-assign: empty DEP", D_FAIL, [ASSIGN, V, "mail/b", ""])
    add("ck-assign: huge DEP name", D_FAIL, [ASSIGN, V, "mail/b", HUGE])
    add("ck-assign: unknown DEP", D_FAIL, [ASSIGN, V, "mail/b", "nosuch"])
    add("ck-assign: a revoked DEP", D_FAIL, [ASSIGN, V, "mail/b", "depR"])
    add("ck-assign: nested inside a tree", D_FAIL, [ASSIGN, V, "mail/a/sub", "depA"])
    add("ck-assign: above a tree", D_FAIL, [ASSIGN, V, "mail", "depA"])
    add("ck-assign: not a volume", D_VOLUME, [ASSIGN, PLAIN, "mail/b", "depA"])
    add("ck-assign: a missing volume", D_VOLUME, [ASSIGN, NONE, "mail/b", "depA"])
    add("ck-assign: corrupt volume header", D_VOLUME, [ASSIGN, BAD, "mail/b", "depA"])
    for n in KV:
        add("ck-assign: key dir '%s'" % n, D_VOLUME, [ASSIGN, "--key-dir", KV[n], V, "mail/b", "depA"])

    # ---- ck-fsck
    add("ck-fsck: no arguments", F_USAGE, [FSCK])
    add("ck-fsck: unknown option", F_USAGE, [FSCK, "--bogus", V])
    add("ck-fsck: two volumes", F_USAGE, [FSCK, V, V])
    add("ck-fsck: --key-dir without its value", F_USAGE, [FSCK, V, "--key-dir"])
    add("ck-fsck: not a volume", F_OPER, [FSCK, PLAIN])
    add("ck-fsck: a missing volume", F_OPER, [FSCK, NONE])
    add("ck-fsck: empty volume name", F_OPER, [FSCK, ""])
    add("ck-fsck: a huge volume path", F_OPER, [FSCK, os.path.join(W, HUGE)])
    # A corrupt header is a problem found (4), reported on stdout like all.
    add("ck-fsck: corrupt volume header", F_LEFT, [FSCK, BAD], stream="stdout")
    add("ck-fsck --repair: corrupt volume header", F_LEFT, [FSCK, "--repair", BAD], stream="stdout")
    for n in KV:
        add("ck-fsck: key dir '%s'" % n, F_OPER, [FSCK, "--key-dir", KV[n], V])
    return c


def tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            h.update(("%s %o %d\n" % (os.path.relpath(p, root), st.st_mode, st.st_size)).encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


LINE = re.compile(r"^[a-z][a-z0-9-]*: ([a-z\"'/`-]|[A-Z]+[0-9]*[ :])")


REPORT = re.compile(r"^[^ ]+: [a-z]")


def run(name, want, argv, timeout, stream):
    before = tree_hash(W)
    t0 = time.time()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = "timeout", b"", b""
    dt = time.time() - t0
    after = tree_hash(W)
    if stream == "stdout":
        out, err = err, out
    lines = [l for l in err.decode(errors="replace").split("\n") if l.strip()]
    why = []
    if rc != want:
        why.append("exit status %s, documented: %d" % (rc, want))
    if isinstance(rc, int) and rc < 0:
        why.append("killed by signal %d" % -rc)
    if len(lines) != 1:
        why.append("%d lines on stderr, want 1" % len(lines))
    elif not (LINE if stream == "stderr" else REPORT).match(lines[0]):
        why.append("stderr is not 'prog: lower-case message'")
    if any(s in err for s in (b"Sanitizer", b"runtime error:", b"LeakSanitizer")):
        why.append("sanitizer report")
    if out.strip():
        why.append("std%s not empty" % ("err" if stream == "stdout" else "out"))
    if before != after:
        why.append("the volume or key dir changed on disk")
    print("%s %s" % ("FAIL" if why else "PASS", name))
    for w in why:
        print("# " + w)
    for l in lines[:6]:
        print("#   stderr: " + l[:300])
    if out.strip():
        print("#   stdout: " + out.decode(errors="replace").strip().split("\n")[0][:200])
    if dt > 5:
        print("#   took %.1f s" % dt)
    sys.stdout.flush()
    return not why


def main():
    sel = sys.argv[1] if len(sys.argv) > 1 else ""
    n = bad = 0
    for name, want, argv, timeout, stream in cases():
        if sel and sel not in name:
            continue
        n += 1
        if not run(name, want, argv, timeout, stream):
            bad += 1
    print("# %d cases, %d failed" % (n, bad))


main()
