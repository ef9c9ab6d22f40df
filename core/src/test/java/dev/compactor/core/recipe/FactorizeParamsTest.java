package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.factorize.FactorizeSpec;
import dev.compactor.core.factorize.RankRule;
import dev.compactor.core.model.ModelConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The factorize stage's parameters: method, rank rules, linears, merge; and the model check. */
class FactorizeParamsTest {

  private static List<String> problems(String params) {
    return Recipe.validate("name: t\nstages:\n  - factorize: " + params + "\n").stream()
        .map(RecipeProblem::toString)
        .toList();
  }

  private static FactorizeParams params(String json) {
    return (FactorizeParams) StageSpec.fromJson(StageKind.FACTORIZE, json).params();
  }

  @Test
  void ratioEnergyLinearsAndMergeValidateAndRoundTrip() {
    assertEquals(List.of(), problems("{ ratio: 0.5 }"));
    assertEquals(
        List.of(),
        problems("{ method: svd, energy: 0.95, linears: [q_proj, mlp.down_proj], merge: true }"));
    FactorizeParams p = params("{\"method\":\"svd\",\"energy\":0.95,\"linears\":[\"q_proj\"]}");
    assertEquals(RankRule.energy(0.95), p.rankRule());
    FactorizeSpec spec = p.spec();
    assertEquals(FactorizeSpec.Method.SVD, spec.method());
    assertEquals(List.of("q_proj"), spec.linears());
    assertEquals(p, params(p.toJson().toString()));
    FactorizeParams d = params("{\"ratio\":0.7}");
    assertEquals("svd_llm", d.method());
    assertEquals(false, d.merge());
    assertEquals(RankRule.ratio(0.7), d.rankRule());
  }

  @Test
  void outOfRangeValuesAndUnknownMethodsAreProblems() {
    assertTrue(problems("{ ratio: 1.0 }").get(0).contains("stages[0].factorize.ratio"));
    assertTrue(problems("{ energy: 0 }").get(0).contains("stages[0].factorize.energy"));
    assertTrue(
        problems("{ ratio: 0.5, method: asvd }").get(0).contains("stages[0].factorize.method"));
    assertTrue(problems("{ ratio: 0.5, linears: [] }").get(0).contains("linears"));
    assertTrue(problems("{ ratio: 0.5, merge: yes please }").get(0).contains("merge"));
  }

  @Test
  void fixedRankRulesValidateButAreNotImplemented() {
    FactorizeParams p = params("{\"rank\":8}");
    UnsupportedOperationException e =
        assertThrows(UnsupportedOperationException.class, p::rankRule);
    assertEquals("not supported yet: factorize rank=8 (use ratio or energy)", e.getMessage());
  }

  @Test
  void shareIsItsOwnFormAndOnlyEvaluateAndPublishFollowIt() {
    Recipe r =
        Recipe.parse(
            "name: t\nstages:\n  - factorize: { share: { ratio: 0.7 } }\n  - evaluate: {}\n");
    FactorizeParams p = (FactorizeParams) r.stage(0).params();
    assertEquals(new FactorizeParams.Share("basis", 0.7, 0, "out", false), p.share());
    assertEquals(2, p.share().spec(8).group());
    assertEquals(
        "{\"share\":{\"form\":\"basis\",\"ratio\":0.7,\"side\":\"out\",\"choose\":false}}",
        p.toJson().toString());
    List<RecipeProblem> mixed =
        Recipe.validate("name: t\nstages:\n  - factorize: { share: { ratio: 0.7 }, ratio: 0.5 }\n");
    assertEquals(1, mixed.size(), mixed.toString());
    assertEquals("stages[0].factorize.ratio", mixed.get(0).path());
    List<RecipeProblem> one =
        Recipe.validate(
            "name: t\nstages:\n  - factorize: { share: { ratio: 0.7, form: basis, group: 1 } }\n");
    assertEquals("stages[0].factorize.share.group", one.get(0).path(), one.toString());
    List<RecipeProblem> after =
        Recipe.validate(
            "name: t\nstages:\n  - factorize: { share: { ratio: 0.7 } }\n"
                + "  - quantize: { method: rtn, bits: 8 }\n");
    assertEquals(1, after.size(), after.toString());
    assertTrue(
        after.get(0).message().startsWith("not supported yet: quantize after cross-layer sharing"),
        after.toString());
    ModelConfig llama = ModelConfig.llama(64, 32, 64, 2, 4, 2, 64);
    assertEquals(List.of(), RecipeModelCheck.check(r, llama, Long.MAX_VALUE));
  }

  @Test
  void modelCheckRefusesUnknownLinearsAndGpt2() {
    ModelConfig llama = ModelConfig.llama(64, 32, 64, 2, 4, 2, 64);
    Recipe ok =
        Recipe.parse("name: t\nstages:\n  - factorize: { ratio: 0.5, linears: [q_proj] }\n");
    assertEquals(List.of(), RecipeModelCheck.check(ok, llama, Long.MAX_VALUE));
    Recipe bad =
        Recipe.parse("name: t\nstages:\n  - factorize: { ratio: 0.5, linears: [c_attn] }\n");
    List<RecipeProblem> problems = RecipeModelCheck.check(bad, llama, Long.MAX_VALUE);
    assertEquals(1, problems.size(), problems.toString());
    assertEquals("stages[0].factorize.linears[0]", problems.get(0).path());
    ModelConfig gpt2 =
        ModelConfig.fromJson(
            "{\"model_type\":\"gpt2\",\"vocab_size\":64,\"n_embd\":32,\"n_layer\":2,"
                + "\"n_head\":4,\"n_positions\":64}");
    Recipe rank = Recipe.parse("name: t\nstages:\n  - factorize: { rank: 8 }\n");
    List<RecipeProblem> r = RecipeModelCheck.check(rank, llama, Long.MAX_VALUE);
    assertEquals(1, r.size(), r.toString());
    assertEquals("stages[0].factorize.rank", r.get(0).path());
    assertTrue(r.get(0).message().startsWith("not supported yet: factorize rank=8"), r.toString());
    List<RecipeProblem> g = RecipeModelCheck.check(ok, gpt2, Long.MAX_VALUE);
    assertTrue(
        g.stream().anyMatch(p -> p.message().startsWith("not supported yet: factorizing gpt2")),
        g.toString());
  }
}
