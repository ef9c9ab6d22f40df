package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StageConfigTest {
  private static final Map<String, String> MINIMAL =
      Map.of(
          "COMPACTOR_STAGE", "prune",
          "COMPACTOR_S3_ACCESS_KEY", "ak",
          "COMPACTOR_S3_SECRET_KEY", "very-secret");

  @Test
  void defaultsApplyAndEnvironmentIsRead() {
    StageConfig c = StageConfig.load(MINIMAL, Optional.empty());
    assertEquals("prune", c.get(StageConfig.STAGE));
    assertEquals("localhost:9092", c.get(StageConfig.KAFKA_BOOTSTRAP));
    assertEquals(300_000, c.get(StageConfig.MAX_POLL_INTERVAL_MS));
    assertEquals("compactor-artifacts", c.get(StageConfig.S3_BUCKET));
  }

  @Test
  void propertiesFileOverridesEnvironment(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("stage.properties");
    Files.writeString(
        file, "compactor.kafka.bootstrap=broker-1:9093,broker-2:9093\nCOMPACTOR_DEVICE=cuda:1\n");
    StageConfig c = StageConfig.load(MINIMAL, Optional.of(file));
    assertEquals("broker-1:9093,broker-2:9093", c.get(StageConfig.KAFKA_BOOTSTRAP));
    assertEquals("cuda:1", c.get(StageConfig.DEVICE_NAME));
  }

  @Test
  void everyProblemIsReportedAtOnceAndSecretsAreNotEchoed() {
    StageConfig.ConfigException e =
        assertThrows(
            StageConfig.ConfigException.class,
            () ->
                StageConfig.load(
                    Map.of(
                        "COMPACTOR_STAGE", "Not A Stage",
                        "COMPACTOR_MAX_POLL_INTERVAL_MS", "soon",
                        "COMPACTOR_S3_ENDPOINT", "ftp://x"),
                    Optional.empty()));
    assertEquals(5, e.problems().size(), e.getMessage());
    assertTrue(e.getMessage().contains("COMPACTOR_S3_SECRET_KEY: required, not set"));
    assertTrue(
        e.getMessage().contains("COMPACTOR_MAX_POLL_INTERVAL_MS: expected int, found 'soon'"));
    assertTrue(e.getMessage().contains("COMPACTOR_S3_ENDPOINT: expected an http(s)"));
    StageConfig c = StageConfig.load(MINIMAL, Optional.empty());
    assertFalse(c.describe().contains("very-secret"));
  }

  @Test
  void unknownStageAndTypoKeysAreRejected(@TempDir Path dir) throws Exception {
    StageConfig.ConfigException stage =
        assertThrows(
            StageConfig.ConfigException.class,
            () ->
                StageConfig.of(
                    Map.of(
                        "COMPACTOR_STAGE", "compress",
                        "COMPACTOR_S3_ACCESS_KEY", "a",
                        "COMPACTOR_S3_SECRET_KEY", "b")));
    assertTrue(stage.getMessage().contains("compress"), stage.getMessage());
    Path file = dir.resolve("typo.properties");
    Files.writeString(file, "compactor.kafka.bootstrapp=x:1\n");
    StageConfig.ConfigException e =
        assertThrows(
            StageConfig.ConfigException.class, () -> StageConfig.load(MINIMAL, Optional.of(file)));
    assertTrue(e.getMessage().contains("compactor.kafka.bootstrapp"));
  }

  @Test
  void documentationListsEveryKeyWithDefaultOrRequired() {
    String doc = StageConfig.documentation();
    for (ConfigKey<?> key : StageConfig.keys()) {
      assertTrue(doc.contains("`" + key.envName() + "`"), key.envName());
      assertTrue(doc.contains("`" + key.propertyName() + "`"), key.propertyName());
    }
    assertTrue(doc.contains("*required*"));
  }
}
