package dev.compactor.core.prune.structured;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.prune.structured.StructuredSpec.Importance;
import dev.compactor.core.prune.structured.StructuredTestModels.Weights;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Structured pruning end to end on small random Llamas whose weights are edited so that the heads
 * and channels to remove are known: shapes shrink, the config follows, the project's forward loads
 * the result and the logits tell whether the right pieces went.
 */
class StructuredPrunerTest {

  @TempDir Path tmp;

  private static final int VOCAB = 67;
  // hidden 32, intermediate 48, 2 layers, 4 heads of 8, 2 KV heads
  private static final ModelConfig LLAMA = ModelConfig.llama(VOCAB, 32, 48, 2, 4, 2, 64);
  private static final List<int[]> CALIBRATION = StructuredTestModels.windows(6, 24, VOCAB, 11);
  private static final List<int[]> EVAL = StructuredTestModels.windows(3, 20, VOCAB, 12);

  /** Channels made dead or constant: 12 of 48 (25 %). */
  private static final int[] CHANNELS = {1, 4, 9, 13, 17, 22, 26, 30, 33, 38, 41, 47};

  private StructuredReport prune(Path in, Path out, StructuredSpec spec) throws Exception {
    return new StructuredPruner(spec)
        .prune(in, out, CALIBRATION, Map.of(), StructuredPruner.Progress.NONE);
  }

  private static String layer(int i, String name) {
    return "model.layers." + i + "." + name;
  }

  private static void zeroRows(float[] w, int cols, int from, int to) {
    Arrays.fill(w, from * cols, to * cols, 0f);
  }

  private static void zeroColumn(float[] w, int rows, int cols, int col) {
    for (int r = 0; r < rows; r++) {
      w[r * cols + col] = 0f;
    }
  }

  @Test
  void removingKvGroupsAndChannelsThatContributeNothingKeepsLogits() throws Exception {
    Weights w = StructuredTestModels.random(LLAMA, 1);
    for (int i = 0; i < 2; i++) {
      // KV head 1 (rows 8..15 of v) outputs zero, so query heads 2 and 3 attend to nothing
      zeroRows(w.get(layer(i, "self_attn.v_proj.weight")), 32, 8, 16);
      for (int ch : CHANNELS) {
        zeroRows(w.get(layer(i, "mlp.up_proj.weight")), 32, ch, ch + 1);
      }
    }
    Path in = w.write(tmp.resolve("in"));
    Path out = tmp.resolve("out");
    StructuredReport r =
        prune(
            in,
            out,
            new StructuredSpec(0.5, 0.25, Importance.ACTIVATION, HeadMode.KV_GROUPS, false));
    for (StructuredReport.Layer l : r.layers()) {
      assertArrayEquals(new int[] {2, 3}, l.removedHeads());
      assertArrayEquals(new int[] {1}, l.removedKvHeads());
      assertArrayEquals(CHANNELS, l.removedChannels());
      assertEquals(0.0, l.headScores()[2], 1e-7);
      assertEquals(0.0, l.channelScores().maxRemoved(), 1e-7);
    }
    ModelConfig c = ModelConfig.read(out);
    assertEquals(2, c.numHeads());
    assertEquals(1, c.numKvHeads());
    assertEquals(8, c.headDim());
    assertEquals(36, c.intermediateSize());
    try (TensorSource s = Checkpoints.open(out)) {
      assertArrayEquals(new long[] {16, 32}, s.info(layer(0, "self_attn.q_proj.weight")).shape());
      assertArrayEquals(new long[] {8, 32}, s.info(layer(0, "self_attn.k_proj.weight")).shape());
      assertArrayEquals(new long[] {8, 32}, s.info(layer(0, "self_attn.v_proj.weight")).shape());
      assertArrayEquals(new long[] {32, 16}, s.info(layer(1, "self_attn.o_proj.weight")).shape());
      assertArrayEquals(new long[] {36, 32}, s.info(layer(1, "mlp.gate_proj.weight")).shape());
      assertArrayEquals(new long[] {36, 32}, s.info(layer(1, "mlp.up_proj.weight")).shape());
      assertArrayEquals(new long[] {32, 36}, s.info(layer(1, "mlp.down_proj.weight")).shape());
      assertTrue(!s.contains(layer(0, "self_attn.o_proj.bias")), "no bias without compensation");
    }
    assertTrue(r.parametersAfter() < r.parametersBefore());
    double diff =
        StructuredTestModels.maxAbsDiff(
            StructuredTestModels.logits(in, EVAL), StructuredTestModels.logits(out, EVAL));
    assertTrue(diff <= 1e-5, "logits moved by " + diff);
  }

