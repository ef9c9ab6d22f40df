package dev.compactor.core.infer;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fused dequantize-dot kernels: the dot product of one stored weight row (GGUF bytes, never
 * expanded to fp32 in memory) with an fp32 vector. Each format has a Vector API version and a plain
 * scalar reference ({@code ...Reference}) that the tests compare it with.
 *
 * <p>Layouts (ggml-common.h; written down beside the quantizers in {@code
 * dev.compactor.core.gguf}):
 *
 * <pre>
 * F32   4 bytes per value, little-endian
 * F16   2 bytes per value, IEEE half, little-endian
 * Q8_0  34-byte blocks of 32 values: fp16 d (bytes 0..1), int8 qs[32];       value j = qs[j] * d
 * Q4_0  18-byte blocks of 32 values: fp16 d (bytes 0..1), uint8 qs[16];
 *       value j = ((qs[j] &amp; 15) - 8) * d, value j + 16 = ((qs[j] &gt;&gt; 4) - 8) * d
 * </pre>
 *
 * <p>A quantized block is dotted as {@code d * sum(q[j] * x[j])}: the int8 codes are widened to
 * fp32 lanes ({@code q * x} is exact up to fp32 rounding of the product), and the scale is applied
 * once per block, so the result differs from dequantize-then-dot only by float rounding.
 *
 * <p>The vector path uses {@link FloatVector#SPECIES_PREFERRED} (16 lanes with AVX-512, 8 with
 * AVX2) and byte vectors of the same lane count; with fewer than 8 float lanes (no AVX) it falls
 * back to the scalar reference.
 */
public final class QuantKernels {

  static final int QK = 32;
  static final int Q8_0_BLOCK = 34;
  static final int Q4_0_BLOCK = 18;

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int L = F.length();

  /** Byte vectors with as many lanes as {@link #F}, so one cast widens them to fp32 lanes. */
  private static final VectorSpecies<Byte> B =
      L >= 8 && L <= 16 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;

