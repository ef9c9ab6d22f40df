package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code evaluate.latency} as a sweep, {@code evaluate.energy}, and the gates that use them. */
class EvaluateSpeedEnergyParamsTest {

  private static EvaluateParams evaluate(String params) {
    return (EvaluateParams)
        Recipe.parse("name: t\nstages:\n  - evaluate: " + params + "\n").stage(0).params();
  }

  @Test
  void latencyTrueIsTheDefaultSweepAndSerializesAsBefore() {
    EvaluateParams e = evaluate("{ latency: true }");
    assertEquals(EvaluateParams.Speed.DEFAULT, e.speed());
    assertFalse(e.energy());
    assertEquals(true, e.toJson().get("latency").asBoolean());
    assertFalse(e.toJson().has("energy"), "old recipes' JSON is unchanged");
    assertEquals(null, evaluate("{ latency: false }").speed());
  }

  @Test
  void latencyMappingGivesTheSweepAndRoundTrips() {
    EvaluateParams e =
        evaluate(
            "{ latency: { batch_sizes: [1, 4], context_lengths: [64, 128], decode_tokens: 8 },"
                + " energy: true }");
    assertTrue(e.latency() && e.energy());
    assertEquals(new EvaluateParams.Speed(List.of(1, 4), List.of(64, 128), 8, 3), e.speed());
    EvaluateParams again =
        (EvaluateParams) StageSpec.fromJson(StageKind.EVALUATE, e.toJson().toString()).params();
    assertEquals(e, again);
  }

  @Test
  void energyWithoutLatencyAndBadSweepsAreProblems() {
    List<RecipeProblem> p = Recipe.validate("name: t\nstages:\n  - evaluate: { energy: true }\n");
    assertEquals(1, p.size(), p.toString());
    assertEquals("stages[0].evaluate.energy", p.get(0).path());
    assertTrue(p.get(0).message().contains("turn latency on"), p.toString());
    List<RecipeProblem> bad =
        Recipe.validate(
            "name: t\nstages:\n  - evaluate: { latency: { batch_sizes: [0], repeats: 0 } }\n");
    assertEquals(2, bad.size(), bad.toString());
    assertTrue(bad.get(0).path().startsWith("stages[0].evaluate.latency."), bad.toString());
  }

  @Test
  void energyAndSpeedGatesNeedTheirMeasurements() {
    List<RecipeProblem> p =
        Recipe.validate(
            "name: t\nstages:\n  - evaluate: { kl: true }\n  - publish: { gates: {"
                + " max_energy_per_token_ratio: 0.9, min_decode_speedup: 1.2 } }\n");
    assertEquals(2, p.size(), p.toString());
    assertTrue(p.get(0).path().endsWith("gates.max_energy_per_token_ratio"), p.toString());
    assertTrue(p.get(1).path().endsWith("gates.min_decode_speedup"), p.toString());
    assertEquals(
        List.of(),
        Recipe.validate(
            "name: t\nstages:\n  - evaluate: { latency: true, energy: true }\n  - publish: {"
                + " gates: { max_energy_per_token_ratio: 0.9, min_decode_speedup: 1.2 } }\n"));
    PublishParams pub =
        (PublishParams)
            Recipe.parse(
                    "name: t\nstages:\n  - evaluate: { latency: true, energy: true }\n"
                        + "  - publish: { gates: { max_energy_per_token_ratio: 0.9 } }\n")
                .stage(1)
                .params();
    assertEquals(0.9, pub.gates().maxEnergyPerTokenRatio());
    assertEquals(0.9, pub.toJson().get("gates").get("max_energy_per_token_ratio").asDouble());
  }
}