  @Test
  void removingQueryHeadsWithZeroOutputWeightsKeepsLogitsAndEveryKvHead() throws Exception {
    Weights w = StructuredTestModels.random(LLAMA, 2);
    for (int i = 0; i < 2; i++) {
      // o_proj columns of head 1 (group 0) and head 2 (group 1): those heads reach nothing
      float[] o = w.get(layer(i, "self_attn.o_proj.weight"));
      for (int col = 8; col < 24; col++) {
        zeroColumn(o, 32, 32, col);
      }
      for (int ch : CHANNELS) {
        zeroColumn(w.get(layer(i, "mlp.down_proj.weight")), 32, 48, ch);
      }
    }
    Path in = w.write(tmp.resolve("in"));
    Path out = tmp.resolve("out");
    StructuredReport r =
        prune(
            in,
            out,
            new StructuredSpec(0.5, 0.25, Importance.FLUCTUATION, HeadMode.QUERY_HEADS, false));
    for (StructuredReport.Layer l : r.layers()) {
      assertArrayEquals(new int[] {1, 2}, l.removedHeads());
      assertArrayEquals(new int[0], l.removedKvHeads());
      assertArrayEquals(CHANNELS, l.removedChannels());
    }
    ModelConfig c = ModelConfig.read(out);
    assertEquals(2, c.numHeads());
    assertEquals(2, c.numKvHeads());
    try (TensorSource s = Checkpoints.open(out)) {
      assertArrayEquals(new long[] {16, 32}, s.info(layer(0, "self_attn.q_proj.weight")).shape());
      assertArrayEquals(new long[] {16, 32}, s.info(layer(0, "self_attn.k_proj.weight")).shape());
    }
    double diff =
        StructuredTestModels.maxAbsDiff(
            StructuredTestModels.logits(in, EVAL), StructuredTestModels.logits(out, EVAL));
    assertTrue(diff <= 1e-5, "logits moved by " + diff);
  }

  /**
   * Heads 2, 3 (KV head 1) and CHANNELS output constants: v rows 0 + bias, gate/up rows 0 + bias.
   */
  private Path constantPieces(String name) throws Exception {
    ModelConfig c = LLAMA.with("{\"attention_bias\": true, \"mlp_bias\": true}");
    Weights w = StructuredTestModels.random(c, 3);
    for (int i = 0; i < 2; i++) {
      zeroRows(w.get(layer(i, "self_attn.v_proj.weight")), 32, 8, 16);
      for (int ch : CHANNELS) {
        zeroRows(w.get(layer(i, "mlp.gate_proj.weight")), 32, ch, ch + 1);
        zeroRows(w.get(layer(i, "mlp.up_proj.weight")), 32, ch, ch + 1);
        w.get(layer(i, "mlp.gate_proj.bias"))[ch] = 1.5f;
        w.get(layer(i, "mlp.up_proj.bias"))[ch] = 0.8f;
      }
    }
    return w.write(tmp.resolve(name));
  }

  @Test
  void flapCompensationIsExactForConstantHeadsAndChannels() throws Exception {
    Path in = constantPieces("in");
    Path compensated = tmp.resolve("compensated");
    Path plain = tmp.resolve("plain");
    StructuredReport r =
        prune(
            in,
            compensated,
            new StructuredSpec(0.5, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, true));
    prune(
        in,
        plain,
        new StructuredSpec(0.5, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, false));
    for (StructuredReport.Layer l : r.layers()) {
      assertArrayEquals(new int[] {1}, l.removedKvHeads());
      assertArrayEquals(CHANNELS, l.removedChannels());
    }
    float[] dense = StructuredTestModels.logits(in, EVAL);
    double exact =
        StructuredTestModels.maxAbsDiff(dense, StructuredTestModels.logits(compensated, EVAL));
    double without =
        StructuredTestModels.maxAbsDiff(dense, StructuredTestModels.logits(plain, EVAL));
    assertTrue(exact <= 1e-5, "compensated logits moved by " + exact);
    assertTrue(without > 1e-2, "without compensation the constants are lost: " + without);
  }

