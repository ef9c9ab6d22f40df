package dev.compactor.core.prune;

/**
 * Semi-structured N:M sparsity (Mishra et al. 2021; NVIDIA sparse tensor cores run 2:4): in every
 * group of {@code m} consecutive inputs of an output row at most {@code n} weights are non-zero, so
 * at least {@code m - n} are zero. The sparsity is exactly {@code 1 - n/m}.
 *
 * @param n weights kept per group, in [1, m)
 * @param m group length along the input dimension
 */
public record NmPattern(int n, int m) {

  public NmPattern {
    if (m < 2 || n < 1 || n >= m) {
      throw new IllegalArgumentException(
          "N:M pattern needs 1 <= N < M and M >= 2, found " + n + ":" + m);
    }
  }

  /** Parses the recipe spelling {@code "2:4"}. */
  public static NmPattern parse(String s) {
    String[] parts = s.trim().split(":");
    if (parts.length != 2) {
      throw new IllegalArgumentException("pattern must be N:M (e.g. 2:4), found '" + s + "'");
    }
    try {
      return new NmPattern(Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim()));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("pattern must be N:M (e.g. 2:4), found '" + s + "'", e);
    }
  }

  /** Weights pruned per group. */
  public int pruned() {
    return m - n;
  }

  /** The fraction of weights that are zero, {@code 1 - n/m}. */
  public double sparsity() {
    return (double) (m - n) / m;
  }

  @Override
  public String toString() {
    return n + ":" + m;
  }
}
