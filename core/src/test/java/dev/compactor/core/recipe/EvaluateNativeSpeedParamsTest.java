package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.model.ModelConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code evaluate.native_speed}, where it is refused, and the gate that uses it. */
class EvaluateNativeSpeedParamsTest {

  private static final String Q4 =
      "name: t\nstages:\n  - quantize: { method: rtn, bits: 4, group_size: 32, export:"
          + " [\"gguf:q4_0\"] }\n";

  private static EvaluateParams evaluate(String recipe) {
    Recipe r = Recipe.parse(recipe);
    return (EvaluateParams) r.stage(r.stages().size() - 1).params();
  }

  @Test
  void trueIsTheDefaultAndAMappingRoundTrips() {
    assertEquals(
        EvaluateParams.NativeSpeed.DEFAULT,
        evaluate(Q4 + "  - evaluate: { native_speed: true }\n").nativeSpeed());
    assertNull(evaluate(Q4 + "  - evaluate: { native_speed: false }\n").nativeSpeed());
    EvaluateParams off = evaluate(Q4 + "  - evaluate: { kl: true }\n");
    assertNull(off.nativeSpeed());
    assertTrue(!off.toJson().has("native_speed"), "old recipes' JSON is unchanged");
    EvaluateParams e =
        evaluate(
            Q4
                + "  - evaluate: { native_speed: { prompt_tokens: 16, decode_tokens: 8, repeats:"
                + " 5, threads: 2 } }\n");
    assertEquals(new EvaluateParams.NativeSpeed(16, 8, 5, 2), e.nativeSpeed());
    assertEquals(
        e,
        StageSpec.fromJson(StageKind.EVALUATE, e.toJson().toString()).params(),
        "survives the StageRequested JSON");
  }

  @Test
  void refusedWithoutAGgufExportAndForOtherArchs() {
    List<RecipeProblem> p =
        Recipe.validate("name: t\nstages:\n  - evaluate: { native_speed: true }\n");
    assertEquals(1, p.size(), p.toString());
    assertEquals("stages[0].evaluate.native_speed", p.get(0).path());
    assertTrue(
        p.get(0).message().startsWith("not supported yet: native speed of an artifact without"),
        p.toString());
    assertEquals(
        1,
        Recipe.validate(
                "name: t\nstages:\n  - quantize: { method: rtn, bits: 8, export: [safetensors]"
                    + " }\n  - evaluate: { native_speed: true }\n")
            .size());
    assertEquals(
        List.of(),
        Recipe.validate(
            Q4
                + "  - evaluate: { native_speed: { repeats: 1 } }\n"
                + "  - publish: { gates: { min_native_decode_speedup: 1.2 } }\n"));
    List<RecipeProblem> bad =
        Recipe.validate(Q4 + "  - evaluate: { native_speed: { repeats: 0 } }\n");
    assertEquals(1, bad.size(), bad.toString());

    Recipe r = Recipe.parse(Q4 + "  - evaluate: { native_speed: true }\n");
    ModelConfig llama = ModelConfig.llama(100, 64, 128, 2, 4, 4, 64);
    assertEquals(List.of(), RecipeModelCheck.check(r, llama, Long.MAX_VALUE));
    ModelConfig qwen2 =
        llama.with("{\"model_type\":\"qwen2\",\"architectures\":[\"Qwen2ForCausalLM\"]}");
    Recipe tooLong =
        Recipe.parse(
            Q4 + "  - evaluate: { native_speed: { prompt_tokens: 60, decode_tokens: 5 } }\n");
    List<RecipeProblem> t = RecipeModelCheck.check(tooLong, llama, Long.MAX_VALUE);
    assertEquals(1, t.size(), t.toString());
    assertTrue(t.get(0).message().contains("= 65 exceed the 64 positions"), t.toString());
    List<RecipeProblem> q = RecipeModelCheck.check(r, qwen2, Long.MAX_VALUE);
    assertEquals(1, q.size(), q.toString());
    assertEquals("stages[1].evaluate.native_speed", q.get(0).path());
    assertTrue(
        q.get(0).message().startsWith("not supported yet: native speed of qwen2"), q.toString());
  }

  @Test
  void theGateNeedsNativeSpeed() {
    List<RecipeProblem> p =
        Recipe.validate(
            Q4
                + "  - evaluate: { kl: true }\n"
                + "  - publish: { gates: { min_native_decode_speedup: 1.2 } }\n");
    assertEquals(1, p.size(), p.toString());
    assertTrue(p.get(0).path().endsWith("gates.min_native_decode_speedup"), p.toString());
    PublishParams pub =
        (PublishParams)
            Recipe.parse(
                    Q4
                        + "  - evaluate: { native_speed: true }\n"
                        + "  - publish: { gates: { min_native_decode_speedup: 1.2 } }\n")
                .stage(2)
                .params();
    assertEquals(1.2, pub.gates().minNativeDecodeSpeedup());
    assertEquals(1.2, pub.toJson().get("gates").get("min_native_decode_speedup").asDouble());
  }
}
