#!/usr/bin/env python3
"""Check liankong checkpoints, and inclusion proofs, without liankong.

    verify-checkpoint.py --key liankong-public.pem CHECKPOINT.json [...]
    verify-checkpoint.py --key liankong-public.pem CHECKPOINT.json --proof PROOF.json

A CHECKPOINT file holds one checkpoint as delivered (the `data` of a
`store.checkpoint` webhook, or an answer of GET /v1/checkpoints/ID), a JSON
array of them, or one per line. Exit 0 when every signature verifies with the
pinned public key and every field is what was signed; with --proof, also that
the record version is in the history the checkpoint states (RFC 9162 Merkle
trees: the version's entry in its batch's tree, the batch's root in the
stream's tree). Exit 1 naming what failed. Needs Python 3 and the
`cryptography` package (pip install cryptography).
"""

import argparse
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


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


def checkpoints(path):
    text = open(path, encoding="utf-8").read().strip()
    try:
        value = json.loads(text)
        return value if isinstance(value, list) else [value]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def check(cp, key):
    name = f"checkpoint {cp.get('checkpoint_id')}"
    signed = cp["signed"].encode("utf-8")
    try:
        key.verify(base64.b64decode(cp["signature"]), signed)
    except InvalidSignature:
        return f"{name}: the signature does not verify"
    lines = cp["signed"].splitlines()
    facts = dict(line.split(" ", 1) for line in lines[1:] if not line.startswith("stream "))
    streams = {}
    for line in lines:
        if line.startswith("stream "):
            w = line.split()
            streams[w[1]] = dict(zip(w[2::2], w[3::2]))
    if lines[0] != "liankong checkpoint v1" or facts.get("id") != str(cp["checkpoint_id"]):
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


def check_proof(cp, proof):
    h = bytes.fromhex
    stream = next((s for s in cp["streams"] if s["stream"] == proof["stream"]), None)
    what = f"{proof['stream']} {proof['key']!r} version {proof['version']}"
    if stream is None:
        return f"{what}: checkpoint {cp['checkpoint_id']} does not cover its stream"
    in_batch = included(leaf(h(proof["entry"])), proof["index_in_batch"], proof["batch_size"],
                        [h(p) for p in proof["batch_path"]], h(proof["batch_root"]))
    in_stream = included(leaf(h(proof["batch_root"])), proof["batch"], stream["batches"],
                         [h(p) for p in proof["stream_path"]], h(stream["root"]))
    if not (in_batch and in_stream):
        return f"{what}: not in the history checkpoint {cp['checkpoint_id']} states"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True, help="the deployment's pinned public key (PEM)")
    ap.add_argument("--proof", help="an inclusion proof (GET /v1/proofs) to check as well")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    key = load_pem_public_key(open(args.key, "rb").read())
    failures, seen = [], []
    for path in args.files:
        for cp in checkpoints(path):
            seen.append(cp)
            problem = check(cp, key)
            if problem:
                failures.append(problem)
    if args.proof and not failures:
        proof = json.load(open(args.proof, encoding="utf-8"))
        cp = next((c for c in seen if c["checkpoint_id"] == proof["checkpoint_id"]), None)
        problem = (check_proof(cp, proof) if cp else
                   f"no checkpoint {proof['checkpoint_id']} among the files")
        if problem:
            failures.append(problem)
    for f in failures:
        print(f"FAILED: {f}")
    if not failures:
        print(f"ok: {len(seen)} checkpoint(s)" + (", and the proof" if args.proof else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
