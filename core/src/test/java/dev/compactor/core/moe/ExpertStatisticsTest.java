package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The statistics against a plain-Java recomputation in double: only the router inputs are taken
 * from the forward (checked against PyTorch in GoldenModelTest); router logits, softmax, top-k, the
 * experts' SiLU MLPs and the norms are recomputed here from the checkpoint's weights.
 */
class ExpertStatisticsTest {

  @Test
  void matchesPlainJavaRecomputation(@TempDir Path tmp) throws Exception {
    ModelConfig c = MoeTestModels.mixtral(2, 6, 2);
    Path dir = MoeTestModels.save(c, 11, tmp.resolve("m"));
    List<int[]> seqs = MoeTestModels.sequences(3, 12, 5);
    Map<String, float[]> w = MoeTestModels.tensors(dir);

    List<List<float[]>> routerInputs = new ArrayList<>();
    for (int l = 0; l < c.numLayers(); l++) {
      routerInputs.add(new ArrayList<>());
    }
    ExpertStatistics stats;
    try (Transformer t = Transformer.load(dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      for (int[] s : seqs) {
        t.logits(
            m,
            m.create(s, new Shape(1, s.length)),
            (layer, linear, input) -> {
              if (linear.equals(Layout.router(c))) {
                routerInputs.get(layer).add(input.toFloatArray());
              }
            });
      }
      stats = ExpertStatistics.collect(t, seqs);
    }
    ExpertStatistics streamed = ExpertStatistics.collect(dir, seqs, Device.cpu());

    int h = c.hiddenSize();
    int inter = c.intermediateSize();
    int experts = c.numExperts();
    int k = c.expertsPerToken();
    for (int l = 0; l < c.numLayers(); l++) {
      String p = "model.layers." + l + ".block_sparse_moe.";
      float[] router = w.get(p + "gate.weight");
      long tokens = 0;
      double[] routed = new double[experts];
      double[] prob = new double[experts];
      double[] weighted = new double[experts];
      for (float[] x : routerInputs.get(l)) {
        int n = x.length / h;
        for (int t = 0; t < n; t++) {
          tokens++;
          double[] logit = new double[experts];
          double max = Double.NEGATIVE_INFINITY;
          for (int e = 0; e < experts; e++) {
            for (int d = 0; d < h; d++) {
              logit[e] += (double) router[e * h + d] * x[t * h + d];
            }
            max = Math.max(max, logit[e]);
          }
          double z = 0;
          for (int e = 0; e < experts; e++) {
            z += Math.exp(logit[e] - max);
          }
          double[] pr = new double[experts];
          for (int e = 0; e < experts; e++) {
            pr[e] = Math.exp(logit[e] - max) / z;
            prob[e] += pr[e];
          }
          int[] top = new int[k];
          boolean[] taken = new boolean[experts];
          double sum = 0;
          for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < experts; e++) {
              if (!taken[e] && (best < 0 || pr[e] > pr[best])) {
                best = e;
              }
            }
            taken[best] = true;
            top[j] = best;
            sum += pr[best];
          }
          for (int e : top) {
            routed[e]++;
            double[] out =
                expert(
                    w.get(p + "experts." + e + ".w1.weight"),
                    w.get(p + "experts." + e + ".w3.weight"),
                    w.get(p + "experts." + e + ".w2.weight"),
                    x,
                    t * h,
                    h,
                    inter);
            double norm = 0;
            for (double v : out) {
              norm += v * v;
            }
            weighted[e] += pr[e] / sum * Math.sqrt(norm);
          }
        }
      }
      assertEquals(tokens, stats.tokens(l));
      double freqSum = 0;
      boolean someNorm = false;
      for (int e = 0; e < experts; e++) {
        String at = "layer " + l + " expert " + e;
        assertEquals(routed[e] / tokens, stats.frequency(l, e), 1e-12, at + " frequency");
        assertEquals(prob[e] / tokens, stats.meanRouterWeight(l, e), 1e-6, at + " router weight");
        assertEquals(
            weighted[e] / tokens,
            stats.weightedOutputNorm(l, e),
            1e-5 * Math.max(1, weighted[e] / tokens),
            at + " weighted norm");
        assertEquals(stats.frequency(l, e), streamed.frequency(l, e), 0, at + " streamed");
        assertEquals(
            stats.weightedOutputNorm(l, e),
            streamed.weightedOutputNorm(l, e),
            1e-6 * Math.max(1, stats.weightedOutputNorm(l, e)),
            at + " streamed");
        freqSum += stats.frequency(l, e);
        someNorm |= stats.weightedOutputNorm(l, e) > 0;
      }
      assertEquals(k, freqSum, 1e-12, "each token counts k experts");
      assertTrue(someNorm);
    }
  }

  /** down(silu(gate x) * up x) in double. */
  private static double[] expert(
      float[] w1, float[] w3, float[] w2, float[] x, int off, int h, int inter) {
    double[] act = new double[inter];
    for (int i = 0; i < inter; i++) {
      double g = 0;
      double u = 0;
      for (int d = 0; d < h; d++) {
        g += (double) w1[i * h + d] * x[off + d];
        u += (double) w3[i * h + d] * x[off + d];
      }
      act[i] = g / (1 + Math.exp(-g)) * u;
    }
    double[] out = new double[h];
    for (int d = 0; d < h; d++) {
      for (int i = 0; i < inter; i++) {
        out[d] += w2[d * inter + i] * act[i];
      }
    }
    return out;
  }

  @Test
  void unknownScoreIsRefused() {
    UnsupportedOperationException e =
        assertThrows(UnsupportedOperationException.class, () -> ExpertScore.parse("random"));
    assertEquals(
        "not supported: method=random (expected frequency or weighted_norm)", e.getMessage());
    assertEquals(ExpertScore.WEIGHTED_NORM, ExpertScore.parse("weighted_norm"));
  }

  @Test
  void denseModelsAreRefused() {
    ModelConfig llama = ModelConfig.llama(64, 32, 24, 1, 4, 2, 64);
    assertThrows(
        IllegalArgumentException.class,
        () -> new ExpertStatisticsCollector(llama, (layer, linear) -> null));
  }
}
