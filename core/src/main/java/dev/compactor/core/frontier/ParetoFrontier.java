package dev.compactor.core.frontier;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The Pareto frontier of measured points: the points no other point dominates. Point {@code a}
 * dominates {@code b} when {@code a} is at least as good on every objective and strictly better on
 * one. Points with equal values on every objective do not dominate each other, so ties are all on
 * the frontier. A point that lacks a value of some objective cannot be compared and is kept out
 * (reported as {@link Status#INCOMPLETE}, with the objectives it lacks) rather than guessed at.
 *
 * <p>The all-pairs test is O(n² · objectives): sweeps have tens of points, not millions.
 */
public final class ParetoFrontier {

  /** Where a point stands. */
  public enum Status {
    /** No other complete point dominates it. */
    FRONTIER,
    /** Some complete point dominates it ({@link Ranked#dominatedBy()}). */
    DOMINATED,
    /** It lacks a value of at least one objective ({@link Ranked#missing()}). */
    INCOMPLETE
  }

  /**
   * A point with its standing.
   *
   * @param dominatedBy label of one point that dominates it (the first in input order), or null
   * @param missing the objectives it lacks (empty unless INCOMPLETE)
   */
  public record Ranked(
      FrontierPoint point, Status status, String dominatedBy, List<String> missing) {
    public Ranked {
      missing = List.copyOf(missing);
    }

    public boolean onFrontier() {
      return status == Status.FRONTIER;
    }
  }

  private final List<Objective> objectives;
  private final List<Ranked> ranked;

  private ParetoFrontier(List<Objective> objectives, List<Ranked> ranked) {
    this.objectives = List.copyOf(objectives);
    this.ranked = List.copyOf(ranked);
  }

  /**
   * Ranks {@code points} (kept in input order) on {@code objectives}.
   *
   * @throws IllegalArgumentException with no objective, or two objectives of the same name
   */
  public static ParetoFrontier of(List<FrontierPoint> points, List<Objective> objectives) {
    if (objectives.isEmpty()) {
      throw new IllegalArgumentException("a frontier needs at least one objective");
    }
    if (objectives.stream().map(Objective::name).distinct().count() != objectives.size()) {
      throw new IllegalArgumentException("objective named twice: " + objectives);
    }
    List<Ranked> out = new ArrayList<>();
    for (FrontierPoint p : points) {
      List<String> missing = new ArrayList<>();
      for (Objective o : objectives) {
        if (p.value(o.name()) == null) {
          missing.add(o.name());
        }
      }
      if (!missing.isEmpty()) {
        out.add(new Ranked(p, Status.INCOMPLETE, null, missing));
        continue;
      }
      String by = null;
      for (FrontierPoint q : points) {
        if (q != p && q.hasAll(objectives) && dominates(q, p, objectives)) {
          by = q.label();
          break;
        }
      }
      out.add(new Ranked(p, by == null ? Status.FRONTIER : Status.DOMINATED, by, List.of()));
    }
    return new ParetoFrontier(objectives, out);
  }

  /** Whether {@code a} dominates {@code b}; both must have every objective's value. */
  public static boolean dominates(FrontierPoint a, FrontierPoint b, List<Objective> objectives) {
    boolean strictly = false;
    for (Objective o : objectives) {
      int c = o.compare(a.value(o.name()), b.value(o.name()));
      if (c > 0) {
        return false;
      }
      strictly |= c < 0;
    }
    return strictly;
  }

  public List<Objective> objectives() {
    return objectives;
  }

  /** Every input point with its standing, in input order. */
  public List<Ranked> ranked() {
    return ranked;
  }

  /** The frontier's points, ordered by the first objective from best to worst, then by label. */
  public List<FrontierPoint> frontier() {
    Objective first = objectives.get(0);
    return ranked.stream()
        .filter(Ranked::onFrontier)
        .map(Ranked::point)
        .sorted(
            ((Comparator<FrontierPoint>)
                    (a, b) -> first.compare(a.value(first.name()), b.value(first.name())))
                .thenComparing(FrontierPoint::label))
        .toList();
  }

  /** Whether the point labelled {@code label} is on the frontier. */
  public boolean isOnFrontier(String label) {
    return ranked.stream().anyMatch(r -> r.onFrontier() && r.point().label().equals(label));
  }
}
