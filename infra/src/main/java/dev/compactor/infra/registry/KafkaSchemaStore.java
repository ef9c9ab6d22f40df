package dev.compactor.infra.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.schemas.CompatibilityLevel;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the registry's state in a compacted, single-partition Kafka topic (default {@value
 * #DEFAULT_TOPIC}), the way Confluent's registry uses {@code _schemas}: the registry survives
 * restarts with the same ids because it replays the topic on start, and each write is acknowledged
 * by the broker ({@code acks=all}) before the registry answers.
 *
 * <p>Record layout (JSON, modelled on Confluent's {@code _schemas}): key {@code
 * {"keytype":"SCHEMA","subject":s,"version":v,"magic":1}} with value {@code
 * {"subject":s,"version":v,"id":n,"schema":"...","deleted":false}}; key {@code
 * {"keytype":"CONFIG","subject":s|null,"magic":0}} with value {@code {"compatibilityLevel":"..."}}.
 * Compaction keeps the last record per key, which is all the state needs. One registry instance
 * writes to a topic at a time.
 */
public final class KafkaSchemaStore implements SchemaStore {

  /** Topic used when none is given. */
  public static final String DEFAULT_TOPIC = "_compactor_schemas";

  private static final Logger LOG = LoggerFactory.getLogger(KafkaSchemaStore.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration REPLAY_TIMEOUT = Duration.ofSeconds(60);
  private static final long WRITE_TIMEOUT_S = 30;

  private final Map<String, Object> clientConfigs;
  private final String topic;
  private final KafkaProducer<byte[], byte[]> producer;

  /**
   * A store on {@value #DEFAULT_TOPIC} of the cluster at {@code bootstrapServers}, replication 1.
   */
  public KafkaSchemaStore(String bootstrapServers) {
    this(
        Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers),
        DEFAULT_TOPIC,
        (short) 1);
  }

  /**
   * A store on {@code topic}, created (one partition, compacted) if missing.
   *
   * @param clientConfigs connection settings shared by the admin, producer and consumer clients
   *     (bootstrap servers, security)
   * @throws IllegalStateException when the topic exists with more than one partition or is not
   *     compacted, since either would lose or reorder registry state
   */
  public KafkaSchemaStore(
      Map<String, Object> clientConfigs, String topic, short replicationFactor) {
    this.clientConfigs = Map.copyOf(clientConfigs);
    this.topic = topic;
    ensureTopic(replicationFactor);
    Map<String, Object> producerConfigs = new HashMap<>(clientConfigs);
    producerConfigs.put(ProducerConfig.ACKS_CONFIG, "all");
    producerConfigs.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    producerConfigs.put(ProducerConfig.LINGER_MS_CONFIG, 0);
    producerConfigs.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    producerConfigs.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    this.producer = new KafkaProducer<>(producerConfigs);
  }

  /** The topic holding the state. */
  public String topic() {
    return topic;
  }

