package dev.compactor.cli.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.UsageException;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.EvaluationMetrics;
import dev.compactor.events.ModelReady;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PipelineCommandsTest {

  @Test
  void submitRefusesAnImpossibleRecipeBeforeSendingAnything() throws Exception {
    String gptq =
        "name: g\nstages:\n  - quantize: { method: gptq, bits: 4, group_size: 128,"
            + " export: [safetensors, compressed-tensors, \"gguf:q4_k\"] }\n"
            + "calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }\n";
    SubmitCommand.check(gptq);
    UsageException e =
        assertThrows(
            UsageException.class,
            () ->
                SubmitCommand.check(
                    "name: f\nstages:\n  - quantize: { method: fp8, export: [compressed-tensors] }\n"));
    assertTrue(e.getMessage().contains("compressed-tensors stores integer grids"), e.getMessage());
    assertThrows(UsageException.class, () -> SubmitCommand.check("name: x\nstages: []\n"));
  }

  @Test
  void everyShippedRecipePassesTheSubmitCheck() throws Exception {
    List<Path> recipes;
    try (var s = Files.list(Path.of("..", "recipes"))) {
      recipes = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertTrue(recipes.size() >= 5, recipes.toString());
    assertTrue(recipes.contains(Path.of("..", "recipes", "demo.yaml")), recipes.toString());
    for (Path r : recipes) {
      SubmitCommand.check(Files.readString(r));
    }
  }

  /** Issue 8: submit refused nothing the pipeline cannot run, and no size limit at all. */
  @Test
  void submitRefusesUnbuiltStagesAndResourceBombs() {
    UsageException factorize =
        assertThrows(
            UsageException.class,
            () -> SubmitCommand.check("name: f\nstages:\n  - factorize: { rank: 8 }\n"));
    assertTrue(
        factorize.getMessage().contains("stages[0].factorize: not supported yet"),
        factorize.getMessage());
    UsageException bomb =
        assertThrows(
            UsageException.class,
            () ->
                SubmitCommand.check(
                    "name: b\nstages:\n  - distill: { keep_layers: 1, steps: 2000000000 }\n"
                        + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 64"
                        + " }\n"));
    assertTrue(
        bomb.getMessage().contains("stages[0].distill.steps: 2000000000 is above the limit"),
        bomb.getMessage());
  }

  @Test
  void demoJsonIsOneObjectWithEvaluationAndModelReady() throws Exception {
    ArtifactRef ref =
        ArtifactRef.newBuilder()
            .setUri("s3://b/artifacts/x/")
            .setSha256("a".repeat(64))
            .setSizeBytes(10)
            .setFormat("hf-safetensors")
            .build();
    EvaluationCompleted e =
        EvaluationCompleted.newBuilder()
            .setJobId("j")
            .setStep(4)
            .setModel(ref)
            .setBaseline(ref)
            .setMetrics(
                EvaluationMetrics.newBuilder()
                    .setPerplexity(3.5)
                    .setBaselinePerplexity(3.0)
                    .setSizeBytes(5)
                    .setBaselineSizeBytes(10)
                    .build())
            .setExtra(Map.of())
            .setCompletedAtMs(1)
            .build();
    ModelReady m =
        ModelReady.newBuilder()
            .setJobId("j")
            .setName("n")
            .setVersion("1")
            .setUri("s3://b/models/n/v1/")
            .setArtifact(ref)
            .setModelCardUri("s3://b/models/n/v1/README.md")
            .setRecipeName("n")
            .setMetrics(Map.of("perplexity", 3.5))
            .setLineage(List.of(ref))
            .setPublishedAtMs(2)
            .build();
    JsonNode json = new ObjectMapper().readTree(JobReport.json(e, m));
    assertEquals(2, json.size());
    assertEquals(3.5, json.at("/evaluation/metrics/perplexity").asDouble());
    assertEquals("1", json.at("/modelReady/version").asText());
  }

  @Test
  void stepLinePrintsCountsAsWholeNumbersAndFractionsWithFourDecimals() {
    dev.compactor.events.StageCompleted c =
        dev.compactor.events.StageCompleted.newBuilder()
            .setJobId("j")
            .setStep(1)
            .setStage("prune")
            .setOutput(null)
            .setMetrics(
                Map.of(
                    "sparsity", 0.25, "keptExperts", 6.0, "experts", 8.0, "sizeBytes", 7123456.0))
            .setDurationMs(1)
            .setWorker("w")
            .setAttempt(1)
            .setCompletedAtMs(1)
            .build();
    assertEquals(
        "sparsity 0.2500, keptExperts 6, experts 8, sizeBytes 7,123,456", JobReport.effect(c));
  }
}
