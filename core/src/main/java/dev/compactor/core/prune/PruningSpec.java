package dev.compactor.core.prune;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.LinearGroups;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a recipe's {@code prune} stage asks for: the method, the fraction of weights to zero, how
 * weights compete for survival, and which decoder linears are pruned. Embeddings, norms and {@code
 * lm_head} are never in scope: they are small next to the linears and pruning them hurts quality
 * disproportionately.
 *
 * @param method magnitude or Wanda scoring
 * @param sparsity fraction of weights of every targeted tensor set to zero, in (0, 1)
 * @param granularity the comparison group inside which the smallest scores are zeroed
 * @param linears the kinds of decoder linear to prune; every kind (so every compressible linear of
 *     any family) by default
 * @param pattern semi-structured N:M sparsity instead of a free choice within each group (then
 *     {@code sparsity} is the pattern's {@code 1 - N/M} and {@code granularity} is ignored), or
 *     null for unstructured pruning
 */
public record PruningSpec(
    Method method,
    double sparsity,
    Granularity granularity,
    Set<Linear> linears,
    NmPattern pattern) {

  /** How a weight's importance is scored. */
  public enum Method {
    /** |W_ij|. */
    MAGNITUDE,
    /** |W_ij| * ||X_j||_2 over calibration inputs (Sun et al. 2023). */
    WANDA,
    /**
     * SparseGPT (Frantar and Alistarh 2023): mask by the OBS saliency {@code W_ij^2 / [H^-1]_jj^2},
     * the kept weights updated to compensate, layer by layer on the outputs of the already-pruned
     * layers.
     */
    SPARSEGPT;

    /** Parses the recipe spelling ({@code magnitude}, {@code wanda}, {@code sparsegpt}). */
    public static Method parse(String s) {
      for (Method m : values()) {
        if (m.name().equalsIgnoreCase(s.trim())) {
          return m;
        }
      }
      throw new IllegalArgumentException(
          "unknown pruning method '" + s + "': expected one of magnitude, wanda, sparsegpt");
    }
  }

  /**
   * The comparison group. Wanda's paper shows that comparing within each output row is what makes
   * its score work on LLMs, and that it also helps plain magnitude; per-tensor is the classic
   * layer-wise magnitude baseline.
   */
  public enum Granularity {
    /** The smallest scores of each output row (a row of the [out, in] weight) are zeroed. */
    PER_OUTPUT_ROW,
    /** The smallest scores of the whole tensor are zeroed. */
    PER_TENSOR
  }

  /**
   * The kinds of compressible decoder linear, by their Hugging Face name: the seven of a
   * Llama-style block, Phi-3's fused {@code qkv_proj} and {@code gate_up_proj} (pruned as the
   * single linears they are), and a mixture of experts' per-expert gate, up and down (each expert
   * pruned on its own). The router and Qwen2-MoE's {@code shared_expert_gate} are none of them:
   * they are never pruned.
   */
  public enum Linear {
    Q_PROJ("self_attn", "q_proj"),
    K_PROJ("self_attn", "k_proj"),
    V_PROJ("self_attn", "v_proj"),
    QKV_PROJ("self_attn", "qkv_proj"),
    O_PROJ("self_attn", "o_proj"),
    GATE_PROJ("mlp", "gate_proj"),
    UP_PROJ("mlp", "up_proj"),
    GATE_UP_PROJ("mlp", "gate_up_proj"),
    DOWN_PROJ("mlp", "down_proj"),
    EXPERT_GATE("experts", "gate"),
    EXPERT_UP("experts", "up"),
    EXPERT_DOWN("experts", "down");

    private final String module;
    private final String hfName;

    Linear(String module, String hfName) {
      this.module = module;
      this.hfName = hfName;
    }

    /** The short name, e.g. {@code q_proj}; an expert projection's role. */
    public String hfName() {
      return hfName;
    }

    /** The parent module, {@code self_attn}, {@code mlp} or {@code experts}. */
    public String module() {
      return module;
    }

    /** Parses a dense linear's {@code q_proj} or {@code self_attn.q_proj}. */
    public static Optional<Linear> fromName(String name) {
      String shortName = name.substring(name.lastIndexOf('.') + 1);
      for (Linear l : values()) {
        if (l.hfName.equals(shortName) && !l.module.equals("experts")) {
          return Optional.of(l);
        }
      }
      return Optional.empty();
    }

    /**
     * The kind of {@code linear} (relative to the layer prefix) in {@code c}'s naming, if it is a
     * compressible linear of layer {@code layer} ({@link LinearGroups#compressible}). Qwen2-MoE's
     * shared expert, a dense MLP every token runs, is of the dense kinds ({@code
     * mlp.shared_expert.gate_proj} is a {@link #GATE_PROJ}).
     */
    public static Optional<Linear> of(ModelConfig c, int layer, String linear) {
      if (!LinearGroups.compressible(c, layer).contains(linear)) {
        return Optional.empty();
      }
      LinearGroups.Group g = LinearGroups.groupOf(c, layer, linear);
      if (g.expert() >= 0) {
        for (Layout.ExpertProj p : Layout.ExpertProj.values()) {
          if (Layout.expert(c, g.expert(), p).equals(linear)) {
            return Optional.of(
                switch (p) {
                  case GATE -> EXPERT_GATE;
                  case UP -> EXPERT_UP;
                  case DOWN -> EXPERT_DOWN;
                });
          }
        }
      }
      return fromName(linear);
    }
  }

  private static final Pattern LAYER_WEIGHT =
      Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.weight");

  /**
   * A compressible decoder linear weight, located by its tensor name.
   *
   * @param layer the decoder layer
   * @param name the linear relative to the layer prefix, e.g. {@code self_attn.q_proj} or {@code
   *     block_sparse_moe.experts.3.w1}
   * @param linear its kind
   * @param expert the expert it belongs to, -1 for a dense linear
   */
  public record LinearWeight(int layer, String name, Linear linear, int expert) {}

  public PruningSpec {
    if (method == null || granularity == null || linears == null) {
      throw new IllegalArgumentException("method, granularity and linears are required");
    }
    if (!(sparsity > 0.0 && sparsity < 1.0)) {
      throw new IllegalArgumentException(
          "sparsity must be in (0, 1) (the fraction of weights set to zero), found " + sparsity);
    }
    if (linears.isEmpty()) {
      throw new IllegalArgumentException(
          "at least one linear must be in scope, expected a subset of "
              + Arrays.toString(Linear.values()));
    }
    linears = Collections.unmodifiableSet(EnumSet.copyOf(linears));
    if (pattern != null && Math.abs(sparsity - pattern.sparsity()) > 1e-12) {
      throw new IllegalArgumentException(
          "an N:M pattern fixes the sparsity: "
              + pattern
              + " is "
              + pattern.sparsity()
              + ", found "
              + sparsity);
    }
  }

  /** An unstructured spec. */
  public PruningSpec(Method method, double sparsity, Granularity granularity, Set<Linear> linears) {
    this(method, sparsity, granularity, linears, null);
  }

  /** Semi-structured N:M pruning of every decoder linear. */
  public static PruningSpec of(Method method, NmPattern pattern) {
    return new PruningSpec(
        method,
        pattern.sparsity(),
        Granularity.PER_OUTPUT_ROW,
        EnumSet.allOf(Linear.class),
        pattern);
  }

  /** Per-output-row pruning of every decoder linear, as in the Wanda paper. */
  public static PruningSpec of(Method method, double sparsity) {
    return new PruningSpec(
        method, sparsity, Granularity.PER_OUTPUT_ROW, EnumSet.allOf(Linear.class));
  }

  /** Parses a recipe's method name; see {@link #of(Method, double)}. */
  public static PruningSpec of(String method, double sparsity) {
    return of(Method.parse(method.toLowerCase(Locale.ROOT)), sparsity);
  }

  /**
   * The decoder linear that {@code tensorName} is the weight of in a model of shape {@code c}, if
   * it is one this spec prunes. Biases, norms, q/k norms, routers, the shared expert's gate,
   * embeddings and {@code lm_head} never match.
   */
  public Optional<LinearWeight> target(ModelConfig c, String tensorName) {
    Matcher m = LAYER_WEIGHT.matcher(tensorName);
    if (!m.matches() || c.family() == ModelConfig.Family.GPT2) {
      return Optional.empty();
    }
    int layer = Integer.parseInt(m.group(1));
    if (layer >= c.numLayers()) {
      return Optional.empty();
    }
    String name = m.group(2);
    Optional<Linear> linear = Linear.of(c, layer, name);
    if (linear.isEmpty() || !linears.contains(linear.get())) {
      return Optional.empty();
    }
    return Optional.of(
        new LinearWeight(layer, name, linear.get(), LinearGroups.groupOf(c, layer, name).expert()));
  }
}
