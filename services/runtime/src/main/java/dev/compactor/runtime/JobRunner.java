package dev.compactor.runtime;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageRequested;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.apache.kafka.common.serialization.Serializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * Runs one request on a job thread: consults the completion marker, downloads and verifies the
 * input, runs the {@link Stage}, stores the output, serializes the answer and writes the marker.
 * Never touches the Kafka consumer, which belongs to the poll thread.
 */
final class JobRunner {
  private static final Logger log = LoggerFactory.getLogger(JobRunner.class);
  private static final int MAX_MARKER_BYTES = 64 * 1024 * 1024;
  private static final long PROGRESS_LOG_INTERVAL_MS = 5_000;

  /** What became of a job, for the poll thread to act on. */
  sealed interface Outcome {}

  /** Publish these records and commit; {@code replayed} when they come from an earlier run. */
  record Publish(CompletionMarker marker, boolean replayed) implements Outcome {}

  /** The request was already answered by another record: commit without publishing. */
  record Duplicate(CompletionMarker existing) implements Outcome {}

  /** The job was taken away from this worker: publish nothing, commit nothing. */
  record Abandoned() implements Outcome {}

  /** Storage or registry trouble: redeliver the record to this worker after a backoff. */
  record RetryLater(Exception cause) implements Outcome {}

  /** One running request, shared between the job thread and the poll thread. */
  static final class Job {
    final StageRequested request;
    final String topic;
    final int partition;
    final long offset;
    final long startedAtMs = System.currentTimeMillis();
    final AtomicBoolean cancelled = new AtomicBoolean();
    volatile double progress;
    volatile String progressMessage = "";
    private long lastProgressLogMs;

    Job(StageRequested request, String topic, int partition, long offset) {
      this.request = request;
      this.topic = topic;
      this.partition = partition;
      this.offset = offset;
    }

    String coordinates() {
      return "job="
          + request.getJobId()
          + " step="
          + request.getStep()
          + " attempt="
          + request.getAttempt()
          + " "
          + topic
          + "-"
          + partition
          + "@"
          + offset;
    }
  }

  private final Stage stage;
  private final String stageName;
  private final String workerId;
  private final String bucket;
  private final SourcePolicy sources;
  private final Path workRoot;
  private final String device;
  private final BlobStore blobs;
  private final ArtifactStore artifacts;
  private final SchemaRegistryClient registry;
  private final Map<String, Serializer<Object>> serializers = new ConcurrentHashMap<>();

  JobRunner(Stage stage, StageConfig config, BlobStore blobs, SchemaRegistryClient registry) {
    this.stage = stage;
    this.stageName = config.get(StageConfig.STAGE);
    this.workerId = StageWorker.workerId(config);
    this.bucket = config.get(StageConfig.S3_BUCKET);
    this.sources = SourcePolicy.of(config);
    this.workRoot = Path.of(config.get(StageConfig.WORK_DIR));
    this.device = config.get(StageConfig.DEVICE_NAME);
    this.blobs = blobs;
    this.artifacts = new ArtifactStore(blobs, bucket);
    this.registry = registry;
  }

  Outcome run(Job job) {
    MDC.put("jobId", job.request.getJobId());
    MDC.put("record", job.topic + "-" + job.partition + "@" + job.offset);
    try {
      return runInContext(job);
    } finally {
      MDC.clear();
    }
  }

  private Outcome runInContext(Job job) {
    StageRequested req = job.request;
    S3Uri markerUri =
        CompletionMarker.location(
            bucket, stageName, req.getJobId(), req.getStep(), req.getAttempt());
    Optional<CompletionMarker> existing;
    try {
      existing = readMarker(markerUri);
    } catch (RuntimeException e) {
      return new RetryLater(e);
    }
    if (existing.isPresent()) {
      CompletionMarker m = existing.get();
      if (m.answers(job.topic, job.partition, job.offset)) {
        log.info(
            "{}: answer already computed by {}; publishing it without recomputing",
            job.coordinates(),
            m.worker());
        return new Publish(m, true);
      }
      return new Duplicate(m);
    }

    long t0 = System.currentTimeMillis();
    List<CompletionMarker.OutRecord> records;
    boolean completed;
    Path jobDir =
        workRoot
            .resolve(stageName)
            .resolve(
                req.getJobId().replaceAll("[^A-Za-z0-9._-]", "_")
                    + "-"
                    + req.getStep()
                    + "-"
                    + UUID.randomUUID());
    try {
      try {
        records = compute(job, jobDir, t0);
        completed = true;
      } catch (Exception e) {
        if (job.cancelled.get() || e instanceof CancellationException) {
          return new Abandoned();
        }
        log.warn("{}: stage failed: {}", job.coordinates(), Failures.reason(e));
        records = List.of(failure(req, e));
        completed = false;
      }
      if (job.cancelled.get()) {
        return new Abandoned();
      }
      CompletionMarker marker =
          new CompletionMarker(job.topic, job.partition, job.offset, completed, workerId, records);
      blobs.putBytes(markerUri, marker.toJson(), "application/json");
      return new Publish(marker, false);
    } catch (RuntimeException e) {
      return job.cancelled.get() ? new Abandoned() : new RetryLater(e);
    } finally {
      deleteQuietly(jobDir);
    }
  }

