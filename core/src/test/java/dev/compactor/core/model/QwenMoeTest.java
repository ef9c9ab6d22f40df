package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.distill.StudentBuilder;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningReport;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.RecipeProblem;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Qwen2-MoE and Qwen3-MoE configs, names, routing bookkeeping, save round trip and the stages that
 * refuse them (their forward is checked against the plain-torch reference in {@link
 * GoldenModelTest} and the trainer test, cases qwen2_moe_shared and qwen3_moe_qk_norm).
 */
class QwenMoeTest {

  /** Qwen/Qwen1.5-MoE-A2.7B's config.json fields. */
  static final String QWEN15_MOE_A27B =
      """
      {"architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0,
       "bos_token_id": 151643, "eos_token_id": 151643, "decoder_sparse_step": 1,
       "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
       "intermediate_size": 5632, "max_position_embeddings": 8192, "max_window_layers": 21,
       "model_type": "qwen2_moe", "moe_intermediate_size": 1408, "norm_topk_prob": false,
       "num_attention_heads": 16, "num_experts": 60, "num_experts_per_tok": 4,
       "num_hidden_layers": 24, "num_key_value_heads": 16, "output_router_logits": false,
       "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
       "shared_expert_intermediate_size": 5632, "sliding_window": 32768,
       "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
       "use_sliding_window": false, "vocab_size": 151936}
      """;

  /** Qwen/Qwen3-30B-A3B's config.json fields. */
  static final String QWEN3_30B_A3B =
      """
      {"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false,
       "attention_dropout": 0.0, "bos_token_id": 151643, "decoder_sparse_step": 1,
       "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048,
       "initializer_range": 0.02, "intermediate_size": 6144, "max_position_embeddings": 40960,
       "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe",
       "moe_intermediate_size": 768, "norm_topk_prob": true, "num_attention_heads": 32,
       "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
       "num_key_value_heads": 4, "output_router_logits": false, "rms_norm_eps": 1e-06,
       "rope_scaling": null, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
       "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
       "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
      """;

  @Test
  void qwen15MoeConfigHasItsPublishedParameterCount() {
    ModelConfig c = ModelConfig.fromJson(QWEN15_MOE_A27B);
    assertEquals(ModelConfig.Family.QWEN2_MOE, c.family());
    assertTrue(c.moe());
    assertEquals(60, c.numExperts());
    assertEquals(4, c.expertsPerToken());
    assertEquals(1408, c.expertIntermediateSize());
    assertEquals(5632, c.sharedExpertIntermediateSize());
    assertFalse(c.normTopkProb());
    assertTrue(c.qkvBias(), "Qwen2-MoE has q/k/v biases");
    assertFalse(c.outputBias() || c.mlpBias() || c.qkNorm());
    assertEquals(0, c.slidingWindow(0));
    for (int i = 0; i < 24; i++) {
      assertTrue(c.sparseLayer(i), "layer " + i);
    }
    // per layer: norms 2*2048, q/k/v/o 4*2048^2, q/k/v biases 3*2048, router 60*2048,
    // experts 60*3*2048*1408, shared expert 3*2048*5632 and its gate 2048 = 570,560,512;
    // 24 layers, embeddings and untied head 2*151936*2048, final norm 2048: "14.3B"
    assertEquals(14_315_784_192L, c.parameterCount());
  }

  @Test
  void qwen3MoeConfigHasItsPublishedParameterCount() {
    ModelConfig c = ModelConfig.fromJson(QWEN3_30B_A3B);
    assertEquals(ModelConfig.Family.QWEN3_MOE, c.family());
    assertTrue(c.moe() && c.qkNorm() && c.normTopkProb());
    assertEquals(128, c.headDim());
    assertEquals(128, c.numExperts());
    assertEquals(8, c.expertsPerToken());
    assertEquals(768, c.expertIntermediateSize());
    assertEquals(0, c.sharedExpertIntermediateSize(), "Qwen3-MoE has no shared expert");
    assertFalse(c.qkvBias() || c.outputBias() || c.mlpBias());
    // per layer: norms 4096, q 2048*4096, k/v 2*2048*512, o 4096*2048, q/k norms 2*128,
    // router 128*2048, experts 128*3*2048*768 = 623,120,640; 48 layers + 622,331,904: "30.5B"
    assertEquals(30_532_122_624L, c.parameterCount());
  }

