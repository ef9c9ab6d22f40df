package dev.compactor.core.factorize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Plain and SVD-LLM truncation against independent PyTorch code, and the rank rules. */
class LowRankFactorizerTest {

  @Test
  void plainTruncationMatchesTorch() throws Exception {
    try (FactorizeGolden g = new FactorizeGolden()) {
      long[] shape = g.shape("plain.W");
      int out = (int) shape[0];
      int in = (int) shape[1];
      int r = g.rank();
      // ratio giving exactly rank r: floor(F out in / (out + in)) = r
      RankRule rule = RankRule.ratio((r + 0.5) * (out + in) / ((double) out * in));
      LowRankFactorizer.Factors f = LowRankFactorizer.plain(g.floats("plain.W"), out, in, rule);
      assertEquals(r, f.rank());
      assertClose(g.doubles("plain.P"), LowRankFactorizer.product(f.u(), f.v(), out, r, in), 1e-5);
    }
  }

  @Test
  void svdLlmWhiteningMatchesTorchOnOneLayer() throws Exception {
    try (FactorizeGolden g = new FactorizeGolden()) {
      long[] shape = g.shape("llm.W");
      int out = (int) shape[0];
      int in = (int) shape[1];
      int n = (int) g.shape("llm.X")[0];
      int r = g.rank();
      double[] gram = gram(g.floats("llm.X"), n, in);
      RankRule rule = RankRule.ratio((r + 0.5) * (out + in) / ((double) out * in));
      LowRankFactorizer.Factors f =
          LowRankFactorizer.whitened(g.floats("llm.W"), out, in, gram, rule);
      assertEquals(r, f.rank());
      assertEquals(0, f.damping());
      double[] s = g.doubles("llm.S");
      for (int j = 0; j < s.length; j++) {
        assertEquals(s[j], f.singularValues()[j], 1e-8 * s[0], "singular value of W S " + j);
      }
      assertClose(g.doubles("llm.P"), LowRankFactorizer.product(f.u(), f.v(), out, r, in), 1e-4);
    }
  }

  @Test
  void energyRuleKeepsTheSmallestRankReachingTheShare() {
    double[] s = {3, 2, 1, 0};
    // shares: 9/14, 13/14, 14/14
    assertEquals(1, RankRule.energy(0.6).rank(100, 100, s));
    assertEquals(2, RankRule.energy(0.7).rank(100, 100, s));
    assertEquals(3, RankRule.energy(1.0).rank(100, 100, s));
    // ratio: floor(0.5 * 100 * 50 / 150) = 16; a rank that saves nothing stays dense (0)
    assertEquals(16, RankRule.ratio(0.5).rank(100, 50, s));
    // a ratio always saves parameters unless the rank is clamped up to 1: then 1 x (1 + 3) >= 3
    assertEquals(0, RankRule.ratio(0.5).rank(1, 3, s));
    assertEquals(1, RankRule.ratio(0.001).rank(100, 50, s));
    assertThrows(IllegalArgumentException.class, () -> RankRule.ratio(1.0));
    assertThrows(IllegalArgumentException.class, () -> RankRule.energy(0));
  }

  @Test
  void singularGramIsDampedAndReported() {
    Random rnd = new Random(2);
    int out = 12;
    int in = 10;
    int n = 50;
    float[] x = new float[n * in];
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < in - 1; j++) { // the last input channel is dead
        x[t * in + j] = (float) rnd.nextGaussian();
      }
    }
    float[] w = new float[out * in];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian();
    }
    LowRankFactorizer.Factors f =
        LowRankFactorizer.whitened(w, out, in, gram(x, n, in), RankRule.ratio(0.5));
    assertTrue(f.damping() > 0, "damping " + f.damping());
    for (float v : f.v()) {
      assertTrue(Float.isFinite(v));
    }
  }

  @Test
  void exactLowRankMatrixIsReproducedAtItsRank() {
    Random rnd = new Random(4);
    int out = 30;
    int in = 20;
    int k = 3;
    float[] w = lowRank(rnd, out, in, k);
    LowRankFactorizer.Factors f = LowRankFactorizer.plain(w, out, in, RankRule.energy(1 - 1e-9));
    assertEquals(k, f.rank());
    float[] p = LowRankFactorizer.product(f.u(), f.v(), out, f.rank(), in);
    for (int i = 0; i < w.length; i++) {
      assertEquals(w[i], p[i], 1e-5);
    }
  }

  static float[] lowRank(Random rnd, int out, int in, int k) {
    double[] a = new double[out * k];
    double[] b = new double[k * in];
    for (int i = 0; i < a.length; i++) {
      a[i] = rnd.nextGaussian() * 0.2;
    }
    for (int i = 0; i < b.length; i++) {
      b[i] = rnd.nextGaussian() * 0.2;
    }
    float[] w = new float[out * in];
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        double acc = 0;
        for (int t = 0; t < k; t++) {
          acc += a[o * k + t] * b[t * in + i];
        }
        w[o * in + i] = (float) acc;
      }
    }
    return w;
  }

  static double[] gram(float[] x, int n, int in) {
    double[] g = new double[in * in];
    for (int t = 0; t < n; t++) {
      for (int i = 0; i < in; i++) {
        for (int j = 0; j < in; j++) {
          g[i * in + j] += (double) x[t * in + i] * x[t * in + j];
        }
      }
    }
    return g;
  }

  private static void assertClose(double[] want, float[] got, double tol) {
    double max = 0;
    for (double w : want) {
      max = Math.max(max, Math.abs(w));
    }
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got[i], tol * max, "element " + i);
    }
  }
}
