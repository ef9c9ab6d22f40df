package dev.compactor.core.model.internal;

import dev.compactor.core.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Hugging Face tensor names and shapes of a model, so loading, random init, saving and streaming
 * agree on one list. Per-layer names are relative to the layer prefix ({@code model.layers.N.} or
 * {@code [transformer.]h.N.}). GPT-2's Conv1D weights keep their checkpoint layout {@code [in,
 * out]}.
 */
public final class Layout {

  /** How random init fills a tensor (HF conventions: linear/embedding N(0, 0.02), norms ones). */
  public enum Init {
    NORMAL,
    ONES,
    ZEROS
  }

  /** One tensor: name, shape, init. */
  public record Spec(String name, long[] shape, Init init) {}

  private Layout() {}

  /**
   * Layer {@code i}'s tensors, names relative to {@link #layerPrefix}. Layers differ only in a
   * mixture-of-experts model whose dense and sparse layers mix (see {@link
   * ModelConfig#sparseLayer}). A low-rank factorized linear {@code X} ({@link ModelConfig#lowRank})
   * lists {@code X.v.weight} {@code [r, in]} and {@code X.u.weight} {@code [out, r]} in place of
   * {@code X.weight}.
   */
  public static List<Spec> layer(ModelConfig c, int i) {
    List<Spec> dense = denseLayer(c, i);
    if (!c.factorized()) {
      return dense;
    }
    String prefix = layerPrefix(c, "", i);
    List<Spec> s = new ArrayList<>();
    int found = 0;
    for (Spec spec : dense) {
      String name = spec.name();
      String linear =
          name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
      int r = linear == null || spec.shape().length != 2 ? 0 : c.lowRank(prefix + linear);
      if (r == 0) {
        s.add(spec);
        continue;
      }
      found++;
      long out = spec.shape()[0];
      long in = spec.shape()[1];
      s.add(new Spec(linear + ".v.weight", new long[] {r, in}, Init.NORMAL));
      s.add(new Spec(linear + ".u.weight", new long[] {out, r}, Init.NORMAL));
    }
    long named = c.lowRank().keySet().stream().filter(n -> n.startsWith(prefix)).count();
    if (named != found) {
      throw new IllegalArgumentException(
          "config.json: "
              + ModelConfig.LOW_RANK
              + " names a linear layer "
              + i
              + " does not have; its linears are "
              + linears(c, i));
    }
    return s;
  }

