package dev.compactor.cli.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.compactor.cli.Args;
import dev.compactor.infra.LocalStack;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI finds a local stack's credentials in its data directory. */
class ConnectionTest {
  @TempDir Path data;

  @Test
  void readsTheTokenRegistryUserAndKafkaFileFromTheDataDir() throws Exception {
    assumeTrue(System.getenv("COMPACTOR_API_TOKEN") == null, "environment overrides the data dir");
    assumeTrue(System.getenv("COMPACTOR_SCHEMA_REGISTRY_USER_INFO") == null);
    assumeTrue(System.getenv("COMPACTOR_KAFKA_PROPERTIES_FILE") == null);
    Files.writeString(data.resolve(PipelineStack.API_TOKEN_FILE), "tok-123\n");
    Path stack = Files.createDirectories(data.resolve(PipelineStack.STACK_DIR));
    Files.writeString(stack.resolve("registry-password"), "pw\n");
    Files.writeString(stack.resolve(LocalStack.KAFKA_CLIENT_PROPERTIES), "security.protocol=X\n");
    Connection c =
        Connection.from(
            Args.parse(new String[] {"--data", data.toString()}, Connection.OPTIONS, Set.of()));
    assertEquals("tok-123", c.apiToken());
    assertEquals(LocalStack.REGISTRY_USER + ":pw", c.registryUserInfo());
    assertEquals(
        stack.resolve(LocalStack.KAFKA_CLIENT_PROPERTIES).toString(), c.kafkaPropertiesFile());
  }

  @Test
  void anEmptyDataDirMeansNoCredentials() throws Exception {
    assumeTrue(System.getenv("COMPACTOR_API_TOKEN") == null);
    Connection c =
        Connection.from(
            Args.parse(new String[] {"--data", data.toString()}, Connection.OPTIONS, Set.of()));
    assertEquals("", c.apiToken());
  }
}
