package dev.compactor.e2e;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.cli.pipeline.PipelineClient;
import dev.compactor.cli.pipeline.PipelineStack;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.Sha256;
import dev.compactor.runtime.StageService;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The end-to-end scenarios, written once against a {@link PipelineEnvironment}: every job runs
 * through the real orchestrator, stage workers, Kafka, S3 and schema registry, on a small random
 * byte-level Llama so each job takes seconds.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class PipelineScenarios {

  static final String QUICK =
      "name: e2e-int8\n"
          + "stages:\n"
          // The size gate measures stored files: without a compressed export the smallest form is
          // the dequantized safetensors, as large as the baseline.
          + "  - quantize: { method: rtn, bits: 8, group_size: -1, export: [safetensors, \"gguf:q8_0\"] }\n"
          + "  - evaluate: { perplexity: { seq_len: 32 }, kl: true }\n"
          + "  - publish:  { gates: { max_size_ratio: 0.6, min_top1_agreement: 0.5 } }\n"
          + "calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }\n";

  static final String SLOW_DISTILL =
      "name: e2e-distill\n"
          + "stages:\n"
          + "  - distill: { keep_layers: 1, steps: 400, lr: 0.001, checkpoint_every: 20 }\n"
          + "  - evaluate: { perplexity: { seq_len: 32 }, kl: true }\n"
          + "  - publish:  { gates: { max_size_ratio: 1.0 } }\n"
          + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 32 }\n";

  /** GPTQ through the quantization service with every export the recipe can ask for. */
  static final String GPTQ_ALL_EXPORTS =
      "name: e2e-gptq\n"
          + "stages:\n"
          + "  - quantize: { method: gptq, bits: 4, group_size: 32,"
          + " export: [safetensors, compressed-tensors, \"gguf:q4_0\"] }\n"
          + "  - evaluate: { perplexity: { seq_len: 32 }, kl: true }\n"
          + "  - publish:  { gates: { max_size_ratio: 0.6 } }\n"
          + "calibration: { dataset: builtin:europarl, samples: 8, seq_len: 32 }\n";

  static final Duration JOB = Duration.ofMinutes(3);

  Path tmp;
  PipelineEnvironment env;
  PipelineClient client;
  Path model;
  String modelUri;

  abstract PipelineEnvironment start(Path dir) throws Exception;

  @BeforeAll
  void startPipeline() throws Exception {
    tmp = Files.createTempDirectory("compactor-e2e-");
    env = start(Files.createDirectories(tmp.resolve("stack")));
    client = stack().client();
    model = randomLlama(tmp.resolve("model"), 2, 7);
    modelUri =
        PipelineClient.upload(
            stack().blobs(), model, new S3Uri("compactor-data", "models/e2e-random/"));
  }

  @AfterAll
  void stopPipeline() {
    if (client != null) {
      client.close();
    }
    if (env != null) {
      env.close();
    }
    try (java.util.stream.Stream<Path> s = Files.walk(tmp)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (java.io.IOException e) {
      // a leftover temp directory is harmless
    }
  }

  PipelineStack stack() {
    return env.stack();
  }

  static Path randomLlama(Path dir, int layers, long seed) throws Exception {
    try (Transformer t =
        Transformer.randomInit(
            ModelConfig.llama(257, 64, 128, layers, 4, 2, 128), seed, Device.cpu())) {
      t.save(dir, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(dir, 128);
    return dir;
  }

  /** Events per job until every job reached a final state (and its ModelReady, if it succeeded). */
  Map<String, List<SpecificRecord>> run(Map<String, String> jobs, PipelineClient.Follower f) {
    Map<String, List<SpecificRecord>> events = new HashMap<>();
    jobs.keySet().forEach(j -> events.put(j, new ArrayList<>()));
    long end = System.nanoTime() + JOB.toNanos() * Math.max(1, jobs.size() / 2);
    while (System.nanoTime() < end && !allDone(events)) {
      for (SpecificRecord r : f.poll(null, Duration.ofMillis(300))) {
        String job = jobOf(r);
        if (events.containsKey(job)) {
          events.get(job).add(r);
        }
      }
    }
    assertTrue(allDone(events), "jobs did not finish in time: " + summary(events));
    return events;
  }

  static boolean allDone(Map<String, List<SpecificRecord>> events) {
    return events.values().stream().allMatch(PipelineScenarios::ended);
  }

  /** A job's events show its end: published after SUCCEEDED, or FAILED, REJECTED, CANCELLED. */
  static boolean ended(List<SpecificRecord> l) {
    JobStatus last = lastStatus(l);
    if (last == null) {
      return false;
    }
    return switch (last.getState()) {
      case SUCCEEDED -> l.stream().anyMatch(ModelReady.class::isInstance);
      case FAILED, REJECTED, CANCELLED -> true;
      default -> false;
    };
  }

  static JobStatus lastStatus(List<SpecificRecord> l) {
    JobStatus last = null;
    for (SpecificRecord r : l) {
      if (r instanceof JobStatus s) {
        last = s;
      }
    }
    return last;
  }

  private static String summary(Map<String, List<SpecificRecord>> events) {
    StringBuilder s = new StringBuilder();
    events.forEach((j, l) -> s.append(j).append(": ").append(lastStatus(l)).append('\n'));
    return s.toString();
  }

  private static String jobOf(SpecificRecord r) {
    Object id = r.get(r.getSchema().getField("jobId").pos());
    return id == null ? null : id.toString();
  }

  static long count(List<SpecificRecord> l, Class<?> type) {
    return l.stream().filter(type::isInstance).count();
  }

  @Test
  void aJobReachesModelReadyAndAnyConsumerSeesTheEvaluation() throws Exception {
    Topic<String, EvaluationCompleted> t = Topics.EVALUATION_COMPLETED;
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, stack().bootstrapServers());
    p.putAll(kafkaSecurity());
    p.put(ConsumerConfig.GROUP_ID_CONFIG, "dashboard-" + UUID.randomUUID());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    try (RestSchemaRegistryClient registry =
            new RestSchemaRegistryClient(
                stack().schemaRegistryUrl(), stack().endpoints().schemaRegistryUserInfo());
        KafkaConsumer<String, EvaluationCompleted> dashboard =
            new KafkaConsumer<>(
                p, t.keySerde().deserializer(), t.valueSerde(registry).deserializer());
        PipelineClient.Follower f = client.follow(false)) {
      dashboard.subscribe(List.of(t.name()));
      String job = client.submit(modelUri, QUICK, "e2e");
      List<SpecificRecord> events = run(Map.of(job, QUICK), f).get(job);
      assertEquals(JobState.SUCCEEDED, lastStatus(events).getState(), events.toString());
      assertEquals(1, count(events, ModelReady.class));
      ModelReady ready =
          (ModelReady) events.stream().filter(ModelReady.class::isInstance).findFirst().get();
      assertTrue(stack().blobs().exists(S3Uri.parse(ready.getModelCardUri())));
      List<EvaluationCompleted> seen = new ArrayList<>();
      await()
          .atMost(Duration.ofSeconds(30))
          .untilAsserted(
              () -> {
                for (ConsumerRecord<String, EvaluationCompleted> r :
                    dashboard.poll(Duration.ofMillis(200))) {
                  if (job.equals(r.key())) {
                    seen.add(r.value());
                  }
                }
                assertEquals(1, seen.size());
              });
      EvaluationCompleted e = seen.get(0);
      assertTrue(e.getMetrics().getPerplexity() > 1);
      assertTrue(e.getMetrics().getSizeBytes() < e.getMetrics().getBaselineSizeBytes() / 2);
      assertEquals("gguf:model-q8_0.gguf", e.getSizeFormat(), "the smallest stored form");
      assertEquals(e.getMetrics().getSizeBytes(), ready.getSizeBytes());
      assertTrue(e.getStoredFiles().stream().anyMatch(x -> x.getPath().equals("model-q8_0.gguf")));
      assertEquals(ready.getMetrics().get("perplexity"), e.getMetrics().getPerplexity());
    }
  }

  @Test
  void twoWorkersOfOneStageShareConcurrentJobsEachDoneOnce() throws Exception {
    StageService second = stack().addWorker("quantize", "quantize-2");
    try (PipelineClient.Follower f = client.follow(false);
        PipelineClient.Follower completions = completions()) {
      Map<String, String> jobs = new HashMap<>();
      for (int i = 0; i < 4; i++) {
        jobs.put(client.submit(modelUri, QUICK, "e2e-" + i), QUICK);
      }
      Map<String, List<SpecificRecord>> events = run(jobs, f);
      events.forEach(
          (job, l) -> {
            assertEquals(JobState.SUCCEEDED, lastStatus(l).getState(), job);
            assertEquals(1, count(l, ModelReady.class), job);
          });
      Map<String, Integer> quantized = new HashMap<>();
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(
              () -> {
                for (SpecificRecord r : completions.poll(null, Duration.ofMillis(200))) {
                  StageCompleted c = (StageCompleted) r;
                  if (c.getStage().equals("quantize") && jobs.containsKey(c.getJobId())) {
                    quantized.merge(c.getJobId(), 1, Integer::sum);
                  }
                }
                assertEquals(jobs.keySet(), quantized.keySet());
              });
      quantized.values().forEach(n -> assertEquals(1, n));
    } finally {
      stack().stopWorker(second);
    }
  }

  private PipelineClient.Follower completions() {
    return client.follow(false, List.of(Topics.STAGE_COMPLETED));
  }

  @Test
  void aWorkerKilledMidJobLeavesTheJobToAnotherOnce() throws Exception {
    StageService spare = stack().addWorker("distill", "distill-spare");
    try (PipelineClient.Follower f = client.follow(false);
        PipelineClient.Follower completions = completions()) {
      String job = client.submit(modelUri, SLOW_DISTILL, "e2e-kill");
      S3Uri latest =
          new S3Uri("compactor-artifacts", "checkpoints/distill/" + job + "/step-1/latest");
      await().atMost(JOB).until(() -> stack().blobs().exists(latest));
      StageService busy =
          stack().workers("distill").stream()
              .filter(s -> s.health().current() != null && s.health().current().jobId().equals(job))
              .findFirst()
              .orElseThrow();
      stack().stopWorker(busy);
      if (stack().workers("distill").isEmpty()) {
        stack().addWorker("distill", "distill-replacement");
      }
      List<SpecificRecord> events = run(Map.of(job, SLOW_DISTILL), f).get(job);
      assertEquals(JobState.SUCCEEDED, lastStatus(events).getState(), events.toString());
      assertEquals(1, count(events, ModelReady.class));
      List<StageCompleted> distilled = new ArrayList<>();
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(
              () -> {
                for (SpecificRecord r : completions.poll(job, Duration.ofMillis(200))) {
                  if (((StageCompleted) r).getStage().equals("distill")) {
                    distilled.add((StageCompleted) r);
                  }
                }
                assertEquals(1, distilled.size());
              });
      assertTrue(distilled.get(0).getMetrics().get("resumedFromStep") > 0, distilled.toString());
    } finally {
      if (stack().workers("distill").contains(spare)) {
        stack().stopWorker(spare);
      }
    }
  }

  @Test
  void aGptqRecipePublishesTheModelWithItsGgufAndCompressedTensorsExports() throws Exception {
    List<Topic<String, ? extends SpecificRecord>> topics = new ArrayList<>(PipelineClient.FOLLOWED);
    topics.add(Topics.STAGE_COMPLETED);
    try (PipelineClient.Follower f = client.follow(false, topics)) {
      String job = client.submit(modelUri, GPTQ_ALL_EXPORTS, "e2e-gptq");
      List<SpecificRecord> events = run(Map.of(job, GPTQ_ALL_EXPORTS), f).get(job);
      assertEquals(JobState.SUCCEEDED, lastStatus(events).getState(), events.toString());
      ModelReady ready =
          (ModelReady) events.stream().filter(ModelReady.class::isInstance).findFirst().get();
      Map<String, ArtifactRef> exports = new HashMap<>();
      ready.getExports().forEach(e -> exports.put(e.getFormat(), e));
      assertEquals(java.util.Set.of("gguf", "compressed-tensors"), exports.keySet());
      ArtifactRef ct = exports.get("compressed-tensors");
      S3Uri prefix = S3Uri.parse(ct.getUri());
      byte[] manifest = stack().blobs().getBytes(prefix.resolve("manifest.json"), 1 << 20);
      assertEquals(ct.getSha256(), Sha256.of(manifest));
      String config =
          new String(
              stack().blobs().getBytes(prefix.resolve("config.json"), 1 << 20),
              java.nio.charset.StandardCharsets.UTF_8);
      assertTrue(
          config.contains("\"quant_method\" : \"compressed-tensors\"")
              || config.contains("\"quant_method\":\"compressed-tensors\""),
          config);
      assertTrue(config.contains("\"job_id\""), "provenance names the job: " + config);
      StageCompleted quantized =
          events.stream()
              .filter(StageCompleted.class::isInstance)
              .map(StageCompleted.class::cast)
              .filter(c -> c.getStage().equals("quantize"))
              .findFirst()
              .orElseThrow();
      assertEquals(14.0, quantized.getMetrics().get("quantizedTensors"));
    }
  }

  @Test
  void corruptAndPickleCheckpointsFailClearlyAndTheNextJobCompletes() throws Exception {
    Path corrupt = randomLlama(tmp.resolve("corrupt"), 1, 3);
    Path weights = corrupt.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(weights);
    Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length / 2));
    Path pickle = Files.createDirectories(tmp.resolve("pickle"));
    Files.copy(corrupt.resolve("config.json"), pickle.resolve("config.json"));
    Files.write(pickle.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2});
    try (PipelineClient.Follower f = client.follow(false)) {
      String bad = client.submit(corrupt.toUri().toString(), QUICK, "e2e-corrupt");
      String pick = client.submit(pickle.toUri().toString(), QUICK, "e2e-pickle");
      String good = client.submit(model.toUri().toString(), QUICK, "e2e-good");
      Map<String, List<SpecificRecord>> events =
          run(Map.of(bad, QUICK, pick, QUICK, good, QUICK), f);
      JobStatus b = lastStatus(events.get(bad));
      JobStatus p = lastStatus(events.get(pick));
      assertEquals(JobState.FAILED, b.getState());
      assertTrue(b.getMessage().contains("refused"), b.getMessage());
      assertEquals(JobState.FAILED, p.getState());
      assertTrue(p.getMessage().contains("pickle"), p.getMessage());
      assertEquals(JobState.SUCCEEDED, lastStatus(events.get(good)).getState());
    }
  }

  /** The stack's Kafka client security settings (SASL on the embedded stack). */
  Properties kafkaSecurity() {
    return dev.compactor.runtime.KafkaClientProperties.load(
        stack().endpoints().kafkaPropertiesFile());
  }

  @Test
  void sourcesOutsideTheAllowedRootsAndBucketsAreRejectedBeforeAnythingRuns() throws Exception {
    Path outside = Files.createTempDirectory("compactor-e2e-outside-");
    try (PipelineClient.Follower f = client.follow(false)) {
      Files.copy(model.resolve("config.json"), outside.resolve("config.json"));
      String link = Files.createSymbolicLink(tmp.resolve("link-out"), outside).toUri().toString();
      String viaLink = client.submit(link, QUICK, "e2e-symlink");
      String bucket = client.submit("s3://someone-elses/models/x/", QUICK, "e2e-bucket");
      String calib =
          client.submit(
              model.toUri().toString(),
              QUICK.replaceAll("dataset: [^,]+,", "dataset: file:///etc/passwd,"),
              "e2e-passwd");
      Map<String, List<SpecificRecord>> events =
          run(Map.of(viaLink, QUICK, bucket, QUICK, calib, QUICK), f);
      // the orchestrator refuses them before any step runs, however they were submitted (here
      // straight on Kafka); the stages check again where they read (IngestionStageTest)
      for (String job : List.of(viaLink, bucket, calib)) {
        JobStatus s = lastStatus(events.get(job));
        assertEquals(JobState.REJECTED, s.getState(), job);
        assertTrue(s.getMessage().contains("refused"), s.getMessage());
        assertEquals(0, count(events.get(job), StageFailed.class), "nothing ran");
      }
      assertTrue(lastStatus(events.get(calib)).getMessage().contains("/etc/passwd"));
    } finally {
      try (java.util.stream.Stream<Path> s = Files.walk(outside)) {
        s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  @Test
  void writesToTheJobApiNeedTheToken() throws Exception {
    java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
    java.net.http.HttpRequest.Builder post =
        java.net.http.HttpRequest.newBuilder(
                java.net.URI.create(stack().orchestratorUrl() + "/jobs"))
            .header("Content-Type", "application/json")
            .POST(
                java.net.http.HttpRequest.BodyPublishers.ofString(
                    "{\"modelUri\": \"s3://compactor-data/x/\", \"recipeYaml\": \"name: x\"}"));
    assertEquals(
        401,
        http.send(post.build(), java.net.http.HttpResponse.BodyHandlers.ofString()).statusCode());
    assertEquals(
        200,
        http.send(
                java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(stack().orchestratorUrl() + "/jobs"))
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofString())
            .statusCode(),
        "reads stay open on the loopback");
  }

  @Test
  void aRecordThatIsNotAvroGoesToTheDeadLetterTopicAndThePartitionFlows() throws Exception {
    String job = UUID.randomUUID().toString();
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, stack().bootstrapServers());
    p.putAll(kafkaSecurity());
    try (KafkaProducer<String, byte[]> producer =
            new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        KafkaConsumer<byte[], byte[]> dlq = deadLetters();
        PipelineClient.Follower f = client.follow(false)) {
      // keyed like the next job, so it sits in the partition that job's request will use
      producer
          .send(
              new ProducerRecord<>(
                  Topics.stageRequested("quantize").name(), job, new byte[] {1, 2, 3, 4, 5}))
          .get();
      List<byte[]> dead = new ArrayList<>();
      await()
          .atMost(Duration.ofSeconds(60))
          .untilAsserted(
              () -> {
                dlq.poll(Duration.ofMillis(200)).forEach(r -> dead.add(r.value()));
                assertFalse(
                    dead.stream()
                        .noneMatch(v -> java.util.Arrays.equals(v, new byte[] {1, 2, 3, 4, 5})));
              });
      String next = client.submitAs(job, modelUri, QUICK, "e2e-after-dlq");
      List<SpecificRecord> events = run(Map.of(next, QUICK), f).get(next);
      assertEquals(JobState.SUCCEEDED, lastStatus(events).getState());
    }
  }

  private KafkaConsumer<byte[], byte[]> deadLetters() {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, stack().bootstrapServers());
    p.putAll(kafkaSecurity());
    p.put(ConsumerConfig.GROUP_ID_CONFIG, "dlq-" + UUID.randomUUID());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    c.subscribe(List.of(Topics.DEADLETTER.name()));
    return c;
  }
}
