package dev.compactor.services.orchestrator;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * Read access to job state for the HTTP API: the local state store through interactive queries,
 * plus where to find a job that another orchestrator instance owns.
 */
public interface JobQueries {

  /** The job if this instance holds it. */
  Optional<JobRecord> job(String jobId);

  /**
   * The base URL ({@code http://host:port}) of the other instance that owns {@code jobId}'s
   * partition, when that is not this one.
   */
  Optional<String> ownerUrl(String jobId);

  /** Every job this instance holds, most recently updated first. */
  List<JobRecord> jobs();

  /** Whether the store can be queried now, and a word on why not. */
  Health health();

  /** Query readiness: {@code ok} when the store can be read. */
  record Health(boolean ok, String state) {}

  /** Queries over one store, for a single instance and for tests. */
  static JobQueries of(Supplier<ReadOnlyKeyValueStore<String, JobRecord>> store) {
    return new JobQueries() {
      @Override
      public Optional<JobRecord> job(String jobId) {
        return Optional.ofNullable(store.get().get(jobId));
      }

      @Override
      public Optional<String> ownerUrl(String jobId) {
        return Optional.empty();
      }

      @Override
      public List<JobRecord> jobs() {
        return readAll(store.get());
      }

      @Override
      public Health health() {
        return new Health(true, "RUNNING");
      }
    };
  }

  /** All records of {@code store}, most recently updated first. */
  static List<JobRecord> readAll(ReadOnlyKeyValueStore<String, JobRecord> store) {
    List<JobRecord> all = new ArrayList<>();
    try (KeyValueIterator<String, JobRecord> it = store.all()) {
      while (it.hasNext()) {
        KeyValue<String, JobRecord> kv = it.next();
        all.add(kv.value);
      }
    }
    all.sort(Comparator.comparingLong(JobRecord::updatedAtMs).reversed());
    return all;
  }
}
