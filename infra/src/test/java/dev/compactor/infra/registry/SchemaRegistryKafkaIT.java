package dev.compactor.infra.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.StageRequested;
import dev.compactor.infra.EmbeddedKafka;
import dev.compactor.schemas.CompatibilityLevel;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.avro.Schema;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RecordDeserializationException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end on a real KRaft broker: the registry keeps its state in a compacted Kafka topic and
 * keeps ids across restarts; events go through the broker in the Confluent wire format with the
 * REST client and serdes; poison records surface as deserialization errors a consumer can skip.
 */
class SchemaRegistryKafkaIT {

  @TempDir static Path dir;
  static EmbeddedKafka kafka;

  @BeforeAll
  static void startKafka() throws Exception {
    kafka = EmbeddedKafka.start(dir);
    try (Admin admin = Admin.create(kafka.clientProperties())) {
      admin
          .createTopics(Topics.all().stream().map(t -> t.newTopic((short) 1)).toList())
          .all()
          .get();
    }
  }

  @AfterAll
  static void stopKafka() {
    kafka.close();
  }

  private static SchemaRegistryServer startRegistry(String topic) {
    return SchemaRegistryServer.start(
        new KafkaSchemaStore(
            Map.of("bootstrap.servers", kafka.bootstrapServers()), topic, (short) 1));
  }

  @Test
  void stateLivesInACompactedSinglePartitionTopicAndSurvivesRestart() throws Exception {
    String topic = "_schemas_restart";
    Schema status = JobStatus.getClassSchema();
    Schema request = StageRequested.getClassSchema();
    int statusId;
    int requestId;
    try (SchemaRegistryServer server = startRegistry(topic)) {
      RestSchemaRegistryClient client = new RestSchemaRegistryClient(server.url());
      statusId = client.register("compactor.jobs.status-value", status);
      requestId = client.register("compactor.stage.prune.requested-value", request);
      client.setCompatibility("compactor.jobs.status-value", CompatibilityLevel.FULL_TRANSITIVE);
    }

    try (Admin admin = Admin.create(kafka.clientProperties())) {
      TopicDescription description =
          admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
      assertEquals(1, description.partitions().size());
      ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
      assertEquals("compact", config.get("cleanup.policy").value());
    }

    try (SchemaRegistryServer server = startRegistry(topic)) {
      RestSchemaRegistryClient client = new RestSchemaRegistryClient(server.url());
      assertEquals(status, client.getById(statusId));
      assertEquals(request, client.getById(requestId));
      assertEquals(statusId, client.register("compactor.jobs.status-value", status));
      assertEquals(
          CompatibilityLevel.FULL_TRANSITIVE, client.compatibility("compactor.jobs.status-value"));
      assertEquals(List.of(1), client.versions("compactor.jobs.status-value"));
      int next = client.register("another-value", ArtifactRef.getClassSchema());
      assertEquals(Math.max(statusId, requestId) + 1, next, "new ids continue after replay");
      SchemaRegistryException incompatible =
          org.junit.jupiter.api.Assertions.assertThrows(
              SchemaRegistryException.class,
              () -> client.register("compactor.jobs.status-value", request));
      assertEquals(SchemaRegistryException.INCOMPATIBLE_SCHEMA, incompatible.errorCode());
    }
  }

