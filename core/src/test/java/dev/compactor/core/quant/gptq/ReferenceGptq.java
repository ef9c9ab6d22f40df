package dev.compactor.core.quant.gptq;

/**
 * GPTQ written the obvious way for tests: no blocks, no lazy batches; after every column the error
 * is pushed onto all remaining columns at once (the OBS update with the upper Cholesky row of
 * {@code H^-1}). Shares only the grid and the Cholesky helper with the real class.
 */
final class ReferenceGptq {

  private ReferenceGptq() {}

  /** Dequantized weight, row-major, original column order. */
  static float[] quantize(GptqConfig c, float[] weight, int rows, int cols, double[] hessian) {
    IntGrid grid = new IntGrid(c.bits(), c.symmetric());
    int g = c.groupSize() == 0 ? cols : c.groupSize();
    double[][] w = new double[rows][cols];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) {
        w[r][j] = weight[r * cols + j];
      }
    }
    double[] h = hessian.clone();
    for (int j = 0; j < cols; j++) {
      if (h[j * cols + j] == 0) {
        h[j * cols + j] = 1;
        for (int r = 0; r < rows; r++) {
          w[r][j] = 0;
        }
      }
    }
    boolean statics = c.groupSize() == 0 || c.actOrder() == GptqConfig.ActOrder.WEIGHT;
    float[][] scale = new float[rows][cols / g];
    int[][] zero = new int[rows][cols / g];
    if (statics) {
      for (int k = 0; k < cols / g; k++) {
        params(grid, w, k * g, g, k, scale, zero);
      }
    }
    int[] perm = new int[cols];
    for (int j = 0; j < cols; j++) {
      perm[j] = j;
    }
    if (c.actOrder() != GptqConfig.ActOrder.NONE) {
      perm = GptqQuantizer.descendingDiagonal(h, cols);
    }
    double[] hp = GptqQuantizer.permuteSymmetric(h, cols, perm);
    double[][] wp = new double[rows][cols];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < cols; i++) {
        wp[r][i] = w[r][perm[i]];
      }
    }
    double[] u = ObsHessian.upperCholeskyOfInverse(ObsHessian.dampen(hp, cols, c.percDamp()), cols);
    float[] out = new float[rows * cols];
    for (int i = 0; i < cols; i++) {
      int k = statics ? (c.groupSize() == 0 ? 0 : perm[i] / g) : i / g;
      if (!statics && i % g == 0) {
        params(grid, wp, i, g, k, scale, zero);
      }
      for (int r = 0; r < rows; r++) {
        int q = grid.quantize(wp[r][i], scale[r][k], zero[r][k]);
        float v = IntGrid.value(q, scale[r][k], zero[r][k]);
        out[r * cols + perm[i]] = v;
        double e = (wp[r][i] - v) / u[i * cols + i];
        for (int j = i + 1; j < cols; j++) {
          wp[r][j] -= e * u[i * cols + j];
        }
      }
    }
    return out;
  }

  private static void params(
      IntGrid grid, double[][] w, int start, int g, int k, float[][] scale, int[][] zero) {
    for (int r = 0; r < w.length; r++) {
      float lo = 0;
      float hi = 0;
      for (int j = start; j < start + g; j++) {
        lo = Math.min(lo, (float) w[r][j]);
        hi = Math.max(hi, (float) w[r][j]);
      }
      scale[r][k] = grid.scale(lo, hi);
      zero[r][k] = grid.zero(lo, hi);
    }
  }
}