  private List<CompletionMarker.OutRecord> compute(Job job, Path jobDir, long t0) throws Exception {
    StageRequested req = job.request;
    if (!stageName.equals(req.getStage())) {
      throw new IllegalArgumentException(
          "request: expected stage '" + stageName + "', found '" + req.getStage() + "'");
    }
    Path input = Files.createDirectories(jobDir.resolve("input"));
    Path output = Files.createDirectories(jobDir.resolve("output"));
    Path scratch = Files.createDirectories(jobDir.resolve("work"));
    ArtifactManifest inputManifest = null;
    if (req.getInput() != null) {
      inputManifest = artifacts.download(req.getInput(), input);
    }
    StageContext ctx =
        StageContext.builder(req)
            .inputDir(input)
            .inputManifest(inputManifest)
            .outputDir(output)
            .workDir(scratch)
            .device(device)
            .blobs(blobs)
            .sources(sources)
            .artifacts(artifacts)
            .cancelled(job.cancelled::get)
            .progress((f, m) -> progress(job, f, m))
            .build();
    StageResult result = stage.run(ctx);
    if (result == null) {
      throw new IllegalStateException("stage returned no result");
    }
    ctx.checkCancelled();
    ArtifactRef out = null;
    if (result.outputDir() != null) {
      out =
          artifacts.upload(
              result.outputDir(),
              result.format(),
              new ArtifactManifest.Provenance(
                  req.getStage(),
                  req.getRecipeYaml(),
                  req.getInput() == null ? null : req.getInput().getSha256(),
                  result.metrics()));
    }
    ctx.checkCancelled();
    long now = System.currentTimeMillis();
    StageCompleted done =
        StageCompleted.newBuilder()
            .setJobId(req.getJobId())
            .setStep(req.getStep())
            .setStage(req.getStage())
            .setOutput(out)
            .setMetrics(result.metrics())
            .setDurationMs(now - t0)
            .setWorker(workerId)
            .setAttempt(req.getAttempt())
            .setCompletedAtMs(now)
            .build();
    List<CompletionMarker.OutRecord> records = new ArrayList<>();
    records.add(serialize(Topics.STAGE_COMPLETED, req.getJobId(), done));
    for (StageResult.Event<?> event : result.events()) {
      records.add(serializeEvent(event, req.getJobId(), out));
    }
    log.info(
        "{}: completed in {} ms, output {}, metrics {}",
        job.coordinates(),
        now - t0,
        out == null ? "none" : out.getUri(),
        result.metrics());
    return records;
  }

  private CompletionMarker.OutRecord failure(StageRequested req, Exception e) {
    StageFailed failed =
        StageFailed.newBuilder()
            .setJobId(req.getJobId())
            .setStep(req.getStep())
            .setStage(req.getStage())
            .setReason(Failures.reason(e))
            .setErrorType(Failures.rootCause(e).getClass().getName())
            .setRetriable(Failures.retriable(e))
            .setWorker(workerId)
            .setAttempt(req.getAttempt())
            .setFailedAtMs(System.currentTimeMillis())
            .build();
    return serialize(Topics.STAGE_FAILED, req.getJobId(), failed);
  }

  private <V> CompletionMarker.OutRecord serializeEvent(
      StageResult.Event<V> event, String jobId, ArtifactRef out) {
    return serialize(event.topic(), jobId, event.value().apply(out));
  }

  @SuppressWarnings("unchecked")
  private <V> CompletionMarker.OutRecord serialize(Topic<String, V> topic, String jobId, V value) {
    Serializer<Object> ser =
        serializers.computeIfAbsent(
            topic.name(), n -> (Serializer<Object>) topic.valueSerde(registry).serializer());
    byte[] key = topic.keySerde().serializer().serialize(topic.name(), jobId);
    return new CompletionMarker.OutRecord(topic.name(), key, ser.serialize(topic.name(), value));
  }

  private Optional<CompletionMarker> readMarker(S3Uri uri) {
    try {
      return Optional.of(CompletionMarker.parse(blobs.getBytes(uri, MAX_MARKER_BYTES)));
    } catch (BlobStore.BlobNotFoundException e) {
      return Optional.empty();
    }
  }

  private static void progress(Job job, double fraction, String message) {
    job.progress = Math.max(0, Math.min(1, fraction));
    job.progressMessage = message == null ? "" : message;
    long now = System.currentTimeMillis();
    synchronized (job) {
      if (now - job.lastProgressLogMs < PROGRESS_LOG_INTERVAL_MS && fraction < 1) {
        return;
      }
      job.lastProgressLogMs = now;
    }
    log.info("{}: {}% {}", job.coordinates(), Math.round(job.progress * 100), job.progressMessage);
  }

  private static void deleteQuietly(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  Files.deleteIfExists(p);
                } catch (IOException e) {
                  log.warn("could not delete {}: {}", p, e.toString());
                }
              });
    } catch (IOException e) {
      log.warn("could not clean {}: {}", dir, e.toString());
    }
  }
}
