package dev.compactor.core.quant.awq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.export.QuantizedLinear;
import java.util.List;

/**
 * The per-linear-group pieces of AWQ: the activation-aware scale search, the clipping search and
 * the final rounding. AWQ protects the input channels that carry large activations by scaling their
 * weight columns up by {@code s} before rounding (their relative rounding error shrinks) and the
 * inputs down by {@code 1/s}; {@code s = mean|X|^alpha}, normalised by {@code sqrt(max(s) *
 * min(s))}, with {@code alpha} chosen on a grid to minimise the output error of all linears reading
 * that input.
 *
 * <p>Output errors are measured exactly without storing activations: for a weight change {@code
 * dW}, {@code ||X dW^T||^2 = sum_rows dw G dw^T} with the Gram matrix {@code G = X^T X} of the
 * calibration inputs (computed with one DJL matmul per candidate). Rounding is {@link
 * RtnQuantizer}'s grid, so the result exports like RTN's.
 */
public final class AwqQuantizer {

  /** The chosen scale and the output error of every candidate exponent. */
  public record ScaleSearch(float[] scales, double alpha, double[] errors) {}

  private final AwqConfig config;
  private final RtnQuantizer rtn;

  public AwqQuantizer(AwqConfig config) {
    this.config = config;
    this.rtn = new RtnQuantizer(config.bits(), config.symmetric(), config.groupSize());
  }

  public AwqConfig config() {
    return config;
  }