  private void ensureTopic(short replicationFactor) {
    try (Admin admin = Admin.create(clientConfigs)) {
      NewTopic definition =
          new NewTopic(topic, 1, replicationFactor)
              .configs(
                  Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT));
      try {
        admin.createTopics(List.of(definition)).all().get(WRITE_TIMEOUT_S, TimeUnit.SECONDS);
        LOG.info("created schema topic {}", topic);
        return;
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) {
          throw new IllegalStateException("cannot create schema topic " + topic, e.getCause());
        }
      }
      // The topic predates this store: check it cannot reorder or drop registry updates.
      TopicDescription description =
          admin
              .describeTopics(List.of(topic))
              .allTopicNames()
              .get(WRITE_TIMEOUT_S, TimeUnit.SECONDS)
              .get(topic);
      if (description.partitions().size() != 1) {
        throw new IllegalStateException(
            "schema topic "
                + topic
                + " has "
                + description.partitions().size()
                + " partitions; it needs exactly 1 so registry updates stay in order");
      }
      ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      String policy =
          admin
              .describeConfigs(List.of(resource))
              .all()
              .get(WRITE_TIMEOUT_S, TimeUnit.SECONDS)
              .get(resource)
              .get(TopicConfig.CLEANUP_POLICY_CONFIG)
              .value();
      if (!policy.contains(TopicConfig.CLEANUP_POLICY_COMPACT) || policy.contains("delete")) {
        throw new IllegalStateException(
            "schema topic "
                + topic
                + " has cleanup.policy="
                + policy
                + "; it must be 'compact' or retention would delete registered schemas");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while preparing schema topic " + topic, e);
    } catch (ExecutionException | TimeoutException e) {
      throw new IllegalStateException("cannot describe schema topic " + topic, e);
    }
  }

  @Override
  public List<StoreRecord> load() {
    Map<String, Object> consumerConfigs = new HashMap<>(clientConfigs);
    consumerConfigs.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    consumerConfigs.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    consumerConfigs.put(
        ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    TopicPartition partition = new TopicPartition(topic, 0);
    List<StoreRecord> records = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerConfigs)) {
      consumer.assign(List.of(partition));
      consumer.seekToBeginning(List.of(partition));
      long end = consumer.endOffsets(List.of(partition)).get(partition);
      Instant deadline = Instant.now().plus(REPLAY_TIMEOUT);
      while (consumer.position(partition) < end) {
        if (Instant.now().isAfter(deadline)) {
          throw new IllegalStateException(
              "replaying schema topic "
                  + topic
                  + " did not reach offset "
                  + end
                  + " within "
                  + REPLAY_TIMEOUT);
        }
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
          StoreRecord decoded = decode(record);
          if (decoded != null) {
            records.add(decoded);
          }
        }
      }
    }
    LOG.info("replayed {} registry records from {}", records.size(), topic);
    return records;
  }

  @Override
  public void append(StoreRecord record) {
    ObjectNode key = JSON.createObjectNode();
    ObjectNode value = JSON.createObjectNode();
    if (record instanceof StoreRecord.SchemaVersion v) {
      key.put("keytype", "SCHEMA")
          .put("subject", v.subject())
          .put("version", v.version())
          .put("magic", 1);
      value
          .put("subject", v.subject())
          .put("version", v.version())
          .put("id", v.id())
          .put("schema", v.schema())
          .put("deleted", false);
    } else if (record instanceof StoreRecord.ConfigChange c) {
      key.put("keytype", "CONFIG").put("subject", c.subject()).put("magic", 0);
      value.put("compatibilityLevel", c.level().name());
    }
    try {
      producer
          .send(new ProducerRecord<>(topic, 0, bytes(key), bytes(value)))
          .get(WRITE_TIMEOUT_S, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while writing to " + topic, e);
    } catch (ExecutionException | TimeoutException e) {
      throw new IllegalStateException("cannot write registry update to " + topic + ": " + e, e);
    }
  }

  private StoreRecord decode(ConsumerRecord<byte[], byte[]> record) {
    if (record.key() == null || record.value() == null) {
      return null;
    }
    try {
      JsonNode key = JSON.readTree(record.key());
      JsonNode value = JSON.readTree(record.value());
      switch (key.path("keytype").asText()) {
        case "SCHEMA":
          if (value.path("deleted").asBoolean(false)) {
            return null;
          }
          return new StoreRecord.SchemaVersion(
              value.get("subject").asText(),
              value.get("version").asInt(),
              value.get("id").asInt(),
              value.get("schema").asText());
        case "CONFIG":
          JsonNode subject = key.get("subject");
          return new StoreRecord.ConfigChange(
              subject == null || subject.isNull() ? null : subject.asText(),
              CompatibilityLevel.parse(value.get("compatibilityLevel").asText()));
        default:
          LOG.debug(
              "skipping {} record at offset {} of {}", key.path("keytype"), record.offset(), topic);
          return null;
      }
    } catch (IOException | RuntimeException e) {
      throw new IllegalStateException(
          "corrupt registry record at offset " + record.offset() + " of " + topic + ": " + e, e);
    }
  }

  private static byte[] bytes(JsonNode node) {
    try {
      return JSON.writeValueAsBytes(node);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    producer.close(Duration.ofSeconds(10));
  }
}
