#!/usr/bin/python3
"""Checks a structurally pruned Hugging Face directory the way transformers would build it.

1. Shapes: every tensor modeling_llama / modeling_qwen2 / modeling_qwen3 would create from
   config.json (num_attention_heads, num_key_value_heads, head_dim, intermediate_size, and the
   bias flags: Llama and Qwen3 attention_bias gives q, k, v and o a bias, Llama mlp_bias gives
   gate, up and down one, Qwen2 always has q/k/v biases), with the shape it would have; nothing
   missing, nothing extra (HF would initialise a missing tensor at random and drop an extra one).
2. Logits: the plain-PyTorch forward of make_model_golden.py (written from HF's semantics, shares
   no code with the Java forward) on EXPECTED's input_ids against its logits (max |diff| <= 1e-4).

Run: /usr/bin/python3 core/src/test/python/check_pruned_model.py MODEL_DIR EXPECTED.safetensors
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_model_golden import llama_forward  # noqa: E402

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        arr = np.frombuffer(data[8 + n + a:8 + n + b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def expected_shapes(cfg):
    mt = cfg["model_type"]
    H, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    d = cfg.get("head_dim") or H // nh
    attn_bias = cfg.get("attention_bias", False)
    qkv_bias = mt == "qwen2" or attn_bias
    o_bias = mt in ("llama", "qwen3") and attn_bias
    mlp_bias = mt == "llama" and cfg.get("mlp_bias", False)
    want = {"model.embed_tokens.weight": [cfg["vocab_size"], H], "model.norm.weight": [H]}
    if not cfg.get("tie_word_embeddings"):
        want["lm_head.weight"] = [cfg["vocab_size"], H]
    for i in range(L):
        p = "model.layers.%d." % i
        want[p + "input_layernorm.weight"] = [H]
        want[p + "post_attention_layernorm.weight"] = [H]
        for name, rows, cols, bias in (("self_attn.q_proj", nh * d, H, qkv_bias),
                                       ("self_attn.k_proj", nkv * d, H, qkv_bias),
                                       ("self_attn.v_proj", nkv * d, H, qkv_bias),
                                       ("self_attn.o_proj", H, nh * d, o_bias),
                                       ("mlp.gate_proj", I, H, mlp_bias),
                                       ("mlp.up_proj", I, H, mlp_bias),
                                       ("mlp.down_proj", H, I, mlp_bias)):
            want[p + name + ".weight"] = [rows, cols]
            if bias:
                want[p + name + ".bias"] = [rows]
        if mt == "qwen3":
            want[p + "self_attn.q_norm.weight"] = [d]
            want[p + "self_attn.k_norm.weight"] = [d]
    return want


def main():
    model_dir, expected = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    p = read_st(os.path.join(model_dir, "model.safetensors"))
    failures = []
    want = expected_shapes(cfg)
    for name in sorted(set(want) | set(p)):
        if name not in p:
            failures.append("missing tensor " + name)
        elif name not in want:
            failures.append("tensor %s is not in HF's %s layout" % (name, cfg["model_type"]))
        elif list(p[name].shape) != want[name]:
            failures.append("tensor %s: shape %s, HF builds %s" % (name, list(p[name].shape), want[name]))
    if failures:
        print("\n".join(failures))
        print("RESULT: FAILED")
        sys.exit(1)
    print("HF layout: ok (%d tensors)" % len(p))
    e = read_st(expected)
    with torch.no_grad():
        logits = llama_forward(cfg, {k: v.float() for k, v in p.items()}, e["input_ids"])
    diff = (logits - e["logits"]).abs().max().item()
    print("max |logits - java| = %.3g" % diff)
    if diff > 1e-4:
        print("RESULT: FAILED")
        sys.exit(1)
    print("RESULT: OK")


if __name__ == "__main__":
    main()
