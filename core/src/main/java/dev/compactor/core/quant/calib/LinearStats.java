package dev.compactor.core.quant.calib;

import ai.djl.ndarray.NDArray;

/**
 * Statistics of the calibration inputs {@code X} ({@code [tokens, columns]}) of one or more linear
 * layers that read the same input: the Gram matrix {@code X^T X} (GPTQ's Hessian and AWQ's output
 * error), the mean absolute value per input channel (AWQ's activation scale) and the sum of squares
 * per channel (llama.cpp's imatrix). Sums are kept in double; each batch's products come from one
 * fp32 DJL matmul.
 */
public final class LinearStats {

  private final int columns;
  private final double[] gram;
  private final double[] sumAbs;
  private final double[] sumSq;
  private long tokens;
  private final boolean calibrated;

  /** Statistics of {@code columns}-wide inputs; {@code withGram} false skips the O(cols^2) part. */
  public LinearStats(int columns, boolean withGram) {
    this(columns, withGram, true);
  }

  private LinearStats(int columns, boolean withGram, boolean calibrated) {
    this.calibrated = calibrated;
    this.columns = columns;
    this.gram = withGram ? new double[columns * columns] : null;
    this.sumAbs = new double[columns];
    this.sumSq = new double[columns];
  }

  /** Adds the rows of {@code x}, fp32 {@code [tokens, columns]}. */
  public void accumulate(NDArray x) {
    long[] s = x.getShape().getShape();
    if (s.length != 2 || s[1] != columns) {
      throw new IllegalArgumentException(
          "expected inputs of shape [tokens, " + columns + "], found " + x.getShape());
    }
    if (gram != null) {
      float[] g = x.transpose().matMul(x).toFloatArray();
      for (int i = 0; i < g.length; i++) {
        gram[i] += g[i];
      }
    }
    float[] abs = x.abs().sum(new int[] {0}).toFloatArray();
    float[] sq = x.square().sum(new int[] {0}).toFloatArray();
    for (int j = 0; j < columns; j++) {
      sumAbs[j] += abs[j];
      sumSq[j] += sq[j];
    }
    tokens += s[0];
  }

  /**
   * Statistics of an input that saw {@code tokens} rows, too few to calibrate on (an expert the
   * router sent fewer than {@link LinearGroups#minExpertTokens} tokens): {@link #calibrated()} is
   * false and a quantizer or pruner must use its uncalibrated method instead.
   */
  public static LinearStats tooFewTokens(int columns, long tokens) {
    LinearStats s = new LinearStats(columns, false, false);
    s.tokens = tokens;
    return s;
  }

  /** False for {@link #tooFewTokens}: there are no statistics to use. */
  public boolean calibrated() {
    return calibrated;
  }

  public int columns() {
    return columns;
  }

  /** Rows (tokens) seen. */
  public long tokens() {
    return tokens;
  }

  /** {@code X^T X} summed over all tokens, row-major {@code columns x columns} (a copy). */
  public double[] gram() {
    if (!calibrated) {
      throw new IllegalStateException(
          "only " + tokens + " calibration tokens reached this input: it is not calibrated");
    }
    if (gram == null) {
      throw new IllegalStateException("these statistics were collected without the Gram matrix");
    }
    return gram.clone();
  }

  /** GPTQ's Hessian {@code H = 2/n X^T X}, row-major (a new array). */
  public double[] hessian() {
    double[] h = gram();
    double f = tokens == 0 ? 0 : 2.0 / tokens;
    for (int i = 0; i < h.length; i++) {
      h[i] *= f;
    }
    return h;
  }

  /** Mean of {@code |X_j|} per input channel. */
  public double[] meanAbs() {
    double[] m = new double[columns];
    for (int j = 0; j < columns; j++) {
      m[j] = tokens == 0 ? 0 : sumAbs[j] / tokens;
    }
    return m;
  }

  /** Sum of {@code X_j^2} per input channel (the imatrix of llama.cpp, before normalising). */
  public double[] sumOfSquares() {
    return sumSq.clone();
  }
}
