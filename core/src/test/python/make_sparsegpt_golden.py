#!/usr/bin/python3
"""Golden vectors for Compactor's SparseGptPruner from an independent PyTorch SparseGPT.

A transcription of `fasterprune` of the reference implementation (IST-DASLab sparsegpt.py,
Frantar & Alistarh 2023, Algorithm 1), float64 throughout: dead inputs get H_jj = 1 and weight 0,
dampening percdamp * mean(diag H), H^-1 by torch.linalg.cholesky + torch.cholesky_inverse, its
upper Cholesky factor, blocks of `blocksize` columns. Unstructured: at the start of each block
the saliency w^2 / diag(Hinv1)^2 of the block (as updated so far) picks the mask; N:M: at every
M-th column of the block the M-N smallest saliencies of each row in the next M columns (of the
weights as updated so far) are pruned. The pruned column is zeroed, its error (w - q) / d pushed
into the rest of the block with the Cholesky row, and the block's errors into later columns.

Two deliberate differences from sparsegpt.py, both documented on the Java side:
  * the reference prunes tmp <= sorted(tmp)[int(numel * sparsity)], i.e. one element more than
    int(numel * sparsity) per block; here exactly round(numel * sparsity) lowest (stable order),
    so 50 % is exactly 50 %.
  * mode "row" selects round(count * sparsity) per row within each block (the reference only has
    the block-wide selection, mode "block").

Output: one safetensors file (header JSON + raw little-endian data) with W [rows, cols] F32,
X [n, cols] F32 (H = 2/n X^T X in float64 on both sides), pruned.<case> [rows, cols] F32, and
__metadata__ "case.<name>" = "mode,sparsity,n,m,percdamp,blocksize,wbits,symmetric,groupsize". With
wbits the kept weights are also rounded in the same sweep (the reference's `quantizer`, per row,
scales from the rows before pruning) to RtnQuantizer's grid in float32, as make_gptq_golden.py does.
With a groupsize (the reference sparsegpt.py has none; this follows GPTQ's fasterquant) each group's
scales are chosen when the sweep reaches its first column, from the group's weights as updated so
far inside the block (blocksize a multiple of groupsize), pruned-to-be weights included, as
Compactor's GptqQuantizer does.

Run:  cd /tmp && /usr/bin/python3 /path/to/core/src/test/python/make_sparsegpt_golden.py \
          /path/to/core/src/test/resources/golden/sparsegpt/sparsegpt_golden.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch

ROWS, COLS, N = 16, 320, 256
# name: (mode, sparsity, n, m, percdamp, blocksize, wbits, symmetric, groupsize); wbits 0 = no
# quantization, groupsize 0 = one scale per row
CASES = {
    "block50": ("block", 0.5, 0, 0, 0.01, 128, 0, True, 0),
    "row50": ("row", 0.5, 0, 0, 0.01, 128, 0, True, 0),
    "row70_b64": ("row", 0.7, 0, 0, 0.05, 64, 0, True, 0),
    "nm2_4": ("nm", 0.0, 2, 4, 0.01, 128, 0, True, 0),
    "nm4_8": ("nm", 0.0, 4, 8, 0.01, 128, 0, True, 0),
    "block50_w4sym": ("block", 0.5, 0, 0, 0.01, 128, 4, True, 0),
    "nm2_4_w4asym": ("nm", 0.0, 2, 4, 0.01, 128, 4, False, 0),
    "nm2_4_w4sym_g64": ("nm", 0.0, 2, 4, 0.01, 128, 4, True, 64),
    "row50_w4asym_g32_b64": ("row", 0.5, 0, 0, 0.01, 64, 4, False, 32),
}


def grid_params(W, bits, sym):
    """Per-row float32 scale and signed zero of the 0-widened row ranges (RtnQuantizer's grid)."""
    b = W.to(torch.float32)
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


def smallest(tmp, k):
    """Boolean mask of the k smallest entries of 1-D tmp, ties to the lower index."""
    order = np.argsort(tmp.numpy(), kind="stable")[:k]
    mask = torch.zeros(tmp.numel(), dtype=torch.bool)
    mask[torch.from_numpy(order)] = True
    return mask


def sparsegpt(W, H, mode, sparsity, n, m, percdamp, blocksize, wbits=0, sym=True, groupsize=0):
    W = W.clone().to(torch.float64)
    H = H.clone().to(torch.float64)
    rows, cols = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if wbits:
        # the reference's quantizer.find_params(W, weight=True): per row, before pruning
        scale, zero = grid_params(W, wbits, sym)
    damp = percdamp * torch.mean(torch.diag(H))
    H[range(cols), range(cols)] += damp
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        mask1 = torch.zeros_like(W1, dtype=torch.bool)
        if mode == "block":
            tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            k = int(round(tmp.numel() * sparsity))
            mask1 = smallest(tmp.flatten(), k).reshape(rows, count)
        elif mode == "row":
            tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            k = int(round(count * sparsity))
            for r in range(rows):
                mask1[r] = smallest(tmp[r], k)
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if mode == "nm" and i % m == 0:
                tmp = W1[:, i:i + m] ** 2 / (torch.diag(Hinv1)[i:i + m].reshape((1, -1))) ** 2
                mask1.scatter_(1, i + torch.topk(tmp, m - n, dim=1, largest=False)[1], True)
            if wbits and groupsize and (i1 + i) % groupsize == 0:
                scale, zero = grid_params(W1[:, i:i + groupsize], wbits, sym)
            q = w.clone()
            if wbits:
                q = quant_column(q, scale, zero, wbits)
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W.to(torch.float32)


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
    gen = torch.Generator().manual_seed(20230102)
    # Correlated inputs with very unequal channel energies, like real activations.
    mix = torch.randn(COLS, COLS, generator=gen, dtype=torch.float64) * 0.3
    mix += torch.eye(COLS, dtype=torch.float64)
    energy = torch.exp(torch.randn(COLS, generator=gen, dtype=torch.float64))
    X = (torch.randn(N, COLS, generator=gen, dtype=torch.float64) @ mix) * energy
    X[:, 7] = 0  # a dead input
    X = X.to(torch.float32)
    W = (torch.randn(ROWS, COLS, generator=gen, dtype=torch.float64) * 0.05).to(torch.float32)
    Xd = X.to(torch.float64)
    H = 2.0 / N * Xd.t().matmul(Xd)
    tensors = {"W": ("F32", W.numpy().astype("<f4")), "X": ("F32", X.numpy().astype("<f4"))}
    metadata = {"magic": "compactor-sparsegpt-golden", "version": "1"}
    for name, (mode, sparsity, n, m, damp, block, wbits, sym, group) in CASES.items():
        P = sparsegpt(W, H, mode, sparsity, n, m, damp, block, wbits, sym, group)
        tensors["pruned." + name] = ("F32", P.numpy().astype("<f4"))
        metadata["case." + name] = (
            f"{mode},{sparsity},{n},{m},{damp},{block},{wbits},{int(sym)},{group}")
        err = ((Xd @ (W.to(torch.float64) - P.to(torch.float64)).t()) ** 2).sum().item()
        zeros = (P == 0).double().mean().item()
        print(f"{name}: ||X(W-P)^T||^2 = {err:.6f}, zeros {zeros:.4f}")
    write_safetensors(out, tensors, metadata)


if __name__ == "__main__":
    main()
