package dev.compactor.core.moe;

import java.util.Arrays;
import java.util.Random;

/**
 * K-means whose clusters all have exactly {@code n / k} points, as MoEfication splits an MLP into
 * equal experts. Each iteration assigns points greedily in order of increasing squared distance to
 * a centre: the closest (point, centre) pair whose point is still free and whose centre still has
 * room is taken next. Centres start by k-means++ from a seeded {@link Random} and are then the
 * means of their points; it stops when no assignment changes. Same input and seed, same result.
 */
public final class BalancedKMeans {

  private BalancedKMeans() {}

  /**
   * The cluster (0..k-1) of each of the {@code points} (all of one dimension); {@code k} must
   * divide their number.
   */
  public static int[] cluster(float[][] points, int k, int maxIterations, long seed) {
    int n = points.length;
    if (k < 1 || n == 0 || n % k != 0) {
      throw new IllegalArgumentException(
          "balanced k-means: expected k dividing the " + n + " points, found k " + k);
    }
    int dim = points[0].length;
    if (dim == 0) {
      throw new IllegalArgumentException("balanced k-means: points have no coordinates");
    }
    double[][] centres = initialCentres(points, k, new Random(seed));
    int[] assignment = new int[n];
    Arrays.fill(assignment, -1);
    for (int it = 0; it < Math.max(1, maxIterations); it++) {
      int[] next = assign(points, centres, n / k);
      boolean same = Arrays.equals(next, assignment);
      assignment = next;
      if (same) {
        break;
      }
      double[][] sums = new double[k][dim];
      for (int i = 0; i < n; i++) {
        double[] s = sums[assignment[i]];
        for (int d = 0; d < dim; d++) {
          s[d] += points[i][d];
        }
      }
      for (int c = 0; c < k; c++) {
        for (int d = 0; d < dim; d++) {
          sums[c][d] /= n / k;
        }
      }
      centres = sums;
    }
    return assignment;
  }

  /** Sum over points of the squared distance to the mean of their cluster. */
  public static double inertia(float[][] points, int[] assignment, int k) {
    int dim = points.length == 0 ? 0 : points[0].length;
    double[][] mean = new double[k][dim];
    int[] count = new int[k];
    for (int i = 0; i < points.length; i++) {
      count[assignment[i]]++;
      for (int d = 0; d < dim; d++) {
        mean[assignment[i]][d] += points[i][d];
      }
    }
    double total = 0;
    for (int i = 0; i < points.length; i++) {
      double[] m = mean[assignment[i]];
      for (int d = 0; d < dim; d++) {
        double diff = points[i][d] - m[d] / count[assignment[i]];
        total += diff * diff;
      }
    }
    return total;
  }

  private static int[] assign(float[][] points, double[][] centres, int capacity) {
    int n = points.length;
    int k = centres.length;
    // (distance, pair) packed in a long: non-negative float bits sort like the floats themselves.
    long[] pairs = new long[n * k];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < k; c++) {
        float d = (float) squaredDistance(points[i], centres[c]);
        pairs[i * k + c] = ((long) Float.floatToIntBits(d) << 32) | (i * k + c);
      }
    }
    Arrays.sort(pairs);
    int[] out = new int[n];
    Arrays.fill(out, -1);
    int[] room = new int[k];
    Arrays.fill(room, capacity);
    int left = n;
    for (int p = 0; p < pairs.length && left > 0; p++) {
      int pair = (int) pairs[p];
      int i = pair / k;
      int c = pair % k;
      if (out[i] < 0 && room[c] > 0) {
        out[i] = c;
        room[c]--;
        left--;
      }
    }
    return out;
  }

  private static double[][] initialCentres(float[][] points, int k, Random random) {
    int n = points.length;
    double[][] centres = new double[k][];
    centres[0] = toDouble(points[random.nextInt(n)]);
    double[] nearest = new double[n];
    Arrays.fill(nearest, Double.POSITIVE_INFINITY);
    for (int c = 1; c < k; c++) {
      double total = 0;
      for (int i = 0; i < n; i++) {
        nearest[i] = Math.min(nearest[i], squaredDistance(points[i], centres[c - 1]));
        total += nearest[i];
      }
      int pick = n - 1;
      if (total > 0) {
        double r = random.nextDouble() * total;
        for (int i = 0; i < n; i++) {
          r -= nearest[i];
          if (r <= 0) {
            pick = i;
            break;
          }
        }
      } else {
        pick = random.nextInt(n);
      }
      centres[c] = toDouble(points[pick]);
    }
    return centres;
  }

  private static double squaredDistance(float[] a, double[] b) {
    double s = 0;
    for (int d = 0; d < a.length; d++) {
      double diff = a[d] - b[d];
      s += diff * diff;
    }
    return s;
  }

  private static double[] toDouble(float[] a) {
    double[] out = new double[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = a[i];
    }
    return out;
  }
}
