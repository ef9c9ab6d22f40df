package dev.compactor.infra.registry;

import dev.compactor.schemas.BackwardCompatibility;
import dev.compactor.schemas.CompatibilityLevel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;

/**
 * The registry's rules, independent of HTTP: subjects with numbered versions, registry-wide schema
 * ids, per-subject and global compatibility levels (default BACKWARD, checked with {@link
 * BackwardCompatibility} exactly as the build checks released schemas). Every change is written to
 * the {@link SchemaStore} before it becomes visible, and the state is rebuilt from the store on
 * construction. Thread-safe.
 */
public final class SchemaRegistry {

  /** One version of a subject. */
  public record Version(String subject, int version, int id, String schema) {}

  private final SchemaStore store;
  private final CompatibilityLevel defaultLevel;
  private CompatibilityLevel globalLevel;
  private final Map<String, CompatibilityLevel> subjectLevels = new HashMap<>();
  private final Map<String, List<Version>> subjects = new TreeMap<>();
  private final Map<Integer, Schema> schemasById = new HashMap<>();
  private final Map<String, Integer> idsBySchema = new HashMap<>();
  private int maxId;

  /** A registry with global level BACKWARD, rebuilt from everything {@code store} holds. */
  public SchemaRegistry(SchemaStore store) {
    this(store, CompatibilityLevel.BACKWARD);
  }

  /** A registry whose global level is {@code defaultLevel} until a config change says otherwise. */
  public SchemaRegistry(SchemaStore store, CompatibilityLevel defaultLevel) {
    this.store = store;
    this.defaultLevel = defaultLevel;
    this.globalLevel = defaultLevel;
    for (StoreRecord record : store.load()) {
      apply(record);
    }
  }

  private void apply(StoreRecord record) {
    if (record instanceof StoreRecord.SchemaVersion v) {
      List<Version> versions = subjects.computeIfAbsent(v.subject(), s -> new ArrayList<>());
      versions.removeIf(existing -> existing.version() == v.version());
      versions.add(new Version(v.subject(), v.version(), v.id(), v.schema()));
      versions.sort((a, b) -> Integer.compare(a.version(), b.version()));
      schemasById.computeIfAbsent(v.id(), id -> new Schema.Parser().parse(v.schema()));
      idsBySchema.putIfAbsent(v.schema(), v.id());
      maxId = Math.max(maxId, v.id());
    } else if (record instanceof StoreRecord.ConfigChange c) {
      if (c.subject() == null) {
        globalLevel = c.level();
      } else {
        subjectLevels.put(c.subject(), c.level());
      }
    }
  }

  private void persistAndApply(StoreRecord record) {
    try {
      store.append(record);
    } catch (RuntimeException e) {
      throw new RegistryException(
          500, 50001, "Error while storing the schema registry update: " + e);
    }
    apply(record);
  }

  /**
   * Registers {@code schemaText} under {@code subject}; returns the existing id if the subject
   * already has this schema, reuses the id of an identical schema under another subject, and
   * otherwise assigns the next id.
   *
   * @throws RegistryException 42201 when the schema does not parse, 409 when the subject's
   *     compatibility level rejects it
   */
  public synchronized int register(String subject, String schemaText) {
    Schema schema = parse(schemaText);
    String canonical = schema.toString();
    List<Version> versions = subjects.getOrDefault(subject, List.of());
    for (Version existing : versions) {
      if (existing.schema().equals(canonical)) {
        return existing.id();
      }
    }
    CompatibilityLevel level = effectiveLevel(subject);
    BackwardCompatibility.Report report =
        BackwardCompatibility.check(level, schema, schemasOf(versions));
    if (!report.compatible()) {
      throw new RegistryException(
          409,
          409,
          "Schema being registered is incompatible with an earlier schema for subject '"
              + subject
              + "' (compatibility "
              + level
              + "): "
              + report.describe());
    }
    int id = idsBySchema.getOrDefault(canonical, maxId + 1);
    int version = versions.isEmpty() ? 1 : versions.get(versions.size() - 1).version() + 1;
    persistAndApply(new StoreRecord.SchemaVersion(subject, version, id, canonical));
    return id;
  }

  /** The schema with registry-wide id {@code id}; 40403 when unknown. */
  public synchronized Schema schemaById(int id) {
    Schema schema = schemasById.get(id);
    if (schema == null) {
      throw RegistryException.schemaNotFound("" + id);
    }
    return schema;
  }

  /** Subjects with at least one version, sorted. */
  public synchronized List<String> subjects() {
    return List.copyOf(subjects.keySet());
  }

