package dev.compactor.core.frontier;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Optional;

/**
 * Which sweep point to submit next. The sweep runner asks for a point whenever it has a free slot
 * and tells the proposer how each submitted point ended; grid and random mode are a fixed list
 * ({@link #fixed}), bayesian mode ({@link BayesianProposer}) chooses from what has ended so far.
 */
public interface SweepProposer {

  /**
   * What the models predicted for a bayesian pick.
   *
   * @param acquisition the constrained expected improvement (or P(feasible) before any feasible
   *     point) the pick maximised
   * @param feasible P(quality within the bound)
   * @param sizeBytes predicted size: exp of the predicted mean log size
   * @param sdLogSize predicted standard deviation of the log size
   * @param quality predicted mean quality, in the orientation given to the proposer (minimised)
   * @param sdQuality predicted standard deviation of the quality
   */
  record Prediction(
      double acquisition,
      double feasible,
      double sizeBytes,
      double sdLogSize,
      double quality,
      double sdQuality) {}

  /**
   * A point to submit.
   *
   * @param point the combination
   * @param prediction why it was chosen; null for a fixed list or a seeded random start
   */
  record Pick(SweepSpec.Point point, Prediction prediction) {}

  /** The next point to submit, or empty when the budget or the candidates are spent. */
  Optional<Pick> next();

  /**
   * A submitted point was evaluated.
   *
   * @param sizeBytes its size, > 0
   * @param quality its quality, smaller is better (negate a maximised one)
   * @param bound the quality a point may have and count as feasible (same orientation)
   */
  void evaluated(SweepSpec.Point point, double sizeBytes, double quality, double bound);

  /** A submitted point ended without an evaluation (failed, timed out). */
  void failed(SweepSpec.Point point);

  /** Whether {@link #evaluated} needs figures; false for a fixed list. */
  default boolean adaptive() {
    return false;
  }

  /** The points in order, each once: grid and random mode. */
  static SweepProposer fixed(List<SweepSpec.Point> points) {
    Deque<SweepSpec.Point> queue = new ArrayDeque<>(points);
    return new SweepProposer() {
      @Override
      public Optional<Pick> next() {
        return Optional.ofNullable(queue.poll()).map(p -> new Pick(p, null));
      }

      @Override
      public void evaluated(
          SweepSpec.Point point, double sizeBytes, double quality, double bound) {}

      @Override
      public void failed(SweepSpec.Point point) {}
    };
  }

  /**
   * The proposer of a spec's mode over its runnable points (the valid ones, in grid order):
   * grid/random run them all in order; bayesian starts with {@code min(budget, max(2, parallel))}
   * seeded random ones and then chooses by constrained expected improvement.
   */
  static SweepProposer of(SweepSpec spec, List<SweepSpec.Point> runnable, int parallel) {
    if (spec.mode() != SweepSpec.Mode.BAYESIAN) {
      return fixed(runnable);
    }
    return new BayesianProposer(
        runnable,
        new SearchSpace(spec.parameters()),
        spec.budget(),
        Math.min(spec.budget(), Math.max(2, parallel)),
        spec.seed());
  }
}
