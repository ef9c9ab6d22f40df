package dev.compactor.core.quant.codebook;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class WeightedKMeansTest {

  @Test
  void rowWithAtMostKDistinctValuesIsExact() {
    float[] row = {0.5f, -1.25f, 0.5f, 3f, -1.25f, 3f, 3f, 0.125f};
    WeightedKMeans.Result r = WeightedKMeans.fit(row, null, 4, 50);
    assertArrayEquals(new float[] {-1.25f, 0.125f, 0.5f, 3f}, r.centroids());
    assertEquals(0, r.cost());
    CodebookLinear q = CodebookQuantizer.quantize(row, null, 1, row.length, 2, 50, false);
    assertArrayEquals(row, q.dequantize());
  }

  @Test
  void fewerDistinctValuesThanCentroidsRepeatTheLast() {
    float[] row = {2f, 1f, 2f};
    assertArrayEquals(
        new float[] {1f, 2f, 2f, 2f}, WeightedKMeans.fit(row, null, 4, 50).centroids());
  }

  @Test
  void sensitivityPullsTheCentroid() {
    // one centroid: the weighted mean, (3*0 + 1*1) / 4
    WeightedKMeans.Result one = WeightedKMeans.fit(new float[] {0f, 1f}, new float[] {3, 1}, 1, 50);
    assertEquals(0.25f, one.centroids()[0], 1e-7f);
    // three values, two centroids: a heavy 10 keeps its own centroid; without weights too
    float[] x = {0f, 1f, 10f, 0.2f};
    float[] heavyOne = {1, 100, 1, 1};
    WeightedKMeans.Result w = WeightedKMeans.fit(x, heavyOne, 2, 50);
    assertEquals((0f + 100f + 0.2f) / 102f, w.centroids()[0], 1e-6f);
    assertEquals(10f, w.centroids()[1], 0);
    WeightedKMeans.Result u = WeightedKMeans.fit(x, null, 2, 50);
    assertEquals(0.4f, u.centroids()[0], 1e-6f);
    // a very sensitive outlier near the middle moves the split
    float[] y = {0f, 0.1f, 0.2f, 0.9f, 1f};
    float[] s = {1, 1, 1, 1, 1};
    float[] c0 = WeightedKMeans.fit(y, s, 2, 50).centroids();
    s[2] = 1000;
    float[] c1 = WeightedKMeans.fit(y, s, 2, 50).centroids();
    assertTrue(Math.abs(c1[0] - 0.2f) < Math.abs(c0[0] - 0.2f), "pulled toward the heavy 0.2");
  }

  @Test
  void zeroSensitivityRowFallsBackToPlainKMeans() {
    float[] x = {0f, 0.1f, 5f, 5.2f, 9f};
    assertArrayEquals(
        WeightedKMeans.fit(x, null, 2, 50).centroids(),
        WeightedKMeans.fit(x, new float[5], 2, 50).centroids());
  }

  @Test
  void isALocalOptimumNearTheBruteForceOneOnSmallRows() {
    Random rnd = new Random(11);
    double sumRatio = 0;
    int trials = 40;
    for (int t = 0; t < trials; t++) {
      int n = 8;
      int k = 3;
      float[] x = new float[n];
      float[] s = new float[n];
      for (int i = 0; i < n; i++) {
        x[i] = (float) rnd.nextGaussian();
        s[i] = t % 2 == 0 ? 1 : (float) Math.exp(rnd.nextGaussian());
      }
      double best = bruteForce(x, s, k);
      WeightedKMeans.Result r = WeightedKMeans.fit(x, s, k, 100);
      assertTrue(r.converged());
      double cost = cost(x, s, r.centroids());
      assertEquals(cost, r.cost(), 1e-6 * (1 + cost), "reported cost");
      assertTrue(cost >= best - 1e-6 * (1 + best), "beats the optimum: " + cost + " < " + best);
      assertFixedPoint(x, s, r.centroids());
      sumRatio += cost / best;
      assertEquals(best, WeightedKMeans.fit(x, s, k, 0, true).cost(), 1e-9 * (1 + best));
    }
    // Lloyd is a local method; on 8 points it misses the global optimum now and then
    assertTrue(sumRatio / trials < 1.2, "mean cost / optimum " + sumRatio / trials);
  }

  @Test
  void exactFitMatchesTheDynamicProgrammingReferenceAndLloydIsNotFarBehind() {
    Random rnd = new Random(7);
    double sumRatio = 0;
    int trials = 8;
    for (int t = 0; t < trials; t++) {
      int n = 256;
      int k = t < 4 ? 16 : 8;
      float[] x = new float[n];
      float[] s = new float[n];
      for (int i = 0; i < n; i++) {
        x[i] = 0.02f * (float) rnd.nextGaussian();
        s[i] = t % 2 == 0 ? 1 : (float) Math.exp(rnd.nextGaussian());
      }
      double optimum = optimalContiguous(x, s, k);
      WeightedKMeans.Result exact = WeightedKMeans.fit(x, s, k, 0, true);
      assertEquals(optimum, exact.cost(), 1e-9 * optimum, "exact cost, trial " + t);
      // float centroids cost a hair more than the double optimum
      assertEquals(optimum, cost(x, s, exact.centroids()), 1e-5 * optimum);
      assertFixedPoint(x, s, exact.centroids());
      WeightedKMeans.Result r = WeightedKMeans.fit(x, s, k, 100);
      double cost = cost(x, s, r.centroids());
      assertTrue(cost >= optimum * (1 - 1e-6), cost + " < optimum " + optimum);
      assertFixedPoint(x, s, r.centroids());
      sumRatio += cost / optimum;
    }
    // Lloyd stops in a local optimum: measured 1.32 x the optimum on these rows
    assertTrue(sumRatio / trials < 1.5, "Lloyd's mean cost / optimum " + sumRatio / trials);
  }

  /** Every centroid is the weighted mean of the values nearest to it (Lloyd's fixed point). */
  private static void assertFixedPoint(float[] x, float[] s, float[] c) {
    byte[] a = WeightedKMeans.assign(x, 0, x.length, c);
    for (int q = 0; q < c.length; q++) {
      double sw = 0;
      double swx = 0;
      int members = 0;
      for (int i = 0; i < x.length; i++) {
        if (a[i] == q) {
          sw += s[i];
          swx += s[i] * x[i];
          members++;
        }
      }
      if (members > 0 && sw > 0) {
        assertEquals(swx / sw, c[q], 1e-6 * (1 + Math.abs(c[q])), "centroid " + q);
      }
    }
  }

  /**
   * The exact optimum in one dimension by dynamic programming over the sorted values (an optimal
   * cluster is a run of them): {@code O(k n^2)}, a reference only.
   */
  private static double optimalContiguous(float[] values, float[] weights, int k) {
    int n = values.length;
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    java.util.Arrays.sort(order, (a, b) -> Float.compare(values[a], values[b]));
    double[] sw = new double[n + 1];
    double[] swx = new double[n + 1];
    double[] swxx = new double[n + 1];
    for (int i = 0; i < n; i++) {
      double x = values[order[i]];
      double w = weights[order[i]];
      sw[i + 1] = sw[i] + w;
      swx[i + 1] = swx[i] + w * x;
      swxx[i + 1] = swxx[i] + w * x * x;
    }
    double[] prev = new double[n + 1];
    java.util.Arrays.fill(prev, Double.MAX_VALUE);
    prev[0] = 0;
    for (int q = 1; q <= k; q++) {
      double[] cur = new double[n + 1];
      java.util.Arrays.fill(cur, Double.MAX_VALUE);
      cur[0] = 0;
      for (int j = 1; j <= n; j++) {
        for (int i = 0; i < j; i++) {
          if (prev[i] == Double.MAX_VALUE) {
            continue;
          }
          double w = sw[j] - sw[i];
          double m = (swx[j] - swx[i]) / w;
          double c = Math.max(0, swxx[j] - swxx[i] - 2 * m * (swx[j] - swx[i]) + m * m * w);
          cur[j] = Math.min(cur[j], prev[i] + c);
        }
      }
      prev = cur;
    }
    return prev[n];
  }

  @Test
  void wellSeparatedClustersAreFoundExactly() {
    Random rnd = new Random(3);
    float[] centers = {-4f, -1f, 2f, 6f};
    float[] x = new float[64];
    float[] s = new float[64];
    for (int i = 0; i < x.length; i++) {
      x[i] = centers[i % 4] + 0.1f * (float) rnd.nextGaussian();
      s[i] = 0.5f + rnd.nextFloat();
    }
    float[] c = WeightedKMeans.fit(x, s, 4, 100).centroids();
    for (int q = 0; q < 4; q++) {
      double sw = 0;
      double swx = 0;
      for (int i = q; i < x.length; i += 4) {
        sw += s[i];
        swx += s[i] * x[i];
      }
      assertEquals(swx / sw, c[q], 1e-5, "cluster " + q);
    }
  }

  @Test
  void assignTakesTheNearestCentroid() {
    float[] c = {-1f, 0f, 2f, 2f};
    byte[] codes =
        WeightedKMeans.assign(new float[] {-5f, -0.5f, -0.4f, 0.99f, 1.01f, 7f}, 0, 6, c);
    assertArrayEquals(new byte[] {0, 0, 1, 1, 2, 2}, codes);
  }

  @Test
  void refusesBadInput() {
    assertThrows(
        IllegalArgumentException.class,
        () -> WeightedKMeans.fit(new float[] {1f, Float.NaN}, null, 2, 10));
    assertThrows(
        IllegalArgumentException.class,
        () -> WeightedKMeans.fit(new float[] {1f, 2f}, new float[] {1f, -1f}, 2, 10));
    assertThrows(
        IllegalArgumentException.class,
        () -> WeightedKMeans.fit(new float[] {1f, 2f}, new float[] {1f}, 2, 10));
  }

  /** The optimum over every assignment of the n values to k clusters (k^n of them). */
  private static double bruteForce(float[] x, float[] s, int k) {
    int n = x.length;
    int[] a = new int[n];
    double best = Double.MAX_VALUE;
    long total = (long) Math.pow(k, n);
    for (long code = 0; code < total; code++) {
      long c = code;
      for (int i = 0; i < n; i++) {
        a[i] = (int) (c % k);
        c /= k;
      }
      double cost = 0;
      for (int q = 0; q < k; q++) {
        double sw = 0;
        double swx = 0;
        for (int i = 0; i < n; i++) {
          if (a[i] == q) {
            sw += s[i];
            swx += s[i] * x[i];
          }
        }
        if (sw == 0) {
          continue;
        }
        double m = swx / sw;
        for (int i = 0; i < n; i++) {
          if (a[i] == q) {
            cost += s[i] * (x[i] - m) * (x[i] - m);
          }
        }
      }
      best = Math.min(best, cost);
    }
    return best;
  }

  private static double cost(float[] x, float[] s, float[] c) {
    double cost = 0;
    for (int i = 0; i < x.length; i++) {
      double d = Double.MAX_VALUE;
      for (float v : c) {
        d = Math.min(d, Math.abs(x[i] - v));
      }
      cost += s[i] * d * d;
    }
    return cost;
  }
}
