package dev.compactor.core.frontier;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;

/**
 * Bayesian mode of a sweep: the smallest model whose quality is within a bound, searched with
 * constrained expected improvement ({@link ConstrainedEi}) over the grid's points placed by {@link
 * SearchSpace}. One Gaussian process ({@link GaussianProcess#fit}) models the log of the stored
 * size, one the quality; both are fitted on the points that ended with an evaluation (failed ones
 * are left out and not proposed again).
 *
 * <p>The first {@code initial} picks are the candidates in a shuffled order drawn with {@code seed}
 * (as are later ones while nothing has been evaluated yet). After that every pick is the
 * unevaluated, not running candidate with the highest acquisition, ties broken by P(feasible), then
 * the smaller predicted size, then grid order. Points still running count with their predicted
 * means ("kriging believer", Ginsbourger et al. 2010): both processes are refitted, with the length
 * scales fitted on the ended points, through those means too, so parallel picks spread out instead
 * of repeating the same guess. The best feasible size EI improves on is taken from ended points
 * only. It stops when {@code budget} points have been submitted (failed ones count) or no candidate
 * is left.
 */
public final class BayesianProposer implements SweepProposer {

  private record Observed(SweepSpec.Point point, double[] x, double logSize, double quality) {}

  private final List<SweepSpec.Point> candidates;
  private final Map<Integer, double[]> coords = new LinkedHashMap<>();
  private final int budget;
  private final int initial;
  private final List<SweepSpec.Point> shuffled;
  private final Set<Integer> used = new HashSet<>();
  private final Set<Integer> pending = new HashSet<>();
  private final List<Observed> observed = new ArrayList<>();
  private double bound = Double.NaN;
  private int submitted;

  /**
   * @param candidates the points it may pick (valid ones), each with a distinct grid index
   * @param space where points lie
   * @param budget how many points to submit in all, >= 1
   * @param initial how many seeded random points first, 1..budget
   * @param seed the shuffle's seed
   */
  public BayesianProposer(
      List<SweepSpec.Point> candidates, SearchSpace space, int budget, int initial, long seed) {
    if (budget < 1 || initial < 1 || initial > budget) {
      throw new IllegalArgumentException(
          "expected 1 <= initial <= budget, found initial " + initial + ", budget " + budget);
    }
    this.candidates = List.copyOf(candidates);
    for (SweepSpec.Point p : this.candidates) {
      if (coords.put(p.index(), space.encode(p.assignment())) != null) {
        throw new IllegalArgumentException("grid index " + p.index() + " listed twice");
      }
    }
    this.budget = budget;
    this.initial = initial;
    List<SweepSpec.Point> s = new ArrayList<>(this.candidates);
    Collections.shuffle(s, new Random(seed));
    this.shuffled = List.copyOf(s);
  }

  @Override
  public boolean adaptive() {
    return true;
  }

  @Override
  public Optional<Pick> next() {
    if (submitted >= budget || used.size() >= candidates.size()) {
      return Optional.empty();
    }
    Pick pick;
    if (submitted < initial || observed.isEmpty()) {
      SweepSpec.Point p =
          shuffled.stream().filter(c -> !used.contains(c.index())).findFirst().orElseThrow();
      pick = new Pick(p, null);
    } else {
      pick = best();
    }
    used.add(pick.point().index());
    pending.add(pick.point().index());
    submitted++;
    return Optional.of(pick);
  }

  @Override
  public void evaluated(SweepSpec.Point point, double sizeBytes, double quality, double bound) {
    if (!pending.remove(point.index())) {
      throw new IllegalArgumentException(point.name() + " was not submitted or has ended");
    }
    if (!(sizeBytes > 0) || Double.isInfinite(sizeBytes) || !Double.isFinite(quality)) {
      throw new IllegalArgumentException(
          point.name()
              + ": expected a size > 0 and a finite quality, found "
              + sizeBytes
              + ", "
              + quality);
    }
    if (Double.isNaN(bound)) {
      throw new IllegalArgumentException(point.name() + ": the quality bound is NaN");
    }
    this.bound = bound;
    observed.add(new Observed(point, coords.get(point.index()), Math.log(sizeBytes), quality));
  }

  @Override
  public void failed(SweepSpec.Point point) {
    if (!pending.remove(point.index())) {
      throw new IllegalArgumentException(point.name() + " was not submitted or has ended");
    }
  }

  private Pick best() {
    int n = observed.size();
    double[][] x = new double[n][];
    double[] ls = new double[n];
    double[] q = new double[n];
    double bestFeasible = Double.NaN;
    for (int i = 0; i < n; i++) {
      Observed o = observed.get(i);
      x[i] = o.x();
      ls[i] = o.logSize();
      q[i] = o.quality();
      if (o.quality() <= bound && !(o.logSize() >= bestFeasible)) {
        bestFeasible = o.logSize();
      }
    }
    GaussianProcess size = GaussianProcess.fit(x, ls);
    GaussianProcess quality = GaussianProcess.fit(x, q);
    if (!pending.isEmpty()) {
      List<Integer> running = pending.stream().sorted().toList();
      int m = n + running.size();
      double[][] x2 = java.util.Arrays.copyOf(x, m);
      double[] ls2 = java.util.Arrays.copyOf(ls, m);
      double[] q2 = java.util.Arrays.copyOf(q, m);
      for (int j = 0; j < running.size(); j++) {
        double[] c = coords.get(running.get(j));
        x2[n + j] = c;
        ls2[n + j] = size.predict(c).mean();
        q2[n + j] = quality.predict(c).mean();
      }
      size = size.refit(x2, ls2);
      quality = quality.refit(x2, q2);
    }
    Pick best = null;
    double[] key = null;
    for (SweepSpec.Point c : candidates) {
      if (used.contains(c.index())) {
        continue;
      }
      double[] p = coords.get(c.index());
      GaussianProcess.Posterior s = size.predict(p);
      GaussianProcess.Posterior f = quality.predict(p);
      double a = ConstrainedEi.acquisition(s, f, bound, bestFeasible);
      double pf = ConstrainedEi.probabilityBelow(f.mean(), f.sd(), bound);
      double[] k = {a, pf, -s.mean()};
      if (key == null || greater(k, key)) {
        key = k;
        best = new Pick(c, new Prediction(a, pf, Math.exp(s.mean()), s.sd(), f.mean(), f.sd()));
      }
    }
    return best;
  }

  private static boolean greater(double[] a, double[] b) {
    for (int i = 0; i < a.length; i++) {
      int c = Double.compare(a[i], b[i]);
      if (c != 0) {
        return c > 0;
      }
    }
    return false;
  }
}
