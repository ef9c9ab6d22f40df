package dev.compactor.services.orchestrator;

import dev.compactor.core.recipe.RecipeLimits;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * The orchestrator's settings, read from {@code COMPACTOR_*} environment variables like the stage
 * services'. Every key is declared once below with its default, validator and doc; {@link #keys()}
 * is the list docker-compose is checked against. All problems are reported together.
 */
public final class OrchestratorConfig {

  /**
   * One setting.
   *
   * @param env environment variable name
   * @param defaultValue used when unset; null means required
   * @param check returns what was expected when a value is invalid
   * @param doc what it does
   */
  public record Key(
      String env, String defaultValue, Function<String, Optional<String>> check, String doc) {}

  private static final Pattern HOST_PORTS =
      Pattern.compile("[A-Za-z0-9.\\-]+:\\d{1,5}(,[A-Za-z0-9.\\-]+:\\d{1,5})*");

  public static final Key KAFKA_BOOTSTRAP =
      new Key(
          "COMPACTOR_KAFKA_BOOTSTRAP",
          "localhost:9092",
          v -> HOST_PORTS.matcher(v).matches() ? Optional.empty() : Optional.of("host:port[,...]"),
          "Kafka bootstrap servers.");
  public static final Key SCHEMA_REGISTRY_URL =
      new Key(
          "COMPACTOR_SCHEMA_REGISTRY_URL",
          "http://localhost:8081",
          v -> v.matches("https?://\\S+") ? Optional.empty() : Optional.of("an http(s):// URL"),
          "Base URL of the Confluent-compatible schema registry.");
  public static final Key HTTP_PORT =
      new Key(
          "COMPACTOR_HTTP_PORT",
          "8080",
          v -> intIn(v, 0, 65_535),
          "Port of the job status API (GET /jobs, /jobs/{id}, /health); 0 = any free port.");
  public static final Key HTTP_BIND =
      new Key(
          "COMPACTOR_HTTP_BIND",
          "127.0.0.1",
          v -> v.matches("[A-Za-z0-9.:\\-]+") ? Optional.empty() : Optional.of("an address"),
          "Address the job API listens on; loopback by default, 0.0.0.0 for all interfaces.");
  public static final Key API_TOKEN =
      new Key(
          "COMPACTOR_API_TOKEN",
          "",
          v -> Optional.empty(),
          "Bearer token every write (POST /jobs) must carry; empty = writes refused. Reads stay"
              + " open. Never logged.");
  public static final Key SCHEMA_REGISTRY_USER_INFO =
      new Key(
          "COMPACTOR_SCHEMA_REGISTRY_USER_INFO",
          "",
          v -> v.isEmpty() || v.contains(":") ? Optional.empty() : Optional.of("user:password"),
          "user:password for the schema registry's HTTP basic auth; empty = none.");
  public static final Key KAFKA_PROPERTIES_FILE =
      new Key(
          "COMPACTOR_KAFKA_PROPERTIES_FILE",
          "",
          v -> Optional.empty(),
          "Properties file passed through to every Kafka client (security.protocol, sasl.*,"
              + " ssl.*); empty = none.");
  public static final Key SOURCE_FILE_ROOTS =
      new Key(
          "COMPACTOR_SOURCE_FILE_ROOTS",
          "",
          v -> Optional.empty(),
          "Directories a submitted file:// model or calibration source must lie in (':' or ','"
              + " separated); empty = none. The ingestion stage checks again where it reads.");
  public static final Key SOURCE_BUCKETS =
      new Key(
          "COMPACTOR_SOURCE_BUCKETS",
          "compactor-artifacts,compactor-data",
          v ->
              v.matches("[a-z0-9.\\-]+(,\\s*[a-z0-9.\\-]+)*")
                  ? Optional.empty()
                  : Optional.of("bucket[,bucket...]"),
          "Buckets a submitted s3:// model or calibration source must be in.");
  public static final Key ADVERTISED_HOST =
      new Key(
          "COMPACTOR_ADVERTISED_HOST",
          "localhost",
          v -> v.matches("[A-Za-z0-9.\\-]+") ? Optional.empty() : Optional.of("a host name"),
          "Host name other orchestrator instances use to reach this one's HTTP API.");
  public static final Key STATE_DIR =
      new Key(
          "COMPACTOR_STATE_DIR",
          Path.of(System.getProperty("java.io.tmpdir"), "compactor-orchestrator").toString(),
          v -> v.isBlank() ? Optional.of("a directory path") : Optional.empty(),
          "Directory of the job-state store (RocksDB); rebuilt from its changelog when lost.");
  public static final Key APPLICATION_ID =
      new Key(
          "COMPACTOR_APPLICATION_ID",
          "compactor-orchestrator",
          v ->
              v.matches("[A-Za-z0-9._\\-]+")
                  ? Optional.empty()
                  : Optional.of("letters, digits, . _ -"),
          "Kafka Streams application id: consumer group and prefix of internal topics.");
  public static final Key REPLICATION_FACTOR =
      new Key(
          "COMPACTOR_REPLICATION_FACTOR",
          "1",
          v -> intIn(v, 1, 10),
          "Replication factor of the topics the orchestrator creates and of its internal topics.");
  public static final Key CREATE_TOPICS =
      new Key(
          "COMPACTOR_CREATE_TOPICS",
          "true",
          v ->
              v.equals("true") || v.equals("false")
                  ? Optional.empty()
                  : Optional.of("true or false"),
          "Create every Compactor topic that is missing at start-up.");

