package dev.compactor.runtime;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * The extra settings every Kafka client the project makes (producers, consumers, admin, Streams)
 * takes from the file named by {@code COMPACTOR_KAFKA_PROPERTIES_FILE}: {@code security.protocol},
 * {@code sasl.*}, {@code ssl.*} and any other client property, passed through unchanged. The file's
 * values are applied last, over the project's own defaults, except {@code bootstrap.servers} which
 * stays with {@code COMPACTOR_KAFKA_BOOTSTRAP}.
 */
public final class KafkaClientProperties {
  /** The environment variable naming the file. */
  public static final String ENV = "COMPACTOR_KAFKA_PROPERTIES_FILE";

  private KafkaClientProperties() {}

  /**
   * Reads {@code file}; an empty or null name gives no properties.
   *
   * @throws IllegalArgumentException when the file cannot be read
   */
  public static Properties load(String file) {
    Properties p = new Properties();
    if (file == null || file.isBlank()) {
      return p;
    }
    try (Reader r = Files.newBufferedReader(Path.of(file), StandardCharsets.UTF_8)) {
      p.load(r);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          ENV + ": could not read Kafka client properties " + file + ": " + e.getMessage(), e);
    }
    p.remove("bootstrap.servers");
    return p;
  }

  /** The pass-through properties of a stage worker's config. */
  public static Properties of(StageConfig config) {
    return load(config.get(StageConfig.KAFKA_PROPERTIES_FILE));
  }

  /** Copies {@code extra} over {@code target}; returns {@code target}. */
  public static Properties apply(Properties target, Properties extra) {
    extra.forEach(target::put);
    return target;
  }
}
