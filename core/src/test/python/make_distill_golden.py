"""Golden values for DistillationLoss, from PyTorch's own KL and cross-entropy.

Run with /usr/bin/python3 (torch 1.13) from the repository root:
    /usr/bin/python3 core/src/test/python/make_distill_golden.py
Writes core/src/test/resources/distill/distill_loss_golden.json. The loss is
    alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)
with the KL summed over the vocabulary and both terms averaged over positions ("batchmean").
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join("core", "src", "test", "resources", "distill", "distill_loss_golden.json")


def case(seed, batch, seq, vocab, temperature, alpha, teacher_scale):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, seq, vocab, generator=g, dtype=torch.float64)
    teacher = teacher_scale * torch.randn(batch, seq, vocab, generator=g, dtype=torch.float64)
    targets = torch.randint(0, vocab, (batch, seq), generator=g)
    s = student.clone().requires_grad_(True)
    flat_s = s.reshape(-1, vocab)
    flat_t = teacher.reshape(-1, vocab)
    kl = F.kl_div(
        F.log_softmax(flat_s / temperature, dim=-1),
        F.log_softmax(flat_t / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    ce = F.cross_entropy(flat_s, targets.reshape(-1))
    loss = alpha * temperature**2 * kl + (1 - alpha) * ce
    loss.backward()
    return {
        "shape": [batch, seq, vocab],
        "temperature": temperature,
        "alpha": alpha,
        "student": student.flatten().tolist(),
        "teacher": teacher.flatten().tolist(),
        "targets": targets.flatten().tolist(),
        "loss": loss.item(),
        "kl": kl.item(),
        "ce": ce.item(),
        "grad": s.grad.flatten().tolist(),
    }


def main():
    cases = [
        case(1, 2, 3, 11, 2.0, 0.7, 1.0),
        case(2, 1, 5, 17, 1.0, 1.0, 3.0),
        case(3, 3, 2, 7, 4.0, 0.25, 0.5),
    ]
    doc = {"magic": "compactor-distill-golden", "version": 1, "torch": torch.__version__,
           "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
