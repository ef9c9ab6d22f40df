package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.model.ModelConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code prune: {moefy: ...}}: its parameters, what may follow it and the job-start model check.
 */
class MoefyRecipeTest {

  private static final String CAL =
      "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n";

  private static List<RecipeProblem> validate(String stages, boolean calibration) {
    return Recipe.validate("name: t\nstages:\n" + stages + (calibration ? CAL : ""));
  }

  private static void assertOnly(List<RecipeProblem> problems, String path, String part) {
    assertEquals(1, problems.size(), problems.toString());
    assertEquals(path, problems.get(0).path(), problems.toString());
    assertTrue(problems.get(0).message().contains(part), problems.toString());
  }

  @Test
  void parsesWithDefaultsAndRoundTrips() {
    Recipe r =
        Recipe.parse(
            "name: t\nstages:\n  - prune: { moefy: { experts: 8, k: 2 } }\n  - evaluate: {}\n"
                + CAL);
    PruneParams p = (PruneParams) r.stage(0).params();
    assertEquals(
        new PruneParams.Moefy(8, 2, PruneParams.MoefyClustering.ACTIVATIONS, 300), p.moefy());
    assertTrue(p.needsCalibration());
    assertEquals(
        "{\"moefy\":{\"experts\":8,\"k\":2,\"clustering\":\"activations\",\"router_steps\":300}}",
        p.toJson().toString());
    assertEquals(p, PruneParams.from(p.toJson()));
  }

  @Test
  void refusesBadParametersAndMixing() {
    assertOnly(
        validate("  - prune: { moefy: { experts: 4, k: 4 } }\n", true),
        "stages[0].prune.moefy.k",
        "which is the dense MLP; k must be 1..3");
    assertOnly(
        validate("  - prune: { moefy: { experts: 1, k: 1 } }\n", true),
        "stages[0].prune.moefy.experts",
        "an integer >= 2");
    assertOnly(
        validate("  - prune: { moefy: { experts: 4, k: 1, clustering: kmeans } }\n", true),
        "stages[0].prune.moefy.clustering",
        "one of activations, weights, random");
    assertOnly(
        validate("  - prune: { moefy: { experts: 4, k: 1 }, sparsity: 0.5 }\n", true),
        "stages[0].prune.sparsity",
        "moefy splits whole MLPs into experts and takes no sparsity");
    assertOnly(
        validate("  - prune: { moefy: { experts: 4, k: 1 }, recovery: { steps: 4 } }\n", true),
        "stages[0].prune.recovery",
        "takes no recovery");
    assertOnly(
        validate("  - prune: { moefy: { experts: 4, k: 1 } }\n", false),
        "stages[0].prune.moefy",
        "moefication needs calibration text");
  }

  @Test
  void onlyEvaluateAndPublishMayFollow() {
    List<RecipeProblem> p =
        validate(
            "  - prune: { moefy: { experts: 4, k: 1 } }\n"
                + "  - quantize: { method: rtn, bits: 4 }\n"
                + "  - evaluate: {}\n",
            true);
    assertOnly(p, "stages[1].quantize", "not supported yet: quantize after moefication");
    assertEquals(
        List.of(),
        Recipe.validate(
            "name: t\nstages:\n  - prune: { moefy: { experts: 4, k: 1 } }\n  - evaluate: {}\n"
                + "  - publish: { gates: { max_kl_divergence: 1.0 } }\n"
                + CAL));
  }

  @Test
  void modelCheckWantsEqualExpertsOfADenseLlamaMlp() {
    ModelConfig llama = ModelConfig.llama(64, 32, 96, 2, 4, 2, 64);
    Recipe four =
        Recipe.parse("name: t\nstages:\n  - prune: { moefy: { experts: 4, k: 1 } }\n" + CAL);
    assertEquals(List.of(), RecipeModelCheck.check(four, llama, Long.MAX_VALUE));
    Recipe five =
        Recipe.parse("name: t\nstages:\n  - prune: { moefy: { experts: 5, k: 1 } }\n" + CAL);
    List<RecipeProblem> p = RecipeModelCheck.check(five, llama, Long.MAX_VALUE);
    assertOnly(
        p, "stages[0].prune.moefy.experts", "do not divide the model's intermediate_size 96");
    ModelConfig gpt2 =
        ModelConfig.fromJson(
            "{\"model_type\":\"gpt2\",\"vocab_size\":64,\"n_embd\":32,\"n_layer\":2,"
                + "\"n_head\":4,\"n_positions\":64}");
    List<RecipeProblem> g = RecipeModelCheck.check(four, gpt2, Long.MAX_VALUE);
    assertEquals(1, g.size(), g.toString());
    assertTrue(g.get(0).message().startsWith("not supported"), g.toString());
    // the estimate holds the whole model and every layer's MLP input
    long need = StepMemory.estimate(four.stage(0), llama);
    assertTrue(
        need > StepMemory.BASE_BYTES + 2L * llama.numLayers() * 8 * 64 * 32, "estimate " + need);
  }
}
