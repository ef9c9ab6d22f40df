package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The quantize stage's {@code method: codebook}: defaults, round trip, refused combinations. */
class CodebookParamsTest {
  private static final String CAL =
      "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n";

  private static StageSpec stage(String quantize) {
    return Recipe.parse("name: t\nstages:\n  - quantize: " + quantize + "\n" + CAL).stage(0);
  }

  private static String problem(String quantize) {
    return assertThrows(InvalidRecipeException.class, () -> stage(quantize)).getMessage();
  }

  @Test
  void codebookParsesWithTheCliDefaultsAndRoundTrips() {
    StageSpec s = stage("{ method: codebook, bits: 3 }");
    QuantizeParams q = (QuantizeParams) s.params();
    assertEquals(QuantizeParams.Method.CODEBOOK, q.method());
    assertEquals(3, q.bits());
    assertEquals(QuantizeParams.CodebookSpec.DEFAULTS, q.codebook());
    assertTrue(q.needsCalibration());
    assertFalse(q.toJson().has("group_size"), q.toJson().toString());
    assertEquals(s, StageSpec.fromJson(StageKind.QUANTIZE, s.toJson()));
    StageSpec l =
        stage(
            "{ method: codebook, bits: 2, codebook: { sensitivity: hessian, kmeans: lloyd,"
                + " max_iterations: 7 } }");
    assertEquals(
        new QuantizeParams.CodebookSpec("hessian", false, 7),
        ((QuantizeParams) l.params()).codebook());
    assertEquals(l, StageSpec.fromJson(StageKind.QUANTIZE, l.toJson()));
    // the default bits are 4
    assertEquals(4, ((QuantizeParams) stage("{ method: codebook }").params()).bits());
  }

  @Test
  void fisherCodebooksAreEstimatedWithTheWholeModelAndItsGradients() {
    dev.compactor.core.model.ModelConfig llama =
        dev.compactor.core.model.ModelConfig.fromJson(
            "{\"model_type\":\"llama\",\"vocab_size\":1000,\"hidden_size\":64,"
                + "\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                + "\"num_key_value_heads\":4,\"max_position_embeddings\":256}");
    long fisher = StepMemory.estimate(stage("{ method: codebook }"), llama) - StepMemory.BASE_BYTES;
    assertTrue(fisher >= 3 * llama.parameterCount() * 4, fisher + " bytes");
    long uniform =
        StepMemory.estimate(
                Recipe.parse(
                        "name: t\nstages:\n  - quantize: { method: codebook, codebook: {"
                            + " sensitivity: uniform } }\n")
                    .stage(0),
                llama)
            - StepMemory.BASE_BYTES;
    assertTrue(uniform < fisher, uniform + " vs " + fisher);
  }

  @Test
  void brokenCodebookRecipesSayWhatIsWrong() {
    String m = problem("{ method: codebook, bits: 8 }");
    assertTrue(m.contains("quantize.bits") && m.contains("codebook takes bits 2, 3 or 4"), m);
    m = problem("{ method: codebook, group_size: 32 }");
    assertTrue(m.contains("quantize.group_size") && m.contains("one codebook"), m);
    m = problem("{ method: codebook, symmetric: true }");
    assertTrue(m.contains("quantize.symmetric"), m);
    m = problem("{ method: codebook, export: [safetensors, \"gguf:q4_0\"] }");
    assertTrue(m.contains("quantize.export[1]") && m.contains("no per-row codebook format"), m);
    m = problem("{ method: codebook, export: [compressed-tensors] }");
    assertTrue(m.contains("quantize.export[0]"), m);
    m = problem("{ method: gptq, codebook: { sensitivity: fisher } }");
    assertTrue(m.contains("codebook settings are for method codebook only"), m);
    m = problem("{ method: codebook, codebook: { sensitivity: random } }");
    assertTrue(m.contains("quantize.codebook.sensitivity"), m);
    m = problem("{ method: rtn, bits: 2 }");
    assertTrue(m.contains("bits 2 is for method codebook only; rtn takes 4 or 8"), m);
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantizeParams(QuantizeParams.Method.CODEBOOK, 3, -1, true, List.of()));
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantizeParams(QuantizeParams.Method.GPTQ, 3, 128, true, List.of()));
  }
}
