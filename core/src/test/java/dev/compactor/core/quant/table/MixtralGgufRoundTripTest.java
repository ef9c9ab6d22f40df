package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.GgufTestModels;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.CheckpointFormatException;
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
 * The golden Mixtral checkpoint (4 experts of 24, top-2, hidden 32) exported as llama.cpp's llama
 * arch with experts: {@code llama.expert_count}/{@code expert_used_count}, the router {@code
 * blk.N.ffn_gate_inp.weight} and the experts stacked into 3-D {@code ffn_gate_exps}, {@code
 * ffn_up_exps}, {@code ffn_down_exps} (expert 0 first), checked against a table written from
 * convert_hf_to_gguf.py (LlamaModel.modify_tensors) and by the independent reader read_gguf.py; the
 * file read back with GgufToHf computes the original's logits.
 */
class MixtralGgufRoundTripTest {

  @TempDir Path dir;

  private static final int H = 32;
  private static final int FF = 24;
  private static final int E = 4;

  /** llama.cpp's tensors for the golden case, row-major (GGML's ne reversed). */
  private static Map<String, List<Long>> expectedTensors() {
    Map<String, List<Long>> t = new TreeMap<>();
    t.put("token_embd.weight", List.of(64L, (long) H));
    t.put("output_norm.weight", List.of((long) H));
    t.put("output.weight", List.of(64L, (long) H));
    for (int l = 0; l < 2; l++) {
      String b = "blk." + l + ".";
      t.put(b + "attn_norm.weight", List.of((long) H));
      t.put(b + "attn_q.weight", List.of(32L, (long) H)); // 4 heads of 8
      t.put(b + "attn_k.weight", List.of(16L, (long) H)); // 2 kv heads
      t.put(b + "attn_v.weight", List.of(16L, (long) H));
      t.put(b + "attn_output.weight", List.of((long) H, 32L));
      t.put(b + "ffn_norm.weight", List.of((long) H));
      t.put(b + "ffn_gate_inp.weight", List.of((long) E, (long) H));
      t.put(b + "ffn_gate_exps.weight", List.of((long) E, (long) FF, (long) H));
      t.put(b + "ffn_up_exps.weight", List.of((long) E, (long) FF, (long) H));
      t.put(b + "ffn_down_exps.weight", List.of((long) E, (long) H, (long) FF));
    }
    return t;
  }

  /**
   * The golden model with a tokenizer and, as Mixtral's own config.json has them, BOS/EOS ids (here
   * the tokenizer's one special token), which llama.cpp's llama vocabulary reads.
   */
  private Path model(Golden g) throws Exception {
    Path m = GgufTestModels.goldenModel(g, dir);
    ObjectNode c = (ObjectNode) GgufTestModels.JSON.readTree(m.resolve("config.json").toFile());
    c.put("bos_token_id", 63).put("eos_token_id", 63);
    Files.writeString(m.resolve("config.json"), GgufTestModels.JSON.writeValueAsString(c));
    return m;
  }

  private static long u32(GgufReader r, String key) throws Exception {
    return ((Number) r.require(key).value()).longValue();
  }

