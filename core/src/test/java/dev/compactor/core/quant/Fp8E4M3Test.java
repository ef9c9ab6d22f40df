package dev.compactor.core.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Exhaustive and reference checks of the E4M3FN codec. */
class Fp8E4M3Test {

  @Test
  void all256CodesDecode() {
    int nan = 0;
    int finite = 0;
    for (int c = 0; c < 256; c++) {
      float v = Fp8E4M3.decode((byte) c);
      if (Float.isNaN(v)) {
        nan++;
        assertEquals(0x7f, c & 0x7f, "only S.1111.111 is NaN");
      } else {
        finite++;
        assertTrue(Math.abs(v) <= 448f);
      }
    }
    assertEquals(2, nan);
    assertEquals(254, finite);
    assertEquals(448f, Fp8E4M3.decode((byte) 0x7e));
    assertEquals(-448f, Fp8E4M3.decode((byte) 0xfe));
    assertEquals(1f, Fp8E4M3.decode((byte) 0x38));
    assertEquals(0x1p-6f, Fp8E4M3.decode((byte) 0x08));
    assertEquals(0x1p-9f, Fp8E4M3.decode((byte) 0x01));
    assertEquals(7 * 0x1p-9f, Fp8E4M3.decode((byte) 0x07));
    assertEquals(1.125f, Fp8E4M3.decode((byte) 0x39));
    assertEquals(-0.0f, Fp8E4M3.decode((byte) 0x80));
  }

  @Test
  void encodeInvertsDecodeForEveryFiniteCode() {
    for (int c = 0; c < 256; c++) {
      float v = Fp8E4M3.decode((byte) c);
      if (!Float.isNaN(v)) {
        assertEquals(c, Fp8E4M3.encode(v) & 0xff, "code 0x" + Integer.toHexString(c));
      }
    }
    assertEquals(Fp8E4M3.NAN, Fp8E4M3.encode(Float.NaN));
  }

  /** Brute force: the finite code of least distance, ties to the even code. */
  static int reference(float x) {
    if (Math.abs(x) >= 448f) {
      return x > 0 ? 0x7e : 0xfe;
    }
    int best = -1;
    double bestErr = Double.MAX_VALUE;
    for (int c = 0; c < 256; c++) {
      float v = Fp8E4M3.decode((byte) c);
      if (Float.isNaN(v) || (c >= 0x80) != (Float.floatToRawIntBits(x) < 0)) {
        continue;
      }
      double err = Math.abs((double) v - x);
      if (err < bestErr || (err == bestErr && (c & 1) == 0)) {
        best = c;
        bestErr = err;
      }
    }
    return best;
  }

  @Test
  void roundsToNearestEvenLikeBruteForce() {
    Random r = new Random(3);
    for (int i = 0; i < 20000; i++) {
      float x = (float) (r.nextGaussian() * Math.exp(r.nextDouble() * 16 - 10));
      assertEquals(reference(x), Fp8E4M3.encode(x) & 0xff, "x=" + x);
    }
    for (int c = 0; c < 0x7e; c++) { // every midpoint between neighbours, both signs
      float a = Fp8E4M3.decode((byte) c);
      float b = Fp8E4M3.decode((byte) (c + 1));
      float mid = (a + b) / 2;
      int even = (c & 1) == 0 ? c : c + 1;
      assertEquals(even, Fp8E4M3.encode(mid) & 0xff, "midpoint after 0x" + Integer.toHexString(c));
      assertEquals(even | 0x80, Fp8E4M3.encode(-mid) & 0xff);
      assertEquals(reference(Math.nextUp(mid)), Fp8E4M3.encode(Math.nextUp(mid)) & 0xff);
    }
  }

  @Test
  void saturatesInsteadOfOverflowing() {
    assertEquals(0x7e, Fp8E4M3.encode(464f) & 0xff);
    assertEquals(0x7e, Fp8E4M3.encode(1e30f) & 0xff);
    assertEquals(0xfe, Fp8E4M3.encode(Float.NEGATIVE_INFINITY) & 0xff);
    assertEquals(0x00, Fp8E4M3.encode(0x1p-11f) & 0xff); // below half the smallest subnormal
  }

  @Test
  void scaledQuantizationKeepsRelativeErrorWithinHalfAnUlp() {
    Random r = new Random(4);
    int rows = 8;
    int cols = 96;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() * (1 + i / cols));
    }
    for (boolean perChannel : new boolean[] {false, true}) {
      QuantizedTensor q = Fp8E4M3.quantize(w, rows, cols, perChannel);
      assertEquals(perChannel ? rows : 1, q.scales().length);
      float[] back = q.dequantize();
      for (int i = 0; i < w.length; i++) {
        float s = q.scales()[q.scaleIndex(i / cols, i % cols)];
        double tol = Math.max(Math.abs(w[i]) / 16, 0x1p-10 * s) * 1.0001;
        assertTrue(Math.abs(w[i] - back[i]) <= tol, i + ": " + w[i] + " vs " + back[i]);
      }
      // the largest value of row 0 (per channel) or of the tensor maps to exactly +-448
      int top = perChannel ? argmaxAbs(w, 0, cols) : argmaxAbs(w, 0, w.length);
      assertEquals(448f, Math.abs(Fp8E4M3.decode(q.packedCodes()[top])));
    }
  }

  static int argmaxAbs(float[] w, int from, int len) {
    int best = from;
    for (int i = from; i < from + len; i++) {
      if (Math.abs(w[i]) > Math.abs(w[best])) {
        best = i;
      }
    }
    return best;
  }
}
