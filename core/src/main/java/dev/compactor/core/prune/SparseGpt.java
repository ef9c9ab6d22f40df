package dev.compactor.core.prune;

import dev.compactor.core.prune.PruningSpec.Granularity;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.gptq.IntGrid;
import dev.compactor.core.quant.gptq.ObsHessian;
import java.util.BitSet;

/**
 * SparseGPT on one linear layer (Frantar and Alistarh 2023, Algorithm 1, as {@code fasterprune} of
 * the reference implementation IST-DASLab/sparsegpt): the columns (inputs) of the weight are
 * visited left to right in blocks of {@code blockSize}; a weight is pruned when its Optimal Brain
 * Surgeon saliency {@code W_ij^2 / [U_jj]^2} is among the lowest (U the upper Cholesky factor of
 * the dampened inverse Hessian {@code H^-1 = U^T U}, {@link ObsHessian}), and the error of every
 * column, kept weights unchanged and pruned ones zeroed, is moved onto the not-yet-visited columns
 * along row j of U, so the layer's outputs {@code W X} change as little as the Hessian allows.
 *
 * <p>Mask selection follows the reference: unstructured, the mask of a block is chosen when the
 * block is reached, from its weights as updated by the earlier blocks; {@link
 * Granularity#PER_TENSOR} compares the whole block (all rows x {@code blockSize} columns, the
 * reference's rule) and {@link Granularity#PER_OUTPUT_ROW} each row of the block on its own (so
 * every row is exactly at the target sparsity). One deliberate difference: the reference prunes
 * {@code tmp <= sort(tmp)[int(numel * sparsity)]}, one element more than {@code int(numel *
 * sparsity)} per block; here exactly {@link MaskSelection#prunedCount} elements are pruned, ties to
 * the lower index. N:M: at every M-th column the {@code M - N} lowest saliencies of each row among
 * the next M columns, as updated so far, are pruned ({@code prunen:prunem} of the reference).
 *
 * <p>Joint sparsity and quantization ({@link #withQuantization}, the reference's {@code wbits}): in
 * the same sweep every kept weight is rounded to a per-output-row integer grid (GPTQ's {@link
 * IntGrid}, scales fixed up front from each row's range before pruning, as the reference's {@code
 * find_params(W)}), and its rounding error is fed forward like a pruned weight's. With a group size
 * (not in the reference sparsegpt.py; GPTQ's grouping as {@link
 * dev.compactor.core.quant.gptq.GptqQuantizer} does it) each group's scales are chosen when the
 * sweep reaches its first column, from the group's weights as updated so far, weights about to be
 * pruned included; the block size must then be a multiple of the group size. {@link
 * Result#quantized} holds the codes for export (4 and 8 bits), pruned weights at the zero point.
 *
 * <p>Dead inputs (zero Hessian diagonal) get weight 0 and thus the lowest saliency. Pruned weights
 * come out exactly 0. Work memory as GPTQ's: the weight and {@code H^-1} in double. Thread-safe.
 */
public final class SparseGpt {

  /** The reference implementation's defaults. */
  public static final int DEFAULT_BLOCK_SIZE = 128;

  public static final double DEFAULT_PERC_DAMP = 0.01;

  /**
   * @param weight the pruned (and, with quantization, dequantized) weight, row-major fp32, exactly
   *     0 where {@code mask} is set
   * @param mask the pruned positions
   * @param loss the OBS estimate {@code sum (w - q)^2 / (2 U_jj^2)} of the output error
   * @param deadColumns inputs that were always zero in the calibration data
   * @param quantized with 4- or 8-bit quantization, the codes whose values {@code weight} holds;
   *     else null
   */
  public record Result(
      float[] weight, BitSet mask, double loss, int deadColumns, QuantizedLinear quantized) {}

  private final double sparsity;
  private final NmPattern pattern;
  private final Granularity granularity;
  private final int blockSize;
  private final double percDamp;
  private final IntGrid grid;
  private final int bits;
  private final boolean symmetric;
  private final int groupSize;

  /**
   * @param sparsity fraction pruned, in (0, 1); ignored with a pattern
   * @param pattern N:M pattern or null for unstructured
   * @param granularity the comparison group of unstructured masks (see the class comment)
   */
  public SparseGpt(
      double sparsity, NmPattern pattern, Granularity granularity, int blockSize, double percDamp) {
    this(sparsity, pattern, granularity, blockSize, percDamp, 0, true, 0);
  }

