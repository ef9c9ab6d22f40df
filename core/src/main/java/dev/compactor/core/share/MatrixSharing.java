package dev.compactor.core.share;

import java.util.ArrayList;
import java.util.List;

/**
 * Chooses which layers share one matrix, from the weights alone. For one linear kind (say {@code
 * mlp.up_proj}) across layers, a group of adjacent layers is replaced by its mean (the
 * least-squares best single matrix); its error is {@code sum_l ||W_l - mean||_F^2}, computed from
 * the layers' pairwise inner products ({@code sum_l <W_l, W_l> - |g|^-1 sum_{l,m} <W_l, W_m>}).
 * Groups start as single layers and the adjacent pair whose merge adds the least error relative to
 * the kind's total {@code sum_l ||W_l||^2}, per parameter saved, merges first, over all kinds
 * together, until the budget is met (the Subformer / MobiLLM habit of sharing neighbouring layers,
 * ordered here by measured similarity).
 */
public final class MatrixSharing {

  private MatrixSharing() {}

  /**
   * One linear kind's statistics: its matrix size and the Gram matrix {@code dots[l][m] = <W_l,
   * W_m>} of its layers' weights.
   */
  public record Kind(String linear, long size, double[][] dots) {

    /** Cosine similarity of layers {@code l} and {@code m}'s matrices. */
    public double cosine(int l, int m) {
      double d = Math.sqrt(dots[l][l] * dots[m][m]);
      return d == 0 ? 0 : dots[l][m] / d;
    }

    /** {@code sum ||W_l - mean||^2} over layers {@code [from, to)}. */
    double error(int from, int to) {
      double self = 0;
      double all = 0;
      for (int l = from; l < to; l++) {
        self += dots[l][l];
        for (int m = from; m < to; m++) {
          all += dots[l][m];
        }
      }
      return self - all / (to - from);
    }

    double energy() {
      double e = 0;
      for (int l = 0; l < dots.length; l++) {
        e += dots[l][l];
      }
      return e;
    }
  }

  /** A run of adjacent layers {@code [from, to)} sharing one matrix of {@code linear}. */
  public record Group(String linear, int from, int to, double relativeError) {
    public int size() {
      return to - from;
    }
  }

  /** The inner products of {@code ws} (one flattened matrix per layer). */
  public static double[][] dots(List<float[]> ws) {
    int n = ws.size();
    double[][] d = new double[n][n];
    for (int l = 0; l < n; l++) {
      for (int m = l; m < n; m++) {
        float[] a = ws.get(l);
        float[] b = ws.get(m);
        double acc = 0;
        for (int i = 0; i < a.length; i++) {
          acc += (double) a[i] * b[i];
        }
        d[l][m] = acc;
        d[m][l] = acc;
      }
    }
    return d;
  }

  /**
   * Groups for every kind such that the shared matrices take at most {@code budget} parameters
   * (each group stores one matrix of its kind's size), no group larger than {@code maxGroup}.
   *
   * @throws IllegalArgumentException if the budget cannot be met with groups of that size
   */
  public static List<Group> plan(List<Kind> kinds, long budget, int maxGroup) {
    if (maxGroup < 1) {
      throw new IllegalArgumentException("max group size must be >= 1, found " + maxGroup);
    }
    List<List<int[]>> groups = new ArrayList<>();
    long params = 0;
    for (Kind k : kinds) {
      List<int[]> g = new ArrayList<>();
      for (int l = 0; l < k.dots().length; l++) {
        g.add(new int[] {l, l + 1});
      }
      groups.add(g);
      params += k.size() * k.dots().length;
    }
    while (params > budget) {
      int bestKind = -1;
      int bestAt = -1;
      double best = Double.POSITIVE_INFINITY;
      for (int k = 0; k < kinds.size(); k++) {
        Kind kind = kinds.get(k);
        double energy = Math.max(kind.energy(), Double.MIN_VALUE);
        List<int[]> g = groups.get(k);
        for (int j = 0; j + 1 < g.size(); j++) {
          int[] a = g.get(j);
          int[] b = g.get(j + 1);
          if (b[1] - a[0] > maxGroup) {
            continue;
          }
          double added = kind.error(a[0], b[1]) - kind.error(a[0], a[1]) - kind.error(b[0], b[1]);
          double cost = added / energy / kind.size();
          if (cost < best) {
            best = cost;
            bestKind = k;
            bestAt = j;
          }
        }
      }
      if (bestKind < 0) {
        throw new IllegalArgumentException(
            "ratio: cannot keep only "
                + budget
                + " decoder-linear parameters with groups of at most "
                + maxGroup
                + " layers (reached "
                + params
                + "); raise --ratio or --max-group");
      }
      List<int[]> g = groups.get(bestKind);
      int[] merged = {g.get(bestAt)[0], g.get(bestAt + 1)[1]};
      g.set(bestAt, merged);
      g.remove(bestAt + 1);
      params -= kinds.get(bestKind).size();
    }
    List<Group> out = new ArrayList<>();
    for (int k = 0; k < kinds.size(); k++) {
      Kind kind = kinds.get(k);
      double energy = kind.energy();
      for (int[] g : groups.get(k)) {
        double own = 0;
        for (int l = g[0]; l < g[1]; l++) {
          own += kind.dots()[l][l];
        }
        out.add(
            new Group(
                kind.linear(),
                g[0],
                g[1],
                own == 0 || energy == 0 ? 0 : kind.error(g[0], g[1]) / own));
      }
    }
    return out;
  }

  /** The mean of {@code ws} (equal lengths). */
  public static float[] mean(List<float[]> ws) {
    int n = ws.get(0).length;
    float[] m = new float[n];
    for (int i = 0; i < n; i++) {
      double acc = 0;
      for (float[] w : ws) {
        acc += w[i];
      }
      m[i] = (float) (acc / ws.size());
    }
    return m;
  }
}