  public static final Key MAX_ATTEMPTS =
      new Key(
          "COMPACTOR_MAX_ATTEMPTS",
          String.valueOf(JobTopology.DEFAULT_MAX_ATTEMPTS),
          v -> intIn(v, 1, 100),
          "Requests per step before a retriable StageFailed fails the job.");

  public static final Key LIMIT_CALIBRATION_SAMPLES =
      limit(RecipeLimits.SAMPLES_ENV, RecipeLimits.DEFAULTS.maxCalibrationSamples(), "samples");
  public static final Key LIMIT_SEQ_LEN =
      limit(
          RecipeLimits.SEQ_LEN_ENV,
          RecipeLimits.DEFAULTS.maxSeqLen(),
          "seq_len (calibration and evaluation windows)");
  public static final Key LIMIT_CALIBRATION_TOKENS =
      limit(
          RecipeLimits.TOKENS_ENV,
          RecipeLimits.DEFAULTS.maxCalibrationTokens(),
          "calibration samples × seq_len");
  public static final Key LIMIT_DISTILL_STEPS =
      limit(
          RecipeLimits.DISTILL_STEPS_ENV,
          RecipeLimits.DEFAULTS.maxDistillSteps(),
          "steps of one distill stage");

  private static Key limit(String env, long dflt, String what) {
    return new Key(
        env,
        String.valueOf(dflt),
        v -> {
          try {
            return Long.parseLong(v.strip()) >= 1
                ? Optional.empty()
                : Optional.of("a positive integer");
          } catch (NumberFormatException e) {
            return Optional.of("a positive integer");
          }
        },
        "Largest recipe " + what + " accepted; a recipe above it is REJECTED with the limit.");
  }

  private static final List<Key> KEYS =
      List.of(
          KAFKA_BOOTSTRAP,
          SCHEMA_REGISTRY_URL,
          HTTP_PORT,
          HTTP_BIND,
          API_TOKEN,
          SCHEMA_REGISTRY_USER_INFO,
          KAFKA_PROPERTIES_FILE,
          SOURCE_FILE_ROOTS,
          SOURCE_BUCKETS,
          ADVERTISED_HOST,
          STATE_DIR,
          APPLICATION_ID,
          REPLICATION_FACTOR,
          CREATE_TOPICS,
          MAX_ATTEMPTS,
          LIMIT_CALIBRATION_SAMPLES,
          LIMIT_SEQ_LEN,
          LIMIT_CALIBRATION_TOKENS,
          LIMIT_DISTILL_STEPS);

  private final Map<Key, String> values;

  private OrchestratorConfig(Map<Key, String> values) {
    this.values = values;
  }

  /** Every key, in documentation order. */
  public static List<Key> keys() {
    return KEYS;
  }

  /** Reads the process environment. */
  public static OrchestratorConfig fromEnvironment() {
    return of(System.getenv(), false);
  }

  /**
   * Builds a config from values keyed by environment variable name; unknown {@code COMPACTOR_*}
   * names are errors (typos).
   *
   * @throws IllegalArgumentException listing every invalid, missing or unknown value
   */
  public static OrchestratorConfig of(Map<String, String> env) {
    return of(env, true);
  }

  private static OrchestratorConfig of(Map<String, String> env, boolean strict) {
    List<String> problems = new ArrayList<>();
    Map<Key, String> values = new LinkedHashMap<>();
    for (Key key : KEYS) {
      String v = env.getOrDefault(key.env(), key.defaultValue());
      if (v == null) {
        problems.add(key.env() + ": required, not set (" + key.doc() + ")");
        continue;
      }
      key.check()
          .apply(v)
          .ifPresentOrElse(
              expected ->
                  problems.add(key.env() + ": expected " + expected + " but found \"" + v + "\""),
              () -> values.put(key, v));
    }
    if (strict) {
      env.keySet().stream()
          .filter(name -> KEYS.stream().noneMatch(k -> k.env().equals(name)))
          .forEach(name -> problems.add(name + ": unknown setting"));
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(
          "invalid orchestrator configuration:\n  " + String.join("\n  ", problems));
    }
    return new OrchestratorConfig(values);
  }

  /** The recipe limits this orchestrator enforces. */
  public RecipeLimits recipeLimits() {
    return RecipeLimits.from(
        env ->
            KEYS.stream()
                .filter(k -> k.env().equals(env))
                .findFirst()
                .map(values::get)
                .orElse(null));
  }

  public String get(Key key) {
    return values.get(key);
  }

  public int getInt(Key key) {
    return Integer.parseInt(values.get(key));
  }

  public boolean getBoolean(Key key) {
    return Boolean.parseBoolean(values.get(key));
  }

  private static Optional<String> intIn(String v, int min, int max) {
    try {
      int i = Integer.parseInt(v);
      if (i >= min && i <= max) {
        return Optional.empty();
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    return Optional.of("an integer in [" + min + ", " + max + "]");
  }
}
