package dev.compactor.infra.registry;

import java.util.ArrayList;
import java.util.List;

/** A {@link SchemaStore} in a list: state lives as long as the object (tests, throwaway stacks). */
public final class InMemorySchemaStore implements SchemaStore {
  private final List<StoreRecord> records = new ArrayList<>();

  @Override
  public synchronized List<StoreRecord> load() {
    return List.copyOf(records);
  }

  @Override
  public synchronized void append(StoreRecord record) {
    records.add(record);
  }

  @Override
  public void close() {}
}
