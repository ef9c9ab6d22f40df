package dev.compactor.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Summary of one measured quantity over a run: p50, p90 and max (nearest-rank percentiles, no
 * interpolation, so every figure is a value that was actually observed) and the sample count.
 */
record LatencyStats(double p50, double p90, double max, int n) {

  /**
   * Summarizes {@code samples}.
   *
   * @throws IllegalArgumentException when there are none
   */
  static LatencyStats of(List<Double> samples) {
    if (samples.isEmpty()) {
      throw new IllegalArgumentException("latency stats: expected at least one sample, found none");
    }
    List<Double> sorted = new ArrayList<>(samples);
    Collections.sort(sorted);
    return new LatencyStats(
        rank(sorted, 0.50), rank(sorted, 0.90), sorted.get(sorted.size() - 1), sorted.size());
  }

  /** The median of {@code samples} (nearest rank). */
  static double median(List<Double> samples) {
    return of(samples).p50();
  }

  private static double rank(List<Double> sorted, double q) {
    int index = (int) Math.ceil(q * sorted.size()) - 1;
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, index)));
  }

  /** The figures as a JSON-ready map. */
  Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("p50", p50);
    m.put("p90", p90);
    m.put("max", max);
    m.put("n", n);
    return m;
  }
}
