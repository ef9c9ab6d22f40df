"""Golden values for LoRA: forward and the gradients of A and B, from PyTorch autograd.

Run with /usr/bin/python3 (torch 1.13) from the repository root:
    /usr/bin/python3 core/src/test/python/make_lora_golden.py
Writes core/src/test/resources/lora/lora_golden.json.

The reference is written the way PEFT's lora.Linear computes (activation side, unmerged):
    y = x @ W^T + s * ((x @ A^T) @ B^T),   s = lora_alpha / r
and, for a masked case, the merged-weight form this project trains when it keeps a pruned base's
zeros:
    y = x @ (W + M * (s * B @ A))^T,        M = (W != 0)
The loss is sum(y * G) for a fixed random G, so dL/dy = G; gradients of A and B come from
autograd in float64.
"""
import json
import os

import torch

OUT = os.path.join("core", "src", "test", "resources", "lora", "lora_golden.json")


def case(seed, n, out_f, in_f, r, alpha, masked, zero_fraction):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_f, generator=g, dtype=torch.float64)
    w = torch.randn(out_f, in_f, generator=g, dtype=torch.float64)
    if zero_fraction > 0:
        keep = torch.rand(out_f, in_f, generator=g, dtype=torch.float64) >= zero_fraction
        w = w * keep
    a = (torch.rand(r, in_f, generator=g, dtype=torch.float64) * 2 - 1) / in_f ** 0.5
    b = torch.randn(out_f, r, generator=g, dtype=torch.float64) * 0.5
    upstream = torch.randn(n, out_f, generator=g, dtype=torch.float64)
    s = alpha / r
    a_ = a.clone().requires_grad_(True)
    b_ = b.clone().requires_grad_(True)
    if masked:
        mask = (w != 0).to(torch.float64)
        y = x @ (w + mask * (s * b_ @ a_)).T
    else:
        y = x @ w.T + s * ((x @ a_.T) @ b_.T)
    loss = (y * upstream).sum()
    loss.backward()
    return {
        "n": n, "out": out_f, "in": in_f, "r": r, "alpha": alpha, "masked": masked,
        "x": x.flatten().tolist(), "w": w.flatten().tolist(), "a": a.flatten().tolist(),
        "b": b.flatten().tolist(), "upstream": upstream.flatten().tolist(),
        "y": y.detach().flatten().tolist(),
        "grad_a": a_.grad.flatten().tolist(), "grad_b": b_.grad.flatten().tolist(),
    }


def main():
    cases = [
        case(1, 4, 6, 5, 3, 4.0, False, 0.0),
        case(2, 3, 7, 8, 2, 16.0, False, 0.5),
        case(3, 5, 8, 6, 4, 8.0, True, 0.5),
    ]
    doc = {"magic": "compactor-lora-golden", "version": 1, "torch": torch.__version__,
           "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
