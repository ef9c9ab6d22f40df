package dev.compactor.core.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** RTN against a plain per-element reference, packing pinned, error bounds per granularity. */
class RtnQuantizerTest {

  static float[] weights(int n, long seed) {
    Random r = new Random(seed);
    float[] w = new float[n];
    for (int i = 0; i < n; i++) {
      w[i] = (float) (r.nextGaussian() * 0.05 + (i % 7 == 0 ? 0.01 : 0));
    }
    return w;
  }

  /** Recomputes each element's group statistics from scratch (slow and obvious). */
  static float referenceValue(float[] w, int rows, int cols, int bits, boolean sym, int g, int i) {
    int row = i / cols;
    int start = row * cols + (i % cols) / g * g;
    float lo = 0;
    float hi = 0;
    for (int j = start; j < start + g; j++) {
      lo = Math.min(lo, w[j]);
      hi = Math.max(hi, w[j]);
    }
    int qmin = -(1 << (bits - 1));
    int qmax = (1 << (bits - 1)) - 1;
    float scale = sym ? Math.max(-lo, hi) / ((qmax - qmin) / 2.0f) : (hi - lo) / (qmax - qmin);
    int zero =
        sym || scale == 0 ? 0 : Math.max(qmin, Math.min(qmax, qmin - (int) Math.rint(lo / scale)));
    if (scale == 0) {
      scale = 1;
    }
    long q = Math.max(qmin, Math.min(qmax, (long) Math.rint(w[i] / scale) + zero));
    return (q - zero) * scale;
  }

  @Test
  void matchesThePlainReferenceForEveryConfiguration() {
    int rows = 5;
    int cols = 256;
    float[] w = weights(rows * cols, 1);
    for (int bits : new int[] {4, 8}) {
      for (boolean sym : new boolean[] {true, false}) {
        for (int group : new int[] {0, 32, 64, 128}) {
          QuantizedTensor q = new RtnQuantizer(bits, sym, group).quantize(w, rows, cols);
          int g = group == 0 ? cols : group;
          assertEquals(rows * cols / g, q.scales().length);
          assertEquals(!sym, q.asymmetric());
          float[] back = q.dequantize();
          for (int i = 0; i < w.length; i++) {
            float expect = referenceValue(w, rows, cols, bits, sym, g, i);
            assertEquals(expect, back[i], bits + "b sym=" + sym + " g=" + g + " element " + i);
            float s = q.scales()[q.scaleIndex(i / cols, i % cols)];
            assertTrue(Math.abs(w[i] - back[i]) <= s / 2 * 1.0001, "within half a step");
          }
        }
      }
    }
  }

  @Test
  void smallerGroupsAndMoreBitsGiveSmallerErrors() {
    int rows = 16;
    int cols = 512;
    float[] w = weights(rows * cols, 2);
    double perChannel = err(new RtnQuantizer(4, true, 0).quantize(w, rows, cols), w);
    double g128 = err(new RtnQuantizer(4, true, 128).quantize(w, rows, cols), w);
    double g32 = err(new RtnQuantizer(4, true, 32).quantize(w, rows, cols), w);
    double asym32 = err(new RtnQuantizer(4, false, 32).quantize(w, rows, cols), w);
    double int8 = err(new RtnQuantizer(8, true, 0).quantize(w, rows, cols), w);
    assertTrue(g32 < g128 && g128 < perChannel, g32 + " " + g128 + " " + perChannel);
    assertTrue(asym32 < g32 * 1.05, "asymmetric at least about as good: " + asym32 + " " + g32);
    assertTrue(int8 < perChannel / 8, int8 + " " + perChannel);
  }

  static double err(QuantizedTensor q, float[] w) {
    float[] b = q.dequantize();
    double e = 0;
    for (int i = 0; i < w.length; i++) {
      e += (w[i] - b[i]) * (double) (w[i] - b[i]);
    }
    return Math.sqrt(e / w.length);
  }

  @Test
  void packingPutsTheFirstElementInTheLowNibble() {
    float[] w = {-8, 7, 0, 1, -1, 2, 3, -3};
    // symmetric 4-bit per channel: amax 8 -> scale 8/7.5; codes = round(w/scale) + 8
    QuantizedTensor q = new RtnQuantizer(4, true, 0).quantize(w, 1, 8);
    int[] expect = new int[8];
    for (int i = 0; i < 8; i++) {
      expect[i] = (int) Math.max(-8, Math.min(7, Math.rint(w[i] / (8 / 7.5f)))) + 8;
      assertEquals(expect[i], q.code(i));
    }
    byte[] packed = new byte[4];
    for (int i = 0; i < 4; i++) {
      packed[i] = (byte) (expect[2 * i] | expect[2 * i + 1] << 4);
    }
    assertArrayEquals(packed, q.packedCodes());
  }

  @Test
  void twoAndThreeBitGridsFollowThePlainFormula() {
    java.util.Random rnd = new java.util.Random(11);
    float[] w = new float[3 * 64];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian();
    }
    for (int bits : new int[] {2, 3}) {
      QuantizedTensor q = new RtnQuantizer(bits, true, 32).quantize(w, 3, 64);
      float[] d = q.dequantize();
      int half = 1 << (bits - 1);
      for (int g = 0; g < 6; g++) {
        float amax = 0;
        for (int i = g * 32; i < (g + 1) * 32; i++) {
          amax = Math.max(amax, Math.abs(w[i]));
        }
        float scale = amax / ((2 * half - 1) / 2.0f);
        for (int i = g * 32; i < (g + 1) * 32; i++) {
          int code = (int) Math.max(-half, Math.min(half - 1, Math.rint(w[i] / scale)));
          assertEquals(code * scale, d[i], 0f, bits + "-bit at " + i);
        }
      }
    }
  }

  @Test
  void zeroGroupsAndBadArgumentsAreHandled() {
    QuantizedTensor q = new RtnQuantizer(4, false, 32).quantize(new float[64], 2, 32);
    assertArrayEquals(new float[64], q.dequantize());
    assertThrows(IllegalArgumentException.class, () -> new RtnQuantizer(4, true, 48));
    assertThrows(UnsupportedOperationException.class, () -> new RtnQuantizer(5, true, 32));
    assertThrows(
        IllegalArgumentException.class,
        () -> new RtnQuantizer(4, true, 128).quantize(new float[96], 1, 96));
  }
}