  @Test
  void defaultsAreHfsAndSparseLayersFollowStepAndMlpOnlyLayers() {
    String qwen2 =
        "{\"model_type\":\"qwen2_moe\",\"vocab_size\":64,\"hidden_size\":32,"
            + "\"intermediate_size\":24,\"num_hidden_layers\":4,\"num_attention_heads\":4}";
    ModelConfig c = ModelConfig.fromJson(qwen2);
    assertEquals(60, c.numExperts());
    assertEquals(4, c.expertsPerToken());
    assertEquals(1408, c.expertIntermediateSize());
    assertEquals(5632, c.sharedExpertIntermediateSize(), "Qwen2MoeConfig's default");
    assertFalse(c.normTopkProb());
    assertTrue(c.sparseLayer(0) && c.sparseLayer(3));
    ModelConfig mixed = c.with("{\"decoder_sparse_step\":2,\"mlp_only_layers\":[1]}");
    boolean[] sparse = new boolean[4];
    for (int i = 0; i < 4; i++) {
      sparse[i] = mixed.sparseLayer(i);
    }
    // (i + 1) % 2 == 0 picks 1 and 3; mlp_only_layers takes 1 back
    assertArrayEquals(new boolean[] {false, false, false, true}, sparse);
    assertFalse(
        c.with("{\"shared_expert_intermediate_size\":0}").sharedExpertIntermediateSize() > 0);
    assertFalse(c.with("{\"qkv_bias\":false}").qkvBias());

    ModelConfig q3 = ModelConfig.fromJson(qwen2.replace("qwen2_moe", "qwen3_moe"));
    assertEquals(128, q3.numExperts());
    assertEquals(8, q3.expertsPerToken());
    assertEquals(768, q3.expertIntermediateSize());
    assertEquals(0, q3.sharedExpertIntermediateSize());
    assertFalse(q3.normTopkProb() || q3.qkvBias());
    assertTrue(q3.with("{\"attention_bias\":true}").outputBias());
  }

  @Test
  void badMoeConfigsGetClearErrors() {
    ModelConfig c =
        ModelConfig.fromJson(
            "{\"model_type\":\"qwen3_moe\",\"vocab_size\":64,\"hidden_size\":32,"
                + "\"intermediate_size\":24,\"num_hidden_layers\":3,\"num_attention_heads\":4,"
                + "\"num_experts\":4,\"num_experts_per_tok\":2}");
    assertEquals(
        "config.json: expected num_experts_per_tok between 1 and num_experts 4, found 5",
        assertThrows(IllegalArgumentException.class, () -> c.with("{\"num_experts_per_tok\":5}"))
            .getMessage());
    assertEquals(
        "config.json: expected a positive num_experts, found 0",
        assertThrows(IllegalArgumentException.class, () -> c.with("{\"num_experts\":0}"))
            .getMessage());
    assertEquals(
        "config.json: expected a positive \"decoder_sparse_step\", found 0",
        assertThrows(IllegalArgumentException.class, () -> c.with("{\"decoder_sparse_step\":0}"))
            .getMessage());
    assertEquals(
        "config.json: expected \"mlp_only_layers\" to hold layer indices 0..2, found 3",
        assertThrows(IllegalArgumentException.class, () -> c.with("{\"mlp_only_layers\":[0,3]}"))
            .getMessage());
    assertEquals(
        "config.json: expected a positive moe_intermediate_size, found 0",
        assertThrows(IllegalArgumentException.class, () -> c.with("{\"moe_intermediate_size\":0}"))
            .getMessage());
    assertEquals(
        "not supported yet: use_sliding_window=true (qwen3_moe)",
        assertThrows(
                UnsupportedModelException.class,
                () -> c.with("{\"use_sliding_window\":true,\"sliding_window\":4}"))
            .getMessage());
    assertEquals(
        "not supported yet: hidden_act gelu (only silu for qwen3_moe)",
        assertThrows(UnsupportedModelException.class, () -> c.with("{\"hidden_act\":\"gelu\"}"))
            .getMessage());
    assertThrows(IllegalArgumentException.class, () -> Layout.sharedExpertGate(c));
  }

  /** The Python reference wrote the checkpoints: Layout must name and count exactly its tensors. */
  @Test
  void layoutNamesAndParameterCountMatchTheReferenceCheckpoints() throws Exception {
    for (String name : List.of("qwen2_moe_shared", "qwen3_moe_qk_norm")) {
      try (Golden g = new Golden(name);
          TensorSource src = Checkpoints.open(g.dir)) {
        ModelConfig c = ModelConfig.read(g.dir);
        Set<String> expected = new HashSet<>();
        long count = 0;
        for (Layout.Spec s : Layout.globals(c, "")) {
          expected.add(s.name());
        }
        for (int i = 0; i < c.numLayers(); i++) {
          for (Layout.Spec s : Layout.layer(c, i)) {
            expected.add(Layout.layerPrefix(c, "", i) + s.name());
            assertArrayEquals(
                src.info(Layout.layerPrefix(c, "", i) + s.name()).shape(), s.shape(), s.name());
          }
        }
        for (String t : src.names()) {
          long n = 1;
          for (long d : src.info(t).shape()) {
            n *= d;
          }
          count += n;
        }
        assertEquals(new HashSet<>(src.names()), expected, name);
        assertEquals(count, c.parameterCount(), name);
      }
    }
  }

