package dev.compactor.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Production JVMs do not get the test-only {@code -Dorg.apache.avro.SERIALIZABLE_PACKAGES} flag, so
 * this test reads an event in a fresh JVM without it: Avro 1.12 refuses, and {@link AvroClassTrust}
 * fixes it.
 */
class AvroClassTrustTest {

  @Test
  void avroRefusesOurClassesWithoutTheTrustAndReadsThemWithIt() throws Exception {
    assertEquals(3, probe("plain"), "Avro 1.12 should refuse dev.compactor classes by default");
    assertEquals(0, probe("trust"), "AvroClassTrust should make the event readable");
  }

  private static int probe(String mode) throws IOException, InterruptedException {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process process =
        new ProcessBuilder(
                List.of(
                    java.toString(),
                    "-cp",
                    System.getProperty("java.class.path"),
                    AvroClassTrustProbe.class.getName(),
                    mode))
            .inheritIO()
            .start();
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("probe JVM did not finish in 60 s");
    }
    return process.exitValue();
  }
}