  private static List<Spec> denseLayer(ModelConfig c, int i) {
    checkLayer(c, i);
    long h = c.hiddenSize();
    long inter = c.intermediateSize(i);
    List<Spec> s = new ArrayList<>();
    if (c.family() == ModelConfig.Family.GPT2) {
      s.add(new Spec("ln_1.weight", new long[] {h}, Init.ONES));
      s.add(new Spec("ln_1.bias", new long[] {h}, Init.ZEROS));
      s.add(new Spec("attn.c_attn.weight", new long[] {h, 3 * h}, Init.NORMAL));
      s.add(new Spec("attn.c_attn.bias", new long[] {3 * h}, Init.ZEROS));
      s.add(new Spec("attn.c_proj.weight", new long[] {h, h}, Init.NORMAL));
      s.add(new Spec("attn.c_proj.bias", new long[] {h}, Init.ZEROS));
      s.add(new Spec("ln_2.weight", new long[] {h}, Init.ONES));
      s.add(new Spec("ln_2.bias", new long[] {h}, Init.ZEROS));
      s.add(new Spec("mlp.c_fc.weight", new long[] {h, inter}, Init.NORMAL));
      s.add(new Spec("mlp.c_fc.bias", new long[] {inter}, Init.ZEROS));
      s.add(new Spec("mlp.c_proj.weight", new long[] {inter, h}, Init.NORMAL));
      s.add(new Spec("mlp.c_proj.bias", new long[] {h}, Init.ZEROS));
      return s;
    }
    long q = (long) c.numHeads() * c.headDim();
    long kv = (long) c.numKvHeads() * c.headDim();
    s.add(new Spec("input_layernorm.weight", new long[] {h}, Init.ONES));
    if (c.fusedProjections()) {
      // Phi-3: rows [q | k | v] and [gate | up], split by the forward as HF does.
      linear(s, "self_attn.qkv_proj", q + 2 * kv, h, false);
    } else {
      linear(s, "self_attn.q_proj", q, h, c.qkvBias());
      linear(s, "self_attn.k_proj", kv, h, c.qkvBias());
      linear(s, "self_attn.v_proj", kv, h, c.qkvBias());
    }
    if (c.qkNorm()) {
      s.add(new Spec("self_attn.q_norm.weight", new long[] {c.headDim()}, Init.ONES));
      s.add(new Spec("self_attn.k_norm.weight", new long[] {c.headDim()}, Init.ONES));
    }
    linear(s, "self_attn.o_proj", h, q, c.outputBias());
    s.add(new Spec("post_attention_layernorm.weight", new long[] {h}, Init.ONES));
    if (c.sparseLayer(i)) {
      long width = c.expertIntermediateSize();
      s.add(new Spec(router(c) + ".weight", new long[] {c.numExperts(), h}, Init.NORMAL));
      for (int e = 0; e < c.numExperts(); e++) {
        linear(s, expert(c, e, ExpertProj.GATE), width, h, false);
        linear(s, expert(c, e, ExpertProj.UP), width, h, false);
        linear(s, expert(c, e, ExpertProj.DOWN), h, width, false);
      }
      if (hasSharedExpert(c)) {
        long shared = c.sharedExpertIntermediateSize();
        linear(s, sharedExpert(c, ExpertProj.GATE), shared, h, false);
        linear(s, sharedExpert(c, ExpertProj.UP), shared, h, false);
        linear(s, sharedExpert(c, ExpertProj.DOWN), h, shared, false);
        linear(s, sharedExpertGate(c), 1, h, false);
      }
      return s;
    }
    if (c.fusedProjections()) {
      linear(s, "mlp.gate_up_proj", 2 * inter, h, false);
    } else {
      linear(s, "mlp.gate_proj", inter, h, c.mlpBias());
      linear(s, "mlp.up_proj", inter, h, c.mlpBias());
    }
    linear(s, "mlp.down_proj", h, inter, c.mlpBias());
    if (c.moefied()) {
      s.add(
          new Spec(
              MOEFICATION_ROUTER + ".weight", new long[] {c.moeficationExperts(), h}, Init.NORMAL));
    }
    return s;
  }

  /**
   * The router of a MoEfied dense MLP ({@link ModelConfig#moeficationExperts()}), relative to the
   * layer prefix; not a linear the calibration observers see.
   */
  public static final String MOEFICATION_ROUTER = "mlp.moefication_router";

  /** The three projections of a SiLU-gated expert MLP. */
  public enum ExpertProj {
    /** {@code act(gate(x)) * up(x)}'s gate (Mixtral {@code w1}, Qwen {@code gate_proj}). */
    GATE,
    /** The up projection (Mixtral {@code w3}, Qwen {@code up_proj}). */
    UP,
    /** The down projection (Mixtral {@code w2}, Qwen {@code down_proj}). */
    DOWN
  }

  /**
   * The router linear of {@code c}'s sparse layers, relative to the layer prefix: Mixtral's {@code
   * block_sparse_moe.gate}, Qwen MoE's {@code mlp.gate}.
   */
  public static String router(ModelConfig c) {
    return moeBlock(c) + ".gate";
  }

  /**
   * Expert {@code e}'s projection {@code p} in {@code c}'s naming, relative to the layer prefix:
   * Mixtral's {@code block_sparse_moe.experts.E.w1/w3/w2}, Qwen MoE's {@code
   * mlp.experts.E.gate_proj/up_proj/down_proj}.
   */
  public static String expert(ModelConfig c, int e, ExpertProj p) {
    String prefix = moeBlock(c) + ".experts." + e + ".";
    if (c.family() == ModelConfig.Family.MIXTRAL) {
      return prefix
          + switch (p) {
            case GATE -> "w1";
            case UP -> "w3";
            case DOWN -> "w2";
          };
    }
    return prefix + qwenProj(p);
  }

  /** Whether {@code c}'s sparse layers have a shared expert (Qwen2-MoE unless its width is 0). */
  public static boolean hasSharedExpert(ModelConfig c) {
    return c.moe() && c.sharedExpertIntermediateSize() > 0;
  }

