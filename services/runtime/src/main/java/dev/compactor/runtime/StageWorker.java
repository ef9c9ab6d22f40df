package dev.compactor.runtime;

import dev.compactor.events.StageRequested;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.serde.AvroDeserializer;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.WakeupException;
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
 * and a cooperative-sticky assignor mean one job per worker, and a rebalance revokes only the
 * partitions that move; {@link BusyPartitionAssignor} tells the group which partition each worker
 * is busy with and keeps it there, so a worker joining never takes a running job. If the running
 * job's partition is lost anyway (the worker missed its session timeout) the job is cancelled
 * ({@link StageContext#isCancelled()}, thread interrupt) and nothing of it is published or
 * committed: the new owner redoes it. Closing a worker mid-job does the same.
 *
 * <p>A job that ends calls {@code consumer.wakeup()} (the consumer's one thread-safe method), so
 * the poll thread answers at once instead of at the end of its {@code poll(pollTimeout)}; the
 * consumer itself is only ever used by the poll thread. Only the current job may wake the consumer,
 * and only while it is current (checked under {@code wakeLock}), so a pending wakeup can only hit
 * the next {@code poll()} — never a {@code committed()} lookup in the middle of handling a record.
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
 * to this worker after a growing backoff (its marker, if written, prevents recomputation); before
 * re-reading it, the group's committed offset is checked, because a commit reported as failed (a
 * timeout) may have succeeded on the broker. A record whose value cannot be decoded goes, byte for
 * byte, to {@link Topics#DEADLETTER} with headers from {@link DeadLetters}, in a transaction with
 * its offset; the partition keeps flowing. An exception from the stage becomes a {@code
 * StageFailed} whose reason is the root cause's message.
 */
public final class StageWorker implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StageWorker.class);
  private static final AtomicInteger THREADS = new AtomicInteger();

  private final StageConfig config;
  private final String stageName;
  private final String workerId;
  private final Topic<String, StageRequested> requestTopic;
  private final SchemaRegistryClient registry;
  private final JobRunner runner;
  private final CancelledJobs cancelledJobs;
  private final KafkaProducer<byte[], byte[]> progressProducer;
  private final Retrier backoff;
  private final WorkerClients clients;
  private final Duration pollTimeout;
  private final ExecutorService jobThreads;
  private final Thread pollThread;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private volatile boolean stopping;
  private volatile String state = "STARTING";
  private volatile Set<TopicPartition> assigned = Set.of();
  private volatile Running current;

  /** Guards {@link #current} against a job waking the consumer after it stopped being current. */
  private final Object wakeLock = new Object();

  private final AtomicLong completed = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong duplicates = new AtomicLong();
  private final AtomicLong deadLettered = new AtomicLong();
  private final AtomicLong abandoned = new AtomicLong();
  private final AtomicLong cancelled = new AtomicLong();
  private final AtomicLong retries = new AtomicLong();

  // Owned by the poll thread.
  private KafkaConsumer<byte[], Decoded<StageRequested>> consumer;
  private KafkaProducer<byte[], byte[]> producer;
  private final Map<TopicPartition, Long> backoffUntil = new HashMap<>();
  private final Map<TopicPartition, Long> rewound = new HashMap<>();
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
    this.backoff = Retrier.from(config);
    this.clients = new WorkerClients(config, stageName, workerId);
    this.cancelledJobs = new CancelledJobs(clients, registry);
    this.progressProducer = clients.newInformativeProducer();
    this.runner =
        new JobRunner(stage, config, blobs, registry, cancelledJobs::contains, this::sendProgress);
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
    if (stopped.getCount() == 0) {
      jobThreads.shutdownNow();
      return;
    }
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
        cancelled.get(),
        retries.get(),
        job);
  }

  private void pollLoop() {
    try {
      consumer =
          clients.newConsumer(
              groupId(),
              requestTopic.valueSerde(registry).deserializer(),
              () -> {
                Running r = current;
                return r == null ? Set.of() : Set.of(r.tp());
              });
      producer = clients.newProducer();
      cancelledJobs.start();
      if (!cancelledJobs.awaitCaughtUp(Duration.ofSeconds(60))) {
        log.warn(
            "Worker {}: job statuses not read within 60 s; cancellations may be late", workerId);
      }
      consumer.subscribe(List.of(requestTopic.name()), new Rebalance());
      state = "RUNNING";
      log.info("Worker {} consuming {} as group {}", workerId, requestTopic.name(), groupId());
      while (!stopping) {
        for (ConsumerRecord<byte[], Decoded<StageRequested>> rec : poll()) {
          handle(rec);
        }
        if (current != null) {
          consumer.pause(consumer.assignment());
          if (current.future().isDone()) {
            finish();
          }
        }
        if (current == null) {
          long now = System.currentTimeMillis();
          backoffUntil.entrySet().removeIf(e -> e.getValue() <= now);
          resumeFree();
        }
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

  /** Polls; a wakeup from a finished job returns nothing, one from {@link #close()} propagates. */
  private ConsumerRecords<byte[], Decoded<StageRequested>> poll() {
    try {
      return consumer.poll(pollTimeout);
    } catch (WakeupException e) {
      if (stopping) {
        throw e;
      }
      return ConsumerRecords.empty();
    }
  }

  private void handle(ConsumerRecord<byte[], Decoded<StageRequested>> rec) {
    TopicPartition tp = new TopicPartition(rec.topic(), rec.partition());
    String where = rec.topic() + "-" + rec.partition() + "@" + rec.offset();
    if (rec.offset() == rewound.getOrDefault(tp, -1L)) {
      rewound.remove(tp);
      // A commit that timed out on this side may still have succeeded on the broker; the group's
      // committed offset (read stably, KIP-447) says whether this record was in fact consumed.
      OffsetAndMetadata committed = consumer.committed(Set.of(tp)).get(tp);
      if (committed != null && committed.offset() > rec.offset()) {
        log.info("{}: already consumed by a commit that reported failure; skipping", where);
        consumer.seek(tp, committed.offset());
        return;
      }
    }
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
    JobTask task = new JobTask(job);
    setCurrent(new Running(job, tp, task));
    jobThreads.execute(task);
  }

  /** A job that wakes the poll thread once its outcome is set (so {@code isDone()} holds then). */
  private final class JobTask extends FutureTask<JobRunner.Outcome> {
    JobTask(JobRunner.Job job) {
      super(() -> runner.run(job));
    }

    @Override
    protected void done() {
      synchronized (wakeLock) {
        Running r = current;
        if (r != null && r.future() == this && consumer != null) {
          consumer.wakeup();
        }
      }
    }
  }

  private void setCurrent(Running r) {
    synchronized (wakeLock) {
      current = r;
    }
  }

  private void finish() {
    Running r = current;
    setCurrent(null);
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
    } else if (outcome instanceof JobRunner.Cancelled) {
      if (commit(r.tp(), offset, List.of())) {
        cancelled.incrementAndGet();
        log.info("{}: consumed without an answer, its job was cancelled", who);
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
    ProducerRecord<byte[], byte[]> out =
        DeadLetters.copyOf(rec, rec.value().raw(), error, stageName + "/" + workerId);
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
      rewound.put(tp, offset);
      consumer.pause(List.of(tp));
      backoffUntil.put(tp, System.currentTimeMillis() + wait);
    }
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
    setCurrent(null);
    r.job().cancelled.set(true);
    r.future().cancel(true);
    abandoned.incrementAndGet();
    log.warn("{}: abandoned ({}); another worker will redo it", r.job().coordinates(), why);
  }

  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      backoffUntil.keySet().removeAll(partitions);
      rewound.keySet().removeAll(partitions);
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

  private void replaceProducer() {
    try {
      producer.close(Duration.ofSeconds(5));
    } catch (KafkaException e) {
      log.warn("closing a broken producer failed: {}", e.toString());
    }
    producer = clients.newProducer();
  }

  private void sendProgress(CompletionMarker.OutRecord r) {
    progressProducer.send(
        new ProducerRecord<>(r.topic(), r.key(), r.value()),
        (meta, e) -> {
          if (e != null) {
            log.debug("progress record not sent: {}", e.toString());
          }
        });
  }

  private void closeClients() {
    cancelledJobs.close();
    try {
      progressProducer.close(Duration.ofSeconds(5));
    } catch (RuntimeException e) {
      log.warn("closing progress producer: {}", e.toString());
    }
    try {
      if (consumer != null) {
        // Leave the group explicitly so an abandoned job's partition moves at once.
        consumer.close(
            CloseOptions.timeout(Duration.ofSeconds(10))
                .withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP));
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
}
