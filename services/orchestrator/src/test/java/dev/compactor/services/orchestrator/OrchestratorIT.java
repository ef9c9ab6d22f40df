package dev.compactor.services.orchestrator;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageRequested;
import dev.compactor.infra.EmbeddedKafka;
import dev.compactor.infra.LocalStack;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.KafkaStreams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The orchestrator process against the embedded local stack (real KRaft broker, real schema
 * registry over HTTP): a submitted job gets its ingestion request and its statuses, GET /jobs/{id}
 * shows it, and a new instance with an empty state directory rebuilds the job from the changelog
 * and carries on.
 */
class OrchestratorIT {

  @TempDir static Path dir;
  static LocalStack stack;
  static EmbeddedKafka kafka;
  static SchemaRegistryClient registry;
  final HttpClient http = HttpClient.newHttpClient();

  @BeforeAll
  static void startKafka() throws Exception {
    stack = LocalStack.start(dir.resolve("stack"));
    kafka = stack.kafka();
    registry =
        new RestSchemaRegistryClient(stack.schemaRegistryUrl(), stack.schemaRegistryUserInfo());
  }

  @AfterAll
  static void stopKafka() {
    registry.close();
    stack.close();
  }

  private OrchestratorService startOrchestrator(String stateDir) throws Exception {
    OrchestratorService s =
        OrchestratorService.start(
            OrchestratorConfig.of(
                Map.of(
                    "COMPACTOR_KAFKA_BOOTSTRAP",
                    kafka.bootstrapServers(),
                    "COMPACTOR_HTTP_PORT",
                    "0",
                    "COMPACTOR_ADVERTISED_HOST",
                    "127.0.0.1",
                    "COMPACTOR_STATE_DIR",
                    dir.resolve(stateDir).toString(),
                    "COMPACTOR_KAFKA_PROPERTIES_FILE",
                    stack.kafkaClientPropertiesFile().toString())),
            registry);
    await().atMost(Duration.ofSeconds(60)).until(() -> s.state() == KafkaStreams.State.RUNNING);
    return s;
  }

  private <V> void produce(Topic<String, V> topic, String key, V value) {
    try (KafkaProducer<String, V> p =
        new KafkaProducer<>(
            kafka.clientProperties(),
            topic.keySerde().serializer(),
            topic.valueSerde(registry).serializer())) {
      p.send(new ProducerRecord<>(topic.name(), key, value)).get();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** Reads committed records of {@code topic} from the beginning until {@code done} holds. */
  private <V> List<V> readUntil(Topic<String, V> topic, Predicate<List<V>> done) {
    Properties p = kafka.clientProperties();
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    List<V> seen = new ArrayList<>();
    try (KafkaConsumer<String, V> c =
        new KafkaConsumer<>(
            p, topic.keySerde().deserializer(), topic.valueSerde(registry).deserializer())) {
      List<TopicPartition> parts = new ArrayList<>();
      c.partitionsFor(topic.name())
          .forEach(i -> parts.add(new TopicPartition(i.topic(), i.partition())));
      c.assign(parts);
      c.seekToBeginning(parts);
      await()
          .atMost(Duration.ofSeconds(60))
          .until(
              () -> {
                c.poll(Duration.ofMillis(200)).forEach(r -> seen.add(r.value()));
                return done.test(seen);
              });
    }
    return seen;
  }

  private JsonNode getJob(OrchestratorService s, String id) throws Exception {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.httpPort() + "/jobs/" + id))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    return r.statusCode() == 200 ? JobJson.MAPPER.readTree(r.body()) : null;
  }

  @Test
  void submittedJobIsRoutedAndSurvivesALostStateDirectory() throws Exception {
    String recipe = Files.readString(Path.of("../../recipes/wanda50-gptq4.yaml"));
    String jobId = "it-job-1";
    StageRequested ingest;
    try (OrchestratorService first = startOrchestrator("state-a")) {
      produce(
          Topics.JOBS_SUBMITTED,
          jobId,
          JobSubmitted.newBuilder()
              .setJobId(jobId)
              .setSubmittedAtMs(System.currentTimeMillis())
              .setModelUri("s3://compactor-data/models/tiny/")
              .setRecipeYaml(recipe)
              .build());

      ingest = readUntil(Topics.stageRequested("ingestion"), l -> !l.isEmpty()).get(0);
      // only it-job-1 has been submitted so far, so the first request is its
      assertEquals(jobId, ingest.getJobId());
      assertEquals(0, ingest.getStep());
      assertEquals("s3://compactor-data/models/tiny/", ingest.getModelUri());
      assertNull(ingest.getInput());

      List<JobStatus> statuses = readUntil(Topics.JOBS_STATUS, l -> l.size() >= 2);
      assertEquals(JobState.SUBMITTED, statuses.get(0).getState());
      assertEquals(JobState.RUNNING, statuses.get(1).getState());
      assertEquals(5, statuses.get(1).getTotalSteps());

      await()
          .atMost(Duration.ofSeconds(30))
          .untilAsserted(() -> assertEquals("RUNNING", getJob(first, jobId).get("state").asText()));
    }

    // a new instance on an empty state directory restores the job from the changelog
    try (OrchestratorService second = startOrchestrator("state-b")) {
      produce(
          Topics.STAGE_COMPLETED,
          jobId,
          StageCompleted.newBuilder()
              .setJobId(jobId)
              .setStep(0)
              .setStage("ingestion")
              .setOutput(TopologyFixture.artifact("b", 4096))
              .setMetrics(Map.of())
              .setDurationMs(10)
              .setWorker("it")
              .setAttempt(ingest.getAttempt())
              .setCompletedAtMs(System.currentTimeMillis())
              .build());
      StageRequested prune = readUntil(Topics.stageRequested("prune"), l -> !l.isEmpty()).get(0);
      assertEquals(1, prune.getStep());
      assertEquals(TopologyFixture.artifact("b", 4096), prune.getInput());
      assertEquals(TopologyFixture.artifact("b", 4096), prune.getBaseline());
      await()
          .atMost(Duration.ofSeconds(30))
          .untilAsserted(() -> assertEquals(1, getJob(second, jobId).get("currentStep").asInt()));
    }
  }
}
