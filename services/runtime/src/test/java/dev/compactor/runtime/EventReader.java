package dev.compactor.runtime;

import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads the runtime's output topics as a {@code read_committed} consumer would, always up to the
 * current end (last stable offset), so "exactly one record" assertions see every committed record.
 */
final class EventReader implements AutoCloseable {
  private static final List<Topic<String, ?>> TOPICS =
      List.of(
          Topics.STAGE_COMPLETED, Topics.STAGE_FAILED, Topics.DEADLETTER, Topics.STAGE_PROGRESS);

  private final KafkaConsumer<byte[], byte[]> consumer;
  private final SchemaRegistryClient registry;
  private final Map<String, List<ConsumerRecord<byte[], byte[]>>> seen = new HashMap<>();

  EventReader(Properties clientProperties, SchemaRegistryClient registry) {
    Properties p = new Properties();
    p.putAll(clientProperties);
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    this.consumer =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    this.registry = registry;
    List<TopicPartition> all = new ArrayList<>();
    for (Topic<String, ?> t : TOPICS) {
      for (PartitionInfo info : consumer.partitionsFor(t.name())) {
        all.add(new TopicPartition(t.name(), info.partition()));
      }
      seen.put(t.name(), new ArrayList<>());
    }
    consumer.assign(all);
    consumer.seekToBeginning(all);
  }

  /** Every committed record of {@code topic} keyed by {@code job}, in order. */
  synchronized List<ConsumerRecord<byte[], byte[]>> raw(String topic, String job) {
    catchUp();
    byte[] key = job.getBytes(StandardCharsets.UTF_8);
    List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : seen.get(topic)) {
      if (java.util.Arrays.equals(key, r.key())) {
        out.add(r);
      }
    }
    return out;
  }

  /** The decoded values of {@link #raw}. */
  synchronized <V> List<V> values(String topic, String job, Class<V> type) {
    Topic<String, ?> t =
        TOPICS.stream().filter(x -> x.name().equals(topic)).findFirst().orElseThrow();
    List<V> out = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : raw(topic, job)) {
      out.add(type.cast(t.valueSerde(registry).deserializer().deserialize(topic, r.value())));
    }
    return out;
  }

  /** How many committed records of {@code topic} are keyed by {@code job}. */
  synchronized int count(String topic, String job) {
    return raw(topic, job).size();
  }

  private void catchUp() {
    Map<TopicPartition, Long> end = consumer.endOffsets(consumer.assignment());
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("could not read up to " + end);
      }
      for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
        seen.get(r.topic()).add(r);
      }
    }
  }

  @Override
  public void close() {
    consumer.close();
  }
}
