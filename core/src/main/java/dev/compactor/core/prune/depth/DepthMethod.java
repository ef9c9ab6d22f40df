package dev.compactor.core.prune.depth;

import java.util.Arrays;
import java.util.Locale;

/** How the layers to remove are chosen from {@link DepthScores}. */
public enum DepthMethod {
  /**
   * ShortGPT (Men et al. 2024): the layers with the lowest block influence {@code BI_i = 1 - mean
   * cos(h_i, h_{i+1})}, each chosen on its own, wherever they are.
   */
  BLOCK_INFLUENCE,
  /**
   * Gromov et al. 2024: the contiguous block of n layers starting at the layer {@code l} with the
   * smallest angular distance {@code d(l, n) = mean arccos(cos(h_l, h_{l+n})) / pi}.
   */
  ANGULAR;

  /** The recipe and CLI spelling: {@code block_influence}, {@code angular}. */
  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@link #key()}; the message lists the accepted values. */
  public static DepthMethod parse(String key) {
    for (DepthMethod m : values()) {
      if (m.key().equals(key)) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "unknown depth method '"
            + key
            + "'; expected one of "
            + Arrays.stream(values()).map(DepthMethod::key).toList());
  }
}
