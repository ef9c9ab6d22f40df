#!/usr/bin/python3
"""Golden fixtures for the Java transformer: tiny HF-style model directories plus expected logits.

An independent reference: plain PyTorch (1.13) written from the semantics of Hugging Face's
modeling_llama.py (RMSNorm, rotate_half RoPE, repeat_kv GQA, SiLU-gated MLP, attention/qkv bias),
modeling_qwen3.py (per-head RMSNorm of q and k before RoPE, explicit head_dim), modeling_phi3.py
(fused qkv_proj split [q | k | v], gate_up_proj chunked [gate | up]), the sliding-window mask of
transformers' masking_utils (query i sees key j when j <= i and j > i - window; Qwen2/Qwen3 only on
layers >= max_window_layers with use_sliding_window), modeling_mixtral.py (MixtralSparseMoeBlock: router
softmax in fp32 over all experts, torch.topk, renormalised to sum 1, experts w2(silu(w1 x) * w3 x)
index_add-ed into zeros expert by expert), modeling_qwen2_moe.py / modeling_qwen3_moe.py (a layer is
sparse unless in mlp_only_layers or (i + 1) % decoder_sparse_step != 0; router softmax in fp32, top-k,
renormalised only with norm_topk_prob; Qwen2-MoE adds sigmoid(shared_expert_gate(x)) * shared_expert(x);
the reference here runs every expert on every token and weights by a dense [tokens, experts] routing
matrix that is zero off the top k, so it shares no gather/index bookkeeping with the Java forward)
and modeling_gpt2.py (learned positions, LayerNorm, Conv1D [in, out] weights, gelu_new).
Safetensors files are written by hand from the spec (u64 LE header length, JSON header, data).

Each case directory under core/src/test/resources/golden/<case>/ holds config.json, the weights
(model.safetensors or shards + model.safetensors.index.json) and golden.safetensors with
input_ids (I64 [B, T]), logits (F32 [B, T, V]) and, for one case, the loss and gradients
(grad.<weight name>) of next-token cross entropy. __metadata__ carries magic/version.

RoPE scaling (rope_scaling: linear, dynamic, yarn, llama3) is written here from the formulas of
transformers' modeling_rope_utils.py (_compute_*_parameters), in plain torch float32 like it;
transformers itself is not used. For dynamic NTK the sequence length of a pass is the end of its
positions, so a cached decode past max_position_embeddings differs from the full pass (as in
transformers); the dynamic case also stores logits_decode: prefill of 3 tokens, then one at a time.

Run: /usr/bin/python3 core/src/test/python/make_model_golden.py [case ...]
(no case names: every case; GOLDEN_OUT=<dir> writes elsewhere, e.g. to compare a regeneration)
"""
import json
import math
import os
import shutil
import struct
import sys

import torch
import torch.nn.functional as F

MAGIC = "compactor-model-golden"
VERSION = "1"
OUT = os.environ.get("GOLDEN_OUT") or os.path.join(os.path.dirname(__file__), "..", "resources", "golden")


