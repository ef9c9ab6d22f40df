package dev.compactor.bench;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageRequested;
import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.ArtifactStore;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageService;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Part (a) of {@link PipelineHopBench}: how long an event takes to turn into a running stage.
 *
 * <p>Starts one real {@link StageService} (the production runtime: transactional answers,
 * completion markers in S3, verified artifact download and upload) per stage of a chain, each
 * running a {@link TimedReverseStage}. The benchmark itself plays the orchestrator: it produces the
 * first {@code StageRequested} of a job, consumes {@code StageCompleted} with {@code
 * read_committed} like the orchestrator does, and produces the next step's request pointing at the
 * output artifact. An extra consumer on the request topics notes when each request becomes
 * readable. Jobs run one at a time, so the figures are latencies, not queueing.
 *
 * <p>It does not run the Kafka Streams orchestrator (h/orch): that one commits its exactly-once
 * transactions every {@code commit.interval.ms} (100 ms by default under EOS), which would add up
 * to that much to every hop on top of what is measured here.
 */
final class HopLatencyBench implements AutoCloseable {
  private static final Duration JOB_TIMEOUT = Duration.ofSeconds(120);
  private static final Duration ASSIGN_TIMEOUT = Duration.ofSeconds(90);
  private static final int FIRST_STEP = 1;

  /** The figures of one run; segment names are the table's row labels, in order. */
  record Result(
      List<String> stages,
      int jobs,
      int warmupJobs,
      int artifactBytes,
      int pollTimeoutMs,
      Map<String, LatencyStats> segments,
      Map<String, LatencyStats> s3Overhead) {}

  /** Timestamps of one step on the shared nanoTime clock; 0 while not seen yet. */
  private static final class StepTimes {
    volatile long requested;
    volatile long visible;
    volatile long completedStamp;
    volatile long completedSeen;
  }

  private final LocalStack stack;
  private final Path dir;
  private final BenchOptions options;
  private final List<String> stages;
  private final String runId = UUID.randomUUID().toString().substring(0, 8);
  private final long wallOffsetNs = wallOffsetNs();
  private final SchemaRegistryClient registry;
  private final StageConfig config;
  private final ArtifactStore artifacts;
  private final BlobStore blobs;
  private final TimedReverseStage stage = new TimedReverseStage();
  private final List<StageService> services = new ArrayList<>();
  private final Map<String, StepTimes> times = new ConcurrentHashMap<>();
  private final Map<String, CompletableFuture<Void>> pending = new ConcurrentHashMap<>();
  private KafkaProducer<String, StageRequested> producer;
  private KafkaConsumer<String, Object> results;
  private KafkaConsumer<String, StageRequested> observer;
  private final List<Thread> threads = new ArrayList<>();
  private volatile boolean closing;

  private HopLatencyBench(LocalStack stack, Path dir, BenchOptions options) {
    this.stack = stack;
    this.dir = dir;
    this.options = options;
    this.stages = Topics.STAGES.subList(FIRST_STEP, FIRST_STEP + options.stages());
    this.registry =
        new RestSchemaRegistryClient(stack.schemaRegistryUrl(), stack.schemaRegistryUserInfo());
    this.config = stageConfig(stack, dir, options.pollTimeoutMs());
    this.blobs = BlobStore.create(config);
    this.artifacts = new ArtifactStore(blobs, LocalStack.ARTIFACTS_BUCKET);
  }

  /** Runs part (a) against {@code stack}, with scratch space under {@code dir}. */
  static Result run(LocalStack stack, Path dir, BenchOptions options) throws Exception {
    try (HopLatencyBench bench = new HopLatencyBench(stack, dir, options)) {
      bench.start();
      List<String> jobs = bench.runJobs();
      Map<String, LatencyStats> segments = bench.segments(jobs);
      Map<String, LatencyStats> s3 =
          RuntimeS3Overhead.measure(
              bench.blobs, bench.artifacts, dir.resolve("overhead"), options.jobs(), bench::input);
      return new Result(
          bench.stages,
          options.jobs(),
          options.warmupJobs(),
          options.artifactKib() * 1024,
          options.pollTimeoutMs(),
          segments,
          s3);
    }
  }

