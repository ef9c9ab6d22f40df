package dev.compactor.services.evaluation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningReport;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.events.EvaluationCompleted;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvaluationStageTest {
  @TempDir Path tmp;

  @Test
  void comparesAQuantizedModelWithItsBaseline() throws Exception {
    Path base = TestModels.randomLlama(tmp.resolve("base"), 2, 3);
    Path model = tmp.resolve("int4");
    QuantizationPipeline.Result q =
        QuantizationPipeline.run(
            new QuantizationPipeline.Request(
                base,
                new WeightQuantization(WeightQuantization.Method.RTN, 4, 32, true),
                null,
                false,
                new QuantizationPipeline.Outputs(model, null, List.of(), null)),
            null,
            QuantizationPipeline.Progress.NONE);
    String modelSha = "b".repeat(64);
    ArtifactManifest manifest =
        new ArtifactManifest(
            "hf-safetensors",
            List.of(),
            new ArtifactManifest.Provenance(
                "quantize",
                "",
                "c".repeat(64),
                Map.of("quantizedModelBytes", (double) q.quantizedModelBytes())));
    Map<S3Uri, byte[]> stored = new HashMap<>();
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "evaluate",
                        "{\"perplexity\":{\"seq_len\":32},\"kl\":true,\"latency\":true}")
                    .setInput(TestModels.ref("bucket", modelSha))
                    .setBaseline(TestModels.ref("bucket", "c".repeat(64)))
                    .setCalibrationUri("builtin:europarl")
                    .build())
            .inputDir(model)
            .inputManifest(manifest)
            .baselineDir(base)
            .outputDir(Files.createDirectories(tmp.resolve("out")))
            .workDir(Files.createDirectories(tmp.resolve("work")))
            .build();
    StageResult r = new EvaluationStage(stored::put, 1_500).run(ctx);
    Map<String, Double> m = r.metrics();
    for (String k :
        List.of(
            "perplexity",
            "baselinePerplexity",
            "bitsPerByte",
            "klDivergence",
            "top1Agreement",
            "prefillMsPerToken",
            "decodeTokensPerSecond")) {
      assertNotNull(m.get(k), k + " in " + m);
    }
    assertTrue(m.get("klDivergence") >= 0);
    assertTrue(m.get("top1Agreement") > 0.5 && m.get("top1Agreement") <= 1);
    assertEquals((double) q.quantizedModelBytes(), m.get("sizeBytes"));
    assertEquals((double) q.sourceBytes(), m.get("baselineSizeBytes"));
    assertEquals(m.get("parameterCount"), m.get("baselineParameterCount"));
    assertTrue(m.get("evalTokens") > 1000 && m.get("evalTokens") <= 1_501);

    S3Uri where = EvaluationReport.location("bucket", "job-1", modelSha);
    EvaluationReport report = EvaluationReport.parse(stored.get(where));
    assertEquals(m, report.metrics());
    EvaluationCompleted e = (EvaluationCompleted) r.events().get(0).value().apply(null);
    assertEquals(m.get("perplexity"), e.getMetrics().getPerplexity());
    assertEquals(m.get("baselinePerplexity"), e.getMetrics().getBaselinePerplexity());
    assertEquals(q.quantizedModelBytes(), e.getMetrics().getSizeBytes());
  }

  @Test
  void reportsTheSparsityAPruningStepLeft() throws Exception {
    Path base = TestModels.randomLlama(tmp.resolve("base"), 2, 3);
    Path model = tmp.resolve("pruned");
    PruningReport pruned =
        Pruning.run(
            PruningSpec.of(PruningSpec.Method.MAGNITUDE, 0.3),
            base,
            model,
            List::of,
            ai.djl.Device.cpu());
    StageContext ctx =
        StageContext.builder(
                TestModels.request("evaluate", "{\"perplexity\":false,\"kl\":true}")
                    .setInput(TestModels.ref("bucket", "d".repeat(64)))
                    .setBaseline(TestModels.ref("bucket", "c".repeat(64)))
                    .setCalibrationUri("builtin:europarl")
                    .build())
            .inputDir(model)
            .baselineDir(base)
            .outputDir(Files.createDirectories(tmp.resolve("out")))
            .workDir(Files.createDirectories(tmp.resolve("work")))
            .build();
    StageResult r = new EvaluationStage((where, json) -> {}, 800).run(ctx);
    assertEquals(pruned.overallSparsity(), r.metrics().get("sparsity"), 1e-12);
    assertTrue(r.metrics().get("sparsity") >= 0.29, r.metrics().toString());
    assertEquals(0.0, r.metrics().get("baselineSparsity"));
    EvaluationCompleted e = (EvaluationCompleted) r.events().get(0).value().apply(null);
    assertEquals(r.metrics().get("sparsity"), e.getMetrics().getSparsity());
  }
}
