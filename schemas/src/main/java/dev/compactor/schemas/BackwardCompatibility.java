package dev.compactor.schemas;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.Incompatibility;

/**
 * Decides whether a changed Avro schema can still read the data its earlier versions wrote, and
 * says in plain words why not.
 *
 * <p>BACKWARD compatibility means: a consumer upgraded to the {@code current} schema (the Avro
 * <em>reader</em>) can decode every record a producer wrote with a {@code previous} schema (the
 * Avro <em>writer</em>). It is what lets Compactor roll out consumers before producers. The build's
 * released-schema gate and the local schema registry server both use this class, so a schema change
 * that passes the build is accepted by the registry and vice versa.
 */
public final class BackwardCompatibility {

  private BackwardCompatibility() {}

  /** Outcome of a check: compatible, or the list of reasons it is not. */
  public record Report(boolean compatible, List<String> problems) {
    public Report {
      problems = List.copyOf(problems);
    }

    static Report ok() {
      return new Report(true, List.of());
    }

    /** One line per problem, for logs and error messages. */
    public String describe() {
      return compatible ? "compatible" : String.join("; ", problems);
    }

    /**
     * Throws when incompatible.
     *
     * @param what names the schema in the message, e.g. {@code "StageRequested vs released v1"}
     * @throws IncompatibleSchemaException listing every problem
     */
    public void requireCompatible(String what) {
      if (!compatible) {
        throw new IncompatibleSchemaException(what + " is not compatible: " + describe(), problems);
      }
    }
  }

  /** A schema change that would break readers or writers; carries every problem found. */
  public static final class IncompatibleSchemaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final List<String> problems;

    public IncompatibleSchemaException(String message, List<String> problems) {
      super(message);
      this.problems = List.copyOf(problems);
    }

    /** The individual problems, one sentence each. */
    public List<String> problems() {
      return problems;
    }
  }

  /**
   * Checks that {@code current} can read data written with {@code previous} (BACKWARD).
   *
   * @param current the new schema, used as the reader
   * @param previous an earlier (released or registered) schema, used as the writer
   */
  public static Report check(Schema current, Schema previous) {
    return readable(current, previous, "new schema cannot read data written with the old schema");
  }

  /**
   * Checks a candidate schema against the versions already registered under a subject, under any
   * Confluent compatibility level.
   *
   * @param level the rule to apply
   * @param candidate the schema about to be registered
   * @param existingOldestFirst the registered versions, oldest first (may be empty)
   */
  public static Report check(
      CompatibilityLevel level, Schema candidate, List<Schema> existingOldestFirst) {
    Objects.requireNonNull(level, "level");
    if (level == CompatibilityLevel.NONE || existingOldestFirst.isEmpty()) {
      return Report.ok();
    }
    List<Schema> against =
        level.transitive()
            ? existingOldestFirst
            : List.of(existingOldestFirst.get(existingOldestFirst.size() - 1));
    List<String> problems = new ArrayList<>();
    for (Schema existing : against) {
      if (level.backward()) {
        problems.addAll(check(candidate, existing).problems());
      }
      if (level.forward()) {
        problems.addAll(
            readable(existing, candidate, "old schema cannot read data written with the new schema")
                .problems());
      }
    }
    return problems.isEmpty() ? Report.ok() : new Report(false, problems);
  }

  private static Report readable(Schema reader, Schema writer, String direction) {
    Objects.requireNonNull(reader, "reader schema");
    Objects.requireNonNull(writer, "writer schema");
    SchemaCompatibility.SchemaPairCompatibility result =
        SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
    List<Incompatibility> incompatibilities = result.getResult().getIncompatibilities();
    if (incompatibilities.isEmpty()) {
      return Report.ok();
    }
    List<String> problems = new ArrayList<>();
    for (Incompatibility incompatibility : incompatibilities) {
      problems.add(direction + ": " + explain(incompatibility));
    }
    return new Report(false, problems);
  }

  private static String explain(Incompatibility in) {
    String at = " at " + in.getLocation();
    return switch (in.getType()) {
      case READER_FIELD_MISSING_DEFAULT_VALUE ->
          "field '"
              + in.getMessage()
              + "'"
              + at
              + " was added without a default value; give it a \"default\" (e.g. null in a"
              + " [\"null\", ...] union)";
      case MISSING_ENUM_SYMBOLS ->
          "enum "
              + in.getReaderFragment().getFullName()
              + at
              + " lost symbols "
              + in.getMessage()
              + " that existing data may contain; keep them or give the enum a \"default\"";
      case MISSING_UNION_BRANCH ->
          "union" + at + " lost a branch that existing data may use (" + in.getMessage() + ")";
      case TYPE_MISMATCH ->
          "type changed"
              + at
              + ": "
              + in.getMessage()
              + " (writer "
              + in.getWriterFragment().getType()
              + ", reader "
              + in.getReaderFragment().getType()
              + ")";
      case NAME_MISMATCH -> "named type renamed" + at + ": " + in.getMessage();
      case FIXED_SIZE_MISMATCH -> "fixed size changed" + at + ": " + in.getMessage();
    };
  }
}
