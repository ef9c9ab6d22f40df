package dev.compactor.services.pruning;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PruningStageTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void model() throws Exception {
    model = TestModels.randomLlama(tmp.resolve("model"), 2, 5);
  }

  private static StageResult run(String name, String params, String calibrationUri)
      throws Exception {
    StageContext ctx =
        StageContext.builder(
                TestModels.request("prune", params).setCalibrationUri(calibrationUri).build())
            .inputDir(model)
            .outputDir(Files.createDirectories(tmp.resolve(name + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    return new PruningStage().run(ctx);
  }

  @Test
  void magnitudeReachesTheRequestedSparsity() throws Exception {
    StageResult r = run("magnitude", "{\"method\":\"magnitude\",\"sparsity\":0.5}", null);
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-3);
    assertEquals(0.0, r.metrics().get("calibrationTokens"));
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      float[] w = s.readFloats("model.layers.0.mlp.up_proj.weight");
      long zeros = 0;
      for (float v : w) {
        zeros += v == 0f ? 1 : 0;
      }
      assertEquals(0.5, (double) zeros / w.length, 1e-3);
    }
    assertTrue(Files.exists(r.outputDir().resolve("config.json")));
  }

  @Test
  void wandaCalibratesOnTheBuiltinCorpus() throws Exception {
    StageResult r =
        run(
            "wanda",
            "{\"method\":\"wanda\",\"sparsity\":0.3,"
                + "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":32}}",
            "builtin:europarl");
    assertEquals(0.3, r.metrics().get("sparsity"), 1e-2);
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
  }

  @Test
  void wandaReadsACalibrationFile() throws Exception {
    Path text = tmp.resolve("calib.txt");
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      s.append("Paragraph ").append(i).append(" of the calibration text, plain words.\n\n");
    }
    Files.writeString(text, s);
    StageResult r =
        run(
            "wanda-file",
            "{\"method\":\"wanda\",\"sparsity\":0.5,"
                + "\"calibration\":{\"dataset\":\""
                + text.toUri()
                + "\",\"samples\":2,\"seq_len\":16}}",
            text.toUri().toString());
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-2);
  }

  @Test
  void sparseGptTwoFourPassesThroughTheStage() throws Exception {
    StageResult r =
        run(
            "sparsegpt",
            "{\"method\":\"sparsegpt\",\"pattern\":\"2:4\","
                + "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":32}}",
            "builtin:europarl");
    assertEquals(0.5, r.metrics().get("sparsity"), 1e-3);
    assertEquals(2.0, r.metrics().get("patternN"));
    assertEquals(4.0, r.metrics().get("patternM"));
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      assertEquals("sparsegpt", s.metadata().get("compactor.prune.method"));
      float[] w = s.readFloats("model.layers.0.mlp.up_proj.weight");
      for (int g = 0; g < w.length; g += 4) {
        int zeros = 0;
        for (int k = g; k < g + 4; k++) {
          zeros += w[k] == 0f ? 1 : 0;
        }
        assertTrue(zeros >= 2, "group at " + g);
      }
    }
  }
}
