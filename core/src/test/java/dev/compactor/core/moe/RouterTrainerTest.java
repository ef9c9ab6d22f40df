package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class RouterTrainerTest {

  private static final int HIDDEN = 16;
  private static final int EXPERTS = 8;

  @Test
  void trainingLowersTheLossAndLearnsALinearlyDecidableRouting() {
    Random r = new Random(2);
    float[] truth = MoefiedMlpTest.gaussian(r, EXPERTS * HIDDEN, 1);
    float[] xTrain = MoefiedMlpTest.gaussian(r, 2000 * HIDDEN, 1);
    float[] xHeld = MoefiedMlpTest.gaussian(r, 500 * HIDDEN, 1);
    for (int k : new int[] {1, 2}) {
      int[] targets = topK(truth, xTrain, k);
      RouterTrainer.Router router =
          RouterTrainer.train(
              xTrain,
              HIDDEN,
              targets,
              EXPERTS,
              k,
              new RouterTrainer.Settings(300, 128, 3e-2, 1e-3, 7));
      float first = router.losses()[0];
      float last = router.losses()[router.losses().length - 1];
      assertTrue(last < 0.6 * first, "k=" + k + ": loss " + first + " -> " + last);
      double recall =
          RouterTrainer.recall(router.weight(), xHeld, HIDDEN, topK(truth, xHeld, k), k);
      // chance is k/E
      assertTrue(recall > 0.85, "k=" + k + ": held-out recall " + recall);
      double untrained =
          RouterTrainer.recall(
              new float[EXPERTS * HIDDEN], xHeld, HIDDEN, topK(truth, xHeld, k), k);
      assertTrue(untrained < 0.5, "an all-zero router picks the first k: recall " + untrained);
      RouterTrainer.Router again =
          RouterTrainer.train(
              xTrain,
              HIDDEN,
              targets,
              EXPERTS,
              k,
              new RouterTrainer.Settings(300, 128, 3e-2, 1e-3, 7));
      assertArrayEquals(router.weight(), again.weight(), "same seed, same router");
    }
  }

  private static int[] topK(float[] w, float[] x, int k) {
    int n = x.length / HIDDEN;
    float[] s = new float[n * EXPERTS];
    for (int t = 0; t < n; t++) {
      for (int e = 0; e < EXPERTS; e++) {
        double d = 0;
        for (int i = 0; i < HIDDEN; i++) {
          d += (double) w[e * HIDDEN + i] * x[t * HIDDEN + i];
        }
        s[t * EXPERTS + e] = (float) d;
      }
    }
    return MoefiedMlp.topK(s, n, EXPERTS, k);
  }
}