  @Test
  void compensationSetsTheHfBiasFlagsAndWritesZeroBiasesForTheOtherProjections() throws Exception {
    Path in = StructuredTestModels.random(LLAMA, 4).write(tmp.resolve("in"));
    Path out = tmp.resolve("out");
    prune(
        in, out, new StructuredSpec(0.5, 0.25, Importance.ACTIVATION, HeadMode.QUERY_HEADS, true));
    ModelConfig c = ModelConfig.read(out);
    assertTrue(c.qkvBias() && c.outputBias() && c.mlpBias(), c.toString());
    try (TensorSource s = Checkpoints.open(out)) {
      for (String zero :
          List.of(
              "self_attn.q_proj",
              "self_attn.k_proj",
              "self_attn.v_proj",
              "mlp.gate_proj",
              "mlp.up_proj")) {
        float[] b = s.readFloats(layer(1, zero + ".bias"));
        assertEquals(s.info(layer(1, zero + ".weight")).shape()[0], b.length, zero);
        for (float v : b) {
          assertEquals(0f, v, zero);
        }
      }
      float[] o = s.readFloats(layer(1, "self_attn.o_proj.bias"));
      float[] down = s.readFloats(layer(1, "mlp.down_proj.bias"));
      assertEquals(32, o.length);
      assertTrue(norm(o) > 0 && norm(down) > 0, "compensation biases are not zero");
    }
    StructuredTestModels.logits(out, EVAL); // the forward loads and runs it
  }

  private static double norm(float[] v) {
    double s = 0;
    for (float x : v) {
      s += x * x;
    }
    return Math.sqrt(s);
  }

  @Test
  void bothHeadModesKeepQueryAndKvHeadsConsistentOnWiderGroups() throws Exception {
    // 8 query heads of 4 over 2 KV heads (4 per group); also Qwen3's per-head q/k norms
    ModelConfig qwen3 =
        ModelConfig.fromJson(
            "{\"architectures\":[\"Qwen3ForCausalLM\"],\"model_type\":\"qwen3\",\"vocab_size\":67,"
                + "\"hidden_size\":32,\"intermediate_size\":40,\"num_hidden_layers\":2,"
                + "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":6,"
                + "\"max_position_embeddings\":64,\"tie_word_embeddings\":true}");
    Path in = StructuredTestModels.random(qwen3, 5).write(tmp.resolve("in"));
    for (HeadMode mode : HeadMode.values()) {
      Path out = tmp.resolve(mode.key());
      StructuredReport r =
          prune(in, out, new StructuredSpec(0.5, 0.1, Importance.ACTIVATION, mode, false));
      ModelConfig c = ModelConfig.read(out);
      assertEquals(4, c.numHeads(), mode.key());
      assertEquals(mode == HeadMode.KV_GROUPS ? 1 : 2, c.numKvHeads(), mode.key());
      assertEquals(6, c.headDim());
      assertEquals(36, c.intermediateSize());
      for (StructuredReport.Layer l : r.layers()) {
        if (mode == HeadMode.QUERY_HEADS) {
          // two of each group's four
          assertEquals(2, Arrays.stream(l.removedHeads()).filter(h -> h < 4).count());
          assertEquals(2, Arrays.stream(l.removedHeads()).filter(h -> h >= 4).count());
        } else {
          int g = l.removedKvHeads()[0];
          assertArrayEquals(new int[] {4 * g, 4 * g + 1, 4 * g + 2, 4 * g + 3}, l.removedHeads());
        }
      }
      try (TensorSource s = Checkpoints.open(out)) {
        assertArrayEquals(new long[] {24, 32}, s.info(layer(0, "self_attn.q_proj.weight")).shape());
        long kv = 6L * c.numKvHeads();
        assertArrayEquals(new long[] {kv, 32}, s.info(layer(0, "self_attn.v_proj.weight")).shape());
        assertArrayEquals(new long[] {6}, s.info(layer(0, "self_attn.q_norm.weight")).shape());
      }
      float[] logits = StructuredTestModels.logits(out, EVAL);
      for (float v : logits) {
        assertTrue(Float.isFinite(v));
      }
    }
  }

