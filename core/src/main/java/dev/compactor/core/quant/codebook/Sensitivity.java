package dev.compactor.core.quant.codebook;

import java.util.Locale;

/** What weighs each weight in the k-means of its row. */
public enum Sensitivity {
  /** Every weight counts the same: plain k-means. */
  UNIFORM,
  /**
   * The diagonal of the calibration Gram matrix {@code X^T X} of the linear's inputs, per input
   * column (the OBS/GPTQ Hessian's diagonal up to a constant), shared by every row.
   */
  HESSIAN,
  /**
   * The Fisher information diagonal, as SqueezeLLM uses: the mean over calibration windows of the
   * squared gradient of the next-token loss with respect to each weight.
   */
  FISHER;

  /** The lower-case name used on command lines and in provenance. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code uniform|hessian|fisher}. */
  public static Sensitivity parse(String s) {
    for (Sensitivity v : values()) {
      if (v.id().equals(s.trim().toLowerCase(Locale.ROOT))) {
        return v;
      }
    }
    throw new IllegalArgumentException(
        "unknown sensitivity '" + s + "'; expected one of uniform, hessian, fisher");
  }

  /** Whether it needs calibration text. */
  public boolean calibrated() {
    return this != UNIFORM;
  }
}
