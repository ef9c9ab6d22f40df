package dev.compactor.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * IEEE 754 binary16 (half precision) ⇄ fp32 conversion in plain Java, for checkpoints stored in
 * fp16 (Java 17 has no {@code Float.float16ToFloat}).
 *
 * <p>Layout: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Exponent 0 holds zero and the
 * subnormals (mantissa × 2⁻²⁴); exponent 31 holds ±∞ (mantissa 0) and NaN. Widening is exact;
 * narrowing rounds to nearest, ties to even, overflows to ±∞ from 65520 on, and keeps NaN a (quiet)
 * NaN with the top of its payload.
 */
public final class Fp16 {

  /** Every half bit pattern decoded once; bulk widening is then a table lookup. */
  private static final float[] TABLE = new float[1 << 16];

  static {
    for (int i = 0; i < TABLE.length; i++) {
      TABLE[i] = decode(i);
    }
  }

  private Fp16() {}

  /** The fp32 value of the half bit pattern in the low 16 bits of {@code bits}. */
  public static float toFloat(short bits) {
    return TABLE[bits & 0xffff];
  }

  private static float decode(int h) {
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    if (exp == 0) {
      // Subnormal: mant × 2^-24 is exact in fp32 (mant has at most 10 significant bits).
      float v = mant * 0x1p-24f;
      return sign == 0 ? v : -v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /** The nearest half value (ties to even); NaN maps to a quiet NaN with the same sign. */
  public static short fromFloat(float value) {
    int f = Float.floatToRawIntBits(value);
    int sign = (f >>> 16) & 0x8000;
    int abs = f & 0x7fffffff;
    if (abs > 0x7f800000) {
      return (short) (sign | 0x7e00 | ((abs >>> 13) & 0x3ff));
    }
    if (abs >= 0x477ff000) {
      // 65520 is halfway between 65504 (max half, odd mantissa) and 2^16: the tie goes to ∞.
      return (short) (sign | 0x7c00);
    }
    if (abs < 0x38800000) {
      return (short) (sign | subnormal(abs));
    }
    int h = (abs >>> 13) - (112 << 10);
    int rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1)) {
      h++;
    }
    return (short) (sign | h);
  }

  /** Rounds |value| < 2^-14 to a multiple of 2^-24 (the half subnormal grid), ties to even. */
  private static int subnormal(int abs) {
    int e = abs >>> 23;
    if (e < 102) {
      return 0; // below 2^-25: rounds to zero (2^-25 itself is a tie and goes to even 0 too)
    }
    int m = (abs & 0x7fffff) | 0x800000;
    int shift = 126 - e;
    int q = m >>> shift;
    int rem = m & ((1 << shift) - 1);
    int half = 1 << (shift - 1);
    if (rem > half || (rem == half && (q & 1) == 1)) {
      q++;
    }
    return q;
  }

  /**
   * Widens {@code count} little-endian half values starting at {@code src}'s position into {@code
   * dst[dstOffset..]}; {@code src}'s position advances by {@code 2 * count}.
   */
  public static void toFloats(ByteBuffer src, float[] dst, int dstOffset, int count) {
    ByteBuffer le = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int p = le.position();
    if (le.remaining() < 2L * count) {
      throw new IllegalArgumentException(
          "need " + 2L * count + " bytes of fp16 data, buffer has " + le.remaining());
    }
    for (int i = 0; i < count; i++) {
      dst[dstOffset + i] = TABLE[le.getShort(p + 2 * i) & 0xffff];
    }
    src.position(src.position() + 2 * count);
  }

  /** All remaining little-endian half values of {@code src} as fp32; {@code src} is not moved. */
  public static float[] toFloats(ByteBuffer src) {
    float[] out = new float[src.remaining() / 2];
    toFloats(src.duplicate(), out, 0, out.length);
    return out;
  }

  /**
   * Narrows {@code src[offset..offset+count)} to half and writes them little-endian at {@code
   * dst}'s position, which advances by {@code 2 * count}.
   */
  public static void fromFloats(float[] src, int offset, int count, ByteBuffer dst) {
    ByteBuffer le = dst.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int p = le.position();
    if (le.remaining() < 2L * count) {
      throw new IllegalArgumentException(
          "need " + 2L * count + " bytes of room for fp16 data, buffer has " + le.remaining());
    }
    for (int i = 0; i < count; i++) {
      le.putShort(p + 2 * i, fromFloat(src[offset + i]));
    }
    dst.position(dst.position() + 2 * count);
  }
}
