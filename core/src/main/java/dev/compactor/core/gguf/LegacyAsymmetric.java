package dev.compactor.core.gguf;

/** What ggml's weighted Q4_1 and Q5_1 quantizers share. */
final class LegacyAsymmetric {

  private LegacyAsymmetric() {}

  /**
   * {@code sum_x2 / n_per_row} over the whole row, summed in order as the C loop does; checks that
   * {@code importance} covers the row.
   */
  static float rowSigma2(float[] x, int xOff, int n, float[] importance) {
    if (importance.length < n) {
      throw new IllegalArgumentException(
          "importance has " + importance.length + " entries for a row of " + n);
    }
    float sumX2 = 0;
    for (int j = 0; j < n; ++j) {
      sumX2 += x[xOff + j] * x[xOff + j];
    }
    return sumX2 / n;
  }
}
