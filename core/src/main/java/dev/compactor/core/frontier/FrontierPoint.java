package dev.compactor.core.frontier;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One measured candidate, e.g. one recipe of a sweep: its label and its value per objective name. A
 * value that was not measured is absent (or NaN, which counts as absent).
 *
 * @param label what the point is called in tables and plots, e.g. the recipe's name
 * @param values measured values by objective name
 */
public record FrontierPoint(String label, Map<String, Double> values) {

  public FrontierPoint {
    Objects.requireNonNull(label, "label");
    Map<String, Double> copy = new LinkedHashMap<>();
    values.forEach(
        (k, v) -> {
          if (v != null && !v.isNaN()) {
            copy.put(k, v);
          }
        });
    values = Collections.unmodifiableMap(copy);
  }

  /** The value of {@code objective}, or null when it was not measured. */
  public Double value(String objective) {
    return values.get(objective);
  }

  /** Whether every one of {@code objectives} has a value. */
  public boolean hasAll(Iterable<Objective> objectives) {
    for (Objective o : objectives) {
      if (value(o.name()) == null) {
        return false;
      }
    }
    return true;
  }
}
