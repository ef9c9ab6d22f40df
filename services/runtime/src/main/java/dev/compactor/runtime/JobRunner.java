package dev.compactor.runtime;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageProgress;
import dev.compactor.events.StageRequested;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Predicate;
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

  /** The job was cancelled by its user: commit the request without publishing anything. */
  record Cancelled() implements Outcome {}

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
    private long lastProgressSentMs;

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
  private final ScratchDirs scratchDirs;
  private final SourcePolicy sources;
  private final String device;
  private final BlobStore blobs;
  private final ArtifactStore artifacts;
  private final SchemaRegistryClient registry;
  private final int maxDeliveries;
  private final long memoryBudgetBytes;
  private final Map<String, Serializer<Object>> serializers = new ConcurrentHashMap<>();
  private final Predicate<String> cancelledJobs;
  private final Consumer<CompletionMarker.OutRecord> progressSink;
  private final long progressIntervalMs;

  /**
   * @param cancelledJobs whether the orchestrator cancelled a job (its running step stops, its
   *     requests are consumed without an answer)
   * @param progressSink where StageProgress records go (best effort, outside transactions)
   */
  JobRunner(
      Stage stage,
      StageConfig config,
      BlobStore blobs,
      SchemaRegistryClient registry,
      Predicate<String> cancelledJobs,
      Consumer<CompletionMarker.OutRecord> progressSink) {
    this.cancelledJobs = cancelledJobs;
    this.progressSink = progressSink;
    this.progressIntervalMs = config.get(StageConfig.PROGRESS_INTERVAL_MS);
    this.stage = stage;
    this.stageName = config.get(StageConfig.STAGE);
    this.workerId = StageWorker.workerId(config);
    this.bucket = config.get(StageConfig.S3_BUCKET);
    this.scratchDirs = new ScratchDirs(Path.of(config.get(StageConfig.WORK_DIR)));
    scratchDirs.deleteStale();
    this.sources = SourcePolicy.of(config);
    this.device = config.get(StageConfig.DEVICE_NAME);
    this.maxDeliveries = config.get(StageConfig.MAX_DELIVERIES);
    this.memoryBudgetBytes = config.memoryBudgetBytes();
    this.blobs = blobs;
    this.artifacts = new ArtifactStore(blobs, bucket);
    this.registry = registry;
  }

  Outcome run(Job job) {
    // Every log line about this job, here and in the stage's code on this thread, carries its
    // coordinates (ServiceLogLayout prints them; the keys are ServiceLogLayout.JOB_KEYS).
    MDC.put("jobId", job.request.getJobId());
    MDC.put("step", Integer.toString(job.request.getStep()));
    MDC.put("attempt", Integer.toString(job.request.getAttempt()));
    MDC.put("stage", stageName);
    MDC.put("record", job.topic + "-" + job.partition + "@" + job.offset);
    try {
      return runInContext(job);
    } finally {
      MDC.clear();
    }
  }

  private Outcome runInContext(Job job) {
    StageRequested req = job.request;
    if (cancelledJobs.test(req.getJobId())) {
      log.info("{}: the job was cancelled; consumed without running", job.coordinates());
      return new Cancelled();
    }
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

    int delivery;
    try {
      delivery = countDelivery(markerUri);
    } catch (RuntimeException e) {
      return new RetryLater(e);
    }
    long t0 = System.currentTimeMillis();
    List<CompletionMarker.OutRecord> records;
    boolean completed;
    ScratchDirs.Lease scratch;
    try {
      scratch =
          scratchDirs.create(
              stageName, req.getJobId().replaceAll("[^A-Za-z0-9._-]", "_") + "-" + req.getStep());
    } catch (IOException e) {
      return new RetryLater(e);
    }
    Path jobDir = scratch.dir();
    try {
      if (delivery > maxDeliveries) {
        String why =
            "started "
                + (delivery - 1)
                + " times without an answer (worker crashes, lost partitions or storage faults);"
                + " giving up on this attempt after COMPACTOR_MAX_DELIVERIES="
                + maxDeliveries;
        log.warn("{}: {}", job.coordinates(), why);
        records = List.of(failure(req, new DeliveriesExhausted(why)));
        completed = false;
      } else {
        try {
          records = compute(job, jobDir, t0);
          completed = true;
        } catch (Throwable e) {
          // Errors too (out of memory, a missing native library): every request gets an answer,
          // or it would be redelivered forever with its partition blocked behind it.
          if (cancelledJobs.test(req.getJobId())) {
            log.info("{}: stopped, the job was cancelled", job.coordinates());
            return new Cancelled();
          }
          if (job.cancelled.get() || e instanceof CancellationException) {
            return new Abandoned();
          }
          log.warn("{}: stage failed: {}", job.coordinates(), Failures.reason(e), e);
          records = List.of(failure(req, e));
          completed = false;
        }
      }
      if (job.cancelled.get()) {
        return new Abandoned();
      }
      if (completed && cancelledJobs.test(req.getJobId())) {
        log.info("{}: finished after its job was cancelled; not published", job.coordinates());
        return new Cancelled();
      }
      CompletionMarker marker =
          new CompletionMarker(job.topic, job.partition, job.offset, completed, workerId, records);
      blobs.putBytes(markerUri, marker.toJson(), "application/json");
      return new Publish(marker, false);
    } catch (RuntimeException e) {
      return job.cancelled.get() ? new Abandoned() : new RetryLater(e);
    } finally {
      scratch.close();
    }
  }

  private List<CompletionMarker.OutRecord> compute(Job job, Path jobDir, long t0) throws Exception {
    StageRequested req = job.request;
    if (!stageName.equals(req.getStage())) {
      throw new IllegalArgumentException(
          "request: expected stage '" + stageName + "', found '" + req.getStage() + "'");
    }
    progress(job, 0, "started");
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
            .memoryBudgetBytes(memoryBudgetBytes)
            .blobs(blobs)
            .sources(sources)
            .artifacts(artifacts)
            .cancelled(() -> job.cancelled.get() || cancelledJobs.test(req.getJobId()))
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

  private CompletionMarker.OutRecord failure(StageRequested req, Throwable e) {
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

  /** Thrown in no stage: the reason of the StageFailed that ends a request started too often. */
  static final class DeliveriesExhausted extends RuntimeException {
    DeliveriesExhausted(String message) {
      super(message);
    }
  }

  /**
   * Counts this start of the request in S3 next to its marker and returns the count (1 for the
   * first): in-process counters would forget the starts that crashed their worker. Only one worker
   * owns a partition at a time, so read-then-write is enough.
   */
  private int countDelivery(S3Uri markerUri) {
    S3Uri counter =
        new S3Uri(
            markerUri.bucket(),
            markerUri.key().substring(0, markerUri.key().length() - ".json".length())
                + ".deliveries");
    int previous = 0;
    try {
      previous =
          Integer.parseInt(
              new String(blobs.getBytes(counter, 32), java.nio.charset.StandardCharsets.US_ASCII)
                  .strip());
    } catch (BlobStore.BlobNotFoundException e) {
      previous = 0;
    } catch (NumberFormatException e) {
      log.warn("{}: unreadable delivery counter, counting from 1", counter);
    }
    int now = previous + 1;
    blobs.putBytes(
        counter,
        Integer.toString(now).getBytes(java.nio.charset.StandardCharsets.US_ASCII),
        "text/plain");
    return now;
  }

  private Optional<CompletionMarker> readMarker(S3Uri uri) {
    try {
      return Optional.of(CompletionMarker.parse(blobs.getBytes(uri, MAX_MARKER_BYTES)));
    } catch (BlobStore.BlobNotFoundException e) {
      return Optional.empty();
    }
  }

  private void progress(Job job, double fraction, String message) {
    job.progress = Math.max(0, Math.min(1, fraction));
    job.progressMessage = message == null ? "" : message;
    long now = System.currentTimeMillis();
    boolean logIt;
    boolean publish;
    synchronized (job) {
      logIt = now - job.lastProgressLogMs >= PROGRESS_LOG_INTERVAL_MS || fraction >= 1;
      publish = now - job.lastProgressSentMs >= progressIntervalMs || fraction >= 1;
      if (logIt) {
        job.lastProgressLogMs = now;
      }
      if (publish) {
        job.lastProgressSentMs = now;
      }
    }
    if (logIt) {
      log.info(
          "{}: {}% {}", job.coordinates(), Math.round(job.progress * 100), job.progressMessage);
    }
    if (publish) {
      StageRequested req = job.request;
      try {
        progressSink.accept(
            serialize(
                Topics.STAGE_PROGRESS,
                req.getJobId(),
                StageProgress.newBuilder()
                    .setJobId(req.getJobId())
                    .setStep(req.getStep())
                    .setStage(req.getStage())
                    .setAttempt(req.getAttempt())
                    .setFraction(job.progress)
                    .setMessage(job.progressMessage)
                    .setWorker(workerId)
                    .setElapsedMs(now - job.startedAtMs)
                    .setReportedAtMs(now)
                    .build()));
      } catch (RuntimeException e) {
        // progress is informative: a registry or broker hiccup must not fail the step
        log.debug("{}: progress not sent: {}", job.coordinates(), e.toString());
      }
    }
  }
}
