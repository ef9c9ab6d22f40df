package dev.compactor.core.quant.codebook;

import java.util.Arrays;

/**
 * Weighted k-means of one row of weights (SqueezeLLM, Kim et al. 2023): {@code k} centroids
 * minimizing {@code sum_j s_j (w_j - c(w_j))^2}, where {@code s_j} is weight {@code j}'s
 * sensitivity. In one dimension the clusters of Lloyd's algorithm are runs of the sorted values
 * split at the midpoints between centroids, so each iteration costs {@code O(k log n)} on prefix
 * sums after one sort.
 *
 * <p>Deterministic: centroids start at the weighted quantiles {@code (i + 1/2) / k} (no random seed
 * needed); an empty cluster is re-seeded at the value with the largest weighted error; the
 * iterations stop when no run boundary moves or after {@code maxIterations}. A row with at most
 * {@code k} distinct values gets them as its centroids (exact). A row whose sensitivities are all
 * zero is clustered unweighted; within a cluster of zero total sensitivity the plain mean is used.
 */
public final class WeightedKMeans {

  /**
   * The fit of one row.
   *
   * @param centroids {@code k} centroids, ascending (repeated when the row has fewer distinct
   *     values)
   * @param iterations Lloyd iterations run
   * @param converged whether the boundaries stopped moving before the cap
   * @param cost the weighted squared error of the fit
   */
  public record Result(float[] centroids, int iterations, boolean converged, double cost) {}

  private WeightedKMeans() {}

  /**
   * Fits {@code k} centroids to {@code values} with sensitivities {@code weights} (same length,
   * non-negative, or null for all ones).
   */
  public static Result fit(float[] values, float[] weights, int k, int maxIterations) {
    return fit(values, weights, k, maxIterations, false);
  }

  /**
   * Like {@link #fit(float[], float[], int, int)}; {@code exact} solves the problem to its global
   * optimum by dynamic programming instead of running Lloyd ({@code maxIterations} is then unused).
   */
  public static Result fit(
      float[] values, float[] weights, int k, int maxIterations, boolean exact) {
    int n = values.length;
    if (k < 1 || n == 0) {
      throw new IllegalArgumentException("need k >= 1 and values, found k=" + k + ", n=" + n);
    }
    if (weights != null && weights.length != n) {
      throw new IllegalArgumentException(n + " values but " + weights.length + " sensitivities");
    }
    // sort values, carrying their index, through one primitive sort of (ordered bits, index) keys
    long[] keys = new long[n];
    for (int j = 0; j < n; j++) {
      float v = values[j];
      if (!Float.isFinite(v)) {
        throw new IllegalArgumentException("weight " + j + " is " + v);
      }
      int b = Float.floatToIntBits(v == 0f ? 0f : v);
      b ^= (b >> 31) & 0x7fffffff;
      keys[j] = ((long) b << 32) | j;
    }
    Arrays.sort(keys);
    double[] x = new double[n];
    double[] s = new double[n];
    double total = 0;
    for (int i = 0; i < n; i++) {
      int j = (int) keys[i];
      x[i] = values[j];
      double sj = weights == null ? 1 : weights[j];
      if (!(sj >= 0) || Double.isInfinite(sj)) {
        throw new IllegalArgumentException("sensitivity " + j + " is " + sj);
      }
      s[i] = sj;
      total += sj;
    }
    if (total <= 0) {
      Arrays.fill(s, 1);
      total = n;
    }
    Prefix p = new Prefix(x, s);

    // distinct values; at most k of them: exact
    int distinct = 1;
    for (int i = 1; i < n; i++) {
      if (x[i] != x[i - 1]) {
        distinct++;
      }
    }
    double[] c = new double[k];
    if (distinct <= k) {
      int at = 0;
      c[at++] = x[0];
      for (int i = 1; i < n; i++) {
        if (x[i] != x[i - 1]) {
          c[at++] = x[i];
        }
      }
      Arrays.fill(c, at, k, x[n - 1]);
      return new Result(toFloats(c), 0, true, 0);
    }

    if (exact) {
      return optimal(x, p, k);
    }
    // three deterministic starts (weighted quantiles, plain quantiles, evenly spaced); the best
    // local optimum wins: Lloyd from weighted quantiles alone stalls when a few weights dominate
    Result best = null;
    for (int start = 0; start < 3; start++) {
      double[] c0 = new double[k];
      if (start == 2) {
        for (int q = 0; q < k; q++) {
          c0[q] = x[0] + (x[n - 1] - x[0]) * (q + 0.5) / k;
        }
      } else {
        double[] by = start == 0 ? s : null;
        double all = start == 0 ? total : n;
        int i0 = 0;
        double cum = 0;
        for (int q = 0; q < k; q++) {
          double target = (q + 0.5) / k * all;
          while (i0 < n - 1 && cum + (by == null ? 1 : by[i0]) < target) {
            cum += by == null ? 1 : by[i0];
            i0++;
          }
          c0[q] = x[i0];
        }
      }
      Result r = lloyd(x, s, p, c0, maxIterations);
      if (best == null || r.cost() < best.cost()) {
        best = r;
      }
    }
    return best;
  }

