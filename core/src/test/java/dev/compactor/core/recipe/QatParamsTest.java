package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.model.ModelConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The quantize stage's {@code method: qat}: parsed with defaults, round-tripped through the
 * paramsJson a stage reads, cross-checked with messages, limited, and refused at job start for the
 * families QAT cannot train.
 */
class QatParamsTest {
  private static final String CAL =
      "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n";

  private static Recipe recipe(String quantize) {
    return Recipe.parse("name: t\nstages:\n  - quantize: " + quantize + "\n" + CAL);
  }

  private static String problem(String quantize) {
    InvalidRecipeException e = assertThrows(InvalidRecipeException.class, () -> recipe(quantize));
    return e.getMessage();
  }

  @Test
  void qatParsesWithTheCliDefaultsAndRoundTripsThroughParamsJson() {
    QuantizeParams q =
        (QuantizeParams)
            recipe("{ method: qat, bits: 4, group_size: 32, qat: { steps: 20 } }")
                .stage(0)
                .params();
    assertEquals(QuantizeParams.Method.QAT, q.method());
    assertEquals(
        new QuantizeParams.Qat(QuantizeParams.QatInit.RTN, 20, 1e-4, 0.9, 4, 512, 128), q.qat());
    assertTrue(q.symmetric());
    assertTrue(q.needsCalibration());
    StageSpec s =
        recipe(
                "{ method: qat, bits: 8, group_size: -1, export: [safetensors, gguf],"
                    + " qat: { init: gptq, steps: 5, lr: 2e-5, alpha: 1.0, batch: 2, windows: 8,"
                    + " seq_len: 32 } }")
            .stage(0);
    StageSpec back = StageSpec.fromJson(StageKind.QUANTIZE, s.toJson());
    assertEquals(s, back);
    QuantizeParams b = (QuantizeParams) back.params();
    assertEquals(QuantizeParams.QatInit.GPTQ, b.qat().init());
    assertEquals(1.0, b.qat().alpha());
    assertEquals(32, b.qat().seqLen());
    // the other methods carry no qat block
    QuantizeParams rtn = (QuantizeParams) recipe("{ method: rtn, bits: 4 }").stage(0).params();
    assertNull(rtn.qat());
    assertTrue(!rtn.toJson().has("qat"));
  }

