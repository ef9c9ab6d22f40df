package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** COMPACTOR_KAFKA_PROPERTIES_FILE passes security settings through to every Kafka client. */
class KafkaClientPropertiesTest {
  @TempDir Path tmp;

  @Test
  void passesSecuritySettingsThroughButNotTheBootstrap() throws Exception {
    Path f = tmp.resolve("kafka.properties");
    Files.writeString(
        f,
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nssl.truststore.location=/x\n"
            + "bootstrap.servers=elsewhere:9092\n");
    StageConfig c =
        StageConfig.of(
            Map.of(
                "COMPACTOR_S3_ACCESS_KEY", "k",
                "COMPACTOR_S3_SECRET_KEY", "s",
                "COMPACTOR_STAGE", "prune",
                "COMPACTOR_KAFKA_PROPERTIES_FILE", f.toString()));
    Properties p = KafkaClientProperties.of(c);
    assertEquals("SASL_SSL", p.get("security.protocol"));
    assertEquals("PLAIN", p.get("sasl.mechanism"));
    assertEquals("/x", p.get("ssl.truststore.location"));
    assertNull(p.get("bootstrap.servers"), "the bootstrap stays with COMPACTOR_KAFKA_BOOTSTRAP");
    Properties target = new Properties();
    target.put("security.protocol", "PLAINTEXT");
    KafkaClientProperties.apply(target, p);
    assertEquals("SASL_SSL", target.get("security.protocol"), "the file wins over defaults");
  }

  @Test
  void aMissingFileIsAClearError() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> KafkaClientProperties.load(tmp.resolve("nope").toString()));
    assertTrue(e.getMessage().contains(KafkaClientProperties.ENV), e.getMessage());
  }

  @Test
  void unsetMeansNone() {
    assertTrue(KafkaClientProperties.load("").isEmpty());
  }
}
