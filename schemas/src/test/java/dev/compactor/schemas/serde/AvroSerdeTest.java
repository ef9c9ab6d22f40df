package dev.compactor.schemas.serde;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.events.StageRequested;
import dev.compactor.schemas.SampleEvents;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serde;
import org.junit.jupiter.api.Test;

class AvroSerdeTest {

  private final InMemoryRegistryClient registry = new InMemoryRegistryClient();

  @Test
  @SuppressWarnings("unchecked")
  void everyEventRoundTripsThroughItsTopicInConfluentWireFormat() {
    for (SpecificRecord event : SampleEvents.all()) {
      Topic<String, SpecificRecord> topic = topicCarrying(event);
      Serde<SpecificRecord> serde = topic.valueSerde(registry);
      byte[] bytes = serde.serializer().serialize(topic.name(), event);

      assertEquals(WireFormat.MAGIC_BYTE, bytes[0], "magic byte");
      int id = ByteBuffer.wrap(bytes, 1, 4).getInt();
      assertEquals(event.getSchema(), registry.getById(id), "header id names the writer schema");
      assertEquals(
          id,
          registry.lookup(topic.name() + "-value", event.getSchema()).id(),
          "TopicNameStrategy");
      assertEquals(event, serde.deserializer().deserialize(topic.name(), bytes));
    }
  }

  @Test
  void schemaIdIsRegisteredOncePerSubject() {
    Serde<JobStatus> serde = Topics.JOBS_STATUS.valueSerde(registry);
    JobStatus status = (JobStatus) SampleEvents.all().get(7);
    byte[] first = serde.serializer().serialize(Topics.JOBS_STATUS.name(), status);
    int afterFirst = registry.requests.get();
    byte[] second = serde.serializer().serialize(Topics.JOBS_STATUS.name(), status);
    serde.deserializer().deserialize(Topics.JOBS_STATUS.name(), first);
    int afterFirstRead = registry.requests.get();
    serde.deserializer().deserialize(Topics.JOBS_STATUS.name(), second);
    assertArrayEquals(first, second);
    assertEquals(afterFirst + 1, afterFirstRead, "one lookup by id for the first read");
    assertEquals(afterFirstRead, registry.requests.get(), "no registry call once cached");
  }

  @Test
  void readsRecordsWrittenWithAnOlderSchema() throws IOException {
    // JobSubmitted as it might have been before `submitter` existed: the current class must read
    // it.
    Schema old =
        SchemaBuilder.record("JobSubmitted")
            .namespace("dev.compactor.events")
            .fields()
            .requiredString("jobId")
            .requiredLong("submittedAtMs")
            .requiredString("modelUri")
            .requiredString("recipeYaml")
            .endRecord();
    GenericRecord record = new GenericData.Record(old);
    record.put("jobId", "job-old");
    record.put("submittedAtMs", 5L);
    record.put("modelUri", "s3://m/");
    record.put("recipeYaml", "name: r");
    int id = registry.register("compactor.jobs.submitted-value", old);

    JobSubmitted read =
        Topics.JOBS_SUBMITTED
            .valueSerde(registry)
            .deserializer()
            .deserialize(Topics.JOBS_SUBMITTED.name(), wire(id, old, record));

    assertEquals("job-old", read.getJobId());
    assertEquals(5L, read.getSubmittedAtMs());
    assertNull(read.getSubmitter(), "field added later takes its default");
  }

  @Test
  void badMagicByteIsASerializationException() {
    byte[] bytes = validStatusBytes();
    bytes[0] = 7;
    SerializationException e = readStatus(bytes);
    assertTrue(e.getMessage().contains("unknown magic byte 0x07"), e.getMessage());
    assertTrue(e.getMessage().contains("expected 0x00"), e.getMessage());
  }

  @Test
  void recordShorterThanTheHeaderIsASerializationException() {
    SerializationException e = readStatus(new byte[] {0, 0, 1});
    assertTrue(e.getMessage().contains("truncated record"), e.getMessage());
    assertTrue(e.getMessage().contains("3 bytes"), e.getMessage());
  }

  @Test
  void unknownSchemaIdIsASerializationException() {
    byte[] bytes = validStatusBytes();
    ByteBuffer.wrap(bytes).putInt(1, 999);
    SerializationException e = readStatus(bytes);
    assertTrue(e.getMessage().contains("unknown schema id 999"), e.getMessage());
    assertFalse(AvroDeserializer.isRegistryUnavailable(e));
  }

  @Test
  void truncatedBodyIsASerializationException() {
    byte[] bytes = validStatusBytes();
    SerializationException e = readStatus(Arrays.copyOf(bytes, bytes.length - 4));
    assertTrue(e.getMessage().contains("truncated or corrupt"), e.getMessage());
  }

  @Test
  void trailingBytesAreASerializationException() {
    byte[] bytes = validStatusBytes();
    SerializationException e = readStatus(Arrays.copyOf(bytes, bytes.length + 3));
    assertTrue(e.getMessage().contains("bytes left after the Avro body"), e.getMessage());
  }

