package dev.compactor.schemas.serde;

import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.util.Map;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/**
 * The {@link AvroSerializer} and {@link AvroDeserializer} for one generated event class, as a Kafka
 * {@link Serde} for producers, consumers and Kafka Streams. Get one from {@code
 * Topics.X.valueSerde(registry)} rather than building it by hand.
 */
public final class AvroSerde<T extends SpecificRecord> implements Serde<T> {

  private final AvroSerializer<T> serializer;
  private final AvroDeserializer<T> deserializer;

  /** For instantiation by Kafka from configs ({@code schema.registry.url}, ...). */
  public AvroSerde() {
    this.serializer = new AvroSerializer<>();
    this.deserializer = new AvroDeserializer<>();
  }

  private AvroSerde(
      Class<T> type, SchemaRegistryClient registry, boolean isKey, AvroSerdeConfig config) {
    this.serializer = new AvroSerializer<>(registry, isKey, config);
    this.deserializer = new AvroDeserializer<>(type, registry, isKey);
  }

  /** A serde for record values of {@code type}, auto-registering schemas. */
  public static <T extends SpecificRecord> AvroSerde<T> forValues(
      Class<T> type, SchemaRegistryClient registry) {
    return new AvroSerde<>(type, registry, false, AvroSerdeConfig.DEFAULT);
  }

  /** A serde for record values or keys of {@code type} with explicit settings. */
  public static <T extends SpecificRecord> AvroSerde<T> of(
      Class<T> type, SchemaRegistryClient registry, boolean isKey, AvroSerdeConfig config) {
    return new AvroSerde<>(type, registry, isKey, config);
  }

  @Override
  public void configure(Map<String, ?> configs, boolean isKey) {
    serializer.configure(configs, isKey);
    deserializer.configure(configs, isKey);
  }

  @Override
  public Serializer<T> serializer() {
    return serializer;
  }

  @Override
  public Deserializer<T> deserializer() {
    return deserializer;
  }

  @Override
  public void close() {
    serializer.close();
    deserializer.close();
  }
}
