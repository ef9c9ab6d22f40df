package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExpertMergingTest {

  /**
   * A model with expert 1 duplicated as a fifth expert (weights and router row) routes differently:
   * the copy ties with the original and takes a top-2 slot. Merging the pair back must give the
   * original model's logits.
   */
  @Test
  void mergingADuplicatedExpertGivesBackTheOriginalModel(@TempDir Path tmp) throws Exception {
    ModelConfig c = MoeTestModels.mixtral(2, 4, 2);
    Path original = MoeTestModels.save(c, 21, tmp.resolve("o"));
    Map<String, float[]> w = MoeTestModels.tensors(original);
    Map<String, long[]> shapes = MoeTestModels.shapes(original);
    Map<String, long[]> dupShapes = new LinkedHashMap<>();
    Map<String, float[]> dup = new LinkedHashMap<>();
    int h = c.hiddenSize();
    for (String n : shapes.keySet()) {
      if (n.endsWith("block_sparse_moe.gate.weight")) {
        float[] r = java.util.Arrays.copyOf(w.get(n), 5 * h);
        System.arraycopy(w.get(n), h, r, 4 * h, h);
        dup.put(n, r);
        dupShapes.put(n, new long[] {5, h});
      } else {
        dup.put(n, w.get(n));
        dupShapes.put(n, shapes.get(n));
      }
      if (n.contains("experts.3.")) {
        String copy = n.replace("experts.3.", "experts.4.");
        String from = n.replace("experts.3.", "experts.1.");
        dup.put(copy, w.get(from));
        dupShapes.put(copy, shapes.get(from));
      }
    }
    Path duplicated =
        MoeTestModels.write(
            tmp.resolve("d"), c.with("{\"num_local_experts\":5}"), dupShapes, dup, Map.of(), null);
    List<int[]> seqs = MoeTestModels.sequences(3, 12, 4);
    float[] before = MoeTestModels.logits(original, seqs);
    float[] dupLogits = MoeTestModels.logits(duplicated, seqs);
    assertTrue(MoeTestModels.maxAbsDiff(before, dupLogits) > 1e-3, "the copy changes routing");

    ExpertStatistics stats = ExpertStatistics.collect(duplicated, seqs, Device.cpu());
    for (int l = 0; l < 2; l++) {
      assertTrue(stats.frequency(l, 4) > 0, "the copy is routed to in layer " + l);
    }
    List<int[]> layerGroups =
        List.of(new int[] {0}, new int[] {1, 4}, new int[] {2}, new int[] {3});
    Path merged = tmp.resolve("m");
    ExpertMerger.merge(duplicated, merged, List.of(layerGroups, layerGroups), stats);
    assertEquals(4, ModelConfig.read(merged).numExperts());
    assertTrue(MoeTestModels.maxAbsDiff(before, MoeTestModels.logits(merged, seqs)) < 1e-5);

    try (TensorSource src = Checkpoints.open(duplicated)) {
      double[][] cos = ExpertMerger.weightSimilarity(src, ModelConfig.read(duplicated), 0);
      assertEquals(1, cos[1][4], 1e-9);
      for (int e = 0; e < 4; e++) {
        if (e != 1) {
          assertTrue(cos[e][4] < 0.5, "random experts are far apart: " + cos[e][4]);
        }
      }
      int[][] groups =
          ExpertMerger.group(cos, new double[] {0.9, 0.8, 0.7, 0.6, 0.5}, 4).toArray(int[][]::new);
      assertArrayEquals(new int[][] {{0}, {1, 4}, {2}, {3}}, groups);
    }
  }

  @Test
  void groupingJoinsEachNonCentreToItsMostSimilarCentre() {
    double[][] sim = {
      {1, 0.1, 0.9, 0.2},
      {0.1, 1, 0.3, 0.8},
      {0.9, 0.3, 1, 0.1},
      {0.2, 0.8, 0.1, 1}
    };
    // centres are the two most frequent: 2 and 3; 0 joins 2, 1 joins 3
    int[][] g = ExpertMerger.group(sim, new double[] {0.1, 0.2, 0.9, 0.8}, 2).toArray(int[][]::new);
    assertArrayEquals(new int[][] {{0, 2}, {1, 3}}, g);
  }

  @Test
  void mergedWeightsAreTheFrequencyWeightedAverage(@TempDir Path tmp) throws Exception {
    ModelConfig c = MoeTestModels.mixtral(1, 4, 2);
    Path dir = MoeTestModels.save(c, 5, tmp.resolve("o"));
    List<int[]> seqs = MoeTestModels.sequences(2, 12, 8);
    ExpertStatistics stats = ExpertStatistics.collect(dir, seqs, Device.cpu());
    Path merged = tmp.resolve("m");
    List<List<int[]>> groups = ExpertMerger.merge(dir, merged, stats, 3);
    assertEquals(3, groups.get(0).size());
    ModelConfig mc = ModelConfig.read(merged);
    assertEquals(3, mc.numExperts());
    assertEquals(2, mc.expertsPerToken());

    Map<String, float[]> w = MoeTestModels.tensors(dir);
    Map<String, float[]> m = MoeTestModels.tensors(merged);
    String p = "model.layers.0.block_sparse_moe.";
    int h = c.hiddenSize();
    int merges = 0;
    for (int g = 0; g < 3; g++) {
      int[] members = groups.get(0).get(g);
      double total = 0;
      for (int e : members) {
        total += stats.frequency(0, e);
      }
      merges += members.length > 1 ? 1 : 0;
      for (String proj : new String[] {"w1", "w2", "w3"}) {
        float[] got = m.get(p + "experts." + g + "." + proj + ".weight");
        for (int i = 0; i < got.length; i++) {
          double want = 0;
          for (int e : members) {
            want +=
                stats.frequency(0, e)
                    / total
                    * w.get(p + "experts." + e + "." + proj + ".weight")[i];
          }
          assertEquals(want, got[i], 1e-6, "expert " + g + " " + proj + "[" + i + "]");
        }
      }
      for (int d = 0; d < h; d++) {
        double want = 0;
        for (int e : members) {
          want += stats.frequency(0, e) / total * w.get(p + "gate.weight")[e * h + d];
        }
        assertEquals(want, m.get(p + "gate.weight")[g * h + d], 1e-6, "router row " + g);
      }
    }
    assertEquals(1, merges, "4 experts into 3: one pair");
    float[] logits = MoeTestModels.logits(merged, seqs);
    for (float v : logits) {
      assertTrue(Float.isFinite(v));
    }
  }
}