  private SparseGpt(
      double sparsity,
      NmPattern pattern,
      Granularity granularity,
      int blockSize,
      double percDamp,
      int bits,
      boolean symmetric,
      int groupSize) {
    if (pattern == null && !(sparsity > 0 && sparsity < 1)) {
      throw new IllegalArgumentException("sparsity must be in (0, 1), found " + sparsity);
    }
    if (blockSize < 1 || (pattern != null && blockSize % pattern.m() != 0)) {
      throw new IllegalArgumentException(
          "block size must be positive and a multiple of the pattern's M, found " + blockSize);
    }
    if (!(percDamp >= 0)) {
      throw new IllegalArgumentException("percDamp must be >= 0, found " + percDamp);
    }
    this.sparsity = sparsity;
    this.pattern = pattern;
    this.granularity = granularity;
    this.blockSize = blockSize;
    if (groupSize < 0 || (groupSize > 0 && blockSize % groupSize != 0)) {
      throw new IllegalArgumentException(
          "group size must be 0 (per row) or divide the block size "
              + blockSize
              + ", found "
              + groupSize);
    }
    this.percDamp = percDamp;
    this.bits = bits;
    this.symmetric = symmetric;
    this.groupSize = groupSize;
    this.grid = bits == 0 ? null : new IntGrid(bits, symmetric);
  }

  /**
   * The same pruning with the kept weights also quantized to {@code bits} per output row
   * (SparseGPT's 50 % + 4-bit); the result holds the dequantized values.
   */
  public SparseGpt withQuantization(int bits, boolean symmetric) {
    return withQuantization(bits, symmetric, 0);
  }

  /**
   * As {@link #withQuantization(int, boolean)} with one scale per {@code groupSize} input columns
   * of a row (0: per row).
   */
  public SparseGpt withQuantization(int bits, boolean symmetric, int groupSize) {
    if (bits < 2 || bits > 8) {
      throw new IllegalArgumentException("bits must be in [2, 8], found " + bits);
    }
    return new SparseGpt(
        sparsity, pattern, granularity, blockSize, percDamp, bits, symmetric, groupSize);
  }

  /** The reference defaults: block size 128, dampening 1 % of the mean diagonal. */
  public static SparseGpt of(PruningSpec spec) {
    return new SparseGpt(
        spec.sparsity(), spec.pattern(), spec.granularity(), DEFAULT_BLOCK_SIZE, DEFAULT_PERC_DAMP);
  }

  /**
   * Prunes row-major {@code weight} ({@code rows} outputs x {@code cols} inputs) given the {@code
   * cols x cols} row-major Hessian {@code 2/n X^T X} of its inputs; neither array is modified.
   *
   * @throws ArithmeticException when the dampened Hessian is not positive definite
   */
  public Result prune(float[] weight, int rows, int cols, double[] hessian) {
    return pruneConsuming(weight, rows, cols, hessian.clone());
  }

