package dev.compactor.runtime;

import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jobs the orchestrator has cancelled, as this worker learns them from {@code
 * compactor.jobs.status} (the orchestrator's word is final: a cancel it ignored, for a job that had
 * already ended, never shows up here). Read from the start of the compacted topic, without a
 * consumer group, on a thread of its own; {@link #awaitCaughtUp(Duration)} waits until what was
 * there at start-up has been read, so a request of a job cancelled while no worker ran is skipped.
 */
final class CancelledJobs implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(CancelledJobs.class);

  private final Set<String> cancelled = ConcurrentHashMap.newKeySet();
  private final KafkaConsumer<byte[], Decoded<JobStatus>> consumer;
  private final Thread thread;
  private final CountDownLatch caughtUp = new CountDownLatch(1);
  private volatile boolean stopping;

  CancelledJobs(WorkerClients clients, SchemaRegistryClient registry) {
    this.consumer =
        clients.newReader(Topics.JOBS_STATUS.valueSerde(registry).deserializer(), "status");
    this.thread = new Thread(this::run, "cancelled-jobs");
    this.thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  /** True once the orchestrator has cancelled {@code jobId}. */
  boolean contains(String jobId) {
    return cancelled.contains(jobId);
  }

  /** Waits until the statuses present at start-up were read; false on timeout. */
  boolean awaitCaughtUp(Duration timeout) throws InterruptedException {
    return caughtUp.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  private void run() {
    try {
      List<TopicPartition> parts =
          consumer.partitionsFor(Topics.JOBS_STATUS.name()).stream()
              .map(p -> new TopicPartition(p.topic(), p.partition()))
              .toList();
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      Map<TopicPartition, Long> end = consumer.endOffsets(parts);
      while (!stopping) {
        for (ConsumerRecord<byte[], Decoded<JobStatus>> r : consumer.poll(Duration.ofMillis(500))) {
          Decoded<JobStatus> v = r.value();
          if (v != null && v.ok() && v.value().getState() == JobState.CANCELLED) {
            if (cancelled.add(v.value().getJobId())) {
              log.info("job {} was cancelled: {}", v.value().getJobId(), v.value().getMessage());
            }
          }
        }
        if (caughtUp.getCount() > 0
            && end.entrySet().stream()
                .allMatch(e -> consumer.position(e.getKey()) >= e.getValue())) {
          caughtUp.countDown();
        }
      }
    } catch (WakeupException e) {
      // closing
    } catch (KafkaException e) {
      if (!stopping) {
        log.error("stopped following {}: {}", Topics.JOBS_STATUS.name(), e.toString(), e);
      }
    } finally {
      caughtUp.countDown();
      try {
        consumer.close(Duration.ofSeconds(5));
      } catch (RuntimeException e) {
        log.debug("closing the status reader", e);
      }
    }
  }

  @Override
  public void close() {
    stopping = true;
    consumer.wakeup();
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
