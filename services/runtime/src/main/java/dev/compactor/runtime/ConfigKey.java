package dev.compactor.runtime;

import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * One setting of a stage service: its environment variable, its properties-file name, its type, its
 * default, the rule a value must satisfy and the sentence that documents it — all in one place, so
 * the README, the docker-compose file and the validation can never disagree.
 *
 * @param <T> the parsed type of the value
 */
public final class ConfigKey<T> {
  /** Checks one parsed value; returns an explanation when the value is not acceptable. */
  @FunctionalInterface
  public interface Validator<T> {
    /** Returns empty when {@code value} is acceptable, else what was expected. */
    Optional<String> check(T value);

    /** Accepts everything. */
    static <T> Validator<T> any() {
      return v -> Optional.empty();
    }
  }

  private final String envName;
  private final String propertyName;
  private final String typeName;
  private final Function<String, T> parser;
  private final String defaultValue;
  private final Validator<T> validator;
  private final String doc;
  private final boolean sensitive;

  private ConfigKey(
      String envName,
      String typeName,
      Function<String, T> parser,
      String defaultValue,
      Validator<T> validator,
      String doc,
      boolean sensitive) {
    if (!envName.matches("COMPACTOR_[A-Z0-9_]+")) {
      throw new IllegalArgumentException("config key must look like COMPACTOR_X_Y, was " + envName);
    }
    this.envName = envName;
    this.propertyName = envName.toLowerCase(java.util.Locale.ROOT).replace('_', '.');
    this.typeName = typeName;
    this.parser = parser;
    this.defaultValue = defaultValue;
    this.validator = validator;
    this.doc = doc;
    this.sensitive = sensitive;
  }

  static ConfigKey<String> string(
      String env, String defaultValue, Validator<String> validator, String doc) {
    return new ConfigKey<>(env, "string", s -> s, defaultValue, validator, doc, false);
  }

  static ConfigKey<String> secret(String env, String doc) {
    return new ConfigKey<>(env, "string", s -> s, null, v -> Optional.empty(), doc, true);
  }

  /** A secret that may be left unset (empty = not used). */
  static ConfigKey<String> optionalSecret(String env, String doc) {
    return new ConfigKey<>(env, "string", s -> s, "", v -> Optional.empty(), doc, true);
  }

  static ConfigKey<Integer> integer(String env, int defaultValue, int min, int max, String doc) {
    return new ConfigKey<>(
        env,
        "int",
        Integer::parseInt,
        String.valueOf(defaultValue),
        v ->
            v < min || v > max
                ? Optional.of("an integer in [" + min + ", " + max + "]")
                : Optional.empty(),
        doc,
        false);
  }

  static ConfigKey<Long> longValue(String env, long defaultValue, long min, long max, String doc) {
    return new ConfigKey<>(
        env,
        "long",
        Long::parseLong,
        String.valueOf(defaultValue),
        v ->
            v < min || v > max
                ? Optional.of("an integer in [" + min + ", " + max + "]")
                : Optional.empty(),
        doc,
        false);
  }

  /** Environment variable name, e.g. {@code COMPACTOR_KAFKA_BOOTSTRAP}. */
  public String envName() {
    return envName;
  }

  /** Name in a properties file, e.g. {@code compactor.kafka.bootstrap}. */
  public String propertyName() {
    return propertyName;
  }

  /** Human-readable type: string, int, long. */
  public String typeName() {
    return typeName;
  }

  /** The default as text, or empty when the key is required. */
  public Optional<String> defaultValue() {
    return Optional.ofNullable(defaultValue);
  }

  /** True when the key has no default and must be set. */
  public boolean required() {
    return defaultValue == null;
  }

  /** True for secrets, which are never printed. */
  public boolean sensitive() {
    return sensitive;
  }

  /** What the key controls. */
  public String doc() {
    return doc;
  }

  /**
   * Parses and validates {@code raw}.
   *
   * @throws IllegalArgumentException naming the key, what was expected and what was found
   */
  T parse(String raw) {
    T value;
    try {
      value = parser.apply(raw.trim());
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(
          envName + ": expected " + typeName + ", found '" + shown(raw) + "'");
    }
    Optional<String> problem = validator.check(value);
    if (problem.isPresent()) {
      throw new IllegalArgumentException(
          envName + ": expected " + problem.get() + ", found '" + shown(raw) + "'");
    }
    return value;
  }

  private String shown(String raw) {
    return sensitive ? "***" : raw;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ConfigKey<?> k && k.envName.equals(envName);
  }

  @Override
  public int hashCode() {
    return Objects.hash(envName);
  }

  @Override
  public String toString() {
    return envName;
  }
}
