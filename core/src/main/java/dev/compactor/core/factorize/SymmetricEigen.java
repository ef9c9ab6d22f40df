package dev.compactor.core.factorize;

/**
 * Eigendecomposition of a real symmetric matrix in double precision: Householder reduction to
 * tridiagonal form and the implicit QL algorithm, as in EISPACK's {@code tred2}/{@code tql2} (by
 * way of JAMA's {@code EigenvalueDecomposition}, public domain). DJL has no eigen solver; this is
 * O(n^3) with small constants, a 256 x 256 matrix takes a few milliseconds.
 *
 * <p>Eigenvalues come sorted in descending order, with orthonormal eigenvectors to match.
 */
public final class SymmetricEigen {

  private final int n;
  private final double[] values;
  // row j is the eigenvector of values[j]: contiguous, so the QL rotations stream through memory
  private final double[][] vectors;

  private SymmetricEigen(int n, double[] values, double[][] vectors) {
    this.n = n;
    this.values = values;
    this.vectors = vectors;
  }

  /**
   * Decomposes {@code a} (row-major {@code n x n}, symmetric: only its values are read, its
   * symmetry is not checked beyond the lower triangle being used). {@code a} is not modified.
   */
  public static SymmetricEigen of(double[] a, int n) {
    if (n < 1 || a.length != (long) n * n) {
      throw new IllegalArgumentException(
          "expected a square matrix of " + n + " x " + n + ", found " + a.length + " values");
    }
    double[][] v = new double[n][n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        // tred2 reads the lower triangle; symmetrising guards against rounding asymmetry
        v[i][j] = 0.5 * (a[i * n + j] + a[j * n + i]);
      }
    }
    double[] d = new double[n];
    double[] e = new double[n];
    tred2(n, v, d, e);
    double[][] vt = new double[n][n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        vt[j][i] = v[i][j];
      }
    }
    tql2(n, vt, d, e);
    return new SymmetricEigen(n, d, vt);
  }

  public int size() {
    return n;
  }

  /** Eigenvalues, largest first (a copy). */
  public double[] values() {
    return values.clone();
  }

  /** Eigenvalue {@code j} in descending order. */
  public double value(int j) {
    return values[j];
  }

  /** Eigenvector {@code j} (unit length), matching {@link #value(int)}; the live array. */
  double[] vector(int j) {
    return vectors[j];
  }

  /** Eigenvector {@code j} as a new array. */
  public double[] eigenvector(int j) {
    return vectors[j].clone();
  }

  /** Householder tridiagonalisation; v holds the matrix on entry, the transformation on exit. */
  private static void tred2(int n, double[][] v, double[] d, double[] e) {
    for (int j = 0; j < n; j++) {
      d[j] = v[n - 1][j];
    }
    for (int i = n - 1; i > 0; i--) {
      double scale = 0.0;
      double h = 0.0;
      for (int k = 0; k < i; k++) {
        scale += Math.abs(d[k]);
      }
      if (scale == 0.0) {
        e[i] = d[i - 1];
        for (int j = 0; j < i; j++) {
          d[j] = v[i - 1][j];
          v[i][j] = 0.0;
          v[j][i] = 0.0;
        }
      } else {
        for (int k = 0; k < i; k++) {
          d[k] /= scale;
          h += d[k] * d[k];
        }
        double f = d[i - 1];
        double g = Math.sqrt(h);
        if (f > 0) {
          g = -g;
        }
        e[i] = scale * g;
        h -= f * g;
        d[i - 1] = f - g;
        for (int j = 0; j < i; j++) {
          e[j] = 0.0;
        }
        for (int j = 0; j < i; j++) {
          f = d[j];
          v[j][i] = f;
          g = e[j] + v[j][j] * f;
          for (int k = j + 1; k <= i - 1; k++) {
            g += v[k][j] * d[k];
            e[k] += v[k][j] * f;
          }
          e[j] = g;
        }
        f = 0.0;
        for (int j = 0; j < i; j++) {
          e[j] /= h;
          f += e[j] * d[j];
        }
        double hh = f / (h + h);
        for (int j = 0; j < i; j++) {
          e[j] -= hh * d[j];
        }
        for (int j = 0; j < i; j++) {
          f = d[j];
          g = e[j];
          for (int k = j; k <= i - 1; k++) {
            v[k][j] -= (f * e[k] + g * d[k]);
          }
          d[j] = v[i - 1][j];
          v[i][j] = 0.0;
        }
      }
      d[i] = h;
    }
    for (int i = 0; i < n - 1; i++) {
      v[n - 1][i] = v[i][i];
      v[i][i] = 1.0;
      double h = d[i + 1];
      if (h != 0.0) {
        for (int k = 0; k <= i; k++) {
          d[k] = v[k][i + 1] / h;
        }
        for (int j = 0; j <= i; j++) {
          double g = 0.0;
          for (int k = 0; k <= i; k++) {
            g += v[k][i + 1] * v[k][j];
          }
          for (int k = 0; k <= i; k++) {
            v[k][j] -= g * d[k];
          }
        }
      }
      for (int k = 0; k <= i; k++) {
        v[k][i + 1] = 0.0;
      }
    }
    for (int j = 0; j < n; j++) {
      d[j] = v[n - 1][j];
      v[n - 1][j] = 0.0;
    }
    v[n - 1][n - 1] = 1.0;
    e[0] = 0.0;
  }

  /**
   * Implicit QL on the tridiagonal (d, e); vt holds the transformation transposed (row j = column j
   * of JAMA's V), so each Givens rotation touches two contiguous rows. Sorts descending at the end.
   */
  private static void tql2(int n, double[][] vt, double[] d, double[] e) {
    for (int i = 1; i < n; i++) {
      e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    double f = 0.0;
    double tst1 = 0.0;
    double eps = Math.pow(2.0, -52.0);
    for (int l = 0; l < n; l++) {
      tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
      int m = l;
      while (m < n) {
        if (Math.abs(e[m]) <= eps * tst1) {
          break;
        }
        m++;
      }
      if (m > l) {
        int iter = 0;
        do {
          if (++iter > 60 * n) {
            throw new ArithmeticException("QL iteration did not converge");
          }
          double g = d[l];
          double p = (d[l + 1] - g) / (2.0 * e[l]);
          double r = Math.hypot(p, 1.0);
          if (p < 0) {
            r = -r;
          }
          d[l] = e[l] / (p + r);
          d[l + 1] = e[l] * (p + r);
          double dl1 = d[l + 1];
          double h = g - d[l];
          for (int i = l + 2; i < n; i++) {
            d[i] -= h;
          }
          f += h;
          p = d[m];
          double c = 1.0;
          double c2 = c;
          double c3 = c;
          double el1 = e[l + 1];
          double s = 0.0;
          double s2 = 0.0;
          for (int i = m - 1; i >= l; i--) {
            c3 = c2;
            c2 = c;
            s2 = s;
            g = c * e[i];
            h = c * p;
            r = Math.hypot(p, e[i]);
            e[i + 1] = s * r;
            s = e[i] / r;
            c = p / r;
            p = c * d[i] - s * g;
            d[i + 1] = h + s * (c * g + s * d[i]);
            double[] a = vt[i];
            double[] b = vt[i + 1];
            for (int k = 0; k < n; k++) {
              double bk = b[k];
              b[k] = s * a[k] + c * bk;
              a[k] = c * a[k] - s * bk;
            }
          }
          p = -s * s2 * c3 * el1 * e[l] / dl1;
          e[l] = s * p;
          d[l] = c * p;
        } while (Math.abs(e[l]) > eps * tst1);
      }
      d[l] += f;
      e[l] = 0.0;
    }
    // selection sort, descending (n swaps of row references at most)
    for (int i = 0; i < n - 1; i++) {
      int k = i;
      double p = d[i];
      for (int j = i + 1; j < n; j++) {
        if (d[j] > p) {
          k = j;
          p = d[j];
        }
      }
      if (k != i) {
        d[k] = d[i];
        d[i] = p;
        double[] t = vt[i];
        vt[i] = vt[k];
        vt[k] = t;
      }
    }
  }
}
