package dev.compactor.core.quant.codebook;

import dev.compactor.core.io.Codebook;

/**
 * How a model is codebook-quantized.
 *
 * @param bits bits per weight: 2, 3 or 4 ({@code 2^bits} centroids per output row)
 * @param sensitivity what weighs each weight in its row's k-means
 * @param maxIterations Lloyd iterations per row at most
 * @param exact solve each row's weighted k-means to its global optimum ({@link WeightedKMeans}'s
 *     dynamic program) instead of running Lloyd; Lloyd stopped at 1.3x the optimal cost on 256-wide
 *     Gaussian rows with 16 centroids
 */
public record CodebookSettings(
    int bits, Sensitivity sensitivity, int maxIterations, boolean exact) {

  /** The iteration cap used unless told otherwise. */
  public static final int DEFAULT_MAX_ITERATIONS = 50;

  public CodebookSettings {
    Codebook.checkBits(bits);
    if (sensitivity == null) {
      throw new IllegalArgumentException("sensitivity must be given");
    }
    if (maxIterations < 1) {
      throw new IllegalArgumentException("maxIterations must be >= 1, found " + maxIterations);
    }
  }

  /** Exact k-means per row. */
  public CodebookSettings(int bits, Sensitivity sensitivity) {
    this(bits, sensitivity, DEFAULT_MAX_ITERATIONS, true);
  }

  /** A short label such as {@code codebook 4-bit fisher}. */
  public String label() {
    return "codebook " + bits + "-bit " + sensitivity.id() + (exact ? "" : " lloyd");
  }
}
