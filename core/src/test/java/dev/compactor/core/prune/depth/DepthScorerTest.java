package dev.compactor.core.prune.depth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Block influence and angular distance against a plain-Java reference on constructed hidden states,
 * and the choice of layers from known scores.
 */
class DepthScorerTest {

  private static final int LAYERS = 5;
  private static final int BATCHES = 2;
  private static final int BATCH = 3;
  private static final int SEQ = 4;
  private static final int HIDDEN = 8;

  /** h[j][b][k][t][c]: state j, batch b, window k, position t, channel c. */
  private static float[][][][][] states(long seed) {
    Random r = new Random(seed);
    float[][][][][] h = new float[LAYERS + 1][BATCHES][BATCH][SEQ][HIDDEN];
    for (int b = 0; b < BATCHES; b++) {
      for (int k = 0; k < BATCH; k++) {
        for (int t = 0; t < SEQ; t++) {
          for (int c = 0; c < HIDDEN; c++) {
            h[0][b][k][t][c] = (float) r.nextGaussian();
          }
          for (int j = 1; j <= LAYERS; j++) {
            for (int c = 0; c < HIDDEN; c++) {
              // a residual stream: each layer adds an update of its own size
              h[j][b][k][t][c] = h[j - 1][b][k][t][c] + (float) (0.3 * j * r.nextGaussian());
            }
          }
          // one vector orthogonal-ish and one pair of opposite vectors, to reach cos < 0
          if (k == 0 && t == 1) {
            for (int c = 0; c < HIDDEN; c++) {
              h[3][b][k][t][c] = -h[2][b][k][t][c];
            }
          }
        }
      }
    }
    return h;
  }

  private static double cos(float[] a, float[] b) {
    double dot = 0;
    double aa = 0;
    double bb = 0;
    for (int c = 0; c < a.length; c++) {
      dot += (double) a[c] * b[c];
      aa += (double) a[c] * a[c];
      bb += (double) b[c] * b[c];
    }
    return Math.max(-1, Math.min(1, dot / Math.sqrt(aa * bb)));
  }

  /** mean over the chosen positions of f(cos(h_l, h_{l+n})). */
  private static double reference(
      float[][][][][] h, int l, int n, boolean angle, TokenPositions positions) {
    double sum = 0;
    int count = 0;
    for (int b = 0; b < BATCHES; b++) {
      for (int k = 0; k < BATCH; k++) {
        for (int t = positions == TokenPositions.LAST ? SEQ - 1 : 0; t < SEQ; t++) {
          double c = cos(h[l][b][k][t], h[l + n][b][k][t]);
          sum += angle ? Math.acos(c) / Math.PI : c;
          count++;
        }
      }
    }
    return sum / count;
  }