  static StageConfig stageConfig(LocalStack stack, Path dir, int pollTimeoutMs) {
    return StageConfig.of(
        Map.ofEntries(
            Map.entry(
                StageConfig.SCHEMA_REGISTRY_USER_INFO.envName(), stack.schemaRegistryUserInfo()),
            Map.entry(
                StageConfig.KAFKA_PROPERTIES_FILE.envName(),
                stack.kafkaClientPropertiesFile().toString()),
            Map.entry(StageConfig.KAFKA_BOOTSTRAP.envName(), stack.bootstrapServers()),
            Map.entry(StageConfig.SCHEMA_REGISTRY_URL.envName(), stack.schemaRegistryUrl()),
            Map.entry(StageConfig.S3_ENDPOINT.envName(), stack.s3Endpoint().toString()),
            Map.entry(StageConfig.S3_ACCESS_KEY.envName(), stack.s3AccessKey()),
            Map.entry(StageConfig.S3_SECRET_KEY.envName(), stack.s3SecretKey()),
            Map.entry(StageConfig.S3_REGION.envName(), stack.s3Region()),
            Map.entry(StageConfig.S3_BUCKET.envName(), LocalStack.ARTIFACTS_BUCKET),
            Map.entry(StageConfig.STAGE.envName(), Topics.STAGES.get(FIRST_STEP)),
            Map.entry(StageConfig.WORK_DIR.envName(), dir.resolve("work").toString()),
            Map.entry(StageConfig.POLL_TIMEOUT_MS.envName(), String.valueOf(pollTimeoutMs))));
  }

  private void start() throws InterruptedException {
    for (String s : stages) {
      services.add(
          StageService.start(
              stage, config.with(StageConfig.STAGE, s).with(StageConfig.WORKER_ID, "bench-" + s)));
    }
    Topic<String, StageRequested> first = Topics.stageRequested(stages.get(0));
    Properties p = stack.kafka().clientProperties();
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
    producer =
        new KafkaProducer<>(
            p, first.keySerde().serializer(), first.valueSerde(registry).serializer());

    List<TopicPartition> requestParts = new ArrayList<>();
    observer =
        new KafkaConsumer<>(
            consumerProps(), new StringDeserializer(), first.valueSerde(registry).deserializer());
    for (String s : stages) {
      requestParts.addAll(partitions(observer, Topics.stageRequested(s).name()));
    }
    assignAtEnd(observer, requestParts);

    Deserializer<StageCompleted> completed =
        Topics.STAGE_COMPLETED.valueSerde(registry).deserializer();
    Deserializer<StageFailed> failed = Topics.STAGE_FAILED.valueSerde(registry).deserializer();
    Deserializer<Object> answers =
        (topic, data) ->
            topic.equals(Topics.STAGE_COMPLETED.name())
                ? completed.deserialize(topic, data)
                : failed.deserialize(topic, data);
    results = new KafkaConsumer<>(consumerProps(), new StringDeserializer(), answers);
    List<TopicPartition> answerParts = new ArrayList<>();
    answerParts.addAll(partitions(results, Topics.STAGE_COMPLETED.name()));
    answerParts.addAll(partitions(results, Topics.STAGE_FAILED.name()));
    assignAtEnd(results, answerParts);

    threads.add(new Thread(this::observe, "hop-bench-observer"));
    threads.add(new Thread(this::orchestrate, "hop-bench-orchestrator"));
    threads.forEach(Thread::start);
    awaitAssignments();
  }

