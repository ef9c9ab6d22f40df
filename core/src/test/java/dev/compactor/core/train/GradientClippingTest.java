package dev.compactor.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Global-norm clipping against a plain-Java reference. */
class GradientClippingTest {

  @Test
  void clipsAllGradientsByOneGlobalFactor() {
    Random r = new Random(5);
    float[] g1 = new float[12];
    float[] g2 = new float[7];
    for (int i = 0; i < g1.length; i++) {
      g1[i] = (float) r.nextGaussian();
    }
    for (int i = 0; i < g2.length; i++) {
      g2[i] = (float) r.nextGaussian() * 3;
    }
    double sumSq = 0;
    for (float x : g1) {
      sumSq += x * x;
    }
    for (float x : g2) {
      sumSq += x * x;
    }
    double norm = Math.sqrt(sumSq);
    double max = norm / 4;
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray p1 = m.zeros(new Shape(3, 4));
      NDArray p2 = m.zeros(new Shape(7));
      p1.setRequiresGradient(true);
      p2.setRequiresGradient(true);
      AdamWTest.setGradient(m, p1, g1);
      AdamWTest.setGradient(m, p2, g2);
      assertEquals(norm, GradientClipping.clipGlobalNorm(List.of(p1, p2), max), 1e-4);
      double coef = max / (norm + 1e-6);
      float[] c1 = p1.getGradient().toFloatArray();
      float[] c2 = p2.getGradient().toFloatArray();
      for (int i = 0; i < g1.length; i++) {
        assertEquals(g1[i] * coef, c1[i], 1e-5);
      }
      for (int i = 0; i < g2.length; i++) {
        assertEquals(g2[i] * coef, c2[i], 1e-5);
      }
      // Below the limit nothing changes.
      GradientClipping.clipGlobalNorm(List.of(p1, p2), 1e9);
      assertEquals(c1[3], p1.getGradient().toFloatArray()[3]);
    }
  }
}
