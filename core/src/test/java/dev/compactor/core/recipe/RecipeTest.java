package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class RecipeTest {

  static final String ARCHITECTURE_EXAMPLE =
      """
      name: wanda50-gptq4
      stages:
        - prune:    { method: wanda, sparsity: 0.5 }
        - quantize: { method: gptq, bits: 4, group_size: 128, export: [gguf, safetensors] }
        - evaluate: { perplexity: { seq_len: 512 }, latency: true }
        - publish:  { gates: { max_perplexity_increase: 0.05 } }
      calibration: { dataset: s3://data/calib.txt, samples: 128, seq_len: 512 }
      """;

  @Test
  void parsesTheArchitectureExampleIntoTypedStages() {
    Recipe r = Recipe.parse(ARCHITECTURE_EXAMPLE);

    assertEquals("wanda50-gptq4", r.name());
    assertEquals(ARCHITECTURE_EXAMPLE, r.rawYaml());
    assertEquals(new Calibration("s3://data/calib.txt", 128, 512), r.calibration().orElseThrow());
    assertEquals(
        List.of(StageKind.PRUNE, StageKind.QUANTIZE, StageKind.EVALUATE, StageKind.PUBLISH),
        r.stages().stream().map(StageSpec::kind).toList());

    assertEquals(new PruneParams(PruneParams.Method.WANDA, 0.5), r.stage(0).params());
    QuantizeParams q = (QuantizeParams) r.stage(1).params();
    assertEquals(QuantizeParams.Method.GPTQ, q.method());
    assertEquals(4, q.bits());
    assertEquals(128, q.groupSize());
    assertTrue(q.symmetric(), "gptq defaults to symmetric");
    assertEquals(
        List.of(
            new QuantizeParams.ExportFormat(QuantizeParams.ExportFormat.Container.GGUF, null),
            new QuantizeParams.ExportFormat(
                QuantizeParams.ExportFormat.Container.SAFETENSORS, null)),
        q.export());
    EvaluateParams ev = (EvaluateParams) r.stage(2).params();
    assertEquals(new EvaluateParams.Perplexity(512, 512), ev.perplexity());
    assertTrue(ev.kl(), "kl defaults to on");
    assertTrue(ev.latency());
    PublishParams pub = (PublishParams) r.stage(3).params();
    assertNull(pub.name());
    assertEquals(0.05, pub.gates().maxPerplexityIncrease());
    assertNull(pub.gates().maxKlDivergence());
  }

  @Test
  void paramsJsonCarriesDefaultsAndCalibrationAndRoundTrips() {
    Recipe r = Recipe.parse(ARCHITECTURE_EXAMPLE);
    for (StageSpec s : r.stages()) {
      StageSpec back = StageSpec.fromJson(s.kind(), s.toJson());
      assertEquals(s, back, "round trip of " + s.kind());
    }
    assertEquals(
        "{\"method\":\"gptq\",\"bits\":4,\"group_size\":128,\"symmetric\":true,"
            + "\"export\":[\"gguf\",\"safetensors\"],"
            + "\"calibration\":{\"dataset\":\"s3://data/calib.txt\",\"samples\":128,\"seq_len\":512}}",
        r.stage(1).toJson());
  }

  @Test
  void stageSpecFromJsonRejectsParamsThatBreakTheSchema() {
    InvalidRecipeException e =
        assertThrows(
            InvalidRecipeException.class,
            () -> StageSpec.fromJson(StageKind.QUANTIZE, "{\"method\":\"rtn\",\"bits\":3}"));
    assertEquals("quantize.bits", e.problems().get(0).path());
    assertThrows(InvalidRecipeException.class, () -> StageSpec.fromJson(StageKind.PRUNE, "[1]"));
    assertThrows(InvalidRecipeException.class, () -> StageSpec.fromJson(StageKind.PRUNE, "{"));
  }

  @Test
  void defaultsAreFilledPerMethod() {
    Recipe r =
        Recipe.parse(
            """
            name: d
            stages:
              - prune: { sparsity: 0.2 }
              - quantize: { method: fp8 }
              - evaluate:
            """);
    assertEquals(PruneParams.Method.MAGNITUDE, ((PruneParams) r.stage(0).params()).method());
    QuantizeParams q = (QuantizeParams) r.stage(1).params();
    assertEquals(8, q.bits());
    assertEquals(-1, q.groupSize());
    EvaluateParams ev = (EvaluateParams) r.stage(2).params();
    assertEquals(new EvaluateParams(new EvaluateParams.Perplexity(512, 512), true, false), ev);
    assertTrue(r.calibration().isEmpty());
    assertFalse(r.stage(0).toJson().contains("calibration"));
  }

  @Test
  void perplexityCanBeSwitchedOff() {
    Recipe r =
        Recipe.parse("name: k\nstages:\n  - evaluate: { perplexity: false, latency: true }\n");
    assertNull(((EvaluateParams) r.stage(0).params()).perplexity());
  }

  @Test
  void everyRecipeInTheRecipesFolderValidates() throws IOException {
    Path dir = Path.of("..", "recipes");
    assertTrue(Files.isDirectory(dir), "expected the recipes folder at " + dir.toAbsolutePath());
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertTrue(files.size() >= 4, "expected at least 4 recipes, found " + files);
    for (Path f : files) {
      Recipe r = Recipe.parse(f);
      assertEquals(
          f.getFileName().toString().replace(".yaml", ""),
          r.name(),
          "a recipe file is named after its recipe");
    }
  }

  @Test
  void demoRecipeUsesEveryServiceBackedStage() throws IOException {
    Recipe r = Recipe.parse(Path.of("..", "recipes", "demo-all-stages.yaml"));
    assertEquals(
        List.of(
            StageKind.PRUNE,
            StageKind.DISTILL,
            StageKind.QUANTIZE,
            StageKind.EVALUATE,
            StageKind.PUBLISH),
        r.stages().stream().map(StageSpec::kind).toList());
  }

  @Test
  void pruneTakesExpertsInsteadOfASparsityAndRoundTripsThem() {
    for (PruneParams.ExpertMethod m : PruneParams.ExpertMethod.values()) {
      Recipe r =
          Recipe.parse(
              "name: t\nstages:\n  - prune: { experts: { keep: 6, method: "
                  + m.key()
                  + " } }\ncalibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n");
      PruneParams p = (PruneParams) r.stage(0).params();
      assertEquals(new PruneParams.Experts(6, m), p.experts());
      assertNull(p.method());
      assertNull(p.pattern());
      assertTrue(Double.isNaN(p.sparsity()));
      assertTrue(p.needsCalibration());
      assertEquals(PruneParams.experts(6, m), p);
      assertEquals(
          "{\"experts\":{\"keep\":6,\"method\":\"" + m.key() + "\"}}", p.toJson().toString());
      StageSpec back = StageSpec.fromJson(StageKind.PRUNE, r.stage(0).toJson().toString());
      assertEquals(r.stage(0), back);
    }
    assertEquals("weighted_norm", PruneParams.ExpertMethod.WEIGHTED_NORM.key());
    assertThrows(IllegalArgumentException.class, () -> new PruneParams.Experts(0, null));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new PruneParams(
                PruneParams.Method.MAGNITUDE,
                Double.NaN,
                null,
                new PruneParams.Experts(2, PruneParams.ExpertMethod.MERGE)));
  }

  @Test
  void pruneTakesStructuredHeadsAndChannelsAndRoundTripsThem() {
    Recipe r =
        Recipe.parse(
            "name: t\nstages:\n  - prune: { structured: { heads: 0.5, channels: 0.25,"
                + " importance: fluctuation, head_mode: query_heads, compensate: true } }\n"
                + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n");
    PruneParams p = (PruneParams) r.stage(0).params();
    assertEquals(
        new dev.compactor.core.prune.structured.StructuredSpec(
            0.5,
            0.25,
            dev.compactor.core.prune.structured.StructuredSpec.Importance.FLUCTUATION,
            dev.compactor.core.prune.structured.StructuredSpec.HeadMode.QUERY_HEADS,
            true),
        p.structured());
    assertNull(p.method());
    assertTrue(p.needsCalibration());
    assertEquals(r.stage(0), StageSpec.fromJson(StageKind.PRUNE, r.stage(0).toJson().toString()));
    Recipe defaults =
        Recipe.parse(
            "name: t\nstages:\n  - prune: { structured: { channels: 0.25 } }\n"
                + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n");
    var d = ((PruneParams) defaults.stage(0).params()).structured();
    assertEquals(0.0, d.heads());
    assertEquals("activation", d.importance().key());
    assertEquals("kv_groups", d.headMode().key());
    assertTrue(!d.compensate());
    // the model check refuses families the pruner cannot cut, at job start
    var phi3 =
        dev.compactor.core.model.ModelConfig.fromJson(
            "{\"model_type\":\"phi3\",\"vocab_size\":67,\"hidden_size\":32,"
                + "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4}");
    var problems = RecipeModelCheck.check(r, phi3, Long.MAX_VALUE);
    assertEquals(1, problems.size(), problems.toString());
    assertTrue(
        problems
            .get(0)
            .toString()
            .startsWith(
                "stages[0].prune.structured: not supported yet: structured pruning of phi3"),
        problems.toString());
    var llama = dev.compactor.core.model.ModelConfig.llama(67, 32, 48, 2, 4, 2, 64);
    assertTrue(RecipeModelCheck.check(r, llama, Long.MAX_VALUE).isEmpty());
  }

  @Test
  void pruneTakesSparseGptAndAnNmPatternInsteadOfASparsity() {
    Recipe r =
        Recipe.parse(
            "name: t\nstages:\n  - prune: { method: sparsegpt, pattern: \"2:4\" }\n"
                + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n");
    PruneParams p = (PruneParams) r.stage(0).params();
    assertEquals(PruneParams.Method.SPARSEGPT, p.method());
    assertEquals(new dev.compactor.core.prune.NmPattern(2, 4), p.pattern());
    assertEquals(0.5, p.sparsity());
    assertEquals("2:4", p.toJson().get("pattern").asText());
    assertThrows(
        InvalidRecipeException.class,
        () -> Recipe.parse("name: t\nstages:\n  - prune: { pattern: \"2:4\", sparsity: 0.5 }\n"));
    assertThrows(
        InvalidRecipeException.class,
        () -> Recipe.parse("name: t\nstages:\n  - prune: { pattern: \"5:4\" }\n"));
    assertThrows(
        InvalidRecipeException.class, () -> Recipe.parse("name: t\nstages:\n  - prune: {}\n"));
  }
}
