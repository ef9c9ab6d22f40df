package dev.compactor.core.quant.codebook;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.quant.RtnQuantizer;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CodebookTableTest {

  @Test
  void fakeQuantizedRtnMatchesTheProjectsRtnAtFourBits() {
    Random rnd = new Random(4);
    int rows = 6;
    int cols = 64;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * 0.05f + (i % 7 == 0 ? 0.03f : 0);
    }
    float[] expected = new RtnQuantizer(4, false, 32).quantize(w, rows, cols).dequantize();
    float[] v = w.clone();
    CodebookTable.fakeQuantize(v, rows, cols, 4, 32);
    assertArrayEquals(expected, v, 1e-7f);
  }

  @Test
  void threeBitGridHasAtMostEightLevelsPerGroup() {
    Random rnd = new Random(9);
    float[] v = new float[2 * 32];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    CodebookTable.fakeQuantize(v, 2, 32, 3, 16);
    for (int g = 0; g < 4; g++) {
      long levels =
          java.util.stream.IntStream.range(g * 16, g * 16 + 16)
              .mapToObj(i -> v[i])
              .distinct()
              .count();
      assertTrue(levels <= 8, "group " + g + ": " + levels + " levels");
    }
    assertEquals(64, v.length);
  }
}
