package dev.compactor.runtime;

import dev.compactor.schemas.Topics;
import java.io.IOException;
import java.io.Reader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * The typed settings of a stage service. Every key is declared once below, with its doc, default
 * and validator; {@link #documentation()} renders them for the README and docker-compose.
 *
 * <p>Values come from, lowest precedence first: the defaults, environment variables ({@code
 * COMPACTOR_KAFKA_BOOTSTRAP}, ...), and a properties file ({@code compactor.kafka.bootstrap=...})
 * named by {@code COMPACTOR_CONFIG_FILE}. Every value is validated when the config is built, and
 * all problems are reported together; unknown {@code compactor.*} keys in the file are errors
 * (typos).
 */
public final class StageConfig {
  private static final Pattern HOST_PORT_LIST =
      Pattern.compile("[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}(,[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5})*");
  private static final Pattern DEVICE = Pattern.compile("cpu|gpu|cuda(:\\d+)?");

  /** Environment variable naming an optional properties file that overrides the environment. */
  public static final String CONFIG_FILE_ENV = "COMPACTOR_CONFIG_FILE";

  public static final ConfigKey<String> KAFKA_BOOTSTRAP =
      ConfigKey.string(
          "COMPACTOR_KAFKA_BOOTSTRAP",
          "localhost:9092",
          v ->
              HOST_PORT_LIST.matcher(v).matches()
                  ? Optional.empty()
                  : Optional.of("host:port[,host:port...]"),
          "Kafka bootstrap servers.");
  public static final ConfigKey<String> SCHEMA_REGISTRY_URL =
      ConfigKey.string(
          "COMPACTOR_SCHEMA_REGISTRY_URL",
          "http://localhost:8081",
          StageConfig::httpUrl,
          "Base URL of the Confluent-compatible schema registry.");
  public static final ConfigKey<String> SCHEMA_REGISTRY_USER_INFO =
      ConfigKey.optionalSecret(
          "COMPACTOR_SCHEMA_REGISTRY_USER_INFO",
          "user:password for the schema registry's HTTP basic auth (Confluent's"
              + " basic.auth.user.info); empty = none. Never logged.");
  public static final ConfigKey<String> S3_ENDPOINT =
      ConfigKey.string(
          "COMPACTOR_S3_ENDPOINT",
          "http://localhost:9000",
          StageConfig::httpUrl,
          "S3 (MinIO) endpoint URL; path-style addressing is used.");
  public static final ConfigKey<String> S3_ACCESS_KEY =
      ConfigKey.string(
          "COMPACTOR_S3_ACCESS_KEY",
          null,
          v -> v.isBlank() ? Optional.of("a non-empty access key") : Optional.empty(),
          "S3 access key id.");
  public static final ConfigKey<String> S3_SECRET_KEY =
      ConfigKey.secret("COMPACTOR_S3_SECRET_KEY", "S3 secret key (never logged).");
  public static final ConfigKey<String> S3_REGION =
      ConfigKey.string(
          "COMPACTOR_S3_REGION", "us-east-1", ConfigKey.Validator.any(), "S3 region to sign for.");
  public static final ConfigKey<String> S3_BUCKET =
      ConfigKey.string(
          "COMPACTOR_S3_BUCKET",
          "compactor-artifacts",
          v -> S3Uri.bucketProblem(v),
          "Bucket holding artifacts and completion markers.");
  public static final ConfigKey<String> STAGE =
      ConfigKey.string(
          "COMPACTOR_STAGE",
          null,
          v ->
              Topics.STAGES.contains(v) ? Optional.empty() : Optional.of("one of " + Topics.STAGES),
          "Stage this worker runs; selects its request topic and consumer group (see Topics).");
  public static final ConfigKey<String> WORK_DIR =
      ConfigKey.string(
          "COMPACTOR_WORK_DIR",
          Path.of(System.getProperty("java.io.tmpdir"), "compactor-work").toString(),
          v -> v.isBlank() ? Optional.of("a directory path") : Optional.empty(),
          "Local scratch directory for downloaded inputs and produced outputs (one sub-directory per"
              + " job, deleted afterwards).");
  public static final ConfigKey<String> DEVICE_NAME =
      ConfigKey.string(
          "COMPACTOR_DEVICE",
          "cpu",
          v -> DEVICE.matcher(v).matches() ? Optional.empty() : Optional.of("cpu, gpu or cuda:<n>"),
          "Compute device for the stage's tensor math.");
  public static final ConfigKey<String> WORKER_ID =
      ConfigKey.string(
          "COMPACTOR_WORKER_ID",
          "auto",
          v ->
              v.matches("[A-Za-z0-9._@-]{1,100}")
                  ? Optional.empty()
                  : Optional.of("letters, digits, '.', '_', '@', '-' (at most 100)"),
          "Identity of this worker in events and its transactional id; 'auto' = pid@host.");
  public static final ConfigKey<Integer> MAX_POLL_INTERVAL_MS =
      ConfigKey.integer(
          "COMPACTOR_MAX_POLL_INTERVAL_MS",
          300_000,
          1_000,
          Integer.MAX_VALUE,
          "Kafka max.poll.interval.ms. Jobs may run far longer: the worker keeps polling with its"
              + " partitions paused.");
  public static final ConfigKey<Integer> SESSION_TIMEOUT_MS =
      ConfigKey.integer(
          "COMPACTOR_SESSION_TIMEOUT_MS",
          45_000,
          1_000,
          3_600_000,
          "Kafka session.timeout.ms: how fast a dead worker's jobs move to another worker.");
  public static final ConfigKey<Integer> POLL_TIMEOUT_MS =
      ConfigKey.integer(
          "COMPACTOR_POLL_TIMEOUT_MS",
          500,
          10,
          60_000,
          "Longest single poll of the request topic. New requests and finished jobs end a poll"
              + " at once; this only bounds how late the end of a retry backoff is noticed.");
  public static final ConfigKey<Long> MEMORY_BUDGET_BYTES =
      ConfigKey.longValue(
          "COMPACTOR_MEMORY_BUDGET_BYTES",
          0,
          0,
          Long.MAX_VALUE,
          "Bytes one step may use on this worker; a step whose estimated memory is above it is"
              + " refused with the estimate before it loads anything (and the whole job is refused"
              + " when it starts). 0: 80% of the machine's physical memory.");
  public static final ConfigKey<Long> PARENT_PID =
      ConfigKey.longValue(
          "COMPACTOR_PARENT_PID",
          0,
          0,
          Long.MAX_VALUE,
          "Exit when this process ends (set by `compactor up`/`demo` for the workers it starts);"
              + " 0 = none.");
  public static final ConfigKey<Integer> PROGRESS_INTERVAL_MS =
      ConfigKey.integer(
          "COMPACTOR_PROGRESS_INTERVAL_MS",
          2_000,
          100,
          3_600_000,
          "How often a running step sends StageProgress (fraction, message) to"
              + " compactor.stage.progress, for `watch` and `demo`.");
  public static final ConfigKey<Integer> MAX_DELIVERIES =
      ConfigKey.integer(
          "COMPACTOR_MAX_DELIVERIES",
          8,
          1,
          1_000,
          "How often one request may be started before its worker answers StageFailed instead of"
              + " trying again: bounds redeliveries after storage faults, lost partitions and"
              + " worker crashes (counted in S3, across processes). That StageFailed is retriable,"
              + " so the orchestrator's COMPACTOR_MAX_ATTEMPTS then applies.");
  public static final ConfigKey<Integer> RETRY_ATTEMPTS =
      ConfigKey.integer(
          "COMPACTOR_RETRY_ATTEMPTS",
          6,
          1,
          100,
          "Tries per S3 or Kafka operation on transient faults (I/O errors, 5xx) before giving up.");
  public static final ConfigKey<Long> RETRY_INITIAL_BACKOFF_MS =
      ConfigKey.longValue(
          "COMPACTOR_RETRY_INITIAL_BACKOFF_MS",
          200,
          1,
          600_000,
          "First retry delay; doubled on each further retry, with jitter.");
  public static final ConfigKey<Long> RETRY_MAX_BACKOFF_MS =
      ConfigKey.longValue(
          "COMPACTOR_RETRY_MAX_BACKOFF_MS", 10_000, 1, 3_600_000, "Cap on one retry delay.");
  public static final ConfigKey<Integer> HEALTH_PORT =
      ConfigKey.integer(
          "COMPACTOR_HEALTH_PORT",
          -1,
          -1,
          65_535,
          "Port of the HTTP health endpoint (GET /health, JSON); -1 = off, 0 = any free port.");
  public static final ConfigKey<String> HEALTH_BIND =
      ConfigKey.string(
          "COMPACTOR_HEALTH_BIND",
          "127.0.0.1",
          v -> v.matches("[A-Za-z0-9.:\\-]+") ? Optional.empty() : Optional.of("an address"),
          "Address the health endpoint listens on; loopback by default, 0.0.0.0 for all"
              + " interfaces (containers, where a probe connects from outside).");
  public static final ConfigKey<String> SOURCE_FILE_ROOTS =
      ConfigKey.string(
          "COMPACTOR_SOURCE_FILE_ROOTS",
          "",
          ConfigKey.Validator.any(),
          "Directories a job's file:// model or calibration source must lie in (canonical path,"
              + " symlinks followed), separated by ':' or ','; empty = no file:// source allowed.");
  public static final ConfigKey<String> SOURCE_BUCKETS =
      ConfigKey.string(
          "COMPACTOR_SOURCE_BUCKETS",
          "",
          v ->
              v.isBlank()
                      || java.util.Arrays.stream(v.split(","))
                          .allMatch(b -> S3Uri.bucketProblem(b.trim()).isEmpty())
                  ? Optional.empty()
                  : Optional.of("comma-separated bucket names"),
          "Buckets a job's s3:// model or calibration source must be in (comma-separated); empty"
              + " = the artifact bucket and compactor-data.");
  public static final ConfigKey<String> KAFKA_PROPERTIES_FILE =
      ConfigKey.string(
          "COMPACTOR_KAFKA_PROPERTIES_FILE",
          "",
          ConfigKey.Validator.any(),
          "Properties file passed through to every Kafka client (security.protocol, sasl.*,"
              + " ssl.*, ...); empty = none.");

  private static final List<ConfigKey<?>> KEYS =
      List.of(
          KAFKA_BOOTSTRAP,
          SCHEMA_REGISTRY_URL,
          SCHEMA_REGISTRY_USER_INFO,
          S3_ENDPOINT,
          S3_ACCESS_KEY,
          S3_SECRET_KEY,
          S3_REGION,
          S3_BUCKET,
          STAGE,
          WORK_DIR,
          DEVICE_NAME,
          WORKER_ID,
          MAX_POLL_INTERVAL_MS,
          SESSION_TIMEOUT_MS,
          POLL_TIMEOUT_MS,
          MAX_DELIVERIES,
          PROGRESS_INTERVAL_MS,
          PARENT_PID,
          MEMORY_BUDGET_BYTES,
          RETRY_ATTEMPTS,
          RETRY_INITIAL_BACKOFF_MS,
          RETRY_MAX_BACKOFF_MS,
          HEALTH_PORT,
          HEALTH_BIND,
          SOURCE_FILE_ROOTS,
          SOURCE_BUCKETS,
          KAFKA_PROPERTIES_FILE);

  /** The bucket of source models and calibration data allowed by default. */
  public static final String DEFAULT_DATA_BUCKET = "compactor-data";

  private final Map<ConfigKey<?>, Object> values;
  private final Map<ConfigKey<?>, String> raw;

  private StageConfig(Map<ConfigKey<?>, String> raw) {
    List<String> problems = new ArrayList<>();
    Map<ConfigKey<?>, Object> parsed = new LinkedHashMap<>();
    for (ConfigKey<?> key : KEYS) {
      String text = raw.get(key);
      if (text == null) {
        text = key.defaultValue().orElse(null);
      }
      if (text == null) {
        problems.add(key.envName() + ": required, not set (" + key.doc() + ")");
        continue;
      }
      try {
        parsed.put(key, key.parse(text));
      } catch (IllegalArgumentException e) {
        problems.add(e.getMessage());
      }
    }
    if (!problems.isEmpty()) {
      throw new ConfigException(problems);
    }
    this.values = Collections.unmodifiableMap(parsed);
    this.raw = Collections.unmodifiableMap(new LinkedHashMap<>(raw));
  }

  /** Every key, in documentation order. */
  public static List<ConfigKey<?>> keys() {
    return KEYS;
  }

  /** Reads the process environment and the file named by {@code COMPACTOR_CONFIG_FILE}, if set. */
  public static StageConfig fromEnvironment() {
    Map<String, String> env = System.getenv();
    String file = env.get(CONFIG_FILE_ENV);
    return load(env, Optional.ofNullable(file).filter(s -> !s.isBlank()).map(Path::of));
  }

  /**
   * Builds a config from an environment map, overridden by an optional properties file.
   *
   * @throws ConfigException listing every missing or invalid value, or an unreadable file
   */
  public static StageConfig load(Map<String, String> env, Optional<Path> propertiesFile) {
    Map<ConfigKey<?>, String> raw = new LinkedHashMap<>();
    for (ConfigKey<?> key : KEYS) {
      String v = env.get(key.envName());
      if (v != null) {
        raw.put(key, v);
      }
    }
    if (propertiesFile.isPresent()) {
      raw.putAll(readProperties(propertiesFile.get()));
    }
    return new StageConfig(raw);
  }

  /**
   * Builds a config from explicit values keyed by environment or property name (tests, embedding).
   */
  public static StageConfig of(Map<String, String> values) {
    Map<ConfigKey<?>, String> raw = new LinkedHashMap<>();
    List<String> problems = new ArrayList<>();
    values.forEach(
        (name, v) ->
            lookup(name).ifPresentOrElse(k -> raw.put(k, v), () -> problems.add(unknown(name))));
    if (!problems.isEmpty()) {
      throw new ConfigException(problems);
    }
    return new StageConfig(raw);
  }

  /** A copy with one value replaced (validated like any other). */
  public StageConfig with(ConfigKey<?> key, String value) {
    Map<ConfigKey<?>, String> copy = new LinkedHashMap<>(raw);
    copy.put(key, value);
    return new StageConfig(copy);
  }

  /** The validated value of {@code key}. */
  @SuppressWarnings("unchecked")
  public <T> T get(ConfigKey<T> key) {
    return (T) values.get(key);
  }

  /** Effective settings, one {@code NAME=value} per line, secrets masked; for start-up logs. */
  public String describe() {
    StringBuilder sb = new StringBuilder();
    for (ConfigKey<?> key : KEYS) {
      sb.append(key.envName())
          .append('=')
          .append(key.sensitive() ? "***" : String.valueOf(values.get(key)))
          .append('\n');
    }
    return sb.toString();
  }

  /**
   * A Markdown table of every key: environment variable, properties name, type, default and doc.
   */
  public static String documentation() {
    StringBuilder sb = new StringBuilder();
    sb.append("| Environment variable | Properties key | Type | Default | Description |\n");
    sb.append("|---|---|---|---|---|\n");
    for (ConfigKey<?> key : KEYS) {
      sb.append("| `")
          .append(key.envName())
          .append("` | `")
          .append(key.propertyName())
          .append("` | ")
          .append(key.typeName())
          .append(" | ")
          .append(key.defaultValue().map(d -> "`" + d + "`").orElse("*required*"))
          .append(" | ")
          .append(key.doc())
          .append(" |\n");
    }
    sb.append("\nA properties file named by `")
        .append(CONFIG_FILE_ENV)
        .append("` overrides the environment.\n");
    return sb.toString();
  }

  private static Map<ConfigKey<?>, String> readProperties(Path file) {
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      p.load(r);
    } catch (IOException e) {
      throw new ConfigException(
          List.of(
              CONFIG_FILE_ENV
                  + ": could not read properties file "
                  + file
                  + ": "
                  + e.getMessage()));
    }
    Map<ConfigKey<?>, String> raw = new LinkedHashMap<>();
    List<String> problems = new ArrayList<>();
    for (String name : p.stringPropertyNames()) {
      Optional<ConfigKey<?>> key = lookup(name);
      if (key.isPresent()) {
        raw.put(key.get(), p.getProperty(name));
      } else if (name.startsWith("compactor.") || name.startsWith("COMPACTOR_")) {
        problems.add(file + ": " + unknown(name));
      }
    }
    if (!problems.isEmpty()) {
      throw new ConfigException(problems);
    }
    return raw;
  }

  private static Optional<ConfigKey<?>> lookup(String name) {
    for (ConfigKey<?> key : KEYS) {
      if (key.envName().equals(name) || key.propertyName().equals(name)) {
        return Optional.of(key);
      }
    }
    return Optional.empty();
  }

  private static String unknown(String name) {
    return "unknown setting '" + name + "' (known: see StageConfig.documentation())";
  }

  private static Optional<String> httpUrl(String v) {
    try {
      URI u = URI.create(v);
      if (("http".equals(u.getScheme()) || "https".equals(u.getScheme())) && u.getHost() != null) {
        return Optional.empty();
      }
    } catch (IllegalArgumentException e) {
      // reported below
    }
    return Optional.of("an http(s)://host[:port] URL");
  }

  /** Thrown when settings are missing or invalid; the message lists every problem. */
  public static final class ConfigException extends IllegalArgumentException {
    private final List<String> problems;

    ConfigException(List<String> problems) {
      super("invalid stage configuration:\n  " + String.join("\n  ", problems));
      this.problems = List.copyOf(problems);
    }

    /** One line per problem. */
    public List<String> problems() {
      return problems;
    }
  }

  /** {@link #MEMORY_BUDGET_BYTES}, with 0 resolved to 80% of the physical memory. */
  public long memoryBudgetBytes() {
    long configured = get(MEMORY_BUDGET_BYTES);
    if (configured > 0) {
      return configured;
    }
    var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return sun.getTotalMemorySize() / 10 * 8;
    }
    return Long.MAX_VALUE;
  }
}
