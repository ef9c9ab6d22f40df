package dev.compactor.schemas.serde;

import dev.compactor.schemas.CompatibilityLevel;
import dev.compactor.schemas.registry.SchemaMetadata;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.avro.Schema;

/** A test double of the registry for the serde unit tests: ids by schema, versions by subject. */
final class InMemoryRegistryClient implements SchemaRegistryClient {
  final Map<Integer, Schema> byId = new HashMap<>();
  final Map<Schema, Integer> ids = new HashMap<>();
  final Map<String, List<Schema>> subjects = new HashMap<>();
  final AtomicInteger requests = new AtomicInteger();

  @Override
  public synchronized int register(String subject, Schema schema) {
    requests.incrementAndGet();
    int id = ids.computeIfAbsent(schema, s -> ids.size() + 1);
    byId.put(id, schema);
    List<Schema> versions = subjects.computeIfAbsent(subject, s -> new ArrayList<>());
    if (!versions.contains(schema)) {
      versions.add(schema);
    }
    return id;
  }

  @Override
  public synchronized Schema getById(int id) {
    requests.incrementAndGet();
    Schema schema = byId.get(id);
    if (schema == null) {
      throw new SchemaRegistryException(
          404, SchemaRegistryException.SCHEMA_NOT_FOUND, "Schema " + id + " not found");
    }
    return schema;
  }

  @Override
  public synchronized SchemaMetadata latest(String subject) {
    List<Schema> versions = versionsOf(subject);
    return version(subject, versions.size());
  }

  @Override
  public synchronized SchemaMetadata version(String subject, int version) {
    Schema schema = versionsOf(subject).get(version - 1);
    return new SchemaMetadata(subject, ids.get(schema), version, schema);
  }

  @Override
  public synchronized SchemaMetadata lookup(String subject, Schema schema) {
    requests.incrementAndGet();
    int index = versionsOf(subject).indexOf(schema);
    if (index < 0) {
      throw new SchemaRegistryException(
          404, SchemaRegistryException.SCHEMA_NOT_FOUND, "Schema not found");
    }
    return new SchemaMetadata(subject, ids.get(schema), index + 1, schema);
  }

  @Override
  public boolean testCompatibility(String subject, Schema schema) {
    throw new UnsupportedOperationException("not needed by the serde tests");
  }

  @Override
  public synchronized List<String> subjects() {
    return List.copyOf(subjects.keySet());
  }

  @Override
  public synchronized List<Integer> versions(String subject) {
    List<Integer> numbers = new ArrayList<>();
    for (int i = 1; i <= versionsOf(subject).size(); i++) {
      numbers.add(i);
    }
    return numbers;
  }

  @Override
  public CompatibilityLevel compatibility(String subject) {
    return CompatibilityLevel.BACKWARD;
  }

  @Override
  public CompatibilityLevel setCompatibility(String subject, CompatibilityLevel level) {
    throw new UnsupportedOperationException("not needed by the serde tests");
  }

  private List<Schema> versionsOf(String subject) {
    List<Schema> versions = subjects.get(subject);
    if (versions == null) {
      throw new SchemaRegistryException(
          404, SchemaRegistryException.SUBJECT_NOT_FOUND, "Subject '" + subject + "' not found.");
    }
    return versions;
  }
}
