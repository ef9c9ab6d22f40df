package dev.compactor.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * bfloat16 ⇄ fp32 conversion in plain Java (DJL's PyTorch engine aborts the JVM on BF16 tensors, so
 * checkpoints stored in bf16 are widened here before they reach the engine).
 *
 * <p>A bf16 value is the upper 16 bits of an fp32 value: same sign and 8-bit exponent, 7 mantissa
 * bits. Widening is exact. Narrowing rounds to nearest, ties to even; NaN stays NaN (the quiet bit
 * is forced, so a NaN whose payload lives only in the dropped bits does not turn into infinity).
 */
public final class Bf16 {

  private Bf16() {}

  /** The fp32 value of the bf16 bit pattern in the low 16 bits of {@code bits}. */
  public static float toFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** The nearest bf16 value (ties to even); NaN maps to a quiet NaN with the same sign. */
  public static short fromFloat(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7fffffff) > 0x7f800000) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int roundingBias = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + roundingBias) >>> 16);
  }

  /**
   * Widens {@code count} little-endian bf16 values starting at {@code src}'s position into {@code
   * dst[dstOffset..]}; {@code src}'s position advances by {@code 2 * count}.
   */
  public static void toFloats(ByteBuffer src, float[] dst, int dstOffset, int count) {
    ByteBuffer le = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int p = le.position();
    if (le.remaining() < 2L * count) {
      throw new IllegalArgumentException(
          "need " + 2L * count + " bytes of bf16 data, buffer has " + le.remaining());
    }
    for (int i = 0; i < count; i++) {
      dst[dstOffset + i] = Float.intBitsToFloat((le.getShort(p + 2 * i) & 0xffff) << 16);
    }
    src.position(src.position() + 2 * count);
  }

  /** All remaining little-endian bf16 values of {@code src} as fp32; {@code src} is not moved. */
  public static float[] toFloats(ByteBuffer src) {
    float[] out = new float[src.remaining() / 2];
    toFloats(src.duplicate(), out, 0, out.length);
    return out;
  }

  /**
   * Narrows {@code src[offset..offset+count)} to bf16 and writes them little-endian at {@code
   * dst}'s position, which advances by {@code 2 * count}.
   */
  public static void fromFloats(float[] src, int offset, int count, ByteBuffer dst) {
    ByteBuffer le = dst.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int p = le.position();
    if (le.remaining() < 2L * count) {
      throw new IllegalArgumentException(
          "need " + 2L * count + " bytes of room for bf16 data, buffer has " + le.remaining());
    }
    for (int i = 0; i < count; i++) {
      le.putShort(p + 2 * i, fromFloat(src[offset + i]));
    }
    dst.position(dst.position() + 2 * count);
  }
}
