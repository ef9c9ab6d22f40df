package dev.compactor.schemas.serde;

import dev.compactor.schemas.AvroClassTrust;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DatumWriter;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Writes generated Avro records in the Confluent wire format, registering (or looking up) the
 * record's schema under the TopicNameStrategy subject {@code <topic>-value} or {@code <topic>-key}.
 * Records it writes can be read by Confluent's {@code KafkaAvroDeserializer} and vice versa.
 *
 * <p>Either construct it with a client, or let Kafka instantiate it and pass {@value
 * RestSchemaRegistryClient#URL_CONFIG} (and optionally {@value
 * AvroSerdeConfig#AUTO_REGISTER_SCHEMAS}) in the producer configs.
 */
public final class AvroSerializer<T extends SpecificRecord> implements Serializer<T> {

  static {
    AvroClassTrust.trustCompactorClasses();
  }

  private SchemaRegistryClient registry;
  private boolean ownsRegistry;
  private boolean isKey;
  private AvroSerdeConfig config = AvroSerdeConfig.DEFAULT;
  private final Map<String, Map<Schema, Integer>> ids = new ConcurrentHashMap<>();
  private final Map<Schema, DatumWriter<T>> writers = new ConcurrentHashMap<>();

  /** For instantiation by Kafka from configs; {@link #configure} must be called. */
  public AvroSerializer() {}

  /** A ready-to-use serializer for keys ({@code isKey}) or values of any topic. */
  public AvroSerializer(SchemaRegistryClient registry, boolean isKey, AvroSerdeConfig config) {
    this.registry = registry;
    this.isKey = isKey;
    this.config = config;
  }

  @Override
  public void configure(Map<String, ?> configs, boolean isKey) {
    this.isKey = isKey;
    if (configs.containsKey(AvroSerdeConfig.AUTO_REGISTER_SCHEMAS)) {
      this.config = AvroSerdeConfig.fromConfig(configs);
    }
    if (registry == null) {
      registry = RestSchemaRegistryClient.fromConfig(configs);
      ownsRegistry = true;
    }
  }

  @Override
  public byte[] serialize(String topic, T record) {
    if (record == null) {
      return null;
    }
    if (registry == null) {
      throw new IllegalStateException("AvroSerializer used before configure(): no schema registry");
    }
    Schema schema = record.getSchema();
    int id = schemaId(SubjectNames.subject(topic, isKey), schema);
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream(256);
      ByteBuffer header = ByteBuffer.allocate(WireFormat.HEADER_LENGTH);
      WireFormat.writeHeader(header, id);
      bytes.write(header.array());
      BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(bytes, null);
      writers.computeIfAbsent(schema, this::writerFor).write(record, encoder);
      encoder.flush();
      return bytes.toByteArray();
    } catch (IOException | RuntimeException e) {
      throw new SerializationException(
          "cannot encode "
              + schema.getFullName()
              + " for topic "
              + topic
              + " (a required field is probably null): "
              + e,
          e);
    }
  }

  private int schemaId(String subject, Schema schema) {
    Map<Schema, Integer> known = ids.computeIfAbsent(subject, s -> new ConcurrentHashMap<>());
    Integer id = known.get(schema);
    if (id != null) {
      return id;
    }
    try {
      id =
          config.autoRegister()
              ? registry.register(subject, schema)
              : registry.lookup(subject, schema).id();
    } catch (SchemaRegistryException e) {
      throw new SerializationException(
          (config.autoRegister() ? "cannot register " : "schema not registered: ")
              + schema.getFullName()
              + " under subject "
              + subject
              + " in "
              + registry
              + ": "
              + e.getMessage(),
          e);
    }
    known.put(schema, id);
    return id;
  }

  @SuppressWarnings("unchecked")
  private DatumWriter<T> writerFor(Schema schema) {
    return new SpecificDatumWriter<>(schema, SpecificData.getForSchema(schema));
  }

  @Override
  public void close() {
    if (ownsRegistry) {
      registry.close();
    }
  }
}