  /**
   * The global optimum: in one dimension an optimal cluster is a run of the sorted values, so
   * {@code D[q][j] = min_i D[q-1][i] + C(i, j)} over run costs {@code C}; the best {@code i} is
   * monotone in {@code j} (the cost is concave Monge, Grønlund et al. 2017), so each row of the
   * table is filled by divide and conquer in {@code O(n log n)}: {@code O(k n log n)} in all.
   */
  private static Result optimal(double[] x, Prefix p, int k) {
    int n = x.length;
    double[] prev = new double[n + 1];
    double[] cur = new double[n + 1];
    int[][] from = new int[k + 1][n + 1];
    for (int j = 1; j <= n; j++) {
      prev[j] = p.cost(0, j, p.mean(0, j));
    }
    for (int q = 2; q <= k; q++) {
      Arrays.fill(cur, Double.POSITIVE_INFINITY);
      fill(p, prev, cur, from[q], q, n, q - 1, n - 1);
      double[] t = prev;
      prev = cur;
      cur = t;
    }
    double[] c = new double[k];
    int j = n;
    for (int q = k; q >= 1; q--) {
      int i = q == 1 ? 0 : from[q][j];
      c[q - 1] = p.mean(i, j);
      j = i;
    }
    return new Result(toFloats(c), 0, true, prev[n]);
  }

  /** {@code cur[j]} for {@code j} in {@code [jlo, jhi]}, its best split in {@code [ilo, ihi]}. */
  private static void fill(
      Prefix p, double[] prev, double[] cur, int[] from, int jlo, int jhi, int ilo, int ihi) {
    if (jlo > jhi) {
      return;
    }
    int j = (jlo + jhi) >>> 1;
    double best = Double.POSITIVE_INFINITY;
    int arg = ilo;
    for (int i = ilo; i <= Math.min(ihi, j - 1); i++) {
      double v = prev[i] + p.cost(i, j, p.mean(i, j));
      if (v < best) {
        best = v;
        arg = i;
      }
    }
    cur[j] = best;
    from[j] = arg;
    fill(p, prev, cur, from, jlo, j - 1, ilo, arg);
    fill(p, prev, cur, from, j + 1, jhi, arg, ihi);
  }

  private static Result lloyd(double[] x, double[] s, Prefix p, double[] c, int maxIterations) {
    int k = c.length;
    int[] bounds = new int[k + 1];
    int[] previous = null;
    int iterations = 0;
    boolean converged = false;
    while (iterations < maxIterations) {
      iterations++;
      Arrays.sort(c);
      runs(x, c, bounds);
      if (previous != null && Arrays.equals(previous, bounds)) {
        converged = true;
        break;
      }
      previous = bounds.clone();
      for (int q = 0; q < k; q++) {
        int lo = bounds[q];
        int hi = bounds[q + 1];
        if (hi > lo) {
          c[q] = p.mean(lo, hi);
        } else {
          c[q] = Double.NaN;
        }
      }
      reseedEmpty(x, s, c, bounds, p);
    }
    Arrays.sort(c);
    runs(x, c, bounds);
    double cost = 0;
    for (int q = 0; q < k; q++) {
      cost += p.cost(bounds[q], bounds[q + 1], c[q]);
    }
    return new Result(toFloats(c), iterations, converged, cost);
  }

