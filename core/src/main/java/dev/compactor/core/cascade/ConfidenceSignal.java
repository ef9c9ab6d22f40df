package dev.compactor.core.cascade;

import java.util.Locale;

/**
 * What the small model's confidence is read from, a distribution over its answers (the next token,
 * or a multiple-choice document's choices): the highest probability, the margin between the two
 * highest, or the entropy (in nats). The first two defer when below the threshold, entropy when
 * above it.
 */
public enum ConfidenceSignal {
  MAX_PROB("maxprob"),
  MARGIN("margin"),
  ENTROPY("entropy");

  private final String id;

  ConfidenceSignal(String id) {
    this.id = id;
  }

  /** The name recipes and the CLI use ({@code maxprob}, {@code margin}, {@code entropy}). */
  public String id() {
    return id;
  }

  /** The signal named {@code id}. */
  public static ConfidenceSignal of(String id) {
    for (ConfidenceSignal s : values()) {
      if (s.id.equals(id.strip().toLowerCase(Locale.ROOT))) {
        return s;
      }
    }
    throw new IllegalArgumentException(
        "unknown confidence signal '" + id + "'; expected maxprob, margin or entropy");
  }

  /** Whether a confidence value of this signal sends the item to the large model. */
  public boolean defers(double value, double threshold) {
    return this == ENTROPY ? value > threshold : value < threshold;
  }

  /** The value of this signal in {@code s}. */
  public double of(Signals s) {
    return switch (this) {
      case MAX_PROB -> s.maxProb();
      case MARGIN -> s.margin();
      case ENTROPY -> s.entropy();
    };
  }

  /**
   * The three signals of one distribution.
   *
   * @param maxProb the highest probability
   * @param margin the highest minus the second highest probability
   * @param entropy {@code -sum p ln p}, nats
   */
  public record Signals(double maxProb, double margin, double entropy) {

    /** The signals of softmax({@code logits[offset, offset + n)}), computed in double. */
    public static Signals ofLogits(float[] logits, int offset, int n) {
      double[] v = new double[n];
      for (int i = 0; i < n; i++) {
        v[i] = logits[offset + i];
      }
      return ofScores(v);
    }

    /** The signals of softmax({@code scores}) (logits or log-likelihoods). */
    public static Signals ofScores(double[] scores) {
      if (scores.length < 2) {
        throw new IllegalArgumentException(
            "a confidence needs at least 2 outcomes, found " + scores.length);
      }
      double max = Double.NEGATIVE_INFINITY;
      for (double s : scores) {
        max = Math.max(max, s);
      }
      double z = 0;
      for (double s : scores) {
        z += Math.exp(s - max);
      }
      double logZ = Math.log(z);
      double first = 0;
      double second = 0;
      double entropy = 0;
      for (double s : scores) {
        double lp = s - max - logZ;
        double p = Math.exp(lp);
        if (p > first) {
          second = first;
          first = p;
        } else if (p > second) {
          second = p;
        }
        if (p > 0) {
          entropy -= p * lp;
        }
      }
      return new Signals(first, first - second, entropy);
    }

    /** The least confident of two: the lower probability and margin, the higher entropy. */
    public Signals leastConfident(Signals o) {
      return new Signals(
          Math.min(maxProb, o.maxProb), Math.min(margin, o.margin), Math.max(entropy, o.entropy));
    }
  }
}
