#!/usr/bin/python3
"""Golden vectors for Compactor's GptqQuantizer from an independent PyTorch GPTQ.

The algorithm is written here from the paper and the reference code's structure (IST-DASLab
gptq.py / AutoGPTQ fasterquant): dead columns, dampening, torch.linalg Cholesky of H, its
inverse with torch.cholesky_inverse, the upper Cholesky factor of H^-1, block-wise lazy updates,
optional activation order (static groups or g_idx). All arithmetic is float64 except the grid,
which follows compressed-tensors / RtnQuantizer in float32:
  symmetric   scale = amax / 7.5,              q = clamp(round(w / scale), -8, 7)
  asymmetric  range widened to include 0, scale = (max - min) / 15,
              zero = clamp(-8 - round(min / scale)), q = clamp(round(w / scale) + zero, -8, 7)
One deliberate difference from gptq.py: a group's scale is computed from the block-local,
already-updated weights (W1), not from W at the block start (these coincide when the group
starts at a block boundary). The Java class documents the same rule.

Output: one safetensors file (written by hand: header JSON + raw little-endian data) with
  W [rows, cols] F32, X [n, cols] F32 (H = 2/n X^T X in float64 on both sides),
  deq.<case> [rows, cols] F32 and, for act-order GROUP, gidx.<case> [cols] I32,
and __metadata__ "case.<name>" = "bits,symmetric,group,actorder,percdamp,blocksize".

Run:  cd /tmp && /usr/bin/python3 /path/to/core/src/test/python/make_gptq_golden.py \
          /path/to/core/src/test/resources/golden/gptq/gptq_golden.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch

ROWS, COLS, N = 16, 192, 256
CASES = {
    "sym_g32_none": (4, True, 32, "none", 0.01, 64),
    "asym_g64_none": (4, False, 64, "none", 0.01, 64),
    "sym_g32_group": (4, True, 32, "group", 0.01, 64),
    "asym_g64_weight": (4, False, 64, "weight", 0.01, 64),
    "sym_channel_weight": (4, True, 0, "weight", 0.05, 64),
    "sym8_g64_none": (8, True, 64, "none", 0.01, 64),
}


def grid_params(block, bits, sym):
    """Per-row float32 scale and signed zero of the values in block [rows, g]."""
    b = block.to(torch.float32)
    lo = torch.clamp(b.min(dim=1).values, max=0.0)
    hi = torch.clamp(b.max(dim=1).values, min=0.0)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if sym:
        raw = torch.maximum(-lo, hi) / torch.tensor((qmax - qmin) / 2.0, dtype=torch.float32)
        zero = torch.zeros_like(raw, dtype=torch.int64)
    else:
        raw = (hi - lo) / torch.tensor(float(qmax - qmin), dtype=torch.float32)
        safe = torch.where(raw == 0, torch.ones_like(raw), raw)
        zero = torch.where(
            raw == 0,
            torch.zeros_like(raw, dtype=torch.int64),
            torch.clamp(qmin - torch.round(lo / safe).to(torch.int64), qmin, qmax),
        )
    scale = torch.where(raw == 0, torch.ones_like(raw), raw)
    return scale, zero


def quant_column(w, scale, zero, bits):
    """float64 column w, float32 scale, int zero -> float64 dequantized values."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(w.to(torch.float32) / scale).to(torch.int64) + zero, qmin, qmax)
    return ((q - zero).to(torch.float32) * scale).to(torch.float64)


def gptq(W, H, bits, sym, group, actorder, percdamp, blocksize):
    W = W.clone().to(torch.float64)
    H = H.clone().to(torch.float64)
    rows, cols = W.shape
    g = cols if group == 0 else group
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    static = group == 0 or actorder == "weight"
    params = {}
    if static:
        for k in range(cols // g):
            params[k] = grid_params(W[:, k * g:(k + 1) * g], bits, sym)
    perm = torch.arange(cols)
    if actorder != "none":
        # stable descending sort so ties keep their natural order (the Java side does the same)
        perm = torch.from_numpy(np.argsort(-torch.diag(H).numpy(), kind="stable"))
        W = W[:, perm]
        H = H[perm][:, perm]
    damp = percdamp * torch.mean(torch.diag(H))
    H[range(cols), range(cols)] += damp
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    Q = torch.zeros_like(W)
    group_of = [0] * cols
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if static:
                k = 0 if group == 0 else int(perm[col]) // g
            else:
                k = col // g
                if col % g == 0:
                    params[k] = grid_params(W1[:, i:i + g], bits, sym)
            group_of[col] = k
            scale, zero = params[k]
            w = W1[:, i]
            d = Hinv1[i, i]
            q = quant_column(w, scale, zero, bits)
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err
        Q[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    inv = torch.argsort(perm)
    Q = Q[:, inv]
    gidx = None
    if actorder == "group":
        gidx = torch.zeros(cols, dtype=torch.int32)
        for col in range(cols):
            gidx[int(perm[col])] = group_of[col]
    return Q.to(torch.float32), gidx


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, (dtype, arr) in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(20240607)
    # Correlated inputs with very unequal channel energies, like real activations.
    mix = torch.randn(COLS, COLS, generator=gen, dtype=torch.float64) * 0.3
    mix += torch.eye(COLS, dtype=torch.float64)
    energy = torch.exp(torch.randn(COLS, generator=gen, dtype=torch.float64))
    X = (torch.randn(N, COLS, generator=gen, dtype=torch.float64) @ mix) * energy
    X[:, 5] = 0  # a dead input
    X = X.to(torch.float32)
    W = (torch.randn(ROWS, COLS, generator=gen, dtype=torch.float64) * 0.05).to(torch.float32)
    Xd = X.to(torch.float64)
    H = 2.0 / N * Xd.t().matmul(Xd)
    tensors = {"W": ("F32", W.numpy().astype("<f4")), "X": ("F32", X.numpy().astype("<f4"))}
    metadata = {"magic": "compactor-gptq-golden", "version": "1"}
    for name, (bits, sym, group, actorder, damp, block) in CASES.items():
        Q, gidx = gptq(W, H, bits, sym, group, actorder, damp, block)
        tensors["deq." + name] = ("F32", Q.numpy().astype("<f4"))
        if gidx is not None:
            tensors["gidx." + name] = ("I32", gidx.numpy().astype("<i4"))
        metadata["case." + name] = f"{bits},{int(sym)},{group},{actorder},{damp},{block}"
        err = ((Xd @ (W.to(torch.float64) - Q.to(torch.float64)).t()) ** 2).sum().item()
        print(f"{name}: ||X(W-Q)^T||^2 = {err:.6f}")
    write_safetensors(out, tensors, metadata)


if __name__ == "__main__":
    main()
