package dev.compactor.core.factorize;

/**
 * Truncated SVD of one linear's weight {@code W} ({@code [out, in]}, row-major) into {@code u}
 * ({@code [out, r]}) and {@code v} ({@code [r, in]}) with {@code W ~ u v}, so {@code y = x W^T}
 * becomes {@code (x v^T) u^T}: {@code r (out + in)} multiply-adds per token instead of {@code out
 * in}.
 *
 * <p>{@link #plain}: {@code u = U_r S_r}, {@code v = V_r^T} from the SVD of {@code W}; it minimises
 * {@code ||W - u v||_F}, which weighs every input direction alike.
 *
 * <p>{@link #whitened} is SVD-LLM's truncation-aware whitening (Wang et al. 2024, "SVD-LLM:
 * Truncation-aware Singular Value Decomposition for Large Language Model Compression"): with the
 * Gram matrix {@code G = X^T X} of the linear's calibration inputs and its Cholesky factor {@code G
 * = S S^T}, the SVD of {@code W S} is truncated and {@code u = U_r S_r}, {@code v = V_r^T S^-1}
 * (triangular solves, no inverse). Then {@code ||X (W - u v)^T||_F} equals the Frobenius norm of
 * the discarded singular values of {@code W S}: truncation minimises the output error on the
 * calibration inputs, not the weight error. When {@code G} is not positive definite (dead input
 * channels, fewer tokens than columns) a ridge {@code lambda I} is added, starting at {@code 1e-6}
 * of the mean diagonal and growing tenfold until the factorization succeeds; {@link
 * Factors#damping} reports it as that fraction.
 *
 * <p>All arithmetic is in double; the factors are returned as float.
 */
public final class LowRankFactorizer {

  /** Largest ridge tried, as a fraction of the Gram matrix's mean diagonal. */
  static final double MAX_DAMPING = 1.0;

  private LowRankFactorizer() {}

  /**
   * A factorized (or, rank 0, kept dense) matrix.
   *
   * @param rank kept rank; 0 when a low rank would not save parameters
   * @param u {@code [out, rank]} row-major, null when dense
   * @param v {@code [rank, in]} row-major, null when dense
   * @param singularValues the spectrum the rank was chosen on ({@code W}'s, or {@code W S}'s)
   * @param energy share of {@code sum s^2} kept (1 when dense)
   * @param damping ridge added to {@code G}, as a fraction of its mean diagonal (0: none, plain)
   */
  public record Factors(
      int rank, float[] u, float[] v, double[] singularValues, double energy, double damping) {
    public boolean dense() {
      return rank == 0;
    }
  }

  /** Plain truncated SVD of {@code w} ({@code [out, in]}). */
  public static Factors plain(float[] w, int out, int in, RankRule rule) {
    check(w, out, in);
    Svd svd = Svd.of(w, out, in);
    double[] s = svd.singularValues();
    int r = rule.rank(out, in, s);
    if (r == 0) {
      return new Factors(0, null, null, s, 1, 0);
    }
    float[] u = new float[out * r];
    float[] v = new float[r * in];
    for (int o = 0; o < out; o++) {
      for (int t = 0; t < r; t++) {
        u[o * r + t] = (float) (svd.u(o, t) * s[t]);
      }
    }
    for (int t = 0; t < r; t++) {
      for (int i = 0; i < in; i++) {
        v[t * in + i] = (float) svd.v(i, t);
      }
    }
    return new Factors(r, u, v, s, energy(s, r), 0);
  }

