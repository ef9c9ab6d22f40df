package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.GgufTestModels;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The all-sparse Qwen2-MoE and Qwen3-MoE goldens exported as llama.cpp's qwen2moe / qwen3moe: keys
 * and tensor table checked against a table written from src/models/qwen2moe.cpp and qwen3moe.cpp
 * (load_arch_tensors) and convert_hf_to_gguf.py's Qwen2MoeModel, and by the independent reader
 * read_gguf.py; the files read back with GgufToHf compute the original's logits (F32 exactly, Q8_0
 * within its error). Configs llama.cpp's graphs cannot compute (dense layers, a renormalisation
 * they do not do, qwen2moe without a shared expert or with a tied head) are refused before any file
 * is written.
 */
class QwenMoeGgufRoundTripTest {

  @TempDir Path dir;

  private static final long H = 32;
  private static final long V = 64;

  /** qwen2moe's tensors for the golden qwen2_moe_gguf, row-major (GGML's ne reversed). */
  private static Map<String, List<Long>> qwen2MoeTensors() {
    Map<String, List<Long>> t = new TreeMap<>();
    t.put("token_embd.weight", List.of(V, H));
    t.put("output_norm.weight", List.of(H));
    t.put("output.weight", List.of(V, H));
    for (int l = 0; l < 2; l++) {
      String b = "blk." + l + ".";
      t.put(b + "attn_norm.weight", List.of(H));
      t.put(b + "attn_q.weight", List.of(32L, H)); // 4 heads of 8, square as qwen2moe wants
      t.put(b + "attn_k.weight", List.of(16L, H));
      t.put(b + "attn_v.weight", List.of(16L, H));
      t.put(b + "attn_q.bias", List.of(32L));
      t.put(b + "attn_k.bias", List.of(16L));
      t.put(b + "attn_v.bias", List.of(16L));
      t.put(b + "attn_output.weight", List.of(H, 32L));
      t.put(b + "ffn_norm.weight", List.of(H));
      t.put(b + "ffn_gate_inp.weight", List.of(4L, H));
      t.put(b + "ffn_gate_exps.weight", List.of(4L, 16L, H));
      t.put(b + "ffn_up_exps.weight", List.of(4L, 16L, H));
      t.put(b + "ffn_down_exps.weight", List.of(4L, H, 16L));
      t.put(b + "ffn_gate_inp_shexp.weight", List.of(1L, H));
      t.put(b + "ffn_gate_shexp.weight", List.of(32L, H));
      t.put(b + "ffn_up_shexp.weight", List.of(32L, H));
      t.put(b + "ffn_down_shexp.weight", List.of(H, 32L));
    }
    return t;
  }

  /** qwen3moe's tensors for the golden qwen3_moe_gguf (tied: no output.weight). */
  private static Map<String, List<Long>> qwen3MoeTensors() {
    Map<String, List<Long>> t = new TreeMap<>();
    t.put("token_embd.weight", List.of(V, H));
    t.put("output_norm.weight", List.of(H));
    for (int l = 0; l < 2; l++) {
      String b = "blk." + l + ".";
      t.put(b + "attn_norm.weight", List.of(H));
      t.put(b + "attn_q.weight", List.of(64L, H)); // 4 heads of head_dim 16
      t.put(b + "attn_k.weight", List.of(32L, H));
      t.put(b + "attn_v.weight", List.of(32L, H));
      t.put(b + "attn_q_norm.weight", List.of(16L));
      t.put(b + "attn_k_norm.weight", List.of(16L));
      t.put(b + "attn_output.weight", List.of(H, 64L));
      t.put(b + "ffn_norm.weight", List.of(H));
      t.put(b + "ffn_gate_inp.weight", List.of(8L, H));
      t.put(b + "ffn_gate_exps.weight", List.of(8L, 16L, H));
      t.put(b + "ffn_up_exps.weight", List.of(8L, 16L, H));
      t.put(b + "ffn_down_exps.weight", List.of(8L, H, 16L));
    }
    return t;
  }

  private static long u32(GgufReader r, String key) throws Exception {
    return ((Number) r.require(key).value()).longValue();
  }

