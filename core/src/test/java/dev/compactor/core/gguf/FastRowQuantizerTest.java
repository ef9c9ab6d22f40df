package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The fast Q8_0/Q4_0 quantizers give exactly the reference bytes, single- and multi-threaded. */
class FastRowQuantizerTest {

  static float[] awkward(int n, long seed) {
    Random r = new Random(seed);
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      double scale = Math.exp(r.nextDouble() * 12 - 8);
      x[i] = (float) (r.nextGaussian() * scale);
      if (r.nextInt(50) == 0) {
        x[i] = (r.nextInt(64) - 32) * 0.5f; // exact halves hit the rounding ties
      }
    }
    for (int i = 0; i < 32; i++) {
      x[i] = 0; // an all-zero block
    }
    x[40] = Float.NaN; // non-finite blocks must give the reference's bytes too
    x[70] = Float.POSITIVE_INFINITY;
    x[100] = Float.NEGATIVE_INFINITY;
    x[101] = Float.NaN;
    x[130] = -0.0f;
    for (int i = 160; i < 192; i++) {
      x[i] = (i & 1) == 0 ? -0.0f : 0.0f; // only signed zeros
    }
    x[200] = 3f; // equal magnitudes of both signs: the first one wins
    x[201] = -3f;
    x[230] = -3f;
    x[231] = 3f;
    return x;
  }

  /**
   * Compares quantized rows block by block. A NaN block's fp16 scale is compared without its sign
   * bit: the reference takes {@code Math.abs} of a NaN, whose sign on OpenJDK 17 depends on whether
   * the interpreter or C2 ran it, so the reference does not agree with itself there.
   */
  static void assertSameBlocks(byte[] ref, byte[] got, int blockBytes, String what) {
    assertEquals(ref.length, got.length, what);
    for (int o = 0; o + blockBytes <= ref.length; o += blockBytes) {
      int h = (ref[o] & 0xff) | (ref[o + 1] & 0x7f) << 8;
      boolean nanScale = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
      for (int k = 0; k < blockBytes; k++) {
        int mask = nanScale && k == 1 ? 0x7f : 0xff;
        if ((ref[o + k] & mask) != (got[o + k] & mask)) {
          fail(
              what
                  + ": byte "
                  + (o + k)
                  + " (block "
                  + o / blockBytes
                  + ", offset "
                  + k
                  + ")"
                  + " is "
                  + got[o + k]
                  + ", reference "
                  + ref[o + k]);
        }
      }
    }
  }

  private static void assertSameRows(GgmlType t, byte[] expected, byte[] actual) {
    if (t == GgmlType.Q6_K) {
      assertArrayEquals(expected, actual, t.name());
    } else {
      assertSameBlocks(expected, actual, t == GgmlType.Q8_0 ? 34 : 18, t.name());
    }
  }

  @Test
  void q8RoundingKernelEqualsRoundfOnEveryFloatUpTo128() {
    // Every fp32 value in [2^-3, 128] (about 85M), both signs, through the loop Q8_0 uses; smaller
    // magnitudes round to 0 and are sampled. The kernel stores MAGIC + roundf(p).
    int n = 1 << 20;
    float[] p = new float[n];
    float[] one = new float[n];
    float[] f = new float[n];
    Arrays.fill(one, 1.0f);
    int from = Float.floatToRawIntBits(0.125f);
    int to = Float.floatToRawIntBits(128f);
    for (int sign = 0; sign < 2; sign++) {
      for (int start = from; start <= to; start += n) {
        int count = Math.min(n, to - start + 1);
        for (int i = 0; i < count; i++) {
          p[i] = Float.intBitsToFloat((start + i) | sign << 31);
        }
        FastRowQuantizer.roundToMagic(p, one, f, count);
        for (int i = 0; i < count; i++) {
          if (Float.floatToRawIntBits(f[i]) - 0x4B400000 != BlockQ8_0.roundf(p[i])) {
            fail("roundf differs at " + p[i] + ": " + (Float.floatToRawIntBits(f[i]) - 0x4B400000));
          }
        }
      }
    }
    Random r = new Random(7);
    for (int i = 0; i < n; i++) {
      p[i] = Float.intBitsToFloat(r.nextInt(from) | (r.nextBoolean() ? 0x80000000 : 0));
    }
    p[0] = 0.0f;
    p[1] = -0.0f;
    p[2] = Float.MIN_VALUE;
    FastRowQuantizer.roundToMagic(p, one, f, n);
    for (int i = 0; i < n; i++) {
      assertEquals(0x4B400000, Float.floatToRawIntBits(f[i]), "small value " + p[i]);
    }
  }

  @Test
  void q8_0MatchesReferenceBitForBit() {
    float[] x = awkward(32 * 4096, 1);
    byte[] ref = new byte[34 * 4096];
    byte[] fast = new byte[34 * 4096];
    BlockQ8_0.quantizeRowReference(x, 0, x.length, ref, 0);
    FastRowQuantizer.quantizeRowQ8_0(x, 0, x.length, fast, 0);
    assertSameBlocks(ref, fast, 34, "awkward");
  }

  interface RowQuantizer {
    void quantize(float[] x, int xOff, int n, byte[] y, int yOff);
  }

  @Test
  void q8_0AndQ4_0MatchReferenceAtManyScalesLengthsAndOffsets() {
    checkManyScales(34, BlockQ8_0::quantizeRowReference, FastRowQuantizer::quantizeRowQ8_0);
    checkManyScales(18, BlockQ4_0::quantizeRowReference, FastRowQuantizer::quantizeRowQ4_0);
    checkManyScales(18, BlockQ4_0::quantizeRowReference, FastRowQuantizer::quantizeRowQ4_0Scalar);
  }

  @Test
  void theVectorQ4_0PathMatchesTheReferenceWhicheverJdkRuns() {
    // FastRowQuantizer only routes Q4_0 to it on JDK 25+, so call it directly here
    org.junit.jupiter.api.Assumptions.assumeTrue(VectorQ4_0.USABLE, "no 8- or 16-lane fp32 SIMD");
    checkManyScales(18, BlockQ4_0::quantizeRowReference, VectorQ4_0::quantizeRow);
    assertQ4_0MatchesOnAwkwardRow(VectorQ4_0::quantizeRow, "awkward, vector path");
  }

  private static void checkManyScales(int blockBytes, RowQuantizer reference, RowQuantizer tested) {
    Random r = new Random(11);
    int[] lengths = {32, 96, 480, 512, 544, 1024, 1056, 4096};
    // 1e-41 and 1e-37: blocks whose 1/d overflows or whose values are subnormal (reference path);
    // 3e37: some values overflow to infinity (reference path too).
    double[] scales = {1e-41, 1e-37, 1e-20, 1e-3, 0.02, 1, 1e3, 1e30, 3e37};
    for (int n : lengths) {
      for (double scale : scales) {
        int xOff = r.nextInt(40);
        int yOff = r.nextInt(40);
        float[] x = new float[xOff + n + 7];
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) (r.nextGaussian() * scale * Math.exp(r.nextDouble() * 4 - 2));
        }
        int bytes = n / 32 * blockBytes;
        byte[] ref = new byte[yOff + bytes + 9];
        byte[] fast = new byte[ref.length];
        r.nextBytes(ref);
        System.arraycopy(
            ref, 0, fast, 0, ref.length); // bytes outside the row must stay as they are
        reference.quantize(x, xOff, n, ref, yOff);
        tested.quantize(x, xOff, n, fast, yOff);
        assertArrayEquals(ref, fast, blockBytes + "-byte blocks, n=" + n + " scale=" + scale);
      }
    }
  }

  @Test
  void q4_0TruncatesEveryBoundaryAndItsNeighboursLikeTheReference() {
    // max = -8 * 2^e gives d = 2^e and id = 2^-e exactly, so x = (k / 2 - 8.5) * 2^e makes x * id
    // + 8.5 land exactly on integers and halves; float neighbours land just beside them.
    Random r = new Random(6);
    int blocks = 3 * 34 * 8;
    float[] x = new float[32 * blocks];
    int b = 0;
    for (int e = -20; e <= 20; e += 20) {
      float unit = (float) Math.scalb(1.0, e);
      for (int k = 0; k < 34; k++) {
        for (int variant = 0; variant < 8; variant++, b++) {
          int base = 32 * b;
          x[base + r.nextInt(32)] = -8 * unit;
          for (int j = 0; j < 32; j++) {
            if (x[base + j] == 0) {
              float edge = Math.max(-8 * unit, Math.min(8 * unit, (k * 0.5f - 8.5f) * unit));
              int step = r.nextInt(3) - 1;
              x[base + j] = step == 0 ? edge : step < 0 ? Math.nextDown(edge) : Math.nextUp(edge);
              x[base + j] = Math.max(-8 * unit, x[base + j]);
            }
          }
        }
      }
    }
    byte[] ref = new byte[18 * blocks];
    byte[] fast = new byte[18 * blocks];
    BlockQ4_0.quantizeRowReference(x, 0, x.length, ref, 0);
    FastRowQuantizer.quantizeRowQ4_0(x, 0, x.length, fast, 0);
    assertArrayEquals(ref, fast);
  }

  @Test
  void q8_0RoundsEveryTieAndItsNeighboursLikeTheReference() {
    // A block whose largest magnitude is 127 * 2^e has d = 2^e and id = 2^-e exactly, so x = (k +
    // 0.5) * 2^e lands exactly on a tie; its float neighbours land just beside it.
    Random r = new Random(5);
    int blocks = 3 * 255 * 8;
    float[] x = new float[32 * blocks];
    int b = 0;
    for (int e = -20; e <= 20; e += 20) {
      float unit = (float) Math.scalb(1.0, e);
      for (int k = -127; k <= 127; k++) {
        for (int variant = 0; variant < 8; variant++, b++) {
          int base = 32 * b;
          x[base + r.nextInt(32)] = (r.nextBoolean() ? 127 : -127) * unit;
          for (int j = 0; j < 32; j++) {
            if (x[base + j] == 0) {
              float tie = (k + (k < 0 ? -0.5f : 0.5f)) * unit;
              tie = Math.max(-127 * unit, Math.min(127 * unit, tie));
              int step = r.nextInt(3) - 1;
              x[base + j] = step == 0 ? tie : step < 0 ? Math.nextDown(tie) : Math.nextUp(tie);
            }
          }
        }
      }
    }
    byte[] ref = new byte[34 * blocks];
    byte[] fast = new byte[34 * blocks];
    BlockQ8_0.quantizeRowReference(x, 0, x.length, ref, 0);
    FastRowQuantizer.quantizeRowQ8_0(x, 0, x.length, fast, 0);
    assertArrayEquals(ref, fast);
  }

  @Test
  void q4_0MatchesReferenceBitForBit() {
    assertQ4_0MatchesOnAwkwardRow(FastRowQuantizer::quantizeRowQ4_0, "awkward");
    assertQ4_0MatchesOnAwkwardRow(FastRowQuantizer::quantizeRowQ4_0Scalar, "awkward, scalar path");
  }

  private static void assertQ4_0MatchesOnAwkwardRow(RowQuantizer tested, String what) {
    float[] x = awkward(32 * 4096, 2);
    byte[] ref = new byte[18 * 4096];
    byte[] got = new byte[18 * 4096];
    BlockQ4_0.quantizeRowReference(x, 0, x.length, ref, 0);
    tested.quantize(x, 0, x.length, got, 0);
    assertSameBlocks(ref, got, 18, what);
  }

  @Test
  void offsetsAndThreadsDoNotChangeBytes() {
    int rows = 37;
    int cols = 512;
    float[] x = awkward(rows * cols, 3);
    for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q6_K}) {
      byte[] one = FastRowQuantizer.quantizeMatrix(t, x, rows, cols, null, 1);
      byte[] many = FastRowQuantizer.quantizeMatrix(t, x, rows, cols, null, 3);
      assertSameRows(t, one, many);
      byte[] rowByRow = new byte[one.length];
      int rb = (int) t.bytesFor(cols);
      for (int r = 0; r < rows; r++) {
        GgmlQuantizer.quantizeRow(t, x, r * cols, cols, rowByRow, r * rb, null);
      }
      assertSameRows(t, one, rowByRow);
    }
  }
}
