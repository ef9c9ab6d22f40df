package dev.compactor.core.prune.structured;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.prune.structured.StructuredSpec.Importance;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Both importances against plain-Java transcriptions of the papers' formulas on one small layer:
 * the down_proj input of a SiLU MLP computed in plain Java, and an attention output of 4 heads.
 */
class StructuredScoresTest {

  private static final int TOKENS = 37;

  /** silu(G h) * (U h) for random h, plain Java: [tokens, inter]. */
  private static float[] mlpActivation(Random r, int hidden, int inter) {
    float[] g = gaussian(r, inter * hidden, 0.5);
    float[] u = gaussian(r, inter * hidden, 0.5);
    float[] act = new float[TOKENS * inter];
    for (int t = 0; t < TOKENS; t++) {
      float[] h = gaussian(r, hidden, 1.0);
      for (int j = 0; j < inter; j++) {
        double gate = 0;
        double up = 0;
        for (int k = 0; k < hidden; k++) {
          gate += g[j * hidden + k] * h[k];
          up += u[j * hidden + k] * h[k];
        }
        act[t * inter + j] = (float) (gate / (1 + Math.exp(-gate)) * up);
      }
    }
    return act;
  }

  private static float[] gaussian(Random r, int n, double sd) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * sd);
    }
    return v;
  }

  /** Accumulates x in two uneven batches, as calibration does. */
  private static InputStats stats(float[] x, int cols, int group) {
    InputStats s = new InputStats(cols, group);
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      int first = 15;
      float[] a = java.util.Arrays.copyOfRange(x, 0, first * cols);
      float[] b = java.util.Arrays.copyOfRange(x, first * cols, x.length);
      s.accumulate(m.create(a, new Shape(first, cols)));
      s.accumulate(m.create(b, new Shape(TOKENS - first, cols)));
    }
    assertEquals(TOKENS, s.tokens());
    return s;
  }

  @Test
  void channelScoresMatchMinitronAndFlapFormulas() {
    Random r = new Random(3);
    int hidden = 6;
    int inter = 10;
    float[] x = mlpActivation(r, hidden, inter);
    float[] down = gaussian(r, hidden * inter, 0.7);
    InputStats s = stats(x, inter, 0);
    double[] activation = new double[inter];
    double[] fluctuation = new double[inter];
    for (int j = 0; j < inter; j++) {
      double sum = 0;
      double abs = 0;
      for (int t = 0; t < TOKENS; t++) {
        sum += x[t * inter + j];
        abs += Math.abs(x[t * inter + j]);
      }
      double mean = sum / TOKENS;
      double var = 0;
      for (int t = 0; t < TOKENS; t++) {
        double d = x[t * inter + j] - mean;
        var += d * d;
      }
      var /= TOKENS;
      double col = 0;
      for (int o = 0; o < hidden; o++) {
        col += down[o * inter + j] * down[o * inter + j];
      }
      activation[j] = abs / TOKENS;
      fluctuation[j] = var * col;
    }
    assertArrayEquals(
        activation, StructuredScores.channels(Importance.ACTIVATION, s, down, hidden), 1e-5);
    double[] f = StructuredScores.channels(Importance.FLUCTUATION, s, down, hidden);
    for (int j = 0; j < inter; j++) {
      assertEquals(fluctuation[j], f[j], 1e-5 * Math.max(1, fluctuation[j]), "channel " + j);
    }
  }

  @Test
  void headScoresMatchNormAndSummedFluctuation() {
    Random r = new Random(4);
    int heads = 4;
    int d = 3;
    int hidden = 5;
    int cols = heads * d;
    float[] x = gaussian(r, TOKENS * cols, 1.0);
    for (int t = 0; t < TOKENS; t++) {
      for (int j = 0; j < cols; j++) {
        x[t * cols + j] *= 1 + j / d; // heads of different sizes
      }
    }
    float[] o = gaussian(r, hidden * cols, 0.4);
    InputStats s = stats(x, cols, d);
    double[] norm = new double[heads];
    double[] fluct = new double[heads];
    for (int h = 0; h < heads; h++) {
      for (int t = 0; t < TOKENS; t++) {
        double sq = 0;
        for (int j = h * d; j < (h + 1) * d; j++) {
          sq += (double) x[t * cols + j] * x[t * cols + j];
        }
        norm[h] += Math.sqrt(sq) / TOKENS;
      }
      for (int j = h * d; j < (h + 1) * d; j++) {
        double mean = 0;
        for (int t = 0; t < TOKENS; t++) {
          mean += x[t * cols + j] / (double) TOKENS;
        }
        double var = 0;
        for (int t = 0; t < TOKENS; t++) {
          var += Math.pow(x[t * cols + j] - mean, 2) / TOKENS;
        }
        double col = 0;
        for (int k = 0; k < hidden; k++) {
          col += o[k * cols + j] * o[k * cols + j];
        }
        fluct[h] += var * col;
      }
    }
    assertArrayEquals(norm, StructuredScores.heads(Importance.ACTIVATION, s, o, hidden, d), 1e-5);
    assertArrayEquals(fluct, StructuredScores.heads(Importance.FLUCTUATION, s, o, hidden, d), 1e-4);
  }

  @Test
  void headPlansKeepGroupsConsistent() {
    double[] scores = {5, 1, 2, 9, 0.5, 0.7, 4, 3};
    // 2 KV heads of 4 query heads: group sums 17 and 8.2
    HeadPlan groups = HeadPlan.choose(scores, 2, HeadMode.KV_GROUPS, 1);
    assertArrayEquals(new int[] {0}, groups.keptKv());
    assertArrayEquals(new int[] {0, 1, 2, 3}, groups.keptQuery());
    HeadPlan query = HeadPlan.choose(scores, 2, HeadMode.QUERY_HEADS, 2);
    assertArrayEquals(new int[] {0, 1}, query.keptKv());
    assertArrayEquals(new int[] {0, 3, 6, 7}, query.keptQuery());
    assertArrayEquals(new int[] {1, 2, 4, 5}, HeadPlan.removed(query.keptQuery(), 8));
  }

  @Test
  void surgeryKeepsBlocksAndCompensatesTheLostMean() {
    // [2, 6] weight, blocks of 2 columns
    float[] w = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    assertArrayEquals(
        new float[] {1, 2, 5, 6, 7, 8, 11, 12},
        LayerSurgery.keepColumns(w, 2, 6, new int[] {0, 2}, 2));
    assertArrayEquals(
        new float[] {7, 8, 9, 10, 11, 12}, LayerSurgery.keepRows(w, 2, 6, new int[] {1}, 1));
    double[] mean = {0, 0, 1, -1, 0, 0};
    assertArrayEquals(
        new double[] {3 - 4, 9 - 10},
        LayerSurgery.lostMean(w, 2, 6, new int[] {1}, 2, mean),
        1e-12);
  }
}