  /**
   * Searches the input-channel scale for the linears {@code weights} (each {@code rows[k] x cols},
   * row-major) that read the same input with Gram matrix {@code gram} ({@code cols x cols}) and
   * per-channel mean absolute value {@code meanAbs}.
   */
  public ScaleSearch searchScales(
      List<float[]> weights, int[] rows, int cols, double[] gram, double[] meanAbs) {
    double[] errors = new double[config.gridPoints()];
    float[] best = null;
    double bestError = Double.POSITIVE_INFINITY;
    double bestAlpha = 0;
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray g = gramArray(m, gram, cols);
      for (int i = 0; i < config.gridPoints(); i++) {
        double alpha = (double) i / (config.gridPoints() - 1);
        float[] s = scales(meanAbs, alpha);
        double error = 0;
        for (int k = 0; k < weights.size(); k++) {
          float[] w = weights.get(k);
          float[] scaled = scaleColumns(w, rows[k], cols, s);
          float[] q = rtn.quantize(scaled, rows[k], cols).dequantize();
          float[] dw = new float[w.length];
          for (int j = 0; j < w.length; j++) {
            dw[j] = w[j] - q[j] / s[j % cols];
          }
          error += quadratic(m, dw, rows[k], cols, g);
        }
        errors[i] = error;
        if (error < bestError) {
          bestError = error;
          best = s;
          bestAlpha = alpha;
        }
      }
    }
    return new ScaleSearch(best, bestAlpha, errors);
  }

  /** {@code s = max(meanAbs^alpha, 1e-4) / sqrt(max(s) * min(s))}, AutoAWQ's normalisation. */
  public static float[] scales(double[] meanAbs, double alpha) {
    float[] s = new float[meanAbs.length];
    double max = 0;
    double min = Double.POSITIVE_INFINITY;
    for (int j = 0; j < s.length; j++) {
      double v = Math.max(Math.pow(meanAbs[j], alpha), 1e-4);
      s[j] = (float) v;
      max = Math.max(max, v);
      min = Math.min(min, v);
    }
    double norm = Math.sqrt(max * min);
    for (int j = 0; j < s.length; j++) {
      s[j] = (float) (s[j] / norm);
    }
    return s;
  }

  /** {@code W diag(s)}: column j times {@code s[j]}. */
  public static float[] scaleColumns(float[] w, int rows, int cols, float[] s) {
    float[] out = new float[w.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[r * cols + c] = w[r * cols + c] * s[c];
      }
    }
    return out;
  }

  /**
   * Clips each group of {@code w} (already scaled) to the symmetric range {@code [-m, m]} that
   * minimises that group's output error {@code dw G_gg dw^T}, {@code m} from {@code max|w| * (1 - i
   * / clipGrid)}, {@code i < maxShrink * clipGrid}; {@code gram} is the Gram matrix of the (scaled)
   * inputs. Returns the clipped weight.
   */
  public float[] clip(float[] w, int rows, int cols, double[] gram) {
    int g = config.groupSize() == 0 ? cols : config.groupSize();
    int steps = Math.max(1, (int) (config.maxShrink() * config.clipGrid()));
    float[] out = w.clone();
    float[] group = new float[g];
    float[] q = new float[g];
    for (int r = 0; r < rows; r++) {
      for (int start = 0; start < cols; start += g) {
        float amax = 0;
        for (int j = 0; j < g; j++) {
          group[j] = w[r * cols + start + j];
          amax = Math.max(amax, Math.abs(group[j]));
        }
        double bestError = Double.POSITIVE_INFINITY;
        float bestClip = amax;
        for (int i = 0; i < steps; i++) {
          float clip = (float) (amax * (1 - (double) i / config.clipGrid()));
          fakeQuantize(group, clip, q);
          double e = 0;
          for (int a = 0; a < g; a++) {
            double da = group[a] - q[a];
            if (da == 0) {
              continue;
            }
            int row = (start + a) * cols + start;
            for (int b = 0; b < g; b++) {
              e += da * gram[row + b] * (group[b] - q[b]);
            }
          }
          if (e < bestError) {
            bestError = e;
            bestClip = clip;
          }
        }
        for (int j = 0; j < g; j++) {
          float v = group[j];
          out[r * cols + start + j] = Math.max(-bestClip, Math.min(bestClip, v));
        }
      }
    }
    return out;
  }

  /** Final rounding of the (scaled, clipped) weight on RTN's grid. */
  public QuantizedLinear quantize(float[] w, int rows, int cols) {
    return QuantizedLinear.of(rtn.quantize(w, rows, cols));
  }

  /** RTN of one group after clamping to [-clip, clip], into {@code out}. */
  private void fakeQuantize(float[] group, float clip, float[] out) {
    int qmin = -(1 << (config.bits() - 1));
    int qmax = (1 << (config.bits() - 1)) - 1;
    float min = 0;
    float max = 0;
    for (float v : group) {
      float c = Math.max(-clip, Math.min(clip, v));
      min = Math.min(min, c);
      max = Math.max(max, c);
    }
    float scale;
    int zero = 0;
    if (config.symmetric()) {
      scale = Math.max(-min, max) / ((qmax - qmin) / 2.0f);
    } else {
      scale = (max - min) / (qmax - qmin);
      zero = scale == 0 ? 0 : Math.max(qmin, Math.min(qmax, qmin - (int) Math.rint(min / scale)));
    }
    if (scale == 0) {
      scale = 1;
    }
    for (int j = 0; j < group.length; j++) {
      float c = Math.max(-clip, Math.min(clip, group[j]));
      int code = Math.max(qmin, Math.min(qmax, (int) Math.rint(c / scale) + zero));
      out[j] = (code - zero) * scale;
    }
  }

  private static NDArray gramArray(NDManager m, double[] gram, int cols) {
    float[] f = new float[gram.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) gram[i];
    }
    return m.create(f, new Shape(cols, cols));
  }

  /** {@code sum_r dw_r G dw_r^T} with one matmul. */
  private static double quadratic(NDManager m, float[] dw, int rows, int cols, NDArray g) {
    try (NDManager s = m.newSubManager()) {
      NDArray d = s.create(dw, new Shape(rows, cols));
      NDArray e = d.matMul(g).mul(d).sum();
      e.attach(s);
      return e.toFloatArray()[0];
    }
  }
}
