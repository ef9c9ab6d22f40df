package dev.compactor.core.quant;

import dev.compactor.core.quant.QuantizedTensor.Format;
import dev.compactor.core.quant.QuantizedTensor.Granularity;

/**
 * QLoRA's NormalFloat4: each block of consecutive weights (64 by default) is divided by its absmax
 * and every value is replaced by the nearest of 16 levels placed at quantiles of a normal
 * distribution, which suits normally distributed weights better than a uniform grid. Nearest is
 * decided by the midpoints between levels, a value exactly on a midpoint taking the lower level, as
 * bitsandbytes' {@code dQuantizeNF4} does.
 */
public final class Nf4 {

  /** The NF4 levels from the QLoRA paper / bitsandbytes, code 0..15. */
  static final float[] CODE_BOOK = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f
  };

  public static final int DEFAULT_BLOCK_SIZE = 64;

  private static final float[] MIDPOINTS = new float[15];

  static {
    for (int i = 0; i < 15; i++) {
      MIDPOINTS[i] = (CODE_BOOK[i] + CODE_BOOK[i + 1]) / 2;
    }
  }

  private Nf4() {}

  /** The level of code {@code code} (0..15). */
  public static float level(int code) {
    return CODE_BOOK[code];
  }

  /** The code of the level nearest to {@code x}, which should be in [-1, 1]. */
  public static int encode(float x) {
    int lo = 0;
    int hi = 15;
    while (lo < hi) { // first level whose upper midpoint is >= x
      int mid = (lo + hi) >>> 1;
      if (x > MIDPOINTS[mid]) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /** NF4 with absmax blocks of {@code blockSize} along each row (rows x cols, row-major). */
  public static QuantizedTensor quantize(float[] w, int rows, int cols, int blockSize) {
    if ((long) rows * cols != w.length) {
      throw new IllegalArgumentException(
          "shape " + rows + "x" + cols + " does not match " + w.length + " values");
    }
    if (blockSize <= 0 || cols % blockSize != 0) {
      throw new IllegalArgumentException(
          "cols " + cols + " is not a multiple of the NF4 block size " + blockSize);
    }
    float[] absmax = new float[w.length / blockSize];
    int[] codes = new int[w.length];
    for (int b = 0; b < absmax.length; b++) {
      int start = b * blockSize;
      float m = 0;
      for (int i = start; i < start + blockSize; i++) {
        m = Math.max(m, Math.abs(w[i]));
      }
      absmax[b] = m;
      float inv = m == 0 ? 0 : 1 / m;
      for (int i = start; i < start + blockSize; i++) {
        codes[i] = encode(w[i] * inv);
      }
    }
    return new QuantizedTensor(
        Format.NF4,
        rows,
        cols,
        4,
        Granularity.GROUP,
        blockSize,
        QuantizedTensor.pack(codes, 4),
        absmax,
        null);
  }

  /** NF4 with the default block of 64. */
  public static QuantizedTensor quantize(float[] w, int rows, int cols) {
    return quantize(w, rows, cols, DEFAULT_BLOCK_SIZE);
  }
}
