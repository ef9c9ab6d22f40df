package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
    return x;
  }

  @Test
  void fp32RoundingTrickEqualsRoundfOnEveryFloatUpTo128() {
    // Every fp32 value in [0.25, 128] (75M of them), both signs; below 0.25 both give 0.
    for (int bits = Float.floatToRawIntBits(0.25f); bits <= Float.floatToRawIntBits(128f); bits++) {
      float v = Float.intBitsToFloat(bits);
      int expect = BlockQ8_0.roundf(v);
      if (FastRowQuantizer.roundHalfAway(v) != expect
          || FastRowQuantizer.roundHalfAway(-v) != -expect) {
        org.junit.jupiter.api.Assertions.fail("roundf differs at " + v);
      }
    }
    org.junit.jupiter.api.Assertions.assertEquals(0, FastRowQuantizer.roundHalfAway(0.2499f));
  }

  @Test
  void q8_0MatchesReferenceBitForBit() {
    float[] x = awkward(32 * 4096, 1);
    byte[] ref = new byte[34 * 4096];
    byte[] fast = new byte[34 * 4096];
    BlockQ8_0.quantizeRowReference(x, 0, x.length, ref, 0);
    FastRowQuantizer.quantizeRowQ8_0(x, 0, x.length, fast, 0);
    assertArrayEquals(ref, fast);
  }

  @Test
  void q4_0MatchesReferenceBitForBit() {
    float[] x = awkward(32 * 4096, 2);
    byte[] ref = new byte[18 * 4096];
    byte[] fast = new byte[18 * 4096];
    BlockQ4_0.quantizeRowReference(x, 0, x.length, ref, 0);
    FastRowQuantizer.quantizeRowQ4_0(x, 0, x.length, fast, 0);
    assertArrayEquals(ref, fast);
  }

  @Test
  void offsetsAndThreadsDoNotChangeBytes() {
    int rows = 37;
    int cols = 512;
    float[] x = awkward(rows * cols, 3);
    for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q6_K}) {
      byte[] one = FastRowQuantizer.quantizeMatrix(t, x, rows, cols, null, 1);
      byte[] many = FastRowQuantizer.quantizeMatrix(t, x, rows, cols, null, 3);
      assertArrayEquals(one, many, t.name());
      byte[] rowByRow = new byte[one.length];
      int rb = (int) t.bytesFor(cols);
      for (int r = 0; r < rows; r++) {
        GgmlQuantizer.quantizeRow(t, x, r * cols, cols, rowByRow, r * rb, null);
      }
      assertArrayEquals(one, rowByRow, t.name());
    }
  }
}
