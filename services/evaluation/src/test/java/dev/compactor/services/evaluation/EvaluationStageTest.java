package dev.compactor.services.evaluation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.LlamaFileType;
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
import java.util.stream.Stream;
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
                new QuantizationPipeline.Outputs(
                    model,
                    model.resolve("compressed-tensors"),
                    List.of(LlamaFileType.Q8_0),
                    model)),
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
                        "{\"perplexity\":{\"seq_len\":32},\"kl\":true,\"energy\":true,"
                            + "\"latency\":{\"batch_sizes\":[1,2],\"context_lengths\":[16],"
                            + "\"decode_tokens\":4,\"repeats\":1}}")
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
    // Independent of StoredForms: the bytes of each form straight from the file system.
    long safetensors = 0;
    long ct = 0;
    long gguf = -1;
    long all = 0;
    try (Stream<Path> files = Files.walk(model)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        long n = Files.size(f);
        all += n;
        if (f.startsWith(model.resolve("compressed-tensors"))) {
          ct += n;
        } else if (f.toString().endsWith(".gguf")) {
          gguf = n;
        } else {
          safetensors += n;
        }
      }
    }
    long smallest = Math.min(safetensors, Math.min(ct, gguf));
    assertTrue(gguf > 0 && ct > 0, "exports written");
    assertEquals((double) smallest, m.get("sizeBytes"), "the smallest stored form, as written");
    assertEquals((double) safetensors, m.get("sizeBytes.safetensors"));
    assertEquals((double) ct, m.get("sizeBytes.compressed-tensors"));
    long baseBytes;
    try (Stream<Path> files = Files.walk(base)) {
      baseBytes = files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
    assertEquals((double) baseBytes, m.get("baselineSizeBytes"));
    assertEquals(smallest / (double) baseBytes, m.get("sizeRatio"), 1e-12);
    assertEquals(m.get("parameterCount"), m.get("baselineParameterCount"));
    assertTrue(m.get("evalTokens") > 1000 && m.get("evalTokens") <= 1_501);

    S3Uri where = EvaluationReport.location("bucket", "job-1", modelSha);
    EvaluationReport report = EvaluationReport.parse(stored.get(where));
    assertEquals(m, report.metrics());
    assertEquals(all, report.files().stream().mapToLong(f -> f.getSizeBytes()).sum());
    assertTrue(report.latencyMeasuredWith().contains("fp32"), report.latencyMeasuredWith());
    if (Files.isWritable(Path.of("/proc/self/clear_refs"))) {
      assertTrue(m.get("peakRssBytes") > 0, "step peak measured");
      assertTrue(report.peakMemoryMeasures().contains("since the step started"));
    } else {
      assertNull(m.get("peakRssBytes"), "no lifetime peak passed off as the step's");
    }
    EvaluationCompleted e = (EvaluationCompleted) r.events().get(0).value().apply(null);
    assertEquals(m.get("perplexity"), e.getMetrics().getPerplexity());
    assertEquals(m.get("baselinePerplexity"), e.getMetrics().getBaselinePerplexity());
    assertEquals(smallest, e.getMetrics().getSizeBytes());
    assertEquals(report.sizeFormat(), e.getSizeFormat());
    assertTrue(
        List.of("safetensors", "compressed-tensors", "gguf:model-q8_0.gguf")
            .contains(e.getSizeFormat()),
        e.getSizeFormat());
    assertEquals(report.files(), e.getStoredFiles());
    assertEquals(report.latencyMeasuredWith(), e.getLatencyMeasuredWith());

    // The sweep: one typed point per batch size, the first also giving the single figures.
    assertEquals(2, e.getSpeed().size());
    assertEquals(2, e.getSpeed().get(1).getBatch());
    assertEquals(16, e.getSpeed().get(1).getContextLength());
    assertEquals(
        m.get("speed.b2.c16.decodeTokensPerSecond"),
        e.getSpeed().get(1).getDecodeTokensPerSecond());
    assertEquals(
        1000 / e.getSpeed().get(0).getPrefillTokensPerSecond(), m.get("prefillMsPerToken"), 1e-9);
    assertEquals(
        m.get("decodeTokensPerSecond") / m.get("baselineDecodeTokensPerSecond"),
        m.get("decodeSpeedup"),
        1e-12);
    // Energy from the same runs, labelled; this machine has no RAPL, so the figures are estimated.
    assertNotNull(e.getEnergy());
    String kind = Files.isDirectory(Path.of("/sys/class/powercap")) ? null : "estimated";
    if (kind != null) {
      assertEquals(kind, e.getEnergy().getKind());
      assertEquals(0.0, m.get("energy.measured"));
    }
    assertTrue(report.energyMeasuredWith().startsWith(e.getEnergy().getKind() + ": "));
    assertEquals(m.get("energy.joulesPerToken"), e.getEnergy().getCandidateJoulesPerToken());
    assertTrue(e.getEnergy().getCandidateJoulesPerToken() >= 0);
    assertEquals(
        m.get("speed.b2.c16.baselineJoulesPerToken"),
        e.getSpeed().get(1).getBaselineJoulesPerToken());
  }

  @Test
  void runsOnlyOnADeviceTheEngineHas() {
    EvaluationStage stage = new EvaluationStage((where, json) -> {}, 100);
    stage.checkDevice("cpu");
    org.junit.jupiter.api.Assumptions.assumeTrue(
        ai.djl.engine.Engine.getInstance().getGpuCount() == 0, "this machine has a GPU");
    dev.compactor.runtime.StageConfig config =
        dev.compactor.runtime.StageConfig.of(
            Map.of(
                "COMPACTOR_STAGE", "evaluate",
                "COMPACTOR_S3_ACCESS_KEY", "ak",
                "COMPACTOR_S3_SECRET_KEY", "very-secret",
                "COMPACTOR_DEVICE", "gpu"));
    RuntimeException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            dev.compactor.runtime.Devices.UnavailableDeviceException.class,
            () -> dev.compactor.runtime.Devices.resolve(config, stage));
    assertTrue(
        e.getMessage().startsWith("stage evaluate cannot run on COMPACTOR_DEVICE=gpu")
            && e.getMessage().contains("CPU build (pytorch-native-cpu)"),
        e.getMessage());
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

  @Test
  void scoresTasksOnCandidateAndBaseline() throws Exception {
    Path base = TestModels.randomLlama(tmp.resolve("task-base"), 2, 3);
    Path model = tmp.resolve("task-pruned");
    Pruning.run(
        PruningSpec.of(PruningSpec.Method.MAGNITUDE, 0.5),
        base,
        model,
        List::of,
        ai.djl.Device.cpu());
    Path file = tmp.resolve("mine.jsonl");
    Files.writeString(
        file,
        "{\"context\": \"The vote\", \"choices\": [\"will take place\", \"xq\"], \"gold\": 0}\n"
            + "{\"context\": \"The debate\", \"choices\": [\"is closed\", \"zz\"], \"gold\": 0}\n");
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "evaluate",
                        "{\"perplexity\":false,\"kl\":false,\"tasks\":{\"builtin\":"
                            + "[\"europarl-last-word\"],\"files\":[\""
                            + file.toUri()
                            + "\"],\"limit\":4}}")
                    .setInput(TestModels.ref("bucket", "d".repeat(64)))
                    .setBaseline(TestModels.ref("bucket", "c".repeat(64)))
                    .setCalibrationUri("builtin:europarl")
                    .build())
            .inputDir(model)
            .baselineDir(base)
            .outputDir(Files.createDirectories(tmp.resolve("task-out")))
            .workDir(Files.createDirectories(tmp.resolve("task-work")))
            .build();
    StageResult r = new EvaluationStage((where, json) -> {}, 800).run(ctx);
    Map<String, Double> m = r.metrics();
    assertEquals(4.0, m.get("task.europarl-last-word.documents"));
    assertTrue(m.get("task.europarl-last-word.perplexity") > 1, m.toString());
    assertTrue(m.containsKey("task.europarl-last-word.baselinePerplexity"), m.toString());
    assertTrue(!m.containsKey("task.europarl-last-word.accNorm"), "no acc_norm for continuations");
    assertEquals(2.0, m.get("task.mine.documents"));
    for (String k : new String[] {"acc", "accNorm", "baselineAcc", "baselineAccNorm"}) {
      double v = m.get("task.mine." + k);
      assertTrue(v == 0 || v == 0.5 || v == 1, k + " = " + v);
    }
    EvaluationCompleted e = (EvaluationCompleted) r.events().get(0).value().apply(null);
    assertEquals(m.get("task.mine.acc"), e.getExtra().get("task.mine.acc"));
    assertEquals(2, e.getTasks().size());
    var word = e.getTasks().get(0);
    assertEquals("europarl-last-word", word.getTask());
    assertEquals(m.get("task.europarl-last-word.perplexity"), word.getPerplexity());
    assertEquals(null, word.getAccNorm());
    var mine = e.getTasks().get(1);
    assertEquals(m.get("task.mine.baselineAccNorm"), mine.getBaselineAccNorm());
    assertEquals(2, mine.getDocuments());
  }

  @Test
  void measuresACascadeAndStoresItsRoutingPolicy() throws Exception {
    Path base = TestModels.randomLlama(tmp.resolve("cascade-base"), 2, 3);
    Path model = TestModels.randomLlama(tmp.resolve("cascade-small"), 1, 4);
    String sha = "e".repeat(64);
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "evaluate",
                        "{\"perplexity\":false,\"kl\":false,\"cascade\":{\"target\":0.5}}")
                    .setInput(TestModels.ref("bucket", sha))
                    .setBaseline(TestModels.ref("bucket", "c".repeat(64)))
                    .setCalibrationUri("builtin:europarl")
                    .build())
            .inputDir(model)
            .baselineDir(base)
            .outputDir(Files.createDirectories(tmp.resolve("cascade-out")))
            .workDir(Files.createDirectories(tmp.resolve("cascade-work")))
            .build();
    Map<S3Uri, byte[]> stored = new HashMap<>();
    StageResult r = new EvaluationStage(stored::put, 800).run(ctx);
    Map<String, Double> m = r.metrics();
    assertEquals(1.0, m.get("cascade.targetMet"), m.toString());
    assertTrue(m.get("cascade.qualityRatio") >= 0.5, m.toString());
    assertTrue(m.get("cascade.items") >= 2, m.toString());
    EvaluationCompleted e = (EvaluationCompleted) r.events().get(0).value().apply(null);
    assertEquals(m.get("cascade.costFraction"), e.getExtra().get("cascade.costFraction"));
    byte[] policy = stored.get(EvaluationStage.routingPolicyLocation("bucket", ctx.jobId(), sha));
    var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(policy);
    assertEquals("maxprob", json.get("signal").asText());
    assertEquals(m.get("cascade.fractionRouted"), json.get("expected_fraction_routed").asDouble());
  }
}
