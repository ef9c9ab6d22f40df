package dev.compactor.core.gguf;

/**
 * IEEE 754 binary16 conversions, as ggml's {@code GGML_FP32_TO_FP16} / {@code GGML_FP16_TO_FP32} do
 * on hardware with F16C: round to nearest, ties to even; overflow goes to infinity. Java 17 has no
 * {@code Float.floatToFloat16}, hence this class.
 */
public final class Fp16 {

  private Fp16() {}

  /** Rounds {@code f} to the nearest binary16 value (ties to even) and returns its bits. */
  public static short fromFloat(float f) {
    int x = Float.floatToRawIntBits(f);
    int sign = (x >>> 16) & 0x8000;
    int abs = x & 0x7fffffff;
    if (abs >= 0x7f800000) {
      // Keep NaN a quiet NaN with the top payload bits; infinity stays infinity.
      int nan = abs > 0x7f800000 ? 0x200 | ((abs >>> 13) & 0x3ff) : 0;
      return (short) (sign | 0x7c00 | nan);
    }
    if (abs >= 0x477ff000) { // 65520 and above round past the largest finite half (65504)
      return (short) (sign | 0x7c00);
    }
    if (abs < 0x38800000) { // below 2^-14: a subnormal half, in units of 2^-24
      int m = (int) Math.rint(Float.intBitsToFloat(abs) * 0x1p24f);
      return (short) (sign | m);
    }
    int h = ((((abs >>> 23) - 127 + 15) << 10) | ((abs & 0x7fffff) >>> 13));
    int rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) {
      h++; // a carry out of the mantissa correctly bumps the exponent
    }
    return (short) (sign | h);
  }

  /** The exact fp32 value of the binary16 {@code bits}. */
  public static float toFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0) {
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    if (exp == 31) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
  }

  /** {@code toFloat(fromFloat(f))}: what a value becomes after a trip through fp16. */
  public static float round(float f) {
    return toFloat(fromFloat(f));
  }
}
