#!/usr/bin/env python3
"""Check liankong checkpoints, and their proofs, without liankong.

    verify-checkpoint.py --key liankong-public.pem CHECKPOINTS.json [...]
    verify-checkpoint.py --key KEY.pem CHECKPOINTS.json --proof PROOF.json
    verify-checkpoint.py --key KEY.pem CHECKPOINTS.json --consistency PROOF.json

A CHECKPOINTS file holds one checkpoint as delivered (the `data` of a
`store.checkpoint` webhook, the whole webhook body, or an answer of
GET /v1/checkpoints/ID), a JSON array of them, or one per line. --key may be
given once per pinned key (the current one and those retired by rotations).
Exit 0 when every signature verifies with a pinned key and every field is
what was signed; with --proof (GET /v1/proofs), also that the record version
is in the history its checkpoint states: its entry, recomputed from its
content, in its batch's tree, the batch's root in the stream's tree (RFC 9162
Merkle trees); with --consistency (GET /v1/proofs/consistency), that the later
checkpoint extends the earlier one, stream by stream. Exit 1 naming what
failed. Needs Python 3 and the `cryptography` package.
"""

import argparse
import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import (Encoding, PublicFormat,
                                                          load_pem_public_key)


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def entry(stream, key, version, deleted, content):
    """The entry hash of one version (src/store/chain.rs, entry_hash)."""
    def field(b):
        return struct.pack(">Q", len(b)) + b
    data = (b"liankong.entry.1\n" + field(stream.encode()) + field(key.encode())
            + struct.pack(">q", version) + bytes([1 if deleted else 0]))
    if content is not None:
        data += field(content.encode())
    return hashlib.sha256(data).digest()


def included(leaf_hash, index, size, path, root):
    """RFC 9162, section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def consistent(first, second, first_root, second_root, proof):
    """RFC 9162, section 2.1.4.2."""
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second or not (proof or first & (first - 1) == 0):
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def checkpoints(path):
    text = open(path, encoding="utf-8").read().strip()
    try:
        value = json.loads(text)
        items = value if isinstance(value, list) else [value]
    except json.JSONDecodeError:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [i["data"] if i.get("type") == "store.checkpoint" else i for i in items]


def key_id(key):
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def check(cp, keys):
    name = f"checkpoint {cp.get('checkpoint_id')}"
    key = keys.get(cp.get("key_id"))
    if key is None:
        return f"{name}: signed by key {cp.get('key_id')}, which is not pinned"
    try:
        key.verify(base64.b64decode(cp["signature"]), cp["signed"].encode("utf-8"))
    except InvalidSignature:
        return f"{name}: the signature does not verify"
    lines = cp["signed"].splitlines()
    facts = dict(line.split(" ", 1) for line in lines[1:] if not line.startswith("stream "))
    streams = {}
    for line in lines:
        if line.startswith("stream "):
            w = line.split()
            streams[w[1]] = dict(zip(w[2::2], w[3::2]))
    if (lines[0] != "liankong checkpoint v1" or facts.get("id") != str(cp["checkpoint_id"])
            or facts.get("key") != cp["key_id"] or facts.get("audience") != cp["audience"]):
        return f"{name}: its fields do not match the signed text"
    for s in cp["streams"]:
        want = streams.get(s["stream"], {})
        got = {"batches": str(s["batches"]), "versions": str(s["versions"]),
               "head": s["head"], "root": s["root"]}
        if want != got:
            return f"{name}: stream {s['stream']} does not match the signed text"
    if len(streams) != len(cp["streams"]):
        return f"{name}: its streams do not match the signed text"
    return None


def stream_of(cp, name):
    return next((s for s in cp["streams"] if s["stream"] == name), None)


def check_proof(cp, proof):
    h = bytes.fromhex
    stream = stream_of(cp, proof["stream"])
    what = f"{proof['stream']} {proof['key']!r} version {proof['version']}"
    if stream is None:
        return f"{what}: checkpoint {cp['checkpoint_id']} does not cover its stream"
    if entry(proof["stream"], proof["key"], proof["version"], proof["deleted"],
             proof["content"]) != h(proof["entry"]):
        return f"{what}: its content is not the entry the proof is about"
    in_batch = included(leaf(h(proof["entry"])), proof["index_in_batch"], proof["batch_size"],
                        [h(p) for p in proof["batch_path"]], h(proof["batch_root"]))
    in_stream = included(leaf(h(proof["batch_root"])), proof["batch"] - 1, stream["batches"],
                         [h(p) for p in proof["stream_path"]], h(stream["root"]))
    if not (in_batch and in_stream):
        return f"{what}: not in the history checkpoint {cp['checkpoint_id']} states"
    return None


def check_consistency(earlier, later, proof):
    h = bytes.fromhex
    given = {s["stream"]: s["proof"] for s in proof["streams"]}
    for s in earlier["streams"]:
        t = stream_of(later, s["stream"])
        if t is None or s["stream"] not in given or not consistent(
                s["batches"], t["batches"], h(s["root"]), h(t["root"]),
                [h(p) for p in given[s["stream"]]]):
            return (f"stream {s['stream']}: checkpoint {later['checkpoint_id']} does not "
                    f"extend checkpoint {earlier['checkpoint_id']}")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True, action="append",
                    help="a pinned public key of the deployment (PEM); once per key")
    ap.add_argument("--proof", help="an inclusion proof (GET /v1/proofs) to check as well")
    ap.add_argument("--consistency", help="a consistency proof (GET /v1/proofs/consistency)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    keys = {key_id(k): k for k in (load_pem_public_key(open(p, "rb").read()) for p in args.key)}
    failures, seen = [], []
    for path in args.files:
        for cp in checkpoints(path):
            seen.append(cp)
            failures.append(check(cp, keys))

    def find(i, stream=None, audience=None):
        return next((c for c in seen if c["checkpoint_id"] == i and audience in (None, c["audience"])
                     and (stream is None or stream_of(c, stream))), None)

    if args.proof and not any(failures):
        proof = json.load(open(args.proof, encoding="utf-8"))
        cp = find(proof["checkpoint_id"], proof["stream"])
        failures.append(check_proof(cp, proof) if cp else
                        f"no checkpoint {proof['checkpoint_id']} of {proof['stream']} among the files")
    if args.consistency and not any(failures):
        proof = json.load(open(args.consistency, encoding="utf-8"))
        earlier = find(proof["from"])
        later = earlier and find(proof["to"], audience=earlier["audience"])
        failures.append(check_consistency(earlier, later, proof) if later else
                        f"no checkpoints {proof['from']} and {proof['to']} among the files")
    failures = [f for f in failures if f]
    for f in failures:
        print(f"FAILED: {f}")
    if not failures:
        extra = "".join(f", and the {k}" for o, k in ((args.proof, "proof"),
                        (args.consistency, "consistency proof")) if o)
        print(f"ok: {len(seen)} checkpoint(s){extra}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
