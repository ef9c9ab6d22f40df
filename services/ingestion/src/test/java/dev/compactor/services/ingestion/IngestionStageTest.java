package dev.compactor.services.ingestion;

import static dev.compactor.services.ingestion.IngestionStage.FORMAT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.ModelDirectory;
import dev.compactor.events.ModelIngested;
import dev.compactor.runtime.SourcePolicy;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IngestionStageTest {
  @TempDir Path tmp;

  private StageContext ctx(Path model) throws Exception {
    return ctx(model, TestModels.RECIPE, Long.MAX_VALUE);
  }

  private StageContext ctx(Path model, String recipe, long budget) throws Exception {
    return StageContext.builder(
            TestModels.request("ingestion", "{}")
                .setModelUri(model.toUri().toString())
                .setRecipeYaml(recipe)
                .build())
        .memoryBudgetBytes(budget)
        .inputDir(Files.createDirectories(tmp.resolve("in")))
        .outputDir(Files.createDirectories(tmp.resolve("out")))
        .workDir(Files.createDirectories(tmp.resolve("work")))
        .build();
  }

  @Test
  void copiesAValidModelAndAnnouncesIt() throws Exception {
    Path model = TestModels.randomLlama(tmp.resolve("model"), 2, 1);
    StageResult r = new IngestionStage().run(ctx(model));
    ModelDirectory out = ModelDirectory.open(r.outputDir());
    ModelDirectory in = ModelDirectory.open(model);
    assertEquals(in.sha256Files(), out.sha256Files());
    assertEquals((double) in.parameterCount(), r.metrics().get("parameterCount"));
    assertEquals(1, r.events().size());
    ModelIngested e =
        (ModelIngested) r.events().get(0).value().apply(TestModels.ref("b", "a".repeat(64)));
    assertEquals("LlamaForCausalLM", e.getArchitecture());
    assertEquals("llama", e.getModelType());
    assertEquals("F32", e.getDtype());
    assertEquals(in.parameterCount(), e.getParameterCount());
    assertEquals(in.sha256Files(), e.getFileHashes());
  }

  /** Issue 8: a recipe wrong for this model failed late, without the model's numbers. */
  @Test
  void refusesARecipeTheModelCannotRunWithTheModelsNumbers() throws Exception {
    Path model = TestModels.randomLlama(tmp.resolve("two-layers"), 2, 1);
    String recipe =
        """
        name: too-deep
        stages:
          - distill: { layers: [0, 2, 4] }
        calibration: { dataset: builtin:europarl, samples: 4, seq_len: 16 }
        """;
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new IngestionStage().run(ctx(model, recipe, Long.MAX_VALUE)));
    assertTrue(
        e.getMessage()
            .contains(
                "stages[0].distill.layers: layer 2 is outside the model, which has 2 decoder"
                    + " layers (0..1)"),
        e.getMessage());
  }

  @Test
  void refusesAStepAboveTheMemoryBudgetWithItsEstimate() throws Exception {
    Path model = TestModels.randomLlama(tmp.resolve("budget"), 2, 1);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new IngestionStage().run(ctx(model, TestModels.RECIPE, 64L << 20)));
    assertTrue(e.getMessage().contains("needs about "), e.getMessage());
    assertTrue(e.getMessage().contains("memory budget of 64.0 MiB"), e.getMessage());
  }

  @Test
  void refusesModelsAndCalibrationOutsideTheAllowedSources() throws Exception {
    Path root = Files.createDirectories(tmp.resolve("allowed"));
    Path model = TestModels.randomLlama(root.resolve("model"), 2, 1);
    Path outside = TestModels.randomLlama(tmp.resolve("other-users-cache"), 2, 1);
    Files.createSymbolicLink(root.resolve("sneaky"), outside);
    SourcePolicy policy = SourcePolicy.of(List.of(root), Set.of("compactor-data"));
    IngestionStage stage = new IngestionStage();

    assertEquals(FORMAT, stage.run(ctx(model.toUri().toString(), null, policy)).format());
    SourcePolicy.SourceRefusedException viaLink =
        assertThrows(
            SourcePolicy.SourceRefusedException.class,
            () -> stage.run(ctx(root.resolve("sneaky").toUri().toString(), null, policy)));
    assertTrue(
        viaLink.getMessage().contains("outside the allowed file roots"), viaLink.getMessage());
    SourcePolicy.SourceRefusedException passwd =
        assertThrows(
            SourcePolicy.SourceRefusedException.class,
            () -> stage.run(ctx(model.toUri().toString(), "file:///etc/passwd", policy)));
    assertTrue(passwd.getMessage().contains("/etc/passwd"), passwd.getMessage());
    assertThrows(
        SourcePolicy.SourceRefusedException.class,
        () -> stage.run(ctx("s3://other-bucket/m/", null, policy)));
  }

  private StageContext ctx(String modelUri, String calibrationUri, SourcePolicy policy)
      throws Exception {
    Path run = Files.createTempDirectory(tmp, "run");
    return StageContext.builder(
            TestModels.request("ingestion", "{}")
                .setModelUri(modelUri)
                .setCalibrationUri(calibrationUri)
                .build())
        .inputDir(Files.createDirectories(run.resolve("in")))
        .outputDir(Files.createDirectories(run.resolve("out")))
        .workDir(Files.createDirectories(run.resolve("work")))
        .sources(policy)
        .build();
  }

  @Test
  void refusesPickleWeightsWithTheReason() throws Exception {
    Path model = Files.createDirectories(tmp.resolve("pickle"));
    Files.copy(
        TestModels.randomLlama(tmp.resolve("m"), 1, 2).resolve("config.json"),
        model.resolve("config.json"));
    Files.write(model.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'c'});
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new IngestionStage().run(ctx(model)));
    assertTrue(e.getMessage().contains("pickle"), e.getMessage());
  }

  @Test
  void refusesATruncatedCheckpoint() throws Exception {
    Path model = TestModels.randomLlama(tmp.resolve("corrupt"), 1, 3);
    Path weights = model.resolve("model.safetensors");
    try (FileChannel ch = FileChannel.open(weights, StandardOpenOption.WRITE)) {
      ch.truncate(ch.size() / 2);
    }
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new IngestionStage().run(ctx(model)));
    assertTrue(e.getMessage().contains("refused"), e.getMessage());
  }
}