  /**
   * {@link #prune} that works in {@code hessian}'s own array and overwrites it: for a caller that
   * made the array for this call (one {@code cols x cols} float64 array fewer at the peak: 0.97 GB
   * for a 11008-input down_proj).
   */
  public Result pruneConsuming(float[] weight, int rows, int cols, double[] hessian) {
    if (rows <= 0 || cols <= 0 || (long) rows * cols != weight.length) {
      throw new IllegalArgumentException(
          "weight shape " + rows + "x" + cols + " does not match " + weight.length + " values");
    }
    if ((long) cols * cols != hessian.length) {
      throw new IllegalArgumentException(
          "expected a " + cols + "x" + cols + " Hessian, found " + hessian.length + " values");
    }
    if (pattern != null) {
      MaskSelection.requireMultiple(cols, pattern);
    }
    double[] h = hessian;
    hessian = null; // only h refers to the array now, so dropping h below frees it
    double[] w = new double[weight.length];
    for (int i = 0; i < w.length; i++) {
      w[i] = weight[i];
    }
    int dead = ObsHessian.removeDeadInputs(h, w, rows, cols);
    ObsHessian.dampen(h, cols, percDamp);
    double[] u = ObsHessian.upperCholeskyOfInverse(h, cols); // in h's array
    h = null;

    int g = groupSize == 0 ? cols : groupSize;
    if (grid != null && cols % g != 0) {
      throw new IllegalArgumentException(
          "cols " + cols + " is not a multiple of the group size " + g);
    }
    int groups = cols / g;
    float[] scales = new float[rows * groups];
    int[] zeros = new int[rows * groups];
    int[] codes = grid == null ? null : new int[rows * cols];
    if (grid != null && groupSize == 0) {
      chooseGroup(w, rows, cols, 0, cols, 0, 1, scales, zeros);
    }
    BitSet mask = new BitSet(weight.length);
    double loss = 0;
    for (int i1 = 0; i1 < cols; i1 += blockSize) {
      int i2 = Math.min(i1 + blockSize, cols);
      int count = i2 - i1;
      boolean[] pruned = new boolean[rows * count];
      double[] saliency = new double[rows * count];
      if (pattern == null) {
        for (int r = 0; r < rows; r++) {
          for (int j = 0; j < count; j++) {
            saliency[r * count + j] = saliency(w, u, r, i1 + j, cols);
          }
        }
        if (granularity == Granularity.PER_TENSOR) {
          int k = (int) MaskSelection.prunedCount((long) rows * count, sparsity);
          MaskSelection.lowest(saliency, 0, rows * count, k, pruned);
        } else {
          int k = (int) MaskSelection.prunedCount(count, sparsity);
          for (int r = 0; r < rows; r++) {
            MaskSelection.lowest(saliency, r * count, count, k, pruned);
          }
        }
      }
      double[] err = new double[rows * count];
      for (int i = i1; i < i2; i++) {
        int local = i - i1;
        if (pattern != null && local % pattern.m() == 0) {
          for (int r = 0; r < rows; r++) {
            for (int j = i; j < i + pattern.m(); j++) {
              saliency[r * count + (j - i1)] = saliency(w, u, r, j, cols);
            }
            MaskSelection.lowest(
                saliency, r * count + local, pattern.m(), pattern.pruned(), pruned);
          }
        }
        if (grid != null && groupSize > 0 && i % groupSize == 0) {
          chooseGroup(w, rows, cols, i, groupSize, i / groupSize, groups, scales, zeros);
        }
        int gi = i / g;
        double d = u[i * cols + i];
        int hrow = i * cols;
        for (int r = 0; r < rows; r++) {
          int at = r * cols + i;
          int s = r * groups + gi;
          double q;
          if (pruned[r * count + local]) {
            q = 0;
            mask.set(at);
            if (codes != null) {
              codes[at] = zeros[s];
            }
          } else if (grid != null) {
            codes[at] = grid.quantize(w[at], scales[s], zeros[s]);
            q = IntGrid.value(codes[at], scales[s], zeros[s]);
          } else {
            continue; // kept as it is: no error to move
          }
          double e = (w[at] - q) / d;
          w[at] = q;
          loss += e * e / 2;
          err[r * count + local] = e;
          for (int j = i + 1; j < i2; j++) {
            w[r * cols + j] -= e * u[hrow + j];
          }
        }
      }
      if (i2 < cols) {
        ObsHessian.lazyUpdate(w, rows, cols, err, i1, i2, u);
      }
    }
    float[] out = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      out[i] = mask.get(i) ? 0f : (float) w[i];
    }
    QuantizedLinear quantized = null;
    if (grid != null && (bits == 4 || bits == 8)) {
      int offset = 1 << (bits - 1);
      byte[] unsigned = new byte[codes.length];
      for (int i = 0; i < codes.length; i++) {
        unsigned[i] = (byte) (codes[i] + offset);
      }
      byte[] zeroCodes = null;
      if (!symmetric) {
        zeroCodes = new byte[zeros.length];
        for (int i = 0; i < zeros.length; i++) {
          zeroCodes[i] = (byte) (zeros[i] + offset);
        }
      }
      quantized =
          new QuantizedLinear(rows, cols, bits, symmetric, g, unsigned, scales, zeroCodes, null);
    }
    return new Result(out, mask, loss, dead, quantized);
  }

  /** Scale and zero of group {@code gi} of every row from columns [start, start + width) of w. */
  private void chooseGroup(
      double[] w,
      int rows,
      int cols,
      int start,
      int width,
      int gi,
      int groups,
      float[] scales,
      int[] zeros) {
    for (int r = 0; r < rows; r++) {
      float min = 0;
      float max = 0;
      for (int j = start; j < start + width; j++) {
        min = Math.min(min, (float) w[r * cols + j]);
        max = Math.max(max, (float) w[r * cols + j]);
      }
      scales[r * groups + gi] = grid.scale(min, max);
      zeros[r * groups + gi] = grid.zero(min, max);
    }
  }

  private static double saliency(double[] w, double[] u, int r, int j, int cols) {
    double d = u[j * cols + j];
    double v = w[r * cols + j];
    return v * v / (d * d);
  }
}
