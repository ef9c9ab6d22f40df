package dev.compactor.core.frontier;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** EI and P(feasible) against their closed forms with tabulated normal values. */
class ConstrainedEiTest {

  @Test
  void normalDistributionMatchesTables() {
    assertEquals(0.5, ConstrainedEi.cdf(0), 1e-7);
    assertEquals(0.8413447460685429, ConstrainedEi.cdf(1), 2e-7);
    assertEquals(0.024997895148220435, ConstrainedEi.cdf(-1.96), 2e-8);
    assertEquals(0.9986501019683699, ConstrainedEi.cdf(3), 2e-7);
    assertEquals(0.24197072451914337, ConstrainedEi.pdf(1), 1e-15);
  }

  @Test
  void expectedImprovementHasItsClosedForm() {
    // mean 1, sd 2, best 3: z = 1, EI = 2 Φ(1) + 2 φ(1)
    assertEquals(
        2 * 0.8413447460685429 + 2 * 0.24197072451914337,
        ConstrainedEi.expectedImprovement(1, 2, 3),
        1e-6);
    // at the best: σ φ(0)
    assertEquals(0.5 / Math.sqrt(2 * Math.PI), ConstrainedEi.expectedImprovement(4, 0.5, 4), 1e-7);
    // mean 5 above best 3, sd 1: z = -2, EI = -2 Φ(-2) + φ(-2)
    assertEquals(
        -2 * 0.022750131948179195 + 0.05399096651318806,
        ConstrainedEi.expectedImprovement(5, 1, 3),
        1e-7);
    assertEquals(1.5, ConstrainedEi.expectedImprovement(1.5, 0, 3), 0);
    assertEquals(0, ConstrainedEi.expectedImprovement(4, 0, 3), 0);
  }

  @Test
  void acquisitionIsEiTimesFeasibilityOrFeasibilityAlone() {
    GaussianProcess.Posterior size = new GaussianProcess.Posterior(1, 4); // sd 2
    GaussianProcess.Posterior quality = new GaussianProcess.Posterior(4.0, 0.01); // sd 0.1
    // bound 4.1: P = Φ(1)
    double pf = 0.8413447460685429;
    assertEquals(pf, ConstrainedEi.probabilityBelow(4.0, 0.1, 4.1), 2e-7);
    assertEquals(
        (2 * 0.8413447460685429 + 2 * 0.24197072451914337) * pf,
        ConstrainedEi.acquisition(size, quality, 4.1, 3),
        1e-6);
    assertEquals(pf, ConstrainedEi.acquisition(size, quality, 4.1, Double.NaN), 2e-7);
  }
}
