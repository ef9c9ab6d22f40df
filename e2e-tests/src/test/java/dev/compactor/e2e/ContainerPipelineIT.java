package dev.compactor.e2e;

import java.nio.file.Path;
import org.testcontainers.junit.jupiter.Testcontainers;

/**
 * The same scenarios on the real images (Kafka, Confluent Schema Registry, MinIO); needs Docker.
 */
@Testcontainers(disabledWithoutDocker = true)
class ContainerPipelineIT extends PipelineScenarios {
  @Override
  PipelineEnvironment start(Path dir) throws Exception {
    return new ContainerEnvironment(dir);
  }
}
