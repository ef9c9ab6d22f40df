package dev.compactor.infra.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.JobSubmitted;
import dev.compactor.events.StageRequested;
import dev.compactor.schemas.CompatibilityLevel;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaMetadata;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.avro.Schema;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;

/**
 * The client and serdes against Confluent's own Schema Registry (the image docker-compose uses), to
 * prove they follow Confluent's API rather than only our server's reading of it. Needs Docker;
 * skipped cleanly without it.
 */
@Testcontainers(disabledWithoutDocker = true)
class ConfluentSchemaRegistryIT {

  /** Same images as docker-compose.yml. */
  static final String KAFKA_IMAGE = "apache/kafka:4.1.0";

  static final String REGISTRY_IMAGE = "confluentinc/cp-schema-registry:7.9.0";

  static final Network NETWORK = Network.newNetwork();

  @Container
  static final KafkaContainer KAFKA =
      new KafkaContainer(KAFKA_IMAGE).withNetwork(NETWORK).withListener("kafka:19092");

  @Container
  static final GenericContainer<?> REGISTRY =
      new GenericContainer<>(REGISTRY_IMAGE)
          .withNetwork(NETWORK)
          .dependsOn(KAFKA)
          .withExposedPorts(8081)
          .withEnv("SCHEMA_REGISTRY_HOST_NAME", "schema-registry")
          .withEnv("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081")
          .withEnv("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "PLAINTEXT://kafka:19092")
          .waitingFor(Wait.forHttp("/subjects").forStatusCode(200))
          .withStartupTimeout(Duration.ofMinutes(3));

  private static RestSchemaRegistryClient client() {
    return new RestSchemaRegistryClient(
        "http://" + REGISTRY.getHost() + ":" + REGISTRY.getMappedPort(8081));
  }

  @Test
  void restApiAnswersAsOurClientExpects() {
    RestSchemaRegistryClient client = client();
    Schema v1 = JobSubmitted.getClassSchema();
    String json = v1.toString();
    Schema optional =
        new Schema.Parser()
            .parse(
                json.substring(0, json.lastIndexOf(']'))
                    + ",{\"name\":\"p\",\"type\":[\"null\",\"int\"],\"default\":null}]}");
    Schema required =
        new Schema.Parser()
            .parse(
                json.substring(0, json.lastIndexOf(']')) + ",{\"name\":\"p\",\"type\":\"int\"}]}");

    int id = client.register("confluent-check-value", v1);
    assertEquals(id, client().register("confluent-check-value", v1));
    assertEquals(v1, client().getById(id));
    assertEquals(
        new SchemaMetadata("confluent-check-value", id, 1, v1),
        client.latest("confluent-check-value"));
    assertEquals(id, client.lookup("confluent-check-value", v1).id());
    assertTrue(client.testCompatibility("confluent-check-value", optional));
    assertFalse(client.testCompatibility("confluent-check-value", required));
    assertEquals(
        SchemaRegistryException.INCOMPATIBLE_SCHEMA,
        assertThrows(
                SchemaRegistryException.class,
                () -> client.register("confluent-check-value", required))
            .errorCode());
    assertEquals(
        SchemaRegistryException.SCHEMA_NOT_FOUND,
        assertThrows(SchemaRegistryException.class, () -> client.getById(987654)).errorCode());
    assertEquals(
        SchemaRegistryException.SUBJECT_NOT_FOUND,
        assertThrows(SchemaRegistryException.class, () -> client.latest("no-such-subject"))
            .errorCode());
    assertEquals(List.of(1), client.versions("confluent-check-value"));
    assertTrue(client.subjects().contains("confluent-check-value"));
    assertEquals(CompatibilityLevel.BACKWARD, client.compatibility(null));
    assertEquals(CompatibilityLevel.BACKWARD, client.compatibility("confluent-check-value"));
    assertEquals(
        CompatibilityLevel.FULL,
        client.setCompatibility("confluent-check-value", CompatibilityLevel.FULL));
    assertEquals(CompatibilityLevel.FULL, client.compatibility("confluent-check-value"));
  }

  @Test
  void serdesRoundTripThroughKafkaWithConfluentsRegistry() throws Exception {
    Topic<String, StageRequested> topic = Topics.stageRequested("prune");
    StageRequested request = SchemaRegistryKafkaIT.stageRequest("job-c");
    Properties props = new Properties();
    props.put("bootstrap.servers", KAFKA.getBootstrapServers());
    try (KafkaProducer<String, StageRequested> producer =
        new KafkaProducer<>(
            props, topic.keySerde().serializer(), topic.valueSerde(client()).serializer())) {
      producer.send(new ProducerRecord<>(topic.name(), "job-c", request)).get();
    }
    props.put(ConsumerConfig.GROUP_ID_CONFIG, "confluent-check");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    List<StageRequested> seen = new ArrayList<>();
    try (KafkaConsumer<String, StageRequested> consumer =
        new KafkaConsumer<>(
            props, topic.keySerde().deserializer(), topic.valueSerde(client()).deserializer())) {
      consumer.subscribe(List.of(topic.name()));
      Awaitility.await()
          .atMost(Duration.ofSeconds(60))
          .until(
              () -> {
                consumer.poll(Duration.ofMillis(200)).forEach(r -> seen.add(r.value()));
                return !seen.isEmpty();
              });
    }
    assertEquals(List.of(request), seen);
    assertEquals(
        StageRequested.getClassSchema(), client().latest(topic.name() + "-value").schema());
  }
}
