#!/usr/bin/python3
"""Checks a model directory written by Compactor's SafetensorsWriter with the official
`safetensors` package and PyTorch/numpy rounding (a manual, one-off cross-check; not run by Maven).

The Java side writes tensors "layers.<t>.weight" (t = 0..5, n = 300 + 17 t elements, stored as
F32, F16, BF16 in turn) with values v(i + 1000 t), and a BF16 scalar "scalar" = v(5), where
    v(i) = float32(((i * 7919) % 1000 - 500) / 37.0)
(a correctly rounded double division, then rounded to fp32: identical in Java and Python), using
SafetensorsWriter(dir, maxShardBytes=3000, metadata={"producer": "compactor"}).

Run (from /tmp, with the safetensors wheel on PYTHONPATH):
    cd /tmp && PYTHONPATH=/path/to/safetensors /usr/bin/python3 check_writer_output.py OUT_DIR
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open


def v(i):
    return np.float32(((i * 7919) % 1000 - 500) / 37.0)


def reference(dtype, src):
    t = torch.from_numpy(src)
    if dtype == torch.float16:
        return torch.from_numpy(src.astype(np.float16))
    if dtype == torch.bfloat16:
        return t.to(torch.bfloat16)
    return t


def main(out):
    dtypes = [torch.float32, torch.float16, torch.bfloat16]
    expected = {}
    for t in range(6):
        n = 300 + 17 * t
        src = np.array([v(i + 1000 * t) for i in range(n)], dtype=np.float32)
        expected["layers.%d.weight" % t] = reference(dtypes[t % 3], src)
    expected["scalar"] = reference(torch.bfloat16, np.array(v(5), dtype=np.float32))

    index_path = os.path.join(out, "model.safetensors.index.json")
    if os.path.exists(index_path):
        index = json.load(open(index_path))
        files = sorted(set(index["weight_map"].values()))
    else:
        index, files = None, ["model.safetensors"]
    seen, total = {}, 0
    for name in files:
        path = os.path.join(out, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            assert (8 + n) % 8 == 0, "header not padded to 8 bytes: %s" % name
        with safe_open(path, framework="pt") as f:
            assert f.metadata() == {"format": "pt", "producer": "compactor"}, f.metadata()
            for k in f.keys():
                got = f.get_tensor(k)
                want = expected[k]
                assert got.dtype == want.dtype and got.shape == want.shape, (k, got.dtype, got.shape)
                assert torch.equal(got.reshape(-1).view(torch.int16 if got.element_size() == 2
                                                        else torch.int32),
                                   want.reshape(-1).view(torch.int16 if want.element_size() == 2
                                                         else torch.int32)), k
                assert k not in seen, "tensor in two shards: " + k
                seen[k] = name
                total += got.numel() * got.element_size()
    assert set(seen) == set(expected), set(expected) ^ set(seen)
    if index is not None:
        assert index["weight_map"] == seen, "weight_map disagrees with the shards"
        assert index["metadata"]["total_size"] == total, (index["metadata"], total)
    print("OK: %d tensors in %d file(s), %d bytes, bit-exact against PyTorch/numpy rounding"
          % (len(seen), len(files), total))


if __name__ == "__main__":
    main(sys.argv[1])
