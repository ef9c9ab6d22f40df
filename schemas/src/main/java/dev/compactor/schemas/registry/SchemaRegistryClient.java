package dev.compactor.schemas.registry;

import dev.compactor.schemas.CompatibilityLevel;
import java.util.List;
import org.apache.avro.Schema;

/**
 * The operations Compactor needs from a Confluent-compatible schema registry: register schemas
 * under subjects, resolve the schema id found in a record's header, and check compatibility before
 * a rollout. Every method throws {@link SchemaRegistryException} when the registry says no or
 * cannot be reached.
 */
public interface SchemaRegistryClient extends AutoCloseable {

  /**
   * Registers {@code schema} under {@code subject} (or finds it, if already registered) and returns
   * its registry-wide id. Fails with error code 409 when the subject's compatibility level rejects
   * it.
   */
  int register(String subject, Schema schema);

  /** The schema with registry-wide id {@code id}; error code 40403 when there is none. */
  Schema getById(int id);

  /** The newest version registered under {@code subject}; error code 40401 when none. */
  SchemaMetadata latest(String subject);

  /** Version {@code version} of {@code subject}; 40401 / 40402 when missing. */
  SchemaMetadata version(String subject, int version);

  /**
   * Finds {@code schema} among the versions of {@code subject} without registering it; 40401 when
   * the subject is unknown, 40403 when the schema is not registered there.
   */
  SchemaMetadata lookup(String subject, Schema schema);

  /**
   * True when {@code schema} could be registered as the next version of {@code subject} under the
   * subject's compatibility level (checked against the latest version); 40401 when the subject has
   * no version yet.
   */
  boolean testCompatibility(String subject, Schema schema);

  /** All subjects with at least one version. */
  List<String> subjects();

  /** The version numbers of {@code subject}, ascending; 40401 when unknown. */
  List<Integer> versions(String subject);

  /**
   * The compatibility level in force for {@code subject}: its own if set, the global one otherwise.
   * With {@code subject == null} the global level.
   */
  CompatibilityLevel compatibility(String subject);

  /**
   * Sets the compatibility level of {@code subject}, or the global level when {@code subject} is
   * null, and returns the level now in force.
   */
  CompatibilityLevel setCompatibility(String subject, CompatibilityLevel level);

  /** Releases connections; the default does nothing. */
  @Override
  default void close() {}
}
