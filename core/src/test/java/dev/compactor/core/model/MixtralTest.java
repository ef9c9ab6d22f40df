package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.distill.StudentBuilder;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.RecipeProblem;
import dev.compactor.core.recipe.StepMemory;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mixtral's config and the stages that refuse it (its forward is checked against the plain-torch
 * reference in {@link GoldenModelTest} and the trainer test, case mixtral_moe).
 */
class MixtralTest {

  /** Mixtral-8x7B-v0.1's published config.json. */
  static final String MIXTRAL_8X7B =
      """
      {"architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
       "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
       "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral",
       "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32,
       "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": false,
       "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02,
       "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
       "transformers_version": "4.36.0.dev0", "use_cache": true, "vocab_size": 32000}
      """;

  @Test
  void mixtral8x7bConfigHasItsPublishedParameterCount() {
    ModelConfig c = ModelConfig.fromJson(MIXTRAL_8X7B);
    assertEquals(ModelConfig.Family.MIXTRAL, c.family());
    assertTrue(c.moe());
    assertEquals(8, c.numExperts());
    assertEquals(2, c.expertsPerToken());
    assertEquals(0, c.slidingWindow(), "sliding_window null: full attention");
    assertEquals(1e6, c.ropeTheta());
    assertFalse(c.qkvBias() || c.outputBias() || c.mlpBias());
    // 46.7 B: 32 layers of attention, router and 8 experts, embeddings and untied head
    assertEquals(46_702_792_704L, c.parameterCount());
  }