  @Test
  void recordOfAnotherEventTypeIsASerializationException() {
    StageRequested request = (StageRequested) SampleEvents.all().get(2);
    byte[] bytes =
        Topics.stageRequested("prune")
            .valueSerde(registry)
            .serializer()
            .serialize("compactor.stage.prune.requested", request);
    SerializationException e = readStatus(bytes);
    assertTrue(e.getMessage().contains("(dev.compactor.events.StageRequested)"), e.getMessage());
    assertTrue(
        e.getMessage().contains("cannot be read as dev.compactor.events.JobStatus"),
        e.getMessage());
  }

  @Test
  void withoutAutoRegisterAnUnregisteredSchemaIsRefused() {
    AvroSerializer<JobStatus> serializer =
        new AvroSerializer<>(registry, false, new AvroSerdeConfig(false));
    JobStatus status = (JobStatus) SampleEvents.all().get(7);
    SerializationException e =
        assertThrows(
            SerializationException.class,
            () -> serializer.serialize(Topics.JOBS_STATUS.name(), status));
    assertTrue(e.getMessage().contains("schema not registered"), e.getMessage());
    assertTrue(e.getMessage().contains("compactor.jobs.status-value"), e.getMessage());

    registry.register("compactor.jobs.status-value", JobStatus.getClassSchema());
    byte[] bytes = serializer.serialize(Topics.JOBS_STATUS.name(), status);
    assertEquals(status, readStatusOk(bytes));
  }

  @Test
  void keysUseTheKeySubject() {
    AvroSerde<JobStatus> serde =
        AvroSerde.of(JobStatus.class, registry, true, AvroSerdeConfig.DEFAULT);
    serde.serializer().serialize("some.topic", (JobStatus) SampleEvents.all().get(7));
    assertTrue(registry.subjects.containsKey("some.topic-key"), registry.subjects::toString);
  }

  @Test
  void nullIsATombstoneBothWays() {
    Serde<JobStatus> serde = Topics.JOBS_STATUS.valueSerde(registry);
    assertNull(serde.serializer().serialize(Topics.JOBS_STATUS.name(), null));
    assertNull(serde.deserializer().deserialize(Topics.JOBS_STATUS.name(), null));
  }

  @Test
  void missingRequiredFieldIsASerializationException() {
    JobStatus broken = new JobStatus();
    SerializationException e =
        assertThrows(
            SerializationException.class,
            () ->
                Topics.JOBS_STATUS
                    .valueSerde(registry)
                    .serializer()
                    .serialize(Topics.JOBS_STATUS.name(), broken));
    assertTrue(
        e.getMessage().contains("cannot encode dev.compactor.events.JobStatus"), e.getMessage());
  }

  @Test
  void registryOutageIsToldApartFromPoisonRecords() {
    SerializationException outage =
        new SerializationException(
            "x", new SchemaRegistryException("down", new IOException("refused")));
    assertTrue(AvroDeserializer.isRegistryUnavailable(outage));
    assertFalse(AvroDeserializer.isRegistryUnavailable(new SerializationException("bad magic")));
  }

  @Test
  void configuredByKafkaFromProperties() {
    AvroDeserializer<JobStatus> fromConfig = new AvroDeserializer<>();
    assertThrows(IllegalArgumentException.class, () -> fromConfig.configure(Map.of(), false));
    fromConfig.configure(Map.of("schema.registry.url", "http://127.0.0.1:1"), false);
    SerializationException e =
        assertThrows(
            SerializationException.class, () -> fromConfig.deserialize("t", validStatusBytes()));
    assertTrue(AvroDeserializer.isRegistryUnavailable(e), e::toString);
    fromConfig.close();
  }

  private byte[] validStatusBytes() {
    return Topics.JOBS_STATUS
        .valueSerde(registry)
        .serializer()
        .serialize(Topics.JOBS_STATUS.name(), (JobStatus) SampleEvents.all().get(7));
  }

  private SerializationException readStatus(byte[] bytes) {
    return assertThrows(SerializationException.class, () -> readStatusOk(bytes));
  }

  private JobStatus readStatusOk(byte[] bytes) {
    return new AvroDeserializer<>(JobStatus.class, registry, false)
        .deserialize(Topics.JOBS_STATUS.name(), bytes);
  }

  private static byte[] wire(int id, Schema schema, GenericRecord record) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(0);
    out.write(ByteBuffer.allocate(4).putInt(id).array());
    BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
    new GenericDatumWriter<GenericRecord>(schema).write(record, encoder);
    encoder.flush();
    return out.toByteArray();
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static Topic<String, SpecificRecord> topicCarrying(SpecificRecord event) {
    for (Topic topic : Topics.all()) {
      if (event.getSchema().equals(topic.valueSchema())) {
        return topic;
      }
    }
    throw new AssertionError("no topic carries " + event.getSchema().getFullName());
  }
}