  /**
   * The code of each value: the index of its nearest centroid in {@code centroids} (ascending), the
   * lower one on a tie.
   */
  public static byte[] assign(float[] values, int offset, int n, float[] centroids) {
    byte[] codes = new byte[n];
    for (int j = 0; j < n; j++) {
      codes[j] = (byte) nearest(centroids, values[offset + j]);
    }
    return codes;
  }

  static int nearest(float[] c, float v) {
    int lo = 0;
    int hi = c.length - 1;
    // first centroid >= v
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (c[mid] < v) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo > 0 && Math.abs(v - c[lo - 1]) <= Math.abs(c[lo] - v)) {
      return lo - 1;
    }
    return lo;
  }

  /** Run {@code q} of the sorted values is {@code [bounds[q], bounds[q+1])}: nearest to c[q]. */
  private static void runs(double[] x, double[] c, int[] bounds) {
    int k = c.length;
    bounds[0] = 0;
    bounds[k] = x.length;
    for (int q = 0; q < k - 1; q++) {
      double mid = 0.5 * (c[q] + c[q + 1]);
      // first index whose value is above the midpoint (ties go to the lower centroid)
      int lo = bounds[q];
      int hi = x.length;
      while (lo < hi) {
        int m = (lo + hi) >>> 1;
        if (x[m] <= mid) {
          lo = m + 1;
        } else {
          hi = m;
        }
      }
      bounds[q + 1] = lo;
    }
  }

  /**
   * Gives every empty cluster (NaN centroid) the value with the largest weighted error under the
   * current centroids, so no centroid is wasted while the row has values left to separate.
   */
  private static void reseedEmpty(double[] x, double[] s, double[] c, int[] bounds, Prefix p) {
    for (int q = 0; q < c.length; q++) {
      if (!Double.isNaN(c[q])) {
        continue;
      }
      double worst = -1;
      double at = x[0];
      for (int r = 0; r < c.length; r++) {
        if (Double.isNaN(c[r])) {
          continue;
        }
        for (int i = bounds[r]; i < bounds[r + 1]; i++) {
          double d = x[i] - c[r];
          double e = (s[i] > 0 ? s[i] : 1e-30) * d * d;
          if (e > worst && !contains(c, x[i])) {
            worst = e;
            at = x[i];
          }
        }
      }
      c[q] = worst < 0 ? x[x.length - 1] : at;
    }
  }

  private static boolean contains(double[] c, double v) {
    for (double d : c) {
      if (d == v) {
        return true;
      }
    }
    return false;
  }

  private static float[] toFloats(double[] c) {
    float[] f = new float[c.length];
    for (int i = 0; i < c.length; i++) {
      f[i] = (float) c[i];
    }
    Arrays.sort(f);
    return f;
  }

  /** Prefix sums of s, s*x, s*x^2 and counts/x over the sorted values. */
  private static final class Prefix {
    final double[] sw;
    final double[] swx;
    final double[] swxx;
    final double[] sx;

    Prefix(double[] x, double[] s) {
      int n = x.length;
      sw = new double[n + 1];
      swx = new double[n + 1];
      swxx = new double[n + 1];
      sx = new double[n + 1];
      for (int i = 0; i < n; i++) {
        sw[i + 1] = sw[i] + s[i];
        swx[i + 1] = swx[i] + s[i] * x[i];
        swxx[i + 1] = swxx[i] + s[i] * x[i] * x[i];
        sx[i + 1] = sx[i] + x[i];
      }
    }

    double mean(int lo, int hi) {
      double w = sw[hi] - sw[lo];
      if (w > 0) {
        return (swx[hi] - swx[lo]) / w;
      }
      return (sx[hi] - sx[lo]) / (hi - lo);
    }

    double cost(int lo, int hi, double c) {
      if (hi <= lo) {
        return 0;
      }
      double w = sw[hi] - sw[lo];
      double v = (swxx[hi] - swxx[lo]) - 2 * c * (swx[hi] - swx[lo]) + c * c * w;
      return Math.max(0, v);
    }
  }
}
