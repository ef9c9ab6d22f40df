package dev.compactor.core.gguf;

import dev.compactor.core.io.Fp16;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * Fast Q8_0 and Q4_0 row quantizers: the same arithmetic as {@link BlockQ8_0} and {@link BlockQ4_0}
 * (so the bytes are identical, which {@code FastRowQuantizerTest} checks) with the work rearranged
 * for the JIT: one pass to find the block max with the branch hoisted out, a reciprocal multiply,
 * round-half-away-from-zero by a biased truncation in double (exact for fp32 inputs) instead of
 * {@code Math.floor}, an inlined fp16 encode, and no allocation or bounds re-checks per block.
 * Matrices can be split over threads by rows.
 */
public final class FastRowQuantizer {

  private FastRowQuantizer() {}

  /**
   * {@code roundf} for {@code |v| <= 128} in fp32 only: {@code a + 0.49999997f} truncated equals
   * {@code floor(a + 0.5)} for every such {@code a >= 0} (adding exactly 0.5 would round 0.49999997
   * up to 1); the test compares this with the reference on every fp32 value near each tie.
   */
  static int roundHalfAway(float v) {
    // v + copysign(0.49999997f, v), truncated: IEEE addition is symmetric in sign, so this is
    // -(int)(|v| + 0.49999997f) for negative v, with no branch (5-10% less CPU per Q8_0 block
    // in a CPU-time microbenchmark on the shared 2-core machine).
    return (int) (v + Float.intBitsToFloat((Float.floatToRawIntBits(v) & 0x80000000) | 0x3EFFFFFF));
  }

  /**
   * The largest {@code |x|} of a block as the bits of a non-negative float: for finite floats the
   * order of {@code bits & 0x7fffffff} as ints is the order of their magnitudes, and an int max
   * reduction is what the JIT vectorizes (a float one with Java's NaN rules it does not).
   */
  private static int absMaxBits(float[] x, int b) {
    int m = 0;
    for (int j = b; j < b + 32; j++) {
      m = Math.max(m, Float.floatToRawIntBits(x[j]) & 0x7fffffff);
    }
    return m;
  }

  /** Q8_0 of {@code n} values (a multiple of 32) of {@code x} from {@code xOff} into {@code y}. */
  public static void quantizeRowQ8_0(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, BlockQ8_0.QK, x, xOff, y, yOff, BlockQ8_0.BLOCK_BYTES);
    int end = xOff + n;
    int out = yOff;
    for (int b = xOff; b < end; b += 32, out += 34) {
      int m = absMaxBits(x, b);
      if (m >= 0x7f800000) { // Inf or NaN: the reference's exact C comparison semantics decide
        BlockQ8_0.quantizeRowReference(x, b, 32, y, out);
        continue;
      }
      float d = Float.intBitsToFloat(m) / 127;
      float id = d != 0 ? 1.0f / d : 0.0f;
      short h = Fp16.fromFloat(d);
      y[out] = (byte) h;
      y[out + 1] = (byte) (h >> 8);
      int o = out + 2 - b;
      for (int j = b; j < b + 32; j++) {
        y[o + j] = (byte) roundHalfAway(x[j] * id);
      }
    }
  }

  /** Q4_0 of {@code n} values (a multiple of 32) of {@code x} from {@code xOff} into {@code y}. */
  public static void quantizeRowQ4_0(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, BlockQ4_0.QK, x, xOff, y, yOff, BlockQ4_0.BLOCK_BYTES);
    int end = xOff + n;
    int out = yOff;
    for (int b = xOff; b < end; b += 32, out += 18) {
      int m = absMaxBits(x, b);
      if (m >= 0x7f800000) {
        BlockQ4_0.quantizeRowReference(x, b, 32, y, out);
        continue;
      }
      // The reference keeps the first element of largest magnitude (strict "<" while scanning).
      float max = 0.0f;
      if (m != 0) {
        int j = b;
        while ((Float.floatToRawIntBits(x[j]) & 0x7fffffff) != m) {
          j++;
        }
        max = x[j];
      }
      float d = max / -8;
      float id = d != 0 ? 1.0f / d : 0.0f;
      short h = Fp16.fromFloat(d);
      y[out] = (byte) h;
      y[out + 1] = (byte) (h >> 8);
      for (int j = 0; j < 16; j++) {
        int lo = (int) (x[b + j] * id + 8.5f);
        int hi = (int) (x[b + 16 + j] * id + 8.5f);
        y[out + 2 + j] = (byte) (Math.min(15, lo) | (Math.min(15, hi) << 4));
      }
    }
  }

  /**
   * Quantizes a row-major {@code rows x cols} matrix to {@code type} (Q8_0 or Q4_0 fast paths; the
   * other types through {@link GgmlQuantizer}), splitting rows over {@code threads} threads of the
   * common pool when {@code threads > 1}.
   */
  public static byte[] quantizeMatrix(
      GgmlType type, float[] x, int rows, int cols, float[] importance, int threads) {
    long rowBytes = type.bytesFor(cols);
    long total = rowBytes * rows;
    if (total > Integer.MAX_VALUE - 16 || (long) rows * cols > x.length) {
      throw new IllegalArgumentException(
          "matrix " + rows + "x" + cols + " does not fit: " + x.length + " values given");
    }
    byte[] y = new byte[(int) total];
    IntStream range = IntStream.range(0, rows);
    Runnable work =
        () ->
            (threads > 1 ? range.parallel() : range)
                .forEach(
                    r -> quantizeRow(type, x, r * cols, cols, y, (int) (r * rowBytes), importance));
    if (threads > 1 && threads != ForkJoinPool.getCommonPoolParallelism()) {
      ForkJoinPool pool = new ForkJoinPool(threads);
      try {
        pool.submit(work).join();
      } finally {
        pool.shutdown();
      }
    } else {
      work.run();
    }
    return y;
  }

  private static void quantizeRow(
      GgmlType type, float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    switch (type) {
      case Q8_0 -> quantizeRowQ8_0(x, xOff, n, y, yOff);
      case Q4_0 -> quantizeRowQ4_0(x, xOff, n, y, yOff);
      default -> GgmlQuantizer.quantizeRow(type, x, xOff, n, y, yOff, importance);
    }
  }
}
