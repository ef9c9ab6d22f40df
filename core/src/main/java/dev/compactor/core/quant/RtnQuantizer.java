package dev.compactor.core.quant;

import dev.compactor.core.quant.QuantizedTensor.Format;
import dev.compactor.core.quant.QuantizedTensor.Granularity;

/**
 * Round-to-nearest integer quantization of a weight matrix, symmetric or asymmetric, with one scale
 * per output channel (row) or per group of 32/64/128 consecutive inputs. It follows
 * compressed-tensors' conventions so the result exports as is: {@code qmin = -2^(b-1)}, {@code qmax
 * = 2^(b-1) - 1}; symmetric {@code scale = amax / ((qmax - qmin) / 2)}, zero 0; asymmetric over the
 * range widened to include 0, {@code scale = (max - min) / (qmax - qmin)}, {@code zero = clamp(qmin
 * - round(min / scale))}; codes {@code clamp(round(x / scale) + zero)}, rounding half to even as
 * torch.round does. A group of zeros gets scale 1.
 */
public final class RtnQuantizer {

  private final int bits;
  private final boolean symmetric;
  private final int groupSize;

  /**
   * @param bits 4 or 8; 2 or 3 for evaluation (no exporter writes them)
   * @param symmetric true for zero-point-free codes
   * @param groupSize 0 for one scale per output channel, else 32, 64 or 128
   */
  public RtnQuantizer(int bits, boolean symmetric, int groupSize) {
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      throw new UnsupportedOperationException(
          "not supported yet: " + bits + "-bit codes (2, 3, 4 and 8 are)");
    }
    if (groupSize != 0 && groupSize != 32 && groupSize != 64 && groupSize != 128) {
      throw new IllegalArgumentException(
          "group size must be 0 (per channel), 32, 64 or 128, found " + groupSize);
    }
    this.bits = bits;
    this.symmetric = symmetric;
    this.groupSize = groupSize;
  }

  /** Quantizes row-major {@code w} of shape {@code rows x cols}. */
  public QuantizedTensor quantize(float[] w, int rows, int cols) {
    if ((long) rows * cols != w.length) {
      throw new IllegalArgumentException(
          "shape " + rows + "x" + cols + " does not match " + w.length + " values");
    }
    int g = groupSize == 0 ? cols : groupSize;
    if (cols % g != 0) {
      throw new IllegalArgumentException(
          "cols " + cols + " is not a multiple of the group size " + g);
    }
    int qmin = -(1 << (bits - 1));
    int qmax = (1 << (bits - 1)) - 1;
    int offset = 1 << (bits - 1);
    int groupsPerRow = cols / g;
    float[] scales = new float[rows * groupsPerRow];
    byte[] zeros = symmetric ? null : new byte[scales.length];
    int[] codes = new int[w.length];
    for (int r = 0; r < rows; r++) {
      for (int gi = 0; gi < groupsPerRow; gi++) {
        int start = r * cols + gi * g;
        float min = 0;
        float max = 0;
        for (int i = start; i < start + g; i++) {
          min = Math.min(min, w[i]);
          max = Math.max(max, w[i]);
        }
        float scale;
        int zero;
        if (symmetric) {
          float amax = Math.max(-min, max);
          scale = amax / ((qmax - qmin) / 2.0f);
          zero = 0;
        } else {
          scale = (max - min) / (qmax - qmin);
          zero = scale == 0 ? 0 : clamp(qmin - (int) Math.rint(min / scale), qmin, qmax);
        }
        if (scale == 0) {
          scale = 1;
        }
        int s = r * groupsPerRow + gi;
        scales[s] = scale;
        if (zeros != null) {
          zeros[s] = (byte) (zero + offset);
        }
        for (int i = start; i < start + g; i++) {
          int q = clamp((int) Math.rint(w[i] / scale) + zero, qmin, qmax);
          codes[i] = q + offset;
        }
      }
    }
    Granularity gran = groupSize == 0 ? Granularity.CHANNEL : Granularity.GROUP;
    return new QuantizedTensor(
        Format.INT, rows, cols, bits, gran, g, QuantizedTensor.pack(codes, bits), scales, zeros);
  }

  private static int clamp(int v, int lo, int hi) {
    return Math.max(lo, Math.min(hi, v));
  }
}
