package dev.compactor.infra.registry;

import java.util.List;

/**
 * Where the registry keeps its state: an append-only log of {@link StoreRecord}s. On start the
 * registry replays {@link #load()} to rebuild subjects, versions, ids and configs, so ids stay the
 * same across restarts.
 */
public interface SchemaStore extends AutoCloseable {

  /** Every record persisted so far, in write order. */
  List<StoreRecord> load();

  /** Persists one record durably before returning; throws if it could not. */
  void append(StoreRecord record);

  @Override
  void close();
}
