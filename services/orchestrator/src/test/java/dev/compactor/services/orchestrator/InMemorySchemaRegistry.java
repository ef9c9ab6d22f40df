package dev.compactor.services.orchestrator;

import dev.compactor.schemas.CompatibilityLevel;
import dev.compactor.schemas.registry.SchemaMetadata;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;

/**
 * A schema registry held in memory, for TopologyTestDriver tests that run without a broker or a
 * registry server. Registers and resolves ids like the real one; compatibility is not enforced.
 */
final class InMemorySchemaRegistry implements SchemaRegistryClient {

  private final Map<Integer, Schema> byId = new HashMap<>();
  private final Map<String, List<SchemaMetadata>> subjects = new LinkedHashMap<>();

  @Override
  public synchronized int register(String subject, Schema schema) {
    for (Map.Entry<Integer, Schema> e : byId.entrySet()) {
      if (e.getValue().equals(schema)) {
        addVersion(subject, e.getKey(), schema);
        return e.getKey();
      }
    }
    int id = byId.size() + 1;
    byId.put(id, schema);
    addVersion(subject, id, schema);
    return id;
  }

  private void addVersion(String subject, int id, Schema schema) {
    List<SchemaMetadata> versions = subjects.computeIfAbsent(subject, s -> new ArrayList<>());
    if (versions.stream().noneMatch(m -> m.id() == id)) {
      versions.add(new SchemaMetadata(subject, id, versions.size() + 1, schema));
    }
  }

  @Override
  public synchronized Schema getById(int id) {
    Schema s = byId.get(id);
    if (s == null) {
      throw new SchemaRegistryException(
          404, SchemaRegistryException.SCHEMA_NOT_FOUND, "no schema " + id);
    }
    return s;
  }

  @Override
  public synchronized SchemaMetadata latest(String subject) {
    List<SchemaMetadata> v = versionsOf(subject);
    return v.get(v.size() - 1);
  }

  @Override
  public synchronized SchemaMetadata version(String subject, int version) {
    return versionsOf(subject).stream()
        .filter(m -> m.version() == version)
        .findFirst()
        .orElseThrow(
            () ->
                new SchemaRegistryException(
                    404, SchemaRegistryException.VERSION_NOT_FOUND, "no version " + version));
  }

  @Override
  public synchronized SchemaMetadata lookup(String subject, Schema schema) {
    return versionsOf(subject).stream()
        .filter(m -> m.schema().equals(schema))
        .findFirst()
        .orElseThrow(
            () ->
                new SchemaRegistryException(
                    404, SchemaRegistryException.SCHEMA_NOT_FOUND, "not registered"));
  }

  @Override
  public boolean testCompatibility(String subject, Schema schema) {
    versionsOf(subject);
    return true;
  }

  @Override
  public synchronized List<String> subjects() {
    return List.copyOf(subjects.keySet());
  }

  @Override
  public synchronized List<Integer> versions(String subject) {
    return versionsOf(subject).stream().map(SchemaMetadata::version).toList();
  }

  @Override
  public CompatibilityLevel compatibility(String subject) {
    return CompatibilityLevel.BACKWARD;
  }

  @Override
  public CompatibilityLevel setCompatibility(String subject, CompatibilityLevel level) {
    throw new UnsupportedOperationException("not supported yet: compatibility levels in memory");
  }

  private List<SchemaMetadata> versionsOf(String subject) {
    List<SchemaMetadata> v = subjects.get(subject);
    if (v == null || v.isEmpty()) {
      throw new SchemaRegistryException(
          404, SchemaRegistryException.SUBJECT_NOT_FOUND, "no subject " + subject);
    }
    return v;
  }
}
