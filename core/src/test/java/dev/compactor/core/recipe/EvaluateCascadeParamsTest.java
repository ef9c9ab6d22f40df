package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The evaluate step's {@code cascade} key: defaults, round trip through the request JSON, refusals.
 */
class EvaluateCascadeParamsTest {

  @Test
  void cascadeKeyParsesWithDefaultsAndRoundTrips() {
    Recipe r =
        Recipe.parse(
            """
            name: c
            stages:
              - prune: { sparsity: 0.2 }
              - evaluate: { cascade: { signal: entropy, target: 0.97 } }
            """);
    EvaluateParams ev = (EvaluateParams) r.stage(1).params();
    assertEquals(new EvaluateParams.Cascade("entropy", "request", 0.97), ev.cascade());
    StageSpec back = StageSpec.fromJson(StageKind.EVALUATE, r.stage(1).toJson());
    assertEquals(ev, back.params());
    EvaluateParams plain =
        (EvaluateParams) Recipe.parse("name: p\nstages:\n  - evaluate:\n").stage(0).params();
    assertNull(plain.cascade());
  }

  @Test
  void cascadeAloneIsSomethingToMeasureAndBadValuesAreRefused() {
    Recipe.parse("name: a\nstages:\n  - evaluate: { perplexity: false, kl: false, cascade: {} }\n");
    InvalidRecipeException e =
        assertThrows(
            InvalidRecipeException.class,
            () ->
                Recipe.parse(
                    "name: b\nstages:\n  - evaluate: { cascade: { granularity: sentence } }\n"));
    assertTrue(e.problems().get(0).path().contains("cascade.granularity"), e.getMessage());
    assertThrows(
        InvalidRecipeException.class,
        () -> Recipe.parse("name: b\nstages:\n  - evaluate: { cascade: { target: 0 } }\n"));
  }
}
