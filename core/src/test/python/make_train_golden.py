#!/usr/bin/python3
"""Golden trajectory for AdamW + warmup/cosine schedule, from torch.optim.AdamW and LambdaLR.

Two parameters get fixed pseudo-random gradients for 8 steps; the lr follows linear warmup then
cosine decay to a floor (the formula of HF's cosine_with_min_lr schedule). We record the lr used
at every step and the parameters after every step.

Run: /usr/bin/python3 core/src/test/python/make_train_golden.py
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "golden", "train", "adamw.json")
PEAK, MIN, WARMUP, TOTAL, STEPS = 0.1, 0.01, 3, 8, 8
BETAS, EPS, WD = (0.9, 0.95), 1e-8, 0.1


def lr_lambda(step):
    if step < WARMUP:
        return step / max(1, WARMUP)
    progress = min(1.0, (step - WARMUP) / max(1, TOTAL - WARMUP))
    rate = MIN / PEAK
    return rate + (1 - rate) * 0.5 * (1.0 + math.cos(math.pi * progress))


def main():
    gen = torch.Generator().manual_seed(11)
    a = torch.randn(3, 4, generator=gen)
    b = torch.randn(5, generator=gen)
    init = {"a": a.tolist(), "b": b.tolist()}
    pa, pb = a.clone().requires_grad_(), b.clone().requires_grad_()
    opt = torch.optim.AdamW([pa, pb], lr=PEAK, betas=BETAS, eps=EPS, weight_decay=WD)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    steps = []
    for t in range(STEPS):
        ga = torch.randn(3, 4, generator=gen) * (0.1 + t)
        gb = torch.randn(5, generator=gen) * 0.01
        pa.grad, pb.grad = ga.clone(), gb.clone()
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        steps.append({"lr": lr, "grad_a": ga.tolist(), "grad_b": gb.tolist(),
                      "a": pa.detach().tolist(), "b": pb.detach().tolist()})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"magic": "compactor-train-golden", "version": 1, "peak_lr": PEAK, "min_lr": MIN,
                   "warmup": WARMUP, "total": TOTAL, "beta1": BETAS[0], "beta2": BETAS[1],
                   "eps": EPS, "weight_decay": WD, "init": init, "steps": steps}, f, indent=1)
    print("wrote", OUT, [round(s["lr"], 5) for s in steps])


if __name__ == "__main__":
    main()