  @Test
  void goldenMixtralExportsStackedExpertsAndComesBackToTheOriginalLogits() throws Exception {
    try (Golden g = new Golden("mixtral_moe")) {
      Path model = model(g);
      Path gguf = dir.resolve("mixtral.gguf");
      GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
      try (GgufReader r = GgufReader.open(gguf);
          TensorSource src = Checkpoints.open(model)) {
        assertEquals("llama", r.require("general.architecture").value());
        assertEquals(4L, u32(r, "llama.expert_count"));
        assertEquals(2L, u32(r, "llama.expert_used_count"));
        assertEquals(24L, u32(r, "llama.feed_forward_length"));
        // llama.cpp's llama has no sliding window: the window is the context, as for Mistral
        assertEquals(5L, u32(r, "llama.context_length"));
        assertEquals(expectedTensors(), GgufTestModels.tensorShapes(r));
        for (GgufTensorInfo i : r.tensors()) {
          assertEquals(GgmlType.F32, i.type(), i.name());
        }
        // the stack is the experts' [out, in] matrices one after the other, expert 0 first
        float[] down = r.readTensorFloats("blk.1.ffn_down_exps.weight");
        for (int e = 0; e < E; e++) {
          float[] w2 =
              src.readFloats("model.layers.1.block_sparse_moe.experts." + e + ".w2.weight");
          float[] slice = java.util.Arrays.copyOfRange(down, e * H * FF, (e + 1) * H * FF);
          assertArrayEquals(w2, slice, "expert " + e);
        }
        assertArrayEquals(
            src.readFloats("model.layers.0.block_sparse_moe.gate.weight"),
            r.readTensorFloats("blk.0.ffn_gate_inp.weight"));
      }
      String py = GgufTestModels.assertReadGgufPyOk(gguf);
      assertTrue(py.contains("llama.cpp llama layout: ok"), py);

      Path back = dir.resolve("mixtral-back");
      GgufToHf.Result res = GgufToHf.convert(gguf, model, back);
      assertEquals(GgmlType.F32, res.tensorTypes().get("blk.0.ffn_up_exps.weight"));
      try (TensorSource a = Checkpoints.open(model);
          TensorSource b = Checkpoints.open(back)) {
        assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()));
        for (String n : a.names()) {
          assertArrayEquals(a.readFloats(n), b.readFloats(n), n);
        }
      }
      float[] want = GgufTestModels.logits(model, g);
      float[] got = GgufTestModels.logits(back, g);
      double worst = GgufTestModels.maxAbsDiff(want, got);
      assertTrue(worst <= 1e-5, "max |logit difference| " + worst);
      try (Transformer t = Transformer.load(back, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        g.assertClose("logits", t.logits(m, g.inputIds(m)), "GGUF round trip of mixtral_moe");
      }
    }
  }

  @Test
  void aQ8FileOfMixtralKeepsTheRouterF32AndComesBackWithinItsQuantError() throws Exception {
    try (Golden g = new Golden("mixtral_moe")) {
      Path model = model(g);
      Path gguf = dir.resolve("q8.gguf");
      GgufExport.export(model, LlamaFileType.Q8_0, Map.of(), gguf);
      Path back = dir.resolve("q8-back");
      GgufToHf.Result res = GgufToHf.convert(gguf, model, back);
      Map<String, GgmlType> types = res.tensorTypes();
      // llama-quantize never quantizes the router (and convert_hf_to_gguf.py writes it F32)
      assertEquals(GgmlType.F32, types.get("blk.0.ffn_gate_inp.weight"));
      assertEquals(GgmlType.Q8_0, types.get("blk.0.ffn_gate_exps.weight"));
      assertEquals(GgmlType.Q8_0, types.get("blk.1.ffn_up_exps.weight"));
      // rows of 24 fit no 32-value block: the fallback is F16
      assertEquals(GgmlType.F16, types.get("blk.0.ffn_down_exps.weight"));
      assertEquals(GgmlType.Q8_0, types.get("blk.0.attn_q.weight"));
      assertEquals(GgmlType.Q8_0, types.get("output.weight"));
      assertEquals(GgmlType.F32, types.get("blk.0.ffn_norm.weight"));
      GgufTestModels.assertReadGgufPyOk(gguf);
      // every weight within its type's error: Q8_0 below 1% relative RMS on these Gaussian rows
      // (one f16 scale per 32 values), F16 ~0.03%, F32 exact; a misplaced expert would be O(1)
      try (TensorSource a = Checkpoints.open(model);
          TensorSource b = Checkpoints.open(back)) {
        for (String n : a.names()) {
          double err = GgufTestModels.relativeError(a.readFloats(n), b.readFloats(n));
          double ceiling =
              n.contains(".w2.")
                  ? 1e-3 // ffn_down_exps: F16
                  : a.info(n).shape().length == 1 || n.endsWith(".gate.weight") ? 0 : 1e-2;
          assertTrue(err <= ceiling, n + ": relative RMS error " + err + " > " + ceiling);
        }
      }
      double rel =
          GgufTestModels.relativeError(
              GgufTestModels.logits(model, g), GgufTestModels.logits(back, g));
      // measured 0.0295, against 0.0103 for the dense qwen3 golden: besides the weights' error,
      // a perturbed router can swap a token's second expert, which top-2 routing passes on whole
      assertTrue(rel > 0 && rel < 0.06, "relative logit error " + rel);
    }
  }

  @Test
  void anF16FileOfMixtralKeepsTheRouterAndNormsF32() throws Exception {
    try (Golden g = new Golden("mixtral_moe")) {
      Path model = model(g);
      Path gguf = dir.resolve("f16.gguf");
      GgufExport.export(model, LlamaFileType.F16, Map.of(), gguf);
      Path back = dir.resolve("f16-back");
      Map<String, GgmlType> types = GgufToHf.convert(gguf, model, back).tensorTypes();
      for (Map.Entry<String, GgmlType> e : types.entrySet()) {
        String n = e.getKey();
        boolean f32 = n.endsWith("_norm.weight") || n.endsWith("ffn_gate_inp.weight");
        assertEquals(f32 ? GgmlType.F32 : GgmlType.F16, e.getValue(), n);
      }
      GgufTestModels.assertReadGgufPyOk(gguf);
      double rel =
          GgufTestModels.relativeError(
              GgufTestModels.logits(model, g), GgufTestModels.logits(back, g));
      // measured 7.6e-4 (f16 keeps 11 significant bits), far below the Q8_0 file's 3%
      assertTrue(rel < 5e-3, "relative logit error " + rel);
    }
  }

  @Test
  void stackedExpertsAreTheSameBytesWhateverTheChunksAndThreads() throws Exception {
    try (Golden g = new Golden("mixtral_moe")) {
      Path model = model(g);
      JsonNode config = GgufTestModels.JSON.readTree(model.resolve("config.json").toFile());
      JsonNode tok = GgufTestModels.JSON.readTree(model.resolve("tokenizer.json").toFile());
      LlamaGgufExporter.Options one = LlamaGgufExporter.Options.of("m", LlamaFileType.Q8_0);
      Path a = dir.resolve("a.gguf");
      Path b = dir.resolve("b.gguf");
      try (TensorSource src = Checkpoints.open(model)) {
        LlamaGgufExporter.export(config, src, tok, one, a);
        // chunks of one or two rows: many chunks per expert, none across two experts
        LlamaGgufExporter.export(config, src, tok, one.withThreads(3, 50), b);
      }
      assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    }
  }

  @Test
  void theQuantizationPipelineWritesMixtralGgufFilesWhenOnlyGgufIsAsked() throws Exception {
    // what a recipe's GGUF-only quantize stage runs (RecipeModelCheck lets it through for MoE)
    try (Golden g = new Golden("mixtral_moe")) {
      Path model = model(g);
      Path out = dir.resolve("gguf-out");
      QuantizationPipeline.Result r =
          QuantizationPipeline.run(
              new QuantizationPipeline.Request(
                  model,
                  new WeightQuantization(WeightQuantization.Method.RTN, 4, 0),
                  null,
                  false,
                  new QuantizationPipeline.Outputs(
                      null, null, List.of(LlamaFileType.Q8_0, LlamaFileType.Q4_K_M), out)),
              GgufTestModels.JSON.createObjectNode().put("tool", "test"),
              QuantizationPipeline.Progress.NONE);
      assertEquals(2, r.gguf().size());
      try (GgufReader q4 = GgufReader.open(out.resolve("model-q4_k_m.gguf"))) {
        // rows of 32 fit no 256-value super-block: Q4_K falls back to Q5_0, Q6_K to Q8_0
        assertEquals(GgmlType.Q5_0, q4.tensor("blk.0.ffn_gate_exps.weight").type());
        assertEquals(GgmlType.F16, q4.tensor("blk.1.ffn_down_exps.weight").type());
        assertEquals(GgmlType.F32, q4.tensor("blk.1.ffn_gate_inp.weight").type());
        assertEquals(GgmlType.Q8_0, q4.tensor("output.weight").type());
      }
      GgufTestModels.assertReadGgufPyOk(out.resolve("model-q8_0.gguf"));
    }
  }

  @Test
  void anImportanceVectorForAStackedExpertTensorIsRefusedBeforeAnyFileIsWritten() throws Exception {
    try (Golden g = new Golden("mixtral_moe")) {
      Path model = model(g);
      Path out = dir.resolve("imp.gguf");
      UnsupportedOperationException e =
          assertThrows(
              UnsupportedOperationException.class,
              () ->
                  GgufExport.export(
                      model,
                      LlamaFileType.Q8_0,
                      Map.of("blk.0.ffn_up_exps.weight", new float[H]),
                      out));
      assertEquals(
          "not supported yet: importance for the stacked expert tensor blk.0.ffn_up_exps.weight",
          e.getMessage());
      assertFalse(Files.exists(out));
    }
  }

  @Test
  void aMixtralFileIsRefusedForAnOriginalWithAnotherExpertCount() throws Exception {
    try (Golden mix = new Golden("mixtral_moe")) {
      Path model = model(mix);
      Path gguf = dir.resolve("m.gguf");
      GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
      ObjectNode c =
          (ObjectNode) GgufTestModels.JSON.readTree(model.resolve("config.json").toFile());
      c.put("num_local_experts", 8);
      Path eight = dir.resolve("eight");
      Files.createDirectories(eight);
      Files.writeString(eight.resolve("config.json"), GgufTestModels.JSON.writeValueAsString(c));
      Files.copy(model.resolve("tokenizer.json"), eight.resolve("tokenizer.json"));
      Files.copy(model.resolve("model.safetensors"), eight.resolve("model.safetensors"));
      CheckpointFormatException e =
          assertThrows(
              CheckpointFormatException.class,
              () -> GgufToHf.convert(gguf, eight, dir.resolve("x")));
      assertEquals(
          "GGUF llama.expert_count: expected 8 (from the original config.json), found 4",
          e.getMessage());
      assertFalse(Files.exists(dir.resolve("x").resolve("config.json")));
    }
  }
}