  /** The shared expert's projection {@code p} ({@code mlp.shared_expert.gate_proj} ...). */
  public static String sharedExpert(ModelConfig c, ExpertProj p) {
    requireSharedExpert(c);
    return "mlp.shared_expert." + qwenProj(p);
  }

  /** The [1, hidden] linear whose sigmoid scales the shared expert's output. */
  public static String sharedExpertGate(ModelConfig c) {
    requireSharedExpert(c);
    return "mlp.shared_expert_gate";
  }

  private static String qwenProj(ExpertProj p) {
    return switch (p) {
      case GATE -> "gate_proj";
      case UP -> "up_proj";
      case DOWN -> "down_proj";
    };
  }

  private static String moeBlock(ModelConfig c) {
    return switch (c.family()) {
      case MIXTRAL -> "block_sparse_moe";
      case QWEN2_MOE, QWEN3_MOE -> "mlp";
      default ->
          throw new IllegalArgumentException(c.modelType() + " has no mixture-of-experts layers");
    };
  }

  private static void requireSharedExpert(ModelConfig c) {
    if (!hasSharedExpert(c)) {
      throw new IllegalArgumentException(c.modelType() + " has no shared expert");
    }
  }

  private static void checkLayer(ModelConfig c, int i) {
    if (i < 0 || i >= c.numLayers()) {
      throw new IndexOutOfBoundsException(
          "layer " + i + " of a " + c.numLayers() + "-layer " + c.modelType());
    }
  }

  private static void linear(List<Spec> s, String name, long out, long in, boolean bias) {
    s.add(new Spec(name + ".weight", new long[] {out, in}, Init.NORMAL));
    if (bias) {
      s.add(new Spec(name + ".bias", new long[] {out}, Init.ZEROS));
    }
  }

  /** Embeddings, final norm and (untied) head, full names; {@code base} is "" or "transformer.". */
  public static List<Spec> globals(ModelConfig c, String base) {
    long h = c.hiddenSize();
    List<Spec> s = new ArrayList<>();
    if (c.family() == ModelConfig.Family.GPT2) {
      s.add(new Spec(base + "wte.weight", new long[] {c.vocabSize(), h}, Init.NORMAL));
      s.add(new Spec(base + "wpe.weight", new long[] {c.maxPositions(), h}, Init.NORMAL));
      s.add(new Spec(base + "ln_f.weight", new long[] {h}, Init.ONES));
      s.add(new Spec(base + "ln_f.bias", new long[] {h}, Init.ZEROS));
      return s;
    }
    s.add(new Spec("model.embed_tokens.weight", new long[] {c.vocabSize(), h}, Init.NORMAL));
    s.add(new Spec("model.norm.weight", new long[] {h}, Init.ONES));
    if (!c.tieWordEmbeddings()) {
      s.add(new Spec("lm_head.weight", new long[] {c.vocabSize(), h}, Init.NORMAL));
    }
    return s;
  }

  /** Full-name prefix of decoder layer {@code i}. */
  public static String layerPrefix(ModelConfig c, String base, int i) {
    return c.family() == ModelConfig.Family.GPT2
        ? base + "h." + i + "."
        : "model.layers." + i + ".";
  }

  /**
   * The linears of decoder layer {@code i}, in the order the forward applies them; a sparse layer
   * lists its router, every expert's gate, up, down, then the shared expert and its gate.
   */
  public static List<String> linears(ModelConfig c, int i) {
    checkLayer(c, i);
    if (c.sparseLayer(i)) {
      List<String> l = new ArrayList<>();
      l.addAll(
          List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"));
      l.add(router(c));
      for (int e = 0; e < c.numExperts(); e++) {
        for (ExpertProj p : ExpertProj.values()) {
          l.add(expert(c, e, p));
        }
      }
      if (hasSharedExpert(c)) {
        for (ExpertProj p : ExpertProj.values()) {
          l.add(sharedExpert(c, p));
        }
        l.add(sharedExpertGate(c));
      }
      return l;
    }
    if (c.fusedProjections()) {
      return List.of("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj");
    }
    return c.family() == ModelConfig.Family.GPT2
        ? List.of("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
        : List.of(
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj");
  }
}
