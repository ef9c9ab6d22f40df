package dev.compactor.core.prune.structured;

import ai.djl.ndarray.NDArray;

/**
 * Per-channel statistics of one linear's calibration input {@code X} ({@code [tokens, columns]}):
 * sum, sum of squares and sum of absolute values per column, and, with {@code groupWidth > 0}, the
 * sum over tokens of the L2 norm of every group of {@code groupWidth} consecutive columns (an
 * attention head's slice of the o_proj input). Sums are kept in double; each batch is reduced by
 * fp32 DJL ops first.
 */
public final class InputStats {

  private final int columns;
  private final int groupWidth;
  private final double[] sum;
  private final double[] sumSq;
  private final double[] sumAbs;
  private final double[] groupNorm;
  private long tokens;

  public InputStats(int columns, int groupWidth) {
    if (columns <= 0 || groupWidth < 0 || (groupWidth > 0 && columns % groupWidth != 0)) {
      throw new IllegalArgumentException(
          "columns " + columns + " must be positive and a multiple of group width " + groupWidth);
    }
    this.columns = columns;
    this.groupWidth = groupWidth;
    this.sum = new double[columns];
    this.sumSq = new double[columns];
    this.sumAbs = new double[columns];
    this.groupNorm = groupWidth > 0 ? new double[columns / groupWidth] : new double[0];
  }

  /** Adds the rows of {@code x}, fp32 {@code [tokens, columns]}. */
  public void accumulate(NDArray x) {
    long[] s = x.getShape().getShape();
    if (s.length != 2 || s[1] != columns) {
      throw new IllegalArgumentException(
          "expected inputs of shape [tokens, " + columns + "], found " + x.getShape());
    }
    int[] axis0 = {0};
    add(sum, x.sum(axis0).toFloatArray());
    add(sumSq, x.square().sum(axis0).toFloatArray());
    add(sumAbs, x.abs().sum(axis0).toFloatArray());
    if (groupWidth > 0) {
      NDArray norms = x.reshape(s[0], columns / groupWidth, groupWidth).square().sum(new int[] {2});
      add(groupNorm, norms.sqrt().sum(axis0).toFloatArray());
    }
    tokens += s[0];
  }

  private static void add(double[] into, float[] values) {
    for (int j = 0; j < into.length; j++) {
      into[j] += values[j];
    }
  }

  public int columns() {
    return columns;
  }

  public long tokens() {
    return tokens;
  }

  /** Mean of {@code X_j} per column. */
  public double[] mean() {
    return scaled(sum);
  }

  /** Mean of {@code |X_j|} per column. */
  public double[] meanAbs() {
    return scaled(sumAbs);
  }

  /** Population variance of {@code X_j} over tokens per column (never negative). */
  public double[] variance() {
    double[] v = new double[columns];
    if (tokens == 0) {
      return v;
    }
    for (int j = 0; j < columns; j++) {
      double m = sum[j] / tokens;
      v[j] = Math.max(0, sumSq[j] / tokens - m * m);
    }
    return v;
  }

  /** Mean over tokens of each group's L2 norm. */
  public double[] meanGroupNorm() {
    if (groupWidth == 0) {
      throw new IllegalStateException("these statistics were collected without groups");
    }
    return scaled(groupNorm);
  }

  private double[] scaled(double[] total) {
    double[] out = new double[total.length];
    for (int j = 0; j < out.length; j++) {
      out[j] = tokens == 0 ? 0 : total[j] / tokens;
    }
    return out;
  }
}
