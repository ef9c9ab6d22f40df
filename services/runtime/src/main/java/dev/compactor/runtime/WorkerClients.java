package dev.compactor.runtime;

import java.time.Duration;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Deserializer;

/** The Kafka consumer and transactional producer of a {@link StageWorker}, configured for it. */
final class WorkerClients {
  /** Record size limit shared with the brokers' {@code message.max.bytes}. */
  static final int MAX_RECORD_BYTES = 16 * 1024 * 1024;

  private final StageConfig config;
  private final String clientPrefix;
  private final Properties extra;

  WorkerClients(StageConfig config, String stageName, String workerId) {
    this.config = config;
    this.extra = KafkaClientProperties.of(config);
    this.clientPrefix = "compactor-" + stageName + "-" + workerId;
  }

  /**
   * One record per poll (one job at a time), offsets only committed inside transactions, only
   * committed requests read, and {@link BusyPartitionAssignor} (cooperative-sticky that keeps each
   * running job's partition, {@code busy}, with its worker) so that a worker joining or leaving
   * does not revoke the partitions of running jobs elsewhere.
   */
  <V> KafkaConsumer<byte[], Decoded<V>> newConsumer(
      String groupId, Deserializer<V> values, Supplier<Set<TopicPartition>> busy) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientPrefix + "-consumer");
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
        ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, BusyPartitionAssignor.class.getName());
    p.put(BusyPartitionAssignor.BUSY_PARTITIONS_CONFIG, busy);
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(MAX_RECORD_BYTES));
    p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(MAX_RECORD_BYTES));
    KafkaClientProperties.apply(p, extra);
    return new KafkaConsumer<>(p, new ByteArrayDeserializer(), Decoded.capturing(values));
  }

  /**
   * A consumer outside any group (the caller assigns partitions), reading committed records only:
   * for following a topic such as the job statuses.
   */
  <V> KafkaConsumer<byte[], Decoded<V>> newReader(Deserializer<V> values, String purpose) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientPrefix + "-" + purpose);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    KafkaClientProperties.apply(p, extra);
    return new KafkaConsumer<>(p, new ByteArrayDeserializer(), Decoded.capturing(values));
  }

  /** A plain producer for informative records (progress), outside any transaction. */
  KafkaProducer<byte[], byte[]> newInformativeProducer() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(ProducerConfig.CLIENT_ID_CONFIG, clientPrefix + "-progress");
    p.put(ProducerConfig.ACKS_CONFIG, "1");
    p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "5000");
    KafkaClientProperties.apply(p, extra);
    return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
  }

  /** A transactional, idempotent producer with transactions initialized. */
  KafkaProducer<byte[], byte[]> newProducer() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(ProducerConfig.CLIENT_ID_CONFIG, clientPrefix + "-producer");
    // Zombie fencing comes from the consumer group generation (sendOffsetsToTransaction with the
    // group metadata, KIP-447), so the transactional id only has to be unique per producer.
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, clientPrefix + "-" + UUID.randomUUID());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(MAX_RECORD_BYTES));
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(Duration.ofSeconds(60).toMillis()));
    KafkaClientProperties.apply(p, extra);
    KafkaProducer<byte[], byte[]> created =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    created.initTransactions();
    return created;
  }
}
