package dev.compactor.core.prune;

/**
 * The importance score of every weight of a {@code [out, in]} linear, for the two supported
 * methods. Plain float arrays: they run one tensor at a time, so no model needs to be resident.
 */
public final class ImportanceScores {

  private ImportanceScores() {}

  /** Magnitude pruning's score: |W_ij|. */
  public static float[] magnitude(float[] weight) {
    float[] s = new float[weight.length];
    for (int i = 0; i < weight.length; i++) {
      s[i] = Math.abs(weight[i]);
    }
    return s;
  }

  /**
   * Wanda's score |W_ij| * ||X_j||_2, where {@code inputNorms[j]} is the L2 norm of input feature j
   * over all calibration tokens.
   */
  public static float[] wanda(float[] weight, int rows, int cols, float[] inputNorms) {
    if (inputNorms.length != cols || (long) rows * cols != weight.length) {
      throw new IllegalArgumentException(
          "wanda needs one input norm per input feature: weight is ["
              + rows
              + ", "
              + cols
              + "] ("
              + weight.length
              + " values), found "
              + inputNorms.length
              + " norms");
    }
    float[] s = new float[weight.length];
    for (int r = 0; r < rows; r++) {
      int base = r * cols;
      for (int c = 0; c < cols; c++) {
        s[base + c] = Math.abs(weight[base + c]) * inputNorms[c];
      }
    }
    return s;
  }
}
