package dev.compactor.core.quant;

import dev.compactor.core.quant.QuantizedTensor.Format;
import dev.compactor.core.quant.QuantizedTensor.Granularity;

/**
 * FP8 E4M3FN weights (the OCP 8-bit float used by FP8 inference kernels): 1 sign, 4 exponent bits
 * (bias 7), 3 mantissa bits, no infinities, NaN = {@code S.1111.111}, largest finite 448, smallest
 * subnormal 2^-9. Encoding rounds to nearest even and saturates to ±448; weights are divided by a
 * per-tensor or per-output-channel scale {@code amax / 448} first so they use the full range.
 */
public final class Fp8E4M3 {

  public static final float MAX = 448f;
  public static final byte NAN = 0x7f;

  private Fp8E4M3() {}

  /** The value of code {@code c}. */
  public static float decode(byte c) {
    int b = c & 0xff;
    int sign = b >>> 7;
    int e = (b >>> 3) & 0xf;
    int m = b & 7;
    float v;
    if (e == 15 && m == 7) {
      return Float.NaN;
    } else if (e == 0) {
      v = m * 0x1p-9f;
    } else {
      v = (1 + m / 8f) * (float) Math.scalb(1.0, e - 7);
    }
    return sign == 1 ? -v : v;
  }

  /** The nearest code to {@code x} (ties to even mantissa), saturating at ±448; NaN to NaN. */
  public static byte encode(float x) {
    if (Float.isNaN(x)) {
      return NAN;
    }
    int sign = (Float.floatToRawIntBits(x) >>> 31) << 7;
    double a = Math.abs((double) x);
    int code;
    if (a >= MAX) {
      code = 0x7e;
    } else if (a < 0x1p-6) { // subnormal range, in units of 2^-9; 8 units is the first normal
      code = (int) Math.rint(a * 0x1p9);
    } else {
      int e = Math.getExponent(a);
      int m = (int) Math.rint((Math.scalb(a, -e) - 1) * 8);
      if (m == 8) {
        m = 0;
        e++;
      }
      code = ((e + 7) << 3) | m;
    }
    return (byte) (sign | code);
  }

  /** Per-tensor ({@code perChannel == false}) or per-row scaled FP8 of a row-major matrix. */
  public static QuantizedTensor quantize(float[] w, int rows, int cols, boolean perChannel) {
    if ((long) rows * cols != w.length) {
      throw new IllegalArgumentException(
          "shape " + rows + "x" + cols + " does not match " + w.length + " values");
    }
    int groups = perChannel ? rows : 1;
    int span = perChannel ? cols : w.length;
    float[] scales = new float[groups];
    byte[] codes = new byte[w.length];
    for (int g = 0; g < groups; g++) {
      float amax = 0;
      for (int i = g * span; i < (g + 1) * span; i++) {
        amax = Math.max(amax, Math.abs(w[i]));
      }
      float scale = amax == 0 ? 1 : amax / MAX;
      scales[g] = scale;
      for (int i = g * span; i < (g + 1) * span; i++) {
        codes[i] = encode(w[i] / scale);
      }
    }
    return new QuantizedTensor(
        Format.FP8_E4M3,
        rows,
        cols,
        8,
        perChannel ? Granularity.CHANNEL : Granularity.TENSOR,
        perChannel ? cols : w.length,
        codes,
        scales,
        null);
  }
}
