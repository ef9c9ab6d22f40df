package dev.compactor.e2e;

import dev.compactor.cli.pipeline.PipelineStack;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.kafka.KafkaContainer;

/**
 * The pipeline on the images docker-compose.yml deploys: Apache Kafka, Confluent Schema Registry
 * and MinIO, each in a container.
 */
final class ContainerEnvironment implements PipelineEnvironment {
  /** Same images as docker-compose.yml. */
  static final String KAFKA_IMAGE = "apache/kafka:4.1.0";

  static final String REGISTRY_IMAGE = "confluentinc/cp-schema-registry:7.9.0";
  static final String MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z";
  static final String MINIO_USER = "compactor";
  static final String MINIO_PASSWORD = "compactor-secret-key";

  private final Network network = Network.newNetwork();
  private final KafkaContainer kafka =
      new KafkaContainer(KAFKA_IMAGE).withNetwork(network).withListener("kafka:19092");
  private final GenericContainer<?> registry =
      new GenericContainer<>(REGISTRY_IMAGE)
          .withNetwork(network)
          .dependsOn(kafka)
          .withExposedPorts(8081)
          .withEnv("SCHEMA_REGISTRY_HOST_NAME", "schema-registry")
          .withEnv("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081")
          .withEnv("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "PLAINTEXT://kafka:19092")
          .waitingFor(Wait.forHttp("/subjects").forStatusCode(200))
          .withStartupTimeout(Duration.ofMinutes(3));
  private final GenericContainer<?> minio =
      new GenericContainer<>(MINIO_IMAGE)
          .withCommand("server", "/data")
          .withEnv("MINIO_ROOT_USER", MINIO_USER)
          .withEnv("MINIO_ROOT_PASSWORD", MINIO_PASSWORD)
          .withExposedPorts(9000)
          .waitingFor(Wait.forHttp("/minio/health/live").forPort(9000));
  private final PipelineStack stack;

  ContainerEnvironment(Path dir) throws IOException {
    kafka.start();
    registry.start();
    minio.start();
    stack =
        PipelineStack.connect(
            new PipelineStack.Endpoints(
                kafka.getBootstrapServers(),
                "http://" + registry.getHost() + ":" + registry.getMappedPort(8081),
                "http://" + minio.getHost() + ":" + minio.getMappedPort(9000),
                MINIO_USER,
                MINIO_PASSWORD,
                "us-east-1"),
            dir,
            0);
  }

  @Override
  public PipelineStack stack() {
    return stack;
  }

  @Override
  public void close() {
    stack.close();
    minio.stop();
    registry.stop();
    kafka.stop();
    network.close();
  }
}
