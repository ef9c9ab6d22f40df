package dev.compactor.schemas;

/**
 * The compatibility rules a schema registry enforces when a new schema version is registered under
 * a subject; the names and meanings are those of the Confluent Schema Registry.
 */
public enum CompatibilityLevel {
  /** No check. */
  NONE(false, false, false),
  /** The new schema can read data written with the latest registered schema (the default). */
  BACKWARD(true, false, false),
  /** The new schema can read data written with every registered schema. */
  BACKWARD_TRANSITIVE(true, false, true),
  /** The latest registered schema can read data written with the new schema. */
  FORWARD(false, true, false),
  /** Every registered schema can read data written with the new schema. */
  FORWARD_TRANSITIVE(false, true, true),
  /** BACKWARD and FORWARD against the latest registered schema. */
  FULL(true, true, false),
  /** BACKWARD and FORWARD against every registered schema. */
  FULL_TRANSITIVE(true, true, true);

  private final boolean backward;
  private final boolean forward;
  private final boolean transitive;

  CompatibilityLevel(boolean backward, boolean forward, boolean transitive) {
    this.backward = backward;
    this.forward = forward;
    this.transitive = transitive;
  }

  /** True when the new schema must read old data. */
  public boolean backward() {
    return backward;
  }

  /** True when old schemas must read new data. */
  public boolean forward() {
    return forward;
  }

  /** True when the check covers every registered version, not only the latest. */
  public boolean transitive() {
    return transitive;
  }

  /**
   * Parses a level name as sent over the registry REST API (case-insensitive).
   *
   * @throws IllegalArgumentException naming the accepted values when {@code name} is none of them
   */
  public static CompatibilityLevel parse(String name) {
    if (name != null) {
      for (CompatibilityLevel level : values()) {
        if (level.name().equalsIgnoreCase(name.trim())) {
          return level;
        }
      }
    }
    throw new IllegalArgumentException(
        "unknown compatibility level '"
            + name
            + "'; expected one of "
            + java.util.Arrays.toString(values()));
  }
}
