package dev.compactor.core.factorize;

import java.util.Locale;

/**
 * How many singular directions a factorized linear keeps: a parameter budget ({@link #ratio}) or a
 * share of the spectrum's energy ({@link #energy}). Rank {@code r} stores {@code r (out + in)}
 * numbers instead of {@code out * in}; a rank that would not store fewer keeps the matrix dense.
 *
 * @param kind which rule
 * @param value the ratio in (0, 1) or the energy share in (0, 1]
 */
public record RankRule(Kind kind, double value) {

  /** The two rules. */
  public enum Kind {
    /**
     * Keep about {@code value} of the linear's parameters: {@code r = floor(F out in/(out+in))}.
     */
    RATIO,
    /** The smallest {@code r} whose share of {@code sum s^2} reaches {@code value}. */
    ENERGY;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public RankRule {
    if (kind == null) {
      throw new IllegalArgumentException("rank rule kind is required");
    }
    boolean ok =
        kind == Kind.RATIO
            ? value > 0 && value < 1
            : value > 0 && value <= 1 && !Double.isNaN(value);
    if (!ok) {
      throw new IllegalArgumentException(
          kind == Kind.RATIO
              ? "ratio must be in (0, 1), found " + value
              : "energy must be in (0, 1], found " + value);
    }
  }

  public static RankRule ratio(double f) {
    return new RankRule(Kind.RATIO, f);
  }

  public static RankRule energy(double f) {
    return new RankRule(Kind.ENERGY, f);
  }

  /**
   * The rank for an {@code out x in} matrix with singular values {@code s} (descending; only the
   * energy rule reads them), or 0 when the rank would not reduce the parameters (stay dense).
   */
  public int rank(int out, int in, double[] s) {
    long full = (long) out * in;
    int r;
    if (kind == Kind.RATIO) {
      r = (int) Math.max(1, Math.floor(value * full / (out + in)));
    } else {
      double total = 0;
      for (double x : s) {
        total += x * x;
      }
      r = s.length;
      double kept = 0;
      for (int j = 0; j < s.length; j++) {
        kept += s[j] * s[j];
        if (kept >= value * total) {
          r = j + 1;
          break;
        }
      }
      r = Math.max(1, r);
    }
    return reduces(out, in, r) ? r : 0;
  }

  /** Whether rank {@code r} stores fewer numbers than the dense {@code out x in} matrix. */
  public static boolean reduces(int out, int in, int r) {
    return (long) r * (out + in) < (long) out * in;
  }

  @Override
  public String toString() {
    return kind.key() + " " + value;
  }
}
