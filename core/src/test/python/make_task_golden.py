#!/usr/bin/python3
"""Golden scores for task accuracy (core/.../tasks/TaskScorer): lm-evaluation-harness's rules on
the shipped tiny reference model, written independently of the Java code.

The rules, transcribed from lm-eval 0.4 (lm_eval/api/model.py TemplateLM._encode_pair,
lm_eval/models/huggingface.py HFLM._loglikelihood_tokens, lm_eval/api/task.py process_results and
lm_eval/api/metrics.py mean_stderr):
- trailing whitespace of the context moves to the front of the continuation;
- continuation tokens = encode(context + continuation)[len(encode(context)):];
- the model reads (context + continuation)[-(max_length + 1):][:-1]; the continuation's
  log-likelihood is the sum of its tokens' log-softmax values, greedy when each is the argmax;
- multiple choice: acc = argmax(ll) == gold, acc_norm = argmax(ll / len(choice)) == gold
  (choices without the " " target delimiter, np.argmax's first-on-ties);
- continuation tasks: acc = greedy, perplexity = exp(-mean(ll));
- stderr = sample standard deviation / sqrt(n).
Tokenizer: the model's byte-level one (UTF-8 bytes), BOS 256 in front (add_bos_token=True).
The forward is make_model_golden.llama_forward (plain torch from HF's modeling_llama semantics).

Run: /usr/bin/python3 core/src/test/python/make_task_golden.py
Writes core/src/test/resources/golden/tasks/{mc.jsonl,cont.jsonl,expected.json}.
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_model_golden import llama_forward  # noqa: E402
from check_pruned_model import read_st  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
MODEL = os.path.join(ROOT, "models", "tiny-llama-v1")
OUT = os.path.join(ROOT, "core", "src", "test", "resources", "golden", "tasks")
BOS = 256

MC = [
    {"id": "a", "context": "The Commission has presented its proposal to the",
     "choices": ["Parliament.", "banana split with cream", "house", "of of of of"], "gold": 0},
    {"id": "b", "context": "Mr President, I would like to thank the rapporteur ",
     "choices": ["for his excellent report.", "zzzz qqqq", "sky"], "gold": 0},
    {"id": "c", "context": "",
     "choices": ["The vote will take place tomorrow.", "Xq7 #@! vv", "the the"], "gold": 0},
    {"id": "d", "context": "We must protect the environment and the " + "citizens of Europe " * 14,
     "choices": ["in every Member State.", "and", "purple elephants dance tonight"], "gold": 0},
    {"id": "e", "context": "The debate is closed.",
     "choices": ["The vote will take place at noon.", "Blue.", "It is"], "gold": 1,
     "target_delimiter": "\n"},
]
CONT = [
    {"id": "f", "context": "The debate is", "continuation": " closed"},
    {"id": "g", "context": "Ladies and gentlemen, the vote will take place ",
     "continuation": "tomorrow"},
    {"id": "h", "context": "Thank you, Mr President. I should like to thank the",
     "continuation": " Commission"},
]


def encode(text):
    return [BOS] + list(text.encode("utf-8"))


def encode_pair(context, continuation):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx):]


def loglikelihood(cfg, p, ctx, cont, max_length):
    inp = (ctx + cont)[-(max_length + 1):][:-1]
    ids = torch.tensor([inp], dtype=torch.long)
    with torch.no_grad():
        logits = llama_forward(cfg, p, ids)[0]
    lp = torch.log_softmax(logits.double(), dim=-1)[len(inp) - len(cont):]
    target = torch.tensor(cont, dtype=torch.long)
    ll = lp.gather(1, target.unsqueeze(1)).sum().item()
    greedy = bool((lp.argmax(dim=-1) == target).all().item())
    return ll, greedy


def stderr(xs):
    xs = np.array(xs, dtype=np.float64)
    return float(np.sqrt(((xs - xs.mean()) ** 2).sum() / (len(xs) - 1)) / np.sqrt(len(xs)))


def main():
    with open(os.path.join(MODEL, "config.json")) as f:
        cfg = json.load(f)
    p = read_st(os.path.join(MODEL, "model.safetensors"))
    max_length = cfg["max_position_embeddings"]
    os.makedirs(OUT, exist_ok=True)
    expected = {"mc": [], "cont": []}
    acc, acc_norm = [], []
    for d in MC:
        delim = d.get("target_delimiter", " ")
        lls, greedy = [], []
        for c in d["choices"]:
            ctx, cont = encode_pair(d["context"], delim + c)
            ll, g = loglikelihood(cfg, p, ctx, cont, max_length)
            lls.append(ll)
            greedy.append(g)
        lens = np.array([float(len(c)) for c in d["choices"]])
        acc.append(1.0 if int(np.argmax(lls)) == d["gold"] else 0.0)
        acc_norm.append(1.0 if int(np.argmax(np.array(lls) / lens)) == d["gold"] else 0.0)
        expected["mc"].append({"id": d["id"], "ll": lls, "greedy": greedy})
    expected["mc_metrics"] = {"acc": float(np.mean(acc)), "acc_stderr": stderr(acc),
                              "acc_norm": float(np.mean(acc_norm)),
                              "acc_norm_stderr": stderr(acc_norm)}
    cacc, clls = [], []
    for d in CONT:
        ctx, cont = encode_pair(d["context"], d["continuation"])
        ll, g = loglikelihood(cfg, p, ctx, cont, max_length)
        cacc.append(1.0 if g else 0.0)
        clls.append(ll)
        expected["cont"].append({"id": d["id"], "ll": [ll], "greedy": [g]})
    expected["cont_metrics"] = {"acc": float(np.mean(cacc)), "acc_stderr": stderr(cacc),
                                "perplexity": math.exp(-float(np.mean(clls)))}
    for name, docs in (("mc.jsonl", MC), ("cont.jsonl", CONT)):
        with open(os.path.join(OUT, name), "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
