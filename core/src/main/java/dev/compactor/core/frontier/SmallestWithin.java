package dev.compactor.core.frontier;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * "The smallest model within X % of the best quality": among the points that have both a size and a
 * quality value, the best quality q* sets a bound — {@code q ≤ q* + X·|q*|} when quality is
 * minimised (perplexity, KL), {@code q ≥ q* − X·|q*|} when maximised (top-1, accuracy) — and the
 * smallest point within it is chosen (equal sizes: the better quality, then the label). The chosen
 * point is always on the (size, quality) Pareto frontier.
 *
 * <p>The bound is relative to the best of the candidates, not to the uncompressed baseline: a sweep
 * compares its recipes with each other. For KL, whose best value is near 0, a relative bound is
 * tight; give a larger X or choose by perplexity.
 */
public final class SmallestWithin {

  /**
   * The outcome of a selection.
   *
   * @param chosen the smallest eligible point
   * @param best the point with the best quality
   * @param bound the quality bound (inclusive)
   * @param eligible every point within the bound, smallest first
   * @param skipped labels of points left out because they lack size or quality
   */
  public record Selection(
      FrontierPoint chosen,
      FrontierPoint best,
      double bound,
      List<FrontierPoint> eligible,
      List<String> skipped) {
    public Selection {
      eligible = List.copyOf(eligible);
      skipped = List.copyOf(skipped);
    }
  }

  private SmallestWithin() {}

  /**
   * Chooses the smallest point within {@code within} (a fraction, 0.05 = 5 %) of the best quality.
   *
   * @param size minimised size objective
   * @param quality the quality objective either way
   * @return empty when no point has both values
   */
  public static Optional<Selection> select(
      List<FrontierPoint> points, Objective size, Objective quality, double within) {
    if (!(within >= 0) || Double.isInfinite(within)) {
      throw new IllegalArgumentException("within must be a finite fraction >= 0, found " + within);
    }
    if (size.goal() != Objective.Goal.MINIMIZE) {
      throw new IllegalArgumentException("size must be minimised: " + size);
    }
    List<FrontierPoint> complete = new ArrayList<>();
    List<String> skipped = new ArrayList<>();
    for (FrontierPoint p : points) {
      if (p.value(size.name()) == null || p.value(quality.name()) == null) {
        skipped.add(p.label());
      } else {
        complete.add(p);
      }
    }
    if (complete.isEmpty()) {
      return Optional.empty();
    }
    Comparator<FrontierPoint> byQuality =
        (a, b) -> quality.compare(a.value(quality.name()), b.value(quality.name()));
    FrontierPoint best =
        complete.stream().min(byQuality.thenComparing(FrontierPoint::label)).orElseThrow();
    double q = best.value(quality.name());
    double slack = within * Math.abs(q);
    double bound = quality.goal() == Objective.Goal.MINIMIZE ? q + slack : q - slack;
    Comparator<FrontierPoint> bySize =
        Comparator.<FrontierPoint>comparingDouble(p -> p.value(size.name()))
            .thenComparing(byQuality)
            .thenComparing(FrontierPoint::label);
    List<FrontierPoint> eligible =
        complete.stream()
            .filter(p -> quality.compare(p.value(quality.name()), bound) <= 0)
            .sorted(bySize)
            .toList();
    return Optional.of(new Selection(eligible.get(0), best, bound, eligible, skipped));
  }
}
