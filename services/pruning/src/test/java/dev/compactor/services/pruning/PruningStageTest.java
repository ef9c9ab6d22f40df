package dev.compactor.services.pruning;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PruningStageTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void model() throws Exception {
    model = TestModels.randomLlama(tmp.resolve("model"), 2, 5);
  }

  private static StageResult run(String name, String params, String calibrationUri)
      throws Exception {
    return run(model, name, params, calibrationUri);
  }

  private static StageResult run(Path input, String name, String params, String calibrationUri)
      throws Exception {
    StageContext ctx =
        StageContext.builder(
                TestModels.request("prune", params).setCalibrationUri(calibrationUri).build())
            .inputDir(input)
            .outputDir(Files.createDirectories(tmp.resolve(name + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    return new PruningStage().run(ctx);
  }

  @Test
  void magnitudeReachesTheRequestedSparsity() throws Exception {
    StageResult r = run("magnitude", "{\"method\":\"magnitude\",\"sparsity\":0.5}", null);
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-3);
    assertEquals(0.0, r.metrics().get("calibrationTokens"));
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      float[] w = s.readFloats("model.layers.0.mlp.up_proj.weight");
      long zeros = 0;
      for (float v : w) {
        zeros += v == 0f ? 1 : 0;
      }
      assertEquals(0.5, (double) zeros / w.length, 1e-3);
    }
    assertTrue(Files.exists(r.outputDir().resolve("config.json")));
  }

  @Test
  void wandaCalibratesOnTheBuiltinCorpus() throws Exception {
    StageResult r =
        run(
            "wanda",
            "{\"method\":\"wanda\",\"sparsity\":0.3,"
                + "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":32}}",
            "builtin:europarl");
    assertEquals(0.3, r.metrics().get("sparsity"), 1e-2);
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
  }

  @Test
  void wandaReadsACalibrationFile() throws Exception {
    Path text = tmp.resolve("calib.txt");
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      s.append("Paragraph ").append(i).append(" of the calibration text, plain words.\n\n");
    }
    Files.writeString(text, s);
    StageResult r =
        run(
            "wanda-file",
            "{\"method\":\"wanda\",\"sparsity\":0.5,"
                + "\"calibration\":{\"dataset\":\""
                + text.toUri()
                + "\",\"samples\":2,\"seq_len\":16}}",
            text.toUri().toString());
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-2);
  }

  @Test
  void sparseGptTwoFourPassesThroughTheStage() throws Exception {
    StageResult r =
        run(
            "sparsegpt",
            "{\"method\":\"sparsegpt\",\"pattern\":\"2:4\","
                + "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":32}}",
            "builtin:europarl");
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-3);
    assertEquals(2.0, r.metrics().get("patternN"));
    assertEquals(4.0, r.metrics().get("patternM"));
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      assertEquals("sparsegpt", s.metadata().get("compactor.prune.method"));
      float[] w = s.readFloats("model.layers.0.mlp.up_proj.weight");
      for (int g = 0; g < w.length; g += 4) {
        int zeros = 0;
        for (int k = g; k < g + 4; k++) {
          zeros += w[k] == 0f ? 1 : 0;
        }
        assertTrue(zeros >= 2, "group at " + g);
      }
    }
  }

  @Test
  void perLayerWidthsReportEachLayersWidth() throws Exception {
    StageResult r =
        run(
            "structured-per-layer",
            "{\"structured\":{\"channels\":0.25,\"widths\":\"per_layer\"}," + CAL + "}",
            "builtin:europarl");
    ModelConfig out = ModelConfig.read(r.outputDir());
    double sum = 0;
    for (int layer = 0; layer < 2; layer++) {
      double w = r.metrics().get("intermediateSize.layer" + layer);
      assertEquals(out.intermediateSize(layer), (int) w);
      sum += w;
    }
    assertEquals(2 * 128 - 64, sum, "round(0.25 * 2 * 128) channels removed in all");
    assertEquals((double) out.intermediateSize(), r.metrics().get("intermediateSize"));
  }

  @Test
  void structuredPruningShrinksHeadsAndChannelsAndReportsWhichWent() throws Exception {
    StageResult r =
        run(
            "structured",
            "{\"structured\":{\"heads\":0.5,\"channels\":0.25,\"importance\":\"fluctuation\","
                + "\"head_mode\":\"query_heads\",\"compensate\":true},"
                + CAL
                + "}",
            "builtin:europarl");
    assertEquals(2.0, r.metrics().get("heads"));
    assertEquals(2.0, r.metrics().get("kvHeads"));
    assertEquals(96.0, r.metrics().get("intermediateSize"));
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
    assertTrue(r.metrics().get("parametersAfter") < r.metrics().get("parametersBefore"));
    ModelConfig out = ModelConfig.read(r.outputDir());
    assertEquals(2, out.numHeads());
    assertEquals(16, out.headDim());
    assertEquals(96, out.intermediateSize());
    assertTrue(out.outputBias() && out.mlpBias(), "compensation sets the HF bias flags");
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      assertEquals("structured", s.metadata().get("compactor.prune.method"));
      assertEquals(2, s.info("model.layers.1.self_attn.o_proj.weight").shape()[1] / 16);
      assertEquals(96, s.info("model.layers.1.mlp.down_proj.weight").shape()[1]);
    }
    for (int layer = 0; layer < 2; layer++) {
      long heads = r.metrics().get("removedHeadMask.layer" + layer).longValue();
      // one query head of each KV group (heads 0-1 and 2-3)
      assertEquals(1, Long.bitCount(heads & 0b0011), "layer " + layer);
      assertEquals(1, Long.bitCount(heads & 0b1100), "layer " + layer);
      assertEquals(0.0, r.metrics().get("removedKvHeadMask.layer" + layer));
    }
  }

  @Test
  void sparse24BitmaskAndJointInt4AreWrittenInTheirFormats() throws Exception {
    StageResult r =
        run(
            "sparse24",
            "{\"method\":\"wanda\",\"pattern\":\"2:4\",\"format\":\"sparse-24-bitmask\","
                + CAL
                + "}",
            "builtin:europarl");
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-3);
    assertTrue(
        Files.readString(r.outputDir().resolve("config.json")).contains("sparse-24-bitmask"));
    try (TensorSource stored = Checkpoints.openStored(r.outputDir());
        TensorSource dense = Checkpoints.open(r.outputDir())) {
      assertTrue(stored.contains("model.layers.0.mlp.up_proj.bitmask"));
      float[] w = dense.readFloats("model.layers.0.mlp.up_proj.weight");
      for (int g = 0; g < w.length; g += 4) {
        int zeros = 0;
        for (int k = g; k < g + 4; k++) {
          zeros += w[k] == 0f ? 1 : 0;
        }
        assertTrue(zeros >= 2, "group at " + g);
      }
    }
    try (var files = Files.list(tmp)) {
      assertTrue(files.noneMatch(p -> p.getFileName().toString().startsWith(".pruned-dense-")));
    }
    StageResult joint =
        run(
            "joint",
            "{\"method\":\"sparsegpt\",\"pattern\":\"2:4\",\"wbits\":4,\"group_size\":16,"
                + CAL
                + "}",
            "builtin:europarl");
    assertEquals(4.0, joint.metrics().get("wbits"));
    Path ct = joint.outputDir().resolve("compressed-tensors");
    String config = Files.readString(ct.resolve("config.json"));
    assertTrue(config.contains("pack-quantized") && config.contains("sparsity_config"), config);
    try (TensorSource s = Checkpoints.open(ct)) {
      assertTrue(s.contains("model.layers.0.mlp.up_proj.weight_packed"));
    }
  }

  /** A random 2-layer Mixtral, 6 experts of which 2 per token, with a byte-level tokenizer. */
  private static Path randomMixtral(Path dir) throws Exception {
    ModelConfig c =
        ModelConfig.fromJson(
            "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\","
                + "\"vocab_size\":257,\"hidden_size\":32,\"intermediate_size\":24,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                + "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
                + "\"num_local_experts\":6,\"num_experts_per_tok\":2,"
                + "\"tie_word_embeddings\":false,\"sliding_window\":null}");
    try (Transformer t = Transformer.randomInit(c, 11, Device.cpu())) {
      t.save(dir, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(dir, 128);
    return dir;
  }

  private static final String CAL =
      "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":32}";

  /**
   * The kept-expert masks the stage reports are the experts it wrote: new expert j of each layer is
   * old expert kept[j] bit for bit, and the router keeps exactly their rows.
   */
  @Test
  void expertPruningKeepsTheReportedExpertsAndShrinksTheConfig() throws Exception {
    Path mixtral = randomMixtral(tmp.resolve("mixtral"));
    for (String method : List.of("frequency", "weighted_norm")) {
      StageResult r =
          run(
              mixtral,
              "experts-" + method,
              "{\"experts\":{\"keep\":4,\"method\":\"" + method + "\"}," + CAL + "}",
              "builtin:europarl");
      assertEquals(6.0, r.metrics().get("experts"));
      assertEquals(4.0, r.metrics().get("keptExperts"));
      assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
      ModelConfig out = ModelConfig.read(r.outputDir());
      assertEquals(4, out.numExperts());
      assertEquals(2, out.expertsPerToken());
      try (TensorSource in = Checkpoints.open(mixtral);
          TensorSource o = Checkpoints.open(r.outputDir())) {
        assertEquals("experts", o.metadata().get("compactor.prune.method"));
        assertEquals("expert", o.metadata().get("compactor.prune.granularity"));
        assertEquals(method, o.metadata().get("compactor.prune.experts.method"));
        assertEquals("4", o.metadata().get("compactor.prune.experts.keep"));
        assertEquals(method, o.metadata().get("compactor.moe.prune.method"));
        for (int layer = 0; layer < 2; layer++) {
          long mask = r.metrics().get("keptExpertMask.layer" + layer).longValue();
          assertEquals(4, Long.bitCount(mask), "layer " + layer);
          assertTrue(mask < 1 << 6, "layer " + layer);
          String moe = "model.layers." + layer + ".block_sparse_moe.";
          float[] router = in.readFloats(moe + "gate.weight");
          float[] newRouter = o.readFloats(moe + "gate.weight");
          int h = router.length / 6;
          assertEquals(4 * h, newRouter.length);
          int j = 0;
          for (int e = 0; e < 6; e++) {
            if ((mask & (1L << e)) == 0) {
              continue;
            }
            for (String w : List.of("w1", "w2", "w3")) {
              assertArrayEquals(
                  in.readFloats(moe + "experts." + e + "." + w + ".weight"),
                  o.readFloats(moe + "experts." + j + "." + w + ".weight"),
                  method + " layer " + layer + " expert " + e + " " + w);
            }
            assertArrayEquals(
                Arrays.copyOfRange(router, e * h, (e + 1) * h),
                Arrays.copyOfRange(newRouter, j * h, (j + 1) * h));
            j++;
          }
        }
      }
    }
  }

  @Test
  void expertMergingWritesKeepExpertsAroundTheReportedCentres() throws Exception {
    Path mixtral = randomMixtral(tmp.resolve("mixtral-m"));
    StageResult r =
        run(
            mixtral,
            "experts-merge",
            "{\"experts\":{\"keep\":3,\"method\":\"merge\"}," + CAL + "}",
            "builtin:europarl");
    assertEquals(3.0, r.metrics().get("keptExperts"));
    assertEquals(3, ModelConfig.read(r.outputDir()).numExperts());
    assertEquals(3, Long.bitCount(r.metrics().get("keptExpertMask.layer1").longValue()));
    try (TensorSource o = Checkpoints.open(r.outputDir())) {
      assertEquals("experts", o.metadata().get("compactor.prune.method"));
      assertEquals("merge", o.metadata().get("compactor.prune.experts.method"));
      assertEquals("weight_cosine", o.metadata().get("compactor.moe.merge.similarity"));
      assertTrue(o.contains("model.layers.1.block_sparse_moe.experts.2.w2.weight"));
      assertTrue(!o.contains("model.layers.1.block_sparse_moe.experts.3.w2.weight"));
    }
  }

  /** The trained tiny Mixtral pruned by the stage is a checkpoint the forward loads and runs. */
  @Test
  void tinyMixtralPrunedToSixExpertsLoadsAndRuns() throws Exception {
    Path tiny = Path.of("..", "..", "models", "tiny-mixtral-v1");
    assertTrue(Files.isDirectory(tiny), tiny.toAbsolutePath().toString());
    StageResult r =
        run(
            tiny,
            "experts-tiny",
            "{\"experts\":{\"keep\":6,\"method\":\"weighted_norm\"}," + CAL + "}",
            "builtin:europarl");
    assertEquals(8.0, r.metrics().get("experts"));
    assertEquals(6, ModelConfig.read(r.outputDir()).numExperts());
    int[] tokens = {72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};
    try (Transformer t = Transformer.load(r.outputDir(), Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      float[] logits = t.logits(m, m.create(tokens, new Shape(1, tokens.length))).toFloatArray();
      assertEquals(tokens.length * ModelConfig.read(tiny).vocabSize(), logits.length);
      for (float v : logits) {
        assertTrue(Float.isFinite(v));
      }
    }
  }

  @Test
  void expertPruningRefusesADenseModelBeforeAnyWork() {
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                run(
                    "experts-dense",
                    "{\"experts\":{\"keep\":2,\"method\":\"frequency\"}," + CAL + "}",
                    "builtin:europarl"));
    assertEquals(
        "prune.experts: not supported: expert pruning of llama, a dense model without"
            + " mixture-of-experts layers; prune it by sparsity or pattern",
        e.getMessage());
  }

  /**
   * MoEfication writes the dense weights with each layer's neurons reordered (gate/up rows and
   * down_proj columns moved together, nothing else changed), a router per layer and the config
   * field that makes the forward run k experts; the FLOPs it reports are the shape arithmetic.
   */
  @Test
  void moefyWritesAPermutedDenseModelWithRoutersAndRefusesAMixtureOfExperts() throws Exception {
    StageResult r =
        run(
            "moefy",
            "{\"moefy\":{\"experts\":4,\"k\":1,\"router_steps\":20},"
                + CAL.replace("\"samples\":4", "\"samples\":8")
                + "}",
            null);
    ModelConfig out = ModelConfig.read(r.outputDir());
    assertEquals(4, out.moeficationExperts());
    assertEquals(1, out.moeficationTopK());
    assertEquals(4.0, r.metrics().get("experts"));
    assertEquals(1.0, r.metrics().get("expertsPerToken"));
    // hidden 64, intermediate 128, 2 layers: dense MLP 2*3*64*128 per layer; k/E of it + router
    assertEquals(2 * 2.0 * 3 * 64 * 128, r.metrics().get("denseMlpFlopsPerToken"));
    assertEquals(2 * (2.0 * 3 * 64 * 128 / 4 + 2.0 * 64 * 4), r.metrics().get("mlpFlopsPerToken"));
    assertEquals(
        r.metrics().get("denseFlopsPerToken")
            - r.metrics().get("denseMlpFlopsPerToken")
            + r.metrics().get("mlpFlopsPerToken"),
        r.metrics().get("flopsPerToken"));
    assertEquals(6 * 32.0, r.metrics().get("calibrationTokens"));
    assertEquals(2 * 32.0, r.metrics().get("heldOutTokens"));
    double recall = r.metrics().get("routerRecall");
    assertTrue(recall >= 0 && recall <= 1, "recall " + recall);
    try (TensorSource in = Checkpoints.open(model);
        TensorSource o = Checkpoints.open(r.outputDir())) {
      assertEquals("moefy", o.metadata().get("compactor.prune.method"));
      assertEquals("4", o.metadata().get("compactor.prune.moefy.experts"));
      for (int layer = 0; layer < 2; layer++) {
        String mlp = "model.layers." + layer + ".mlp.";
        float[] gate = in.readFloats(mlp + "gate_proj.weight");
        float[] up = in.readFloats(mlp + "up_proj.weight");
        float[] down = in.readFloats(mlp + "down_proj.weight");
        float[] gate2 = o.readFloats(mlp + "gate_proj.weight");
        float[] up2 = o.readFloats(mlp + "up_proj.weight");
        float[] down2 = o.readFloats(mlp + "down_proj.weight");
        boolean[] used = new boolean[128];
        for (int row = 0; row < 128; row++) {
          // the old neuron this new position holds: its gate row, up row and down column move
          int from = -1;
          for (int j = 0; j < 128 && from < 0; j++) {
            if (!used[j]
                && Arrays.equals(
                    Arrays.copyOfRange(gate, j * 64, j * 64 + 64),
                    Arrays.copyOfRange(gate2, row * 64, row * 64 + 64))) {
              from = j;
            }
          }
          assertTrue(from >= 0, "layer " + layer + " row " + row + " is an input gate row");
          used[from] = true;
          assertArrayEquals(
              Arrays.copyOfRange(up, from * 64, from * 64 + 64),
              Arrays.copyOfRange(up2, row * 64, row * 64 + 64));
          for (int i = 0; i < 64; i++) {
            assertEquals(down[i * 128 + from], down2[i * 128 + row]);
          }
        }
        assertArrayEquals(
            in.readFloats("model.layers." + layer + ".self_attn.q_proj.weight"),
            o.readFloats("model.layers." + layer + ".self_attn.q_proj.weight"));
        assertEquals(4L * 64, o.readFloats(mlp + "moefication_router.weight").length);
      }
    }
    try (Transformer t = Transformer.load(r.outputDir(), Device.cpu())) {
      assertTrue(t.config().moefied());
    }

    Path mixtral = randomMixtral(tmp.resolve("moefy-mixtral"));
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                run(
                    mixtral,
                    "moefy-moe",
                    "{\"moefy\":{\"experts\":2,\"k\":1}," + CAL + "}",
                    "builtin:europarl"));
    assertTrue(e.getMessage().startsWith("prune.moefy: not supported"), e.getMessage());
  }

  @Test
  void depthDropsALayerAndRefusesAMixtureOfExperts() throws Exception {
    StageResult r =
        run("depth", "{\"depth\":{\"drop\":1,\"method\":\"angular\"}," + CAL + "}", null);
    assertEquals(2.0, r.metrics().get("layers"));
    assertEquals(1.0, r.metrics().get("keptLayers"));
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
    double removed = r.metrics().get("removedLayerMask");
    assertTrue(removed == 1.0 || removed == 2.0, "one of the two layers: " + removed);
    assertEquals(1, ModelConfig.read(r.outputDir()).numLayers());
    try (TensorSource in = Checkpoints.open(model);
        TensorSource o = Checkpoints.open(r.outputDir())) {
      assertEquals("depth", o.metadata().get("compactor.prune.method"));
      String kept = removed == 1.0 ? "model.layers.1." : "model.layers.0.";
      assertArrayEquals(
          in.readFloats(kept + "mlp.down_proj.weight"),
          o.readFloats("model.layers.0.mlp.down_proj.weight"));
      assertTrue(!o.contains("model.layers.1.mlp.down_proj.weight"));
    }

    Path mixtral = randomMixtral(tmp.resolve("depth-mixtral"));
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                run(
                    mixtral,
                    "depth-moe",
                    "{\"depth\":{\"drop\":1}," + CAL + "}",
                    "builtin:europarl"));
    assertTrue(
        e.getMessage().contains("not supported yet: depth pruning of mixtral"), e.getMessage());
  }

  @Test
  void recoveryKeepsThePrunedZerosAndOnlyAnImprovement() throws Exception {
    StageResult r =
        run(
            "recovered",
            "{\"method\":\"wanda\",\"sparsity\":0.5,\"recovery\":{\"steps\":6,\"lr\":0.003,"
                + "\"windows\":8,\"seq_len\":16},"
                + CAL
                + "}",
            "builtin:europarl");
    double before = r.metrics().get("recoveryHeldOutKlBefore");
    double after = r.metrics().get("recoveryHeldOutKlAfter");
    boolean kept = r.metrics().get("recoveryKept") == 1.0;
    assertEquals(
        kept, after < before, "kept exactly when held-out KL fell: " + before + " -> " + after);
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-2);
    assertEquals(6.0, r.metrics().get("recoverySteps"));
    Path pruned = tmp.resolve("recovered-work").resolve("pruned-before-recovery");
    try (TensorSource p = Checkpoints.open(pruned);
        TensorSource o = Checkpoints.open(r.outputDir())) {
      float[] a = p.readFloats("model.layers.1.self_attn.q_proj.weight");
      float[] b = o.readFloats("model.layers.1.self_attn.q_proj.weight");
      for (int k = 0; k < a.length; k++) {
        assertEquals(a[k] == 0f, b[k] == 0f, "zero pattern changed at " + k);
      }
    }
  }

  @Test
  void iterativePruningReachesTheSparsityInRounds() throws Exception {
    StageResult r =
        run(
            "iterative",
            "{\"method\":\"magnitude\",\"sparsity\":0.5,\"recovery\":{\"steps\":4,\"rounds\":2,"
                + "\"lr\":0.001,\"windows\":8,\"seq_len\":16},"
                + CAL
                + "}",
            "builtin:europarl");
    assertEquals(2.0, r.metrics().get("rounds"));
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-2);
    assertTrue(r.metrics().get("recoveryHeldOutKlAfter") >= 0);
    try (TensorSource o = Checkpoints.open(r.outputDir())) {
      float[] w = o.readFloats("model.layers.0.mlp.up_proj.weight");
      long zeros = 0;
      for (float v : w) {
        zeros += v == 0f ? 1 : 0;
      }
      assertEquals(0.5, (double) zeros / w.length, 1e-2);
    }
  }
}
