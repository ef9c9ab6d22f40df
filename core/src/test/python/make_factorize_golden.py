#!/usr/bin/python3
"""Golden vectors for Compactor's SVD and SVD-LLM factorization (dev.compactor.core.factorize)
from independent PyTorch code (torch.linalg.svd / cholesky / solve_triangular, float64).

Cases (inputs stored F32; everything derived is computed in float64 from those F32 values):
  svd.<case>.A [m, n]    matrices: tall, wide, square, rank-deficient (rank 7, built as a product)
  svd.<case>.S [k]       torch.linalg.svd singular values (F64)
  plain.W [out, in], plain.P [out, in]  rank-R truncated SVD product U_r diag(s_r) Vh_r (F64)
  llm.X [n, in], llm.W [out, in]        calibration inputs with correlated, unevenly scaled columns
  llm.S [in]             singular values of W S, S = cholesky(X^T X) lower (F64)
  llm.P [out, in]        SVD-LLM product u v, u = U_r diag(s_r), v = Vh_r S^-1 (F64)
__metadata__: magic "compactor-factorize-golden", version "1", rank "R".

The script also checks SVD-LLM's property: ||X (W - P)^T||_F = sqrt(sum of discarded s^2 of W S).

Run:  /usr/bin/python3 core/src/test/python/make_factorize_golden.py \
          core/src/test/resources/golden/factorize/factorize_golden.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch

RANK = 10


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


def main():
    out = sys.argv[1]
    g = torch.Generator().manual_seed(11)
    t = {}
    cases = {
        "tall": torch.randn(64, 24, generator=g),
        "wide": torch.randn(20, 50, generator=g),
        "square": torch.randn(32, 32, generator=g) * torch.logspace(0, -3, 32).unsqueeze(0),
        "deficient": torch.randn(40, 7, generator=g) @ torch.randn(7, 30, generator=g),
    }
    for name, a in cases.items():
        a32 = a.to(torch.float32)
        s = torch.linalg.svd(a32.to(torch.float64), full_matrices=False).S
        t[f"svd.{name}.A"] = a32.numpy()
        t[f"svd.{name}.S"] = s.numpy()

    out_f, in_f, n = 32, 48, 200
    w = (torch.randn(out_f, in_f, generator=g) * 0.1).to(torch.float32)
    u, s, vh = torch.linalg.svd(w.to(torch.float64), full_matrices=False)
    t["plain.W"] = w.numpy()
    t["plain.P"] = (u[:, :RANK] * s[:RANK] @ vh[:RANK]).numpy()

    mix = torch.randn(in_f, in_f, generator=g) * torch.logspace(0, -2, in_f).unsqueeze(1)
    x = (torch.randn(n, in_f, generator=g) @ mix * torch.logspace(1, -1, in_f)).to(torch.float32)
    xd = x.to(torch.float64)
    wd = w.to(torch.float64)
    gram = xd.T @ xd
    chol = torch.linalg.cholesky(gram)
    u, s, vh = torch.linalg.svd(wd @ chol, full_matrices=False)
    uu = u[:, :RANK] * s[:RANK]
    vv = torch.linalg.solve_triangular(chol, vh[:RANK], upper=False, left=False)
    p = uu @ vv
    err = torch.linalg.norm(xd @ (wd - p).T)
    want = torch.sqrt((s[RANK:] ** 2).sum())
    assert abs(err - want) < 1e-8 * want, (err, want)
    plain_err = torch.linalg.norm(xd @ (wd - torch.from_numpy(t["plain.P"])).T)
    assert plain_err > err, (plain_err, err)
    t["llm.X"] = x.numpy()
    t["llm.W"] = w.numpy()
    t["llm.S"] = s.numpy()
    t["llm.P"] = p.numpy()
    write_safetensors(out, t, {"magic": "compactor-factorize-golden", "version": "1",
                               "rank": str(RANK)})
    print(f"wrote {out}: output error svd_llm {err:.6f}, plain {plain_err:.6f}")


if __name__ == "__main__":
    main()
