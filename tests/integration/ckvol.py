"""Offline reader of a ckfs volume's keys, for the tamper and secrets tests.

Follows docs/FORMAT.md (python3 + python3-cryptography): unwraps the
service key with the volume's key file, decrypts DEP and tree records,
unwraps a DEP key through a file: customer key and a tree key through the
DEP key, and derives every key below. The tests use it to know the key
bytes they search for (secrets) and to locate fields (tamper).
"""
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

REC_HDR = 40          # magic 8, kind 1, version 1, reserved 2, id 16, nonce 12


def hkdf(ikm, label, ctx=b"", n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None,
                info=label.encode() + ctx).derive(ikm)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, n):
        b = self.d[self.o:self.o + n]
        assert len(b) == n, "short record"
        self.o += n
        return b

    def u(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def s(self):
        return self.take(self.u("H"))


class Volume:
    def __init__(self, vol, keydir):
        self.vol, self.keydir = vol, keydir
        h = read(os.path.join(vol, ".ckfs", "volume"))
        self.volume_id = h[32:48]
        self.service_tree_id = h[48:64]
        self.kek_id = h[64:80]
        self.kek = read(os.path.join(keydir, self.kek_id.hex() + ".key"))[32:64]
        self.service_key = aes_key_unwrap_with_padding(self.kek, h[80:120])
        self.records_key = hkdf(self.service_key, "ckfs v1 records")
        self.audit_key = hkdf(self.service_key, "ckfs v1 audit mac")
        self.vol_mac_key = hkdf(self.service_key, "ckfs v1 volume header mac")
        self.service_tree_key = hkdf(self.service_key, "ckfs v1 service tree key")

    def open_record(self, path):
        b = read(path)
        pt = AESGCM(self.records_key).decrypt(b[28:40], b[40:], b[:28])
        return b[8], b[12:28], pt

    def records(self, kind):
        """(ID, Reader over the plaintext) of each record in .ckfs/KIND."""
        d = os.path.join(self.vol, ".ckfs", kind)
        for n in sorted(os.listdir(d)):
            if n.startswith("."):
                continue
            _, rid, pt = self.open_record(os.path.join(d, n))
            yield rid, Reader(pt)

    def deps(self):
        out = {}
        for rid, r in self.records("deps"):
            dep = {"id": rid, "state": r.u("I"), "created": r.u("Q"), "changed": r.u("Q"),
                   "purge_after": r.u("Q"), "generation": r.u("Q"), "name": r.s().decode()}
            wraps = []
            for _ in range(r.u("I")):
                wraps.append({"role": r.u("B"), "last_result": r.u("B"), "last_time": r.u("Q"),
                              "uri": r.s().decode(), "wrapped": r.s()})
            dep["wraps"] = wraps
            out[dep["name"]] = dep
        return out

    def trees(self):
        out = []
        for rid, r in self.records("trees"):
            out.append({"id": rid, "state": r.u("I"), "created": r.u("Q"), "generation": r.u("Q"),
                        "dep_id": r.take(16), "path": r.s().decode(), "wrapped": r.s(),
                        "old_id": r.take(16), "next_wrapped": r.s()})
        return out

    def dep_key(self, dep):
        for w in dep["wraps"]:
            if w["uri"].startswith("file:"):
                try:
                    k = read(w["uri"][5:])[32:64]
                    return aes_key_unwrap_with_padding(k, w["wrapped"])
                except (OSError, ValueError):
                    continue
        raise AssertionError("no file: key of DEP %s unwraps" % dep["name"])

    def tree_keys(self):
        """{tree path: (tree id, tree key, dep key)} for every DEP tree."""
        deps = {d["id"]: d for d in self.deps().values()}
        out = {}
        for t in self.trees():
            if not t["wrapped"]:
                continue
            dk = self.dep_key(deps[t["dep_id"]])
            out[t["path"]] = (t["id"], aes_key_unwrap_with_padding(dk, t["wrapped"]), dk)
        return out


def tree_subkeys(tree_key):
    return {"names": hkdf(tree_key, "ckfs v1 names siv", n=64),
            "xname": hkdf(tree_key, "ckfs v1 xattr name siv", n=64),
            "xvalue": hkdf(tree_key, "ckfs v1 xattr value"),
            "symlink": hkdf(tree_key, "ckfs v1 symlink target")}


def file_keys(tree_key, file_id):
    fk = hkdf(tree_key, "ckfs v1 file key", file_id)
    return {"file": fk, "content": hkdf(fk, "ckfs v1 file content"),
            "header": hkdf(fk, "ckfs v1 file header mac"), "size": hkdf(fk, "ckfs v1 file size")}
