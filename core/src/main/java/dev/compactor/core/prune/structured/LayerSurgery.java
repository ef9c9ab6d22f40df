package dev.compactor.core.prune.structured;

/**
 * Row and column selection on row-major {@code [rows, cols]} weights, in blocks (a head is {@code
 * head_dim} consecutive rows of q/k/v and columns of o_proj; an MLP channel is one row of gate/up
 * and one column of down), and FLAP's bias compensation.
 */
public final class LayerSurgery {

  private LayerSurgery() {}

  /** The rows of blocks {@code kept} (each {@code block} rows), in the order given. */
  public static float[] keepRows(float[] w, int rows, int cols, int[] kept, int block) {
    check(w, rows, cols);
    float[] out = new float[kept.length * block * cols];
    for (int i = 0; i < kept.length; i++) {
      System.arraycopy(w, kept[i] * block * cols, out, i * block * cols, block * cols);
    }
    return out;
  }

  /** The columns of blocks {@code kept} (each {@code block} columns), in the order given. */
  public static float[] keepColumns(float[] w, int rows, int cols, int[] kept, int block) {
    check(w, rows, cols);
    int width = kept.length * block;
    float[] out = new float[rows * width];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < kept.length; i++) {
        System.arraycopy(w, r * cols + kept[i] * block, out, r * width + i * block, block);
      }
    }
    return out;
  }

  /**
   * {@code W[:, removed] · mean[removed]} for the columns of blocks {@code removed}: the output a
   * linear loses, on average over the calibration tokens, when those input columns are cut.
   */
  public static double[] lostMean(
      float[] w, int rows, int cols, int[] removed, int block, double[] mean) {
    check(w, rows, cols);
    double[] out = new double[rows];
    for (int r = 0; r < rows; r++) {
      double s = 0;
      for (int b : removed) {
        for (int j = b * block; j < (b + 1) * block; j++) {
          s += w[r * cols + j] * mean[j];
        }
      }
      out[r] = s;
    }
    return out;
  }

  private static void check(float[] w, int rows, int cols) {
    if (w.length != rows * cols) {
      throw new IllegalArgumentException(
          "weight of " + w.length + " values is not [" + rows + ", " + cols + "]");
    }
  }
}