  @Test
  void eventsRoundTripThroughTheBrokerAndStayReadableAfterARegistryRestart() {
    String registryTopic = "_schemas_events";
    StageRequested request = stageRequest("job-7");
    Topic<String, StageRequested> topic = Topics.stageRequested("quantize");
    try (SchemaRegistryServer server = startRegistry(registryTopic)) {
      SchemaRegistryClient client = new RestSchemaRegistryClient(server.url());
      try (KafkaProducer<String, StageRequested> producer =
          new KafkaProducer<>(
              kafka.clientProperties(),
              topic.keySerde().serializer(),
              topic.valueSerde(client).serializer())) {
        producer.send(new ProducerRecord<>(topic.name(), "job-7", request)).get();
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      assertEquals(List.of(request), consume(topic, client, "g-events-1", 1));
    }
    try (SchemaRegistryServer restarted = startRegistry(registryTopic)) {
      SchemaRegistryClient fresh = new RestSchemaRegistryClient(restarted.url());
      assertEquals(List.of(request), consume(topic, fresh, "g-events-2", 1));
    }
  }

  @Test
  void poisonRecordIsADeserializationErrorTheConsumerCanSkip() throws Exception {
    Topic<String, JobStatus> topic = Topics.JOBS_STATUS;
    JobStatus good =
        JobStatus.newBuilder()
            .setJobId("job-9")
            .setState(JobState.RUNNING)
            .setStep(1)
            .setTotalSteps(3)
            .setStage("prune")
            .setMessage("pruning")
            .setUpdatedAtMs(1L)
            .build();
    try (SchemaRegistryServer server = startRegistry("_schemas_poison")) {
      SchemaRegistryClient client = new RestSchemaRegistryClient(server.url());
      try (KafkaProducer<String, byte[]> raw =
          new KafkaProducer<>(
              kafka.clientProperties(), new StringSerializer(), new ByteArraySerializer())) {
        raw.send(new ProducerRecord<>(topic.name(), 0, "job-9", new byte[] {1, 2, 3, 4, 5, 6}))
            .get();
        byte[] valid = topic.valueSerde(client).serializer().serialize(topic.name(), good);
        raw.send(new ProducerRecord<>(topic.name(), 0, "job-9", valid)).get();
      }
      Properties props = consumerProps("g-poison");
      try (KafkaConsumer<String, JobStatus> consumer =
          new KafkaConsumer<>(
              props, topic.keySerde().deserializer(), topic.valueSerde(client).deserializer())) {
        TopicPartition p0 = new TopicPartition(topic.name(), 0);
        consumer.assign(List.of(p0));
        consumer.seekToBeginning(List.of(p0));
        AtomicReference<RecordDeserializationException> failure = new AtomicReference<>();
        Awaitility.await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () -> {
                  try {
                    consumer.poll(Duration.ofMillis(200));
                  } catch (RecordDeserializationException e) {
                    failure.set(e);
                  }
                  return failure.get() != null;
                });
        RecordDeserializationException e = failure.get();
        assertTrue(e.getCause().getMessage().contains("unknown magic byte 0x01"), e::toString);
        assertInstanceOf(org.apache.kafka.common.errors.SerializationException.class, e.getCause());
        consumer.seek(e.topicPartition(), e.offset() + 1);
        List<JobStatus> after = new ArrayList<>();
        Awaitility.await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () -> {
                  consumer.poll(Duration.ofMillis(200)).forEach(r -> after.add(r.value()));
                  return !after.isEmpty();
                });
        assertEquals(good, after.get(0));
      }
    }
  }

  private static <V> List<V> consume(
      Topic<String, V> topic, SchemaRegistryClient client, String group, int n) {
    List<V> seen = new ArrayList<>();
    try (KafkaConsumer<String, V> consumer =
        new KafkaConsumer<>(
            consumerProps(group),
            topic.keySerde().deserializer(),
            topic.valueSerde(client).deserializer())) {
      consumer.subscribe(List.of(topic.name()));
      Awaitility.await()
          .atMost(Duration.ofSeconds(60))
          .until(
              () -> {
                for (ConsumerRecord<String, V> r : consumer.poll(Duration.ofMillis(200))) {
                  seen.add(r.value());
                }
                return seen.size() >= n;
              });
    }
    return seen;
  }

  private static Properties consumerProps(String group) {
    Properties props = kafka.clientProperties();
    props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    return props;
  }

  static StageRequested stageRequest(String jobId) {
    ArtifactRef input =
        ArtifactRef.newBuilder()
            .setUri("s3://compactor/artifacts/" + "ab".repeat(32) + "/")
            .setSha256("ab".repeat(32))
            .setSizeBytes(1024L)
            .setFormat("hf-safetensors")
            .build();
    return StageRequested.newBuilder()
        .setJobId(jobId)
        .setStep(2)
        .setStage("quantize")
        .setParamsJson("{\"method\":\"gptq\",\"bits\":4}")
        .setInput(input)
        .setBaseline(input)
        .setRecipeYaml("name: gptq4")
        .setAttempt(1)
        .setRequestedAtMs(42L)
        .build();
  }
}
