package dev.compactor.services.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.recipe.InvalidRecipeException;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizationStageTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void model() throws Exception {
    model = TestModels.randomLlama(tmp.resolve("model"), 2, 9);
  }

  private static StageResult run(String name, String params) throws Exception {
    StageContext ctx =
        StageContext.builder(TestModels.request("quantize", params).build())
            .inputDir(model)
            .outputDir(Files.createDirectories(tmp.resolve(name + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    return new QuantizationStage().run(ctx);
  }

  @Test
  void int4GroupedWithGgufExport() throws Exception {
    StageResult r =
        run(
            "int4",
            "{\"method\":\"rtn\",\"bits\":4,\"group_size\":32,\"export\":[\"safetensors\",\"gguf\"]}");
    assertTrue(Files.exists(r.outputDir().resolve("model-q4_k_m.gguf")));
    JsonNode qc =
        new ObjectMapper()
            .readTree(r.outputDir().resolve("config.json").toFile())
            .get("quantization_config");
    assertEquals(4, qc.get("bits").asInt());
    assertEquals(32, qc.get("group_size").asInt());
    // 4-bit codes + one fp16 scale per 32 weights = 4.5 bits per weight instead of 32
    assertEquals(
        r.metrics().get("quantizedParameters") * 4.5 / 8, r.metrics().get("quantizedWeightBytes"));
    assertTrue(
        r.metrics().get("quantizedModelBytes") < r.metrics().get("sourceWeightBytes"),
        r.metrics().toString());
    assertEquals(1.0, r.metrics().get("ggufFiles"));
  }

  @Test
  void int8PerChannelByDefaultSymmetric() throws Exception {
    StageResult r = run("int8", "{\"method\":\"rtn\",\"bits\":8,\"group_size\":-1}");
    JsonNode qc =
        new ObjectMapper()
            .readTree(r.outputDir().resolve("config.json").toFile())
            .get("quantization_config");
    assertEquals(-1, qc.get("group_size").asInt());
    assertTrue(qc.get("symmetric").asBoolean());
    // a dense random model: int8 per channel rounds almost nothing to zero
    assertTrue(r.metrics().get("sparsity") < 0.01, r.metrics().toString());
  }

  @Test
  void gptqCalibratesOnTheRecipeTextAndWritesEveryExportWithProvenance() throws Exception {
    Path text = tmp.resolve("calibration.txt");
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 80; i++) {
      sb.append("Paragraph ").append(i).append(" of the calibration text, about foxes.\n\n");
    }
    Files.writeString(text, sb);
    String uri = text.toUri().toString();
    StageResult r =
        run(
            "gptq",
            "{\"method\":\"gptq\",\"bits\":4,\"group_size\":32,"
                + "\"export\":[\"safetensors\",\"compressed-tensors\",\"gguf:q4_k\"],"
                + "\"calibration\":{\"dataset\":\""
                + uri
                + "\",\"samples\":4,\"seq_len\":32}}");
    Path out = r.outputDir();
    assertTrue(Files.exists(out.resolve("model-q4_k_m.gguf")));
    ObjectMapper json = new ObjectMapper();
    JsonNode ct = json.readTree(out.resolve("compressed-tensors/config.json").toFile());
    assertEquals("compressed-tensors", ct.at("/quantization_config/quant_method").asText());
    JsonNode p = json.readTree(out.resolve("config.json").toFile()).get("compactor_provenance");
    assertEquals(p, ct.get("compactor_provenance"));
    assertEquals("job-1", p.get("job_id").asText());
    assertEquals(TestModels.RECIPE, p.get("recipe").asText());
    assertEquals("gptq", p.get("method").asText());
    assertTrue(p.get("symmetric").asBoolean(), "recipes default gptq to a symmetric grid");
    assertEquals(uri, p.at("/calibration/source").asText());
    assertEquals(ModelDirectory.sha256(text), p.at("/calibration/sha256").asText());
    assertTrue(p.get("gguf_note").asText().contains("importance matrix"), p.toString());
    assertEquals(14.0, r.metrics().get("quantizedTensors"));
    assertTrue(r.metrics().get("ggufBytesQ4_K_M") > 0, r.metrics().toString());
  }

  @Test
  void awqWithoutACalibrationSectionUsesTheBuiltinText() throws Exception {
    StageResult r = run("awq", "{\"method\":\"awq\",\"bits\":4,\"group_size\":32}");
    JsonNode p =
        new ObjectMapper()
            .readTree(r.outputDir().resolve("config.json").toFile())
            .get("compactor_provenance");
    assertEquals("builtin:europarl", p.at("/calibration/source").asText());
    assertEquals(QuantizationStage.DEFAULT_SAMPLES, p.at("/calibration/samples").asInt());
    assertTrue(p.get("awq").asText().contains("symmetric=false"), p.toString());
  }

  @Test
  void exportsAMethodCannotFillAreRefusedBeforeWork() {
    InvalidRecipeException e =
        assertThrows(
            InvalidRecipeException.class,
            () -> run("nf4-ct", "{\"method\":\"nf4\",\"export\":[\"compressed-tensors\"]}"));
    assertTrue(e.getMessage().contains("compressed-tensors stores integer grids"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () ->
            QuantizationStage.check(
                new QuantizeParams(QuantizeParams.Method.NF4, 4, -1, true, List.of())));
  }

  @Test
  void theVerifiedInputManifestsHashesAreRecordedWithoutHashingAgain() throws Exception {
    List<ArtifactManifest.FileEntry> files = new java.util.ArrayList<>();
    try (var list = Files.list(model)) {
      for (Path f : list.sorted().toList()) {
        // a marker hash: had the stage hashed the files itself, the real SHA-256 would show
        files.add(
            new ArtifactManifest.FileEntry(
                f.getFileName().toString(), Files.size(f), "ab".repeat(32)));
      }
    }
    ArtifactManifest manifest =
        new ArtifactManifest(
            "hf-safetensors",
            files,
            new ArtifactManifest.Provenance("ingestion", "", null, java.util.Map.of()));
    StageContext ctx =
        StageContext.builder(
                TestModels.request("quantize", "{\"method\":\"rtn\",\"bits\":8,\"group_size\":-1}")
                    .build())
            .inputDir(model)
            .inputManifest(manifest)
            .outputDir(Files.createDirectories(tmp.resolve("manifest-out")))
            .workDir(Files.createDirectories(tmp.resolve("manifest-work")))
            .build();
    StageResult r = new QuantizationStage().run(ctx);
    JsonNode hashes =
        new ObjectMapper()
            .readTree(r.outputDir().resolve("config.json").toFile())
            .at("/compactor_provenance/input/sha256");
    assertEquals(files.size(), hashes.size());
    assertEquals("ab".repeat(32), hashes.get("model.safetensors").asText());
  }

  private static String calibrationUri(String name, int paragraphs) throws Exception {
    Path text = tmp.resolve(name);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < paragraphs; i++) {
      sb.append("Paragraph ").append(i).append(" of the calibration text, about foxes.\n\n");
    }
    Files.writeString(text, sb);
    return text.toUri().toString();
  }

  @Test
  void qatTrainsReportsProgressAndWritesEveryExportWithProvenance() throws Exception {
    String uri = calibrationUri("qat-calibration.txt", 600);
    List<String> progress = new java.util.ArrayList<>();
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "quantize",
                        "{\"method\":\"qat\",\"bits\":4,\"group_size\":32,"
                            + "\"export\":[\"safetensors\",\"compressed-tensors\",\"gguf\"],"
                            + "\"qat\":{\"init\":\"rtn\",\"steps\":3,\"batch\":2,"
                            + "\"windows\":8,\"seq_len\":32},"
                            + "\"calibration\":{\"dataset\":\""
                            + uri
                            + "\",\"samples\":4,\"seq_len\":32}}")
                    .build())
            .inputDir(model)
            .outputDir(Files.createDirectories(tmp.resolve("qat-out")))
            .workDir(Files.createDirectories(tmp.resolve("qat-work")))
            .progress((fraction, message) -> progress.add(message))
            .build();
    StageResult r = new QuantizationStage().run(ctx);
    Path out = r.outputDir();
    ObjectMapper json = new ObjectMapper();
    JsonNode config = json.readTree(out.resolve("config.json").toFile());
    assertEquals("qat", config.at("/quantization_config/method").asText());
    assertEquals("rtn", config.at("/quantization_config/init").asText());
    JsonNode p = config.get("compactor_provenance");
    assertEquals("qat", p.get("method").asText());
    assertEquals("job-1", p.get("job_id").asText());
    assertEquals(3, p.at("/qat/steps").asInt());
    assertEquals(uri, p.at("/calibration/source").asText());
    assertEquals(
        ModelDirectory.sha256(Path.of(java.net.URI.create(uri))),
        p.at("/calibration/sha256").asText());
    assertTrue(p.at("/qat/loss_last").isNumber(), p.toString());
    JsonNode ct = json.readTree(out.resolve("compressed-tensors/config.json").toFile());
    assertEquals("compressed-tensors", ct.at("/quantization_config/quant_method").asText());
    assertEquals(p, ct.get("compactor_provenance"));
    assertTrue(Files.size(out.resolve("model-q4_0.gguf")) > 0);
    assertEquals(3.0, r.metrics().get("qatSteps"));
    assertEquals(14.0, r.metrics().get("quantizedTensors"));
    // 4-bit codes + one fp16 step per 32 weights
    assertEquals(
        r.metrics().get("quantizedParameters") * 4.5 / 8, r.metrics().get("quantizedWeightBytes"));
    double kept = r.metrics().get("qatGgufLearnedBlockFraction");
    assertTrue(kept > 0 && kept <= 1, r.metrics().toString());
    assertTrue(r.metrics().get("qatHeldOutKlAfter") >= 0, r.metrics().toString());
    assertTrue(r.metrics().get("qatHeldOutKlInit") > 0, r.metrics().toString());
    // progress after every training step, then each export
    assertTrue(
        progress.stream().anyMatch(m -> m.startsWith("qat step 3 of 3, loss ")),
        progress.toString());
    assertTrue(progress.contains("writing GGUF q4_0"), progress.toString());
    // the dequantized weights lie on a 4-bit grid: at most 16 values in every group of 32
    try (dev.compactor.core.io.TensorSource w = dev.compactor.core.io.Checkpoints.open(out)) {
      String name = "model.layers.1.mlp.down_proj.weight";
      float[] v = w.readFloats(name);
      long cols = w.info(name).shape()[1];
      for (int start = 0; start < v.length; start += 32) {
        java.util.Set<Float> distinct = new java.util.HashSet<>();
        for (int i = start; i < start + 32; i++) {
          distinct.add(v[i]);
        }
        assertTrue(distinct.size() <= 16, "group at " + start + " of " + cols + ": " + distinct);
      }
    }
  }

  /** From GPTQ (calibrated on the recipe's windows) this time; the training is what stops. */
  @Test
  void qatStopsBetweenStepsWhenTheJobIsCancelled() throws Exception {
    String uri = calibrationUri("qat-cancel.txt", 200);
    List<String> messages = new java.util.ArrayList<>();
    java.util.concurrent.atomic.AtomicInteger reports =
        new java.util.concurrent.atomic.AtomicInteger();
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "quantize",
                        "{\"method\":\"qat\",\"bits\":8,\"group_size\":-1,"
                            + "\"qat\":{\"init\":\"gptq\",\"steps\":50,\"batch\":1,\"windows\":4,"
                            + "\"seq_len\":16},"
                            + "\"calibration\":{\"dataset\":\""
                            + uri
                            + "\",\"samples\":4,\"seq_len\":16}}")
                    .build())
            .inputDir(model)
            .outputDir(Files.createDirectories(tmp.resolve("qat-cancel-out")))
            .workDir(Files.createDirectories(tmp.resolve("qat-cancel-work")))
            .progress(
                (fraction, message) -> {
                  messages.add(message);
                  if (message.startsWith("qat step")) {
                    reports.incrementAndGet();
                  }
                })
            // cancelled once training has begun: the check after the second step stops it
            .cancelled(() -> reports.get() >= 2)
            .build();
    assertThrows(
        java.util.concurrent.CancellationException.class, () -> new QuantizationStage().run(ctx));
    assertEquals(2, reports.get());
    assertTrue(messages.contains("gptq init written; training"), messages.toString());
  }

  @Test
  void qatExportsItsGridCannotFillAreRefusedBeforeWork() {
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                QuantizationStage.check(
                    new QuantizeParams(
                        QuantizeParams.Method.QAT,
                        4,
                        32,
                        true,
                        List.of(QuantizeParams.ExportFormat.parse("gguf:q4_k_m")),
                        QuantizeParams.Qat.steps(5))));
    assertTrue(
        e.getMessage().contains("not supported yet: qat export to GGUF q4_k_m"), e.getMessage());
  }

  @Test
  void codebookWritesACheckpointOnlyCompactorLoadsWithProvenance() throws Exception {
    String uri = calibrationUri("codebook-calibration.txt", 200);
    List<String> progress = new java.util.ArrayList<>();
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "quantize",
                        "{\"method\":\"codebook\",\"bits\":3,"
                            + "\"codebook\":{\"sensitivity\":\"fisher\"},"
                            + "\"calibration\":{\"dataset\":\""
                            + uri
                            + "\",\"samples\":4,\"seq_len\":32}}")
                    .build())
            .inputDir(model)
            .outputDir(Files.createDirectories(tmp.resolve("codebook-out")))
            .workDir(Files.createDirectories(tmp.resolve("codebook-work")))
            .progress((fraction, message) -> progress.add(message))
            .build();
    StageResult r = new QuantizationStage().run(ctx);
    Path out = r.outputDir();
    assertTrue(dev.compactor.core.io.Codebook.isCodebookCheckpoint(out));
    JsonNode p =
        new ObjectMapper()
            .readTree(out.resolve("config.json").toFile())
            .get("compactor_provenance");
    assertEquals("codebook", p.get("method").asText());
    assertEquals("fisher", p.get("sensitivity").asText());
    assertEquals(uri, p.at("/calibration/source").asText());
    assertEquals(
        ModelDirectory.sha256(Path.of(java.net.URI.create(uri))),
        p.at("/calibration/sha256").asText());
    assertEquals(14.0, r.metrics().get("quantizedTensors"));
    assertTrue(r.metrics().get("bitsPerWeight") > 3, r.metrics().toString());
    assertTrue(
        r.metrics().get("quantizedModelBytes") < r.metrics().get("sourceWeightBytes"),
        r.metrics().toString());
    assertTrue(progress.stream().anyMatch(m -> m.endsWith(" 2/2")), progress.toString());
    // read back dequantized, as evaluation reads it: at most 2^3 values in every output row
    try (dev.compactor.core.io.TensorSource w = dev.compactor.core.io.Checkpoints.open(out)) {
      String name = "model.layers.0.self_attn.q_proj.weight";
      float[] v = w.readFloats(name);
      int cols = (int) w.info(name).shape()[1];
      for (int row = 0; row < v.length / cols; row++) {
        java.util.Set<Float> distinct = new java.util.HashSet<>();
        for (int c = 0; c < cols; c++) {
          distinct.add(v[row * cols + c]);
        }
        assertTrue(distinct.size() <= 8, "row " + row + ": " + distinct.size() + " values");
      }
    }
    assertThrows(
        UnsupportedOperationException.class,
        () ->
            QuantizationStage.check(
                new QuantizeParams(
                    QuantizeParams.Method.CODEBOOK,
                    3,
                    -1,
                    true,
                    List.of(QuantizeParams.ExportFormat.parse("gguf")),
                    null,
                    QuantizeParams.CodebookSpec.DEFAULTS)));
  }

  @Test
  void quantizationMathIsCpuOnlyAndSaysSo() {
    new QuantizationStage().checkDevice("cpu");
    RuntimeException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            dev.compactor.runtime.Devices.UnavailableDeviceException.class,
            () -> new QuantizationStage().checkDevice("cuda:0"));
    org.junit.jupiter.api.Assertions.assertTrue(
        e.getMessage().contains("quantization math") && e.getMessage().contains("CPU only"),
        e.getMessage());
  }
}
