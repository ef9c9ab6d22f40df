package dev.compactor.core.prune.structured;

import dev.compactor.core.prune.structured.StructuredSpec.Importance;

/**
 * Importance of MLP channels and attention heads from the statistics of the input of the linear
 * that reads them (down_proj, o_proj) and that linear's weight ({@code [out, in]}, row-major).
 *
 * <ul>
 *   <li>{@link Importance#ACTIVATION} (Minitron): channel {@code j} scores {@code mean_t |x_tj|};
 *       head {@code h} scores {@code mean_t ||x_t[h·d, (h+1)·d)||_2}. The weight is not read.
 *   <li>{@link Importance#FLUCTUATION} (FLAP's WIFV): channel {@code j} scores {@code var_t(x_tj) ·
 *       ||W[:, j]||²} (population variance); head {@code h} sums that over its {@code d} columns.
 * </ul>
 */
public final class StructuredScores {

  private StructuredScores() {}

  /** One score per input column of a {@code [rows, cols]} linear. */
  public static double[] channels(Importance importance, InputStats x, float[] w, int rows) {
    int cols = x.columns();
    requireWeight(w, rows, cols);
    return switch (importance) {
      case ACTIVATION -> x.meanAbs();
      case FLUCTUATION -> fluctuation(x, w, rows, cols);
    };
  }

  /** One score per head of width {@code headDim} (the columns of the o_proj input). */
  public static double[] heads(
      Importance importance, InputStats x, float[] w, int rows, int headDim) {
    int cols = x.columns();
    requireWeight(w, rows, cols);
    if (importance == Importance.ACTIVATION) {
      return x.meanGroupNorm();
    }
    double[] perColumn = fluctuation(x, w, rows, cols);
    double[] out = new double[cols / headDim];
    for (int j = 0; j < cols; j++) {
      out[j / headDim] += perColumn[j];
    }
    return out;
  }

  private static double[] fluctuation(InputStats x, float[] w, int rows, int cols) {
    double[] var = x.variance();
    double[] colNorm = new double[cols];
    for (int r = 0; r < rows; r++) {
      int at = r * cols;
      for (int j = 0; j < cols; j++) {
        double v = w[at + j];
        colNorm[j] += v * v;
      }
    }
    double[] out = new double[cols];
    for (int j = 0; j < cols; j++) {
      out[j] = var[j] * colNorm[j];
    }
    return out;
  }

  private static void requireWeight(float[] w, int rows, int cols) {
    if (w.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "weight of " + w.length + " values is not [" + rows + ", " + cols + "]");
    }
  }
}
