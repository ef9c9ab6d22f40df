package dev.compactor.core.quant.codebook;

import dev.compactor.core.io.Fp16;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * Quantizes one linear weight matrix to a per-output-row codebook: {@link WeightedKMeans} on each
 * row with its weights' sensitivities, the centroids rounded to F16 (how they are stored), then
 * every weight coded to its nearest F16 centroid, so the codes match the stored codebook exactly.
 */
public final class CodebookQuantizer {

  private CodebookQuantizer() {}

  /**
   * @param w row-major {@code rows x cols}
   * @param sensitivity per weight ({@code rows x cols}), per input column ({@code cols}, shared by
   *     the rows) or null (uniform)
   */
  public static CodebookLinear quantize(
      float[] w,
      float[] sensitivity,
      int rows,
      int cols,
      int bits,
      int maxIterations,
      boolean exact) {
    if (w.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "expected " + rows + "x" + cols + " weights, found " + w.length);
    }
    boolean perColumn = sensitivity != null && sensitivity.length == cols && rows > 1;
    if (sensitivity != null && !perColumn && sensitivity.length != w.length) {
      throw new IllegalArgumentException(
          "expected "
              + w.length
              + " (per weight) or "
              + cols
              + " (per column) sensitivities, found "
              + sensitivity.length);
    }
    int k = 1 << bits;
    float[] codebook = new float[rows * k];
    byte[] codes = new byte[rows * cols];
    // rows are independent: fitted in parallel, each into its own slice, so the result does not
    // depend on the thread count
    int converged =
        IntStream.range(0, rows)
            .parallel()
            .map(
                r -> {
                  float[] row = Arrays.copyOfRange(w, r * cols, (r + 1) * cols);
                  float[] s = null;
                  if (sensitivity != null) {
                    int from = perColumn ? 0 : r * cols;
                    s = Arrays.copyOfRange(sensitivity, from, from + cols);
                  }
                  WeightedKMeans.Result fit = WeightedKMeans.fit(row, s, k, maxIterations, exact);
                  float[] c = fit.centroids();
                  for (int q = 0; q < k; q++) {
                    float exact32 = c[q];
                    c[q] = Fp16.toFloat(Fp16.fromFloat(exact32));
                    if (!Float.isFinite(c[q])) {
                      throw new IllegalArgumentException(
                          "row " + r + ": centroid " + exact32 + " does not fit in F16");
                    }
                  }
                  Arrays.sort(c);
                  System.arraycopy(c, 0, codebook, r * k, k);
                  byte[] rowCodes = WeightedKMeans.assign(row, 0, cols, c);
                  System.arraycopy(rowCodes, 0, codes, r * cols, cols);
                  return fit.converged() ? 1 : 0;
                })
            .sum();
    return new CodebookLinear(rows, cols, bits, codebook, codes, converged);
  }
}