# ---------------------------------------------------------------- safetensors by hand
def st_bytes(tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.dtype == torch.float32:
            dtype, raw = "F32", t.numpy().astype("<f4").tobytes()
        elif t.dtype == torch.bfloat16:
            dtype, raw = "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
        elif t.dtype == torch.int64:
            dtype, raw = "I64", t.numpy().astype("<i8").tobytes()
        else:
            raise ValueError(t.dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_st(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(st_bytes(tensors, metadata))


# ---------------------------------------------------------------- reference forwards
def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def default_inv_freq(base, dim):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def rope_params(cfg, seq_len):
    """(inv_freq, attention_factor) as modeling_rope_utils.py computes them for rope_scaling."""
    d = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    # modeling_rope_utils: every rope type runs over int(head_dim * partial_rotary_factor) dims
    d = int(d * cfg.get("partial_rotary_factor", 1.0))
    base = cfg.get("rope_theta", 10000.0)
    max_pos = cfg["max_position_embeddings"]
    rs = cfg.get("rope_scaling")
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return default_inv_freq(base, d), 1.0
    factor = rs["factor"]
    if kind == "linear":
        return default_inv_freq(base, d) / factor, 1.0
    if kind == "dynamic":
        seq_len = max(seq_len, max_pos)
        base = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (d / (d - 2))
        return default_inv_freq(base, d), 1.0
    if kind == "yarn":
        orig = rs.get("original_max_position_embeddings") or max_pos

        def get_mscale(scale, mscale=1):
            return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

        attention_factor = rs.get("attention_factor")
        if attention_factor is None:
            if rs.get("mscale") and rs.get("mscale_all_dim"):
                attention_factor = float(get_mscale(factor, rs["mscale"]) / get_mscale(factor, rs["mscale_all_dim"]))
            else:
                attention_factor = get_mscale(factor)
        beta_fast = rs.get("beta_fast") or 32
        beta_slow = rs.get("beta_slow") or 1

        def correction_dim(rot):
            return (d * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, d - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(d // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        pos_freqs = base ** (torch.arange(0, d, 2).float() / d)
        extra, inter = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
        extra_factor = 1 - ramp
        return inter * (1 - extra_factor) + extra * extra_factor, attention_factor
    if kind == "llama3":
        inv = default_inv_freq(base, d)
        low_f, high_f = rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / low_f, old / high_f
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - low_f) / (high_f - low_f)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
        return torch.where(medium, smoothed, scaled), 1.0
    raise ValueError(kind)


def rope_cos_sin(cfg, pos0, T):
    inv_freq, attention = rope_params(cfg, pos0 + T)
    freqs = torch.outer(torch.arange(pos0, pos0 + T).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * attention, emb.sin() * attention


def causal_softmax(scores, window=None):
    # T queries at the last T of S positions; with a window W, position i sees j when i - j < W
    T, S = scores.shape[-2], scores.shape[-1]
    q = torch.arange(S - T, S)[:, None]
    kv = torch.arange(S)[None, :]
    allowed = kv <= q
    if window:
        allowed = allowed & (kv > q - window)
    scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
    return torch.softmax(scores, dim=-1)


def layer_window(cfg, i):
    """The sliding window of layer i as HF's configs derive layer_types, None for full attention."""
    w = cfg.get("sliding_window")
    if cfg["model_type"] in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        if not cfg.get("use_sliding_window", False) or i < cfg.get("max_window_layers", 28):
            return None
    return w


def lin(x, p, name):
    y = x @ p[name + ".weight"].t()
    if name + ".bias" in p:
        y = y + p[name + ".bias"]
    return y


def sparse_moe(cfg, p, pre, h):
    """MixtralSparseMoeBlock.forward: only the experts a token is routed to run on it."""
    B, T, H = h.shape
    E, k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
    flat = h.reshape(-1, H)
    router_logits = lin(flat, p, pre + "block_sparse_moe.gate")
    routing = torch.softmax(router_logits, dim=1, dtype=torch.float)
    routing, selected = torch.topk(routing, k, dim=-1)
    routing = routing / routing.sum(dim=-1, keepdim=True)
    out = torch.zeros((B * T, H), dtype=h.dtype)
    expert_mask = F.one_hot(selected, num_classes=E).permute(2, 1, 0)  # [E, k, tokens]
    for e in range(E):
        slot, tok = torch.where(expert_mask[e])
        if tok.numel() == 0:
            continue
        ep = pre + "block_sparse_moe.experts.%d." % e
        x = flat[tok]
        y = lin(F.silu(lin(x, p, ep + "w1")) * lin(x, p, ep + "w3"), p, ep + "w2")
        out = out.index_add(0, tok, y * routing[tok, slot, None])
    return out.reshape(B, T, H)


def qwen_sparse_layer(cfg, i):
    """Qwen2MoeDecoderLayer's choice: a sparse block unless listed in mlp_only_layers."""
    return (i not in cfg.get("mlp_only_layers", [])
            and cfg["num_experts"] > 0 and (i + 1) % cfg.get("decoder_sparse_step", 1) == 0)


def qwen_sparse_moe(cfg, p, pre, h):
    """Qwen2MoeSparseMoeBlock / Qwen3MoeSparseMoeBlock, written densely: all experts on all tokens."""
    B, T, H = h.shape
    E, k = cfg["num_experts"], cfg["num_experts_per_tok"]
    flat = h.reshape(-1, H)
    probs = torch.softmax(lin(flat, p, pre + "mlp.gate"), dim=-1, dtype=torch.float)
    top, selected = torch.topk(probs, k, dim=-1)
    if cfg.get("norm_topk_prob", False):
        top = top / top.sum(dim=-1, keepdim=True)
    weights = torch.zeros(B * T, E).scatter(1, selected, top)  # [tokens, experts], 0 off the top k

    def mlp(x, name):
        return lin(F.silu(lin(x, p, name + "gate_proj")) * lin(x, p, name + "up_proj"), p, name + "down_proj")

    every = torch.stack([mlp(flat, pre + "mlp.experts.%d." % e) for e in range(E)], 1)  # [tokens, E, H]
    out = (weights[:, :, None] * every).sum(1)
    if pre + "mlp.shared_expert_gate.weight" in p:
        out = out + torch.sigmoid(lin(flat, p, pre + "mlp.shared_expert_gate")) * mlp(flat, pre + "mlp.shared_expert.")
    return out.reshape(B, T, H)


def llama_forward(cfg, p, ids, cache=None):
    """Logits for ids after the positions in cache (a list of per-layer (k, v), appended to)."""
    B, T = ids.shape
    pos0 = 0 if not cache else cache[0][0].shape[2]
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    d = cfg.get("head_dim", H // nh)
    eps = cfg["rms_norm_eps"]
    cos, sin = rope_cos_sin(cfg, pos0, T)
    x = p["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        h = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        if cfg["model_type"] == "phi3":
            qkv = lin(h, p, pre + "self_attn.qkv_proj")
            q, k, v = qkv[..., :nh * d], qkv[..., nh * d:(nh + nkv) * d], qkv[..., (nh + nkv) * d:]
        else:
            q = lin(h, p, pre + "self_attn.q_proj")
            k = lin(h, p, pre + "self_attn.k_proj")
            v = lin(h, p, pre + "self_attn.v_proj")
        q, k, v = q.view(B, T, nh, d), k.view(B, T, nkv, d), v.view(B, T, nkv, d)
        if cfg["model_type"] in ("qwen3", "qwen3_moe"):
            q = rms_norm(q, p[pre + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, p[pre + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        # modeling_phi3.apply_rotary_pos_emb: the first cos.shape[-1] dims rotate, the rest pass
        rd = cos.shape[-1]
        q = torch.cat((q[..., :rd] * cos + rotate_half(q[..., :rd]) * sin, q[..., rd:]), dim=-1)
        k = torch.cat((k[..., :rd] * cos + rotate_half(k[..., :rd]) * sin, k[..., rd:]), dim=-1)
        if cache is not None:
            if len(cache) <= i:
                cache.append((k, v))
            else:
                cache[i] = (torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2))
            k, v = cache[i]
        S = k.shape[2]
        rep = nh // nkv
        k = k[:, :, None].expand(B, nkv, rep, S, d).reshape(B, nh, S, d)
        v = v[:, :, None].expand(B, nkv, rep, S, d).reshape(B, nh, S, d)
        a = causal_softmax(q @ k.transpose(2, 3) / math.sqrt(d), layer_window(cfg, i)) @ v
        a = a.transpose(1, 2).reshape(B, T, nh * d)
        x = x + lin(a, p, pre + "self_attn.o_proj")
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        if cfg["model_type"] == "mixtral":
            x = x + sparse_moe(cfg, p, pre, h)
            continue
        if cfg["model_type"] in ("qwen2_moe", "qwen3_moe") and qwen_sparse_layer(cfg, i):
            x = x + qwen_sparse_moe(cfg, p, pre, h)
            continue
        if cfg["model_type"] == "phi3":
            gate, up = lin(h, p, pre + "mlp.gate_up_proj").chunk(2, dim=-1)
        else:
            gate, up = lin(h, p, pre + "mlp.gate_proj"), lin(h, p, pre + "mlp.up_proj")
        m = F.silu(gate) * up
        x = x + lin(m, p, pre + "mlp.down_proj")
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else p["lm_head.weight"]
    return x @ head.t()


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(cfg, p, ids, base):
    B, T = ids.shape
    H, nh = cfg["n_embd"], cfg["n_head"]
    d = H // nh
    eps = cfg.get("layer_norm_epsilon", 1e-5)

    def conv(x, name):
        return x @ p[name + ".weight"] + p[name + ".bias"]

    def ln(x, name):
        return F.layer_norm(x, (H,), p[name + ".weight"], p[name + ".bias"], eps)

    x = p[base + "wte.weight"][ids] + p[base + "wpe.weight"][torch.arange(T)]
    for i in range(cfg["n_layer"]):
        pre = base + "h.%d." % i
        qkv = conv(ln(x, pre + "ln_1"), pre + "attn.c_attn")
        q, k, v = (t.view(B, T, nh, d).transpose(1, 2) for t in qkv.split(H, dim=2))
        a = causal_softmax(q @ k.transpose(2, 3) / math.sqrt(d)) @ v
        x = x + conv(a.transpose(1, 2).reshape(B, T, H), pre + "attn.c_proj")
        x = x + conv(gelu_new(conv(ln(x, pre + "ln_2"), pre + "mlp.c_fc")), pre + "mlp.c_proj")
    x = ln(x, base + "ln_f")
    return x @ p[base + "wte.weight"].t()


# ---------------------------------------------------------------- random weights
def rnd(gen, *shape, std=0.2, mean=0.0):
    return (torch.randn(*shape, generator=gen) * std + mean).float()


def llama_params(cfg, gen):
    H, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    d = cfg.get("head_dim", H // nh)
    phi3 = cfg["model_type"] == "phi3"
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    o_bias = cfg["model_type"] != "qwen2" and cfg.get("attention_bias", False)
    if cfg["model_type"] == "qwen2_moe":
        # Qwen2MoeAttention: q/k/v bias per qkv_bias (default True), o_proj never
        qkv_bias, o_bias = cfg.get("qkv_bias", True), False
    mlp_bias = cfg.get("mlp_bias", False)
    if phi3:
        qkv_bias = o_bias = mlp_bias = False
    p = {"model.embed_tokens.weight": rnd(gen, V, H, std=0.5)}
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % i
        p[pre + "input_layernorm.weight"] = rnd(gen, H, std=0.1, mean=1.0)
        if phi3:
            attn = (("self_attn.qkv_proj", (nh + 2 * nkv) * d, H, False),)
        else:
            attn = (("self_attn.q_proj", nh * d, H, qkv_bias),
                    ("self_attn.k_proj", nkv * d, H, qkv_bias),
                    ("self_attn.v_proj", nkv * d, H, qkv_bias))
        for name, out, inp, bias in attn + (("self_attn.o_proj", H, nh * d, o_bias),):
            p[pre + name + ".weight"] = rnd(gen, out, inp)
            if bias:
                p[pre + name + ".bias"] = rnd(gen, out, std=0.1)
        if cfg["model_type"] in ("qwen3", "qwen3_moe"):
            p[pre + "self_attn.q_norm.weight"] = rnd(gen, d, std=0.3, mean=1.0)
            p[pre + "self_attn.k_norm.weight"] = rnd(gen, d, std=0.3, mean=1.0)
        p[pre + "post_attention_layernorm.weight"] = rnd(gen, H, std=0.1, mean=1.0)
        if cfg["model_type"] == "mixtral":
            # a wide router so tokens spread over the experts and the top-k margins are large
            p[pre + "block_sparse_moe.gate.weight"] = rnd(gen, cfg["num_local_experts"], H, std=0.5)
            for e in range(cfg["num_local_experts"]):
                ep = pre + "block_sparse_moe.experts.%d." % e
                p[ep + "w1.weight"] = rnd(gen, I, H)
                p[ep + "w3.weight"] = rnd(gen, I, H)
                p[ep + "w2.weight"] = rnd(gen, H, I)
            continue
        if cfg["model_type"] in ("qwen2_moe", "qwen3_moe") and qwen_sparse_layer(cfg, i):
            MI = cfg["moe_intermediate_size"]
            p[pre + "mlp.gate.weight"] = rnd(gen, cfg["num_experts"], H, std=0.5)
            experts = [("mlp.experts.%d." % e, MI) for e in range(cfg["num_experts"])]
            if cfg["model_type"] == "qwen2_moe" and cfg["shared_expert_intermediate_size"] > 0:
                experts.append(("mlp.shared_expert.", cfg["shared_expert_intermediate_size"]))
                p[pre + "mlp.shared_expert_gate.weight"] = rnd(gen, 1, H, std=0.5)
            for ep, width in experts:
                p[pre + ep + "gate_proj.weight"] = rnd(gen, width, H)
                p[pre + ep + "up_proj.weight"] = rnd(gen, width, H)
                p[pre + ep + "down_proj.weight"] = rnd(gen, H, width)
            continue
        mlp = (("mlp.gate_up_proj", 2 * I, H),) if phi3 else (("mlp.gate_proj", I, H), ("mlp.up_proj", I, H))
        for name, out, inp in mlp + (("mlp.down_proj", H, I),):
            p[pre + name + ".weight"] = rnd(gen, out, inp)
            if mlp_bias:
                p[pre + name + ".bias"] = rnd(gen, out, std=0.1)
    p["model.norm.weight"] = rnd(gen, H, std=0.1, mean=1.0)
    if not cfg.get("tie_word_embeddings"):
        p["lm_head.weight"] = rnd(gen, V, H)
    return p


def gpt2_params(cfg, gen, base):
    H, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    I = cfg.get("n_inner") or 4 * H
    p = {base + "wte.weight": rnd(gen, V, H, std=0.5), base + "wpe.weight": rnd(gen, P, H, std=0.1)}
    for i in range(cfg["n_layer"]):
        pre = base + "h.%d." % i
        for ln in ("ln_1", "ln_2"):
            p[pre + ln + ".weight"] = rnd(gen, H, std=0.1, mean=1.0)
            p[pre + ln + ".bias"] = rnd(gen, H, std=0.1)
        for name, inp, out in (("attn.c_attn", H, 3 * H), ("attn.c_proj", H, H),
                               ("mlp.c_fc", H, I), ("mlp.c_proj", I, H)):
            p[pre + name + ".weight"] = rnd(gen, inp, out)
            p[pre + name + ".bias"] = rnd(gen, out, std=0.1)
        # HF checkpoints carry these buffers; the loader must ignore them.
        p[pre + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    p[base + "ln_f.weight"] = rnd(gen, H, std=0.1, mean=1.0)
    p[base + "ln_f.bias"] = rnd(gen, H, std=0.1)
    return p


# ---------------------------------------------------------------- cases
def make_case(name, cfg, storage="F32", shards=1, grads=(), base="", seed=0, seq=7, decode=False):
    if ONLY and name not in ONLY:
        return
    gen = torch.Generator().manual_seed(seed)
    gpt2 = cfg["model_type"] == "gpt2"
    params = gpt2_params(cfg, gen, base) if gpt2 else llama_params(cfg, gen)
    if storage == "BF16":
        stored = {k: v.to(torch.bfloat16) for k, v in params.items()}
        params = {k: v.float() for k, v in stored.items()}
    else:
        stored = params
    V = cfg["vocab_size"]
    ids = torch.randint(0, V, (2, seq), generator=gen)

    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if shards == 1:
        write_st(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
    else:
        names = list(stored)
        per = (len(names) + shards - 1) // shards
        weight_map = {}
        for s in range(shards):
            fname = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            part = {n: stored[n] for n in names[s * per:(s + 1) * per]}
            write_st(os.path.join(d, fname), part, {"format": "pt"})
            weight_map.update({n: fname for n in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)

    leaves = {k: v.clone().requires_grad_(k in grads) for k, v in params.items()}
    logits = gpt2_forward(cfg, leaves, ids, base) if gpt2 else llama_forward(cfg, leaves, ids)
    golden = {"input_ids": ids, "logits": logits.detach().float()}
    if decode:
        cache = []
        steps = [llama_forward(cfg, params, ids[:, :3], cache)]
        steps += [llama_forward(cfg, params, ids[:, t:t + 1], cache) for t in range(3, seq)]
        golden["logits_decode"] = torch.cat(steps, 1).float()
    if grads:
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        loss.backward()
        golden["loss"] = loss.detach().reshape(1)
        for g in grads:
            golden["grad." + g] = leaves[g].grad.float()
    write_st(os.path.join(d, "golden.safetensors"), golden,
             {"magic": MAGIC, "version": VERSION, "case": name, "storage": storage})
    print(name, "logits", tuple(logits.shape), "max |logit| %.3f" % logits.abs().max().item())


def llama_cfg(**kw):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 96,
           "hidden_size": 48, "intermediate_size": 80, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "max_position_embeddings": 64, "hidden_act": "silu",
           "tie_word_embeddings": False, "torch_dtype": "float32"}
    cfg.update(kw)
    return cfg


ONLY = set(sys.argv[1:])
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@case
def originals():
    make_case("gpt2_tied", {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                            "vocab_size": 80, "n_embd": 32, "n_layer": 2, "n_head": 4,
                            "n_positions": 32, "n_inner": None, "layer_norm_epsilon": 1e-5,
                            "activation_function": "gelu_new"},
              base="transformer.", seed=1,
              grads=("transformer.wte.weight", "transformer.h.0.attn.c_attn.weight"))
    make_case("llama_gqa_tied", llama_cfg(tie_word_embeddings=True), seed=2,
              grads=("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                     "model.layers.1.mlp.down_proj.weight", "model.norm.weight"))
    make_case("llama_gqa_untied_bias_bf16",
              llama_cfg(attention_bias=True, mlp_bias=True, num_attention_heads=6,
                        num_key_value_heads=3, head_dim=12, rms_norm_eps=1e-6,
                        torch_dtype="bfloat16"),
              storage="BF16", seed=3)
    make_case("qwen2_sharded",
              llama_cfg(architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_theta=1e6,
                        num_attention_heads=4, num_key_value_heads=1, sliding_window=4096,
                        use_sliding_window=False, bos_token_id=1),
              shards=2, seed=4)
    make_case("gpt2_plain_bf16", {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                                  "vocab_size": 70, "n_embd": 32, "n_layer": 2, "n_head": 2,
                                  "n_positions": 16, "n_inner": 48},
              storage="BF16", seed=5)
    # RoPE scaling, small heads (d=16: 8 frequencies) so that each formula's branches are hit, and
    # sequences of 24 positions, past the original context of the scaled types.
    rope = dict(hidden_size=48, intermediate_size=48, num_attention_heads=3, num_key_value_heads=1,
                head_dim=16)
    # Llama 3.2 style: tied embeddings, llama3 scaling; theta 100 and an original context of 16 put
    # one frequency in each llama3 band (kept, smoothed, divided by factor).
    make_case("llama3_rope_tied",
              llama_cfg(rope_theta=100.0, max_position_embeddings=128, tie_word_embeddings=True,
                        rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 2.0,
                                      "original_max_position_embeddings": 16, "rope_type": "llama3"},
                        **rope),
              seed=6, seq=24)
    make_case("qwen2_rope_yarn",
              llama_cfg(architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_theta=100.0,
                        max_position_embeddings=64, use_sliding_window=False,
                        rope_scaling={"type": "yarn", "factor": 4.0,
                                      "original_max_position_embeddings": 16},
                        **rope),
              seed=7, seq=24,
              grads=("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                     "model.layers.1.self_attn.k_proj.bias"))
    make_case("llama_rope_dynamic",
              llama_cfg(max_position_embeddings=16, rope_scaling={"type": "dynamic", "factor": 2.0},
                        **rope),
              seed=8, seq=24, decode=True)
    make_case("mistral_rope_linear",
              llama_cfg(architectures=["MistralForCausalLM"], model_type="mistral",
                        max_position_embeddings=64,
                        rope_scaling={"rope_type": "linear", "factor": 4.0}, **rope),
              seed=9, seq=24)


@case
def qwen3_qk_norm():
    # head_dim 16 != hidden 48 / 4 heads: q is 64 wide, o_proj maps 64 back to 48.
    make_case("qwen3_qk_norm",
              llama_cfg(architectures=["Qwen3ForCausalLM"], model_type="qwen3", rope_theta=1e6,
                        head_dim=16, rms_norm_eps=1e-6, tie_word_embeddings=True,
                        attention_bias=False, sliding_window=None, use_sliding_window=False,
                        max_window_layers=28),
              seed=6, grads=("model.layers.0.self_attn.q_norm.weight",
                             "model.layers.1.self_attn.k_norm.weight"))


@case
def mistral_window():
    # 11 positions through a window of 4: most keys fall outside it.
    make_case("mistral_window",
              llama_cfg(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=4,
                        rope_theta=1e6),
              seed=7, seq=11)


@case
def qwen2_window_layers():
    # use_sliding_window with max_window_layers=1: layer 0 full attention, layer 1 windowed.
    make_case("qwen2_window_layers",
              llama_cfg(architectures=["Qwen2ForCausalLM"], model_type="qwen2", sliding_window=3,
                        use_sliding_window=True, max_window_layers=1),
              seed=8, seq=9)


@case
def phi3_fused():
    make_case("phi3_fused",
              llama_cfg(architectures=["Phi3ForCausalLM"], model_type="phi3", sliding_window=5,
                        num_attention_heads=4, num_key_value_heads=2, rope_scaling=None,
                        original_max_position_embeddings=64, resid_pdrop=0.0),
              seed=9, seq=9, grads=("model.layers.0.self_attn.qkv_proj.weight",
                                    "model.layers.1.mlp.gate_up_proj.weight"))


@case
def phi3_partial_rotary():
    # Phi-4-mini's partial rotary in miniature (there: head_dim 128, factor 0.75, 96 dims rotate;
    # tied embeddings): head_dim 16 (hidden 64, 4 heads), the first 12 dims of each head rotate
    # with inv_freq over 12 dims, the last 4 pass through.
    make_case("phi3_partial_rotary",
              llama_cfg(architectures=["Phi3ForCausalLM"], model_type="phi3", hidden_size=64,
                        num_attention_heads=4, num_key_value_heads=2, rope_scaling=None,
                        partial_rotary_factor=0.75, original_max_position_embeddings=64,
                        tie_word_embeddings=True, resid_pdrop=0.0, sliding_window=None),
              seed=15, seq=11, grads=("model.layers.0.self_attn.qkv_proj.weight",
                                     "model.layers.1.self_attn.qkv_proj.weight"))


@case
def mixtral_moe():
    # 4 experts, top-2, a window of 5 over 9 positions; the gradients reach the router through
    # the renormalised top-k weights and an expert only through the tokens routed to it.
    make_case("mixtral_moe",
              llama_cfg(architectures=["MixtralForCausalLM"], model_type="mixtral",
                        hidden_size=32, intermediate_size=24, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=64, num_local_experts=4,
                        num_experts_per_tok=2, sliding_window=5, rope_theta=1e6,
                        router_aux_loss_coef=0.02, output_router_logits=False,
                        router_jitter_noise=0.0),
              seed=10, seq=9,
              grads=("model.layers.0.block_sparse_moe.gate.weight",
                     "model.layers.1.block_sparse_moe.experts.2.w1.weight",
                     "model.layers.0.block_sparse_moe.experts.0.w2.weight",
                     "model.layers.1.self_attn.q_proj.weight"))


@case
def qwen2_moe_shared():
    # Qwen1.5-MoE shape in miniature: layer 0 dense (mlp_only_layers, intermediate_size 40), layers
    # 1-2 sparse: 4 experts of width 16, top-2 not renormalised, a shared expert of width 24 behind
    # its sigmoid gate; q/k/v biases.
    make_case("qwen2_moe_shared",
              llama_cfg(architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe",
                        hidden_size=32, intermediate_size=40, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                        rope_theta=1e6, rms_norm_eps=1e-6, num_experts=4, num_experts_per_tok=2,
                        moe_intermediate_size=16, shared_expert_intermediate_size=24,
                        norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[0],
                        use_sliding_window=False, sliding_window=4096, max_window_layers=28,
                        router_aux_loss_coef=0.001, output_router_logits=False),
              seed=11, seq=9,
              grads=("model.layers.1.mlp.gate.weight",
                     "model.layers.2.mlp.shared_expert_gate.weight",
                     "model.layers.1.mlp.shared_expert.up_proj.weight",
                     "model.layers.2.mlp.experts.3.down_proj.weight",
                     "model.layers.0.mlp.gate_proj.weight"))


@case
def qwen3_moe_qk_norm():
    # Qwen3-30B-A3B shape in miniature: explicit head_dim (16, q 64 wide over hidden 48), q/k norms,
    # 8 experts of width 20, top-2 renormalised (norm_topk_prob), decoder_sparse_step 2 over 4
    # layers: layers 1 and 3 sparse, 0 and 2 dense MLPs of intermediate_size 56.
    make_case("qwen3_moe_qk_norm",
              llama_cfg(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe",
                        hidden_size=48, intermediate_size=56, num_hidden_layers=4, head_dim=16,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                        rope_theta=1e6, rms_norm_eps=1e-6, num_experts=8, num_experts_per_tok=2,
                        moe_intermediate_size=20, norm_topk_prob=True, decoder_sparse_step=2,
                        mlp_only_layers=[], attention_bias=False, use_sliding_window=False,
                        sliding_window=None, tie_word_embeddings=True,
                        router_aux_loss_coef=0.001, output_router_logits=False),
              seed=12, seq=9,
              grads=("model.layers.1.mlp.gate.weight",
                     "model.layers.3.mlp.experts.5.gate_proj.weight",
                     "model.layers.1.self_attn.k_norm.weight",
                     "model.layers.2.mlp.down_proj.weight"))


@case
def qwen2_moe_gguf():
    # every layer sparse (llama.cpp's qwen2moe has no dense layers): 4 experts of width 16, top-2
    # not renormalised (llama.cpp's qwen2moe graph never renormalises), a shared expert of width
    # 32 behind its sigmoid gate; q/k/v biases; an untied head (qwen2moe requires output.weight).
    make_case("qwen2_moe_gguf",
              llama_cfg(architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe",
                        hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                        rope_theta=1e6, rms_norm_eps=1e-6, num_experts=4, num_experts_per_tok=2,
                        moe_intermediate_size=16, shared_expert_intermediate_size=32,
                        norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[],
                        use_sliding_window=False, sliding_window=4096, max_window_layers=28,
                        router_aux_loss_coef=0.001, output_router_logits=False),
              seed=13, seq=9)


@case
def qwen3_moe_gguf():
    # every layer sparse (decoder_sparse_step 1, as llama.cpp's qwen3moe requires): explicit
    # head_dim 16 (q 64 wide over hidden 32), q/k norms, 8 experts of width 16, top-2 renormalised
    # (llama.cpp's qwen3moe always renormalises), tied embeddings.
    make_case("qwen3_moe_gguf",
              llama_cfg(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe",
                        hidden_size=32, intermediate_size=48, num_hidden_layers=2, head_dim=16,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                        rope_theta=1e6, rms_norm_eps=1e-6, num_experts=8, num_experts_per_tok=2,
                        moe_intermediate_size=16, norm_topk_prob=True, decoder_sparse_step=1,
                        mlp_only_layers=[], attention_bias=False, use_sliding_window=False,
                        sliding_window=None, tie_word_embeddings=True,
                        router_aux_loss_coef=0.001, output_router_logits=False),
              seed=14, seq=9)


def main():
    # every case function; make_case skips the cases not named on the command line
    for fn in CASES.values():
        fn()


if __name__ == "__main__":
    main()
