package dev.compactor.runtime;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageProgress;
import dev.compactor.events.StageRequested;
import dev.compactor.infra.LocalStack;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The stage runtime against a real broker, S3 server and schema registry: one {@link LocalStack}
 * for the class, each test on its own stage topic so tests cannot see each other's records.
 */
class StageWorkerIT {
  private static final Duration WAIT = Duration.ofSeconds(90);

  @TempDir static Path dir;
  static LocalStack stack;
  static SchemaRegistryClient registry;
  static BlobStore blobs;
  static ArtifactStore artifacts;
  static ArtifactRef input;
  static EventReader events;

  private final List<StageWorker> workers = new ArrayList<>();
  private final TransformStage stage = new TransformStage();

  @BeforeAll
  static void startStack() throws Exception {
    stack = LocalStack.start(dir.resolve("stack"));
    registry =
        new RestSchemaRegistryClient(stack.schemaRegistryUrl(), stack.schemaRegistryUserInfo());
    blobs = BlobStore.create(config("prune", "setup"));
    artifacts = new ArtifactStore(blobs, LocalStack.ARTIFACTS_BUCKET);
    Path model = Files.createDirectories(dir.resolve("model/sub"));
    Files.writeString(model.getParent().resolve("config.json"), "{\"hidden_size\": 64}");
    Files.write(model.resolve("weights.bin"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
    input =
        artifacts.upload(
            model.getParent(),
            "hf-safetensors",
            new ArtifactManifest.Provenance("ingestion", "", null, Map.of()));
    events = new EventReader(stack.kafka().clientProperties(), registry);
  }

  @AfterAll
  static void stopStack() {
    blobs.close();
    registry.close();
    stack.close();
  }

  @AfterEach
  void closeWorkers() {
    workers.forEach(StageWorker::close);
  }

  @Test
  void completesAJobWhoseOutputDownloadsAndVerifies() throws Exception {
    StageWorker worker = startWorker("prune", "w-prune");
    String job = newJobId();
    produce(request("prune", job, 1, "{}"));

    StageCompleted done = awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    assertEquals(2.0, done.getMetrics().get("files"));
    assertEquals(1, worker.health().completed());
    ArtifactRef out = done.getOutput();
    assertNotNull(out);
    Path target = dir.resolve("downloaded-" + job);
    ArtifactManifest manifest = artifacts.download(out, target);
    assertArrayEquals(
        new byte[] {9, 8, 7, 6, 5, 4, 3, 2, 1},
        Files.readAllBytes(target.resolve("sub/weights.bin")));
    assertEquals(input.getSha256(), manifest.provenance().parentSha256());
    assertEquals("recipe of " + job, manifest.provenance().recipe());
    assertEquals(
        Map.of("bytes", 9.0 + "{\"hidden_size\": 64}".length(), "files", 2.0),
        manifest.provenance().metrics());
  }

  @Test
  void aJobLongerThanMaxPollIntervalCompletesOnceAndKeepsItsPartition() throws Exception {
    StageWorker worker = startWorker("quantize", "w-long");
    await().atMost(WAIT).until(() -> !worker.health().assigned().isEmpty());
    List<String> assignedBefore = worker.health().assigned();
    String job = newJobId();
    // 12 s of work against max.poll.interval.ms = 6 s.
    produce(request("quantize", job, 1, "{\"work_ms\": 12000}"));
    await()
        .atMost(WAIT)
        .until(
            () -> {
              WorkerHealth.CurrentJob running = worker.health().current();
              return running != null && running.progress() > 0.5;
            });

    awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    WorkerHealth h = worker.health();
    assertEquals(1, stage.started(job, 1));
    assertEquals(0, h.abandoned());
    assertEquals(assignedBefore, h.assigned());
    assertEquals(1, events.count(Topics.STAGE_COMPLETED.name(), job));
  }

  @Test
  void aFinishedJobIsAnsweredWithoutWaitingOutTheOneMinutePollTimeout() throws Exception {
    StageConfig c = config("distill", "w-wakeup").with(StageConfig.POLL_TIMEOUT_MS, "60000");
    StageWorker worker = new StageWorker(stage, c, blobs, registry);
    workers.add(worker);
    worker.start();
    String first = newJobId();
    String second = newJobId();
    produce(request("distill", first, 1, "{}"));
    produce(request("distill", second, 1, "{}"));

    // Without the job waking the poll thread, answering each job takes 60 s. The two requests sit
    // on different partitions, so either may run first: wait for both.
    Duration wellUnderThePollTimeout = Duration.ofSeconds(20);
    await()
        .atMost(wellUnderThePollTimeout)
        .until(
            () ->
                events.count(Topics.STAGE_COMPLETED.name(), first) == 1
                    && events.count(Topics.STAGE_COMPLETED.name(), second) == 1);
    assertEquals(2, worker.health().completed());
  }

  @Test
  void aRedeliveredRequestIsNeitherRecomputedNorRepublished() throws Exception {
    StageWorker worker = startWorker("distill", "w-dup");
    String job = newJobId();
    StageRequested req = request("distill", job, 2, "{}");
    produce(req);
    awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    produce(req);

    await().atMost(WAIT).until(() -> worker.health().duplicates() == 1);
    assertEquals(1, stage.started(job, 2));
    assertEquals(1, events.count(Topics.STAGE_COMPLETED.name(), job));
    assertEquals(0, events.count(Topics.STAGE_FAILED.name(), job));
  }

  @Test
  void aFailingStageYieldsStageFailedWithTheReasonAndTheNextJobCompletes() throws Exception {
    startWorker("factorize", "w-fail");
    String bad = newJobId();
    String good = newJobId();
    produce(request("factorize", bad, 1, "{\"fail\": \"rank: expected <= 64, found 65\"}"));
    produce(request("factorize", good, 1, "{}"));

    StageFailed failed = awaitOne(Topics.STAGE_FAILED.name(), bad, StageFailed.class);
    assertEquals("transform failed: rank: expected <= 64, found 65", failed.getReason());
    assertEquals(IllegalArgumentException.class.getName(), failed.getErrorType());
    assertFalse(failed.getRetriable());
    assertEquals(1, failed.getAttempt());
    awaitOne(Topics.STAGE_COMPLETED.name(), good, StageCompleted.class);
    assertEquals(0, events.count(Topics.STAGE_COMPLETED.name(), bad));
  }

  /** Issue 8: an Error was redelivered forever, the job RUNNING and its partition blocked. */
  @Test
  void aJvmErrorInAStageIsAnsweredWithARetriableStageFailedAndThePartitionFlows() throws Exception {
    startWorker("publish", "w-error");
    String oom = newJobId();
    String link = newJobId();
    String good = newJobId();
    produce(request("publish", oom, 1, "{\"error\": \"oom\"}"));
    produce(request("publish", link, 1, "{\"error\": \"link\"}"));
    produce(request("publish", good, 1, "{}"));

    StageFailed failed = awaitOne(Topics.STAGE_FAILED.name(), oom, StageFailed.class);
    assertEquals("OutOfMemoryError: Java heap space", failed.getReason());
    assertEquals(OutOfMemoryError.class.getName(), failed.getErrorType());
    assertTrue(failed.getRetriable());
    StageFailed unlinked = awaitOne(Topics.STAGE_FAILED.name(), link, StageFailed.class);
    assertTrue(unlinked.getReason().startsWith("UnsatisfiedLinkError: "), unlinked.getReason());
    awaitOne(Topics.STAGE_COMPLETED.name(), good, StageCompleted.class);
    assertEquals(1, stage.started(oom, 1));
  }

  /** Issue 8: a cancelled job's running step stops and is consumed without an answer. */
  @Test
  void aCancelledJobsStepStopsUnpublishedAndItsLaterRequestsAreSkipped() throws Exception {
    startWorker("quantize", "w-cancel");
    String job = newJobId();
    produce(request("quantize", job, 1, "{\"work_ms\": 60000}"));
    await().atMost(WAIT).until(() -> stage.started(job, 1) == 1);
    // progress arrives while it runs
    StageProgress progress = awaitOne(Topics.STAGE_PROGRESS.name(), job, StageProgress.class);
    assertEquals(1, progress.getStep());
    assertEquals("w-cancel", progress.getWorker());
    publishStatus(job, JobState.CANCELLED);
    String next = newJobId();
    produce(request("quantize", next, 1, "{}"));
    awaitOne(Topics.STAGE_COMPLETED.name(), next, StageCompleted.class);
    // a later request of the cancelled job (a retry in flight) is consumed without running
    produce(request("quantize", job, 2, "{}"));
    String last = newJobId();
    produce(request("quantize", last, 1, "{}"));
    awaitOne(Topics.STAGE_COMPLETED.name(), last, StageCompleted.class);
    assertEquals(0, stage.started(job, 2));
    assertEquals(0, events.count(Topics.STAGE_COMPLETED.name(), job));
    assertEquals(0, events.count(Topics.STAGE_FAILED.name(), job));
    assertEquals(0, stage.runs(job, 1));
  }

  private static void publishStatus(String job, JobState state) throws Exception {
    JobStatus status =
        JobStatus.newBuilder()
            .setJobId(job)
            .setState(state)
            .setStep(1)
            .setTotalSteps(3)
            .setStage("quantize")
            .setMessage("cancelled by test")
            .setUpdatedAtMs(System.currentTimeMillis())
            .build();
    produceRaw(
        Topics.JOBS_STATUS.name(),
        job,
        Topics.JOBS_STATUS
            .valueSerde(registry)
            .serializer()
            .serialize(Topics.JOBS_STATUS.name(), status));
  }

  /** A request that keeps losing its worker is answered after COMPACTOR_MAX_DELIVERIES starts. */
  @Test
  void aRequestStartedMoreThanMaxDeliveriesTimesIsAnsweredWithStageFailed() throws Exception {
    String job = newJobId();
    StageRequested req = request("ingestion", job, 1, "{}");
    // three earlier starts that never answered, as three killed workers would leave them
    S3Uri marker = CompletionMarker.location(LocalStack.ARTIFACTS_BUCKET, "ingestion", job, 1, 1);
    blobs.putBytes(
        new S3Uri(marker.bucket(), marker.key().replace(".json", ".deliveries")),
        "3".getBytes(StandardCharsets.US_ASCII),
        "text/plain");
    Map<String, String> m = new HashMap<>(configMap("ingestion", "w-deliveries"));
    m.put(StageConfig.MAX_DELIVERIES.envName(), "3");
    StageWorker w = new StageWorker(stage, StageConfig.of(m), blobs, registry);
    workers.add(w);
    w.start();
    produce(req);
    StageFailed failed = awaitOne(Topics.STAGE_FAILED.name(), job, StageFailed.class);
    assertTrue(
        failed.getReason().contains("started 3 times without an answer"), failed.getReason());
    assertTrue(failed.getRetriable());
    assertEquals(0, stage.started(job, 1));
  }

  @Test
  void undecodableRecordsGoToTheDeadLetterTopicAndThePartitionKeepsFlowing() throws Exception {
    StageWorker worker = startWorker("evaluate", "w-dlq");
    String topic = Topics.stageRequested("evaluate").name();
    String job = newJobId();
    byte[] garbage = "definitely not avro".getBytes(StandardCharsets.UTF_8);
    byte[] unknownSchema = {0, 0, 0, 0x7f, 0x7f, 1, 2, 3};
    // Same key as the good job: all three share one partition, the garbage first.
    produceRaw(topic, job, garbage);
    produceRaw(topic, job, unknownSchema);
    produce(request("evaluate", job, 1, "{}"));

    awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    List<ConsumerRecord<byte[], byte[]>> dead = events.raw(Topics.DEADLETTER.name(), job);
    assertEquals(2, dead.size());
    assertArrayEquals(garbage, dead.get(0).value());
    assertArrayEquals(unknownSchema, dead.get(1).value());
    assertEquals(topic, header(dead.get(0), DeadLetters.ORIGINAL_TOPIC));
    assertEquals(
        header(dead.get(0), DeadLetters.ORIGINAL_PARTITION),
        header(dead.get(1), DeadLetters.ORIGINAL_PARTITION));
    assertEquals(
        Long.parseLong(header(dead.get(0), DeadLetters.ORIGINAL_OFFSET)) + 1,
        Long.parseLong(header(dead.get(1), DeadLetters.ORIGINAL_OFFSET)));
    assertTrue(
        header(dead.get(1), DeadLetters.ERROR).contains("schema id"),
        header(dead.get(1), DeadLetters.ERROR));
    assertEquals(2, worker.health().deadLettered());
  }

  @Test
  void twoWorkersShareJobsAndEachJobCompletesExactlyOnce() throws Exception {
    StageWorker a = startWorker("publish", "w-share-a");
    StageWorker b = startWorker("publish", "w-share-b");
    await()
        .atMost(WAIT)
        .until(
            () ->
                a.health().assigned().size() + b.health().assigned().size() == 6
                    && !a.health().assigned().isEmpty()
                    && !b.health().assigned().isEmpty());
    List<String> jobs = jobsCoveringPartitions(Topics.stageRequested("publish").partitions());
    for (String job : jobs) {
      produce(request("publish", job, 3, "{\"work_ms\": 500}"));
    }

    for (String job : jobs) {
      awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    }
    for (String job : jobs) {
      assertEquals(1, events.count(Topics.STAGE_COMPLETED.name(), job), job);
      assertEquals(1, stage.started(job, 3), job);
    }
    assertTrue(a.health().completed() > 0 && b.health().completed() > 0, "both workers worked");
    assertEquals(jobs.size(), a.health().completed() + b.health().completed());
  }

  @Test
  void aJobOfAWorkerClosedMidJobIsCompletedByAnother() throws Exception {
    StageWorker a = startWorker("ingestion", "w-first");
    StageWorker b = startWorker("ingestion", "w-second");
    await()
        .atMost(WAIT)
        .until(() -> a.health().assigned().size() + b.health().assigned().size() == 6);
    String job = newJobId();
    produce(request("ingestion", job, 0, "{\"work_ms\": 4000}"));
    await().atMost(WAIT).until(() -> stage.started(job, 0) == 1);
    StageWorker running = a.health().current() != null ? a : b;
    StageWorker other = running == a ? b : a;

    running.close();
    StageCompleted done = awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    assertEquals(other.health().worker(), done.getWorker());
    assertEquals(1, running.health().abandoned());
    assertEquals(2, stage.started(job, 0));
    assertEquals(1, stage.runs(job, 0));
    assertEquals(1, events.count(Topics.STAGE_COMPLETED.name(), job));
  }

  @Test
  void anAnswerRecordedBeforeACrashIsPublishedWithoutRecomputing() throws Exception {
    // A worker that wrote its completion marker and died before its transaction committed leaves
    // exactly this behind: the marker for the record, nothing published, the offset not consumed.
    String job = newJobId();
    RecordMetadata at = produce(request("prune", job, 5, "{}"));
    StageCompleted recorded =
        StageCompleted.newBuilder()
            .setJobId(job)
            .setStep(5)
            .setStage("prune")
            .setOutput(input)
            .setMetrics(Map.of("recorded", 1.0))
            .setDurationMs(1)
            .setWorker("crashed-worker")
            .setAttempt(1)
            .setCompletedAtMs(1)
            .build();
    String out = Topics.STAGE_COMPLETED.name();
    CompletionMarker marker =
        new CompletionMarker(
            at.topic(),
            at.partition(),
            at.offset(),
            true,
            "crashed-worker",
            List.of(
                new CompletionMarker.OutRecord(
                    out,
                    job.getBytes(StandardCharsets.UTF_8),
                    Topics.STAGE_COMPLETED
                        .valueSerde(registry)
                        .serializer()
                        .serialize(out, recorded))));
    blobs.putBytes(
        CompletionMarker.location(LocalStack.ARTIFACTS_BUCKET, "prune", job, 5, 1),
        marker.toJson(),
        "application/json");

    StageWorker worker = startWorker("prune", "w-recover");
    StageCompleted done = awaitOne(out, job, StageCompleted.class);
    assertEquals("crashed-worker", done.getWorker());
    assertEquals(Map.of("recorded", 1.0), done.getMetrics());
    assertEquals(0, stage.started(job, 5));
    await().atMost(WAIT).until(() -> worker.health().completed() == 1);
    assertEquals(1, events.count(out, job));
  }

  @Test
  void aRegistryOutageDelaysRequestsInsteadOfDeadLetteringThem() throws Exception {
    String job = newJobId();
    produce(request("prune", job, 6, "{}"));
    int deadPort;
    try (ServerSocket s = new ServerSocket(0)) {
      deadPort = s.getLocalPort();
    }
    StageWorker blind;
    try (SchemaRegistryClient unreachable =
        new RestSchemaRegistryClient("http://127.0.0.1:" + deadPort)) {
      blind = new StageWorker(stage, config("prune", "w-blind"), blobs, unreachable);
      workers.add(blind);
      blind.start();
      await().atMost(WAIT).until(() -> blind.health().retries() >= 2);
      blind.close();
    }
    assertEquals(0, blind.health().deadLettered());
    assertEquals(0, events.raw(Topics.DEADLETTER.name(), job).size());

    startWorker("prune", "w-sighted");
    StageCompleted done = awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    assertEquals("w-sighted", done.getWorker());
  }

  @Test
  void aWorkerJoiningMidJobTakesOnlyIdlePartitionsAndTheJobRunsOnce() throws Exception {
    StageWorker first = startWorker("quantize", "w-scale-1");
    await().atMost(WAIT).until(() -> first.health().assigned().size() == 6);
    String job = newJobId();
    produce(request("quantize", job, 7, "{\"work_ms\": 8000}"));
    await().atMost(WAIT).until(() -> first.health().current() != null);
    List<String> before = first.health().assigned();

    // The rebalance hands half the partitions over, but never the running job's.
    StageWorker second = startWorker("quantize", "w-scale-2");
    await()
        .atMost(WAIT)
        .until(
            () ->
                second.health().assigned().size() >= 2
                    && first.health().assigned().size() + second.health().assigned().size() == 6);
    assertTrue(before.containsAll(first.health().assigned()), "first only gave partitions up");
    assertTrue(first.health().current() != null, "the job is still running on the first worker");
    List<String> after = jobsCoveringPartitions(Topics.stageRequested("quantize").partitions());
    for (String j : after) {
      produce(request("quantize", j, 7, "{}"));
    }

    awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
    for (String j : after) {
      awaitOne(Topics.STAGE_COMPLETED.name(), j, StageCompleted.class);
    }
    assertEquals(1, events.count(Topics.STAGE_COMPLETED.name(), job));
    assertEquals(1, stage.started(job, 7), "started once: the join did not cancel it");
    assertEquals(0, first.health().abandoned());
    for (String j : after) {
      assertEquals(1, events.count(Topics.STAGE_COMPLETED.name(), j), j);
    }
  }

  @Test
  void aServiceServesItsHealthAndStopsCleanly() throws Exception {
    StageConfig c = config("prune", "w-service").with(StageConfig.HEALTH_PORT, "0");
    StageService service = StageService.start(stage, c);
    try {
      HttpClient http = HttpClient.newHttpClient();
      URI uri = URI.create("http://127.0.0.1:" + service.healthPort().orElseThrow() + "/health");
      HttpResponse<String> ok =
          await()
              .atMost(WAIT)
              .until(
                  () -> http.send(HttpRequest.newBuilder(uri).build(), BodyHandlers.ofString()),
                  r -> r.body().contains("\"state\":\"RUNNING\""));
      assertEquals(200, ok.statusCode());
      assertTrue(ok.body().contains("\"worker\":\"w-service\""), ok.body());
    } finally {
      service.close();
    }
    assertEquals("STOPPED", service.health().state());
  }

  @Test
  void logLinesInsideAJobCarryItsCoordinates() throws Exception {
    ch.qos.logback.classic.Logger root =
        (ch.qos.logback.classic.Logger)
            org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ListAppender<ILoggingEvent> captured = new ListAppender<>();
    captured.start();
    root.addAppender(captured);
    try {
      startWorker("prune", "w-log");
      String job = newJobId();
      produce(request("prune", job, 3, "{}"));
      awaitOne(Topics.STAGE_COMPLETED.name(), job, StageCompleted.class);
      List<ILoggingEvent> lines;
      synchronized (captured) {
        lines = new ArrayList<>(captured.list);
      }
      List<ILoggingEvent> inJob =
          lines.stream()
              .filter(e -> e.getLoggerName().equals(JobRunner.class.getName()))
              .filter(e -> e.getFormattedMessage().contains(job))
              .toList();
      assertFalse(inJob.isEmpty(), "the job runner logs the completion of " + job);
      for (ILoggingEvent e : inJob) {
        Map<String, String> mdc = e.getMDCPropertyMap();
        assertEquals(job, mdc.get("jobId"), e.getFormattedMessage());
        assertEquals("3", mdc.get("step"), e.getFormattedMessage());
        assertEquals("1", mdc.get("attempt"), e.getFormattedMessage());
        assertEquals("prune", mdc.get("stage"), e.getFormattedMessage());
      }
    } finally {
      root.detachAppender(captured);
    }
  }

  private StageWorker startWorker(String stageName, String workerId) {
    StageWorker w = new StageWorker(stage, config(stageName, workerId), blobs, registry);
    workers.add(w);
    w.start();
    return w;
  }

  private static StageConfig config(String stageName, String workerId) {
    return StageConfig.of(configMap(stageName, workerId));
  }

  private static Map<String, String> configMap(String stageName, String workerId) {
    Map<String, String> m = new HashMap<>();
    m.put(StageConfig.KAFKA_BOOTSTRAP.envName(), stack.bootstrapServers());
    m.put(StageConfig.SCHEMA_REGISTRY_URL.envName(), stack.schemaRegistryUrl());
    m.put(StageConfig.SCHEMA_REGISTRY_USER_INFO.envName(), stack.schemaRegistryUserInfo());
    m.put(
        StageConfig.KAFKA_PROPERTIES_FILE.envName(), stack.kafkaClientPropertiesFile().toString());
    m.put(StageConfig.S3_ENDPOINT.envName(), stack.s3Endpoint().toString());
    m.put(StageConfig.S3_ACCESS_KEY.envName(), stack.s3AccessKey());
    m.put(StageConfig.S3_SECRET_KEY.envName(), stack.s3SecretKey());
    m.put(StageConfig.S3_REGION.envName(), stack.s3Region());
    m.put(StageConfig.S3_BUCKET.envName(), LocalStack.ARTIFACTS_BUCKET);
    m.put(StageConfig.STAGE.envName(), stageName);
    m.put(StageConfig.WORK_DIR.envName(), dir.resolve("work-" + workerId).toString());
    m.put(StageConfig.WORKER_ID.envName(), workerId);
    m.put(StageConfig.MAX_POLL_INTERVAL_MS.envName(), "6000");
    m.put(StageConfig.SESSION_TIMEOUT_MS.envName(), "6000");
    m.put(StageConfig.POLL_TIMEOUT_MS.envName(), "200");
    m.put(StageConfig.RETRY_ATTEMPTS.envName(), "3");
    m.put(StageConfig.RETRY_INITIAL_BACKOFF_MS.envName(), "50");
    m.put(StageConfig.RETRY_MAX_BACKOFF_MS.envName(), "500");
    return m;
  }

  private static StageRequested request(String stageName, String job, int step, String params) {
    return StageRequested.newBuilder()
        .setJobId(job)
        .setStep(step)
        .setStage(stageName)
        .setParamsJson(params)
        .setInput(input)
        .setRecipeYaml("recipe of " + job)
        .setAttempt(1)
        .setRequestedAtMs(System.currentTimeMillis())
        .build();
  }

  private static RecordMetadata produce(StageRequested req) throws Exception {
    String topic = Topics.stageRequested(req.getStage()).name();
    Serializer<StageRequested> ser =
        Topics.stageRequested(req.getStage()).valueSerde(registry).serializer();
    return produceRaw(topic, req.getJobId(), ser.serialize(topic, req));
  }

  private static RecordMetadata produceRaw(String topic, String key, byte[] value)
      throws Exception {
    var props = stack.kafka().clientProperties();
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    try (KafkaProducer<byte[], byte[]> p =
        new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
      return p.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value)).get();
    }
  }

  private static <V> V awaitOne(String topic, String job, Class<V> type) {
    return await()
        .atMost(WAIT)
        .pollInterval(Duration.ofMillis(300))
        .until(() -> events.values(topic, job, type), l -> !l.isEmpty())
        .get(0);
  }

  private static String header(ConsumerRecord<?, ?> r, String name) {
    return new String(r.headers().lastHeader(name).value(), StandardCharsets.UTF_8);
  }

  private static String newJobId() {
    return "job-" + UUID.randomUUID();
  }

  /** Job ids whose records land on every partition of a topic with {@code n} partitions. */
  private static List<String> jobsCoveringPartitions(int n) {
    Set<Integer> covered = new HashSet<>();
    List<String> jobs = new ArrayList<>();
    while (covered.size() < n) {
      String job = newJobId();
      int p = Utils.toPositive(Utils.murmur2(job.getBytes(StandardCharsets.UTF_8))) % n;
      if (covered.add(p)) {
        jobs.add(job);
      }
    }
    return jobs;
  }
}
