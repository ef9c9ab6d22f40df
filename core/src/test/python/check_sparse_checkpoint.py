#!/usr/bin/python3
"""Decodes a compressed-tensors sparse checkpoint (numpy only) and compares it with a dense one.

For every module P with P.compressed / P.bitmask / P.shape [/ P.row_offsets] in SPARSE_DIR, the
weight is rebuilt as compressed-tensors' sparse24_bitmask_decompress / bitmask_decompress do
(numpy.unpackbits(bitmask, axis=-1, count=cols, bitorder="little"), then the values scattered in
row-major order), and must equal DENSE_DIR's P.weight bit for bit; every other tensor must equal
its dense twin. Checks config.json's quantization_config.sparsity_config too, and for
sparse-24-bitmask that every group of 4 keeps exactly 2 positions.

Run:  /usr/bin/python3 core/src/test/python/check_sparse_checkpoint.py SPARSE_DIR DENSE_DIR
Exit status 0 when everything matches; prints the bytes of both.
"""
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F16": "<u2", "BF16": "<u2", "I64": "<i8", "U8": "u1"}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = (e["dtype"], np.frombuffer(data[a:b], dtype=DTYPES[e["dtype"]]).reshape(e["shape"]))
    return out


def read_dir(d):
    tensors = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            tensors.update(read_safetensors(os.path.join(d, f)))
    return tensors


def main():
    sparse_dir, dense_dir = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(sparse_dir, "config.json")))["quantization_config"]
    sc = cfg["sparsity_config"]
    fmt = sc["format"]
    assert fmt in ("sparse-24-bitmask", "sparse-bitmask"), fmt
    assert sc["targets"] == ["Linear"] and sc["ignore"] == ["lm_head"], sc
    s = read_dir(sparse_dir)
    d = read_dir(dense_dir)
    decoded = 0
    for name in list(s):
        if not name.endswith(".compressed"):
            continue
        p = name[: -len(".compressed")]
        dt, values = s[name]
        shape = [int(x) for x in s[p + ".shape"][1].reshape(-1)]
        bitmask = s[p + ".bitmask"][1]
        mask = np.unpackbits(bitmask, axis=-1, count=shape[-1], bitorder="little").astype(bool)
        mask = mask.reshape(shape)
        if fmt == "sparse-24-bitmask":
            assert s[p + ".shape"][1].shape == (2, 1)
            assert (mask.reshape(-1, 4).sum(axis=1) == 2).all(), p + ": not 2 of every 4"
            assert values.shape == (shape[0], shape[1] // 2)
        else:
            counts = mask.sum(axis=-1)
            assert (s[p + ".row_offsets"][1] == np.cumsum(counts) - counts).all(), p
        w = np.zeros(shape, dtype=values.dtype)
        w[mask] = values.reshape(-1)
        ddt, dense = d[p + ".weight"]
        assert ddt == dt, (p, ddt, dt)
        # -0.0 is not stored by sparse-bitmask: compare values there, bits for 2:4
        if fmt == "sparse-bitmask" and dt == "F32":
            assert (w == dense).all(), p
        else:
            assert (w.view(np.uint8) == dense.view(np.uint8)).all(), p + ": decoded != dense"
        decoded += 1
    for name, (dt, a) in s.items():
        if name.rsplit(".", 1)[-1] in ("compressed", "bitmask", "shape", "row_offsets"):
            continue
        assert (a.view(np.uint8) == d[name][1].view(np.uint8)).all(), name
    size = lambda x: sum(os.path.getsize(os.path.join(x, f)) for f in os.listdir(x)
                         if f.endswith(".safetensors"))
    print(f"{fmt}: {decoded} linears decoded equal to the dense weights; "
          f"{size(sparse_dir)} bytes vs {size(dense_dir)} dense")


if __name__ == "__main__":
    main()
