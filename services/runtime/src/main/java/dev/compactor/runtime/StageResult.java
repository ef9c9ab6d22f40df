package dev.compactor.runtime;

import dev.compactor.events.ArtifactRef;
import dev.compactor.schemas.Topic;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * What a {@link Stage} returns: the directory to store as its output artifact (or none), the
 * metrics to report in {@code StageCompleted} and the artifact's provenance, and optional extra
 * events to publish in the same Kafka transaction (e.g. {@code ModelIngested}, {@code
 * EvaluationCompleted}).
 */
public final class StageResult {
  /** An extra event; its value may depend on the stored output artifact (null when none). */
  public record Event<V>(Topic<String, V> topic, Function<ArtifactRef, V> value) {
    public Event {
      Objects.requireNonNull(topic, "topic");
      Objects.requireNonNull(value, "value");
    }
  }

  private final Path outputDir;
  private final String format;
  private final Map<String, Double> metrics;
  private final List<Event<?>> events;

  private StageResult(
      Path outputDir, String format, Map<String, Double> metrics, List<Event<?>> events) {
    this.outputDir = outputDir;
    this.format = format;
    this.metrics = Map.copyOf(metrics);
    this.events = List.copyOf(events);
    for (Map.Entry<String, Double> m : metrics.entrySet()) {
      if (m.getKey() == null || m.getKey().isBlank() || m.getValue() == null) {
        throw new IllegalArgumentException("metric: expected a name and a value, found " + m);
      }
    }
  }

  /**
   * A result whose {@code outputDir} is stored as a content-addressed artifact.
   *
   * @param format the artifact layout, e.g. {@code hf-safetensors}
   */
  public static StageResult of(Path outputDir, String format, Map<String, Double> metrics) {
    Objects.requireNonNull(outputDir, "outputDir");
    if (format == null || format.isBlank()) {
      throw new IllegalArgumentException(
          "artifact format: expected e.g. 'hf-safetensors', found none");
    }
    return new StageResult(outputDir, format, metrics, List.of());
  }

  /** A result with metrics only (evaluate, publish): {@code StageCompleted.output} is null. */
  public static StageResult withoutArtifact(Map<String, Double> metrics) {
    return new StageResult(null, null, metrics, List.of());
  }

  /** This result plus one event to publish, keyed by the job id. */
  public <V> StageResult withEvent(Topic<String, V> topic, V value) {
    Objects.requireNonNull(value, "value");
    return withEventFor(topic, ref -> value);
  }

  /** This result plus one event built from the stored output artifact (null when none). */
  public <V> StageResult withEventFor(Topic<String, V> topic, Function<ArtifactRef, V> value) {
    List<Event<?>> all = new ArrayList<>(events);
    all.add(new Event<>(topic, value));
    return new StageResult(outputDir, format, new LinkedHashMap<>(metrics), all);
  }

  /** The directory to store, or null when the stage produced no artifact. */
  public Path outputDir() {
    return outputDir;
  }

  /** The artifact layout, or null when there is no artifact. */
  public String format() {
    return format;
  }

  /** The stage's measurements. */
  public Map<String, Double> metrics() {
    return metrics;
  }

  /** Extra events, in publication order. */
  public List<Event<?>> events() {
    return events;
  }
}
