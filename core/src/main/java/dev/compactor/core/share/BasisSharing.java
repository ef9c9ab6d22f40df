package dev.compactor.core.share;

import dev.compactor.core.factorize.Svd;
import java.util.ArrayList;
import java.util.List;

/**
 * Basis Sharing (Wang et al., "Basis Sharing: Cross-Layer Parameter Sharing for Large Language
 * Model Compression", ICLR 2025, arXiv:2410.03765): the same linear of {@code g} layers, {@code
 * W_l} {@code [out, in]}, is approximated by one basis and a coefficient matrix per layer, from the
 * truncated SVD of the stacked group.
 *
 * <ul>
 *   <li>{@link Side#OUT}: {@code [W_1 | ... | W_g] = U S V^T} ({@code [out, g in]}); the shared
 *       basis {@code B = U_r S_r} {@code [out, r]} is the linear's {@code u}, {@code C_l} {@code
 *       [r, in]} (block {@code l} of {@code V_r^T}) layer l's {@code v}.
 *   <li>{@link Side#IN}: the paper's layout. It writes {@code y = x W} with {@code W} {@code [in,
 *       out]} and stacks horizontally, i.e. {@code [W_1; ...; W_g]} {@code [g out, in]} in this
 *       project's {@code [out, in]} convention; the shared basis is the linear's {@code v} {@code
 *       [r, in]} ({@code V_r^T}) and {@code U_r S_r}'s block l is layer l's {@code u}.
 * </ul>
 *
 * Both minimise {@code sum_l ||W_l - u_l v_l||_F^2} over factors that share one side (Eckart-Young
 * on the stacked matrix). This is the weight-only form; the paper whitens with calibration
 * activations first (not built here).
 */
public final class BasisSharing {

  /** Which factor the group shares. */
  public enum Side {
    /** One {@code u} [out, r] per group, per-layer {@code v} [r, in]. */
    OUT,
    /** One {@code v} [r, in] per group, per-layer {@code u} [out, r]. */
    IN;

    public String key() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** {@code out} or {@code in}. */
    public static Side parse(String s) {
      for (Side v : values()) {
        if (v.key().equals(s)) {
          return v;
        }
      }
      throw new IllegalArgumentException("side: expected out or in, found " + s);
    }
  }

  /**
   * A group's factors: {@code u.get(l)} {@code [out, r]} and {@code v.get(l)} {@code [r, in]}
   * (row-major) for each member l; the shared side's list holds the same array g times.
   *
   * @param energy share of the stacked matrix's {@code sum s^2} kept
   */
  public record Factors(int rank, List<float[]> u, List<float[]> v, double energy) {}

  private BasisSharing() {}

  /**
   * The rank whose factors take {@code ratio} of the group's dense parameters {@code g out in}:
   * {@code floor(ratio g out in / (shared + g perLayer))}, at least 1 and at most the stacked
   * matrix's smaller side.
   */
  public static int rank(Side side, int g, int out, int in, double ratio) {
    long shared = side == Side.OUT ? out : in;
    long perLayer = side == Side.OUT ? in : out;
    long r = (long) Math.floor(ratio * g * out * (double) in / (shared + g * perLayer));
    long max = Math.min(shared, g * perLayer);
    return (int) Math.max(1, Math.min(r, max));
  }

  /** Parameters of a group's factors at rank {@code r}. */
  public static long parameters(Side side, int g, int out, int in, int r) {
    return side == Side.OUT ? (long) r * (out + (long) g * in) : (long) r * (in + (long) g * out);
  }

  /** The rank-{@code r} shared factors of {@code ws} (each {@code [out, in]} row-major). */
  public static Factors share(Side side, List<float[]> ws, int out, int in, int r) {
    int g = ws.size();
    if (g < 1) {
      throw new IllegalArgumentException("a group needs at least one matrix");
    }
    for (float[] w : ws) {
      if (w.length != (long) out * in) {
        throw new IllegalArgumentException(
            "expected a weight [" + out + ", " + in + "], found " + w.length + " values");
      }
    }
    if (side == Side.IN) {
      // share on the input side = share on the output side of the transposes
      List<float[]> t = new ArrayList<>();
      for (float[] w : ws) {
        t.add(transpose(w, out, in));
      }
      Factors f = share(Side.OUT, t, in, out, r);
      List<float[]> u = new ArrayList<>();
      List<float[]> v = new ArrayList<>();
      float[] shared = transpose(f.u().get(0), in, r);
      for (int l = 0; l < g; l++) {
        u.add(transpose(f.v().get(l), r, out));
        v.add(shared);
      }
      return new Factors(r, u, v, f.energy());
    }
    int cols = g * in;
    if (r < 1 || r > Math.min(out, cols)) {
      throw new IllegalArgumentException(
          "rank " + r + " outside [1, " + Math.min(out, cols) + "] for " + out + " x " + cols);
    }
    double[] stacked = new double[out * cols];
    for (int l = 0; l < g; l++) {
      float[] w = ws.get(l);
      for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) {
          stacked[o * cols + l * in + i] = w[o * in + i];
        }
      }
    }
    Svd svd = Svd.of(stacked, out, cols);
    double[] s = svd.singularValues();
    double[] uu = svd.u();
    double[] vv = svd.v();
    int k = svd.size();
    float[] basis = new float[out * r];
    for (int o = 0; o < out; o++) {
      for (int t = 0; t < r; t++) {
        basis[o * r + t] = (float) (uu[o * k + t] * s[t]);
      }
    }
    List<float[]> u = new ArrayList<>();
    List<float[]> v = new ArrayList<>();
    for (int l = 0; l < g; l++) {
      float[] c = new float[r * in];
      for (int t = 0; t < r; t++) {
        for (int i = 0; i < in; i++) {
          c[t * in + i] = (float) vv[(l * in + i) * k + t];
        }
      }
      u.add(basis);
      v.add(c);
    }
    double total = 0;
    double kept = 0;
    for (int j = 0; j < s.length; j++) {
      total += s[j] * s[j];
      kept += j < r ? s[j] * s[j] : 0;
    }
    return new Factors(r, u, v, total == 0 ? 1 : kept / total);
  }

  static float[] transpose(float[] a, int rows, int cols) {
    float[] t = new float[a.length];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        t[j * rows + i] = a[i * cols + j];
      }
    }
    return t;
  }
}
