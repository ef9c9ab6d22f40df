package dev.compactor.core.quant.gptq;

import dev.compactor.core.quant.export.QuantizedLinear;
import java.util.Arrays;

/**
 * GPTQ (Frantar et al., 2022): quantizes a linear layer's weight column by column and, after each
 * column, moves its rounding error onto the not-yet-quantized columns in the direction that the
 * calibration inputs' Hessian {@code H = 2/n X^T X} says costs least, so the layer's outputs {@code
 * W X} change less than with round-to-nearest.
 *
 * <p>Follows the reference implementation ({@code gptq.py} of IST-DASLab, AutoGPTQ's {@code
 * fasterquant}): dead inputs (zero diagonal) get {@code H_jj = 1} and weight 0; dampening {@code
 * percDamp * mean(diag H)} on the diagonal; the upper Cholesky factor of {@code H^-1} (libtorch
 * inverse, then a blocked Cholesky on DJL matmuls) gives the update rows; columns go in blocks of
 * {@code blockSize} with the error of a block applied to the remaining columns in one batch (lazy
 * updates, one float64 DJL matmul per block). The grid is {@link
 * dev.compactor.core.quant.RtnQuantizer}'s, so a diagonal Hessian reproduces RTN exactly.
 *
 * <p>Group scales are chosen when the first column of a group is reached, from the weights as
 * updated so far (inside the current block too). The reference code takes them from the block's
 * start values instead, which differs only for groups starting mid-block (group size below the
 * block size); using the updated values makes the blocked and the column-by-column algorithms
 * compute the same thing. With {@link GptqConfig.ActOrder#WEIGHT} (static groups) the scales are
 * fixed up front from the unmodified weights, as AutoGPTQ's {@code static_groups}. Per-channel
 * scales are always fixed up front, as in the reference.
 *
 * <p>Exact zeros of the input are pruned weights and stay exactly 0.0, as in SparseGPT (Frantar and
 * Alistarh, 2023): such a position is quantized to the grid's code for 0 (every grid here holds 0
 * exactly: symmetric codes have no offset, asymmetric zero points are integers of a range widened
 * to include 0), whatever the error feedback moved it to, and the difference is fed forward like
 * any rounding error. Group scales ignore pruned positions.
 *
 * <p>Work memory: the weight and {@code H^-1} in double ({@code 8 * (rows * cols + 3 * cols^2)}
 * bytes at peak; about 1.4 GB for an 11008-input layer). Thread-safe: no mutable state.
 */
public final class GptqQuantizer {

  private final GptqConfig config;
  private final IntGrid grid;

  public GptqQuantizer(GptqConfig config) {
    this.config = config;
    this.grid = new IntGrid(config.bits(), config.symmetric());
  }

  public GptqConfig config() {
    return config;
  }

  /**
   * Quantizes row-major {@code weight} ({@code rows} outputs x {@code cols} inputs) given the
   * {@code cols x cols} row-major Hessian of its inputs; neither array is modified.
   *
   * @throws ArithmeticException when the dampened Hessian is not positive definite (raise percDamp)
   */
  public GptqResult quantize(float[] weight, int rows, int cols, double[] hessian) {
    return quantizeConsuming(weight, rows, cols, hessian.clone());
  }

  /**
   * {@link #quantize} that works in {@code hessian}'s own array and overwrites it: for a caller
   * that made the array for this call (one {@code cols x cols} float64 array fewer at the peak).
   */
  public GptqResult quantizeConsuming(float[] weight, int rows, int cols, double[] hessian) {
    check(weight, rows, cols, hessian);
    int g = config.groupSize() == 0 ? cols : config.groupSize();
    if (cols % g != 0) {
      throw new IllegalArgumentException(
          "cols " + cols + " is not a multiple of the group size " + g);
    }
    int groups = cols / g;
    double[] h = hessian;
    hessian = null; // only h refers to the array now
    double[] w = new double[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = weight[i];
    }
    boolean[] pruned = new boolean[w.length];
    for (int i = 0; i < w.length; i++) {
      pruned[i] = weight[i] == 0f;
    }
    int dead = ObsHessian.removeDeadInputs(h, w, rows, cols);
    float[] scales = new float[rows * groups];
    int[] zeros = new int[rows * groups];
    boolean staticGroups =
        config.groupSize() == 0 || config.actOrder() == GptqConfig.ActOrder.WEIGHT;
    if (staticGroups) {
      for (int gi = 0; gi < groups; gi++) {
        chooseGroup(w, pruned, rows, cols, gi * g, g, gi, groups, scales, zeros);
      }
    }
    int[] perm = identity(cols);
    if (config.actOrder() != GptqConfig.ActOrder.NONE) {
      perm = descendingDiagonal(h, cols);
      w = permuteColumns(w, rows, cols, perm);
      pruned = permuteColumns(pruned, rows, cols, perm);
      h = permuteSymmetric(h, cols, perm);
    }
    double[] hinv =
        ObsHessian.upperCholeskyOfInverse(ObsHessian.dampen(h, cols, config.percDamp()), cols);

    int[] signed = new int[rows * cols];
    int[] groupOf = new int[cols];
    double loss = 0;
    int bs = config.blockSize();
    for (int i1 = 0; i1 < cols; i1 += bs) {
      int i2 = Math.min(i1 + bs, cols);
      int count = i2 - i1;
      double[] err = new double[rows * count];
      for (int i = i1; i < i2; i++) {
        int gi = staticGroups ? (config.groupSize() == 0 ? 0 : perm[i] / g) : i / g;
        if (!staticGroups && i % g == 0) {
          chooseGroup(w, pruned, rows, cols, i, g, gi, groups, scales, zeros);
        }
        groupOf[i] = gi;
        double d = hinv[i * cols + i];
        for (int r = 0; r < rows; r++) {
          int s = r * groups + gi;
          double wi = w[r * cols + i];
          int q = pruned[r * cols + i] ? zeros[s] : grid.quantize(wi, scales[s], zeros[s]);
          signed[r * cols + i] = q;
          double e = (wi - IntGrid.value(q, scales[s], zeros[s])) / d;
          loss += e * e / 2;
          err[r * count + (i - i1)] = e;
          int row = r * cols;
          int hrow = i * cols;
          for (int j = i + 1; j < i2; j++) {
            w[row + j] -= e * hinv[hrow + j];
          }
        }
      }
      if (i2 < cols) {
        ObsHessian.lazyUpdate(w, rows, cols, err, i1, i2, hinv);
      }
    }
    return result(rows, cols, g, perm, signed, groupOf, scales, zeros, loss, dead);
  }