  /**
   * The written directories as transformers would build them (check_pruned_model.py: every tensor
   * and bias the config implies, with its shape, nothing else) compute, in an independent
   * plain-PyTorch forward, the logits the project's forward computes.
   */
  @Test
  void prunedModelsMatchTheTorchReferenceAndTheHfLayout() throws Exception {
    Assumptions.assumeTrue(torchAvailable(), "python3 with torch and numpy is not installed");
    Path llama = StructuredTestModels.random(LLAMA, 6).write(tmp.resolve("llama"));
    ModelConfig qwen3 =
        ModelConfig.fromJson(
            "{\"architectures\":[\"Qwen3ForCausalLM\"],\"model_type\":\"qwen3\",\"vocab_size\":67,"
                + "\"hidden_size\":32,\"intermediate_size\":40,\"num_hidden_layers\":2,"
                + "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":6,"
                + "\"rms_norm_eps\":1e-6,\"max_position_embeddings\":64,"
                + "\"tie_word_embeddings\":true,\"attention_bias\":false}");
    Path qwen = StructuredTestModels.random(qwen3, 7).write(tmp.resolve("qwen3"));
    check(
        llama,
        "llama-kv",
        new StructuredSpec(0.5, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, true));
    check(
        qwen,
        "qwen3-query",
        new StructuredSpec(0.5, 0, Importance.ACTIVATION, HeadMode.QUERY_HEADS, true));
  }

  private void check(Path in, String name, StructuredSpec spec) throws Exception {
    Path out = tmp.resolve(name);
    prune(in, out, spec);
    float[] logits = StructuredTestModels.logits(out, EVAL);
    long[] ids = new long[EVAL.size() * EVAL.get(0).length];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = EVAL.get(i / EVAL.get(0).length)[i % EVAL.get(0).length];
    }
    Path expected = tmp.resolve(name + "-expected");
    try (SafetensorsWriter w = new SafetensorsWriter(expected, Map.of())) {
      java.nio.ByteBuffer b =
          java.nio.ByteBuffer.allocate(ids.length * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      for (long id : ids) {
        b.putLong(id);
      }
      b.flip();
      w.writeRaw("input_ids", DType.I64, new long[] {EVAL.size(), EVAL.get(0).length}, b);
      w.write(
          "logits",
          DType.F32,
          new long[] {EVAL.size(), EVAL.get(0).length, logits.length / ids.length},
          logits);
    }
    Process p =
        new ProcessBuilder(
                PYTHON,
                "src/test/python/check_pruned_model.py",
                out.toString(),
                expected.resolve("model.safetensors").toString())
            .redirectErrorStream(true)
            .start();
    String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "check_pruned_model.py did not finish");
    assertEquals(0, p.exitValue(), name + ": " + text);
    assertTrue(text.contains("HF layout: ok") && text.contains("RESULT: OK"), text);
  }

  /** Debian's python3 has torch (1.13); a python3 earlier on PATH may not. */
  private static final String PYTHON =
      java.nio.file.Files.isExecutable(Path.of("/usr/bin/python3"))
          ? "/usr/bin/python3"
          : "python3";

  private static boolean torchAvailable() {
    try {
      Process p = new ProcessBuilder(PYTHON, "-c", "import numpy, torch").start();
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (Exception e) {
      return false;
    }
  }

  @Test
  void refusesWhatIsNotBuilt() {
    StructuredSpec heads =
        new StructuredSpec(0.5, 0, Importance.ACTIVATION, HeadMode.KV_GROUPS, false);
    ModelConfig phi3 =
        ModelConfig.fromJson(
            "{\"model_type\":\"phi3\",\"vocab_size\":67,\"hidden_size\":32,"
                + "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4}");
    assertTrue(
        assertThrows(UnsupportedOperationException.class, () -> StructuredPruner.check(phi3, heads))
            .getMessage()
            .startsWith("not supported yet: structured pruning of phi3"));
    ModelConfig mixtral =
        ModelConfig.fromJson(
            "{\"model_type\":\"mixtral\",\"vocab_size\":67,\"hidden_size\":32,"
                + "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                + "\"num_local_experts\":4,\"num_experts_per_tok\":2}");
    assertThrows(UnsupportedOperationException.class, () -> StructuredPruner.check(mixtral, heads));
    ModelConfig gpt2 =
        ModelConfig.fromJson(
            "{\"model_type\":\"gpt2\",\"vocab_size\":67,\"n_embd\":32,\"n_layer\":2,\"n_head\":4}");
    assertThrows(UnsupportedOperationException.class, () -> StructuredPruner.check(gpt2, heads));
    ModelConfig mistral = LLAMA.with("{\"model_type\":\"mistral\"}");
    String why =
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    StructuredPruner.check(
                        mistral,
                        new StructuredSpec(
                            0, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, true)))
            .getMessage();
    assertTrue(why.contains("mlp_bias"), why);
    // 0.2 of 2 KV groups rounds to none
    assertThrows(
        IllegalArgumentException.class,
        () ->
            StructuredPruner.check(
                LLAMA,
                new StructuredSpec(0.2, 0, Importance.ACTIVATION, HeadMode.KV_GROUPS, false)));
  }
}
