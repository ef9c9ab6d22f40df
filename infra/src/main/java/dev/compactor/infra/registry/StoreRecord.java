package dev.compactor.infra.registry;

import dev.compactor.schemas.CompatibilityLevel;
import java.util.Objects;

/** One durable change of registry state, as written to and replayed from a {@link SchemaStore}. */
public sealed interface StoreRecord {

  /**
   * A schema registered as version {@code version} of {@code subject} under registry-wide {@code
   * id}.
   *
   * @param schema the canonical Avro JSON ({@code Schema.toString()})
   */
  record SchemaVersion(String subject, int version, int id, String schema) implements StoreRecord {
    public SchemaVersion {
      Objects.requireNonNull(subject, "subject");
      Objects.requireNonNull(schema, "schema");
    }
  }

  /**
   * The compatibility level of {@code subject}, or the global level when {@code subject} is null.
   */
  record ConfigChange(String subject, CompatibilityLevel level) implements StoreRecord {
    public ConfigChange {
      Objects.requireNonNull(level, "level");
    }
  }
}