  private GptqResult result(
      int rows,
      int cols,
      int g,
      int[] perm,
      int[] signed,
      int[] groupOf,
      float[] scales,
      int[] zeros,
      double loss,
      int dead) {
    int groups = cols / g;
    byte[] codes = new byte[rows * cols];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < cols; i++) {
        codes[r * cols + perm[i]] = (byte) (signed[r * cols + i] + grid.offset);
      }
    }
    byte[] zeroCodes = null;
    if (!config.symmetric()) {
      zeroCodes = new byte[zeros.length];
      for (int s = 0; s < zeros.length; s++) {
        zeroCodes[s] = (byte) (zeros[s] + grid.offset);
      }
    }
    int[] gIdx = null;
    if (config.actOrder() == GptqConfig.ActOrder.GROUP) {
      gIdx = new int[cols];
      for (int i = 0; i < cols; i++) {
        gIdx[perm[i]] = groupOf[i];
      }
    }
    QuantizedLinear q =
        new QuantizedLinear(
            rows, cols, config.bits(), config.symmetric(), g, codes, scales, zeroCodes, gIdx);
    return new GptqResult(q, q.dequantize(), loss, dead);
  }

  /**
   * Scale and zero of group {@code gi} for every row, from columns [start, start + g) of w, pruned
   * positions left out (they will be 0, which every range includes).
   */
  private void chooseGroup(
      double[] w,
      boolean[] pruned,
      int rows,
      int cols,
      int start,
      int g,
      int gi,
      int groups,
      float[] scales,
      int[] zeros) {
    for (int r = 0; r < rows; r++) {
      float min = 0;
      float max = 0;
      for (int j = start; j < start + g; j++) {
        if (pruned[r * cols + j]) {
          continue;
        }
        float v = (float) w[r * cols + j];
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      scales[r * groups + gi] = grid.scale(min, max);
      zeros[r * groups + gi] = grid.zero(min, max);
    }
  }

  /** Column order by decreasing Hessian diagonal; ties keep the natural order. */
  static int[] descendingDiagonal(double[] h, int n) {
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(h[b * n + b], h[a * n + a]));
    int[] perm = new int[n];
    for (int i = 0; i < n; i++) {
      perm[i] = order[i];
    }
    return perm;
  }

  static double[] permuteColumns(double[] w, int rows, int cols, int[] perm) {
    double[] out = new double[w.length];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < cols; i++) {
        out[r * cols + i] = w[r * cols + perm[i]];
      }
    }
    return out;
  }

  static boolean[] permuteColumns(boolean[] w, int rows, int cols, int[] perm) {
    boolean[] out = new boolean[w.length];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < cols; i++) {
        out[r * cols + i] = w[r * cols + perm[i]];
      }
    }
    return out;
  }

  static double[] permuteSymmetric(double[] h, int n, int[] perm) {
    double[] out = new double[h.length];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        out[i * n + j] = h[perm[i] * n + perm[j]];
      }
    }
    return out;
  }

  private static int[] identity(int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    return p;
  }

  private static void check(float[] weight, int rows, int cols, double[] hessian) {
    if (rows <= 0 || cols <= 0 || (long) rows * cols != weight.length) {
      throw new IllegalArgumentException(
          "weight shape " + rows + "x" + cols + " does not match " + weight.length + " values");
    }
    if ((long) cols * cols != hessian.length) {
      throw new IllegalArgumentException(
          "expected a " + cols + "x" + cols + " Hessian, found " + hessian.length + " values");
    }
    for (double v : hessian) {
      if (!Double.isFinite(v)) {
        throw new IllegalArgumentException("Hessian holds a non-finite value " + v);
      }
    }
  }
}
