#!/usr/bin/python3
"""Checks a PEFT LoRA adapter directory the way PEFT and vLLM read it, then its logits.

1. Layout: adapter_config.json says peft_type LORA with r, lora_alpha and target_modules; every key
   of adapter_model.safetensors parses as vLLM's parse_fine_tuned_lora_name does
   (vllm/lora/utils.py: "base_model.model." + module + ".lora_A.weight" / ".lora_B.weight"), the
   module's weight exists in the base model, its short name is in target_modules, lora_A is
   [r, in] and lora_B is [out, r]; every module has both; every base linear the targets name has
   an adapter (PEFT adapts all of them).
2. Logits: PEFT's LoRA forward, y = x W^T + (alpha / r) (x A^T) B^T, on every adapted linear
   (masked adapters, compactor.json lora_delta = masked-to-base-nonzeros, use
   W + M * (alpha / r) B A), in the plain-PyTorch forward of make_model_golden.py (shares no code
   with the Java forward), against EXPECTED's logits for its input_ids (max |diff| <= 1e-4).

Run: /usr/bin/python3 core/src/test/python/check_lora_adapter.py BASE_DIR ADAPTER_DIR EXPECTED.safetensors
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import make_model_golden  # noqa: E402
from check_pruned_model import read_st  # noqa: E402


def parse_lora_name(name):
    """vLLM's rule: (module, is_lora_a) or None."""
    parts = name.split(".")
    if len(parts) >= 5 and parts[0] == "base_model" and parts[1] == "model" and parts[-1] == "weight":
        if parts[-2] in ("lora_A", "lora_B"):
            return ".".join(parts[2:-2]), parts[-2] == "lora_A"
    return None


def main():
    base_dir, adapter_dir, expected = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.load(open(os.path.join(base_dir, "config.json")))
    acfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    prov_path = os.path.join(adapter_dir, "compactor.json")
    prov = json.load(open(prov_path)) if os.path.exists(prov_path) else {}
    masked = prov.get("lora_delta", "plain") == "masked-to-base-nonzeros"
    base = {k: v.float() for k, v in read_st(os.path.join(base_dir, "model.safetensors")).items()}
    lora = read_st(os.path.join(adapter_dir, "adapter_model.safetensors"))
    failures = []
    if acfg.get("peft_type") != "LORA":
        failures.append("peft_type %r" % acfg.get("peft_type"))
    r, alpha, targets = acfg["r"], acfg["lora_alpha"], set(acfg["target_modules"])
    pairs = {}
    for name, t in lora.items():
        parsed = parse_lora_name(name)
        if parsed is None:
            failures.append("key %s is not a PEFT/vLLM LoRA weight name" % name)
            continue
        module, is_a = parsed
        if module + ".weight" not in base:
            failures.append("%s: no %s.weight in the base" % (name, module))
            continue
        if module.split(".")[-1] not in targets:
            failures.append("%s: module not in target_modules" % name)
        out_f, in_f = base[module + ".weight"].shape
        want = [r, in_f] if is_a else [out_f, r]
        if list(t.shape) != want:
            failures.append("%s: shape %s, expected %s" % (name, list(t.shape), want))
        pairs.setdefault(module, {})["A" if is_a else "B"] = t.float()
    for name in base:
        parts = name.split(".")
        if name.startswith("model.layers.") and parts[-1] == "weight" and parts[-2] in targets:
            if name[:-len(".weight")] not in pairs:
                failures.append("base linear %s has no adapter" % name)
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            failures.append("%s: lora_A and lora_B must both be there" % module)
    if failures:
        print("\n".join(failures))
        print("RESULT: FAILED")
        sys.exit(1)
    print("PEFT layout: ok (%d adapted linears, r=%d, alpha=%s, %s)"
          % (len(pairs), r, alpha, "masked" if masked else "plain"))

    s = alpha / r
    adapted = {}
    for module, ab in pairs.items():
        adapted[module] = (ab["A"], ab["B"])
    plain_lin = make_model_golden.lin

    def peft_lin(h, p, name):
        y = plain_lin(h, p, name)
        if name in adapted:
            a, b = adapted[name]
            w = p[name + ".weight"]
            if masked:
                y = y + h @ ((w != 0).float() * (s * b @ a)).T
            else:
                y = y + s * ((h @ a.T) @ b.T)
        return y

    make_model_golden.lin = peft_lin
    e = read_st(expected)
    with torch.no_grad():
        logits = make_model_golden.llama_forward(cfg, base, e["input_ids"])
    diff = (logits - e["logits"]).abs().max().item()
    print("max |logits - java| = %.3g" % diff)
    if diff > 1e-4:
        print("RESULT: FAILED")
        sys.exit(1)
    print("RESULT: OK")


if __name__ == "__main__":
    main()
