package dev.compactor.core.quant.qat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.quant.export.QuantizedLinear;

/**
 * Fake quantization of a linear weight with a learned step size (LSQ, Esser et al. 2020): the
 * forward computes with {@code ŵ = s · round(clamp(w / s, Qn, Qp))} on the symmetric signed grid
 * {@code Qn = -2^(b-1)}, {@code Qp = 2^(b-1) - 1}, one step {@code s} per output row and group of
 * {@code G} consecutive inputs; the backward passes the gradient straight through the rounding to
 * the latent weight {@code w} (zero where it is clamped) and gives {@code s} LSQ's gradient, scaled
 * by {@code g = 1 / sqrt(G · Qp)} so that steps and weights learn at comparable rates.
 *
 * <p>Both are built from differentiable ops and {@code stopGradient}: {@code q = clamp(w / ŝ)},
 * {@code ŵ = ŝ · (q + stopgrad(round(q) - q))} with {@code ŝ = (s - stopgrad(s)) · g +
 * stopgrad(s)}. The last is LSQ's {@code s·g + stopgrad(s - s·g)} rearranged so that its value is
 * exactly {@code s} in floating point (the usual form can be off by an ulp), which keeps the
 * forward's codes identical to {@link #export}'s {@code clamp(rint(w / s))}.
 */
public final class LsqFakeQuantizer {

  private final int bits;
  private final int groupSize;
  private final int qn;
  private final int qp;

  /**
   * @param bits 2, 3, 4 or 8
   * @param groupSize inputs sharing one step; 0 for one step per output row
   */
  public LsqFakeQuantizer(int bits, int groupSize) {
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      throw new IllegalArgumentException("bits must be 2, 3, 4 or 8, found " + bits);
    }
    if (groupSize < 0) {
      throw new IllegalArgumentException("group size must be >= 0, found " + groupSize);
    }
    this.bits = bits;
    this.groupSize = groupSize;
    this.qn = -(1 << (bits - 1));
    this.qp = (1 << (bits - 1)) - 1;
  }

  public int bits() {
    return bits;
  }

  /** Inputs per step as configured (0: one step per row). */
  public int groupSize() {
    return groupSize;
  }

  /** Inputs per step of a matrix with {@code cols} inputs. */
  public int group(int cols) {
    int g = groupSize == 0 ? cols : groupSize;
    if (cols % g != 0) {
      throw new IllegalArgumentException(
          "group size " + g + " does not divide the " + cols + " inputs");
    }
    return g;
  }

  /** LSQ's step-gradient scale {@code 1 / sqrt(G · Qp)} for a matrix of {@code cols} inputs. */
  public double gradScale(int cols) {
    return 1.0 / Math.sqrt((double) group(cols) * qp);
  }

  /**
   * The fake-quantized weight for {@code w} {@code [rows, cols]} and steps {@code s} {@code [rows,
   * cols / G]}; every array it creates lives in {@code scope}.
   */
  public NDArray apply(NDArray w, NDArray s, NDManager scope) {
    long rows = w.getShape().get(0);
    int cols = (int) w.getShape().get(1);
    int g = group(cols);
    long groups = cols / g;
    NDArray w3 = own(w.reshape(rows, groups, g), scope);
    NDArray s3 = own(s.reshape(rows, groups, 1), scope);
    NDArray gradScale = scope.create((float) gradScale(cols));
    NDArray fixed = s3.stopGradient();
    NDArray step = s3.sub(fixed).mul(gradScale).add(fixed);
    NDArray q = w3.div(step).clip(qn, qp);
    NDArray rounding = q.round().sub(q).stopGradient();
    return q.add(rounding).mul(step).reshape(new Shape(rows, cols));
  }

  private static NDArray own(NDArray a, NDManager scope) {
    a.attach(scope);
    return a;
  }

  /**
   * Round-to-nearest steps for row-major {@code w}: {@code amax / ((Qp - Qn) / 2)} per (row,
   * group), 1 for a group of zeros (the symmetric grid of {@link
   * dev.compactor.core.quant.RtnQuantizer}, so training starts from exactly the RTN model).
   */
  public float[] absmaxSteps(float[] w, int rows, int cols) {
    int g = group(cols);
    int groups = cols / g;
    float[] s = new float[rows * groups];
    for (int r = 0; r < rows; r++) {
      for (int gi = 0; gi < groups; gi++) {
        float min = 0;
        float max = 0;
        for (int c = gi * g; c < (gi + 1) * g; c++) {
          min = Math.min(min, w[r * cols + c]);
          max = Math.max(max, w[r * cols + c]);
        }
        float step = Math.max(-min, max) / ((qp - qn) / 2.0f);
        s[r * groups + gi] = step == 0 ? 1 : step;
      }
    }
    return s;
  }

  /**
   * The integer grid the trained {@code w} and steps {@code s} stand for: unsigned codes {@code
   * clamp(rint(w / s), Qn, Qp) + 2^(b-1)} (compressed-tensors' offset convention) with {@code s} as
   * the scales, symmetric.
   *
   * @throws IllegalStateException when a step is not positive (training diverged)
   */
  public QuantizedLinear export(float[] w, float[] s, int rows, int cols) {
    int g = group(cols);
    int groups = cols / g;
    if (s.length != rows * groups || w.length != rows * cols) {
      throw new IllegalArgumentException(
          "expected " + rows + "x" + cols + " weights and " + rows * groups + " steps");
    }
    byte[] codes = new byte[rows * cols];
    int offset = 1 << (bits - 1);
    for (int r = 0; r < rows; r++) {
      for (int gi = 0; gi < groups; gi++) {
        float step = s[r * groups + gi];
        if (!(step > 0)) {
          throw new IllegalStateException(
              "step of row " + r + ", group " + gi + " is " + step + "; lower the learning rate");
        }
        for (int c = gi * g; c < (gi + 1) * g; c++) {
          int q = (int) Math.rint(w[r * cols + c] / step);
          codes[r * cols + c] = (byte) (Math.max(qn, Math.min(qp, q)) + offset);
        }
      }
    }
    return new QuantizedLinear(rows, cols, bits, true, g, codes, s.clone(), null, null);
  }
}
