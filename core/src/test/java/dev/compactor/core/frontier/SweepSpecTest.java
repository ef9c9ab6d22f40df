package dev.compactor.core.frontier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.recipe.PruneParams;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.StageKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SweepSpecTest {
  static final String BASE =
      "name: base\n"
          + "stages:\n"
          + "  - prune: { method: wanda, sparsity: 0.3 }\n"
          + "  - quantize: { method: rtn, bits: 4, group_size: 32, export: [gguf] }\n"
          + "  - evaluate: { perplexity: { seq_len: 64 }, kl: true }\n"
          + "  - publish: { gates: { max_perplexity_increase: 0.5 } }\n"
          + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n";

  static SweepSpec spec(String rest) {
    return SweepSpec.parse("name: s\nbase: base.yaml\n" + rest, f -> BASE);
  }

  @Test
  void gridMakesEveryCombinationAsARecipeAndReportsInvalidOnes() {
    SweepSpec s =
        spec(
            "vary:\n"
                + "  stages[0].prune.sparsity: [0.3, 0.5, 0.7]\n"
                + "  stages[1].quantize.bits: [4, 8]\n"
                + "  stages[1].quantize.method: [rtn, awq]\n");
    assertEquals(12, s.gridSize());
    List<SweepSpec.Point> pts = s.expand();
    assertEquals(12, pts.size());
    SweepSpec.Point first = pts.get(0);
    assertEquals("base-sparsity0.3-bits4-methodrtn", first.name());
    SweepSpec.Point last = pts.get(11);
    assertEquals("base-sparsity0.7-bits8-methodawq", last.name());
    // awq is 4-bit only: the three awq/8 points are refused with the parser's problem
    List<SweepSpec.Point> invalid = pts.stream().filter(p -> !p.valid()).toList();
    assertEquals(3, invalid.size());
    assertTrue(invalid.stream().allMatch(p -> p.name().endsWith("bits8-methodawq")));
    assertEquals("stages[1].quantize.bits", invalid.get(0).problems().get(0).path());

    Recipe r = Recipe.parse(pts.get(5).sweepYaml()); // sparsity 0.5, bits 8, awq? no: index 5
    assertEquals("base-sparsity0.5-bits4-methodawq", pts.get(5).name());
    assertEquals(pts.get(5).name(), r.name());
    assertEquals(0.5, ((PruneParams) r.stage(0).params()).sparsity(), 0);
    QuantizeParams q = (QuantizeParams) r.stage(1).params();
    assertEquals(QuantizeParams.Method.AWQ, q.method());
    assertEquals(4, q.bits());
    // sweep jobs never publish; the publish recipe keeps the base's gates
    assertEquals(3, r.stages().size());
    assertTrue(r.stages().stream().noneMatch(x -> x.kind() == StageKind.PUBLISH));
    Recipe pub = Recipe.parse(pts.get(5).publishYaml());
    assertEquals(StageKind.PUBLISH, pub.stage(3).kind());
    assertTrue(pts.get(5).publishYaml().contains("max_perplexity_increase: 0.5"));
    assertEquals(
        Map.of("stages[0].prune.sparsity", 0.5),
        Map.of(
            "stages[0].prune.sparsity",
            first.assignment().get("stages[0].prune.sparsity").asDouble() + 0.2));
  }

  @Test
  void randomModeDrawsTheBudgetReproducibly() {
    String vary =
        "vary:\n  stages[0].prune.sparsity: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]\n"
            + "  stages[1].quantize.group_size: [32, 64, 128]\n";
    List<String> a =
        spec(vary + "mode: random\nbudget: 5\nseed: 3\n").expand().stream()
            .map(SweepSpec.Point::name)
            .toList();
    List<String> again =
        spec(vary + "mode: random\nbudget: 5\nseed: 3\n").expand().stream()
            .map(SweepSpec.Point::name)
            .toList();
    List<String> other =
        spec(vary + "mode: random\nbudget: 5\nseed: 4\n").expand().stream()
            .map(SweepSpec.Point::name)
            .toList();
    assertEquals(5, a.size());
    assertEquals(5, a.stream().distinct().count());
    assertEquals(a, again);
    assertNotEquals(a, other);
    // a budget above the grid's size takes the whole grid
    assertEquals(18, spec(vary + "mode: random\nbudget: 50\n").expand().size());
  }

  @Test
  void bayesianModeKeepsTheWholeGridAsCandidatesWithItsBudgetAndSeed() {
    String vary =
        "vary:\n  stages[0].prune.sparsity: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]\n"
            + "  stages[1].quantize.method: [rtn, gptq]\n";
    SweepSpec s = spec(vary + "mode: bayesian\nbudget: 4\nseed: 7\n");
    assertEquals(SweepSpec.Mode.BAYESIAN, s.mode());
    assertEquals(4, s.budget());
    assertEquals(7, s.seed());
    // the budget is how many jobs run, not how many candidates there are
    assertEquals(12, s.expand().size());
  }

  @Test
  void duplicateLastKeysAreNamedWithTheirStage() {
    String base =
        "name: b\nstages:\n  - prune: { method: wanda, sparsity: 0.3 }\n"
            + "  - quantize: { method: rtn, bits: 4 }\n"
            + "  - evaluate: { kl: true }\n"
            + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n";
    SweepSpec s =
        SweepSpec.parse(
            "name: s\nbase: x\nvary:\n  stages[0].prune.method: [wanda, magnitude]\n"
                + "  stages[1].quantize.method: [rtn, gptq]\n"
                + "  stages[1].quantize.export: [[gguf, safetensors]]\n",
            f -> base);
    SweepSpec.Point p = s.expand().get(3);
    assertEquals("b-prune.methodmagnitude-quantize.methodgptq-exportgguf_safetensors", p.name());
    assertTrue(p.valid(), p.problems().toString());
    // no publish in the base: the publish recipe appends an ungated one
    assertEquals(StageKind.PUBLISH, Recipe.parse(p.publishYaml()).stage(3).kind());
  }

  @Test
  void specProblemsAreRefusedWithTheirField() {
    String one = "vary:\n  stages[0].prune.sparsity: [0.3, 0.5]\n";
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> spec(one + "budget: 1\n"))
            .getMessage()
            .contains("the grid has 2 combinations but the budget is 1"));
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> spec(one + "mode: bayesian\n"))
            .getMessage()
            .startsWith("budget: bayesian mode needs a budget"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class, () -> spec(one + "mode: bayesian\nbudget: 1\n"))
            .getMessage()
            .contains("needs at least 2 jobs"));
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> spec(one + "mode: annealing\n"))
            .getMessage()
            .contains("expected grid, random or bayesian"));
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> spec(one + "mode: random\n"))
            .getMessage()
            .startsWith("budget:"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> spec("vary:\n  stages[1].prune.sparsity: [0.3]\n"))
            .getMessage()
            .contains("no stages[1].prune (there: quantize)"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> spec("vary:\n  stages[9].prune.sparsity: [0.3]\n"))
            .getMessage()
            .contains("(the list has 4 items)"));
    assertThrows(IllegalArgumentException.class, () -> spec("vary:\n  stages[0].prune: []\n"));
    assertThrows(IllegalArgumentException.class, () -> spec("vary:\n  'a..b': [1]\n"));
    assertThrows(IllegalArgumentException.class, () -> spec(one + "sweeps: 3\n"));
    assertThrows(
        IllegalArgumentException.class,
        () -> spec("vary:\n  stages[0].prune.sparsity: [0.3, 0.3]\n"));
  }

  @Test
  void baseFileIsReadBesideTheSpec(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("base.yaml"), BASE);
    Path spec = Files.createDirectories(dir.resolve("sweeps")).resolve("s.yaml");
    Files.writeString(
        spec, "name: s\nbase: ../base.yaml\nvary:\n  stages[0].prune.sparsity: [0.4]\n");
    SweepSpec s = SweepSpec.parse(spec);
    assertEquals(SweepSpec.Mode.GRID, s.mode());
    List<SweepSpec.Point> pts = s.expand();
    assertEquals(1, pts.size());
    assertTrue(pts.get(0).valid());
    assertFalse(pts.get(0).sweepYaml().contains("publish"));
  }
}
