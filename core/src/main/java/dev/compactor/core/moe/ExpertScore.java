package dev.compactor.core.moe;

import java.util.Locale;

/** Which per-expert statistic ranks experts when pruning keeps the n best of a layer. */
public enum ExpertScore {
  /** Fraction of calibration tokens whose top-k includes the expert. */
  FREQUENCY,
  /** Mean over tokens of the routing weight times the expert's output norm. */
  WEIGHTED_NORM;

  /** {@code frequency} or {@code weighted_norm}; anything else is refused. */
  public static ExpertScore parse(String method) {
    return switch (method.toLowerCase(Locale.ROOT)) {
      case "frequency" -> FREQUENCY;
      case "weighted_norm" -> WEIGHTED_NORM;
      default ->
          throw new UnsupportedOperationException(
              "not supported: method=" + method + " (expected frequency or weighted_norm)");
    };
  }

  /** The name {@link #parse} accepts. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
