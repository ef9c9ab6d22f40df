#!/usr/bin/python3
"""Golden safetensors files for Compactor's reader, written byte by byte from the spec.

Independent of the Java code: the header JSON, padding and data section are assembled here with
struct/json/numpy; BF16 rounding comes from PyTorch (torch.bfloat16), F16 rounding from numpy
(float16). Expected values are stored as fp32 bit patterns in expected.json next to each file, so
the Java test can compare exactly (NaN included).

If the official `safetensors` package is importable, every file written here is also loaded with
it and compared, which checks this script against the reference implementation.

Run (from /tmp, so the repository's directories do not shadow imports):
    cd /tmp && /usr/bin/python3 /path/to/core/src/test/python/make_safetensors_fixtures.py \
        /path/to/core/src/test/resources/safetensors
"""
import json
import os
import struct
import sys

import numpy as np
import torch

MAGIC = "compactor-safetensors-fixtures"
VERSION = 1


def f32_bits(a):
    return [int(x) for x in np.asarray(a, dtype=np.float32).view(np.uint32).ravel()]


def bf16_bytes(src_f32):
    t = torch.from_numpy(np.ascontiguousarray(src_f32, dtype=np.float32)).to(torch.bfloat16)
    raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
    widened = t.to(torch.float32).numpy()
    return raw, widened


def tensor(dtype, shape, src):
    """(raw little-endian bytes, expected fp32 values or None, source fp32 values or None)."""
    src = np.asarray(src).reshape(shape)
    if dtype == "F32":
        a = src.astype("<f4")
        return a.tobytes(), a.astype(np.float32), a.astype(np.float32)
    if dtype == "F16":
        with np.errstate(over="ignore"):  # 65520 and -3.4e38 overflow to inf on purpose
            a = src.astype(np.float32).astype("<f2")
        return a.tobytes(), a.astype(np.float32), src.astype(np.float32)
    if dtype == "BF16":
        raw, widened = bf16_bytes(src.astype(np.float32))
        return raw, widened, src.astype(np.float32)
    if dtype == "F64":
        a = src.astype("<f8")
        return a.tobytes(), a.astype(np.float32), None
    if dtype == "I64":
        return src.astype("<i8").tobytes(), None, None
    raise ValueError(dtype)


def write_file(path, tensors, metadata, data_order):
    """tensors: name -> (dtype, shape, raw). data_order: order of tensors in the data section."""
    offsets = {}
    pos = 0
    for name in data_order:
        raw = tensors[name][2]
        offsets[name] = [pos, pos + len(raw)]
        pos += len(raw)
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    # Header keys in reverse-sorted order: the reader must not depend on key order.
    for name in sorted(tensors, reverse=True):
        dtype, shape, _ = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": offsets[name]}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name in data_order:
            f.write(tensors[name][2])


def build(specs):
    """specs: list of (name, dtype, shape, values) -> (tensors for write_file, expected json)."""
    tensors, expected = {}, {}
    for name, dtype, shape, values in specs:
        raw, widened, source = tensor(dtype, shape, values)
        tensors[name] = (dtype, shape, raw)
        e = {"dtype": dtype, "shape": list(shape), "raw_hex": raw.hex()}
        if widened is not None:
            e["fp32_bits"] = f32_bits(widened)
        if source is not None:
            e["source_fp32_bits"] = f32_bits(source)
        expected[name] = e
    return tensors, expected


def specials():
    return np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.4e38, 65504.0, 65520.0, 6e-8, 3e-8,
         1.00390625, 1.01171875, 2.0 ** -24 * 1.5, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11],
        dtype=np.float32)


def main(out):
    rng = np.random.default_rng(20240521)
    os.makedirs(out, exist_ok=True)

    specs = [
        ("model.layers.0.w_f32", "F32", (3, 4), rng.standard_normal(12)),
        ("model.layers.0.w_f16", "F16", (2, 3, 4), rng.standard_normal(24) * 100),
        ("model.layers.0.w_f16_small", "F16", (8,), rng.standard_normal(8) * 1e-6),
        ("model.layers.0.w_bf16", "BF16", (5, 3), rng.standard_normal(15) * 1e3),
        ("specials.f32", "F32", (16,), specials()),
        ("specials.f16", "F16", (16,), specials()),
        ("specials.bf16", "BF16", (16,), specials()),
        ("w_f64", "F64", (4,), rng.standard_normal(4)),
        ("ids", "I64", (3,), np.array([0, -7, 2 ** 40])),
        ("empty", "F32", (0, 5), np.zeros(0)),
        ("scalar", "BF16", (), np.array(3.14159)),
    ]
    tensors, expected = build(specs)
    # Data order differs from both spec order and key order.
    order = sorted(tensors, key=lambda n: (len(tensors[n][2]) % 5, n))
    metadata = {"format": "pt", "producer": MAGIC, "version": str(VERSION)}
    write_file(os.path.join(out, "single.safetensors"), tensors, metadata, order)
    dump(os.path.join(out, "single.expected.json"), metadata, expected)

    shard_dir = os.path.join(out, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    shard_specs = [
        [("embed.weight", "BF16", (4, 6), rng.standard_normal(24)),
         ("layers.0.attn.q", "F16", (6, 6), rng.standard_normal(36))],
        [("layers.0.mlp.up", "F32", (6, 2), rng.standard_normal(12)),
         ("norm.weight", "BF16", (6,), 1 + rng.standard_normal(6) * 0.01)],
    ]
    all_expected, weight_map, total = {}, {}, 0
    for i, specs in enumerate(shard_specs):
        name = "model-%05d-of-%05d.safetensors" % (i + 1, len(shard_specs))
        tensors, expected = build(specs)
        write_file(os.path.join(shard_dir, name), tensors, {"format": "pt"}, sorted(tensors))
        all_expected.update(expected)
        for t in tensors:
            weight_map[t] = name
            total += len(tensors[t][2])
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    dump(os.path.join(out, "sharded.expected.json"), {"format": "pt"}, all_expected)

    cross_check(out)


def dump(path, metadata, tensors):
    with open(path, "w") as f:
        json.dump({"magic": MAGIC, "version": VERSION, "metadata": metadata, "tensors": tensors},
                  f, indent=1)


def cross_check(out):
    """Loads the files with the official safetensors package, when it is there."""
    try:
        from safetensors import safe_open
    except ImportError:
        print("safetensors package not found: skipped the cross-check")
        return
    for rel, exp_name in [("single.safetensors", "single.expected.json")] + [
            (os.path.join("sharded", f), "sharded.expected.json")
            for f in sorted(os.listdir(os.path.join(out, "sharded"))) if f.endswith(".safetensors")]:
        exp = json.load(open(os.path.join(out, exp_name)))["tensors"]
        with safe_open(os.path.join(out, rel), framework="pt") as f:
            for k in f.keys():
                t = f.get_tensor(k)
                e = exp[k]
                raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
                assert raw.hex() == e["raw_hex"], k
                assert list(t.shape) == e["shape"], k
        print("official safetensors reader agrees on", rel)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "core/src/test/resources/safetensors")
