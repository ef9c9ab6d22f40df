package dev.compactor.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.cli.pipeline.DemoCommand;
import dev.compactor.cli.pipeline.PipelineClient;
import dev.compactor.cli.pipeline.PipelineStack;
import dev.compactor.cli.pipeline.SweepCommand;
import dev.compactor.core.frontier.Objective;
import dev.compactor.core.frontier.SweepSpec;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.moe.TinyMixtral;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.ModelReady;
import dev.compactor.events.NativeSpeedPoint;
import dev.compactor.events.StageFailed;
import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.S3Uri;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8: every recipe in {@code recipes/} runs to its end — SUCCEEDED, published once — on the
 * tiny reference model, on the embedded stack, all submitted at once (so the stages overlap as they
 * would for several users). Recipes named {@code mixtral-*} compress experts and run on the tiny
 * Mixtral ({@code models/tiny-mixtral-v1}) instead.
 */
class RecipesIT {
  private static final Duration TIMEOUT = Duration.ofMinutes(20);

  @TempDir Path tmp;

  @Test
  void everyShippedRecipeSucceedsAndPublishesOnce() throws Exception {
    List<Path> recipes;
    try (Stream<Path> s = Files.list(Path.of("..", "recipes"))) {
      recipes = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertTrue(recipes.size() >= 5, recipes.toString());
    // -Drecipes.only=a,b runs only recipes/a.yaml and recipes/b.yaml (a quick check of new ones)
    String only = System.getProperty("recipes.only", "");
    if (!only.isBlank()) {
      List<String> names = List.of(only.split(","));
      recipes =
          recipes.stream()
              .filter(p -> names.contains(p.getFileName().toString().replace(".yaml", "")))
              .toList();
      assertEquals(names.size(), recipes.size(), "recipes.only=" + only + " found " + recipes);
    }
    Path model = TinyReferenceModel.shipped();
    ExecutorService sweeper = Executors.newSingleThreadExecutor();
    try (PipelineStack stack = PipelineStack.start(tmp.resolve("stack"), 0);
        PipelineClient client = stack.client();
        PipelineClient sweepClient = stack.client()) {
      String modelUri =
          PipelineClient.upload(
              stack.blobs(), model, new S3Uri(LocalStack.DATA_BUCKET, "models/tiny/"));
      String mixtralUri =
          PipelineClient.upload(
              stack.blobs(),
              Path.of("..", TinyMixtral.SHIPPED_DIR),
              new S3Uri(LocalStack.DATA_BUCKET, "models/tiny-mixtral/"));
      stack
          .blobs()
          .putBytes(
              S3Uri.parse(DemoCommand.CALIBRATION_URI),
              DemoCommand.calibrationText().getBytes(StandardCharsets.UTF_8),
              "text/plain");
      try (PipelineClient.Follower f = client.follow(false)) {
        Map<String, String> jobs = new LinkedHashMap<>();
        for (Path r : recipes) {
          String on = r.getFileName().toString().startsWith("mixtral-") ? mixtralUri : modelUri;
          jobs.put(client.submit(on, Files.readString(r), "recipes-it"), r.toString());
        }
        // the sweep's jobs are ordinary jobs on the same stack: they run beside the recipes (on a
        // client of their own) instead of after them, and are checked once the recipes are
        Future<?> sweep =
            sweeper.submit(
                () -> {
                  sweepOfTwoRecipesPublishesOnlyTheChosenOne(sweepClient, modelUri);
                  return null;
                });
        Map<String, List<SpecificRecord>> events = new HashMap<>();
        jobs.keySet().forEach(j -> events.put(j, new ArrayList<>()));
        long end = System.nanoTime() + TIMEOUT.toNanos();
        while (System.nanoTime() < end && !PipelineScenarios.allDone(events)) {
          for (SpecificRecord r : f.poll(null, Duration.ofMillis(500))) {
            Object id = r.get(r.getSchema().getField("jobId").pos());
            if (id != null && events.containsKey(id.toString())) {
              events.get(id.toString()).add(r);
            }
          }
        }
        for (Map.Entry<String, String> job : jobs.entrySet()) {
          List<SpecificRecord> l = events.get(job.getKey());
          JobStatus last = PipelineScenarios.lastStatus(l);
          String failures =
              l.stream()
                  .filter(StageFailed.class::isInstance)
                  .map(Object::toString)
                  .toList()
                  .toString();
          assertEquals(
              JobState.SUCCEEDED,
              last == null ? null : last.getState(),
              job.getValue() + ": " + last + " " + failures);
          assertEquals(1, PipelineScenarios.count(l, ModelReady.class), job.getValue());
          if (job.getValue().endsWith("wanda50-lora-q4.yaml")) {
            loraAdapterIsListedAndSparsityKept(stack, ready(l));
          }
          if (job.getValue().endsWith("moefy-half.yaml")) {
            moefiedModelIsRoutedAndSaysSo(stack, ready(l));
          }
          if (job.getValue().endsWith("wanda50-gptq4.yaml")) {
            nativeSpeedIsMeasuredAndShown(stack, l);
          }
          if (job.getValue().endsWith("tiny-qat-int4.yaml")) {
            publishedModelIsQat(stack, ready(l));
          }
          if (job.getValue().endsWith("tiny-codebook-q3.yaml")) {
            publishedModelIsACodebookCheckpoint(stack, ready(l));
          }
        }
        try {
          sweep.get(Math.max(1, end - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
          if (e.getCause() instanceof Error err) {
            throw err; // the sweep's own assertion, as if it had run on this thread
          }
          throw e;
        }
      }
    } finally {
      sweeper.shutdownNow();
    }
  }

  /**
   * Issue 12: a sweep's jobs are ordinary jobs on the same stack; the frontier is written from
   * their EvaluationCompleted and only the chosen recipe is published (by a job of its own).
   */
  private static void sweepOfTwoRecipesPublishesOnlyTheChosenOne(
      PipelineClient client, String modelUri) throws Exception {
    String spec =
        "name: it-sweep\n"
            + "base:\n"
            + "  name: it\n"
            + "  stages:\n"
            + "    - quantize: { method: rtn, bits: 8, group_size: 32, export: [gguf] }\n"
            + "    - evaluate: { perplexity: { seq_len: 32 }, kl: true }\n"
            + "    - publish: { gates: { max_perplexity_increase: 1.0 } }\n"
            + "  calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }\n"
            + "vary:\n"
            + "  stages[0].quantize.bits: [4, 8]\n";
    SweepCommand.Outcome o =
        SweepCommand.sweep(
            client,
            modelUri,
            "tiny-llama-v1",
            SweepSpec.parse(spec, f -> null),
            2,
            Objective.minimize("perplexity", "perplexity"),
            1.0, // a wide bound: the smaller (4-bit) model is chosen
            true,
            System.err);
    assertEquals(2, o.evaluated(), o.markdown());
    assertEquals("it-bits4", o.published(), o.markdown());
    assertTrue(o.markdown().contains("chosen: **`it-bits4`**"), o.markdown());
    assertTrue(o.svg().contains("<polyline class=\"frontier\""), o.svg());
  }

  /**
   * Issues 12/13: {@code native_speed: true} measures the Q4_0 GGUF and the original as an F32 GGUF
   * with the native decoder in the evaluate step: typed in EvaluationCompleted, the ratio carried
   * to ModelReady, the table on the model card. No timing is asserted.
   */
  private static void nativeSpeedIsMeasuredAndShown(PipelineStack stack, List<SpecificRecord> l)
      throws Exception {
    EvaluationCompleted ev =
        l.stream()
            .filter(EvaluationCompleted.class::isInstance)
            .map(EvaluationCompleted.class::cast)
            .reduce((a, b) -> b)
            .orElseThrow();
    assertEquals(1, ev.getNativeSpeed().size(), ev.getNativeSpeed().toString());
    NativeSpeedPoint p = ev.getNativeSpeed().get(0);
    assertEquals("native-gguf", p.getEngine());
    assertEquals("model-q4_0.gguf", p.getGguf());
    assertEquals("Q4_0", p.getFileType());
    assertEquals("F32", p.getBaselineFileType());
    assertTrue(p.getThreads() >= 1 && p.getDecodeTokensPerSecond() > 0, p.toString());
    assertTrue(p.getBaselineDecodeTokensPerSecond() > 0, p.toString());
    assertTrue(ev.getLatencyMeasuredWith().startsWith("engine djl-dequantized: "));
    ModelReady ready = ready(l);
    String k = "native.model-q4_0.gguf.";
    assertEquals(
        p.getDecodeTokensPerSecond() / p.getBaselineDecodeTokensPerSecond(),
        ready.getMetrics().get(k + "decodeSpeedup"),
        1e-9);
    String card =
        new String(
            stack.blobs().getBytes(S3Uri.parse(ready.getModelCardUri()), 1 << 20),
            StandardCharsets.UTF_8);
    assertTrue(card.contains("### Native speed of the GGUF files"), card);
    assertTrue(card.contains("| `model-q4_0.gguf` | " + p.getThreads() + " | "), card);
  }

  private static ModelReady ready(List<SpecificRecord> events) {
    return events.stream()
        .filter(ModelReady.class::isInstance)
        .map(ModelReady.class::cast)
        .findFirst()
        .orElseThrow();
  }

  /**
   * Issue 9's MoEfication through the pruning service: the published config makes Compactor's
   * forward run 4 of 8 experts, the routers are published with the weights, and the card says which
   * runtimes run it routed.
   */
  private void moefiedModelIsRoutedAndSaysSo(PipelineStack stack, ModelReady ready)
      throws Exception {
    Path published = Files.createDirectories(tmp.resolve("published-moefy"));
    S3Uri uri = S3Uri.parse(ready.getUri());
    for (String f : List.of("config.json", "model.safetensors")) {
      stack.blobs().getFile(uri.resolve(f), published.resolve(f));
    }
    ModelConfig c = ModelConfig.read(published);
    assertEquals(8, c.moeficationExperts());
    assertEquals(4, c.moeficationTopK());
    try (TensorSource t = Checkpoints.open(published)) {
      assertTrue(t.contains("model.layers.3.mlp.moefication_router.weight"));
      assertEquals("moefy", t.metadata().get("compactor.prune.method"));
    }
    String card =
        new String(
            stack.blobs().getBytes(S3Uri.parse(ready.getModelCardUri()), 1 << 20),
            StandardCharsets.UTF_8);
    assertTrue(card.contains("## MoEfication"), card);
    assertTrue(card.contains("runs 4 per token"), card);
  }

  /**
   * Issue 11: a QAT quantize step publishes the trained grid — config.json says method qat with its
   * training settings and calibration hash, and the compressed-tensors and GGUF Q4_0 exports are
   * published beside it.
   */
  private void publishedModelIsQat(PipelineStack stack, ModelReady ready) throws Exception {
    Path published = Files.createDirectories(tmp.resolve("published-qat"));
    stack
        .blobs()
        .getFile(
            S3Uri.parse(ready.getUri()).resolve("config.json"), published.resolve("config.json"));
    com.fasterxml.jackson.databind.JsonNode config =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(published.resolve("config.json").toFile());
    assertEquals("qat", config.at("/quantization_config/method").asText(), config.toString());
    assertEquals("qat", config.at("/compactor_provenance/method").asText(), config.toString());
    assertEquals(12, config.at("/compactor_provenance/qat/steps").asInt(), config.toString());
    assertEquals(
        64,
        config.at("/compactor_provenance/calibration/sha256").asText().length(),
        config.toString());
    List<String> formats = ready.getExports().stream().map(ArtifactRef::getFormat).toList();
    assertTrue(
        formats.contains("gguf") && formats.contains("compressed-tensors"), formats.toString());
  }

  /**
   * A codebook quantize step publishes the compactor-codebook checkpoint itself (not dequantized
   * weights): its config says so, and read back through {@code Checkpoints.open} every output row
   * of a linear holds at most 2^3 values.
   */
  private void publishedModelIsACodebookCheckpoint(PipelineStack stack, ModelReady ready)
      throws Exception {
    Path published = Files.createDirectories(tmp.resolve("published-codebook"));
    S3Uri uri = S3Uri.parse(ready.getUri());
    for (String f : List.of("config.json", "model.safetensors")) {
      stack.blobs().getFile(uri.resolve(f), published.resolve(f));
    }
    assertTrue(dev.compactor.core.io.Codebook.isCodebookCheckpoint(published));
    try (dev.compactor.core.io.TensorSource w = dev.compactor.core.io.Checkpoints.open(published)) {
      String name = "model.layers.0.mlp.down_proj.weight";
      float[] v = w.readFloats(name);
      int cols = (int) w.info(name).shape()[1];
      for (int row = 0; row < v.length / cols; row++) {
        java.util.Set<Float> distinct = new java.util.HashSet<>();
        for (int c = 0; c < cols; c++) {
          distinct.add(v[row * cols + c]);
        }
        assertTrue(distinct.size() <= 8, "row " + row + " holds " + distinct.size() + " values");
      }
    }
  }

  /**
   * Issue 11's acceptance: prune → LoRA recovery → quantize → evaluate → publish ends in ModelReady
   * with the PEFT adapter listed (and published, with its own manifest) and the published weights
   * still at least 50 % exact zeros in the decoder linears.
   */
  private void loraAdapterIsListedAndSparsityKept(PipelineStack stack, ModelReady ready)
      throws Exception {
    List<ArtifactRef> adapters =
        ready.getExports().stream().filter(e -> e.getFormat().equals("peft-lora")).toList();
    assertEquals(1, adapters.size(), ready.getExports().toString());
    S3Uri adapter = S3Uri.parse(adapters.get(0).getUri());
    assertTrue(adapter.toString().endsWith("/adapter/"), adapter.toString());
    for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "manifest.json")) {
      assertTrue(stack.blobs().exists(adapter.resolve(f)), adapter.resolve(f).toString());
    }
    String card =
        new String(
            stack.blobs().getBytes(S3Uri.parse(ready.getModelCardUri()), 1 << 20),
            StandardCharsets.UTF_8);
    assertTrue(card.contains("## LoRA adapter (`adapter/`)"), card);
    assertTrue(card.contains("already include this adapter"), card);
    Path published = Files.createDirectories(tmp.resolve("published-lora"));
    S3Uri uri = S3Uri.parse(ready.getUri());
    for (String f : List.of("config.json", "model.safetensors")) {
      stack.blobs().getFile(uri.resolve(f), published.resolve(f));
    }
    double sparsity = WeightSparsity.of(published).fraction();
    assertTrue(sparsity >= 0.5, "published decoder linears hold " + sparsity + " exact zeros");
  }
}
