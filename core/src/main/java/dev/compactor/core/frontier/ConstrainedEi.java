package dev.compactor.core.frontier;

/**
 * Constrained expected improvement (Gardner et al., "Bayesian optimization with inequality
 * constraints", ICML 2014) for one minimised objective f and one constraint c ≤ bound, each
 * modelled by its own independent Gaussian process: {@code a(x) = EI_f(x) · P(c(x) ≤ bound)}, where
 * EI is taken against the best objective value among the feasible points observed; while no
 * observed point is feasible, {@code a(x) = P(c(x) ≤ bound)}.
 */
public final class ConstrainedEi {

  private ConstrainedEi() {}

  /**
   * Expected improvement of a normal {@code N(mean, sd²)} below {@code best}: {@code (best − μ)
   * Φ(z) + σ φ(z)}, {@code z = (best − μ)/σ}; {@code max(best − μ, 0)} when σ = 0.
   */
  public static double expectedImprovement(double mean, double sd, double best) {
    double d = best - mean;
    if (!(sd > 0)) {
      return Math.max(d, 0);
    }
    double z = d / sd;
    return Math.max(d * cdf(z) + sd * pdf(z), 0);
  }

  /** {@code P(X ≤ bound)} for {@code X ~ N(mean, sd²)}; a step when σ = 0. */
  public static double probabilityBelow(double mean, double sd, double bound) {
    if (!(sd > 0)) {
      return mean <= bound ? 1 : 0;
    }
    return cdf((bound - mean) / sd);
  }

  /**
   * The acquisition: {@code EI(objective below bestFeasible) · P(constraint ≤ bound)}, or the
   * probability alone when {@code bestFeasible} is NaN (no feasible point observed yet).
   */
  public static double acquisition(
      GaussianProcess.Posterior objective,
      GaussianProcess.Posterior constraint,
      double bound,
      double bestFeasible) {
    double pf = probabilityBelow(constraint.mean(), constraint.sd(), bound);
    if (Double.isNaN(bestFeasible)) {
      return pf;
    }
    return expectedImprovement(objective.mean(), objective.sd(), bestFeasible) * pf;
  }

  /** The standard normal density. */
  public static double pdf(double z) {
    return Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
  }

  /** The standard normal distribution function, {@code ½ erfc(−z/√2)}. */
  public static double cdf(double z) {
    return 0.5 * erfc(-z / Math.sqrt(2));
  }

  /**
   * The complementary error function, Chebyshev fit with fractional error below 1.2e-7 everywhere
   * (Press et al., Numerical Recipes, 2nd ed., section 6.2, {@code erfcc}).
   */
  static double erfc(double x) {
    double t = 1 / (1 + 0.5 * Math.abs(x));
    double p =
        -x * x
            - 1.26551223
            + t
                * (1.00002368
                    + t
                        * (0.37409196
                            + t
                                * (0.09678418
                                    + t
                                        * (-0.18628806
                                            + t
                                                * (0.27886807
                                                    + t
                                                        * (-1.13520398
                                                            + t
                                                                * (1.48851587
                                                                    + t
                                                                        * (-0.82215223
                                                                            + t
                                                                                * 0.17087277))))))));
    double ans = t * Math.exp(p);
    return x >= 0 ? ans : 2 - ans;
  }
}
