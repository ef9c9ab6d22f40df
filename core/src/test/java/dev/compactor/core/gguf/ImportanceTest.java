package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Importance weights steer the k-quants; the imatrix collector matches a plain computation. */
class ImportanceTest {

  @Test
  void importanceLowersTheWeightedErrorOfQ4_KAndQ6_K() {
    int rows = 16;
    int cols = 1024;
    float[] x = BlockFormatTest.gaussian(rows * cols, 7);
    Random r = new Random(8);
    float[] imp = new float[cols];
    for (int c = 0; c < cols; c++) {
      imp[c] = (float) Math.exp(r.nextDouble() * 8 - 4); // spans ~3000x, as real imatrices do
    }
    for (GgmlType t : new GgmlType[] {GgmlType.Q4_K, GgmlType.Q6_K}) {
      double plain = weightedError(t, x, rows, cols, imp, null);
      double guided = weightedError(t, x, rows, cols, imp, imp);
      assertTrue(guided < 0.95 * plain, t + ": weighted error " + guided + " vs " + plain);
    }
  }

  static double weightedError(
      GgmlType t, float[] x, int rows, int cols, float[] weight, float[] importance) {
    byte[] q = GgmlQuantizer.quantize(t, x, rows, cols, importance);
    float[] back = GgmlQuantizer.dequantize(t, q, rows * cols);
    double e = 0;
    for (int i = 0; i < x.length; i++) {
      double d = x[i] - back[i];
      e += weight[i % cols] * d * d;
    }
    return e;
  }

  @Test
  void uniformImportanceGivesAValidButDifferentSearch() {
    float[] x = BlockFormatTest.gaussian(1024, 9);
    float[] ones = new float[1024];
    java.util.Arrays.fill(ones, 1f);
    double plain = BlockFormatTest.relRmse(GgmlType.Q4_K, x, 1, 1024);
    byte[] q = GgmlQuantizer.quantize(GgmlType.Q4_K, x, 1, 1024, ones);
    float[] back = GgmlQuantizer.dequantize(GgmlType.Q4_K, q, 1024);
    double err = 0;
    double ref = 0;
    for (int i = 0; i < x.length; i++) {
      err += (x[i] - back[i]) * (double) (x[i] - back[i]);
      ref += x[i] * (double) x[i];
    }
    assertTrue(Math.sqrt(err / ref) < plain * 1.1, "weighted path must be as good as plain");
  }

  @Test
  void imatrixCollectorMatchesPlainSumOfSquares() {
    Random r = new Random(11);
    int cols = 48;
    ImatrixCollector c = new ImatrixCollector(cols);
    double[] expect = new double[cols];
    int tokens = 0;
    for (int batch = 0; batch < 3; batch++) {
      float[][] acts = new float[5 + batch][cols];
      for (float[] row : acts) {
        for (int j = 0; j < cols; j++) {
          row[j] = (float) r.nextGaussian() * (j + 1);
          expect[j] += (double) row[j] * row[j];
        }
        tokens++;
      }
      c.accumulate(acts);
    }
    assertEquals(tokens, c.tokenCount());
    assertArrayEquals(expect, c.sumOfSquares(), 1e-9);
    float[] imp = c.importance();
    for (int j = 0; j < cols; j++) {
      assertEquals(expect[j] / tokens, imp[j], 1e-5 * expect[j] / tokens);
    }
  }

  @Test
  void collectorRejectsWrongWidthAndEmptyUse() {
    ImatrixCollector c = new ImatrixCollector(4);
    org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, c::importance);
    org.junit.jupiter.api.Assertions.assertThrows(
        IllegalArgumentException.class, () -> c.accumulate(new float[][] {{1, 2, 3}}));
  }
}