  @Test
  void defaultsFollowMixtralConfigAndBadExpertCountsAreRefused() {
    String minimal =
        "{\"model_type\":\"mixtral\",\"vocab_size\":64,\"hidden_size\":32,"
            + "\"intermediate_size\":24,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
            + "\"attention_bias\":true,\"sliding_window\":5}";
    ModelConfig c = ModelConfig.fromJson(minimal);
    assertEquals(8, c.numExperts());
    assertEquals(2, c.expertsPerToken());
    assertEquals(1e6, c.ropeTheta(), "MixtralConfig's default rope_theta");
    assertEquals(5, c.slidingWindow(0), "Mixtral windows every layer, as Mistral");
    assertFalse(c.qkvBias(), "HF's Mixtral attention has no biases");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> c.with("{\"num_local_experts\":2,\"num_experts_per_tok\":3}"));
    assertTrue(e.getMessage().contains("num_experts_per_tok"), e.getMessage());
  }

  @Test
  void streamingHoldsOneLayerWithAllItsExperts() throws Exception {
    try (Golden g = new Golden("mixtral_moe");
        StreamingTransformer s = StreamingTransformer.open(g.dir, Device.cpu())) {
      long h = 32;
      long inter = 24;
      long attention = h * (4 * 8) + 2 * h * (2 * 8) + (4 * 8) * h;
      long perLayer = 2 * h + attention + 4 * h + 4 * 3 * h * inter;
      assertEquals(4 * perLayer, s.layerBytes());
    }
  }

  @Test
  void distillationAndCompressedTensorsRefuseMixtral(@TempDir Path tmp) throws Exception {
    // pruning, quantizing (FamilyCalibrationTest) and GGUF (MixtralGgufRoundTripTest) work; these
    // do not know experts
    try (Golden g = new Golden("mixtral_moe")) {
      UnsupportedOperationException distill =
          assertThrows(
              UnsupportedOperationException.class,
              () -> StudentBuilder.build(g.dir, tmp.resolve("student"), 1));
      assertEquals(
          "not supported yet: distilling mixtral (mixture-of-experts layers)", msg(distill));

      UnsupportedOperationException ct =
          assertThrows(
              UnsupportedOperationException.class,
              () ->
                  new dev.compactor.core.quant.export.QuantizedCheckpointWriter(
                      ModelConfig.read(g.dir), null));
      assertEquals(
          "not supported yet: compressed-tensors export of mixtral (mixture-of-experts layers)",
          msg(ct));
    }
  }

  private static List<String> expertProblems(String experts, ModelConfig m) {
    String recipe =
        "name: e\nstages:\n  - prune: { experts: "
            + experts
            + " }\ncalibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }\n";
    return RecipeModelCheck.check(Recipe.parse(recipe), m, Long.MAX_VALUE).stream()
        .map(RecipeProblem::toString)
        .toList();
  }

  @Test
  void recipeCheckTakesExpertPruningOnMoeModelsBelowTheirExpertCountOnly() {
    ModelConfig m = ModelConfig.fromJson(MIXTRAL_8X7B);
    for (String method : List.of("frequency", "weighted_norm", "merge")) {
      assertEquals(List.of(), expertProblems("{ keep: 7, method: " + method + " }", m), method);
      assertEquals(List.of(), expertProblems("{ keep: 1, method: " + method + " }", m), method);
    }
    assertEquals(
        List.of(
            "stages[0].prune.experts.keep: keeps 8 of the model's 8 experts per layer; keep must"
                + " be 1..7"),
        expertProblems("{ keep: 8, method: frequency }", m));
    assertEquals(
        List.of(
            "stages[0].prune.experts.keep: keeps 12 of the model's 8 experts per layer; keep must"
                + " be 1..7"),
        expertProblems("{ keep: 12, method: merge }", m));
    assertEquals(
        List.of(
            "stages[0].prune.experts: not supported: expert pruning of llama, a dense model"
                + " without mixture-of-experts layers; prune it by sparsity or pattern"),
        expertProblems(
            "{ keep: 2, method: weighted_norm }", ModelConfig.llama(1024, 64, 128, 2, 4, 2, 256)));
    assertEquals(
        List.of(),
        expertProblems(
            "{ keep: 2, method: merge }", ModelConfig.fromJson(QwenMoeTest.QWEN3_30B_A3B)),
        "Qwen MoE experts are pruned and merged like Mixtral's");
  }

  @Test
  void recipeCheckRefusesDistillationAndAGgufImportanceMatrixButNotPruneOrQuantize() {
    ModelConfig m = ModelConfig.fromJson(MIXTRAL_8X7B);
    String recipe =
        """
        name: all
        stages:
          - prune: { method: wanda, sparsity: 0.5 }
          - distill: { keep_layers: 2, steps: 10 }
          - quantize: { method: gptq, bits: 4, export: [safetensors, gguf] }
          - evaluate: { perplexity: { seq_len: 64 } }
        calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }
        """;
    List<String> p =
        RecipeModelCheck.check(Recipe.parse(recipe), m, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList();
    assertEquals(
        List.of(
            "stages[1].distill: not supported yet: distilling mixtral (mixture-of-experts"
                + " layers); prune, quantize or evaluate it",
            "stages[2].quantize.export: not supported yet: GGUF with an importance matrix"
                + " (calibration) on mixtral (mixture-of-experts layers)"),
        p);
  }

  @Test
  void recipeCheckLetsQuantizeExportGgufWithoutAnImportanceMatrixButNotCompressedTensors() {
    ModelConfig m = ModelConfig.fromJson(MIXTRAL_8X7B);
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
          - quantize: { method: rtn, bits: 8, export: [gguf, safetensors, compressed-tensors] }
        """;
    assertEquals(
        List.of(
            "stages[0].quantize.export: not supported yet: compressed-tensors export of mixtral"
                + " (mixture-of-experts layers)"),
        RecipeModelCheck.check(Recipe.parse(both), m, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList());
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
                + " (calibration) on mixtral (mixture-of-experts layers)"),
        RecipeModelCheck.check(Recipe.parse(imatrix), m, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList());
  }

  @Test
  void gptqMemoryCountsEveryExpertsGramMatrix() {
    // Mixtral 8x7B's down projections read 14336 inputs: 8 Gram matrices of 14336^2 doubles
    ModelConfig m = ModelConfig.fromJson(MIXTRAL_8X7B);
    String recipe =
        """
        name: q
        stages:
          - quantize: { method: gptq, bits: 4, export: [safetensors] }
        calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }
        """;
    String rtn = recipe.replace("gptq", "rtn");
    long grams = 8L * 14336 * 14336 * 8;
    long extra =
        StepMemory.estimate(Recipe.parse(recipe).stage(0), m)
            - StepMemory.estimate(Recipe.parse(rtn).stage(0), m);
    assertTrue(extra > grams, "calibration adds " + extra + " bytes");
  }

  private static String msg(Throwable t) {
    return t.getMessage();
  }
}