  private static DepthScores accumulate(float[][][][][] h, int maxBlock, TokenPositions positions) {
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      List<List<NDArray>> all = new ArrayList<>();
      for (float[][][][] state : h) {
        List<NDArray> batches = new ArrayList<>();
        for (float[][][] batch : state) {
          float[] flat = new float[BATCH * SEQ * HIDDEN];
          int at = 0;
          for (float[][] window : batch) {
            for (float[] vector : window) {
              System.arraycopy(vector, 0, flat, at, HIDDEN);
              at += HIDDEN;
            }
          }
          batches.add(m.create(flat, new Shape(BATCH, SEQ, HIDDEN)));
        }
        all.add(batches);
      }
      DepthScorer.Accumulator acc = new DepthScorer.Accumulator(LAYERS, maxBlock, positions);
      for (int j = 1; j <= LAYERS; j++) {
        acc.add(all.subList(Math.max(0, j - maxBlock), j), all.get(j));
      }
      return acc.result();
    }
  }

  @Test
  void blockInfluenceAndAngularDistanceMatchThePlainJavaReference() {
    float[][][][][] h = states(42);
    for (TokenPositions positions : TokenPositions.values()) {
      DepthScores s = accumulate(h, 3, positions);
      long vectors = (long) BATCHES * BATCH * (positions == TokenPositions.LAST ? 1 : SEQ);
      assertEquals(vectors, s.vectors());
      for (int i = 0; i < LAYERS; i++) {
        assertEquals(
            1 - reference(h, i, 1, false, positions), s.blockInfluence()[i], 1e-6, "BI " + i);
      }
      for (int n = 1; n <= 3; n++) {
        for (int l = 0; l + n <= LAYERS; l++) {
          assertEquals(
              reference(h, l, n, true, positions),
              s.angular(l, n),
              2e-6,
              positions + " d(" + l + ", " + n + ")");
        }
      }
    }
    // the flipped vector at layer 2 -> 3 pushes that layer's cos below zero for one token
    DepthScores all = accumulate(h, 1, TokenPositions.ALL);
    assertTrue(all.blockInfluence()[2] > all.blockInfluence()[1], "flip raises BI of layer 2");
  }

  @Test
  void identicalStatesScoreExactlyZeroAndZeroVectorsAreHandled() {
    float[][][][][] h = states(3);
    for (int b = 0; b < BATCHES; b++) {
      for (int k = 0; k < BATCH; k++) {
        for (int t = 0; t < SEQ; t++) {
          h[2][b][k][t] = h[1][b][k][t].clone();
        }
      }
    }
    DepthScores s = accumulate(h, 2, TokenPositions.ALL);
    assertEquals(0.0, s.blockInfluence()[1]);
    assertEquals(0.0, s.angular(1, 1));
    assertArrayEquals(new int[] {1}, s.layersToRemove(DepthMethod.BLOCK_INFLUENCE, 1));
    assertArrayEquals(new int[] {1}, s.layersToRemove(DepthMethod.ANGULAR, 1));

    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray zero = m.zeros(new Shape(1, 2, 3));
      NDArray x = m.create(new float[] {1, 0, 0, 0, 0, 0}, new Shape(1, 2, 3));
      // zero vs zero: identical; nonzero vs zero: orthogonal
      assertArrayEquals(new double[] {1, 1}, DepthScorer.cosines(zero, zero, TokenPositions.ALL));
      assertArrayEquals(new double[] {0, 1}, DepthScorer.cosines(x, zero, TokenPositions.ALL));
      assertArrayEquals(new double[] {1}, DepthScorer.cosines(x, zero, TokenPositions.LAST));
    }
  }

  @Test
  void methodsPickTheLowestLayersOrTheClosestBlock() {
    double[] bi = {0.5, 0.1, 0.3, 0.1, 0.9};
    double[][] angular = {
      {0.30, 0.05, 0.20, 0.04, 0.50},
      {0.40, 0.22, 0.21, 0.60},
      {0.50, 0.35, 0.30}
    };
    DepthScores s = new DepthScores(5, 3, TokenPositions.ALL, 10, bi, angular);
    // tie 0.1 at layers 1 and 3: both the lowest
    assertArrayEquals(new int[] {1, 3}, s.layersToRemove(DepthMethod.BLOCK_INFLUENCE, 2));
    assertArrayEquals(new int[] {1, 2, 3}, s.layersToRemove(DepthMethod.BLOCK_INFLUENCE, 3));
    assertArrayEquals(new int[] {3}, s.layersToRemove(DepthMethod.ANGULAR, 1));
    assertArrayEquals(new int[] {2, 3}, s.layersToRemove(DepthMethod.ANGULAR, 2));
    assertArrayEquals(new int[] {2, 3, 4}, s.layersToRemove(DepthMethod.ANGULAR, 3));
    assertThrows(IllegalArgumentException.class, () -> s.layersToRemove(DepthMethod.ANGULAR, 4));
    assertThrows(
        IllegalArgumentException.class, () -> s.layersToRemove(DepthMethod.BLOCK_INFLUENCE, 5));
    assertEquals(2, s.toJson().get("angular").get(1).get("best_start").asInt());
    assertEquals(DepthMethod.ANGULAR, DepthMethod.parse("angular"));
    var e = assertThrows(IllegalArgumentException.class, () -> DepthMethod.parse("taylor"));
    assertTrue(e.getMessage().contains("block_influence"), e.getMessage());
  }
}
