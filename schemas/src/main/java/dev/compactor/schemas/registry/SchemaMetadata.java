package dev.compactor.schemas.registry;

import java.util.Objects;
import org.apache.avro.Schema;

/**
 * One registered version of a subject, as the registry describes it.
 *
 * @param subject the subject name, e.g. {@code compactor.jobs.status-value}
 * @param id the registry-wide schema id carried in every record's wire-format header
 * @param version the version number of the schema within the subject (1, 2, ...)
 * @param schema the parsed Avro schema
 */
public record SchemaMetadata(String subject, int id, int version, Schema schema) {
  public SchemaMetadata {
    Objects.requireNonNull(subject, "subject");
    Objects.requireNonNull(schema, "schema");
  }
}
