package dev.compactor.core.factorize;

import java.util.List;
import java.util.Locale;

/**
 * What to factorize and how.
 *
 * @param method plain truncated SVD or SVD-LLM's activation-aware SVD
 * @param rule rank per matrix
 * @param linears which decoder linears: each entry a name relative to the layer ({@code
 *     self_attn.q_proj}) or its last part ({@code q_proj}); empty for all of them
 * @param merge write the products back as dense {@code X.weight} (same file shape as the input)
 */
public record FactorizeSpec(Method method, RankRule rule, List<String> linears, boolean merge) {

  /** The two factorizations. */
  public enum Method {
    /** Truncated SVD of W (minimum weight error). */
    SVD,
    /** SVD-LLM: truncated SVD of W S, S the Cholesky factor of the inputs' Gram matrix. */
    SVD_LLM;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** {@code svd} or {@code svd_llm}. */
    public static Method parse(String s) {
      for (Method m : values()) {
        if (m.key().equals(s)) {
          return m;
        }
      }
      throw new IllegalArgumentException("method: expected svd or svd_llm, found " + s);
    }

    /** Whether it needs calibration inputs. */
    public boolean calibrated() {
      return this == SVD_LLM;
    }
  }

  public FactorizeSpec {
    if (method == null || rule == null) {
      throw new IllegalArgumentException("method and rank rule are required");
    }
    linears = List.copyOf(linears);
    for (String l : linears) {
      if (l.isBlank()) {
        throw new IllegalArgumentException("linears: empty name");
      }
    }
  }

  /** Whether linear {@code relative} (e.g. {@code self_attn.q_proj}) is selected. */
  public boolean selects(String relative) {
    if (linears.isEmpty()) {
      return true;
    }
    String last = relative.substring(relative.lastIndexOf('.') + 1);
    return linears.contains(relative) || linears.contains(last);
  }
}
