#!/usr/bin/env python3
"""An independent GGUF reader (numpy only, written from the GGUF spec and ggml-common.h) used to
check files written by the Java GgufWriter.

  read_gguf.py FILE.gguf [EXPECTED.json]

Parses the header, every metadata pair and every tensor info, checks alignment and bounds, and
dequantizes F32/F16/Q8_0/Q5_0/Q4_0/Q4_K/Q6_K tensors. With EXPECTED.json (written by GgufFixtureTest)
it compares metadata and the dequantized values with what the Java side computed and exits 1 on
any difference. Without it, it prints a summary (and checks the llama keys when the file says
general.architecture = llama, and for llama (dense or with Mixtral's experts), qwen2, qwen3,
qwen2moe and qwen3moe the keys and the exact tensor table llama.cpp's loader wants).
"""
import json
import struct
import sys

import numpy as np

GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 6: ("Q5_0", 32, 22), 8: ("Q8_0", 32, 34),
              12: ("Q4_K", 256, 144), 14: ("Q6_K", 256, 210)}
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError(f"file ends at {len(self.d)}, need {n} bytes at {self.p}")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.scalar("<Q")
        return self.take(n).decode("utf-8")

    def value(self, t):
        if t in SCALAR:
            return self.scalar(SCALAR[t])
        if t == 8:
            return self.string()
        if t == 9:
            et = self.scalar("<I")
            n = self.scalar("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError(f"unknown value type {t}")


def parse(path):
    data = open(path, "rb").read()
    r = Reader(data)
    if r.take(4) != b"GGUF":
        raise ValueError("bad magic")
    version = r.scalar("<I")
    assert version == 3, f"version {version}"
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    md = {}
    for _ in range(n_kv):
        key = r.string()
        t = r.scalar("<I")
        md[key] = (t, r.value(t))
    align = md.get("general.alignment", (4, 32))[1]
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.scalar("<I")
        ne = [r.scalar("<Q") for _ in range(nd)]
        t = r.scalar("<I")
        off = r.scalar("<Q")
        tensors.append((name, ne, t, off))
    data_start = (r.p + align - 1) // align * align
    assert all(b == 0 for b in data[r.p:data_start]), "padding before data is not zero"
    return data, version, md, tensors, align, data_start


def f16(b):
    return np.frombuffer(b, dtype="<f2").astype(np.float32)


def dequant(t, raw, n):
    name, bs, ts = GGML_TYPES[t]
    if name == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if name == "F16":
        return f16(raw)
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, ts)
    if name == "Q8_0":
        d = f16(blocks[:, :2].tobytes())[:, None]
        return (blocks[:, 2:].view(np.int8).astype(np.float32) * d).ravel()
    if name == "Q4_0":
        d = f16(blocks[:, :2].tobytes())[:, None]
        qs = blocks[:, 2:]
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.float32) - np.float32(8)
        return (q * d).astype(np.float32).ravel()
    if name == "Q5_0":
        d = f16(blocks[:, :2].tobytes())[:, None]
        qh = blocks[:, 2:6].copy().view("<u4")[:, 0]
        hi = ((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8) << 4
        qs = blocks[:, 6:]
        q = (np.concatenate([qs & 0xF, qs >> 4], axis=1) | hi).astype(np.float32) - np.float32(16)
        return (q * d).astype(np.float32).ravel()
    if name == "Q4_K":
        d = f16(blocks[:, 0:2].tobytes())
        dmin = f16(blocks[:, 2:4].tobytes())
        sc = blocks[:, 4:16].astype(np.int32)
        qs = blocks[:, 16:]
        out = np.empty((blocks.shape[0], 256), np.float32)
        for j in range(8):
            if j < 4:
                s, m = sc[:, j] & 63, sc[:, j + 4] & 63
            else:
                s = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
                m = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
            c = j // 2
            q = qs[:, 32 * c:32 * c + 32]
            q = (q & 0xF) if j % 2 == 0 else (q >> 4)
            dl = (d * s.astype(np.float32))[:, None]
            ml = (dmin * m.astype(np.float32))[:, None]
            out[:, 32 * j:32 * j + 32] = dl * q.astype(np.float32) - ml
        return out.ravel()
    if name == "Q6_K":
        ql = blocks[:, :128]
        qh = blocks[:, 128:192]
        sc = blocks[:, 192:208].view(np.int8).astype(np.float32)
        d = f16(blocks[:, 208:210].tobytes())[:, None]
        out = np.empty((blocks.shape[0], 256), np.float32)
        for h in range(2):
            l0, l1, hh = ql[:, 64 * h:64 * h + 32], ql[:, 64 * h + 32:64 * h + 64], qh[:, 32 * h:32 * h + 32]
            codes = [(l0 & 0xF) | (((hh >> 0) & 3) << 4), (l1 & 0xF) | (((hh >> 2) & 3) << 4),
                     (l0 >> 4) | (((hh >> 4) & 3) << 4), (l1 >> 4) | (((hh >> 6) & 3) << 4)]
            for k in range(4):
                q = codes[k].astype(np.float32) - np.float32(32)
                for half16 in range(2):
                    is_ = 8 * h + 2 * k + half16
                    cols = slice(128 * h + 32 * k + 16 * half16, 128 * h + 32 * k + 16 * half16 + 16)
                    out[:, cols] = (d * sc[:, is_:is_ + 1]) * q[:, 16 * half16:16 * half16 + 16]
        return out.ravel()
    raise ValueError(name)


def arch_layout_failures(md, tensors):
    """Checks a llama/qwen2/qwen3 file against llama.cpp's loader (src/llama-model.cpp, LLM_ARCH_LLAMA
    in src/llama-arch.cpp, src/models/qwen3.cpp): the keys it reads, and exactly the tensors it creates
    with their shapes (ggml order, innermost first); llama.cpp refuses a file with any other tensor
    ("wrong number of tensors"). A llama file with llama.expert_count has llama.cpp's MoE FFN instead
    of the dense one: the router ffn_gate_inp {n_embd, n_expert} and the experts stacked as 3-D
    ffn_gate_exps/ffn_up_exps {n_embd, n_ff, n_expert} and ffn_down_exps {n_ff, n_embd, n_expert}.
    qwen2moe/qwen3moe (src/models/qwen2moe.cpp, qwen3moe.cpp) have that FFN in every layer with
    n_ff_exp = expert_feed_forward_length (else n_ff / n_expert_used); qwen2moe has square q/o
    projections {n_embd, n_embd}, q/k/v biases, a required output.weight and the shared expert
    ffn_gate_inp_shexp {n_embd}, ffn_gate_shexp/ffn_up_shexp {n_embd, n_ff_shexp}, ffn_down_shexp
    {n_ff_shexp, n_embd} (n_ff_shexp = expert_shared_feed_forward_length, else n_ff); qwen3moe has
    qwen3's q/k norms. llama.cpp's shape check lets a tensor have extra trailing dimensions of 1."""
    arch = md["general.architecture"][1]
    failures = []

    def key(k, required=True):
        if f"{arch}.{k}" in md:
            return md[f"{arch}.{k}"][1]
        if required:
            failures.append(f"missing key {arch}.{k}")
        return None

    n_embd, n_layer, n_ff = key("embedding_length"), key("block_count"), key("feed_forward_length")
    n_head, n_kv = key("attention.head_count"), key("attention.head_count_kv")
    key("context_length")
    key("rope.freq_base")
    key("attention.layer_norm_rms_epsilon")
    moe_arch = arch in ("qwen2moe", "qwen3moe")
    n_expert = key("expert_count", moe_arch) if arch == "llama" or moe_arch else None
    if n_expert is not None:
        n_used = key("expert_used_count")
        if n_used is not None and not 0 < n_used <= n_expert:
            failures.append(f"expert_used_count {n_used} outside 1..{n_expert}")
    if failures:
        return failures
    hd = key("attention.key_length", False) or n_embd // n_head
    if (key("attention.value_length", False) or n_embd // n_head) != hd:
        failures.append("value_length differs from key_length (the qwen graphs assert they are equal)")
    if key("rope.dimension_count", False) not in (None, hd):
        failures.append("rope.dimension_count differs from the head dim (the qwen graphs assert n_rot == head dim)")
    for k in ["tokenizer.ggml.model", "tokenizer.ggml.tokens"]:
        if k not in md:
            failures.append(f"missing key {k}")
    if failures:
        return failures
    n_vocab = len(md["tokenizer.ggml.tokens"][1])
    n_ff_exp = n_ff
    if moe_arch:
        n_ff_exp = key("expert_feed_forward_length", False) or n_ff // key("expert_used_count")
    n_ff_shexp = key("expert_shared_feed_forward_length", False) or n_ff
    q_rows = n_embd if arch == "qwen2moe" else hd * n_head
    want = {"token_embd.weight": [n_embd, n_vocab], "output_norm.weight": [n_embd]}
    for i in range(n_layer):
        b = f"blk.{i}."
        want[b + "attn_norm.weight"] = [n_embd]
        want[b + "attn_q.weight"] = [n_embd, q_rows]
        want[b + "attn_k.weight"] = [n_embd, hd * n_kv]
        want[b + "attn_v.weight"] = [n_embd, hd * n_kv]
        want[b + "attn_output.weight"] = [q_rows, n_embd]
        if arch in ("qwen2", "qwen2moe"):
            want[b + "attn_q.bias"] = [q_rows]
            want[b + "attn_k.bias"] = [hd * n_kv]
            want[b + "attn_v.bias"] = [hd * n_kv]
        elif arch in ("qwen3", "qwen3moe"):
            want[b + "attn_q_norm.weight"] = [hd]
            want[b + "attn_k_norm.weight"] = [hd]
        want[b + "ffn_norm.weight"] = [n_embd]
        if n_expert is not None:
            want[b + "ffn_gate_inp.weight"] = [n_embd, n_expert]
            want[b + "ffn_gate_exps.weight"] = [n_embd, n_ff_exp, n_expert]
            want[b + "ffn_down_exps.weight"] = [n_ff_exp, n_embd, n_expert]
            want[b + "ffn_up_exps.weight"] = [n_embd, n_ff_exp, n_expert]
            if arch == "qwen2moe":
                want[b + "ffn_gate_inp_shexp.weight"] = [n_embd]
                want[b + "ffn_gate_shexp.weight"] = [n_embd, n_ff_shexp]
                want[b + "ffn_down_shexp.weight"] = [n_ff_shexp, n_embd]
                want[b + "ffn_up_shexp.weight"] = [n_embd, n_ff_shexp]
        else:
            want[b + "ffn_gate.weight"] = [n_embd, n_ff]
            want[b + "ffn_down.weight"] = [n_ff, n_embd]
            want[b + "ffn_up.weight"] = [n_embd, n_ff]
    have = {name: (ne, t) for name, ne, t, off in tensors}
    if arch == "llama" and n_expert is None:  # llama.cpp's optional llama biases
        for i in range(n_layer):
            b = f"blk.{i}."
            for bias, ne in (("attn_q.bias", n_embd), ("attn_k.bias", hd * n_kv),
                             ("attn_v.bias", hd * n_kv), ("attn_output.bias", n_embd),
                             ("ffn_gate.bias", n_ff), ("ffn_up.bias", n_ff),
                             ("ffn_down.bias", n_embd)):
                if b + bias in have:
                    want[b + bias] = [ne]
    if arch == "llama" and "rope_freqs.weight" in have:  # llama3 scaling's per-pair divisors
        want["rope_freqs.weight"] = [hd // 2]
    if "output.weight" in have or arch == "qwen2moe":  # else llama.cpp reuses token_embd.weight
        want["output.weight"] = [n_embd, n_vocab]
    for name in sorted(set(want) | set(have)):
        if name not in have:
            failures.append(f"missing tensor {name}")
        elif name not in want:
            failures.append(f"tensor {name} is not in llama.cpp's {arch} layout")
        elif list(have[name][0]) != want[name] + [1] * (len(have[name][0]) - len(want[name])):
            failures.append(f"tensor {name}: ne {have[name][0]}, llama.cpp wants {want[name]}")
        elif len(want[name]) == 1 and have[name][1] != 0:
            failures.append(f"tensor {name}: 1-D tensors stay F32, found type {have[name][1]}")
        elif name.endswith("ffn_gate_inp.weight") and have[name][1] != 0:
            failures.append(f"tensor {name}: llama-quantize never quantizes the router, found type {have[name][1]}")
    return failures


def main():
    path = sys.argv[1]
    data, version, md, tensors, align, data_start = parse(path)
    print(f"{path}: GGUF v{version}, {len(md)} metadata pairs, {len(tensors)} tensors, "
          f"alignment {align}, data at {data_start}, file {len(data)} bytes")
    decoded = {}
    end = 0
    for name, ne, t, off in tensors:
        assert t in GGML_TYPES, f"{name}: unsupported type {t}"
        tname, bs, ts = GGML_TYPES[t]
        n = int(np.prod(ne))
        assert ne[0] % bs == 0, f"{name}: row {ne[0]} not a multiple of {bs}"
        size = n // bs * ts
        assert off % align == 0, f"{name}: offset {off} not aligned"
        assert off >= end, f"{name}: overlaps previous tensor"
        end = off + size
        assert data_start + end <= len(data), f"{name}: beyond end of file"
        decoded[name] = (list(reversed(ne)), tname, dequant(t, data[data_start + off:data_start + end], n))
    failures = 0
    if len(sys.argv) > 2:
        exp = json.load(open(sys.argv[2]))
        for k, v in exp["metadata"].items():
            t, got = md[k]
            if t == 6:
                ok = np.float32(got) == np.float32(v)
            else:
                ok = got == v
            print(f"  metadata {k:24s} {'ok' if ok else 'MISMATCH'}: {got!r}")
            failures += not ok
        for t in exp["tensors"]:
            shape, tname, vals = decoded[t["name"]]
            want = np.array(t["values"], dtype=np.float64).astype(np.float32)
            diff = float(np.max(np.abs(vals - want))) if vals.size else 0.0
            ok = shape == t["shape"] and tname == t["type"] and vals.size == want.size and diff == 0.0
            print(f"  tensor {t['name']:10s} {tname:5s} {shape} values {vals.size} "
                  f"max |python - java| = {diff:g} {'ok' if ok else 'MISMATCH'}")
            failures += not ok
    else:
        if md.get("general.architecture", (8, ""))[1] == "llama":
            for k in ["general.name", "general.file_type", "llama.context_length", "llama.embedding_length",
                      "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
                      "llama.attention.head_count_kv", "llama.rope.freq_base",
                      "llama.attention.layer_norm_rms_epsilon", "llama.rope.dimension_count",
                      "llama.vocab_size", "tokenizer.ggml.model", "tokenizer.ggml.pre",
                      "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"]:
                if k not in md:
                    print(f"  MISSING {k}")
                    failures += 1
                else:
                    print(f"  {k} = {md[k][1]!r}")
            for k in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"]:
                print(f"  {k}: {len(md[k][1]) if k in md else 'MISSING'} entries")
        if md.get("general.architecture", (8, ""))[1] in ("llama", "qwen2", "qwen3", "qwen2moe",
                                                          "qwen3moe"):
            problems = arch_layout_failures(md, tensors)
            for p in problems:
                print(f"  LAYOUT {p}")
            print(f"  llama.cpp {md['general.architecture'][1]} layout: "
                  f"{'ok' if not problems else str(len(problems)) + ' problems'}")
            failures += len(problems)
        for name, (shape, tname, vals) in decoded.items():
            rms = float(np.sqrt(np.mean(vals.astype(np.float64) ** 2)))
            print(f"  {name:28s} {tname:5s} {shape} rms {rms:.5f} finite {bool(np.isfinite(vals).all())}")
            failures += not np.isfinite(vals).all()
    print("RESULT:", "OK" if failures == 0 else f"{failures} FAILURES")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
