package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Checks {@link Fp16} against a plain reference built from the IEEE 754 definition in double
 * arithmetic ({@code Math.scalb}), not from bit tricks: every one of the 65536 bit patterns for
 * decoding; for encoding, every half value, every midpoint between neighbours (the ties), one ulp
 * either side of each midpoint, and random floats, against a nearest-value search.
 */
class Fp16Test {

  /** (-1)^s × 2^(e-15) × (1 + m/1024), subnormals 2^-14 × m/1024, e = 31 → ∞ or NaN. */
  static double reference(int h) {
    int s = (h >>> 15) & 1;
    int e = (h >>> 10) & 0x1f;
    int m = h & 0x3ff;
    double sign = s == 1 ? -1.0 : 1.0;
    if (e == 31) {
      return m == 0 ? sign * Double.POSITIVE_INFINITY : Double.NaN;
    }
    if (e == 0) {
      return sign * Math.scalb((double) m, -24);
    }
    return sign * Math.scalb(1.0 + m / 1024.0, e - 15);
  }

  @Test
  void decodesAll65536BitPatterns() {
    for (int h = 0; h < 1 << 16; h++) {
      float ours = Fp16.toFloat((short) h);
      double ref = reference(h);
      if (Double.isNaN(ref)) {
        assertTrue(Float.isNaN(ours), "0x" + Integer.toHexString(h) + " must decode to NaN");
      } else {
        assertEquals(
            Double.doubleToRawLongBits(ref),
            Double.doubleToRawLongBits(ours),
            "0x" + Integer.toHexString(h) + ": reference " + ref + ", ours " + ours);
      }
    }
  }

  /** Sorted non-negative finite halves as doubles; index = bit pattern (0..0x7bff). */
  private static final double[] POSITIVE = new double[0x7c00];

  static {
    for (int h = 0; h < POSITIVE.length; h++) {
      POSITIVE[h] = reference(h);
    }
  }

  /** Nearest half by search; ties to the even bit pattern; ≥ 65520 to infinity. */
  static int referenceEncode(float f) {
    if (Float.isNaN(f)) {
      return -1;
    }
    int sign = (Float.floatToRawIntBits(f) >>> 31) << 15;
    double a = Math.abs((double) f);
    if (a >= 65520.0) {
      return sign | 0x7c00;
    }
    int i = Arrays.binarySearch(POSITIVE, a);
    if (i >= 0) {
      return sign | i;
    }
    int hi = -i - 1;
    int lo = hi - 1;
    if (hi == POSITIVE.length) {
      return sign | lo; // in (65504, 65520): nearer to the largest half than to 2^16
    }
    double dlo = a - POSITIVE[lo];
    double dhi = POSITIVE[hi] - a;
    int pick = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) == 0 ? lo : hi);
    return sign | pick;
  }

  private static void checkEncode(float f) {
    int ref = referenceEncode(f);
    int ours = Fp16.fromFloat(f) & 0xffff;
    assertEquals(
        ref,
        ours,
        () ->
            "encode "
                + f
                + " (0x"
                + Integer.toHexString(Float.floatToRawIntBits(f))
                + "): reference 0x"
                + Integer.toHexString(ref)
                + ", ours 0x"
                + Integer.toHexString(ours));
  }

  @Test
  void encodesHalvesMidpointsAndNeighboursLikeTheReference() {
    for (int h = 0; h < POSITIVE.length; h++) {
      float exact = (float) POSITIVE[h];
      checkEncode(exact);
      checkEncode(-exact);
      double next = h + 1 < POSITIVE.length ? POSITIVE[h + 1] : 65536.0;
      float mid = (float) ((POSITIVE[h] + next) / 2); // exact: halves have ≤ 11 significant bits
      checkEncode(mid);
      checkEncode(-mid);
      checkEncode(Math.nextUp(mid));
      checkEncode(Math.nextDown(mid));
    }
  }

  @Test
  void encodesRandomFloatsAndSpecialsLikeTheReference() {
    Random r = new Random(7);
    for (int i = 0; i < 200_000; i++) {
      // Random bit patterns concentrated on exponents around the half range (2^-30 .. 2^17).
      int exp = 97 + r.nextInt(48);
      int bits = (r.nextInt(2) << 31) | (exp << 23) | r.nextInt(1 << 23);
      checkEncode(Float.intBitsToFloat(bits));
    }
    for (float f :
        new float[] {
          0f,
          -0f,
          Float.MIN_VALUE,
          Float.MAX_VALUE,
          -Float.MAX_VALUE,
          Float.POSITIVE_INFINITY,
          Float.NEGATIVE_INFINITY,
          65504f,
          65519.996f,
          65520f,
          0x1p-25f,
          Math.nextUp(0x1p-25f),
          0x1p-24f,
          0x1.8p-24f,
          0x1p-14f,
          Math.nextDown(0x1p-14f)
        }) {
      checkEncode(f);
    }
    assertTrue(Float.isNaN(Fp16.toFloat(Fp16.fromFloat(Float.NaN))));
    assertTrue(Float.isNaN(Fp16.toFloat(Fp16.fromFloat(Float.intBitsToFloat(0xff800001)))));
    assertEquals((short) 0xfe00, Fp16.fromFloat(Float.intBitsToFloat(0xffc00000)), "sign kept");
  }

  @Test
  void bulkConvertersAgreeWithScalarOnesAndAdvanceBuffers() {
    Random r = new Random(3);
    float[] values = new float[1001];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (r.nextGaussian() * 100);
    }
    ByteBuffer buf = ByteBuffer.allocate(2 + 2 * values.length).order(ByteOrder.BIG_ENDIAN);
    buf.position(2);
    Fp16.fromFloats(values, 0, values.length, buf);
    assertEquals(buf.capacity(), buf.position());
    buf.position(2);
    float[] back = new float[values.length];
    Fp16.toFloats(buf, back, 0, values.length);
    assertEquals(buf.capacity(), buf.position());
    ByteBuffer le = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < values.length; i++) {
      short h = Fp16.fromFloat(values[i]);
      assertEquals(h, le.getShort(2 + 2 * i), "little-endian whatever the buffer's order");
      assertEquals(Fp16.toFloat(h), back[i]);
    }
    buf.position(2);
    assertArrayEquals(back, Fp16.toFloats(buf));
    assertEquals(2, buf.position(), "toFloats(ByteBuffer) leaves the buffer alone");
  }
}
