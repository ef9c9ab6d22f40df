package dev.compactor.core.model.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import dev.compactor.core.model.ActivationObserver;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.moe.MoefiedMlp;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The decoder forward of every family, shared by the resident and the streaming model, written to
 * match Hugging Face's {@code modeling_llama} (with {@code modeling_qwen3}'s q/k norms, {@code
 * modeling_phi3}'s fused projections and {@code modeling_mistral}'s sliding window, the sparse
 * mixtures of experts of {@code modeling_mixtral}, {@code modeling_qwen2_moe} and {@code
 * modeling_qwen3_moe}) and {@code modeling_gpt2}.
 *
 * <p>Memory rule: DJL attaches an op's result to the manager of its receiver, so every op here has
 * an activation (living in the pass's manager) as receiver and weights only as arguments; weights
 * may then live in a long-lived or a per-layer manager without leaking. Scalars are long-lived
 * constant arrays, never {@code mul(Number)}, because DJL frees a temporary scalar that autograd
 * still references.
 */
public final class Forward {

  /** Where one pass gets its weights: the resident model returns its arrays, streaming loads. */
  public interface Weights {
    /** A non-layer tensor by full HF name (embeddings, final norm, head). */
    NDArray global(String name);

    /** Layer {@code i}'s tensors by relative name; anything loaded lives in {@code scratch}. */
    Map<String, NDArray> layer(int i, NDManager scratch) throws IOException;
  }

  private final ModelConfig c;
  private final String base;
  private final NDArray eps;
  private final NDArray scale;
  private final NDArray half;
  private final NDArray one;
  private final NDArray geluCubic;
  private final NDArray geluScale;

  /** {@code constants} must outlive every pass (it holds the scalar arrays). */
  public Forward(ModelConfig c, String base, NDManager constants) {
    this.c = c;
    this.base = base;
    this.eps = constants.create((float) c.normEps());
    this.scale = constants.create((float) (1.0 / Math.sqrt(c.headDim())));
    this.half = constants.create(0.5f);
    this.one = constants.create(1f);
    this.geluCubic = constants.create(0.044715f);
    this.geluScale = constants.create((float) Math.sqrt(2.0 / Math.PI));
  }

  /**
   * Logits {@code [batch, seq, vocab]} for {@code tokens}, after the positions already in {@code
   * cache} (appending to it; null for none). The result lives in {@code m}. With {@code
   * layerScopes} each layer runs in its own sub-manager, closed when the layer is done, which frees
   * its activations and any weights {@link Weights#layer} loaded; without, every intermediate stays
   * in {@code m} (training: backward needs them).
   */
  public NDArray run(
      NDManager m,
      Weights w,
      NDArray tokens,
      KvCache cache,
      ActivationObserver observer,
      boolean layerScopes) {
    return run(m, w, tokens, cache, observer, layerScopes, null);
  }

  /**
   * As {@link #run(NDManager, Weights, NDArray, KvCache, ActivationObserver, boolean)}, also adding
   * each decoder layer's output (the residual stream after layer {@code i}, {@code [batch, seq,
   * hidden]}, living in {@code m}) to {@code hidden} in layer order when it is not null: what
   * hidden-state distillation compares.
   */
  public NDArray run(
      NDManager m,
      Weights w,
      NDArray tokens,
      KvCache cache,
      ActivationObserver observer,
      boolean layerScopes,
      List<NDArray> hidden) {
    int pos0 = cache == null ? 0 : cache.position();
    long batch = tokens.getShape().get(0);
    int seq = Math.toIntExact(tokens.getShape().get(1));
    checkLength(pos0 + seq);
    Pass p = new Pass(m, observer, batch, seq, pos0);
    NDArray ids = local(m, tokens.toType(DataType.INT64, true));
    NDArray x = Embedding.embedding(ids, w.global(embedName()), SparseFormat.DENSE).head();
    if (c.family() == ModelConfig.Family.GPT2) {
      NDArray positions = m.arange(pos0, pos0 + seq).toType(DataType.INT64, false);
      x =
          x.add(
              Embedding.embedding(positions, w.global(base + "wpe.weight"), SparseFormat.DENSE)
                  .head());
    }
    for (int i = 0; i < c.numLayers(); i++) {
      NDManager scope = layerScopes ? m.newSubManager() : m;
      try {
        if (layerScopes) {
          x.attach(scope);
        }
        p.scope = scope;
        Map<String, NDArray> lw = w.layer(i, scope);
        x =
            c.family() == ModelConfig.Family.GPT2
                ? gpt2Layer(p, i, lw, x, cache)
                : llamaLayer(p, i, lw, x, cache);
        x.attach(m);
        if (hidden != null) {
          // with layer scopes x moves into the next layer's scope, which is closed after it
          hidden.add(layerScopes ? x.duplicate() : x);
        }
      } catch (IOException e) {
        throw new UncheckedIOException("reading weights of layer " + i, e);
      } finally {
        if (layerScopes) {
          scope.close();
        }
      }
    }
    p.scope = m;
    if (cache != null) {
      cache.advance(seq);
    }
    if (c.family() == ModelConfig.Family.GPT2) {
      x = layerNorm(x, w.global(base + "ln_f.weight"), w.global(base + "ln_f.bias"));
      return Linear.linear(x, w.global(embedName())).head();
    }
    x = rmsNorm(x, w.global("model.norm.weight"));
    String head = c.tieWordEmbeddings() ? embedName() : "lm_head.weight";
    return Linear.linear(x, w.global(head)).head();
  }

  /**
   * Decoder layer {@code i} alone, applied to hidden states {@code x} ({@code [batch, seq,
   * hidden]}) at positions {@code 0..seq-1} with no cache: the same code as one step of {@link
   * #run}, for layer-by-layer calibration (GPTQ feeds layer {@code i+1} the outputs of the
   * already-quantized layer {@code i}, so hidden states are carried between layers instead of
   * recomputed from the tokens). {@code w} holds the layer's tensors by relative name; {@code
   * observer} (may be null) sees every linear's input, a mixture-of-experts layer's experts only
   * their routed tokens. The result, like every intermediate, lives in {@code m}.
   */
  public NDArray layer(
      NDManager m, int i, Map<String, NDArray> w, NDArray x, ActivationObserver observer) {
    if (i < 0 || i >= c.numLayers()) {
      throw new IllegalArgumentException(
          "layer " + i + " is outside the model's " + c.numLayers() + " decoder layers");
    }
    Shape s = x.getShape();
    if (s.dimension() != 3 || s.get(2) != c.hiddenSize()) {
      throw new IllegalArgumentException(
          "expected hidden states [batch, seq, " + c.hiddenSize() + "], found " + s);
    }
    int seq = Math.toIntExact(s.get(1));
    checkLength(seq);
    Pass p = new Pass(m, observer, s.get(0), seq, 0);
    return c.family() == ModelConfig.Family.GPT2
        ? gpt2Layer(p, i, w, x, null)
        : llamaLayer(p, i, w, x, null);
  }

  private NDArray llamaLayer(Pass p, int i, Map<String, NDArray> w, NDArray x, KvCache cache) {
    NDArray h = rmsNorm(x, w.get("input_layernorm.weight"));
    NDArray q;
    NDArray k;
    NDArray v;
    if (c.fusedProjections()) {
      // Phi-3: qkv_proj rows are [q (heads*d) | k (kv*d) | v (kv*d)].
      long qw = (long) c.numHeads() * c.headDim();
      long kw = (long) c.numKvHeads() * c.headDim();
      NDList qkv = linear(p, i, w, "self_attn.qkv_proj", h).split(new long[] {qw, qw + kw}, 2);
      q = heads(p, qkv.get(0), c.numHeads());
      k = heads(p, qkv.get(1), c.numKvHeads());
      v = heads(p, qkv.get(2), c.numKvHeads());
    } else {
      q = heads(p, linear(p, i, w, "self_attn.q_proj", h), c.numHeads());
      k = heads(p, linear(p, i, w, "self_attn.k_proj", h), c.numKvHeads());
      v = heads(p, linear(p, i, w, "self_attn.v_proj", h), c.numKvHeads());
    }
    if (c.qkNorm()) {
      // Qwen3: RMSNorm over each head's vector, before RoPE.
      q = rmsNorm(q, w.get("self_attn.q_norm.weight"));
      k = rmsNorm(k, w.get("self_attn.k_norm.weight"));
    }
    NDArray attn = attention(p, i, p.rope(q), p.rope(k), v, cache);
    x = x.add(linear(p, i, w, "self_attn.o_proj", attn));
    h = rmsNorm(x, w.get("post_attention_layernorm.weight"));
    if (c.sparseLayer(i)) {
      return x.add(sparseMoe(p, i, w, h));
    }
    if (c.moefied()) {
      return x.add(moefiedMlp(p, i, w, h));
    }
    NDArray gate;
    NDArray up;
    if (c.fusedProjections()) {
      // Phi-3: gate_up_proj output is [gate | up] (HF chunks it in two along the last axis).
      NDList gateUp = linear(p, i, w, "mlp.gate_up_proj", h).split(2, 2);
      gate = gateUp.get(0);
      up = gateUp.get(1);
    } else {
      gate = linear(p, i, w, "mlp.gate_proj", h);
      up = linear(p, i, w, "mlp.up_proj", h);
    }
    NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up);
    return x.add(linear(p, i, w, "mlp.down_proj", act));
  }

  /**
   * A sparse MLP as HF's MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock: router logits, softmax
   * over all experts, the top k per token, their probabilities renormalised to sum 1 when the
   * family says so (Mixtral always, Qwen per {@code norm_topk_prob}), and the weighted sum of those
   * experts' SiLU-gated MLPs; Qwen2-MoE adds its shared expert, which every token runs, scaled by
   * {@code sigmoid(shared_expert_gate(x))}. Only routed tokens run through an expert (calibration
   * observes each expert's linears on exactly those rows): each expert takes its rows of the
   * flattened hidden states, and the k scaled outputs of every token are gathered back and summed.
   * The choice is made on the host (it is not differentiable in HF either); the weights are
   * gathered from the softmax, so gradients reach the router.
   */
  private NDArray sparseMoe(Pass p, int layer, Map<String, NDArray> w, NDArray h) {
    int n = Math.toIntExact(p.batch * p.seq);
    long hidden = c.hiddenSize();
    int experts = c.numExperts();
    int k = c.expertsPerToken();
    NDArray flat = h.reshape(n, hidden);
    NDArray probs = linear(p, layer, w, Layout.router(c), h).reshape(n, experts).softmax(1);
    float[] pr = probs.toFloatArray();
    long[] chosen = new long[n * k];
    for (int t = 0; t < n; t++) {
      // the k largest, largest first; a tie goes to the lower expert index
      boolean[] taken = new boolean[experts];
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
          if (!taken[e] && (best < 0 || pr[t * experts + e] > pr[t * experts + best])) {
            best = e;
          }
        }
        taken[best] = true;
        chosen[t * k + j] = best;
      }
    }
    NDArray top = probs.gather(p.scope.create(chosen, new Shape(n, k)), 1);
    NDArray routing =
        (c.normTopkProb() ? top.div(top.sum(new int[] {1}, true)) : top).reshape((long) n * k);
    NDList outputs = new NDList();
    long[] rowOfSlot = new long[n * k];
    int row = 0;
    for (int e = 0; e < experts; e++) {
      int count = 0;
      for (long chosenExpert : chosen) {
        if (chosenExpert == e) {
          count++;
        }
      }
      if (count == 0) {
        continue;
      }
      long[] tokens = new long[count];
      long[] slots = new long[count];
      int at = 0;
      for (int s = 0; s < chosen.length; s++) {
        if (chosen[s] == e) {
          tokens[at] = s / k;
          slots[at++] = s;
          rowOfSlot[s] = row++;
        }
      }
      NDArray rows = flat.gather(rowIndex(p, tokens, hidden), 0);
      NDArray gate = linear(p, layer, w, Layout.expert(c, e, Layout.ExpertProj.GATE), rows);
      NDArray up = linear(p, layer, w, Layout.expert(c, e, Layout.ExpertProj.UP), rows);
      NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up);
      NDArray scaleBy = routing.gather(p.scope.create(slots), 0).expandDims(1);
      outputs.add(
          linear(p, layer, w, Layout.expert(c, e, Layout.ExpertProj.DOWN), act).mul(scaleBy));
    }
    NDArray all = outputs.size() == 1 ? outputs.head() : NDArrays.concat(outputs, 0);
    NDArray routed =
        all.gather(rowIndex(p, rowOfSlot, hidden), 0).reshape(n, k, hidden).sum(new int[] {1});
    if (Layout.hasSharedExpert(c)) {
      NDArray gate = linear(p, layer, w, Layout.sharedExpert(c, Layout.ExpertProj.GATE), flat);
      NDArray up = linear(p, layer, w, Layout.sharedExpert(c, Layout.ExpertProj.UP), flat);
      NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up);
      NDArray shared = linear(p, layer, w, Layout.sharedExpert(c, Layout.ExpertProj.DOWN), act);
      NDArray share = Activation.sigmoid(linear(p, layer, w, Layout.sharedExpertGate(c), flat));
      routed = routed.add(shared.mul(share));
    }
    return routed.reshape(p.batch, p.seq, hidden);
  }

  /**
   * A MoEfied dense MLP: only each token's top-k neuron slices run ({@link MoefiedMlp}). An
   * observer sees the dense input of gate/up and, for down_proj, the activation with the slices a
   * token skipped zeroed, which is what down_proj multiplies.
   */
  private NDArray moefiedMlp(Pass p, int layer, Map<String, NDArray> w, NDArray h) {
    Shape s = h.getShape();
    NDArray flat = h.reshape(-1, s.get(s.dimension() - 1));
    MoefiedMlp mlp =
        new MoefiedMlp(
            w.get("mlp.gate_proj.weight"),
            w.get("mlp.up_proj.weight"),
            w.get("mlp.down_proj.weight"),
            w.get(Layout.MOEFICATION_ROUTER + ".weight"),
            c.moeficationTopK());
    int[] chosen = mlp.route(flat);
    if (p.observer != null) {
      p.observe(layer, "mlp.gate_proj", flat);
      p.observe(layer, "mlp.up_proj", flat);
      p.observe(layer, "mlp.down_proj", mlp.maskedActivation(p.scope, flat, chosen));
    }
    return mlp.apply(p.scope, flat, chosen).reshape(s);
  }

  /** An index for {@code gather} along axis 0 picking whole rows {@code rows} of width cols. */
  private static NDArray rowIndex(Pass p, long[] rows, long cols) {
    return p.scope.create(rows, new Shape(rows.length, 1)).broadcast(rows.length, cols);
  }

  private NDArray gpt2Layer(Pass p, int i, Map<String, NDArray> w, NDArray x, KvCache cache) {
    NDArray h = layerNorm(x, w.get("ln_1.weight"), w.get("ln_1.bias"));
    NDList qkv = conv1d(p, i, w, "attn.c_attn", h).split(3, 2);
    NDArray q = heads(p, qkv.get(0), c.numHeads());
    NDArray k = heads(p, qkv.get(1), c.numHeads());
    NDArray v = heads(p, qkv.get(2), c.numHeads());
    NDArray attn = attention(p, i, q, k, v, cache);
    x = x.add(conv1d(p, i, w, "attn.c_proj", attn));
    h = layerNorm(x, w.get("ln_2.weight"), w.get("ln_2.bias"));
    NDArray fc = conv1d(p, i, w, "mlp.c_fc", h);
    NDArray gelu =
        fc.add(fc.mul(fc).mul(fc).mul(geluCubic)).mul(geluScale).tanh().add(one).mul(fc).mul(half);
    return x.add(conv1d(p, i, w, "mlp.c_proj", gelu));
  }

  /**
   * Causal softmax attention, within the layer's sliding window if it has one; k, v have kv heads
   * and are repeated for grouped-query attention. A windowed layer's cache keeps only the last
   * window of positions, since no later query can see further back.
   */
  private NDArray attention(Pass p, int layer, NDArray q, NDArray k, NDArray v, KvCache cache) {
    int window = c.slidingWindow(layer);
    if (cache != null) {
      NDArray[] all = cache.append(layer, k, v);
      k = all[0];
      v = all[1];
    }
    int keyCount = Math.toIntExact(k.getShape().get(2));
    NDArray keys = repeatKv(p, k);
    NDArray values = repeatKv(p, v);
    NDArray mask = p.mask(p.pos0 + p.seq - keyCount, keyCount, window);
    NDArray scores = q.matMul(keys.transpose(0, 1, 3, 2)).mul(scale).add(mask);
    NDArray context = scores.softmax(3).matMul(values);
    if (cache != null && window > 0) {
      cache.retain(layer, window);
    }
    return context.transpose(0, 2, 1, 3).reshape(p.batch, p.seq, (long) c.numHeads() * c.headDim());
  }

  /** [B, kv, S, d] to [B, heads, S, d], each kv head serving heads/kv consecutive heads (HF). */
  private NDArray repeatKv(Pass p, NDArray kv) {
    Shape s = kv.getShape();
    int rep = c.numHeads() / c.numKvHeads();
    NDArray e = local(p.scope, kv.expandDims(2));
    return e.broadcast(s.get(0), s.get(1), rep, s.get(2), s.get(3))
        .reshape(s.get(0), s.get(1) * rep, s.get(2), s.get(3));
  }

  /** [B, T, n*d] to [B, n, T, d]. */
  private NDArray heads(Pass p, NDArray x, int n) {
    return x.reshape(p.batch, p.seq, n, c.headDim()).transpose(0, 2, 1, 3);
  }

  private NDArray linear(Pass p, int layer, Map<String, NDArray> w, String name, NDArray x) {
    p.observe(layer, name, x);
    NDArray bias = w.get(name + ".bias");
    NDArray weight = w.get(name + ".weight");
    if (weight == null && w.containsKey(name + ".v.weight")) {
      // low-rank factorized (ModelConfig#lowRank): (x v^T) u^T, r (in + out) multiply-adds a token
      x = Linear.linear(x, w.get(name + ".v.weight")).head();
      weight = w.get(name + ".u.weight");
    }
    return (bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias)).head();
  }

  /** GPT-2's Conv1D: weight stored [in, out]. */
  private NDArray conv1d(Pass p, int layer, Map<String, NDArray> w, String name, NDArray x) {
    p.observe(layer, name, x);
    return x.matMul(w.get(name + ".weight")).add(w.get(name + ".bias"));
  }

  /** RMSNorm over the last axis. */
  private NDArray rmsNorm(NDArray x, NDArray weight) {
    int last = x.getShape().dimension() - 1;
    NDArray rms = x.square().mean(new int[] {last}, true).add(eps).sqrt();
    return x.div(rms).mul(weight);
  }

  private NDArray layerNorm(NDArray x, NDArray weight, NDArray bias) {
    return LayerNorm.layerNorm(x, new Shape(c.hiddenSize()), weight, bias, (float) c.normEps())
        .head();
  }

  private String embedName() {
    return c.family() == ModelConfig.Family.GPT2
        ? base + "wte.weight"
        : "model.embed_tokens.weight";
  }

  private void checkLength(int total) {
    if (total > c.positionLimit()) {
      throw new IllegalArgumentException(
          "sequence of " + total + " positions exceeds the model's maximum " + c.positionLimit());
    }
  }

  private static NDArray local(NDManager m, NDArray a) {
    a.attach(m);
    return a;
  }

  /**
   * Per-pass state: the pass's manager, its attention masks and the RoPE tables of its positions.
   */
  private final class Pass {
    final NDManager m;
    NDManager scope;
    final ActivationObserver observer;
    final long batch;
    final int seq;
    final int pos0;
    final Map<List<Integer>, NDArray> masks = new HashMap<>();
    final NDArray cos;
    final NDArray sin;

    Pass(NDManager m, ActivationObserver observer, long batch, int seq, int pos0) {
      this.m = m;
      this.scope = m;
      this.observer = observer;
      this.batch = batch;
      this.seq = seq;
      this.pos0 = pos0;
      if (c.family() != ModelConfig.Family.GPT2) {
        NDArray[] tables = c.ropeScaling().tables(m, pos0, seq);
        this.cos = tables[0];
        this.sin = tables[1];
      } else {
        this.cos = null;
        this.sin = null;
      }
    }

    /**
     * Additive mask [seq, keys] for queries at positions pos0.. over keys at keyStart..: -inf where
     * a key is in the future or, with a window W, when query - key >= W (HF's
     * sliding_window_overlay: kv_idx > q_idx - W).
     */
    NDArray mask(int keyStart, int keys, int window) {
      return masks.computeIfAbsent(
          List.of(keyStart, keys, window),
          key -> {
            float[] mk = new float[seq * keys];
            for (int t = 0; t < seq; t++) {
              int query = pos0 + t;
              for (int s = 0; s < keys; s++) {
                int position = keyStart + s;
                if (position > query || (window > 0 && query - position >= window)) {
                  mk[t * keys + s] = Float.NEGATIVE_INFINITY;
                }
              }
            }
            return m.create(mk, new Shape(seq, keys));
          });
    }

    /**
     * HF rotate_half convention: x*cos + cat(-x2, x1)*sin over [B, n, T, d]; with a partial rotary
     * factor (tables narrower than d) only the leading dims rotate and the rest pass through, as
     * modeling_phi3's apply_rotary_pos_emb does.
     */
    NDArray rope(NDArray x) {
      long d = x.getShape().get(3);
      long rd = cos.getShape().get(1);
      if (rd == d) {
        return rotate(x);
      }
      NDList parts = x.split(new long[] {rd}, 3);
      return rotate(parts.get(0)).concat(parts.get(1), 3);
    }

    private NDArray rotate(NDArray x) {
      NDList halves = x.split(2, 3);
      NDArray rotated = halves.get(1).neg().concat(halves.get(0), 3);
      return x.mul(cos).add(rotated.mul(sin));
    }

    void observe(int layer, String name, NDArray x) {
      if (observer != null) {
        Shape s = x.getShape();
        observer.observe(layer, name, x.reshape(-1, s.get(s.dimension() - 1)));
      }
    }
  }
}
