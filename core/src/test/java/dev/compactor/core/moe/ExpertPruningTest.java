package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.model.ModelConfig;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExpertPruningTest {

  private static final String MOE = "model.layers.0.block_sparse_moe.";

  @Test
  void keepingEveryExpertKeepsTheLogitsBitForBit(@TempDir Path tmp) throws Exception {
    ModelConfig c = MoeTestModels.mixtral(2, 4, 2);
    Path dir = MoeTestModels.save(c, 3, tmp.resolve("m"));
    List<int[]> seqs = MoeTestModels.sequences(2, 10, 1);
    ExpertStatistics stats = ExpertStatistics.collect(dir, seqs, Device.cpu());
    List<int[]> kept =
        ExpertPruner.prune(dir, tmp.resolve("p"), stats, ExpertScore.WEIGHTED_NORM, 4);
    assertArrayEquals(new int[] {0, 1, 2, 3}, kept.get(1));
    assertArrayEquals(
        MoeTestModels.logits(dir, seqs), MoeTestModels.logits(tmp.resolve("p"), seqs));
  }

  @Test
  void keepSelectsTheHighestScoresWithTiesToTheLowerIndex() {
    assertArrayEquals(new int[] {1, 3}, ExpertPruner.keep(new double[] {0.1, 0.5, 0.2, 0.4}, 2));
    assertArrayEquals(new int[] {0, 2}, ExpertPruner.keep(new double[] {1, 0, 1, 1}, 2));
    assertThrows(IllegalArgumentException.class, () -> ExpertPruner.keep(new double[2], 3));
  }

  /**
   * One layer whose router logits are {@code c_e · x_0} with hidden channel 0 pinned to a positive
   * value for every token (embedding column 10, attention output row 0 zero): every token's top-2
   * is experts 2 and 4, so frequency ranks them first; expert 4's down projection is scaled ×10 so
   * its weighted norm beats expert 2's although its routing weight is lower.
   */
  @Test
  void pruningDropsExactlyTheLowestScoredExperts(@TempDir Path tmp) throws Exception {
    ModelConfig c = MoeTestModels.mixtral(1, 6, 2);
    Path random = MoeTestModels.save(c, 9, tmp.resolve("r"));
    Map<String, float[]> w = MoeTestModels.tensors(random);
    int h = c.hiddenSize();
    Map<String, float[]> changes = new HashMap<>();
    float[] embed = w.get("model.embed_tokens.weight").clone();
    for (int t = 0; t < c.vocabSize(); t++) {
      embed[t * h] = 10;
    }
    changes.put("model.embed_tokens.weight", embed);
    float[] o = w.get("model.layers.0.self_attn.o_proj.weight").clone();
    for (int i = 0; i < h; i++) {
      o[i] = 0; // row 0: output channel 0
    }
    changes.put("model.layers.0.self_attn.o_proj.weight", o);
    float[] coeff = {0.3f, 0f, 0.5f, 0.1f, 0.4f, 0.2f};
    float[] router = new float[c.numExperts() * h];
    for (int e = 0; e < c.numExperts(); e++) {
      router[e * h] = coeff[e];
    }
    changes.put(MOE + "gate.weight", router);
    float[] down4 = w.get(MOE + "experts.4.w2.weight").clone();
    for (int i = 0; i < down4.length; i++) {
      down4[i] *= 10;
    }
    changes.put(MOE + "experts.4.w2.weight", down4);
    Path dir = MoeTestModels.edit(random, tmp.resolve("m"), null, changes, null);
    List<int[]> seqs = MoeTestModels.sequences(3, 16, 2);
    ExpertStatistics stats = ExpertStatistics.collect(dir, seqs, Device.cpu());
    for (int e = 0; e < 6; e++) {
      assertEquals(e == 2 || e == 4 ? 1 : 0, stats.frequency(0, e), 0, "expert " + e);
    }
    assertTrue(stats.weightedOutputNorm(0, 4) > stats.weightedOutputNorm(0, 2));
    assertTrue(stats.meanRouterWeight(0, 2) > stats.meanRouterWeight(0, 4));

    Path byFreq = tmp.resolve("f2");
    assertArrayEquals(
        new int[] {2, 4}, ExpertPruner.prune(dir, byFreq, stats, ExpertScore.FREQUENCY, 2).get(0));
    Map<String, float[]> pw = MoeTestModels.tensors(byFreq);
    float[] keptRouter = pw.get(MOE + "gate.weight");
    assertEquals(2 * h, keptRouter.length);
    assertEquals(0.5f, keptRouter[0]);
    assertEquals(0.4f, keptRouter[h]);
    assertArrayEquals(w.get(MOE + "experts.2.w1.weight"), pw.get(MOE + "experts.0.w1.weight"));
    assertArrayEquals(down4, pw.get(MOE + "experts.1.w2.weight"));
    assertTrue(pw.keySet().stream().noneMatch(n -> n.contains("experts.2.")));
    ModelConfig pc = ModelConfig.read(byFreq);
    assertEquals(2, pc.numExperts());
    assertEquals(2, pc.expertsPerToken());
    // the dropped experts were never routed and Mixtral renormalises the top-k: nothing changes
    float[] before = MoeTestModels.logits(dir, seqs);
    assertTrue(MoeTestModels.maxAbsDiff(before, MoeTestModels.logits(byFreq, seqs)) < 1e-5);

    Path byNorm = tmp.resolve("n1");
    assertArrayEquals(
        new int[] {4}, ExpertPruner.prune(dir, byNorm, stats, ExpertScore.WEIGHTED_NORM, 1).get(0));
    assertArrayEquals(
        new int[] {2},
        ExpertPruner.prune(dir, tmp.resolve("f1"), stats, ExpertScore.FREQUENCY, 1).get(0));
    assertEquals(1, ModelConfig.read(byNorm).expertsPerToken(), "min(k, n)");
    assertArrayEquals(down4, MoeTestModels.tensors(byNorm).get(MOE + "experts.0.w2.weight"));
    assertTrue(
        MoeTestModels.maxAbsDiff(before, MoeTestModels.logits(byNorm, seqs)) > 1e-3,
        "dropping a routed expert must change the output");
  }

  /**
   * Qwen2-MoE with a dense first layer and a shared expert: the router logits of the sparse layer
   * are {@code c_e · x_0} with residual channel 0 pinned to 10 (embedding column 0; the rows 0 of
   * both o_proj and of the dense layer's down_proj zero), so every token's top-2 is experts 2 and
   * 4. Pruning to 3 experts must equal the original model with the dropped experts' router rows
   * driven to -1000 (probability exactly 0): the softmax over the kept experts. With {@code
   * norm_topk_prob: true} that is also the original's output; with Qwen's default false it is not
   * (the kept weights grow by the dropped probability mass). The dense layer, the shared expert and
   * its gate are copied byte for byte.
   */
  @Test
  void qwenMoePruningRenormalisesOverKeptExpertsAndKeepsDenseLayersAndSharedExperts(
      @TempDir Path tmp) throws Exception {
    for (boolean normTopk : new boolean[] {true, false}) {
      ModelConfig c =
          ModelConfig.fromJson(
              "{\"model_type\":\"qwen2_moe\",\"vocab_size\":64,\"hidden_size\":32,"
                  + "\"intermediate_size\":24,\"moe_intermediate_size\":16,"
                  + "\"shared_expert_intermediate_size\":20,\"num_hidden_layers\":2,"
                  + "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                  + "\"max_position_embeddings\":64,\"num_experts\":6,"
                  + "\"num_experts_per_tok\":2,\"mlp_only_layers\":[0],"
                  + "\"norm_topk_prob\":"
                  + normTopk
                  + ",\"tie_word_embeddings\":false}");
      Path case_ = tmp.resolve("norm-" + normTopk);
      Path random = MoeTestModels.save(c, 5, case_.resolve("r"));
      Map<String, float[]> w = MoeTestModels.tensors(random);
      int h = c.hiddenSize();
      Map<String, float[]> changes = new HashMap<>();
      float[] embed = w.get("model.embed_tokens.weight").clone();
      for (int t = 0; t < c.vocabSize(); t++) {
        embed[t * h] = 10;
      }
      changes.put("model.embed_tokens.weight", embed);
      for (String row0 :
          List.of(
              "model.layers.0.self_attn.o_proj.weight",
              "model.layers.0.mlp.down_proj.weight",
              "model.layers.1.self_attn.o_proj.weight")) {
        float[] v = w.get(row0).clone();
        int in = v.length / h;
        java.util.Arrays.fill(v, 0, in, 0f);
        changes.put(row0, v);
      }
      float[] coeff = {0.3f, 0f, 0.5f, 0.1f, 0.4f, 0.2f};
      float[] router = new float[c.numExperts() * h];
      for (int e = 0; e < c.numExperts(); e++) {
        router[e * h] = coeff[e];
      }
      String moe = "model.layers.1.mlp.";
      changes.put(moe + "gate.weight", router);
      Path dir = MoeTestModels.edit(random, case_.resolve("m"), null, changes, null);
      float[] gone = router.clone();
      for (int e : new int[] {1, 3, 5}) {
        gone[e * h] = -1000f;
      }
      Map<String, float[]> reference = new HashMap<>(changes);
      reference.put(moe + "gate.weight", gone);
      Path expected = MoeTestModels.edit(random, case_.resolve("ref"), null, reference, null);

      List<int[]> seqs = MoeTestModels.sequences(3, 16, 2);
      ExpertStatistics stats = ExpertStatistics.collect(dir, seqs, Device.cpu());
      assertEquals(0, stats.tokens(0), "the dense layer routes nothing");
      Path pruned = case_.resolve("p");
      List<int[]> kept = ExpertPruner.prune(dir, pruned, stats, ExpertScore.FREQUENCY, 3);
      assertArrayEquals(new int[0], kept.get(0));
      assertArrayEquals(new int[] {0, 2, 4}, kept.get(1), "2 and 4 routed; a tie to the lower");
      ModelConfig pc = ModelConfig.read(pruned);
      assertEquals(3, pc.numExperts());
      assertEquals(2, pc.expertsPerToken());
      Map<String, float[]> pw = MoeTestModels.tensors(pruned);
      for (String name : w.keySet()) {
        if (!name.startsWith(moe + "experts.") && !name.equals(moe + "gate.weight")) {
          float[] in = changes.containsKey(name) ? changes.get(name) : w.get(name);
          assertArrayEquals(in, pw.get(name), name + " copied as it is");
        }
      }
      assertArrayEquals(
          w.get(moe + "experts.4.down_proj.weight"), pw.get(moe + "experts.2.down_proj.weight"));
      assertTrue(pw.keySet().stream().noneMatch(n -> n.contains("experts.3.")));

      float[] now = MoeTestModels.logits(pruned, seqs);
      double vsReference = MoeTestModels.maxAbsDiff(MoeTestModels.logits(expected, seqs), now);
      assertTrue(vsReference < 1e-4, "pruned vs softmax over the kept experts: " + vsReference);
      double vsOriginal = MoeTestModels.maxAbsDiff(MoeTestModels.logits(dir, seqs), now);
      if (normTopk) {
        assertTrue(vsOriginal < 1e-4, "norm_topk_prob: unrouted experts change nothing");
      } else {
        assertTrue(vsOriginal > 1e-3, "without norm_topk_prob the weights grow: " + vsOriginal);
      }

      Path merged = case_.resolve("merged");
      List<List<int[]>> groups = ExpertMerger.merge(dir, merged, stats, 3);
      assertEquals(null, groups.get(0), "the dense layer has no experts to merge");
      assertEquals(3, groups.get(1).size());
      assertEquals(3, ModelConfig.read(merged).numExperts());
      Map<String, float[]> mw = MoeTestModels.tensors(merged);
      assertArrayEquals(
          w.get("model.layers.0.mlp.up_proj.weight"), mw.get("model.layers.0.mlp.up_proj.weight"));
      assertArrayEquals(
          w.get(moe + "shared_expert.up_proj.weight"),
          mw.get(moe + "shared_expert.up_proj.weight"));
      assertEquals(3 * h, mw.get(moe + "gate.weight").length, "one router row per merged expert");
    }
  }

  @Test
  void expertTensorsOtherThanWeightsAreRefused(@TempDir Path tmp) throws Exception {
    ModelConfig c = MoeTestModels.mixtral(1, 2, 1);
    Path dir = MoeTestModels.save(c, 4, tmp.resolve("m"));
    Map<String, long[]> shapes = new java.util.LinkedHashMap<>(MoeTestModels.shapes(dir));
    Map<String, float[]> values = new java.util.LinkedHashMap<>(MoeTestModels.tensors(dir));
    shapes.put(MOE + "experts.1.w2.bias", new long[] {c.hiddenSize()});
    values.put(MOE + "experts.1.w2.bias", new float[c.hiddenSize()]);
    Path biased = MoeTestModels.write(tmp.resolve("b"), c, shapes, values, Map.of(), null);
    ExpertStatistics stats =
        ExpertStatistics.collect(dir, MoeTestModels.sequences(1, 8, 1), Device.cpu());
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> ExpertPruner.prune(biased, tmp.resolve("o"), stats, ExpertScore.FREQUENCY, 1));
    assertEquals(
        "not supported yet: expert tensor "
            + MOE
            + "experts.1.w2.bias (only bias-free linear weights)",
        e.getMessage());
  }

  @Test
  void denseCheckpointsAreRefused(@TempDir Path tmp) throws Exception {
    ModelConfig llama = ModelConfig.llama(64, 32, 24, 1, 4, 2, 64);
    Path dir = tmp.resolve("l");
    try (var t = dev.compactor.core.model.Transformer.randomInit(llama, 1, Device.cpu())) {
      t.save(dir, dev.compactor.core.io.DType.F32, Map.of());
    }
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                ExpertPruner.prune(
                    dir, tmp.resolve("o"), new ExpertStatistics(1, 1), ExpertScore.FREQUENCY, 1));
    assertEquals(
        "not supported: expert pruning or merging of llama (no MoE layers)", e.getMessage());
  }
}
