package dev.compactor.core.prune;

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
 * @param linears the decoder linears to prune; all seven of a Llama-style block by default
 */
public record PruningSpec(
    Method method, double sparsity, Granularity granularity, Set<Linear> linears) {

  /** How a weight's importance is scored. */
  public enum Method {
    /** |W_ij|. */
    MAGNITUDE,
    /** |W_ij| * ||X_j||_2 over calibration inputs (Sun et al. 2023). */
    WANDA;

    /** Parses the recipe spelling ({@code magnitude}, {@code wanda}), case-insensitively. */
    public static Method parse(String s) {
      for (Method m : values()) {
        if (m.name().equalsIgnoreCase(s.trim())) {
          return m;
        }
      }
      throw new IllegalArgumentException(
          "unknown pruning method '" + s + "': expected one of magnitude, wanda");
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

  /** The linear layers of a Llama-style decoder block, by their Hugging Face name. */
  public enum Linear {
    Q_PROJ("self_attn", "q_proj"),
    K_PROJ("self_attn", "k_proj"),
    V_PROJ("self_attn", "v_proj"),
    O_PROJ("self_attn", "o_proj"),
    GATE_PROJ("mlp", "gate_proj"),
    UP_PROJ("mlp", "up_proj"),
    DOWN_PROJ("mlp", "down_proj");

    private final String module;
    private final String hfName;

    Linear(String module, String hfName) {
      this.module = module;
      this.hfName = hfName;
    }

    /** The short name, e.g. {@code q_proj}. */
    public String hfName() {
      return hfName;
    }

    /** The parent module, {@code self_attn} or {@code mlp}. */
    public String module() {
      return module;
    }

    /** The weight's tensor name in decoder layer {@code layer}. */
    public String weightName(int layer) {
      return "model.layers." + layer + "." + module + "." + hfName + ".weight";
    }

    /** Parses {@code q_proj} or {@code self_attn.q_proj}. */
    public static Optional<Linear> fromName(String name) {
      String shortName = name.substring(name.lastIndexOf('.') + 1);
      for (Linear l : values()) {
        if (l.hfName.equals(shortName)) {
          return Optional.of(l);
        }
      }
      return Optional.empty();
    }
  }

  private static final Pattern DECODER_LINEAR_WEIGHT =
      Pattern.compile("model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(\\w+_proj)\\.weight");

  /** A decoder linear weight, located by its tensor name. */
  public record LinearWeight(int layer, Linear linear) {}

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
  }

  /** Per-output-row pruning of all seven decoder linears, as in the Wanda paper. */
  public static PruningSpec of(Method method, double sparsity) {
    return new PruningSpec(
        method, sparsity, Granularity.PER_OUTPUT_ROW, EnumSet.allOf(Linear.class));
  }

  /** Parses a recipe's method name; see {@link #of(Method, double)}. */
  public static PruningSpec of(String method, double sparsity) {
    return of(Method.parse(method.toLowerCase(Locale.ROOT)), sparsity);
  }

  /**
   * The decoder linear that {@code tensorName} is the weight of, if it is one this spec prunes.
   * Biases, norms, embeddings and {@code lm_head} never match.
   */
  public Optional<LinearWeight> target(String tensorName) {
    Matcher m = DECODER_LINEAR_WEIGHT.matcher(tensorName);
    if (!m.matches()) {
      return Optional.empty();
    }
    Optional<Linear> linear = Linear.fromName(m.group(3));
    if (linear.isEmpty()
        || !linear.get().module().equals(m.group(2))
        || !linears.contains(linear.get())) {
      return Optional.empty();
    }
    return Optional.of(new LinearWeight(Integer.parseInt(m.group(1)), linear.get()));
  }
}
