package dev.compactor.services.evaluation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.NativeSpeedPoint;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issues 12/13: with {@code native_speed} the evaluation runs the artifact's GGUF file natively and
 * the original as an F32 GGUF the same way, and reports both, labelled, with their ratio. Timings
 * are not asserted (they belong in bench/): only that the figures are there, positive, labelled and
 * that the ratio is the quotient of the two measurements.
 */
class EvaluationNativeSpeedTest {
  @TempDir Path tmp;

  private static final String PARAMS =
      "{\"perplexity\":false,\"kl\":false,\"native_speed\":{\"prompt_tokens\":8,"
          + "\"decode_tokens\":4,\"repeats\":3,\"threads\":1}}";

  @Test
  void measuresTheQ4_0FileAndTheF32ReferenceNatively() throws Exception {
    Path base = TinyReferenceModel.shipped();
    Path model = copy(base, tmp.resolve("q4"));
    GgufExport.export(model, LlamaFileType.Q4_0, Map.of(), model.resolve("model-q4_0.gguf"));
    Map<S3Uri, byte[]> stored = new HashMap<>();
    Path work = Files.createDirectories(tmp.resolve("work"));
    StageResult r = new EvaluationStage(stored::put, 400).run(context(model, base, work, PARAMS));

    Map<String, Double> m = r.metrics();
    String k = "native.model-q4_0.gguf.";
    for (String name :
        List.of(
            "prefillTokensPerSecond",
            "decodeTokensPerSecond",
            "baselinePrefillTokensPerSecond",
            "baselineDecodeTokensPerSecond",
            "prefillSpeedup",
            "decodeSpeedup")) {
      assertTrue(m.get(k + name) != null && m.get(k + name) > 0, k + name + " in " + m);
    }
    assertEquals(
        m.get(k + "decodeTokensPerSecond") / m.get(k + "baselineDecodeTokensPerSecond"),
        m.get(k + "decodeSpeedup"),
        1e-12);
    assertEquals(
        m.get(k + "prefillTokensPerSecond") / m.get(k + "baselinePrefillTokensPerSecond"),
        m.get(k + "prefillSpeedup"),
        1e-12);
    assertEquals(1.0, m.get(k + "threads"));
    assertEquals(8.0, m.get(k + "promptTokens"));
    assertEquals(4.0, m.get(k + "decodeTokens"));
    assertEquals(3.0, m.get(k + "repeats"));
    assertNull(m.get("decodeTokensPerSecond"), "no DJL latency was asked for");
    try (Stream<Path> left = Files.list(work)) {
      assertEquals(List.of(), left.toList(), "the F32 reference is deleted after the run");
    }

    EvaluationCompleted e = (EvaluationCompleted) r.events().get(0).value().apply(null);
    assertEquals(1, e.getNativeSpeed().size());
    NativeSpeedPoint p = e.getNativeSpeed().get(0);
    assertEquals("native-gguf", p.getEngine());
    assertEquals("model-q4_0.gguf", p.getGguf());
    assertEquals("Q4_0", p.getFileType());
    assertEquals("F32", p.getBaselineFileType());
    assertEquals(1, p.getThreads());
    assertEquals(8, p.getPromptTokens());
    assertEquals(4, p.getDecodeTokens());
    assertEquals(3, p.getRepeats());
    assertEquals(m.get(k + "decodeTokensPerSecond"), p.getDecodeTokensPerSecond());
    assertEquals(m.get(k + "baselineDecodeTokensPerSecond"), p.getBaselineDecodeTokensPerSecond());
    assertTrue(p.getMeasuredWith().startsWith("engine native-gguf: "), p.getMeasuredWith());
    assertTrue(p.getMeasuredWith().contains("1 thread(s)"), p.getMeasuredWith());
    assertTrue(p.getMeasuredWith().contains("F32 GGUF"), p.getMeasuredWith());
    assertEquals(List.of(), e.getSpeed(), "the DJL sweep is a separate list");
    assertNull(e.getLatencyMeasuredWith());

    EvaluationReport report =
        EvaluationReport.parse(
            stored.get(EvaluationReport.location("bucket", "job-1", "b".repeat(64))));
    assertEquals(p.getMeasuredWith(), report.nativeSpeedMeasuredWith());
    assertEquals(m, report.metrics());
  }

  @Test
  void refusesAnArtifactWithoutAGguf() throws Exception {
    Path base = TinyReferenceModel.shipped();
    Path work = Files.createDirectories(tmp.resolve("work"));
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> new EvaluationStage((w, j) -> {}, 400).run(context(base, base, work, PARAMS)));
    assertTrue(
        e.getMessage().startsWith("not supported yet: native speed of an artifact without a GGUF"),
        e.getMessage());
  }

  @Test
  void refusesAnArchTheNativeDecoderDoesNotRun() throws Exception {
    Path base = copy(TinyReferenceModel.shipped(), tmp.resolve("qwen2"));
    Path config = base.resolve("config.json");
    Files.writeString(
        config,
        Files.readString(config)
            .replaceFirst("\"model_type\"\\s*:\\s*\"llama\"", "\"model_type\": \"qwen2\""));
    Files.writeString(base.resolve("model-q4_0.gguf"), "never read");
    Path work = Files.createDirectories(tmp.resolve("work"));
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> new EvaluationStage((w, j) -> {}, 400).run(context(base, base, work, PARAMS)));
    assertTrue(
        e.getMessage().startsWith("not supported yet: native speed of qwen2"), e.getMessage());
    assertFalse(Files.exists(work.resolve(EvaluationStage.NATIVE_BASELINE_FILE)));
  }

  private static StageContext context(Path model, Path base, Path work, String params)
      throws Exception {
    return StageContext.builder(
            TestModels.request("evaluate", params)
                .setInput(TestModels.ref("bucket", "b".repeat(64)))
                .setBaseline(TestModels.ref("bucket", "c".repeat(64)))
                .setCalibrationUri("builtin:europarl")
                .build())
        .inputDir(model)
        .inputManifest(
            new ArtifactManifest(
                "hf-safetensors",
                List.of(),
                new ArtifactManifest.Provenance("quantize", "", "c".repeat(64), Map.of())))
        .baselineDir(base)
        .outputDir(Files.createDirectories(work.resolveSibling("out")))
        .workDir(work)
        .build();
  }

  private static Path copy(Path from, Path to) throws Exception {
    Files.createDirectories(to);
    try (Stream<Path> files = Files.list(from)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        Files.copy(f, to.resolve(f.getFileName()));
      }
    }
    return to;
  }
}
