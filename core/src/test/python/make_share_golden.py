#!/usr/bin/python3
"""Golden vectors for Compactor's Basis Sharing (dev.compactor.core.share.BasisSharing) from
independent PyTorch code (torch.linalg.svd, float64).

One group of three same-shaped matrices W0, W1, W2 [out, in] (stored F32; everything derived is
computed in float64 from those F32 values), shared at rank R:
  out.P<l> [out, in]   side "out": blocks of the rank-R truncation of [W0 | W1 | W2] ([out, 3 in])
  in.P<l>  [out, in]   side "in":  blocks of the rank-R truncation of [W0; W1; W2] ([3 out, in])
  out.S / in.S         the stacked matrices' singular values (F64)
__metadata__: magic "compactor-share-golden", version "1", rank "R".

Run:  /usr/bin/python3 core/src/test/python/make_share_golden.py \
          core/src/test/resources/golden/share/share_golden.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch

RANK = 7
OUT, IN, G = 12, 9, 3


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, arr in tensors.items():
        dtype = {np.float32: "F32", np.float64: "F64"}[arr.dtype.type]
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def truncate(a, r):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vh[:r], s


def main():
    out = sys.argv[1]
    g = torch.Generator().manual_seed(21)
    common = torch.randn(OUT, IN, generator=g)
    ws = [(common + 0.5 * torch.randn(OUT, IN, generator=g)).to(torch.float32) for _ in range(G)]
    t = {}
    for l, w in enumerate(ws):
        t[f"W{l}"] = w.numpy()
    w64 = [w.to(torch.float64) for w in ws]
    p, s = truncate(torch.cat(w64, dim=1), RANK)
    t["out.S"] = s.numpy()
    for l in range(G):
        t[f"out.P{l}"] = p[:, l * IN:(l + 1) * IN].contiguous().numpy()
    p, s = truncate(torch.cat(w64, dim=0), RANK)
    t["in.S"] = s.numpy()
    for l in range(G):
        t[f"in.P{l}"] = p[l * OUT:(l + 1) * OUT].contiguous().numpy()
    write_safetensors(out, t, {"magic": "compactor-share-golden", "version": "1",
                               "rank": str(RANK)})


if __name__ == "__main__":
    main()
