package dev.compactor.core.quant.gptq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteOrder;

/**
 * The Optimal Brain Surgeon machinery that GPTQ and SparseGPT share (both from Frantar et al.): the
 * calibration Hessian {@code H = 2/n X^T X} of a linear's inputs, dead inputs removed, dampened,
 * inverted, and factored as {@code H^-1 = U^T U} with U upper triangular. Row {@code i} of U,
 * divided by {@code U_ii}, is how the error of zeroing or rounding weight column {@code i} is best
 * moved onto the columns after it; {@link #lazyUpdate} applies a block's errors to the rest at
 * once. All arithmetic is float64; the cubic parts run as libtorch (DJL) matmuls.
 */
public final class ObsHessian {

  private ObsHessian() {}

  /**
   * Dead inputs (zero diagonal: the input was always 0) get {@code H_jj = 1} and weight 0 in every
   * row, as in the reference implementations; both arrays are modified. Returns their count.
   */
  public static int removeDeadInputs(double[] h, double[] w, int rows, int cols) {
    int dead = 0;
    for (int j = 0; j < cols; j++) {
      if (h[j * cols + j] == 0) {
        dead++;
        h[j * cols + j] = 1;
        for (int r = 0; r < rows; r++) {
          w[r * cols + j] = 0;
        }
      }
    }
    return dead;
  }

  /** Adds {@code percDamp * mean(diag h)} to the diagonal of {@code h}, in place; returns h. */
  public static double[] dampen(double[] h, int n, double percDamp) {
    double mean = 0;
    for (int j = 0; j < n; j++) {
      mean += h[j * n + j];
    }
    double damp = percDamp * mean / n;
    for (int j = 0; j < n; j++) {
      h[j * n + j] += damp;
    }
    return h;
  }

  /**
   * Upper-triangular U with {@code H^-1 = U^T U}, row-major; entries below the diagonal are 0: the
   * transpose of the lower Cholesky factor of {@code H^-1}. The inverse comes from libtorch (DJL
   * {@code inverse}, float64); DJL has no Cholesky, so {@link #cholesky} is a blocked one whose
   * cubic part runs as DJL matmuls. {@code h} is overwritten: the result is stored in its array.
   */
  public static double[] upperCholeskyOfInverse(double[] h, int n) {
    // the inverse is copied from libtorch's memory straight back into h (a direct view, no heap
    // copy), and factored and transposed there: the only n x n heap array is the caller's, which
    // for a 11008-input down_proj saves 0.97 GB of heap against a fresh array per step
    double[] inverse = h;
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray inv = m.create(h, new Shape(n, n)).inverse();
      inv.toByteBuffer(true).order(ByteOrder.nativeOrder()).asDoubleBuffer().get(inverse);
    }
    for (double v : inverse) {
      if (!Double.isFinite(v)) {
        throw new ArithmeticException("the dampened Hessian is singular; raise percDamp");
      }
    }
    double[] u = cholesky(inverse, n);
    // transposed in place (the lower factor's array becomes U)
    for (int i = 0; i < n; i++) {
      for (int j = i + 1; j < n; j++) {
        u[i * n + j] = u[j * n + i];
        u[j * n + i] = 0;
      }
    }
    return u;
  }

  private static final int CHOLESKY_BLOCK = 64;

  /** Rows of the trailing matrix updated per matmul in {@link #cholesky}. */
  private static final int UPDATE_ROWS = 512;

  /**
   * Lower Cholesky factor of symmetric positive definite {@code a} (row-major, overwritten),
   * right-looking and blocked: each diagonal block is factored and its panel solved in Java, the
   * trailing matrix updated with one float64 DJL matmul per block.
   *
   * @throws ArithmeticException when {@code a} is not positive definite
   */
  public static double[] cholesky(double[] a, int n) {
    try (NDManager m = NDManager.newBaseManager()) {
      for (int k0 = 0; k0 < n; k0 += CHOLESKY_BLOCK) {
        int k1 = Math.min(k0 + CHOLESKY_BLOCK, n);
        for (int j = k0; j < k1; j++) {
          double d = a[j * n + j];
          for (int p = k0; p < j; p++) {
            d -= a[j * n + p] * a[j * n + p];
          }
          if (!(d > 0)) {
            throw new ArithmeticException(
                "the inverse Hessian is not positive definite; raise percDamp");
          }
          d = Math.sqrt(d);
          a[j * n + j] = d;
          for (int i = j + 1; i < n; i++) {
            double v = a[i * n + j];
            for (int p = k0; p < j; p++) {
              v -= a[i * n + p] * a[j * n + p];
            }
            a[i * n + j] = v / d;
          }
        }
        int rest = n - k1;
        if (rest == 0) {
          break;
        }
        int kb = k1 - k0;
        double[] panel = new double[rest * kb];
        for (int i = 0; i < rest; i++) {
          System.arraycopy(a, (k1 + i) * n + k0, panel, i * kb, kb);
        }
        // the trailing update L22 -= P P^T, lower triangle only, UPDATE_ROWS rows at a time: a
        // [rows, c1] product per chunk instead of one [rest, rest] array (0.97 GB on heap and as
        // much in libtorch for the first block of a 11008-input down_proj)
        try (NDManager s = m.newSubManager()) {
          NDArray p = s.create(panel, new Shape(rest, kb));
          for (int c0 = 0; c0 < rest; c0 += UPDATE_ROWS) {
            int c1 = Math.min(c0 + UPDATE_ROWS, rest);
            double[] update;
            // results attach to p's manager, so each is closed here, not at the block's end
            try (NDArray rows = p.get(c0 + ":" + c1);
                NDArray cols = p.get("0:" + c1);
                NDArray colsT = cols.transpose();
                NDArray product = rows.matMul(colsT)) {
              update = product.toDoubleArray();
            }
            for (int i = c0; i < c1; i++) {
              int row = (k1 + i) * n + k1;
              int u0 = (i - c0) * c1;
              for (int j = 0; j <= i; j++) {
                a[row + j] -= update[u0 + j];
              }
            }
          }
        }
      }
    }
    for (int i = 0; i < n; i++) {
      for (int j = i + 1; j < n; j++) {
        a[i * n + j] = 0;
      }
    }
    return a;
  }

  /**
   * {@code W[:, i2:] -= Err * Hinv[i1:i2, i2:]}, the batched update of the columns after a block:
   * nearly all of GPTQ's arithmetic, so it runs as one float64 DJL (libtorch BLAS) matmul; float64
   * keeps the result equal to the column-by-column algorithm's up to summation order.
   */
  public static void lazyUpdate(
      double[] w, int rows, int cols, double[] err, int i1, int i2, double[] hinv) {
    int count = i2 - i1;
    int rest = cols - i2;
    double[] h = new double[count * rest];
    for (int k = 0; k < count; k++) {
      System.arraycopy(hinv, (i1 + k) * cols + i2, h, k * rest, rest);
    }
    double[] update;
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray e = m.create(err, new Shape(rows, count));
      update = e.matMul(m.create(h, new Shape(count, rest))).toDoubleArray();
    }
    for (int r = 0; r < rows; r++) {
      int row = r * cols + i2;
      int u = r * rest;
      for (int j = 0; j < rest; j++) {
        w[row + j] -= update[u + j];
      }
    }
  }
}
