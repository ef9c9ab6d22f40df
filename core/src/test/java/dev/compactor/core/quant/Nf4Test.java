package dev.compactor.core.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** NF4 against a brute-force nearest-level reference. */
class Nf4Test {

  static int reference(float x) {
    int best = 0;
    for (int c = 1; c < 16; c++) {
      if (Math.abs(Nf4.level(c) - x) < Math.abs(Nf4.level(best) - x)) {
        best = c; // strict: a tie keeps the lower level, as bitsandbytes' midpoint test does
      }
    }
    return best;
  }

  @Test
  void codeBookIsTheQloraOne() {
    assertEquals(-1f, Nf4.level(0));
    assertEquals(0f, Nf4.level(7));
    assertEquals(1f, Nf4.level(15));
    assertEquals(0.07958029955625534f, Nf4.level(8));
    for (int c = 1; c < 16; c++) {
      assertTrue(Nf4.level(c) > Nf4.level(c - 1));
    }
  }

  @Test
  void encodePicksTheNearestLevel() {
    Random r = new Random(5);
    for (int i = 0; i < 20000; i++) {
      float x = (float) (r.nextDouble() * 2 - 1);
      assertEquals(reference(x), Nf4.encode(x), "x=" + x);
    }
    for (int c = 0; c < 16; c++) {
      assertEquals(c, Nf4.encode(Nf4.level(c)));
    }
  }

  @Test
  void blockwiseQuantizationMatchesAPlainReference() {
    Random r = new Random(6);
    int rows = 6;
    int cols = 192;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) r.nextGaussian();
    }
    QuantizedTensor q = Nf4.quantize(w, rows, cols);
    assertEquals(64, q.groupSize());
    assertEquals(rows * cols / 64, q.scales().length);
    assertEquals(rows * cols / 2, q.packedCodes().length);
    float[] back = q.dequantize();
    double err = 0;
    double ref = 0;
    for (int b = 0; b < w.length / 64; b++) {
      float absmax = 0;
      for (int i = b * 64; i < b * 64 + 64; i++) {
        absmax = Math.max(absmax, Math.abs(w[i]));
      }
      assertEquals(absmax, q.scales()[b]);
      for (int i = b * 64; i < b * 64 + 64; i++) {
        int code = reference(w[i] * (1 / absmax));
        assertEquals(code, q.code(i), "element " + i);
        assertEquals(Nf4.level(code) * absmax, back[i]);
        err += (w[i] - back[i]) * (double) (w[i] - back[i]);
        ref += w[i] * (double) w[i];
      }
    }
    // NF4 on Gaussian data with block 64 lands near 0.1 relative RMSE
    assertTrue(Math.sqrt(err / ref) < 0.12, "relative RMSE " + Math.sqrt(err / ref));
  }

  @Test
  void rejectsBadShapes() {
    assertThrows(IllegalArgumentException.class, () -> Nf4.quantize(new float[100], 1, 100));
    assertThrows(IllegalArgumentException.class, () -> Nf4.quantize(new float[64], 2, 64));
  }
}
