package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The sparse MLP against a plain-Java reference of the same formula. */
class MoefiedMlpTest {

  private static final int HIDDEN = 16;
  private static final int INTER = 24;
  private static final int EXPERTS = 4;
  private static final int TOKENS = 9;

  @Test
  void sparseMlpEqualsPlainJavaReferenceForEveryK() {
    Random r = new Random(5);
    float[] gate = gaussian(r, INTER * HIDDEN, 0.4);
    float[] up = gaussian(r, INTER * HIDDEN, 0.4);
    float[] down = gaussian(r, HIDDEN * INTER, 0.4);
    float[] router = gaussian(r, EXPERTS * HIDDEN, 1);
    float[] x = gaussian(r, TOKENS * HIDDEN, 1);
    for (int k = 1; k <= EXPERTS; k++) {
      try (NDManager m = NDManager.newBaseManager()) {
        MoefiedMlp mlp =
            new MoefiedMlp(
                m.create(gate, new Shape(INTER, HIDDEN)),
                m.create(up, new Shape(INTER, HIDDEN)),
                m.create(down, new Shape(HIDDEN, INTER)),
                m.create(router, new Shape(EXPERTS, HIDDEN)),
                k);
        NDArray flat = m.create(x, new Shape(TOKENS, HIDDEN));
        int[] chosen = mlp.route(flat);
        int[] expected = referenceChoice(router, x, k);
        assertArrayEquals(expected, chosen, "router top-" + k);
        float[] got = mlp.apply(m, flat, chosen).toFloatArray();
        float[] want = reference(gate, up, down, x, expected, k);
        assertClose(want, got, 1e-5, "k=" + k);
        if (k == EXPERTS) {
          assertClose(reference(gate, up, down, x, null, k), got, 1e-5, "all experts = dense");
        }
        // what an observer sees for down_proj: the activation with unchosen slices zeroed
        float[] masked = mlp.maskedActivation(m, flat, chosen).toFloatArray();
        float[] a = activation(gate, up, x);
        int m1 = INTER / EXPERTS;
        for (int t = 0; t < TOKENS; t++) {
          for (int j = 0; j < INTER; j++) {
            boolean on = false;
            for (int s = 0; s < k; s++) {
              on |= expected[t * k + s] == j / m1;
            }
            assertEquals(on ? a[t * INTER + j] : 0f, masked[t * INTER + j], 1e-5);
          }
        }
      }
    }
  }

  @Test
  void topKTakesTheLargestAndBreaksTiesToTheLowerIndex() {
    float[] scores = {0.1f, 0.5f, 0.5f, -1f, 3f, 2f, 2f, 2f}; // rows: 1, 2 then 0, 1
    assertArrayEquals(new int[] {1, 2, 0, 1}, MoefiedMlp.topK(scores, 2, 4, 2));
  }

  private static int[] referenceChoice(float[] router, float[] x, int k) {
    float[] logits = new float[TOKENS * EXPERTS];
    for (int t = 0; t < TOKENS; t++) {
      for (int e = 0; e < EXPERTS; e++) {
        double s = 0;
        for (int d = 0; d < HIDDEN; d++) {
          s += (double) router[e * HIDDEN + d] * x[t * HIDDEN + d];
        }
        logits[t * EXPERTS + e] = (float) s;
      }
    }
    int[] out = new int[TOKENS * k];
    for (int t = 0; t < TOKENS; t++) {
      boolean[] used = new boolean[EXPERTS];
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < EXPERTS; e++) {
          if (!used[e] && (best < 0 || logits[t * EXPERTS + e] > logits[t * EXPERTS + best])) {
            best = e;
          }
        }
        used[best] = true;
        out[t * k + j] = best;
      }
    }
    return out;
  }

  private static float[] activation(float[] gate, float[] up, float[] x) {
    float[] a = new float[TOKENS * INTER];
    for (int t = 0; t < TOKENS; t++) {
      for (int j = 0; j < INTER; j++) {
        double g = 0;
        double u = 0;
        for (int d = 0; d < HIDDEN; d++) {
          g += (double) gate[j * HIDDEN + d] * x[t * HIDDEN + d];
          u += (double) up[j * HIDDEN + d] * x[t * HIDDEN + d];
        }
        a[t * INTER + j] = (float) (g / (1 + Math.exp(-g)) * u);
      }
    }
    return a;
  }

  /** Sum over the chosen experts' neuron slices of down * act; {@code chosen} null: all neurons. */
  private static float[] reference(
      float[] gate, float[] up, float[] down, float[] x, int[] chosen, int k) {
    float[] a = activation(gate, up, x);
    int m = INTER / EXPERTS;
    float[] out = new float[TOKENS * HIDDEN];
    for (int t = 0; t < TOKENS; t++) {
      boolean[] on = new boolean[INTER];
      for (int j = 0; j < INTER; j++) {
        on[j] = chosen == null;
      }
      if (chosen != null) {
        for (int s = 0; s < k; s++) {
          for (int j = chosen[t * k + s] * m; j < (chosen[t * k + s] + 1) * m; j++) {
            on[j] = true;
          }
        }
      }
      for (int o = 0; o < HIDDEN; o++) {
        double s = 0;
        for (int j = 0; j < INTER; j++) {
          if (on[j]) {
            s += (double) down[o * INTER + j] * a[t * INTER + j];
          }
        }
        out[t * HIDDEN + o] = (float) s;
      }
    }
    return out;
  }

  static float[] gaussian(Random r, int n, double sd) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * sd);
    }
    return v;
  }

  static void assertClose(float[] want, float[] got, double tol, String what) {
    assertEquals(want.length, got.length, what);
    double max = 0;
    for (int i = 0; i < want.length; i++) {
      max = Math.max(max, Math.abs(want[i] - got[i]));
    }
    assertTrue(max <= tol, what + ": max abs difference " + max + " > " + tol);
  }
}
