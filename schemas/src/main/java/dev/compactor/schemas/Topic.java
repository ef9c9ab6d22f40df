package dev.compactor.schemas;

import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import org.apache.avro.Schema;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.Serde;

/**
 * One Kafka topic with everything needed to use it: its name, its key and value serdes, and how it
 * should be created. Instances live only in {@link Topics}, so no one spells a topic name twice.
 *
 * @param <K> key type
 * @param <V> value type
 */
public final class Topic<K, V> {

  private final String name;
  private final String description;
  private final Serde<K> keySerde;
  private final Function<SchemaRegistryClient, Serde<V>> valueSerdeFactory;
  private final Schema valueSchema;
  private final int partitions;
  private final Map<String, String> configs;

  Topic(
      String name,
      String description,
      Serde<K> keySerde,
      Function<SchemaRegistryClient, Serde<V>> valueSerdeFactory,
      Schema valueSchema,
      int partitions,
      Map<String, String> configs) {
    this.name = Objects.requireNonNull(name, "name");
    this.description = Objects.requireNonNull(description, "description");
    this.keySerde = Objects.requireNonNull(keySerde, "keySerde");
    this.valueSerdeFactory = Objects.requireNonNull(valueSerdeFactory, "valueSerdeFactory");
    this.valueSchema = valueSchema;
    this.partitions = partitions;
    this.configs = Map.copyOf(configs);
  }

  /** The topic name, e.g. {@code compactor.jobs.status}. */
  public String name() {
    return name;
  }

  /** What the topic carries, for docs and the CLI. */
  public String description() {
    return description;
  }

  /** Serde for record keys (the jobId for every Compactor topic). */
  public Serde<K> keySerde() {
    return keySerde;
  }

  /**
   * A serde for record values bound to {@code registry}; Avro values use the Confluent wire format
   * and auto-register their schema under subject {@code <name>-value}.
   */
  public Serde<V> valueSerde(SchemaRegistryClient registry) {
    return valueSerdeFactory.apply(registry);
  }

  /** The Avro schema of the values, or null for raw-bytes topics (the dead-letter topic). */
  public Schema valueSchema() {
    return valueSchema;
  }

  /** Recommended partition count: the most consumers of one group that can work in parallel. */
  public int partitions() {
    return partitions;
  }

  /** {@code delete} or {@code compact}. */
  public String cleanupPolicy() {
    return configs.get(TopicConfig.CLEANUP_POLICY_CONFIG);
  }

  /** Topic-level configs to create the topic with (cleanup policy, retention). */
  public Map<String, String> configs() {
    return configs;
  }

  /** An admin-client topic definition with the recommended partitions and configs. */
  public NewTopic newTopic(short replicationFactor) {
    return new NewTopic(name, partitions, replicationFactor).configs(configs);
  }

  @Override
  public String toString() {
    return name;
  }
}
