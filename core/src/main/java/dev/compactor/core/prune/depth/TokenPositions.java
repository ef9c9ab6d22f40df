package dev.compactor.core.prune.depth;

import java.util.Arrays;
import java.util.Locale;

/**
 * Which positions of each calibration window the layer similarities average over. Gromov et al.
 * compare the last token's hidden states only; on a few short windows that is a handful of vectors
 * per layer, so {@link #ALL} (every position, as ShortGPT does) is the default: it averages over
 * samples x seq_len vectors and ranks layers stably on tiny calibration sets.
 */
public enum TokenPositions {
  ALL,
  LAST;

  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static TokenPositions parse(String key) {
    for (TokenPositions p : values()) {
      if (p.key().equals(key)) {
        return p;
      }
    }
    throw new IllegalArgumentException(
        "unknown token positions '"
            + key
            + "'; expected one of "
            + Arrays.stream(values()).map(TokenPositions::key).toList());
  }
}
