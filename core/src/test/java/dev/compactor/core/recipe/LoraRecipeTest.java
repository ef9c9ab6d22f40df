package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.lora.LoraSpec;
import dev.compactor.core.model.ModelConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code distill: {lora: ...}}: LoRA recovery as a recipe step, its defaults and its rules. */
class LoraRecipeTest {

  private static final String CALIBRATION =
      "calibration: { dataset: s3://d/cal.txt, samples: 32, seq_len: 64 }\n";

  private static List<String> problems(String stages) {
    return Recipe.validate("name: t\nstages:\n" + stages + CALIBRATION).stream()
        .map(RecipeProblem::toString)
        .toList();
  }

  private static DistillParams params(String json) {
    return (DistillParams) StageSpec.fromJson(StageKind.DISTILL, json).params();
  }

  @Test
  void loraDefaultsAreCompactorLorasAndRoundTrip() {
    DistillParams p = params("{\"lora\":{}}");
    DistillParams.Lora l = p.lora();
    assertEquals(8, l.rank());
    assertEquals(16.0, l.alpha());
    assertEquals(LoraSpec.DEFAULT_TARGETS, l.targets());
    assertTrue(l.merge());
    assertEquals(4, l.batch());
    // pure KL at temperature 1 and lr 1e-3, as ./compactor lora
    assertEquals(1.0, p.alpha());
    assertEquals(1.0, p.temperature());
    assertEquals(1e-3, p.lr());
    assertEquals(200, p.steps());
    assertEquals(List.of(), p.layers());
    assertEquals(p, params(p.toJson().toString()));
    DistillParams q =
        params("{\"lora\":{\"rank\":4,\"alpha\":8,\"targets\":[\"q_proj\"]},\"steps\":20}");
    assertEquals(new LoraSpec(4, 8f, List.of("q_proj"), DistillParams.Lora.SEED), q.lora().spec());
    assertEquals(q, params(q.toJson().toString()));
    assertNull(params("{\"keep_layers\":2}").lora());
  }

  @Test
  void pruneThenLoraThenQuantizeIsAccepted() {
    assertEquals(
        List.of(),
        problems(
            "  - prune: { method: wanda, sparsity: 0.5 }\n"
                + "  - distill: { lora: { rank: 8 }, steps: 20 }\n"
                + "  - quantize: { method: gptq, bits: 4 }\n"
                + "  - evaluate: {}\n"
                + "  - publish: {}\n"));
    assertEquals(
        List.of(),
        problems(
            "  - factorize: { ratio: 0.7, merge: true }\n"
                + "  - distill: { lora: {}, steps: 5 }\n"));
  }

  @Test
  void loraAfterQuantizeUnmergedFactorizeOrWithMergeFalseIsRefused() {
    List<String> q =
        problems(
            "  - quantize: { method: rtn, bits: 4 }\n" + "  - distill: { lora: {}, steps: 5 }\n");
    assertEquals(1, q.size(), q.toString());
    assertTrue(
        q.get(0).startsWith("stages[1].distill.lora: not supported yet: lora after quantize"));
    List<String> f =
        problems("  - factorize: { ratio: 0.7 }\n" + "  - distill: { lora: {}, steps: 5 }\n");
    assertEquals(1, f.size(), f.toString());
    assertTrue(f.get(0).contains("not supported yet: lora after a factorize with merge: false"));
    List<String> m = problems("  - distill: { lora: { merge: false }, steps: 5 }\n");
    assertEquals(1, m.size(), m.toString());
    assertTrue(
        m.get(0).startsWith("stages[0].distill.lora.merge: not supported yet: merge: false"));
  }

  @Test
  void layerDroppingKeysAndBadLoraValuesAreProblems() {
    List<String> p = problems("  - distill: { lora: {}, keep_layers: 2, teacher_topk: 8 }\n");
    assertEquals(2, p.size(), p.toString());
    assertTrue(p.get(0).startsWith("stages[0].distill.keep_layers: not supported with lora"));
    assertTrue(p.get(1).startsWith("stages[0].distill.teacher_topk: not supported with lora"));
    assertTrue(problems("  - distill: { lora: { rank: 0 } }\n").get(0).contains("lora.rank"));
    assertTrue(
        problems("  - distill: { lora: { targets: [q_proj, q_proj] } }\n")
            .get(0)
            .contains("target modules repeat"));
    assertTrue(problems("  - distill: { lora: { colour: red } }\n").get(0).contains("lora.colour"));
    List<String> noCalibration =
        Recipe.validate("name: t\nstages:\n  - distill: { lora: {} }\n").stream()
            .map(RecipeProblem::toString)
            .toList();
    assertEquals(1, noCalibration.size(), noCalibration.toString());
    assertTrue(noCalibration.get(0).contains("needs calibration text"));
  }

  @Test
  void theModelCheckDoesNotAskALoraStepForFewerLayers() {
    ModelConfig llama = ModelConfig.llama(64, 32, 64, 2, 4, 2, 64);
    Recipe r =
        Recipe.parse("name: t\nstages:\n  - distill: { lora: {}, steps: 5 }\n" + CALIBRATION);
    assertEquals(List.of(), RecipeModelCheck.check(r, llama, Long.MAX_VALUE));
    assertTrue(StepMemory.estimate(r.stage(0), llama) > 0);
  }
}