  /** Version numbers of {@code subject}, ascending; 40401 when unknown. */
  public synchronized List<Integer> versions(String subject) {
    return versionsOf(subject).stream().map(Version::version).toList();
  }

  /**
   * Version {@code versionSpec} ("latest", "-1" or a number) of {@code subject}; 40401, 40402 or
   * 42202 when it does not exist or is not a version.
   */
  public synchronized Version version(String subject, String versionSpec) {
    List<Version> versions = versionsOf(subject);
    int wanted = parseVersion(versionSpec);
    if (wanted == -1) {
      return versions.get(versions.size() - 1);
    }
    return versions.stream()
        .filter(v -> v.version() == wanted)
        .findFirst()
        .orElseThrow(() -> RegistryException.versionNotFound(subject, versionSpec));
  }

  /** The version of {@code subject} holding {@code schemaText}; 40401 / 40403 when none. */
  public synchronized Version lookup(String subject, String schemaText) {
    List<Version> versions = versionsOf(subject);
    String canonical = parse(schemaText).toString();
    Optional<Version> found =
        versions.stream().filter(v -> v.schema().equals(canonical)).findFirst();
    return found.orElseThrow(
        () -> RegistryException.schemaNotFound("under subject '" + subject + "'"));
  }

  /**
   * Whether {@code schemaText} could be registered after version {@code versionSpec} of {@code
   * subject}: for "latest" exactly the check {@link #register} makes (all versions for transitive
   * levels); for a numbered version, the level's directions against that version only.
   */
  public synchronized BackwardCompatibility.Report testCompatibility(
      String subject, String versionSpec, String schemaText) {
    Schema schema = parse(schemaText);
    List<Version> versions = versionsOf(subject);
    CompatibilityLevel level = effectiveLevel(subject);
    if (parseVersion(versionSpec) == -1) {
      return BackwardCompatibility.check(level, schema, schemasOf(versions));
    }
    Version against = version(subject, versionSpec);
    return BackwardCompatibility.check(level, schema, List.of(schemasById.get(against.id())));
  }

  /** The global compatibility level. */
  public synchronized CompatibilityLevel globalLevel() {
    return globalLevel;
  }

  /**
   * The level set for {@code subject}; when none is set, the global level if {@code
   * defaultToGlobal}, else 40408.
   */
  public synchronized CompatibilityLevel subjectLevel(String subject, boolean defaultToGlobal) {
    CompatibilityLevel level = subjectLevels.get(subject);
    if (level != null) {
      return level;
    }
    if (defaultToGlobal) {
      return globalLevel;
    }
    throw new RegistryException(
        404,
        40408,
        "Subject '" + subject + "' does not have subject-level compatibility configured");
  }

  /** Sets the level of {@code subject}, or the global level when {@code subject} is null. */
  public synchronized void setLevel(String subject, CompatibilityLevel level) {
    persistAndApply(new StoreRecord.ConfigChange(subject, level));
  }

  /** The level the registry starts with when the store holds no global config. */
  public CompatibilityLevel defaultLevel() {
    return defaultLevel;
  }

  private CompatibilityLevel effectiveLevel(String subject) {
    return subjectLevels.getOrDefault(subject, globalLevel);
  }

  private List<Version> versionsOf(String subject) {
    List<Version> versions = subjects.get(subject);
    if (versions == null || versions.isEmpty()) {
      throw RegistryException.subjectNotFound(subject);
    }
    return versions;
  }

  private List<Schema> schemasOf(List<Version> versions) {
    return versions.stream().map(v -> schemasById.get(v.id())).toList();
  }

  private static Schema parse(String schemaText) {
    if (schemaText == null || schemaText.isBlank()) {
      throw RegistryException.invalidSchema("empty schema");
    }
    try {
      return new Schema.Parser().parse(schemaText);
    } catch (SchemaParseException | NullPointerException e) {
      throw RegistryException.invalidSchema(e.getMessage());
    } catch (RuntimeException e) {
      // Jackson parse errors and bad defaults surface as assorted runtime exceptions.
      throw RegistryException.invalidSchema(e.toString());
    }
  }

  private static int parseVersion(String spec) {
    if ("latest".equals(spec) || "-1".equals(spec)) {
      return -1;
    }
    try {
      int version = Integer.parseInt(spec);
      if (version >= 1) {
        return version;
      }
    } catch (NumberFormatException e) {
      // falls through to the error below
    }
    throw new RegistryException(
        422,
        42202,
        "The specified version '"
            + spec
            + "' is not a valid version id. Allowed values are between [1, 2^31-1] and the string"
            + " \"latest\"");
  }
}