  /** Runs warm-up and measured jobs one after another; returns the measured job ids. */
  private List<String> runJobs() throws Exception {
    List<String> measured = new ArrayList<>();
    for (int j = 0; j < options.warmupJobs() + options.jobs(); j++) {
      String job = "hop-" + runId + "-" + j;
      ArtifactRef in = input(job);
      CompletableFuture<Void> done = new CompletableFuture<>();
      pending.put(job, done);
      request(job, FIRST_STEP, in);
      try {
        done.get(JOB_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      } catch (TimeoutException e) {
        throw new IllegalStateException(
            "job " + job + ": expected all " + stages.size() + " steps within " + JOB_TIMEOUT, e);
      } catch (ExecutionException e) {
        throw new IllegalStateException("job " + job + " failed: " + e.getCause().getMessage(), e);
      }
      if (j >= options.warmupJobs()) {
        measured.add(job);
      }
    }
    return measured;
  }

  /** Uploads a fresh random input artifact (not timed), so no step's output is already stored. */
  ArtifactRef input(String name) throws Exception {
    Path src = Files.createDirectories(dir.resolve("inputs").resolve(name));
    byte[] weights = new byte[options.artifactKib() * 1024];
    new SplittableRandom(name.hashCode()).nextBytes(weights);
    Files.write(src.resolve("model.safetensors"), weights);
    Files.writeString(src.resolve("config.json"), "{\"bench_job\": \"" + name + "\"}");
    return artifacts.upload(
        src, "bench-bytes", new ArtifactManifest.Provenance("ingestion", name, null, Map.of()));
  }

  private void request(String job, int step, ArtifactRef in) {
    String stageName = stages.get(step - FIRST_STEP);
    StageRequested req =
        StageRequested.newBuilder()
            .setJobId(job)
            .setStep(step)
            .setStage(stageName)
            .setParamsJson("{}")
            .setInput(in)
            .setRecipeYaml("bench job " + job)
            .setAttempt(1)
            .setRequestedAtMs(System.currentTimeMillis())
            .build();
    stepTimes(job, step).requested = System.nanoTime();
    producer.send(
        new ProducerRecord<>(Topics.stageRequested(stageName).name(), job, req),
        (meta, error) -> {
          if (error != null) {
            fail(job, new IllegalStateException("could not produce request: " + error, error));
          }
        });
  }

  /** The orchestrator's part: on StageCompleted request the next step, or finish the job. */
  private void orchestrate() {
    try {
      while (!closing) {
        for (ConsumerRecord<String, Object> rec : results.poll(Duration.ofMillis(200))) {
          long now = System.nanoTime();
          if (!pending.containsKey(rec.key())) {
            continue;
          }
          if (rec.value() instanceof StageCompleted c) {
            StepTimes t = stepTimes(c.getJobId(), c.getStep());
            t.completedSeen = now;
            t.completedStamp = c.getCompletedAtMs() * 1_000_000L - wallOffsetNs;
            if (c.getStep() < FIRST_STEP + stages.size() - 1) {
              request(c.getJobId(), c.getStep() + 1, c.getOutput());
            } else {
              pending.get(rec.key()).complete(null);
            }
          } else if (rec.value() instanceof StageFailed f) {
            fail(
                f.getJobId(),
                new IllegalStateException(
                    "step " + f.getStep() + " (" + f.getStage() + "): " + f.getReason()));
          }
        }
      }
    } catch (WakeupException e) {
      if (!closing) {
        failAll(e);
      }
    } catch (RuntimeException e) {
      failAll(e);
    }
  }

  /** Notes when each request becomes readable on its topic. */
  private void observe() {
    try {
      while (!closing) {
        for (ConsumerRecord<String, StageRequested> rec : observer.poll(Duration.ofMillis(200))) {
          long now = System.nanoTime();
          if (pending.containsKey(rec.key())) {
            stepTimes(rec.key(), rec.value().getStep()).visible = now;
          }
        }
      }
    } catch (WakeupException e) {
      if (!closing) {
        failAll(e);
      }
    } catch (RuntimeException e) {
      failAll(e);
    }
  }

  private Map<String, LatencyStats> segments(List<String> jobs) {
    HopSegments seg = new HopSegments();
    int last = FIRST_STEP + stages.size() - 1;
    for (String job : jobs) {
      for (int step = FIRST_STEP; step <= last; step++) {
        StepTimes t = stepTimes(job, step);
        TimedReverseStage.Span span = stage.span(job, step);
        if (span == null || t.visible == 0 || t.completedSeen == 0) {
          throw new IllegalStateException(
              "job " + job + " step " + step + ": a timestamp is missing");
        }
        if (step == FIRST_STEP) {
          seg.add(HopSegments.FIRST_RUNNING, t.requested, span.startNs());
        }
        seg.add(HopSegments.PRODUCED_VISIBLE, t.requested, t.visible);
        seg.add(HopSegments.VISIBLE_RUNNING, t.visible, span.startNs());
        seg.add(HopSegments.RETURNED_STAMPED, span.endNs(), t.completedStamp);
        seg.add(HopSegments.STAMPED_CONSUMED, t.completedStamp, t.completedSeen);
        if (step < last) {
          StepTimes next = stepTimes(job, step + 1);
          long nextStart = stage.span(job, step + 1).startNs();
          seg.add(HopSegments.HOP, t.completedStamp, nextStart);
          seg.add(HopSegments.CONSUMED_REQUESTED, t.completedSeen, next.requested);
          seg.add(HopSegments.FULL_HOP, span.endNs(), nextStart);
        }
      }
      seg.add(
          HopSegments.JOB,
          stepTimes(job, FIRST_STEP).requested,
          stepTimes(job, last).completedSeen);
    }
    return seg.stats();
  }

  private StepTimes stepTimes(String job, int step) {
    return times.computeIfAbsent(job + "#" + step, k -> new StepTimes());
  }

  private void fail(String job, Exception e) {
    CompletableFuture<Void> f = pending.get(job);
    if (f != null) {
      f.completeExceptionally(e);
    }
  }

  private void failAll(Exception e) {
    pending.values().forEach(f -> f.completeExceptionally(e));
  }

  private void awaitAssignments() throws InterruptedException {
    long deadline = System.nanoTime() + ASSIGN_TIMEOUT.toNanos();
    for (int i = 0; i < services.size(); i++) {
      int expected = Topics.stageRequested(stages.get(i)).partitions();
      while (services.get(i).health().assigned().size() < expected) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              "worker "
                  + stages.get(i)
                  + ": expected "
                  + expected
                  + " assigned partitions within "
                  + ASSIGN_TIMEOUT
                  + ", found "
                  + services.get(i).health().assigned());
        }
        Thread.sleep(20);
      }
    }
  }

  private Properties consumerProps() {
    Properties p = stack.kafka().clientProperties();
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    return p;
  }

  private static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
    List<TopicPartition> parts = new ArrayList<>();
    c.partitionsFor(topic).forEach(info -> parts.add(new TopicPartition(topic, info.partition())));
    return parts;
  }

  /** Assigns {@code parts} positioned at their current end, resolved before returning. */
  private static void assignAtEnd(KafkaConsumer<?, ?> c, List<TopicPartition> parts) {
    c.assign(parts);
    c.seekToEnd(parts);
    parts.forEach(c::position);
  }

  /** {@code wall-clock ns - nanoTime}, to place {@code completedAtMs} on the nanoTime axis. */
  private static long wallOffsetNs() {
    Instant now = Instant.now();
    long nano = System.nanoTime();
    return now.getEpochSecond() * 1_000_000_000L + now.getNano() - nano;
  }

  @Override
  public void close() {
    closing = true;
    if (results != null) {
      results.wakeup();
    }
    if (observer != null) {
      observer.wakeup();
    }
    for (Thread t : threads) {
      try {
        t.join(TimeUnit.SECONDS.toMillis(30));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    if (results != null) {
      results.close();
    }
    if (observer != null) {
      observer.close();
    }
    if (producer != null) {
      producer.close();
    }
    services.forEach(StageService::close);
    blobs.close();
    registry.close();
  }
}
