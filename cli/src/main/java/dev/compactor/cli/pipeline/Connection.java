package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.runtime.KafkaClientProperties;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

/**
 * How {@code submit}, {@code status} and {@code watch} reach a running pipeline: each endpoint from
 * its flag, else its {@code COMPACTOR_*} environment variable (as {@code compactor up} prints
 * them), else the docker-compose default. Credentials likewise ({@code COMPACTOR_API_TOKEN}, {@code
 * COMPACTOR_SCHEMA_REGISTRY_USER_INFO}, {@code COMPACTOR_KAFKA_PROPERTIES_FILE}), else read from
 * the data directory of a local {@code compactor up} ({@code --data}, default {@link
 * #DEFAULT_DATA}), where the stack keeps them owner-only.
 *
 * @param apiToken bearer token for the job API's writes, "" when unknown
 * @param registryUserInfo registry {@code user:password}, "" for none
 * @param kafkaPropertiesFile Kafka client security settings, "" for none
 */
record Connection(
    String bootstrap,
    String registry,
    String http,
    String apiToken,
    String registryUserInfo,
    String kafkaPropertiesFile) {
  static final Set<String> OPTIONS = Set.of("bootstrap", "registry", "http", "data");

  /** The data directory {@code compactor up} uses without {@code --data}. */
  static final Path DEFAULT_DATA =
      Path.of(System.getProperty("user.home"), ".cache", "compactor", "stack");

  static Connection from(Args args) {
    Path data = Path.of(args.string("data", DEFAULT_DATA.toString()));
    Path stack = data.resolve(PipelineStack.STACK_DIR);
    String registryPassword = read(stack.resolve("registry-password"));
    Path kafkaFile = stack.resolve(dev.compactor.infra.LocalStack.KAFKA_CLIENT_PROPERTIES);
    return new Connection(
        args.string("bootstrap", env("COMPACTOR_KAFKA_BOOTSTRAP", "localhost:9092")),
        args.string("registry", env("COMPACTOR_SCHEMA_REGISTRY_URL", "http://localhost:8081")),
        args.string("http", env("COMPACTOR_ORCHESTRATOR_URL", "http://localhost:8080")),
        env("COMPACTOR_API_TOKEN", read(data.resolve(PipelineStack.API_TOKEN_FILE))),
        env(
            "COMPACTOR_SCHEMA_REGISTRY_USER_INFO",
            registryPassword.isEmpty()
                ? ""
                : dev.compactor.infra.LocalStack.REGISTRY_USER + ":" + registryPassword),
        env(KafkaClientProperties.ENV, Files.isReadable(kafkaFile) ? kafkaFile.toString() : ""));
  }

  /** A client of the pipeline's Kafka and registry with these credentials. */
  PipelineClient client() {
    return new PipelineClient(
        bootstrap, registry, registryUserInfo, KafkaClientProperties.load(kafkaPropertiesFile));
  }

  /** Splits a leading positional argument (a job id) from the options. */
  static String[] positional(String[] argv, int max, String[] out) throws UsageException {
    int n = 0;
    while (n < argv.length && !argv[n].startsWith("--")) {
      n++;
    }
    if (n > max) {
      throw new UsageException("unexpected argument '" + argv[max] + "'");
    }
    System.arraycopy(argv, 0, out, 0, n);
    return Arrays.copyOfRange(argv, n, argv.length);
  }

  private static String read(Path file) {
    try {
      return Files.isReadable(file) ? Files.readString(file, StandardCharsets.UTF_8).trim() : "";
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isBlank() ? fallback : v;
  }
}