  @Test
  void expertsSeeOnlyTheirRoutedTokensAndTheSharedExpertSeesAll() throws Exception {
    try (Golden g = new Golden("qwen2_moe_shared");
        Transformer model = Transformer.load(g.dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      ModelConfig c = model.config();
      Map<String, Long> rows = new HashMap<>();
      model.logits(
          m, g.inputIds(m), (l, n, x) -> rows.merge(l + ":" + n, x.getShape().get(0), Long::sum));
      long tokens = 2 * 9;
      assertFalse(rows.containsKey("0:" + Layout.router(c)), "layer 0 is dense");
      assertEquals(tokens, rows.get("0:mlp.gate_proj"));
      for (int layer = 1; layer < 3; layer++) {
        String at = layer + ":";
        assertEquals(tokens, rows.get(at + Layout.router(c)));
        long routed = 0;
        for (int e = 0; e < c.numExperts(); e++) {
          Long gate = rows.get(at + Layout.expert(c, e, Layout.ExpertProj.GATE));
          assertEquals(gate, rows.get(at + Layout.expert(c, e, Layout.ExpertProj.UP)));
          assertEquals(gate, rows.get(at + Layout.expert(c, e, Layout.ExpertProj.DOWN)));
          routed += gate == null ? 0 : gate;
        }
        assertEquals(tokens * c.expertsPerToken(), routed, "each token runs exactly k experts");
        for (Layout.ExpertProj p : Layout.ExpertProj.values()) {
          assertEquals(tokens, rows.get(at + Layout.sharedExpert(c, p)));
        }
        assertEquals(tokens, rows.get(at + Layout.sharedExpertGate(c)));
      }
    }
  }

  @Test
  void streamingHoldsTheLargestLayer() throws Exception {
    try (Golden g = new Golden("qwen2_moe_shared");
        StreamingTransformer s = StreamingTransformer.open(g.dir, Device.cpu())) {
      long h = 32;
      long attention = 2 * h + h * 32 + 2 * h * 16 + 32 * h + (32 + 2 * 16);
      long sparse = 4 * h + 4 * 3 * h * 16 + 3 * h * 24 + h;
      assertEquals(4 * (attention + sparse), s.layerBytes());
    }
  }

  @Test
  void saveAndLoadRoundTrip(@TempDir Path tmp) throws Exception {
    for (String name : List.of("qwen2_moe_shared", "qwen3_moe_qk_norm")) {
      try (Golden g = new Golden(name);
          Transformer model = Transformer.load(g.dir, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        Path out = tmp.resolve(name);
        model.save(out, DType.F32, Map.of());
        float[] before = model.logits(m, g.inputIds(m)).toFloatArray();
        try (Transformer again = Transformer.load(out, Device.cpu());
            StreamingTransformer streamed = StreamingTransformer.open(out, Device.cpu())) {
          assertEquals(model.parameters().keySet(), again.parameters().keySet());
          assertArrayEquals(before, again.logits(m, g.inputIds(m)).toFloatArray());
          g.assertClose("logits", streamed.logits(m, g.inputIds(m)), "saved MoE checkpoint");
        }
        JsonNode saved = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        JsonNode original = new ObjectMapper().readTree(g.dir.resolve("config.json").toFile());
        for (String field :
            List.of("model_type", "num_experts", "norm_topk_prob", "decoder_sparse_step")) {
          assertEquals(original.get(field), saved.get(field), field);
        }
        assertEquals(original.get("mlp_only_layers"), saved.get("mlp_only_layers"));
      }
    }
  }

  /**
   * Pruning and quantizing Qwen MoE run (FamilyCalibrationTest checks what they do); distilling it
   * and exporting it to GGUF are refused, in the stage and at job start.
   */
  @Test
  void qwenMoeCompressesButRefusesDistillationAndGguf(@TempDir Path tmp) throws Exception {
    try (Golden g = new Golden("qwen2_moe_shared")) {
      ModelConfig c = ModelConfig.read(g.dir);
      PruningReport pruned =
          Pruning.run(
              PruningSpec.of("magnitude", 0.5),
              g.dir,
              tmp.resolve("pruned"),
              List::of,
              Device.cpu());
      int compressible = 0;
      for (int i = 0; i < c.numLayers(); i++) {
        compressible += LinearGroups.compressible(c, i).size();
      }
      assertEquals(compressible, pruned.tensors().size());
      assertEquals(
          "not supported yet: distilling qwen2_moe (mixture-of-experts layers)",
          assertThrows(
                  UnsupportedOperationException.class,
                  () -> StudentBuilder.build(g.dir, tmp.resolve("student"), 1))
              .getMessage());
      LayerwiseQuantizer.Summary quantized =
          LayerwiseQuantizer.run(
              g.dir,
              new WeightQuantization(WeightQuantization.Method.RTN, 8, 0),
              List.of(),
              (layer, weights, q) -> {},
              ProgressListener.NONE);
      assertEquals(compressible, quantized.quantizedLinears());
      ObjectMapper json = new ObjectMapper();
      try (TensorSource src = Checkpoints.open(g.dir)) {
        // llama.cpp's qwen2moe has no dense layers (QwenMoeGgufRoundTripTest exports all-sparse)
        assertEquals(
            "not supported: GGUF export of qwen2_moe with dense layer 0 (mlp_only_layers/"
                + "decoder_sparse_step; llama.cpp's qwen2moe makes every layer a mixture of experts)",
            assertThrows(
                    UnsupportedOperationException.class,
                    () ->
                        LlamaGgufExporter.export(
                            json.readTree(g.dir.resolve("config.json").toFile()),
                            src,
                            json.createObjectNode(),
                            new LlamaGgufExporter.Options(
                                "m", LlamaFileType.Q8_0, Map.of(), Map.of(), 1),
                            tmp.resolve("m.gguf")))
                .getMessage());
      }
    }
    String compress =
        """
        name: compress
        stages:
          - prune: { method: wanda, sparsity: 0.5 }
          - quantize: { method: gptq, bits: 4, export: [safetensors] }
          - evaluate: { perplexity: { seq_len: 64 } }
        calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }
        """;
    assertEquals(List.of(), problems(compress));
    String gguf =
        """
        name: gguf
        stages:
          - quantize: { method: rtn, bits: 8, export: [safetensors, "gguf:q8_0"] }
        """;
    assertEquals(List.of(), problems(gguf));
    String withDenseLayer =
        QWEN3_30B_A3B.replace("\"mlp_only_layers\": []", "\"mlp_only_layers\": [3]");
    assertEquals(
        List.of(
            "stages[0].quantize.export: not supported: GGUF export of qwen3_moe with dense layer 3"
                + " (mlp_only_layers / decoder_sparse_step); llama.cpp makes every layer sparse"),
        RecipeModelCheck.check(
                Recipe.parse(gguf), ModelConfig.fromJson(withDenseLayer), Long.MAX_VALUE)
            .stream()
            .map(RecipeProblem::toString)
            .toList());
    String unnormalised =
        QWEN3_30B_A3B.replace("\"norm_topk_prob\": true", "\"norm_topk_prob\": false");
    assertEquals(
        List.of(
            "stages[0].quantize.export: not supported: GGUF export of qwen3_moe with"
                + " norm_topk_prob=false; llama.cpp's qwen3moe always renormalises the top-k"
                + " weights"),
        RecipeModelCheck.check(
                Recipe.parse(gguf), ModelConfig.fromJson(unnormalised), Long.MAX_VALUE)
            .stream()
            .map(RecipeProblem::toString)
            .toList());
  }

  private static List<String> problems(String recipe) {
    return RecipeModelCheck.check(
            Recipe.parse(recipe), ModelConfig.fromJson(QWEN3_30B_A3B), Long.MAX_VALUE)
        .stream()
        .map(RecipeProblem::toString)
        .toList();
  }

  @Test
  void recipeCheckLetsQuantizeExportGgufWithoutAnImportanceMatrix() {
    ModelConfig m = ModelConfig.fromJson(QWEN3_30B_A3B);
    String gguf =
        """
        name: g
        stages:
          - quantize: { method: rtn, bits: 8, export: [gguf, "gguf:q4_k_m"] }
        """;
    assertEquals(List.of(), RecipeModelCheck.check(Recipe.parse(gguf), m, Long.MAX_VALUE));
    String both =
        """
        name: b
        stages:
          - quantize: { method: rtn, bits: 8, export: [gguf, safetensors] }
        """;
    assertEquals(List.of(), RecipeModelCheck.check(Recipe.parse(both), m, Long.MAX_VALUE));
    String imatrix =
        """
        name: i
        stages:
          - quantize: { method: rtn, bits: 4, export: [gguf] }
        calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }
        """;
    assertEquals(
        List.of(
            "stages[0].quantize.export: not supported yet: GGUF with an importance matrix"
                + " (calibration) on qwen3_moe (mixture-of-experts layers)"),
        RecipeModelCheck.check(Recipe.parse(imatrix), m, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList());
  }
}
