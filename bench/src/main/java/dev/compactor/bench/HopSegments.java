package dev.compactor.bench;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The segments of a job's path through the pipeline that {@link HopLatencyBench} reports, as
 * milliseconds between two timestamps on the same monotonic clock, in table order.
 *
 * <p>"Stamped" is {@code StageCompleted.completedAtMs}, taken by the runtime right after the output
 * upload and before the completion marker and the Kafka transaction; it has millisecond resolution,
 * so segments starting or ending there are good to about ±1 ms.
 */
final class HopSegments {
  static final String FIRST_RUNNING = "StageRequested produced -> first stage running";
  static final String HOP = "StageCompleted stamped -> next stage running (hop)";
  static final String STAMPED_CONSUMED = "  StageCompleted stamped -> consumed by orchestrator *";
  static final String CONSUMED_REQUESTED = "  consumed -> next StageRequested produced";
  static final String PRODUCED_VISIBLE = "  StageRequested produced -> readable on topic *";
  static final String VISIBLE_RUNNING = "  StageRequested readable -> stage running *";
  static final String RETURNED_STAMPED = "stage returned -> StageCompleted stamped *";
  static final String FULL_HOP = "stage returned -> next stage running";
  static final String JOB = "job: first request -> last StageCompleted consumed";

  private static final List<String> ORDER =
      List.of(
          FIRST_RUNNING,
          HOP,
          STAMPED_CONSUMED,
          CONSUMED_REQUESTED,
          PRODUCED_VISIBLE,
          VISIBLE_RUNNING,
          RETURNED_STAMPED,
          FULL_HOP,
          JOB);

  /** What the rows marked {@code *} cover, for the table's footnote. */
  static final String FOOTNOTE =
      "* over every step of every job (the others over stage-to-stage hops or whole jobs).\n"
          + "  readable -> running = worker wake-up + completion-marker lookup (S3 GET)"
          + " + input download and sha256 verify.\n"
          + "  returned -> stamped = output artifact hash + upload (files, manifest).\n"
          + "  stamped -> consumed = marker PUT + poll-thread wake-up (the job ends the poll at once)"
          + " + transaction commit + delivery.";

  private final Map<String, List<Double>> samples = new HashMap<>();

  /** Adds one sample, {@code toNs - fromNs} in milliseconds. */
  void add(String segment, long fromNs, long toNs) {
    if (!ORDER.contains(segment)) {
      throw new IllegalArgumentException("unknown segment '" + segment + "'");
    }
    samples.computeIfAbsent(segment, s -> new ArrayList<>()).add((toNs - fromNs) / 1e6);
  }

  /** Stats of every segment that has samples, in table order. */
  Map<String, LatencyStats> stats() {
    Map<String, LatencyStats> out = new LinkedHashMap<>();
    for (String s : ORDER) {
      List<Double> v = samples.get(s);
      if (v != null && !v.isEmpty()) {
        out.put(s, LatencyStats.of(v));
      }
    }
    return out;
  }
}
