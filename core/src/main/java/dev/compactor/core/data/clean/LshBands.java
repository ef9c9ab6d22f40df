package dev.compactor.core.data.clean;

/**
 * The banding of MinHash LSH: a signature of {@code bands × rows} hashes is cut into {@code bands}
 * runs of {@code rows}; two documents become candidates when any band is equal in both, which for
 * Jaccard similarity {@code s} happens with probability {@code 1 - (1 - s^rows)^bands}, an S-curve
 * whose steep part sits near {@code (1 / bands)^(1 / rows)}.
 *
 * @param bands number of bands ({@code b})
 * @param rows hashes per band ({@code r})
 */
public record LshBands(int bands, int rows) {

  public LshBands {
    if (bands < 1 || rows < 1) {
      throw new IllegalArgumentException(
          "expected bands and rows >= 1, found " + bands + " and " + rows);
    }
  }

  /** Probability that two documents of Jaccard similarity {@code s} share a band. */
  public double candidateProbability(double s) {
    return 1 - Math.pow(1 - Math.pow(s, rows), bands);
  }

  /**
   * The (b, r) with {@code b r <= numPerm} that minimises {@code fpWeight · FP + fnWeight · FN},
   * where FP is the area under {@link #candidateProbability} on [0, threshold] and FN the area
   * above it on [threshold, 1] — the search datasketch's {@code MinHashLSH} makes for its default
   * weights (0.5, 0.5); the integrals here use Simpson's rule on 200 intervals.
   */
  public static LshBands optimal(double threshold, int numPerm, double fpWeight, double fnWeight) {
    if (!(threshold > 0 && threshold < 1)) {
      throw new IllegalArgumentException("expected 0 < threshold < 1, found " + threshold);
    }
    if (numPerm < 1) {
      throw new IllegalArgumentException("expected numPerm >= 1, found " + numPerm);
    }
    double best = Double.POSITIVE_INFINITY;
    LshBands opt = null;
    for (int b = 1; b <= numPerm; b++) {
      for (int r = 1; r <= numPerm / b; r++) {
        LshBands p = new LshBands(b, r);
        double fp = simpson(p::candidateProbability, 0, threshold);
        double fn = simpson(s -> 1 - p.candidateProbability(s), threshold, 1);
        double error = fpWeight * fp + fnWeight * fn;
        if (error < best) {
          best = error;
          opt = p;
        }
      }
    }
    return opt;
  }

  private static double simpson(java.util.function.DoubleUnaryOperator f, double lo, double hi) {
    int n = 200;
    double h = (hi - lo) / n;
    double sum = f.applyAsDouble(lo) + f.applyAsDouble(hi);
    for (int i = 1; i < n; i++) {
      sum += f.applyAsDouble(lo + i * h) * (i % 2 == 1 ? 4 : 2);
    }
    return sum * h / 3;
  }
}
