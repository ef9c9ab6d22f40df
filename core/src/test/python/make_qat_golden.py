#!/usr/bin/python3
"""Golden vectors for Compactor's LSQ fake quantizer (quant.qat.LsqFakeQuantizer).

An independent reference: LSQ (Esser et al. 2020, "Learned Step Size Quantization") written as a
torch.autograd.Function with the paper's gradients spelled out by hand, not the straight-through
tricks the Java side composes from detach/round/clamp:
  forward   w_hat = s * round(clamp(w / s, Qn, Qp))            per (row, group) step s
  d w_hat / d w = 1 where Qn <= w / s <= Qp, else 0               (straight-through estimator)
  d w_hat / d s = round(v) - v inside, Qn below, Qp above (v = w / s), times g = 1 / sqrt(G * Qp)
with G the elements of the group (paper, eq. 3 and section 2.2; the scale gradient summed over the
group). Symmetric signed grid Qn = -2^(b-1), Qp = 2^(b-1) - 1; torch.round rounds half to even.

Case: a small linear y = x @ w_hat^T, loss L = sum(y * r) for a fixed random r; stored per case
"b<bits>_g<group>" (group 0: one step per output row): w_hat, grad_w, grad_s. Shared inputs: w
[ROWS, COLS], x [N, COLS], r [N, ROWS]; each case's initial steps s.<case> [ROWS, COLS / G] are
absmax steps (amax / ((Qp - Qn) / 2), Compactor's RTN grid) times a random factor in [0.6, 1.2],
so both clamp ends and the inside are exercised. All F32.

Run: /usr/bin/python3 core/src/test/python/make_qat_golden.py \
         core/src/test/resources/golden/qat/lsq_golden.safetensors
"""
import json
import math
import struct
import sys

import torch

ROWS, COLS, N = 8, 64, 5
CASES = [(2, 16), (3, 16), (4, 32), (4, 0), (8, 16)]


class Lsq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, s, qn, qp, g):
        v = w / s
        ctx.save_for_backward(v)
        ctx.qn, ctx.qp, ctx.g = qn, qp, g
        return torch.round(torch.clamp(v, qn, qp)) * s

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        below = v < ctx.qn
        above = v > ctx.qp
        inside = ~(below | above)
        grad_w = grad * inside.to(grad.dtype)
        ds = torch.where(
            below,
            torch.full_like(v, float(ctx.qn)),
            torch.where(above, torch.full_like(v, float(ctx.qp)), torch.round(v) - v),
        )
        grad_s = (grad * ds).sum(dim=-1, keepdim=True) * ctx.g
        return grad_w, grad_s, None, None, None


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, arr in tensors.items():
        raw = arr.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
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
    gen = torch.Generator().manual_seed(20200227)
    w = torch.randn(ROWS, COLS, generator=gen) * 0.05
    x = torch.randn(N, COLS, generator=gen)
    r = torch.randn(N, ROWS, generator=gen)
    tensors = {"w": w, "x": x, "r": r}
    meta = {"magic": "compactor-lsq-golden", "version": "1"}
    for bits, group in CASES:
        name = f"b{bits}_g{group}"
        G = COLS if group == 0 else group
        qn, qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        w3 = w.reshape(ROWS, COLS // G, G)
        amax = w3.abs().amax(dim=-1, keepdim=True)
        s0 = amax / ((qp - qn) / 2.0)
        s0 = s0 * (0.6 + 0.6 * torch.rand(s0.shape, generator=gen))
        wl = w3.clone().requires_grad_(True)
        sl = s0.clone().requires_grad_(True)
        g = 1.0 / math.sqrt(G * qp)
        w_hat = Lsq.apply(wl, sl, qn, qp, g).reshape(ROWS, COLS)
        loss = ((x @ w_hat.t()) * r).sum()
        loss.backward()
        tensors["s." + name] = s0.reshape(ROWS, COLS // G)
        tensors["w_hat." + name] = w_hat.detach()
        tensors["grad_w." + name] = wl.grad.reshape(ROWS, COLS)
        tensors["grad_s." + name] = sl.grad.reshape(ROWS, COLS // G)
        meta["case." + name] = f"{bits},{group}"
    write_safetensors(out, tensors, meta)


if __name__ == "__main__":
    main()
