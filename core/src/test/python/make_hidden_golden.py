"""Golden values for HiddenStateLoss and the masked / top-k DistillationLoss, from PyTorch.

Run with /usr/bin/python3 (torch 1.13) from the repository root:
    /usr/bin/python3 core/src/test/python/make_hidden_golden.py
Writes core/src/test/resources/distill/hidden_loss_golden.json. The hidden-state loss is
    beta * mean_pairs( sum_pos m * d(W s, t) / sum_pos m )
with d = mean over the hidden axis of (W s - t)^2 (mse) or 1 - s.t / sqrt((s.s)(t.t) + 1e-12)
(cosine); W is the pair's projection [teacher_width, student_width] when the widths differ.
Each case also gives the masked KD loss over the same positions (KL at T and CE counted only where
m = 1) and its top-k form (KL over the teacher's top-k support, both sides renormalised there).
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join("core", "src", "test", "resources", "distill", "hidden_loss_golden.json")


def hidden_case(seed, kind, beta, batch, seq, sw, tw, pairs, masked):
    g = torch.Generator().manual_seed(seed)
    student_layers = max(p[0] for p in pairs) + 1
    teacher_layers = max(p[1] for p in pairs) + 1
    student = [torch.randn(batch, seq, sw, generator=g, dtype=torch.float64) for _ in range(student_layers)]
    teacher = [2 * torch.randn(batch, seq, tw, generator=g, dtype=torch.float64) for _ in range(teacher_layers)]
    projections = {}
    if sw != tw:
        for j, _ in pairs:
            projections[j] = torch.randn(tw, sw, generator=g, dtype=torch.float64) / sw ** 0.5
    if masked:
        mask = (torch.rand(batch, seq, generator=g) > 0.4).double()
        mask[0, 0] = 1.0
    else:
        mask = torch.ones(batch, seq, dtype=torch.float64)
    s_req = [x.clone().requires_grad_(True) for x in student]
    p_req = {j: w.clone().requires_grad_(True) for j, w in projections.items()}
    total = 0
    for j, t in pairs:
        s = s_req[j]
        if j in p_req:
            s = s @ p_req[j].T
        tgt = teacher[t]
        if kind == "mse":
            d = ((s - tgt) ** 2).mean(-1)
        else:
            dot = (s * tgt).sum(-1)
            d = 1 - dot / torch.sqrt((s * s).sum(-1) * (tgt * tgt).sum(-1) + 1e-12)
        total = total + (d * mask).sum() / mask.sum()
    loss = beta * total / len(pairs)
    loss.backward()
    return {
        "kind": kind, "beta": beta, "shape": [batch, seq], "student_width": sw,
        "teacher_width": tw, "pairs": pairs, "masked": masked,
        "student": [x.flatten().tolist() for x in student],
        "teacher": [x.flatten().tolist() for x in teacher],
        "projections": {str(j): w.flatten().tolist() for j, w in projections.items()},
        "mask": mask.flatten().tolist(),
        "loss": loss.item(),
        "student_grad": [x.grad.flatten().tolist() for x in s_req],
        "projection_grad": {str(j): w.grad.flatten().tolist() for j, w in p_req.items()},
    }


def kd_case(seed, batch, seq, vocab, k, temperature, alpha):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, seq, vocab, generator=g, dtype=torch.float64)
    teacher = 2 * torch.randn(batch, seq, vocab, generator=g, dtype=torch.float64)
    targets = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = (torch.rand(batch, seq, generator=g) > 0.5).double()
    mask[0, 0] = 1.0
    s = student.clone().requires_grad_(True)
    m = mask.reshape(-1)
    n = m.sum()
    ls = F.log_softmax(s.reshape(-1, vocab) / temperature, -1)
    lt = F.log_softmax(teacher.reshape(-1, vocab) / temperature, -1)
    kl = ((lt.exp() * (lt - ls)).sum(-1) * m).sum() / n
    ce = (F.cross_entropy(s.reshape(-1, vocab), targets.reshape(-1), reduction="none") * m).sum() / n
    loss = alpha * temperature ** 2 * kl + (1 - alpha) * ce
    loss.backward()
    grad = s.grad.flatten().tolist()
    # top-k: teacher log-probs at T = 1, top k, renormalised on the support at T
    s2 = student.clone().requires_grad_(True)
    logp = F.log_softmax(teacher.reshape(-1, vocab), -1)
    top_v, top_i = logp.topk(k, -1)
    pt = F.log_softmax(top_v / temperature, -1)
    qs = F.log_softmax(s2.reshape(-1, vocab).gather(1, top_i) / temperature, -1)
    kl_k = ((pt.exp() * (pt - qs)).sum(-1) * m).sum() / n
    ce_k = (F.cross_entropy(s2.reshape(-1, vocab), targets.reshape(-1), reduction="none") * m).sum() / n
    loss_k = alpha * temperature ** 2 * kl_k + (1 - alpha) * ce_k
    loss_k.backward()
    return {
        "shape": [batch, seq, vocab], "k": k, "temperature": temperature, "alpha": alpha,
        "student": student.flatten().tolist(), "teacher": teacher.flatten().tolist(),
        "targets": targets.flatten().tolist(), "mask": mask.flatten().tolist(),
        "loss": loss.item(), "kl": kl.item(), "ce": ce.item(), "grad": grad,
        "topk_values": top_v.flatten().tolist(), "topk_indices": top_i.flatten().tolist(),
        "topk_loss": loss_k.item(), "topk_kl": kl_k.item(), "topk_grad": s2.grad.flatten().tolist(),
    }


def main():
    doc = {
        "magic": "compactor-hidden-golden", "version": 1, "torch": torch.__version__,
        "hidden": [
            hidden_case(1, "mse", 0.5, 2, 3, 8, 8, [[0, 1], [1, 3]], False),
            hidden_case(2, "cosine", 2.0, 2, 4, 6, 10, [[0, 0], [1, 2]], True),
            hidden_case(3, "mse", 1.0, 1, 5, 12, 4, [[0, 1]], True),
        ],
        "kd": [kd_case(4, 2, 3, 13, 5, 2.0, 0.6), kd_case(5, 1, 4, 9, 9, 1.0, 1.0)],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
