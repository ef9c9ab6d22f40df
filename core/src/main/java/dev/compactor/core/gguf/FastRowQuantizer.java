package dev.compactor.core.gguf;

import dev.compactor.core.io.Fp16;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * Fast Q8_0 and Q4_0 row quantizers: the same arithmetic as {@link BlockQ8_0} and {@link BlockQ4_0}
 * (so the bytes are identical, which {@code FastRowQuantizerTest} checks) with the work rearranged
 * for OpenJDK 17's C2 compiler. Matrices can be split over threads by rows.
 *
 * <p>Q8_0 works on chunks of {@value #CHUNK} values in per-thread scratch arrays, in four passes:
 * the block maxima (scalar), the scales (scalar, one per block, broadcast into a per-value scale
 * array), the rounding (one long branch-free float loop that C2 turns into SIMD code), and the byte
 * output. C2 17 only vectorizes simple loops in which every array is indexed by the same {@code j}
 * (no offsets, no float/int conversions, no narrowing stores), which is why the input is copied to
 * a scratch array first and why the scale is an array rather than a per-block constant. On the
 * shared 2-core test machine this is about 1.4x the previous per-block code for a row that is in
 * the L1 cache (as in the chunked export) and about 1.06x on a 64 MB matrix, where memory traffic
 * dominates (see {@code BlockQuantizerBench}). Blocks with an infinite or NaN value, and blocks so
 * small that {@code 1/d} overflows, are handed to the reference in both formats.
 */
public final class FastRowQuantizer {

  /** Values per scratch chunk: large enough for long SIMD loops, small enough to stay in L1. */
  static final int CHUNK = 1024;

  /** 1.5 * 2^23: {@code v + MAGIC} rounds {@code v} to an integer and leaves it in the low bits. */
  private static final float MAGIC = 12582912f;

  /** 2^24 - 1, exactly representable: see {@link #roundToMagic}. */
  private static final float TIE_OFFSET = 16777215f;

  private static final VarHandle FLOAT_LE =
      MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);

  /**
   * Q4_0 goes through {@link VectorQ4_0} on JDK 25 or later when the JVM has the {@code
   * jdk.incubator.vector} module ({@code --add-modules jdk.incubator.vector}, as the launcher, the
   * workers and the tests give it) and the CPU has 8 or 16 fp32 lanes; else through the scalar loop
   * below. On JDK 17 the same vector code ran at 0.43x the plain reference on a cached row (its C2
   * does not compile the Vector API's lane compares and conversions to single instructions), on JDK
   * 25 at 3.6x ({@code BlockQuantizerBench 1 4096}); JDK 18..24 were not measured.
   */
  static final boolean VECTOR_Q4_0 =
      Runtime.version().feature() >= 25
          && ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
          && VectorQ4_0.USABLE;

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  /** Per-thread work arrays for one chunk. */
  private static final class Scratch {
    final float[] x = new float[CHUNK];
    final float[] scale = new float[CHUNK];
    final float[] rounded = new float[CHUNK];
    final int[] amax = new int[CHUNK / 32];
    final short[] header = new short[CHUNK / 32];
  }

  private FastRowQuantizer() {}

  /**
   * The largest {@code |x|} of a block as the bits of a non-negative float: for finite floats the
   * order of {@code bits & 0x7fffffff} as ints is the order of their magnitudes. Four running
   * maxima instead of one break the dependency chain of the compare-and-move (about 1.7x faster).
   */
  static int absMaxBits(float[] x, int b) {
    int m0 = 0;
    int m1 = 0;
    int m2 = 0;
    int m3 = 0;
    for (int j = b; j < b + 32; j += 4) {
      m0 = Math.max(m0, Float.floatToRawIntBits(x[j]) & 0x7fffffff);
      m1 = Math.max(m1, Float.floatToRawIntBits(x[j + 1]) & 0x7fffffff);
      m2 = Math.max(m2, Float.floatToRawIntBits(x[j + 2]) & 0x7fffffff);
      m3 = Math.max(m3, Float.floatToRawIntBits(x[j + 3]) & 0x7fffffff);
    }
    return Math.max(Math.max(m0, m1), Math.max(m2, m3));
  }

  /**
   * {@code f[j] = MAGIC + roundf(x[j] * scale[j])} for {@code |x[j] * scale[j]| < 2^22}, so the low
   * byte of {@code f[j]}'s bits is the Q8_0 quant. Every step is exact, and there is no branch, so
   * C2 vectorizes the loop:
   *
   * <ul>
   *   <li>{@code t = p + MAGIC} rounds {@code p} to the nearest integer, ties to even; {@code r = t
   *       - MAGIC} and {@code g = p - r} (in [-0.5, 0.5]) are exact.
   *   <li>{@code roundf} differs only on a tie that went toward zero, i.e. when {@code ga = |p| -
   *       |r|} (exact, = ±g) is exactly 0.5; then the answer is {@code r + 2g}.
   *   <li>Below 0.5, {@code ga} is at most {@code 0.5 - 2^-25} (|p| in [0.25, 0.5) has 2^-25 steps,
   *       larger |p| coarser ones), so {@code w = ga * 2^25 - (2^24 - 1)} is 1 on such a tie and
   *       {@code <= 0} otherwise, and {@code w + |w|} is exactly 2 or 0.
   *   <li>{@code t + g * (w + |w|)} adds ±1 on exactly those ties; integers this small are exact.
   * </ul>
   *
   * {@code FastRowQuantizerTest} checks this against {@link BlockQ8_0#roundf} for every float of
   * magnitude 1/8 to 128, both signs, and a sample of smaller ones.
   */
  static void roundToMagic(float[] x, float[] scale, float[] f, int n) {
    for (int j = 0; j < n; j++) {
      float p = x[j] * scale[j];
      float t = p + MAGIC;
      float r = t - MAGIC;
      float g = p - r;
      float w = (Math.abs(p) - Math.abs(r)) * 0x1p25f - TIE_OFFSET;
      f[j] = t + g * (w + Math.abs(w));
    }
  }

  private static void storeQuants(float[] rounded, int j, byte[] y, int o, int count) {
    for (int k = 0; k < count; k++) {
      FLOAT_LE.set(y, o + k, rounded[j + k]);
    }
  }

  /** Q8_0 of {@code n} values (a multiple of 32) of {@code x} from {@code xOff} into {@code y}. */
  public static void quantizeRowQ8_0(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, BlockQ8_0.QK, x, xOff, y, yOff, BlockQ8_0.BLOCK_BYTES);
    Scratch s = SCRATCH.get();
    for (int c = 0; c < n; c += CHUNK) {
      int len = Math.min(CHUNK, n - c);
      quantizeChunkQ8_0(s, x, xOff + c, len, y, yOff + c / 32 * 34, c + len == n);
    }
  }

  private static void quantizeChunkQ8_0(
      Scratch s, float[] x, int xOff, int len, byte[] y, int yOff, boolean rowEnd) {
    int nb = len / 32;
    System.arraycopy(x, xOff, s.x, 0, len);
    for (int i = 0; i < nb; i++) {
      s.amax[i] = absMaxBits(s.x, 32 * i);
    }
    boolean special = false;
    for (int i = 0; i < nb; i++) {
      int m = s.amax[i];
      float d = Float.intBitsToFloat(m) / 127;
      float id = d != 0 ? 1.0f / d : 0.0f;
      // Inf/NaN blocks, and blocks so tiny that 1/d overflows, go to the reference below (its C
      // comparison and conversion semantics decide their bytes); the scale 0 keeps them harmless.
      if (m >= 0x7f800000 || id == Float.POSITIVE_INFINITY) {
        special = true;
        s.amax[i] = -1;
        id = 0;
      }
      s.header[i] = Fp16.fromFloat(d);
      Arrays.fill(s.scale, 32 * i, 32 * i + 32, id);
    }
    roundToMagic(s.x, s.scale, s.rounded, len);
    // Each quant is the low byte of a little-endian float store; the other three bytes land on the
    // next quants (or the next block's header), which are written afterwards. Only the row's very
    // last three quants are stored as single bytes, so nothing outside the row is touched.
    int full = rowEnd ? nb - 1 : nb;
    for (int j = 0, o = yOff + 2; j < 32 * full; j += 32, o += 34) {
      storeQuants(s.rounded, j, y, o, 32);
    }
    if (rowEnd) {
      int j = 32 * full;
      int o = yOff + 34 * full + 2;
      storeQuants(s.rounded, j, y, o, 29);
      for (int k = 29; k < 32; k++) {
        y[o + k] = (byte) Float.floatToRawIntBits(s.rounded[j + k]);
      }
    }
    for (int i = 0, o = yOff; i < nb; i++, o += 34) {
      short h = s.header[i];
      y[o] = (byte) h;
      y[o + 1] = (byte) (h >> 8);
    }
    if (special) {
      for (int i = 0; i < nb; i++) {
        if (s.amax[i] == -1) {
          BlockQ8_0.quantizeRowReference(x, xOff + 32 * i, 32, y, yOff + 34 * i);
        }
      }
    }
  }

  /** Q4_0 of {@code n} values (a multiple of 32) of {@code x} from {@code xOff} into {@code y}. */
  public static void quantizeRowQ4_0(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, BlockQ4_0.QK, x, xOff, y, yOff, BlockQ4_0.BLOCK_BYTES);
    if (VECTOR_Q4_0) {
      VectorQ4_0.quantizeRow(x, xOff, n, y, yOff);
      return;
    }
    quantizeRowQ4_0Scalar(x, xOff, n, y, yOff);
  }

  /** {@link #quantizeRowQ4_0} without the Vector API (what runs when the module is absent). */
  static void quantizeRowQ4_0Scalar(float[] x, int xOff, int n, byte[] y, int yOff) {
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
      float id = q4_0Header(max, x, b, y, out);
      if (Float.isNaN(id)) {
        continue;
      }
      for (int j = 0; j < 16; j++) {
        int lo = (int) (x[b + j] * id + 8.5f);
        int hi = (int) (x[b + 16 + j] * id + 8.5f);
        y[out + 2 + j] = (byte) (Math.min(15, lo) | (Math.min(15, hi) << 4));
      }
    }
  }

  /**
   * Writes the fp16 scale {@code d = max / -8} of the Q4_0 block at {@code x[b..b + 32)} (whose
   * first value of largest magnitude is {@code max}) to {@code y[out..out + 2)} and returns {@code
   * 1/d}, or NaN after handing the block to the reference when {@code 1/d} overflows (so tiny a
   * block that the reference's (byte) cast of the saturated int conversion decides the nibbles; a
   * test caught this path differing).
   */
  static float q4_0Header(float max, float[] x, int b, byte[] y, int out) {
    float d = max / -8;
    float id = d != 0 ? 1.0f / d : 0.0f;
    if (Float.isInfinite(id)) {
      BlockQ4_0.quantizeRowReference(x, b, 32, y, out);
      return Float.NaN;
    }
    short h = Fp16.fromFloat(d);
    y[out] = (byte) h;
    y[out + 1] = (byte) (h >> 8);
    return id;
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