  /**
   * Exports {@code model} as F32, reads it back and checks weights and logits are the original's.
   */
  private void assertExactRoundTrip(Golden g, Path model, Path gguf) throws Exception {
    String py = GgufTestModels.assertReadGgufPyOk(gguf);
    Path back = dir.resolve(g.name + "-back");
    GgufToHf.convert(gguf, model, back);
    try (TensorSource a = Checkpoints.open(model);
        TensorSource b = Checkpoints.open(back)) {
      assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()));
      for (String n : a.names()) {
        assertArrayEquals(a.info(n).shape(), b.info(n).shape(), n);
        assertArrayEquals(a.readFloats(n), b.readFloats(n), n);
      }
    }
    double worst =
        GgufTestModels.maxAbsDiff(GgufTestModels.logits(model, g), GgufTestModels.logits(back, g));
    assertTrue(worst <= 1e-5, "max |logit difference| " + worst);
    try (Transformer t = Transformer.load(back, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      g.assertClose("logits", t.logits(m, g.inputIds(m)), "GGUF round trip of " + g.name);
    }
    assertTrue(py.contains("layout: ok"), py);
  }

  @Test
  void qwen2MoeExportsTheSharedExpertAndComesBackToTheOriginalLogits() throws Exception {
    try (Golden g = new Golden("qwen2_moe_gguf")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      Path gguf = dir.resolve("qwen2moe.gguf");
      GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
      try (GgufReader r = GgufReader.open(gguf);
          TensorSource src = Checkpoints.open(model)) {
        assertEquals("qwen2moe", r.require("general.architecture").value());
        assertEquals(4L, u32(r, "qwen2moe.expert_count"));
        assertEquals(2L, u32(r, "qwen2moe.expert_used_count"));
        assertEquals(16L, u32(r, "qwen2moe.expert_feed_forward_length"));
        assertEquals(32L, u32(r, "qwen2moe.expert_shared_feed_forward_length"));
        assertEquals(40L, u32(r, "qwen2moe.feed_forward_length"));
        assertEquals(64L, u32(r, "qwen2moe.context_length"));
        assertFalse(r.metadata().containsKey("qwen2moe.rope.dimension_count"));
        assertEquals(qwen2MoeTensors(), GgufTestModels.tensorShapes(r));
        for (GgufTensorInfo i : r.tensors()) {
          assertEquals(GgmlType.F32, i.type(), i.name());
        }
        assertArrayEquals(
            src.readFloats("model.layers.1.mlp.shared_expert_gate.weight"),
            r.readTensorFloats("blk.1.ffn_gate_inp_shexp.weight"));
        assertArrayEquals(
            src.readFloats("model.layers.0.mlp.shared_expert.down_proj.weight"),
            r.readTensorFloats("blk.0.ffn_down_shexp.weight"));
        float[] up = r.readTensorFloats("blk.1.ffn_up_exps.weight");
        for (int e = 0; e < 4; e++) {
          float[] w = src.readFloats("model.layers.1.mlp.experts." + e + ".up_proj.weight");
          assertArrayEquals(w, java.util.Arrays.copyOfRange(up, e * w.length, (e + 1) * w.length));
        }
      }
      assertExactRoundTrip(g, model, gguf);
    }
  }

  @Test
  void qwen3MoeExportsQkNormsAndStackedExpertsAndComesBackToTheOriginalLogits() throws Exception {
    try (Golden g = new Golden("qwen3_moe_gguf")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      Path gguf = dir.resolve("qwen3moe.gguf");
      GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
      try (GgufReader r = GgufReader.open(gguf)) {
        assertEquals("qwen3moe", r.require("general.architecture").value());
        assertEquals(8L, u32(r, "qwen3moe.expert_count"));
        assertEquals(2L, u32(r, "qwen3moe.expert_used_count"));
        assertEquals(16L, u32(r, "qwen3moe.expert_feed_forward_length"));
        assertEquals(48L, u32(r, "qwen3moe.feed_forward_length"));
        assertEquals(16L, u32(r, "qwen3moe.attention.key_length"));
        assertFalse(r.metadata().containsKey("qwen3moe.expert_shared_feed_forward_length"));
        assertEquals(qwen3MoeTensors(), GgufTestModels.tensorShapes(r));
      }
      assertExactRoundTrip(g, model, gguf);
    }
  }

  @Test
  void q8FilesKeepTheRoutersAndTheSharedGateF32AndComeBackWithinTheirQuantError() throws Exception {
    for (String name : List.of("qwen2_moe_gguf", "qwen3_moe_gguf")) {
      try (Golden g = new Golden(name)) {
        Path model = GgufTestModels.goldenModel(g, dir);
        Path gguf = dir.resolve(name + "-q8.gguf");
        GgufExport.export(model, LlamaFileType.Q8_0, Map.of(), gguf);
        Path back = dir.resolve(name + "-q8-back");
        Map<String, GgmlType> types = GgufToHf.convert(gguf, model, back).tensorTypes();
        assertEquals(GgmlType.F32, types.get("blk.0.ffn_gate_inp.weight"), name);
        assertEquals(GgmlType.Q8_0, types.get("blk.1.ffn_gate_exps.weight"), name);
        // rows of 16 fit no 32-value block: the fallback is F16
        assertEquals(GgmlType.F16, types.get("blk.0.ffn_down_exps.weight"), name);
        assertEquals(GgmlType.Q8_0, types.get("blk.0.attn_q.weight"), name);
        if (name.startsWith("qwen2")) {
          // [1, hidden]: a vector to ggml_n_dims, which llama-quantize leaves alone
          assertEquals(GgmlType.F32, types.get("blk.1.ffn_gate_inp_shexp.weight"));
          assertEquals(GgmlType.Q8_0, types.get("blk.1.ffn_down_shexp.weight"));
          assertEquals(GgmlType.Q8_0, types.get("output.weight"));
        }
        GgufTestModels.assertReadGgufPyOk(gguf);
        try (TensorSource a = Checkpoints.open(model);
            TensorSource b = Checkpoints.open(back)) {
          for (String n : a.names()) {
            long[] shape = a.info(n).shape();
            boolean exact = shape.length == 1 || shape[0] == 1 || n.endsWith(".mlp.gate.weight");
            double ceiling = exact ? 0 : n.contains("experts") && n.contains("down") ? 1e-3 : 1e-2;
            double err = GgufTestModels.relativeError(a.readFloats(n), b.readFloats(n));
            assertTrue(err <= ceiling, n + ": relative RMS error " + err + " > " + ceiling);
          }
        }
        double rel =
            GgufTestModels.relativeError(
                GgufTestModels.logits(model, g), GgufTestModels.logits(back, g));
        // measured 0.0186 (qwen2moe) and 0.0155 (qwen3moe), near Mixtral's 0.0295: a perturbed
        // router can swap a token's second expert
        assertTrue(rel > 0 && rel < 0.05, name + ": relative logit error " + rel);
      }
    }
  }

  @Test
  void theQuantizationPipelineWritesQwenMoeGgufFilesWhenOnlyGgufIsAsked() throws Exception {
    try (Golden g = new Golden("qwen3_moe_gguf")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      Path out = dir.resolve("gguf-out");
      QuantizationPipeline.Result r =
          QuantizationPipeline.run(
              new QuantizationPipeline.Request(
                  model,
                  new WeightQuantization(WeightQuantization.Method.RTN, 4, 0),
                  null,
                  false,
                  new QuantizationPipeline.Outputs(null, null, List.of(LlamaFileType.Q4_K_M), out)),
              GgufTestModels.JSON.createObjectNode().put("tool", "test"),
              QuantizationPipeline.Progress.NONE);
      assertEquals(1, r.gguf().size());
      try (GgufReader q4 = GgufReader.open(out.resolve("model-q4_k_m.gguf"))) {
        assertEquals("qwen3moe", q4.require("general.architecture").value());
        // rows of 32 fit no 256-value super-block: Q4_K falls back to Q5_0
        assertEquals(GgmlType.Q5_0, q4.tensor("blk.0.ffn_gate_exps.weight").type());
        assertEquals(GgmlType.F32, q4.tensor("blk.1.ffn_gate_inp.weight").type());
        // 8 experts: llama.cpp's 8-expert rule makes attn_v and attn_k Q8_0
        assertEquals(GgmlType.Q8_0, q4.tensor("blk.0.attn_k.weight").type());
        // and attn_output Q5_K, whose rows of 64 fall back to Q5_1
        assertEquals(GgmlType.Q5_1, q4.tensor("blk.1.attn_output.weight").type());
      }
    }
  }

  /** {@code golden} with {@code edit} applied to its config.json; the export must be refused. */
  private void assertRefused(String golden, Map<String, Object> edit, String message)
      throws Exception {
    try (Golden g = new Golden(golden)) {
      Path model = GgufTestModels.goldenModel(g, dir.resolve("refused-" + edit.hashCode()));
      ObjectNode c =
          (ObjectNode) GgufTestModels.JSON.readTree(model.resolve("config.json").toFile());
      c.setAll((ObjectNode) GgufTestModels.JSON.valueToTree(edit));
      Files.writeString(model.resolve("config.json"), GgufTestModels.JSON.writeValueAsString(c));
      Path out = model.resolve("out.gguf");
      UnsupportedOperationException e =
          assertThrows(
              UnsupportedOperationException.class,
              () -> GgufExport.export(model, LlamaFileType.Q8_0, Map.of(), out));
      assertEquals(message, e.getMessage());
      assertFalse(Files.exists(out));
    }
  }

  @Test
  void configsLlamaCppCannotComputeAreRefusedBeforeAnyFileIsWritten() throws Exception {
    assertRefused(
        "qwen2_moe_shared",
        Map.of(),
        "not supported: GGUF export of qwen2_moe with dense layer 0 (mlp_only_layers/"
            + "decoder_sparse_step; llama.cpp's qwen2moe makes every layer a mixture of experts)");
    assertRefused(
        "qwen3_moe_qk_norm",
        Map.of(),
        "not supported: GGUF export of qwen3_moe with dense layer 0 (mlp_only_layers/"
            + "decoder_sparse_step; llama.cpp's qwen3moe makes every layer a mixture of experts)");
    assertRefused(
        "qwen2_moe_gguf",
        Map.of("norm_topk_prob", true),
        "not supported: norm_topk_prob=true for GGUF export of qwen2_moe (llama.cpp's qwen2moe"
            + " never renormalises the top-k routing weights)");
    assertRefused(
        "qwen3_moe_gguf",
        Map.of("norm_topk_prob", false),
        "not supported: norm_topk_prob=false for GGUF export of qwen3_moe (llama.cpp's qwen3moe"
            + " always renormalises the top-k routing weights)");
    assertRefused(
        "qwen2_moe_gguf",
        Map.of("tie_word_embeddings", true),
        "not supported: tie_word_embeddings=true for GGUF export of qwen2_moe (llama.cpp's"
            + " qwen2moe requires output.weight)");
  }
}