  /**
   * SVD-LLM: truncated SVD of {@code w S} with {@code gram = X^T X = S S^T} ({@code [in, in]},
   * row-major), mapped back through {@code S^-1}.
   */
  public static Factors whitened(float[] w, int out, int in, double[] gram, RankRule rule) {
    check(w, out, in);
    if (gram.length != (long) in * in) {
      throw new IllegalArgumentException(
          "expected a " + in + " x " + in + " Gram matrix, found " + gram.length + " values");
    }
    double mean = 0;
    for (int i = 0; i < in; i++) {
      mean += gram[i * in + i];
    }
    mean /= in;
    double damping = 0;
    double[] l = cholesky(gram, in, 0);
    for (double f = 1e-6; l == null; f *= 10) {
      if (f > MAX_DAMPING || !(mean > 0)) {
        throw new ArithmeticException(
            "the calibration Gram matrix is not positive definite even with a ridge of "
                + MAX_DAMPING
                + " x its mean diagonal "
                + mean);
      }
      damping = f;
      l = cholesky(gram, in, f * mean);
    }
    // M = W S, S lower triangular: M[o][j] = sum_{i >= j} W[o][i] S[i][j]
    double[] ws = new double[out * in];
    for (int o = 0; o < out; o++) {
      int row = o * in;
      for (int i = 0; i < in; i++) {
        double wi = w[row + i];
        if (wi == 0) {
          continue;
        }
        int li = i * in;
        for (int j = 0; j <= i; j++) {
          ws[row + j] += wi * l[li + j];
        }
      }
    }
    Svd svd = Svd.of(ws, out, in);
    double[] s = svd.singularValues();
    int r = rule.rank(out, in, s);
    if (r == 0) {
      return new Factors(0, null, null, s, 1, damping);
    }
    float[] u = new float[out * r];
    for (int o = 0; o < out; o++) {
      for (int t = 0; t < r; t++) {
        u[o * r + t] = (float) (svd.u(o, t) * s[t]);
      }
    }
    // row t of v solves x S = V_t^T, i.e. S^T x^T = V_t: back substitution from the last column
    float[] v = new float[r * in];
    double[] x = new double[in];
    for (int t = 0; t < r; t++) {
      for (int k = in - 1; k >= 0; k--) {
        double acc = svd.v(k, t);
        for (int i = k + 1; i < in; i++) {
          acc -= x[i] * l[i * in + k];
        }
        x[k] = acc / l[k * in + k];
      }
      for (int k = 0; k < in; k++) {
        v[t * in + k] = (float) x[k];
      }
    }
    return new Factors(r, u, v, s, energy(s, r), damping);
  }

  /** {@code u v} ({@code [out, r] x [r, in]}) in double, rounded to float. */
  public static float[] product(float[] u, float[] v, int out, int r, int in) {
    if (u.length != (long) out * r || v.length != (long) r * in) {
      throw new IllegalArgumentException(
          "expected u [" + out + ", " + r + "] and v [" + r + ", " + in + "]");
    }
    float[] w = new float[out * in];
    double[] row = new double[in];
    for (int o = 0; o < out; o++) {
      java.util.Arrays.fill(row, 0);
      for (int t = 0; t < r; t++) {
        double ut = u[o * r + t];
        int vt = t * in;
        for (int i = 0; i < in; i++) {
          row[i] += ut * v[vt + i];
        }
      }
      for (int i = 0; i < in; i++) {
        w[o * in + i] = (float) row[i];
      }
    }
    return w;
  }

  /**
   * Lower Cholesky factor of {@code g + ridge I} (row-major), or null when a pivot is not positive
   * beyond rounding (below 1e-9 of its diagonal entry).
   */
  static double[] cholesky(double[] g, int n, double ridge) {
    double[] l = new double[n * n];
    for (int j = 0; j < n; j++) {
      double d = g[j * n + j] + ridge;
      int lj = j * n;
      for (int k = 0; k < j; k++) {
        d -= l[lj + k] * l[lj + k];
      }
      // a pivot at rounding level means a direction the inputs (nearly) never take
      if (!(d > 1e-9 * (g[j * n + j] + ridge))) {
        return null;
      }
      double djj = Math.sqrt(d);
      l[lj + j] = djj;
      for (int i = j + 1; i < n; i++) {
        int li = i * n;
        double acc = 0.5 * (g[li + j] + g[lj + i]);
        for (int k = 0; k < j; k++) {
          acc -= l[li + k] * l[lj + k];
        }
        l[li + j] = acc / djj;
      }
    }
    return l;
  }

  private static double energy(double[] s, int r) {
    double total = 0;
    double kept = 0;
    for (int j = 0; j < s.length; j++) {
      total += s[j] * s[j];
      if (j < r) {
        kept += s[j] * s[j];
      }
    }
    return total == 0 ? 1 : kept / total;
  }

  private static void check(float[] w, int out, int in) {
    if (out < 1 || in < 1 || w.length != (long) out * in) {
      throw new IllegalArgumentException(
          "expected a weight [" + out + ", " + in + "], found " + w.length + " values");
    }
  }
}
