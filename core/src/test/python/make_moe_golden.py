#!/usr/bin/python3
"""Golden logits for expert pruning and merging, from an independent reference.

Reads the mixtral_moe golden model (core/src/test/resources/golden/mixtral_moe, written by
make_model_golden.py), builds the pruned and the merged model here from the definitions in
dev.compactor.core.moe (pruning: the kept experts renumbered in their old order, the router rows
of the dropped experts removed, num_local_experts = n, num_experts_per_tok = min(k, n); merging:
each group's w1/w3/w2 and router row the given weighted average), and runs make_model_golden.py's
plain-torch MixtralSparseMoeBlock forward on the mixtral_moe golden's input_ids.

Writes core/src/test/resources/golden/moe/rewrite.safetensors (magic compactor-moe-golden,
version 1): logits_pruned and logits_merged (F32 [B, T, V]). The plans are fixed here and in
ExpertRewriteGoldenTest: keep experts (0, 1, 3) of layer 0 and (0, 2, 3) of layer 1; merge groups
((0, 2) weights (0.3, 0.7), (1), (3)) in layer 0 and ((0), (1, 3) weights (0.6, 0.4), (2)) in 1.

Run: /usr/bin/python3 core/src/test/python/make_moe_golden.py (GOLDEN_OUT=<dir> writes elsewhere)
"""
import copy
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import make_model_golden as ref  # noqa: E402

HERE = os.path.dirname(__file__)
GOLDEN = os.path.join(HERE, "..", "resources", "golden")
OUT = os.environ.get("GOLDEN_OUT") or os.path.join(GOLDEN, "moe")
MOE = "model.layers.%d.block_sparse_moe."

PRUNE = [(0, 1, 3), (0, 2, 3)]
MERGE = [[((0, 2), (0.3, 0.7)), ((1,), (1.0,)), ((3,), (1.0,))],
         [((0,), (1.0,)), ((1, 3), (0.6, 0.4)), ((2,), (1.0,))]]


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dtype = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
        out[name] = torch.frombuffer(bytearray(body[b:end]), dtype=dtype).reshape(e["shape"])
    return out


def rewrite(cfg, params, plan):
    """plan[layer] = list of (members, weights): the new experts of that layer, in order."""
    n = len(plan[0])
    new_cfg = copy.deepcopy(cfg)
    new_cfg["num_local_experts"] = n
    new_cfg["num_experts_per_tok"] = min(cfg["num_experts_per_tok"], n)
    p = {k: v for k, v in params.items() if "block_sparse_moe" not in k}
    for layer, groups in enumerate(plan):
        pre = MOE % layer
        gate = params[pre + "gate.weight"]
        rows = []
        for g, (members, weights) in enumerate(groups):
            rows.append(sum(w * gate[e].double() for e, w in zip(members, weights)).float())
            for proj in ("w1", "w2", "w3"):
                p[pre + "experts.%d.%s.weight" % (g, proj)] = sum(
                    w * params[pre + "experts.%d.%s.weight" % (e, proj)].double()
                    for e, w in zip(members, weights)).float()
        p[pre + "gate.weight"] = torch.stack(rows)
    return new_cfg, p


def main():
    d = os.path.join(GOLDEN, "mixtral_moe")
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    params = read_st(os.path.join(d, "model.safetensors"))
    ids = read_st(os.path.join(d, "golden.safetensors"))["input_ids"]
    with torch.no_grad():
        base = ref.llama_forward(cfg, params, ids)
        expected = read_st(os.path.join(d, "golden.safetensors"))["logits"]
        assert (base - expected).abs().max() < 1e-5, "mixtral_moe golden and this forward disagree"
        pruned_cfg, pruned = rewrite(cfg, params, [[((e,), (1.0,)) for e in keep] for keep in PRUNE])
        merged_cfg, merged = rewrite(cfg, params, MERGE)
        logits_pruned = ref.llama_forward(pruned_cfg, pruned, ids)
        logits_merged = ref.llama_forward(merged_cfg, merged, ids)
    print("pruned: max |delta| vs original %.4f" % (logits_pruned - base).abs().max().item())
    print("merged: max |delta| vs original %.4f" % (logits_merged - base).abs().max().item())
    os.makedirs(OUT, exist_ok=True)
    ref.write_st(os.path.join(OUT, "rewrite.safetensors"),
                 {"logits_pruned": logits_pruned.float(), "logits_merged": logits_merged.float()},
                 {"magic": "compactor-moe-golden", "version": "1"})


if __name__ == "__main__":
    main()
