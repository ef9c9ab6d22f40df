package dev.compactor.runtime;

import dev.compactor.events.StageRequested;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.serde.AvroDeserializer;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one stage: consumes {@code StageRequested} from the stage's request topic in the stage's
 * consumer group, runs the {@link Stage}, stores its output and publishes {@code StageCompleted}
 * (or {@code StageFailed}) — each request answered exactly once, however often it is delivered.
 *
 * <h2>Long jobs</h2>
 *
 * The stage runs on a job thread while the poll thread keeps calling {@code poll()} with every
 * assigned partition <em>paused</em>: the consumer stays in its group and keeps its partitions for
 * as long as the job takes, whatever {@code max.poll.interval.ms} is. {@code max.poll.records=1}
 * and the cooperative-sticky assignor mean one job per worker and a rebalance (another worker
 * joining) does not disturb a running job. If the running job's partition is revoked or lost
 * anyway, the job is cancelled ({@link StageContext#isCancelled()}, thread interrupt) and nothing
 * of it is published or committed: the new owner redoes it. Closing a worker mid-job does the same.
 *
 * <h2>Effectively-once answers</h2>
 *
 * <ol>
 *   <li>The answer's records (StageCompleted or StageFailed plus the stage's extra events) are
 *       published in <b>one Kafka transaction together with the request's offset</b> ({@code
 *       sendOffsetsToTransaction}). Either the answer is visible to {@code read_committed}
 *       consumers and the request is consumed, or neither; a redelivered record was therefore never
 *       answered.
 *   <li>Before publishing, the worker writes a <b>completion marker</b> to S3 at {@code
 *       markers/<stage>/<jobId>/step-<step>/attempt-<attempt>.json}: the exact record bytes to
 *       publish and the coordinates (topic, partition, offset) of the request they answer. The
 *       output artifact itself is content-addressed ({@code artifacts/<sha256 of manifest>/}), so
 *       storing the same output twice is a no-op.
 *   <li>Every request first looks up its marker:
 *       <ul>
 *         <li>none: compute, store, write the marker, publish;
 *         <li>a marker for the <em>same</em> record (a crash or fault hit between marker and
 *             commit): by (1) nothing was published, so publish the recorded bytes — <b>no
 *             recompute</b>;
 *         <li>a marker for a <em>different</em> record (the same request produced twice): requests
 *             are keyed by jobId, so both copies sit in one partition and are processed in order;
 *             the earlier copy's transaction therefore committed before this one was read. Commit
 *             the offset and publish nothing — <b>no recompute, no re-publish</b>.
 *       </ul>
 * </ol>
 *
 * A retry by the orchestrator carries a higher {@code attempt} and so gets a fresh marker. Limits:
 * this relies on requests being keyed by jobId (as {@link Topics} prescribes) and on committed
 * offsets not being reset or expired while duplicates are still in the topic.
 *
 * <h2>Faults</h2>
 *
 * S3 calls retry with exponential backoff on transient faults ({@link BlobStore}). When storage,
 * the schema registry or a Kafka transaction still fail, the record is sought back and redelivered
 * to this worker after a growing backoff (its marker, if written, prevents recomputation). A record
 * whose value cannot be decoded goes, byte for byte, to {@link Topics#DEADLETTER} with headers from
 * {@link DeadLetters}, in a transaction with its offset; the partition keeps flowing. An exception
 * from the stage becomes a {@code StageFailed} whose reason is the root cause's message.
 */
public final class StageWorker implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StageWorker.class);
  private static final int MAX_RECORD_BYTES = 16 * 1024 * 1024;
  private static final AtomicInteger THREADS = new AtomicInteger();

  private final StageConfig config;
  private final String stageName;
  private final String workerId;
  private final Topic<String, StageRequested> requestTopic;
  private final SchemaRegistryClient registry;
  private final JobRunner runner;
  private final Retrier backoff;
  private final Duration pollTimeout;
  private final ExecutorService jobThreads;
  private final Thread pollThread;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private volatile boolean stopping;
  private volatile String state = "STARTING";
  private volatile Set<TopicPartition> assigned = Set.of();
  private volatile Running current;
  private final AtomicLong completed = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong duplicates = new AtomicLong();
  private final AtomicLong deadLettered = new AtomicLong();
  private final AtomicLong abandoned = new AtomicLong();
  private final AtomicLong retries = new AtomicLong();

  // Owned by the poll thread.
  private KafkaConsumer<byte[], Decoded<StageRequested>> consumer;
  private KafkaProducer<byte[], byte[]> producer;
  private final Map<TopicPartition, Long> backoffUntil = new HashMap<>();
  private int faultStreak;

  private record Running(JobRunner.Job job, TopicPartition tp, Future<JobRunner.Outcome> future) {}

  /**
   * A worker for the stage named by {@link StageConfig#STAGE}; call {@link #start()} to run it.
   *
   * @param registry schema registry for the Avro serdes (owned by the caller)
   */
  public StageWorker(
      Stage stage, StageConfig config, BlobStore blobs, SchemaRegistryClient registry) {
    this.config = config;
    this.stageName = config.get(StageConfig.STAGE);
    this.requestTopic = Topics.stageRequested(stageName);
    this.workerId = workerId(config);
    this.registry = registry;
    this.runner = new JobRunner(stage, config, blobs, registry);
    this.backoff = Retrier.from(config);
    this.pollTimeout = Duration.ofMillis(config.get(StageConfig.POLL_TIMEOUT_MS));
    this.jobThreads =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "stage-job-" + stageName + "-" + THREADS.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    this.pollThread = new Thread(this::pollLoop, "stage-worker-" + stageName + "-" + workerId);
  }

  /** The worker identity: {@link StageConfig#WORKER_ID}, or pid@host when it is "auto". */
  static String workerId(StageConfig config) {
    String id = config.get(StageConfig.WORKER_ID);
    if (!"auto".equals(id)) {
      return id;
    }
    String host;
    try {
      host = InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      host = "unknown-host";
    }
    return ManagementFactory.getRuntimeMXBean().getPid() + "@" + host;
  }

  /** Starts consuming on a background thread. */
  public synchronized void start() {
    if (pollThread.getState() != Thread.State.NEW) {
      throw new IllegalStateException("worker already started");
    }
    pollThread.start();
  }

  /**
   * Stops consuming. A running job is abandoned: nothing of it is published or committed, and after
   * this worker leaves the group another worker redoes it.
   */
  @Override
  public void close() {
    stopping = true;
    KafkaConsumer<?, ?> c = consumer;
    if (c != null) {
      c.wakeup();
    }
    if (pollThread.getState() != Thread.State.NEW && Thread.currentThread() != pollThread) {
      try {
        stopped.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    jobThreads.shutdownNow();
  }

  /** Waits until the worker has stopped (after {@link #close()} or a fatal error). */
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    return stopped.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** A snapshot of state, counters and the current job. */
  public WorkerHealth health() {
    Running r = current;
    WorkerHealth.CurrentJob job = null;
    if (r != null) {
      JobRunner.Job j = r.job();
      job =
          new WorkerHealth.CurrentJob(
              j.request.getJobId(),
              j.request.getStep(),
              j.request.getAttempt(),
              j.topic + "-" + j.partition + "@" + j.offset,
              System.currentTimeMillis() - j.startedAtMs,
              j.progress,
              j.progressMessage);
    }
    List<String> parts = new ArrayList<>();
    assigned.forEach(tp -> parts.add(tp.toString()));
    parts.sort(null);
    return new WorkerHealth(
        stageName,
        workerId,
        state,
        parts,
        completed.get(),
        failed.get(),
        duplicates.get(),
        deadLettered.get(),
        abandoned.get(),
        retries.get(),
        job);
  }

  private void pollLoop() {
    try {
      consumer = newConsumer();
      producer = newProducer();
      consumer.subscribe(List.of(requestTopic.name()), new Rebalance());
      state = "RUNNING";
      log.info("Worker {} consuming {} as group {}", workerId, requestTopic.name(), groupId());
      while (!stopping) {
        for (ConsumerRecord<byte[], Decoded<StageRequested>> rec : consumer.poll(pollTimeout)) {
          handle(rec);
        }
        if (current != null) {
          consumer.pause(consumer.assignment());
          if (current.future().isDone()) {
            finish();
          }
        }
        resumeExpiredBackoffs();
      }
      state = "STOPPED";
    } catch (WakeupException e) {
      state = stopping ? "STOPPED" : "FAILED";
    } catch (Throwable t) {
      state = "FAILED";
      log.error("Worker {} stopped on an unexpected error", workerId, t);
    } finally {
      if (current != null) {
        abandon("worker stopping");
      }
      closeClients();
      stopped.countDown();
    }
  }

  private void handle(ConsumerRecord<byte[], Decoded<StageRequested>> rec) {
    TopicPartition tp = new TopicPartition(rec.topic(), rec.partition());
    String where = rec.topic() + "-" + rec.partition() + "@" + rec.offset();
    Decoded<StageRequested> value = rec.value();
    if (!value.ok()) {
      if (AvroDeserializer.isRegistryUnavailable(value.error())) {
        log.warn(
            "{}: schema registry unavailable, will retry: {}", where, value.error().getMessage());
        retryLater(tp, rec.offset());
        return;
      }
      deadLetter(rec, tp);
      return;
    }
    JobRunner.Job job =
        new JobRunner.Job(value.value(), rec.topic(), rec.partition(), rec.offset());
    log.info("{}: starting", job.coordinates());
    consumer.pause(consumer.assignment());
    current = new Running(job, tp, jobThreads.submit(() -> runner.run(job)));
  }

  private void finish() {
    Running r = current;
    current = null;
    JobRunner.Outcome outcome;
    try {
      outcome = r.future().get();
    } catch (ExecutionException e) {
      outcome = new JobRunner.RetryLater(new IllegalStateException(e.getCause()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    long offset = r.job().offset;
    String who = r.job().coordinates();
    if (outcome instanceof JobRunner.Publish p) {
      if (commit(r.tp(), offset, records(p.marker()))) {
        (p.marker().completed() ? completed : failed).incrementAndGet();
        log.info(
            "{}: published {}{}",
            who,
            p.marker().completed() ? "StageCompleted" : "StageFailed",
            p.replayed() ? " (recorded answer, not recomputed)" : "");
        faultStreak = 0;
      } else {
        retryLater(r.tp(), offset);
      }
    } else if (outcome instanceof JobRunner.Duplicate d) {
      if (commit(r.tp(), offset, List.of())) {
        duplicates.incrementAndGet();
        log.info(
            "{}: duplicate of the request at {}-{}@{}, already answered; not recomputed, not re-published",
            who,
            d.existing().topic(),
            d.existing().partition(),
            d.existing().offset());
      } else {
        retryLater(r.tp(), offset);
      }
    } else if (outcome instanceof JobRunner.RetryLater rl) {
      log.warn("{}: {}; will redeliver", who, Failures.reason(rl.cause()));
      retryLater(r.tp(), offset);
    } else {
      abandoned.incrementAndGet();
    }
    resumeFree();
  }

  private void deadLetter(ConsumerRecord<byte[], Decoded<StageRequested>> rec, TopicPartition tp) {
    RuntimeException error = rec.value().error();
    RecordHeaders headers = new RecordHeaders(rec.headers().toArray());
    headers.add(DeadLetters.ORIGINAL_TOPIC, utf8(rec.topic()));
    headers.add(DeadLetters.ORIGINAL_PARTITION, utf8(String.valueOf(rec.partition())));
    headers.add(DeadLetters.ORIGINAL_OFFSET, utf8(String.valueOf(rec.offset())));
    headers.add(DeadLetters.ERROR, utf8(Failures.reason(error)));
    headers.add(DeadLetters.ERROR_TYPE, utf8(Failures.rootCause(error).getClass().getName()));
    headers.add(DeadLetters.WORKER, utf8(stageName + "/" + workerId));
    ProducerRecord<byte[], byte[]> out =
        new ProducerRecord<>(Topics.DEADLETTER.name(), null, rec.key(), rec.value().raw(), headers);
    if (commit(tp, rec.offset(), List.of(out))) {
      deadLettered.incrementAndGet();
      log.warn(
          "{}-{}@{}: undecodable request sent to {}: {}",
          rec.topic(),
          rec.partition(),
          rec.offset(),
          Topics.DEADLETTER.name(),
          Failures.reason(error));
    } else {
      retryLater(tp, rec.offset());
    }
  }

  /** Publishes {@code records} and consumes the record at {@code offset} in one transaction. */
  private boolean commit(
      TopicPartition tp, long offset, List<ProducerRecord<byte[], byte[]>> records) {
    try {
      producer.beginTransaction();
      for (ProducerRecord<byte[], byte[]> r : records) {
        producer.send(r);
      }
      producer.sendOffsetsToTransaction(
          Map.of(tp, new OffsetAndMetadata(offset + 1)), consumer.groupMetadata());
      producer.commitTransaction();
      return true;
    } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException e) {
      log.warn("{}@{}: producer unusable ({}); recreating it", tp, offset, e.toString());
      replaceProducer();
      return false;
    } catch (KafkaException e) {
      log.warn("{}@{}: transaction failed ({}); aborting", tp, offset, e.toString());
      try {
        producer.abortTransaction();
      } catch (KafkaException abortFailed) {
        replaceProducer();
      }
      return false;
    }
  }

  private static List<ProducerRecord<byte[], byte[]>> records(CompletionMarker marker) {
    List<ProducerRecord<byte[], byte[]>> out = new ArrayList<>();
    for (CompletionMarker.OutRecord r : marker.records()) {
      out.add(new ProducerRecord<>(r.topic(), r.key(), r.value()));
    }
    return out;
  }

  /** Rewinds to {@code offset} and leaves the partition paused for a growing backoff. */
  private void retryLater(TopicPartition tp, long offset) {
    retries.incrementAndGet();
    faultStreak++;
    long wait = backoff.backoffMs(Math.min(faultStreak, 20));
    if (consumer.assignment().contains(tp)) {
      consumer.seek(tp, offset);
      consumer.pause(List.of(tp));
      backoffUntil.put(tp, System.currentTimeMillis() + wait);
    }
  }

  private void resumeExpiredBackoffs() {
    if (current != null || backoffUntil.isEmpty()) {
      return;
    }
    long now = System.currentTimeMillis();
    backoffUntil.entrySet().removeIf(e -> e.getValue() <= now);
    resumeFree();
  }

  private void resumeFree() {
    if (current != null) {
      return;
    }
    Set<TopicPartition> free = new HashSet<>(consumer.assignment());
    free.removeAll(backoffUntil.keySet());
    consumer.resume(free);
  }

  private void abandon(String why) {
    Running r = current;
    current = null;
    r.job().cancelled.set(true);
    r.future().cancel(true);
    abandoned.incrementAndGet();
    log.warn("{}: abandoned ({}); another worker will redo it", r.job().coordinates(), why);
  }

  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      backoffUntil.keySet().removeAll(partitions);
      Running r = current;
      if (r != null && partitions.contains(r.tp())) {
        abandon("partition " + r.tp() + " revoked");
      }
      Set<TopicPartition> now = new HashSet<>(assigned);
      now.removeAll(partitions);
      assigned = Set.copyOf(now);
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> partitions) {
      onPartitionsRevoked(partitions);
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      if (current != null) {
        consumer.pause(partitions);
      }
      Set<TopicPartition> now = new HashSet<>(assigned);
      now.addAll(partitions);
      assigned = Set.copyOf(now);
      if (!partitions.isEmpty()) {
        log.info("Worker {} assigned {}", workerId, partitions);
      }
    }
  }

  private String groupId() {
    return Topics.stageConsumerGroup(stageName);
  }

  private KafkaConsumer<byte[], Decoded<StageRequested>> newConsumer() {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId());
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, "compactor-" + stageName + "-" + workerId + "-consumer");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "1");
    p.put(
        ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG,
        String.valueOf(config.get(StageConfig.MAX_POLL_INTERVAL_MS)));
    int session = config.get(StageConfig.SESSION_TIMEOUT_MS);
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, String.valueOf(session));
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, String.valueOf(Math.min(3000, session / 3)));
    p.put(
        ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
        CooperativeStickyAssignor.class.getName());
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(MAX_RECORD_BYTES));
    p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(MAX_RECORD_BYTES));
    return new KafkaConsumer<>(
        p,
        new ByteArrayDeserializer(),
        Decoded.capturing(requestTopic.valueSerde(registry).deserializer()));
  }

  private KafkaProducer<byte[], byte[]> newProducer() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(ProducerConfig.CLIENT_ID_CONFIG, "compactor-" + stageName + "-" + workerId + "-producer");
    // Fencing of zombies comes from the consumer group generation (sendOffsetsToTransaction with
    // group metadata), so the transactional id only has to be unique per producer instance.
    p.put(
        ProducerConfig.TRANSACTIONAL_ID_CONFIG,
        "compactor-" + stageName + "-" + workerId + "-" + UUID.randomUUID());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(MAX_RECORD_BYTES));
    KafkaProducer<byte[], byte[]> created =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    created.initTransactions();
    return created;
  }

  private void replaceProducer() {
    try {
      producer.close(Duration.ofSeconds(5));
    } catch (KafkaException e) {
      log.warn("closing a broken producer failed: {}", e.toString());
    }
    producer = newProducer();
  }

  private void closeClients() {
    try {
      if (consumer != null) {
        consumer.close(Duration.ofSeconds(10));
      }
    } catch (RuntimeException e) {
      log.warn("closing consumer: {}", e.toString());
    }
    try {
      if (producer != null) {
        producer.close(Duration.ofSeconds(10));
      }
    } catch (RuntimeException e) {
      log.warn("closing producer: {}", e.toString());
    }
    jobThreads.shutdownNow();
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
