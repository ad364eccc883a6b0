#!/usr/bin/env python3
"""Independent check of tests/vectors/format_v1.h against docs/FORMAT.md.

test_kat_format pins libck's output; this script recomputes the same
vectors from the document alone with pyca/cryptography (AES-SIV, AES-GCM,
HKDF, RFC 5649 key wrap) and a pure-Python XXH64, so a vector that libck
and the document disagree on cannot be pinned by accident.

Usage: check_format_v1.py [path/to/format_v1.h]
Exit 0 = all match, 1 = mismatch, 77 = skipped (no python3-cryptography).
"""
import base64
import hashlib
import hmac
import os
import re
import sys

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
except ImportError:
    print("python3-cryptography is not installed; skipping")
    sys.exit(77)

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def _merge(acc, val):
    acc ^= _round(0, val)
    return (acc * P1 + P4) & M64


def xxh64(data, seed=0):
    """XXH64 (the reference algorithm, xxhash.h)."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while i + 32 <= n:
            for j in range(4):
                v[j] = _round(v[j], int.from_bytes(data[i + 8 * j:i + 8 * j + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for x in v:
            h = _merge(h, x)
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "format_v1.h")
    src = open(path, encoding="ascii").read()
    bad = []

    def check(name, cond):
        print(("ok   " if cond else "FAIL ") + name)
        if not cond:
            bad.append(name)

    def macro(name):
        m = re.search(r"#define " + name + r" \\\n((?:\t\".*\"(?: \\)?\n)+)", src)
        if not m:
            sys.exit("%s: no macro %s" % (path, name))
        return "".join(re.findall(r'"([^"]*)"', m.group(1)))

    def hexm(name):
        return bytes.fromhex(macro(name))

    def array(name):
        m = re.search(name + r"\[\] = \{\n(.*?)\};", src, re.S)
        return ["".join(re.findall(r'"([^"]*)"', e)) for e in m.group(1).split(",\n") if e.strip()]

    def hkdf(key, info, n=32):
        return HKDF(hashes.SHA256(), n, None, info).derive(key)

    def b64(b):
        return base64.urlsafe_b64encode(b).decode().rstrip("=")

    def unb64(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    def le(v, n):
        return v.to_bytes(n, "little")

    # The IN_* inputs of tests/unit/test_kat_format.c.
    kek = bytes(range(0x00, 0x20))
    service = bytes(range(0xa0, 0xc0))
    volume_id, tree_id = bytes(range(0xc0, 0xd0)), bytes(range(0xd0, 0xe0))
    kek_id, file_id, dir_id = bytes(range(0xe0, 0xf0)), bytes(range(0xf0, 0x100)), bytes(range(0xb0, 0xc0))
    created = 1764000000
    names = [b"INBOX", b"a", b"cur", b".hidden", b"1764000000.M1P2.host,S=1234:2,S",
             "na\u00efve r\u00e9sum\u00e9.txt".encode(), b"x" * 175, b"y" * 176, b"z" * 255]

    # Key hierarchy
    check("XXH64 self-test (empty input)", xxh64(b"") == 0xEF46DB3751D8E999)
    check("wrapped service key = RFC 5649 wrap", aes_key_wrap_with_padding(kek, service) == hexm("KAT_WRAPPED_SERVICE_KEY"))
    mac_key = hkdf(service, b"ckfs v1 volume header mac")
    tree_key = hkdf(service, b"ckfs v1 service tree key")
    name_key = hkdf(tree_key, b"ckfs v1 names siv", 64)
    xname_key = hkdf(tree_key, b"ckfs v1 xattr name siv", 64)
    symlink_key = hkdf(tree_key, b"ckfs v1 symlink target")
    xvalue_key = hkdf(tree_key, b"ckfs v1 xattr value")
    file_key = hkdf(tree_key, b"ckfs v1 file key" + file_id)
    content_key = hkdf(file_key, b"ckfs v1 file content")
    header_key = hkdf(file_key, b"ckfs v1 file header mac")
    size_key = hkdf(file_key, b"ckfs v1 file size")
    record_key = hkdf(service, b"ckfs v1 records")
    audit_key = hkdf(service, b"ckfs v1 audit mac")
    for name, val in [("KAT_VOLUME_MAC_KEY", mac_key),
                      ("KAT_RECORD_KEY", record_key),
                      ("KAT_AUDIT_KEY", audit_key),
                      ("KAT_CERT_KEY", hkdf(service, b"ckfs v1 purge certificate")), ("KAT_SERVICE_TREE_KEY", tree_key),
                      ("KAT_NAME_KEY", name_key), ("KAT_XNAME_KEY", xname_key),
                      ("KAT_SYMLINK_KEY", symlink_key), ("KAT_XVALUE_KEY", xvalue_key),
                      ("KAT_FILE_CONTENT_KEY", content_key), ("KAT_FILE_HEADER_KEY", header_key),
                      ("KAT_FILE_SIZE_KEY", size_key)]:
        check(name + " = documented HKDF", hexm(name) == val)

    # Volume header
    vh = bytearray(256)
    vh[0:8] = b"CKFSVOL\0"
    vh[8:12], vh[16:20], vh[24:32] = le(1, 4), le(4096, 4), le(created, 8)
    vh[32:48], vh[48:64], vh[64:80] = volume_id, tree_id, kek_id
    vh[80:120] = aes_key_wrap_with_padding(kek, service)
    vh[120:152] = hmac.new(mac_key, bytes(vh[:120]), hashlib.sha256).digest()
    vh[248:256] = le(xxh64(bytes(vh[:248])), 8)
    check("KAT_VOLUME_HDR = documented layout", hexm("KAT_VOLUME_HDR") == bytes(vh))

    # Key file and directory ID
    kf = b"CKFSKEY1" + le(1, 4) + le(0, 4) + kek_id + kek
    check("KAT_KEYFILE = documented layout", hexm("KAT_KEYFILE") == kf + le(xxh64(kf), 8))
    di = b"CKDI" + bytes([1, 0, 0, 0]) + dir_id
    check("KAT_DIRID = documented layout", hexm("KAT_DIRID") == di + le(xxh64(di), 8))

    # File header and bindings
    def binding(name):
        return hmac.new(header_key, b"bind" + dir_id + name, hashlib.sha256).digest()[:16]
    check("KAT_BINDING_CUR", hexm("KAT_BINDING_CUR") == binding(b"cur"))
    check("KAT_BINDING_NEW", hexm("KAT_BINDING_NEW") == binding(b"new"))
    def gcm_open(key, blob, ad):
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], ad)
        except Exception:
            return None

    # Sealed plaintext size: nonce[12] || GCM(size key, u64 LE)[8] || tag[16],
    # AAD = version || volume ID || tree ID || file ID || "size" (53 bytes)
    size_aad = bytes([1]) + volume_id + tree_id + file_id + b"size"
    check("size box AAD is 53 bytes", len(size_aad) == 53)
    file_size = 4096 + 100                 # IN_FILE_SIZE: block 0 full, 100 bytes in block 1

    # File header, 512 bytes; the size box (352..387) has a random nonce,
    # so it is taken from the vector and checked by opening it.
    rec = hexm("KAT_FILE_HDR")
    check("KAT_FILE_HDR is 512 bytes", len(rec) == 512)
    box = rec[352:388]
    check("file header size box opens to the file's size",
          gcm_open(size_key, box, size_aad) == le(file_size, 8))
    fh = bytearray(512)
    fh[0:4], fh[4], fh[5], fh[6:8] = b"CKFH", 1, 1, le(1, 2)
    fh[8:24], fh[24] = file_id, 2
    fh[32:48], fh[48:64] = binding(b"cur"), binding(b"new")   # slots 2..19 (64..351) zero
    fh[352:388] = box                                          # 388..463 reserved, zero
    fh[464:480] = tree_id
    fh[480:512] = hmac.new(header_key, volume_id + tree_id + bytes(fh[:480]), hashlib.sha256).digest()
    check("KAT_FILE_HDR = documented layout", rec == bytes(fh))
    box = hexm("KAT_SIZE_BOX_EMPTY_FILE")
    check("KAT_SIZE_BOX_EMPTY_FILE is 36 bytes and opens to 0",
          len(box) == 36 and gcm_open(size_key, box, size_aad) == le(0, 8))
    other_aad = bytes([1]) + volume_id + tree_id + bytes(16) + b"size"
    check("  and not as another file's", gcm_open(size_key, box, other_aad) is None)

    # Backing size: header + (final block + 1) full blocks
    def backing_size(n):
        return 512 + ((n - 1) // 4096 + 1 if n else 1) * 4124
    check("backing size is rounded to blocks",
          backing_size(0) == backing_size(1) == backing_size(4096) == 4636 and
          backing_size(4097) == backing_size(8192) == 8760 and backing_size(file_size) == 8760)

    # Names and long names
    encs, longs = array("kat_enc_names"), array("kat_long_entries")
    check("one encrypted name per input name", len(encs) == len(names) == len(longs))
    for n, e, l in zip(names, encs, longs):
        check("name of %d bytes = base64url(AES-SIV([dir ID], name))" % len(n),
              b64(AESSIV(name_key).encrypt(n, [dir_id])) == e)
        want_long = ".L" + b64(hashlib.sha256(e.encode()).digest()) if len(e) > 255 else ""
        check("  long entry (%s)" % ("long" if want_long else "short"), l == want_long)
    check("xattr name", macro("KAT_XATTR_NAME_ENC") ==
          "user.ck." + b64(AESSIV(xname_key).encrypt(b"user.mime_type", [tree_id])))

    # Randomized ciphertexts: open with the documented AAD
    def aad(blockno, last):
        return bytes([1]) + volume_id + tree_id + file_id + le(blockno, 8) + bytes([last])

    def plain(blockno, n):
        return bytes((i * 7 + 3 + blockno * 101 + (i >> 8)) & 0xff for i in range(n))

    b = hexm("KAT_BLOCK0")
    check("KAT_BLOCK0 opens as block 0, not last", len(b) == 4124 and gcm_open(content_key, b, aad(0, 0)) == plain(0, 4096))
    check("  and not as last", gcm_open(content_key, b, aad(0, 1)) is None)
    b = hexm("KAT_BLOCK1_FINAL")
    check("KAT_BLOCK1_FINAL is a full block: 100 bytes, zero-padded, block 1, last",
          len(b) == 4124 and gcm_open(content_key, b, aad(1, 1)) == plain(1, 100) + bytes(3996))
    b = hexm("KAT_BLOCK_EMPTY_FILE")
    check("KAT_BLOCK_EMPTY_FILE is a full block of zeros, block 0, last",
          len(b) == 4124 and gcm_open(content_key, b, aad(0, 1)) == bytes(4096))
    check("KAT_SYMLINK_ENC opens with AAD volume ID || tree ID",
          gcm_open(symlink_key, unb64(macro("KAT_SYMLINK_ENC")), volume_id + tree_id) == b"../../shared/Maildir/.Archive")
    check("KAT_XATTR_VALUE opens with the backing name as AAD",
          gcm_open(xvalue_key, hexm("KAT_XATTR_VALUE"), macro("KAT_XATTR_NAME_ENC").encode()) == b"message/rfc822; charset=utf-8")

    # DEP record: envelope, then the payload of docs/FORMAT.md
    rec = hexm("KAT_DEP_RECORD")
    dep_id = bytes(range(0x90, 0xa0))
    check("KAT_DEP_RECORD envelope: magic, kind 1, version 1, reserved, ID",
          rec[0:8] == b"CKREC1\0\0" and rec[8] == 1 and rec[9] == 1 and rec[10:12] == b"\0\0" and
          rec[12:28] == dep_id)
    pl = gcm_open(record_key, rec[28:], rec[0:28])
    check("KAT_DEP_RECORD opens with the records key, AAD = bytes 0..27", pl is not None)
    if pl is not None:
        pos = 0

        def take(n):
            nonlocal pos
            v = pl[pos:pos + n]
            pos += n
            return v

        def u(n):
            return int.from_bytes(take(n), "little")

        def string():
            return take(u(2))
        fields = [u(4), u(8), u(8), u(8), u(8), string(), u(4)]
        check("DEP payload: state revoked, times, generation, name",
              fields == [2, 1764000000, 1764003600, 1766592000, 7, b"acme-mail", 2])
        wraps = [(u(1), u(1), u(8), string(), string()) for _ in range(fields[6])]
        check("DEP payload ends after the last wrap", pos == len(pl))
        avail = aes_key_wrap_with_padding(bytes(range(0x40, 0x60)), bytes(range(0x60, 0x80)))
        check("DEP wraps: customer (denied) and availability (never asked, RFC 5649 wrap)",
              wraps == [(1, 2, 1764003599, b"exec:/usr/libexec/ckfs/kms-helper?key=acme",
                         bytes.fromhex("4b4d532d777261707065642d6b65792d30303031")),
                        (2, 0, 0, b"file:availability", avail)])
    check("KAT_DEP_RECORD refuses another kind",
          gcm_open(record_key, rec[28:], rec[0:8] + b"\2" + rec[9:28]) is None)

    # Audit log: "seq=S time=T host=H pid=P event=E dep=D tree=R uri=U
    # result=X actor=A mac=M\n", mac_i = HMAC(audit key, mac_{i-1} || body_i)
    log = hexm("KAT_AUDIT_LOG").decode("ascii")
    head = hexm("KAT_AUDIT_HEAD").decode("ascii")
    keys = ["seq", "time", "host", "pid", "event", "dep", "tree", "uri", "result", "actor", "mac"]
    lines = log.split("\n")
    check("audit log: two records, each ending in a newline", len(lines) == 3 and lines[2] == "")
    prev, vals = bytes(32), []
    for i, line in enumerate(lines[:-1], 1):
        parts = line.split(" ")
        kv = [x.split("=", 1) if "=" in x else [x, ""] for x in parts]
        check("audit record %d: the eleven fields in order" % i, [x[0] for x in kv] == keys)
        v = dict(kv)
        if [x[0] for x in kv] != keys:
            continue
        check("audit record %d: seq, time, pid" % i,
              v["seq"] == str(i) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v["time"])
              is not None and re.fullmatch(r"[1-9]\d*", v["pid"]) is not None)
        check("audit record %d: values use only 0x21..0x7e, no '=' and '%%' only as %%XX" % i,
              all(re.fullmatch(r"(?:[\x21-\x24\x26-\x3c\x3e-\x7e]|%[0-9A-F]{2})*", v[k]) for k in keys[2:10]))
        body = line[:line.index(" mac=")]
        mac = hmac.new(audit_key, prev + body.encode(), hashlib.sha256).digest()
        check("audit record %d: mac = HMAC(audit key, previous mac || body)" % i, v["mac"] == mac.hex())
        prev = mac
        vals.append(v)

    def pct_decode(x):
        return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), x).encode("latin-1")
    if len(vals) == 2:
        check("audit record 1: event, dep, absent tree and uri, result, actor",
              [vals[0][k] for k in keys[4:10]] == ["dep-created", "acme-mail", "", "", "ok", "operator"])
        check("audit record 2: percent-encoded values decode to the appended ones",
              pct_decode(vals[1]["tree"]) == "mail/zo\u00eb 100%=all".encode() and
              pct_decode(vals[1]["uri"]) == b"exec:/usr/libexec/ckfs/kms-helper?key=acme" and
              [vals[1][k] for k in ("event", "result", "actor")] == ["revoked", "denied", "probe"])
    m = re.fullmatch(r"(count=(\d+) mac=([0-9a-f]{64})) hmac=([0-9a-f]{64})\n", head)
    check("audit head: count=N mac=M hmac=H", m is not None)
    if m:
        check("audit head: N = 2, M = mac of record 2", m.group(2) == "2" and m.group(3) == prev.hex())
        check("audit head: H = HMAC(audit key, \"ckfs-audit-head-v1\\n\" || \"count=N mac=M\")",
              m.group(4) == hmac.new(audit_key, b"ckfs-audit-head-v1\n" + m.group(1).encode(),
                                     hashlib.sha256).hexdigest())

    if bad:
        print("%d check(s) failed: format_v1.h and docs/FORMAT.md disagree" % len(bad))
        return 1
    print("format_v1.h agrees with docs/FORMAT.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
