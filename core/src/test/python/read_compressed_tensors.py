#!/usr/bin/python3
"""Independent reader for compressed-tensors checkpoints written by Compactor (numpy only).

Decodes every quantized Linear of a model directory the way compressed-tensors does
(unpack_from_int32 in compressors/quantized_compressors/pack_quantized.py for "pack-quantized":
value k of each int32 is (x >> (bits * k)) & mask, minus 2^(bits-1); zero points packed along
dim 0; "int-quantized": int8 weight and int8 zero point as stored), dequantizes
(q - zero_point) * scale[row, g_idx[col]] with g_idx[col] = col // group_size when absent, and
compares with expected/model.safetensors (float32) next to the checkpoint.

Run:  /usr/bin/python3 core/src/test/python/read_compressed_tensors.py \
          core/src/test/resources/compressed_tensors/*/
Exit status 0 when every fixture matches exactly.
"""
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I8": "i1", "U8": "u1"}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[entry["dtype"]])
        tensors[name] = arr.reshape(entry["shape"])
    return tensors


def unpack_int32(packed, bits, n, dim):
    factor = 32 // bits
    mask = (1 << bits) - 1
    packed = packed.astype(np.int64) & 0xFFFFFFFF
    if dim == 1:
        out = np.zeros((packed.shape[0], packed.shape[1] * factor), dtype=np.int64)
        for k in range(factor):
            out[:, k::factor] = (packed >> (bits * k)) & mask
        out = out[:, :n]
    else:
        out = np.zeros((packed.shape[0] * factor, packed.shape[1]), dtype=np.int64)
        for k in range(factor):
            out[k::factor, :] = (packed >> (bits * k)) & mask
        out = out[:n, :]
    return out - (1 << (bits - 1))


def dequantize(t, prefix, qc):
    args = qc["config_groups"]["group_0"]["weights"]
    bits = args["num_bits"]
    fmt = qc["format"]
    if fmt == "pack-quantized":
        rows, cols = (int(v) for v in t[prefix + ".weight_shape"])
        q = unpack_int32(t[prefix + ".weight_packed"], bits, cols, 1)
    elif fmt in ("int-quantized", "naive-quantized"):
        q = t[prefix + ".weight"].astype(np.int64)
        rows, cols = q.shape
    else:
        raise ValueError("unknown format " + fmt)
    scale = t[prefix + ".weight_scale"].astype(np.float32)
    group = cols if args["strategy"] == "channel" else args["group_size"]
    if args["symmetric"]:
        zp = np.zeros(scale.shape, dtype=np.int64)
    elif fmt == "pack-quantized":
        zp = unpack_int32(t[prefix + ".weight_zero_point"], bits, rows, 0)
    else:
        zp = t[prefix + ".weight_zero_point"].astype(np.int64)
    if prefix + ".weight_g_idx" in t:
        g_idx = t[prefix + ".weight_g_idx"].astype(np.int64)
    else:
        g_idx = np.arange(cols) // group
    return ((q - zp[:, g_idx]).astype(np.float32) * scale[:, g_idx]).astype(np.float32)


def check(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors", qc["quant_method"]
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    expected = read_safetensors(os.path.join(model_dir, "expected", "model.safetensors"))
    ok = True
    for name, want in expected.items():
        prefix = name[: -len(".weight")]
        got = dequantize(tensors, prefix, qc)
        diff = float(np.max(np.abs(got - want)))
        print(f"{model_dir}: {prefix} [{qc['format']}] shape {got.shape} max|diff| = {diff}")
        ok &= diff == 0.0
    return ok


if __name__ == "__main__":
    results = [check(d) for d in sys.argv[1:]]
    sys.exit(0 if results and all(results) else 1)