  private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());

  /** True when the Vector API kernels run (else every call takes the scalar reference). */
  public static final boolean VECTORIZED = B != null;

  private static final float[] HALF_TO_FLOAT = new float[1 << 16];

  static {
    for (int h = 0; h < HALF_TO_FLOAT.length; h++) {
      HALF_TO_FLOAT[h] = halfToFloat(h);
    }
  }

  private QuantKernels() {}

  /** Lanes of the fp32 vectors the kernels use (1 when they are not vectorized). */
  public static int lanes() {
    return VECTORIZED ? L : 1;
  }

  /** The fp16 value stored little-endian at {@code b[off]}. */
  public static float f16(byte[] b, int off) {
    return HALF_TO_FLOAT[(b[off] & 0xff) | (b[off + 1] & 0xff) << 8];
  }

  /** IEEE binary16 bits to float (subnormals, infinities and NaN included). */
  static float halfToFloat(int h) {
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | mant << 13);
    }
    if (exp == 0) {
      // subnormal: mant * 2^-24, exact in fp32
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    return Float.intBitsToFloat(sign | (exp + 112) << 23 | mant << 13);
  }

  // ---- F32 -------------------------------------------------------------------------------------

  /** {@code sum(w[off + i] * x[i])} for {@code i < n}. */
  public static float dotF32(float[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotF32Reference(w, off, x, n);
    }
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    int i = 0;
    int bound2 = n - 2 * L;
    for (; i <= bound2; i += 2 * L) {
      a0 = FloatVector.fromArray(F, w, off + i).fma(FloatVector.fromArray(F, x, i), a0);
      a1 = FloatVector.fromArray(F, w, off + i + L).fma(FloatVector.fromArray(F, x, i + L), a1);
    }
    for (; i <= n - L; i += L) {
      a0 = FloatVector.fromArray(F, w, off + i).fma(FloatVector.fromArray(F, x, i), a0);
    }
    float s = a0.add(a1).reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      s += w[off + i] * x[i];
    }
    return s;
  }

  public static float dotF32Reference(float[] w, int off, float[] x, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) {
      s += w[off + i] * x[i];
    }
    return s;
  }

  // ---- F16 (scalar only: the JDK 17 Vector API has no fp16 conversion) -------------------------

  /** {@code sum(w[i] * x[i])} for {@code n} fp16 values stored at byte offset {@code off}. */
  public static float dotF16(byte[] w, int off, float[] x, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) {
      s += f16(w, off + 2 * i) * x[i];
    }
    return s;
  }

  // ---- Q8_0 ------------------------------------------------------------------------------------

  /** Dot of the {@code n / 32} Q8_0 blocks at byte offset {@code off} with {@code x[0..n)}. */
  public static float dotQ8_0(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ8_0Reference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    int nb = n / QK;
    for (int b = 0; b < nb; b++) {
      int blk = off + b * Q8_0_BLOCK;
      int xb = b * QK;
      FloatVector s = FloatVector.zero(F);
      for (int c = 0; c < QK; c += L) {
        FloatVector q = (FloatVector) ByteVector.fromArray(B, w, blk + 2 + c).castShape(F, 0);
        s = q.fma(FloatVector.fromArray(F, x, xb + c), s);
      }
      acc = s.fma(FloatVector.broadcast(F, f16(w, blk)), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ8_0Reference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q8_0_BLOCK;
      float s = 0;
      for (int j = 0; j < QK; j++) {
        s += w[blk + 2 + j] * x[b * QK + j];
      }
      sum += s * f16(w, blk);
    }
    return sum;
  }

  // ---- Q4_0 ------------------------------------------------------------------------------------

  /**
   * Dot of the {@code n / 32} Q4_0 blocks at byte offset {@code off} with {@code x[0..n)}. Each
   * code byte is xor-ed with 0x88 and widened (sign-extending) to an int lane: a nibble {@code q}
   * xor 8, read as a signed 4-bit number, is exactly {@code q - 8}, so {@code (r << 28) >> 28}
   * gives the low value and {@code r >> 4} the high one with no mask and no subtraction (x86 has no
   * byte-lane shift, so splitting in byte lanes was slower; measured 1.1x on JDK 17, 1.5x on JDK 25
   * over and/shift/subtract in int lanes).
   */
  public static float dotQ4_0(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ4_0Reference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    int nb = n / QK;
    for (int b = 0; b < nb; b++) {
      int blk = off + b * Q4_0_BLOCK;
      int xb = b * QK;
      FloatVector lo = FloatVector.zero(F);
      FloatVector hi = FloatVector.zero(F);
      for (int c = 0; c < QK / 2; c += L) {
        IntVector r =
            (IntVector)
                ByteVector.fromArray(B, w, blk + 2 + c)
                    .lanewise(VectorOperators.XOR, (byte) 0x88)
                    .castShape(I, 0);
        IntVector ql = r.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28);
        IntVector qh = r.lanewise(VectorOperators.ASHR, 4);
        lo = ((FloatVector) ql.castShape(F, 0)).fma(FloatVector.fromArray(F, x, xb + c), lo);
        hi =
            ((FloatVector) qh.castShape(F, 0))
                .fma(FloatVector.fromArray(F, x, xb + QK / 2 + c), hi);
      }
      acc = lo.add(hi).fma(FloatVector.broadcast(F, f16(w, blk)), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  /**
   * {@link #dotQ4_0} of two rows (blocks at {@code off0} and {@code off1}) with one pass over
   * {@code x}: each row's arithmetic is exactly that of {@code dotQ4_0}, so results are identical.
   */
  public static void dotQ4_0x2(byte[] w, int off0, int off1, float[] x, int n, float[] out, int o) {
    if (!VECTORIZED) {
      out[o] = dotQ4_0Reference(w, off0, x, n);
      out[o + 1] = dotQ4_0Reference(w, off1, x, n);
      return;
    }
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    int nb = n / QK;
    for (int b = 0; b < nb; b++) {
      int blk0 = off0 + b * Q4_0_BLOCK;
      int blk1 = off1 + b * Q4_0_BLOCK;
      int xb = b * QK;
      FloatVector lo0 = FloatVector.zero(F);
      FloatVector hi0 = FloatVector.zero(F);
      FloatVector lo1 = FloatVector.zero(F);
      FloatVector hi1 = FloatVector.zero(F);
      for (int c = 0; c < QK / 2; c += L) {
        FloatVector xl = FloatVector.fromArray(F, x, xb + c);
        FloatVector xh = FloatVector.fromArray(F, x, xb + QK / 2 + c);
        IntVector r0 =
            (IntVector)
                ByteVector.fromArray(B, w, blk0 + 2 + c)
                    .lanewise(VectorOperators.XOR, (byte) 0x88)
                    .castShape(I, 0);
        IntVector r1 =
            (IntVector)
                ByteVector.fromArray(B, w, blk1 + 2 + c)
                    .lanewise(VectorOperators.XOR, (byte) 0x88)
                    .castShape(I, 0);
        IntVector l0 = r0.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28);
        IntVector l1 = r1.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28);
        lo0 = ((FloatVector) l0.castShape(F, 0)).fma(xl, lo0);
        lo1 = ((FloatVector) l1.castShape(F, 0)).fma(xl, lo1);
        hi0 = ((FloatVector) r0.lanewise(VectorOperators.ASHR, 4).castShape(F, 0)).fma(xh, hi0);
        hi1 = ((FloatVector) r1.lanewise(VectorOperators.ASHR, 4).castShape(F, 0)).fma(xh, hi1);
      }
      acc0 = lo0.add(hi0).fma(FloatVector.broadcast(F, f16(w, blk0)), acc0);
      acc1 = lo1.add(hi1).fma(FloatVector.broadcast(F, f16(w, blk1)), acc1);
    }
    out[o] = acc0.reduceLanes(VectorOperators.ADD);
    out[o + 1] = acc1.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ4_0Reference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q4_0_BLOCK;
      float s = 0;
      for (int j = 0; j < QK / 2; j++) {
        int q = w[blk + 2 + j] & 0xff;
        s += ((q & 0x0f) - 8) * x[b * QK + j];
        s += ((q >>> 4) - 8) * x[b * QK + QK / 2 + j];
      }
      sum += s * f16(w, blk);
    }
    return sum;
  }
}
