package dev.compactor.schemas.serde;

import dev.compactor.schemas.AvroClassTrust;
import dev.compactor.schemas.BackwardCompatibility;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;

/**
 * Reads records in the Confluent wire format into generated Avro classes. The writer's schema is
 * fetched from the registry by the id in the record header (and cached); the record is then decoded
 * with Avro schema resolution into the reader's own schema, so consumers keep working while
 * producers move to newer, BACKWARD-compatible schema versions.
 *
 * <p>Anything that is not a readable record of the expected type (wrong magic byte, unknown schema
 * id, truncated or trailing bytes, a writer schema this reader cannot resolve) is reported as a
 * {@link SerializationException} saying what was expected and what was found; the stage runtime
 * sends such records to the dead-letter topic. {@link #isRegistryUnavailable(Throwable)} tells
 * those poison records apart from a registry outage, which is worth retrying instead.
 */
public final class AvroDeserializer<T extends SpecificRecord> implements Deserializer<T> {

  static {
    AvroClassTrust.trustCompactorClasses();
  }

  private final Class<T> type;
  private SchemaRegistryClient registry;
  private boolean ownsRegistry;
  private boolean isKey;
  private final Map<Integer, SpecificDatumReader<T>> readers = new ConcurrentHashMap<>();

  /**
   * For instantiation by Kafka from configs: the class to read into is found from the writer's
   * schema name (the generated class with that full name must be on the classpath).
   */
  public AvroDeserializer() {
    this.type = null;
  }

  /** A ready-to-use deserializer producing instances of {@code type}. */
  public AvroDeserializer(Class<T> type, SchemaRegistryClient registry, boolean isKey) {
    this.type = type;
    this.registry = registry;
    this.isKey = isKey;
  }

  @Override
  public void configure(Map<String, ?> configs, boolean isKey) {
    this.isKey = isKey;
    if (registry == null) {
      registry = RestSchemaRegistryClient.fromConfig(configs);
      ownsRegistry = true;
    }
  }

  @Override
  public T deserialize(String topic, byte[] data) {
    if (data == null) {
      return null;
    }
    if (registry == null) {
      throw new IllegalStateException(
          "AvroDeserializer used before configure(): no schema registry");
    }
    String where = "topic " + topic + (isKey ? " (key)" : " (value)");
    int id = WireFormat.readSchemaId(data, where);
    SpecificDatumReader<T> reader = readers.computeIfAbsent(id, i -> readerFor(i, where));
    BinaryDecoder decoder =
        DecoderFactory.get()
            .binaryDecoder(
                data, WireFormat.HEADER_LENGTH, data.length - WireFormat.HEADER_LENGTH, null);
    T record;
    try {
      record = reader.read(null, decoder);
    } catch (IOException | RuntimeException e) {
      throw new SerializationException(
          "cannot decode the Avro body ("
              + (data.length - WireFormat.HEADER_LENGTH)
              + " bytes) of a "
              + reader.getSchema().getFullName()
              + " record with schema id "
              + id
              + " in "
              + where
              + ": the record is truncated or corrupt ("
              + e
              + ")",
          e);
    }
    try {
      if (!decoder.isEnd()) {
        throw new SerializationException(
            "record with schema id "
                + id
                + " in "
                + where
                + " has bytes left after the Avro body: corrupt or written with another schema");
      }
    } catch (IOException e) {
      throw new SerializationException("cannot check the end of a record in " + where, e);
    }
    return record;
  }

  private SpecificDatumReader<T> readerFor(int id, String where) {
    Schema writer;
    try {
      writer = registry.getById(id);
    } catch (SchemaRegistryException e) {
      throw new SerializationException(
          (e.isNotFound() ? "unknown schema id " : "cannot fetch schema id ")
              + id
              + " for a record in "
              + where
              + " from "
              + registry
              + ": "
              + e.getMessage(),
          e);
    }
    Class<T> target = type != null ? type : classFor(writer, id, where);
    Schema reader = SpecificData.get().getSchema(target);
    BackwardCompatibility.Report report = BackwardCompatibility.check(reader, writer);
    if (!report.compatible()) {
      throw new SerializationException(
          "record in "
              + where
              + " was written with schema id "
              + id
              + " ("
              + writer.getFullName()
              + ") which cannot be read as "
              + reader.getFullName()
              + ": "
              + report.describe());
    }
    return new SpecificDatumReader<>(writer, reader, SpecificData.getForClass(target));
  }

  @SuppressWarnings("unchecked")
  private static <T> Class<T> classFor(Schema writer, int id, String where) {
    Class<?> found = SpecificData.get().getClass(writer);
    if (found == null || !SpecificRecord.class.isAssignableFrom(found)) {
      throw new SerializationException(
          "no generated Avro class "
              + writer.getFullName()
              + " on the classpath for schema id "
              + id
              + " in "
              + where);
    }
    return (Class<T>) found;
  }

  /**
   * True when {@code failure} (from {@link #deserialize}) was caused by the registry being
   * unreachable or failing, i.e. the record itself may be fine and a retry may succeed.
   */
  public static boolean isRegistryUnavailable(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof SchemaRegistryException e) {
        return e.errorCode() == SchemaRegistryException.UNREACHABLE || e.httpStatus() >= 500;
      }
    }
    return false;
  }

  @Override
  public void close() {
    if (ownsRegistry) {
      registry.close();
    }
  }
}
