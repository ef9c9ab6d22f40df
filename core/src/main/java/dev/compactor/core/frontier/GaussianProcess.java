package dev.compactor.core.frontier;

/**
 * A Gaussian-process regression of one outcome over points in [0,1]^d, for the sweep's bayesian
 * mode: Matérn 5/2 kernel {@code k(r) = (1 + √5 r/ℓ + 5r²/(3ℓ²)) exp(−√5 r/ℓ)} with unit signal
 * variance on the standardised outcome (subtract the mean, divide by the standard deviation of the
 * observed values, 1 when they are all equal), plus a fixed noise variance on the diagonal. The
 * posterior is the textbook one (Rasmussen and Williams 2006, algorithm 2.1): with {@code K} the
 * kernel matrix plus noise, {@code mean(x) = k(x)ᵀ K⁻¹ y} and {@code var(x) = k(x,x) − k(x)ᵀ K⁻¹
 * k(x)}, solved through a Cholesky factor, then mapped back to the outcome's units.
 *
 * <p>{@link #fit} picks the length scale ℓ from a short fixed list by the log marginal likelihood;
 * {@link #of} takes it as given.
 */
public final class GaussianProcess {

  /** The length scales {@link #fit} chooses among (inputs are scaled to [0,1]). */
  static final double[] LENGTH_SCALES = {0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.6};

  /** Noise variance on the standardised outcome: jitter, and room for small measurement noise. */
  public static final double NOISE = 1e-4;

  private final double[][] x;
  private final double lengthScale;
  private final double noise;
  private final double mean;
  private final double scale;
  private final double[][] chol;
  private final double[] alpha;
  private final double logLikelihood;

  private GaussianProcess(double[][] x, double[] y, double lengthScale, double noise) {
    int n = x.length;
    if (n == 0 || y.length != n) {
      throw new IllegalArgumentException(
          "a Gaussian process needs at least one point and one value per point, found "
              + n
              + " points and "
              + y.length
              + " values");
    }
    if (!(lengthScale > 0) || !(noise > 0)) {
      throw new IllegalArgumentException(
          "length scale and noise must be > 0, found " + lengthScale + ", " + noise);
    }
    this.x = x.clone();
    this.lengthScale = lengthScale;
    this.noise = noise;
    double m = 0;
    for (double v : y) {
      if (!Double.isFinite(v)) {
        throw new IllegalArgumentException("a Gaussian process needs finite values, found " + v);
      }
      m += v;
    }
    m /= n;
    double ss = 0;
    for (double v : y) {
      ss += (v - m) * (v - m);
    }
    double sd = Math.sqrt(ss / n);
    this.mean = m;
    this.scale = sd > 1e-12 * Math.max(1, Math.abs(m)) ? sd : 1;
    double[] z = new double[n];
    for (int i = 0; i < n; i++) {
      z[i] = (y[i] - mean) / scale;
    }
    double[][] k = new double[n][n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        k[i][j] = kernel(x[i], x[j]) + (i == j ? noise : 0);
      }
    }
    this.chol = cholesky(k);
    this.alpha = backward(chol, forward(chol, z));
    double ll = 0;
    for (int i = 0; i < n; i++) {
      ll -= 0.5 * z[i] * alpha[i] + Math.log(chol[i][i]);
    }
    this.logLikelihood = ll - 0.5 * n * Math.log(2 * Math.PI);
  }

  /** The process through {@code (x[i], y[i])} with the given length scale and noise variance. */
  public static GaussianProcess of(double[][] x, double[] y, double lengthScale, double noise) {
    return new GaussianProcess(x, y, lengthScale, noise);
  }

  /**
   * The process through {@code (x[i], y[i])} whose length scale (from {@link #LENGTH_SCALES}) has
   * the highest log marginal likelihood of the standardised values; noise {@link #NOISE}.
   */
  public static GaussianProcess fit(double[][] x, double[] y) {
    GaussianProcess best = null;
    for (double l : LENGTH_SCALES) {
      GaussianProcess g = new GaussianProcess(x, y, l, NOISE);
      if (best == null || g.logLikelihood > best.logLikelihood) {
        best = g;
      }
    }
    return best;
  }

  /** The same length scale and noise, through other points (used for the kriging believer). */
  public GaussianProcess refit(double[][] x2, double[] y2) {
    return new GaussianProcess(x2, y2, lengthScale, noise);
  }

  public double lengthScale() {
    return lengthScale;
  }

  /** Log marginal likelihood of the standardised values. */
  public double logLikelihood() {
    return logLikelihood;
  }

  /**
   * The posterior at a point, in the outcome's units.
   *
   * @param mean posterior mean
   * @param variance posterior variance of the latent function (without the noise), >= 0
   */
  public record Posterior(double mean, double variance) {
    public double sd() {
      return Math.sqrt(variance);
    }
  }

  /** The posterior mean and variance at {@code p}. */
  public Posterior predict(double[] p) {
    int n = x.length;
    double[] ks = new double[n];
    for (int i = 0; i < n; i++) {
      ks[i] = kernel(x[i], p);
    }
    double mu = 0;
    for (int i = 0; i < n; i++) {
      mu += ks[i] * alpha[i];
    }
    double[] v = forward(chol, ks);
    double var = kernel(p, p);
    for (double e : v) {
      var -= e * e;
    }
    return new Posterior(mean + scale * mu, Math.max(var, 0) * scale * scale);
  }

  /** Matérn 5/2 with unit variance and this process's length scale. */
  double kernel(double[] a, double[] b) {
    if (a.length != b.length) {
      throw new IllegalArgumentException(
          "points of different dimension: " + a.length + " and " + b.length);
    }
    double d2 = 0;
    for (int i = 0; i < a.length; i++) {
      d2 += (a[i] - b[i]) * (a[i] - b[i]);
    }
    double r = Math.sqrt(d2) / lengthScale;
    double s5 = Math.sqrt(5) * r;
    return (1 + s5 + 5 * r * r / 3) * Math.exp(-s5);
  }

  private static double[][] cholesky(double[][] a) {
    int n = a.length;
    double[][] l = new double[n][n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        double s = a[i][j];
        for (int k = 0; k < j; k++) {
          s -= l[i][k] * l[j][k];
        }
        if (i == j) {
          if (!(s > 0)) {
            throw new IllegalStateException(
                "kernel matrix not positive definite at row " + i + " (two points identical?)");
          }
          l[i][i] = Math.sqrt(s);
        } else {
          l[i][j] = s / l[j][j];
        }
      }
    }
    return l;
  }

  /** Solves L z = b. */
  private static double[] forward(double[][] l, double[] b) {
    int n = b.length;
    double[] z = new double[n];
    for (int i = 0; i < n; i++) {
      double s = b[i];
      for (int k = 0; k < i; k++) {
        s -= l[i][k] * z[k];
      }
      z[i] = s / l[i][i];
    }
    return z;
  }

  /** Solves Lᵀ z = b. */
  private static double[] backward(double[][] l, double[] b) {
    int n = b.length;
    double[] z = new double[n];
    for (int i = n - 1; i >= 0; i--) {
      double s = b[i];
      for (int k = i + 1; k < n; k++) {
        s -= l[k][i] * z[k];
      }
      z[i] = s / l[i][i];
    }
    return z;
  }
}
