package dev.compactor.core.frontier;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Where the bayesian mode places a sweep's grid points: a parameter whose listed values are all
 * numbers is one coordinate, its value scaled linearly so the smallest listed value is 0 and the
 * largest 1 (a single value: 0); any other parameter (strings such as a method, booleans, lists) is
 * one-hot, one coordinate per listed value, 1 for the chosen one and 0 for the rest. So two methods
 * differ by the same distance whatever their order in the spec, and numbers keep their spacing
 * (0.125, 0.25, 0.5 are not equally far apart).
 */
public final class SearchSpace {

  private final List<SweepSpec.Parameter> parameters;
  private final List<double[]> numeric = new ArrayList<>(); // min, max per numeric parameter
  private final int dimensions;

  public SearchSpace(List<SweepSpec.Parameter> parameters) {
    this.parameters = List.copyOf(parameters);
    int d = 0;
    for (SweepSpec.Parameter p : this.parameters) {
      if (p.values().stream().allMatch(JsonNode::isNumber)) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (JsonNode v : p.values()) {
          lo = Math.min(lo, v.asDouble());
          hi = Math.max(hi, v.asDouble());
        }
        numeric.add(new double[] {lo, hi});
        d++;
      } else {
        numeric.add(null);
        d += p.values().size();
      }
    }
    this.dimensions = d;
  }

  /** How many coordinates a point has. */
  public int dimensions() {
    return dimensions;
  }

  /** The coordinates of an assignment (value per parameter path, as {@link SweepSpec.Point}). */
  public double[] encode(Map<String, JsonNode> assignment) {
    double[] out = new double[dimensions];
    int at = 0;
    for (int i = 0; i < parameters.size(); i++) {
      SweepSpec.Parameter p = parameters.get(i);
      JsonNode v = assignment.get(p.path());
      if (v == null) {
        throw new IllegalArgumentException("the assignment has no value for " + p.path());
      }
      double[] range = numeric.get(i);
      if (range != null) {
        if (!v.isNumber()) {
          throw new IllegalArgumentException(p.path() + ": expected a number, found " + v);
        }
        out[at++] = range[1] > range[0] ? (v.asDouble() - range[0]) / (range[1] - range[0]) : 0;
      } else {
        int k = p.values().indexOf(v);
        if (k < 0) {
          throw new IllegalArgumentException(p.path() + ": " + v + " is not a listed value");
        }
        out[at + k] = 1;
        at += p.values().size();
      }
    }
    return out;
  }
}