  @Test
  void brokenQatRecipesSayWhatIsWrong() {
    String m = problem("{ method: qat, bits: 4 }");
    assertTrue(m.contains("quantize.qat") && m.contains("needs its training settings"), m);
    m = problem("{ method: rtn, bits: 4, qat: { steps: 5 } }");
    assertTrue(m.contains("qat settings are for method qat only, found method rtn"), m);
    m = problem("{ method: qat, symmetric: false, qat: { steps: 5 } }");
    assertTrue(m.contains("quantize.symmetric") && m.contains("not supported yet: asymmetric"), m);
    m = problem("{ method: qat, qat: { steps: 5, batch: 8, windows: 4 } }");
    assertTrue(m.contains("quantize.qat.batch") && m.contains("more than windows 4"), m);
    m = problem("{ method: qat, bits: 4, export: [\"gguf:q4_k_m\"], qat: { steps: 5 } }");
    assertTrue(
        m.contains("quantize.export[0]")
            && m.contains("not supported yet: qat export to gguf:q4_k_m"),
        m);
    assertTrue(m.contains("gguf:q4_0"), m);
    m = problem("{ method: qat, bits: 8, export: [\"gguf:q4_0\"], qat: { steps: 5 } }");
    assertTrue(m.contains("q8_0 blocks only"), m);
    m = problem("{ method: qat, qat: { steps: 0 } }");
    assertTrue(m.contains("quantize.qat.steps"), m);
    m = problem("{ method: qat, qat: { steps: 5, init: awq } }");
    assertTrue(m.contains("quantize.qat.init") && m.contains("rtn, gptq"), m);
    m = problem("{ method: qat, qat: { steps: 5, alpha: 1.5 } }");
    assertTrue(m.contains("quantize.qat.alpha"), m);
    m = problem("{ method: qat, bits: 3, qat: { steps: 5 } }");
    assertTrue(
        m.contains("quantize.bits")
            && m.contains("bits 3 is for method codebook only; qat takes 4"),
        m);
    // QAT trains on windows of the calibration text
    InvalidRecipeException e =
        assertThrows(
            InvalidRecipeException.class,
            () ->
                Recipe.parse(
                    "name: t\nstages:\n  - quantize: { method: qat, qat: { steps: 5 } }\n"));
    assertTrue(e.getMessage().contains("method qat needs calibration text"), e.getMessage());
    // the typed constructor holds the same rules
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantizeParams(QuantizeParams.Method.QAT, 4, 128, true, List.of()));
  }

  @Test
  void qatStepsAndSeqLenAreBoundedLikeDistillation() {
    Recipe r = recipe("{ method: qat, qat: { steps: 300000, seq_len: 9000 } }");
    List<String> p = RecipeLimits.DEFAULTS.check(r).stream().map(RecipeProblem::toString).toList();
    assertTrue(p.stream().anyMatch(s -> s.contains("stages[0].quantize.qat.steps")), p.toString());
    assertTrue(
        p.stream().anyMatch(s -> s.contains("stages[0].quantize.qat.seq_len")), p.toString());
  }

  @Test
  void familiesQatCannotTrainAreRefusedAtJobStart() {
    Recipe r = recipe("{ method: qat, qat: { steps: 5 } }");
    ModelConfig mixtral =
        ModelConfig.fromJson(
            "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\","
                + "\"vocab_size\":257,\"hidden_size\":32,\"intermediate_size\":24,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                + "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
                + "\"num_local_experts\":6,\"num_experts_per_tok\":2,"
                + "\"tie_word_embeddings\":false,\"sliding_window\":null}");
    List<String> p =
        RecipeModelCheck.check(r, mixtral, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList();
    assertTrue(
        p.stream()
            .anyMatch(
                s ->
                    s.contains("quantize.method")
                        && s.contains("not supported yet: qat of mixtral")),
        p.toString());
    ModelConfig gpt2 =
        ModelConfig.fromJson("{\"model_type\":\"gpt2\",\"n_embd\":32,\"n_layer\":2,\"n_head\":4}");
    p =
        RecipeModelCheck.check(r, gpt2, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList();
    assertTrue(
        p.stream().anyMatch(s -> s.contains("not supported yet: quantizing gpt2")), p.toString());
  }

  @Test
  void qatMemoryCountsTheTeacherTheTrainedStudentAndABatch() {
    ModelConfig llama =
        ModelConfig.fromJson(
            "{\"model_type\":\"llama\",\"vocab_size\":1000,\"hidden_size\":64,"
                + "\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                + "\"num_key_value_heads\":4,\"max_position_embeddings\":256}");
    StageSpec small = recipe("{ method: qat, qat: { steps: 5, batch: 1, seq_len: 16 } }").stage(0);
    StageSpec big = recipe("{ method: qat, qat: { steps: 5, batch: 8, seq_len: 128 } }").stage(0);
    long params = llama.parameterCount();
    long s = StepMemory.estimate(small, llama) - StepMemory.BASE_BYTES;
    assertTrue(s >= 7 * params * 4, s + " bytes for " + params + " parameters");
    // one batch's activations: 8 × 128 tokens hold more than 1 × 16
    assertTrue(StepMemory.estimate(big, llama) > StepMemory.estimate(small, llama));
    // a budget below the estimate refuses the step with the figure
    String m =
        RecipeModelCheck.check(recipe("{ method: qat, qat: { steps: 5 } }"), llama, 1L << 20)
            .toString();
    assertTrue(m.contains("needs about"), m);
  }
}
