package dev.compactor.core.frontier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The posterior against closed forms written out here: explicit 2x2 and 3x3 inverses. */
class GaussianProcessTest {

  /** Matérn 5/2 at distance r, length scale l, written independently of the class. */
  static double matern(double r, double l) {
    double s = Math.sqrt(5) * r / l;
    return (1 + s + s * s / 3) * Math.exp(-s);
  }

  @Test
  void twoPointPosteriorEqualsTheExplicitInverse() {
    double l = 0.5;
    double noise = 1e-3;
    double[][] x = {{0.2}, {0.7}};
    double[] y = {1.0, 3.0};
    GaussianProcess gp = GaussianProcess.of(x, y, l, noise);
    // standardised: mean 2, population sd 1, so z = (-1, 1)
    double a = 1 + noise;
    double b = matern(0.5, l);
    double det = a * a - b * b;
    double[][] inv = {{a / det, -b / det}, {-b / det, a / det}};
    double[] z = {-1, 1};
    double[] ks = {matern(0.2, l), matern(0.3, l)}; // test point 0.4
    double mean = 2;
    double quad = 0;
    for (int i = 0; i < 2; i++) {
      for (int j = 0; j < 2; j++) {
        mean += ks[i] * inv[i][j] * z[j];
        quad += ks[i] * inv[i][j] * ks[j];
      }
    }
    GaussianProcess.Posterior p = gp.predict(new double[] {0.4});
    assertEquals(mean, p.mean(), 1e-12);
    assertEquals(1 - quad, p.variance(), 1e-12);
    // log marginal likelihood of z: -zᵀK⁻¹z/2 - log det K /2 - log 2π
    double zkz = 0;
    for (int i = 0; i < 2; i++) {
      for (int j = 0; j < 2; j++) {
        zkz += z[i] * inv[i][j] * z[j];
      }
    }
    assertEquals(
        -0.5 * zkz - 0.5 * Math.log(det) - Math.log(2 * Math.PI), gp.logLikelihood(), 1e-12);
    // near-interpolation at a data point, variance about the noise
    GaussianProcess.Posterior at = gp.predict(new double[] {0.7});
    assertEquals(3.0, at.mean(), 3e-3);
    assertTrue(at.variance() < 2e-3, "variance at a data point: " + at.variance());
    // far away: the prior, mean of the data and variance of the data (sd 1 here)
    GaussianProcess.Posterior far = gp.predict(new double[] {30});
    assertEquals(2.0, far.mean(), 1e-9);
    assertEquals(1.0, far.variance(), 1e-9);
  }

  @Test
  void threePointPosteriorInTwoDimensionsEqualsTheAdjugateInverse() {
    double l = 0.4;
    double noise = 1e-4;
    double[][] x = {{0, 0}, {1, 0}, {0.5, 0.5}};
    double[] y = {10, 14, 15};
    GaussianProcess gp = GaussianProcess.of(x, y, l, noise);
    double m = 13;
    double sd = Math.sqrt((9 + 1 + 4) / 3.0);
    double[] z = {(10 - m) / sd, (14 - m) / sd, (15 - m) / sd};
    double[][] k = new double[3][3];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        double r = Math.hypot(x[i][0] - x[j][0], x[i][1] - x[j][1]);
        k[i][j] = matern(r, l) + (i == j ? noise : 0);
      }
    }
    double[][] inv = inverse3(k);
    double[] t = {0.3, 0.6};
    double[] ks = new double[3];
    for (int i = 0; i < 3; i++) {
      ks[i] = matern(Math.hypot(x[i][0] - t[0], x[i][1] - t[1]), l);
    }
    double mz = 0;
    double quad = 0;
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        mz += ks[i] * inv[i][j] * z[j];
        quad += ks[i] * inv[i][j] * ks[j];
      }
    }
    GaussianProcess.Posterior p = gp.predict(t);
    assertEquals(m + sd * mz, p.mean(), 1e-9);
    assertEquals((1 - quad) * sd * sd, p.variance(), 1e-9);
  }

  @Test
  void fitChoosesTheLengthScaleOfHighestLikelihood() {
    double[][] x = {{0}, {0.2}, {0.4}, {0.6}, {0.8}, {1}};
    double[] y = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      y[i] = Math.sin(3 * x[i][0]);
    }
    GaussianProcess best = GaussianProcess.fit(x, y);
    for (double l : GaussianProcess.LENGTH_SCALES) {
      assertTrue(
          GaussianProcess.of(x, y, l, GaussianProcess.NOISE).logLikelihood()
              <= best.logLikelihood());
    }
    // a smooth curve: not the shortest scale
    assertTrue(best.lengthScale() > GaussianProcess.LENGTH_SCALES[0]);
    assertThrows(IllegalArgumentException.class, () -> GaussianProcess.fit(new double[0][], y));
    assertThrows(
        IllegalArgumentException.class,
        () -> GaussianProcess.fit(new double[][] {{0}}, new double[] {Double.NaN}));
  }

  /** The inverse of a 3x3 matrix as adjugate / determinant. */
  static double[][] inverse3(double[][] a) {
    double[][] c = new double[3][3];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        int r0 = (i + 1) % 3;
        int r1 = (i + 2) % 3;
        int c0 = (j + 1) % 3;
        int c1 = (j + 2) % 3;
        // cyclic minors carry the cofactor sign themselves
        c[i][j] = a[r0][c0] * a[r1][c1] - a[r0][c1] * a[r1][c0];
      }
    }
    double det = a[0][0] * c[0][0] + a[0][1] * c[0][1] + a[0][2] * c[0][2];
    double[][] inv = new double[3][3];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        inv[i][j] = c[j][i] / det;
      }
    }
    return inv;
  }
}
