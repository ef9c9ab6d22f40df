package dev.compactor.core.infer;

import dev.compactor.core.gguf.GgmlQuantizer;
import dev.compactor.core.gguf.GgmlType;
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
 * Q4_1  20-byte blocks of 32: fp16 d, fp16 m, qs[16] as Q4_0;          value = q * d + m
 * Q5_0  22-byte blocks of 32: fp16 d, uint32 qh (bytes 2..5, bit j = bit 4 of value j), qs[16]
 *       as Q4_0;                                                      value = (q - 16) * d
 * Q5_1  24-byte blocks of 32: fp16 d, fp16 m, uint32 qh, qs[16];      value = q * d + m
 * Q4_K  144-byte super-blocks of 256: fp16 d, fp16 dmin, 12 bytes of 8 6-bit scales and 8 6-bit
 *       mins (get_scale_min_k4, see {@link #scaleK}), qs[128]: qs[32c + l] holds value 64c + l
 *       (low nibble, sub-block 2c) and 64c + 32 + l (high nibble, sub-block 2c + 1);
 *       value = d * scale[s] * q - dmin * min[s]
 * Q5_K  176-byte super-blocks: Q4_K's d, dmin, scales; qh[32] (bit 2c of qh[l] is bit 4 of value
 *       64c + l, bit 2c + 1 that of 64c + 32 + l), qs[128] as Q4_K
 * Q6_K  210-byte super-blocks: ql[128], qh[64], int8 scales[16], fp16 d (bytes 208..209); for
 *       half h, l &lt; 32 (ql' = ql + 64h, qh' = qh + 32h): value 128h + l + 32k has low bits
 *       ql'[l + 32 (k &amp; 1)] nibble k / 2, high bits (qh'[l] &gt;&gt; 2k) &amp; 3; value = d *
 *       scales[v / 16] * (q - 32)
 * </pre>
 *
 * <p>The K-quant kernels follow ggml's {@code dequantize_row_q4_K} / {@code dequantize_row_q6_K}
 * (ggml-quants.c) for the layout and {@code ggml_vec_dot_q4_K_q8_K} (ggml-cpu/quants.c, e.g. as
 * vendored in ollama/ollama {@code ml/backend/ggml/ggml/src/ggml-cpu/quants.c}) for the order of
 * the arithmetic: per sub-block {@code d * scale * sum(q * x) - dmin * min * sum(x)}. Unlike ggml,
 * which quantizes the activations to Q8_K for these dots, the activations stay fp32 here
 * (weight-only, like the rest of this decoder), so the result equals dequantize-then-dot up to fp32
 * rounding.
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
  static final int Q4_1_BLOCK = 20;
  static final int Q5_0_BLOCK = 22;
  static final int Q5_1_BLOCK = 24;
  static final int QK_K = 256;
  static final int Q4_K_BLOCK = 144;
  static final int Q5_K_BLOCK = 176;
  static final int Q6_K_BLOCK = 210;

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int L = F.length();

  /** Byte vectors with as many lanes as {@link #F}, so one cast widens them to fp32 lanes. */
  private static final VectorSpecies<Byte> B =
      L >= 8 && L <= 16 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;

  private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());

  /** Byte vectors of {@code 2 L} lanes: {@code L} fp16 values ({@link #halfs}). */
  private static final VectorSpecies<Byte> B2 =
      B == null ? null : VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 16));

  /** True when the Vector API kernels run (else every call takes the scalar reference). */
  public static final boolean VECTORIZED = B != null;

  private static final float[] HALF_TO_FLOAT = new float[1 << 16];

  /** 0..31: lane shifts that pick bit j of a Q5 block's {@code qh} word. */
  private static final int[] IOTA32 = new int[32];

  static {
    for (int i = 0; i < 32; i++) {
      IOTA32[i] = i;
    }
  }

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

  /** {@code sum(w[off + i] * x[xOff + i])} for {@code i < n}. */
  public static float dotF32(float[] w, int off, float[] x, int xOff, int n) {
    if (!VECTORIZED) {
      float s = 0;
      for (int i = 0; i < n; i++) {
        s += w[off + i] * x[xOff + i];
      }
      return s;
    }
    FloatVector a0 = FloatVector.zero(F);
    int i = 0;
    for (; i <= n - L; i += L) {
      a0 = FloatVector.fromArray(F, w, off + i).fma(FloatVector.fromArray(F, x, xOff + i), a0);
    }
    float s = a0.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      s += w[off + i] * x[xOff + i];
    }
    return s;
  }

  /**
   * The tile of a matrix-matrix product: four weight rows (at {@code off + k * stride}) dotted with
   * two activation rows (at {@code xOff} and {@code xOff + xStride}); {@code out[o + k]} gets row k
   * with the first, {@code out[o + oStride + k]} with the second. Each weight and activation load
   * feeds four or two FMAs (8 accumulators fit the 16 registers of AVX2 with the 6 loads).
   */
  public static void dotF32x4x2(
      float[] w,
      int off,
      int stride,
      float[] x,
      int xOff,
      int xStride,
      int n,
      float[] out,
      int o,
      int oStride) {
    if (!VECTORIZED || n % L != 0) {
      for (int k = 0; k < 4; k++) {
        out[o + k] = dotF32(w, off + k * stride, x, xOff, n);
        out[o + oStride + k] = dotF32(w, off + k * stride, x, xOff + xStride, n);
      }
      return;
    }
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    FloatVector b0 = FloatVector.zero(F);
    FloatVector b1 = FloatVector.zero(F);
    FloatVector b2 = FloatVector.zero(F);
    FloatVector b3 = FloatVector.zero(F);
    int x1 = xOff + xStride;
    for (int i = 0; i < n; i += L) {
      FloatVector xa = FloatVector.fromArray(F, x, xOff + i);
      FloatVector xb = FloatVector.fromArray(F, x, x1 + i);
      FloatVector w0 = FloatVector.fromArray(F, w, off + i);
      a0 = w0.fma(xa, a0);
      b0 = w0.fma(xb, b0);
      FloatVector w1 = FloatVector.fromArray(F, w, off + stride + i);
      a1 = w1.fma(xa, a1);
      b1 = w1.fma(xb, b1);
      FloatVector w2 = FloatVector.fromArray(F, w, off + 2 * stride + i);
      a2 = w2.fma(xa, a2);
      b2 = w2.fma(xb, b2);
      FloatVector w3 = FloatVector.fromArray(F, w, off + 3 * stride + i);
      a3 = w3.fma(xa, a3);
      b3 = w3.fma(xb, b3);
    }
    out[o] = a0.reduceLanes(VectorOperators.ADD);
    out[o + 1] = a1.reduceLanes(VectorOperators.ADD);
    out[o + 2] = a2.reduceLanes(VectorOperators.ADD);
    out[o + 3] = a3.reduceLanes(VectorOperators.ADD);
    out[o + oStride] = b0.reduceLanes(VectorOperators.ADD);
    out[o + oStride + 1] = b1.reduceLanes(VectorOperators.ADD);
    out[o + oStride + 2] = b2.reduceLanes(VectorOperators.ADD);
    out[o + oStride + 3] = b3.reduceLanes(VectorOperators.ADD);
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
    if (!VECTORIZED) {
      return dotF16Reference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    int i = 0;
    for (; i <= n - L; i += L) {
      acc = halfs(w, off + 2 * i).fma(FloatVector.fromArray(F, x, i), acc);
    }
    float s = acc.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      s += f16(w, off + 2 * i) * x[i];
    }
    return s;
  }

  public static float dotF16Reference(byte[] w, int off, float[] x, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) {
      s += f16(w, off + 2 * i) * x[i];
    }
    return s;
  }

  /** {@code n} fp16 values at {@code w[off]} to fp32 with the vector conversion of the kernels. */
  static void halfsToFloats(byte[] w, int off, float[] out, int n) {
    int i = 0;
    if (VECTORIZED) {
      for (; i <= n - L; i += L) {
        halfs(w, off + 2 * i).intoArray(out, i);
      }
    }
    for (; i < n; i++) {
      out[i] = f16(w, off + 2 * i);
    }
  }

  /**
   * {@code L} little-endian fp16 values at {@code w[p]} as fp32 lanes, exactly: the 15 magnitude
   * bits shifted into place are a float {@code 2^-112} times the half (normal and subnormal halves
   * alike, the latter as float subnormals), so one multiply by {@code 2^112} finishes the job;
   * infinities and NaNs (exponent 31) take the float exponent 255 instead, and the sign is or-ed
   * in. The bytes are loaded as a byte vector and reinterpreted as shorts (x86 lane order is
   * little-endian), as the JDK 17 and 25 Vector APIs both allow.
   */
  private static FloatVector halfs(byte[] w, int p) {
    IntVector h = (IntVector) ByteVector.fromArray(B2, w, p).reinterpretAsShorts().castShape(I, 0);
    IntVector em = h.lanewise(VectorOperators.AND, 0x7FFF);
    IntVector shifted = em.lanewise(VectorOperators.LSHL, 13);
    IntVector bits = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
    bits =
        bits.blend(
            shifted.lanewise(VectorOperators.OR, 0x7F800000),
            em.compare(VectorOperators.GE, 0x7C00));
    IntVector sign = h.lanewise(VectorOperators.AND, 0x8000).lanewise(VectorOperators.LSHL, 16);
    return bits.lanewise(VectorOperators.OR, sign).reinterpretAsFloats();
  }

  // ---- dequantization (the weight tiles of the batched prefill) ------------------------------

  /**
   * Row {@code w[off..]} of {@code n} values of {@code type} decoded to fp32 into {@code
   * out[outOff..]}: F16, Q8_0 and Q4_0 on the Vector API, bit for bit what {@link
   * GgmlQuantizer#dequantizeRow} gives (an exact int-to-float conversion and one multiply by the
   * block scale, as there), every other type through {@code GgmlQuantizer}.
   */
  public static void dequantizeRow(
      GgmlType type, byte[] w, int off, float[] out, int outOff, int n) {
    if (!VECTORIZED || n % QK != 0) {
      GgmlQuantizer.dequantizeRow(type, w, off, out, outOff, n);
      return;
    }
    switch (type) {
      case F16 -> {
        for (int i = 0; i < n; i += L) {
          halfs(w, off + 2 * i).intoArray(out, outOff + i);
        }
      }
      case Q8_0 -> {
        for (int b = 0; b < n / QK; b++) {
          int blk = off + b * Q8_0_BLOCK;
          float d = f16(w, blk);
          for (int j = 0; j < QK; j += L) {
            floats(ints(w, blk + 2 + j)).mul(d).intoArray(out, outOff + b * QK + j);
          }
        }
      }
      case Q4_0 -> {
        for (int b = 0; b < n / QK; b++) {
          int blk = off + b * Q4_0_BLOCK;
          float d = f16(w, blk);
          for (int j = 0; j < QK / 2; j += L) {
            IntVector r =
                (IntVector)
                    ByteVector.fromArray(B, w, blk + 2 + j)
                        .lanewise(VectorOperators.XOR, (byte) 0x88)
                        .castShape(I, 0);
            IntVector lo = r.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28);
            floats(lo).mul(d).intoArray(out, outOff + b * QK + j);
            floats(r.lanewise(VectorOperators.ASHR, 4))
                .mul(d)
                .intoArray(out, outOff + b * QK + QK / 2 + j);
          }
        }
      }
      default -> GgmlQuantizer.dequantizeRow(type, w, off, out, outOff, n);
    }
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

  // ---- helpers for the kernels below ----------------------------------------------------------

  /** {@code L} bytes at {@code w[p]} widened (sign-extending) to int lanes. */
  private static IntVector ints(byte[] w, int p) {
    return (IntVector) ByteVector.fromArray(B, w, p).castShape(I, 0);
  }

  private static FloatVector floats(IntVector v) {
    return (FloatVector) v.castShape(F, 0);
  }

  private static FloatVector xv(float[] x, int i) {
    return FloatVector.fromArray(F, x, i);
  }

  private static int u32(byte[] w, int p) {
    return (w[p] & 0xff)
        | (w[p + 1] & 0xff) << 8
        | (w[p + 2] & 0xff) << 16
        | (w[p + 3] & 0xff) << 24;
  }

  /** Bit 4 of the Q5 values {@code j .. j + L} (bits {@code j..} of {@code qh}) at bit 4. */
  private static IntVector fifthBits(int qh, int j) {
    return IntVector.broadcast(I, qh)
        .lanewise(VectorOperators.LSHR, IntVector.fromArray(I, IOTA32, j))
        .lanewise(VectorOperators.AND, 1)
        .lanewise(VectorOperators.LSHL, 4);
  }

  // ---- Q4_1 ------------------------------------------------------------------------------------

  /** Dot of the {@code n / 32} Q4_1 blocks at {@code off} with {@code x}: d*sum(q*x) + m*sum(x). */
  public static float dotQ4_1(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ4_1Reference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q4_1_BLOCK;
      int xb = b * QK;
      FloatVector s = FloatVector.zero(F);
      FloatVector sx = FloatVector.zero(F);
      for (int c = 0; c < QK / 2; c += L) {
        IntVector r = ints(w, blk + 4 + c);
        FloatVector xl = xv(x, xb + c);
        FloatVector xh = xv(x, xb + QK / 2 + c);
        s = floats(r.lanewise(VectorOperators.AND, 0xF)).fma(xl, s);
        s =
            floats(r.lanewise(VectorOperators.ASHR, 4).lanewise(VectorOperators.AND, 0xF))
                .fma(xh, s);
        sx = sx.add(xl).add(xh);
      }
      acc = s.fma(FloatVector.broadcast(F, f16(w, blk)), acc);
      acc = sx.fma(FloatVector.broadcast(F, f16(w, blk + 2)), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ4_1Reference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q4_1_BLOCK;
      float s = 0;
      float sx = 0;
      for (int j = 0; j < QK / 2; j++) {
        int q = w[blk + 4 + j] & 0xff;
        float x0 = x[b * QK + j];
        float x1 = x[b * QK + QK / 2 + j];
        s += (q & 0x0f) * x0 + (q >>> 4) * x1;
        sx += x0 + x1;
      }
      sum += f16(w, blk) * s + f16(w, blk + 2) * sx;
    }
    return sum;
  }

  // ---- Q5_0 / Q5_1 -----------------------------------------------------------------------------

  /** Dot of the {@code n / 32} Q5_0 blocks at {@code off} with {@code x}. */
  public static float dotQ5_0(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ5_0Reference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q5_0_BLOCK;
      int xb = b * QK;
      int qh = u32(w, blk + 2);
      FloatVector s = FloatVector.zero(F);
      for (int c = 0; c < QK / 2; c += L) {
        IntVector r = ints(w, blk + 6 + c);
        IntVector lo =
            r.lanewise(VectorOperators.AND, 0xF).lanewise(VectorOperators.OR, fifthBits(qh, c));
        IntVector hi =
            r.lanewise(VectorOperators.ASHR, 4)
                .lanewise(VectorOperators.AND, 0xF)
                .lanewise(VectorOperators.OR, fifthBits(qh, QK / 2 + c));
        s = floats(lo.sub(16)).fma(xv(x, xb + c), s);
        s = floats(hi.sub(16)).fma(xv(x, xb + QK / 2 + c), s);
      }
      acc = s.fma(FloatVector.broadcast(F, f16(w, blk)), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ5_0Reference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q5_0_BLOCK;
      int qh = u32(w, blk + 2);
      float s = 0;
      for (int j = 0; j < QK / 2; j++) {
        int q = w[blk + 6 + j] & 0xff;
        int q0 = (q & 0x0f) | ((qh >>> j) & 1) << 4;
        int q1 = (q >>> 4) | ((qh >>> (j + 16)) & 1) << 4;
        s += (q0 - 16) * x[b * QK + j] + (q1 - 16) * x[b * QK + QK / 2 + j];
      }
      sum += s * f16(w, blk);
    }
    return sum;
  }

  /** Dot of the {@code n / 32} Q5_1 blocks at {@code off} with {@code x}: d*sum(q*x) + m*sum(x). */
  public static float dotQ5_1(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ5_1Reference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q5_1_BLOCK;
      int xb = b * QK;
      int qh = u32(w, blk + 4);
      FloatVector s = FloatVector.zero(F);
      FloatVector sx = FloatVector.zero(F);
      for (int c = 0; c < QK / 2; c += L) {
        IntVector r = ints(w, blk + 8 + c);
        IntVector lo =
            r.lanewise(VectorOperators.AND, 0xF).lanewise(VectorOperators.OR, fifthBits(qh, c));
        IntVector hi =
            r.lanewise(VectorOperators.ASHR, 4)
                .lanewise(VectorOperators.AND, 0xF)
                .lanewise(VectorOperators.OR, fifthBits(qh, QK / 2 + c));
        FloatVector xl = xv(x, xb + c);
        FloatVector xh = xv(x, xb + QK / 2 + c);
        s = floats(lo).fma(xl, s);
        s = floats(hi).fma(xh, s);
        sx = sx.add(xl).add(xh);
      }
      acc = s.fma(FloatVector.broadcast(F, f16(w, blk)), acc);
      acc = sx.fma(FloatVector.broadcast(F, f16(w, blk + 2)), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ5_1Reference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK; b++) {
      int blk = off + b * Q5_1_BLOCK;
      int qh = u32(w, blk + 4);
      float s = 0;
      float sx = 0;
      for (int j = 0; j < QK / 2; j++) {
        int q = w[blk + 8 + j] & 0xff;
        int q0 = (q & 0x0f) | ((qh >>> j) & 1) << 4;
        int q1 = (q >>> 4) | ((qh >>> (j + 16)) & 1) << 4;
        float x0 = x[b * QK + j];
        float x1 = x[b * QK + QK / 2 + j];
        s += q0 * x0 + q1 * x1;
        sx += x0 + x1;
      }
      sum += f16(w, blk) * s + f16(w, blk + 2) * sx;
    }
    return sum;
  }

  // ---- Q4_K / Q5_K -----------------------------------------------------------------------------

  /**
   * ggml's {@code get_scale_min_k4}: the 6-bit scale ({@code min = false}) or min of sub-block
   * {@code j} from the 12 packed bytes at {@code w[sc]}. Sub-blocks 0..3 keep the low 6 bits of
   * bytes j (scale) and j + 4 (min); 4..7 take their low 4 bits from byte j + 4's nibbles and the
   * high 2 from the top bits of bytes j - 4 (scale) and j (min).
   */
  static int scaleK(byte[] w, int sc, int j, boolean min) {
    if (j < 4) {
      return w[sc + j + (min ? 4 : 0)] & 63;
    }
    int packed = w[sc + j + 4] & 0xff;
    int top = (w[sc + j - (min ? 0 : 4)] & 0xff) >> 6;
    return (min ? packed >> 4 : packed & 0xF) | top << 4;
  }

  /** Dot of the {@code n / 256} Q4_K super-blocks at {@code off} with {@code x}. */
  public static float dotQ4_K(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ4_KReference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    // a second chain for the min terms: consecutive FMAs need not wait on one another
    FloatVector accMin = FloatVector.zero(F);
    for (int b = 0; b < n / QK_K; b++) {
      int blk = off + b * Q4_K_BLOCK;
      float d = f16(w, blk);
      float dmin = f16(w, blk + 2);
      for (int c = 0; c < 4; c++) {
        int q = blk + 16 + 32 * c;
        int xb = b * QK_K + 64 * c;
        FloatVector s1 = FloatVector.zero(F);
        FloatVector s2 = FloatVector.zero(F);
        FloatVector x1 = FloatVector.zero(F);
        FloatVector x2 = FloatVector.zero(F);
        for (int l = 0; l < 32; l += L) {
          IntVector r = ints(w, q + l);
          FloatVector xa = xv(x, xb + l);
          FloatVector xc = xv(x, xb + 32 + l);
          s1 = floats(r.lanewise(VectorOperators.AND, 0xF)).fma(xa, s1);
          s2 =
              floats(r.lanewise(VectorOperators.ASHR, 4).lanewise(VectorOperators.AND, 0xF))
                  .fma(xc, s2);
          x1 = x1.add(xa);
          x2 = x2.add(xc);
        }
        acc = s1.fma(FloatVector.broadcast(F, d * scaleK(w, blk + 4, 2 * c, false)), acc);
        accMin = x1.fma(FloatVector.broadcast(F, -dmin * scaleK(w, blk + 4, 2 * c, true)), accMin);
        acc = s2.fma(FloatVector.broadcast(F, d * scaleK(w, blk + 4, 2 * c + 1, false)), acc);
        accMin =
            x2.fma(FloatVector.broadcast(F, -dmin * scaleK(w, blk + 4, 2 * c + 1, true)), accMin);
      }
    }
    return acc.add(accMin).reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ4_KReference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK_K; b++) {
      int blk = off + b * Q4_K_BLOCK;
      float d = f16(w, blk);
      float dmin = f16(w, blk + 2);
      for (int s = 0; s < 8; s++) {
        int q = blk + 16 + 32 * (s / 2);
        int shift = 4 * (s % 2);
        float sq = 0;
        float sx = 0;
        for (int l = 0; l < 32; l++) {
          float xi = x[b * QK_K + 32 * s + l];
          sq += ((w[q + l] & 0xff) >> shift & 0xF) * xi;
          sx += xi;
        }
        sum += d * scaleK(w, blk + 4, s, false) * sq - dmin * scaleK(w, blk + 4, s, true) * sx;
      }
    }
    return sum;
  }

  /** Dot of the {@code n / 256} Q5_K super-blocks at {@code off} with {@code x}. */
  public static float dotQ5_K(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ5_KReference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    for (int b = 0; b < n / QK_K; b++) {
      int blk = off + b * Q5_K_BLOCK;
      float d = f16(w, blk);
      float dmin = f16(w, blk + 2);
      for (int c = 0; c < 4; c++) {
        int q = blk + 48 + 32 * c;
        int xb = b * QK_K + 64 * c;
        FloatVector s1 = FloatVector.zero(F);
        FloatVector s2 = FloatVector.zero(F);
        FloatVector x1 = FloatVector.zero(F);
        FloatVector x2 = FloatVector.zero(F);
        for (int l = 0; l < 32; l += L) {
          IntVector r = ints(w, q + l);
          IntVector h = ints(w, blk + 16 + l);
          IntVector lo =
              r.lanewise(VectorOperators.AND, 0xF)
                  .lanewise(
                      VectorOperators.OR,
                      h.lanewise(VectorOperators.ASHR, 2 * c)
                          .lanewise(VectorOperators.AND, 1)
                          .lanewise(VectorOperators.LSHL, 4));
          IntVector hi =
              r.lanewise(VectorOperators.ASHR, 4)
                  .lanewise(VectorOperators.AND, 0xF)
                  .lanewise(
                      VectorOperators.OR,
                      h.lanewise(VectorOperators.ASHR, 2 * c + 1)
                          .lanewise(VectorOperators.AND, 1)
                          .lanewise(VectorOperators.LSHL, 4));
          FloatVector xa = xv(x, xb + l);
          FloatVector xc = xv(x, xb + 32 + l);
          s1 = floats(lo).fma(xa, s1);
          s2 = floats(hi).fma(xc, s2);
          x1 = x1.add(xa);
          x2 = x2.add(xc);
        }
        acc = s1.fma(FloatVector.broadcast(F, d * scaleK(w, blk + 4, 2 * c, false)), acc);
        acc = x1.fma(FloatVector.broadcast(F, -dmin * scaleK(w, blk + 4, 2 * c, true)), acc);
        acc = s2.fma(FloatVector.broadcast(F, d * scaleK(w, blk + 4, 2 * c + 1, false)), acc);
        acc = x2.fma(FloatVector.broadcast(F, -dmin * scaleK(w, blk + 4, 2 * c + 1, true)), acc);
      }
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ5_KReference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK_K; b++) {
      int blk = off + b * Q5_K_BLOCK;
      float d = f16(w, blk);
      float dmin = f16(w, blk + 2);
      for (int s = 0; s < 8; s++) {
        int q = blk + 48 + 32 * (s / 2);
        int shift = 4 * (s % 2);
        float sq = 0;
        float sx = 0;
        for (int l = 0; l < 32; l++) {
          float xi = x[b * QK_K + 32 * s + l];
          int code = ((w[q + l] & 0xff) >> shift & 0xF) | ((w[blk + 16 + l] >> s) & 1) << 4;
          sq += code * xi;
          sx += xi;
        }
        sum += d * scaleK(w, blk + 4, s, false) * sq - dmin * scaleK(w, blk + 4, s, true) * sx;
      }
    }
    return sum;
  }

  // ---- Q6_K ------------------------------------------------------------------------------------

  /**
   * Dot of the {@code n / 256} Q6_K super-blocks at {@code off} with {@code x}. The four values
   * that share a {@code qh} byte are taken in four passes (k = 0..3, shifts by loop variables)
   * rather than side by side: the side-by-side loop body, four times as large, measured 1.5
   * Gvalues/s against 3.1-3.3 for this one (one thread, JDK 17, AVX-512, best of 12 passes over the
   * Q6_K matrices of QuantDecodeBench's Q4_K_M file).
   */
  public static float dotQ6_K(byte[] w, int off, float[] x, int n) {
    if (!VECTORIZED) {
      return dotQ6_KReference(w, off, x, n);
    }
    FloatVector acc = FloatVector.zero(F);
    for (int b = 0; b < n / QK_K; b++) {
      int blk = off + b * Q6_K_BLOCK;
      float d = f16(w, blk + 208);
      for (int half = 0; half < 2; half++) {
        int ql = blk + 64 * half;
        int qh = blk + 128 + 32 * half;
        int sc = blk + 192 + 8 * half;
        int xo = b * QK_K + 128 * half;
        // one load of ql[l], ql[l + 32] and qh[l] gives the four values l + 32k, k = 0..3 (their
        // groups of 16 are 2k + l / 16 within the half)
        for (int l = 0; l < 32; l += L) {
          IntVector a = ints(w, ql + l);
          IntVector c = ints(w, ql + 32 + l);
          IntVector h = ints(w, qh + l);
          int g = sc + (l >> 4);
          for (int k = 0; k < 4; k++) {
            IntVector low =
                ((k & 1) == 0 ? a : c)
                    .lanewise(VectorOperators.ASHR, 4 * (k >> 1))
                    .lanewise(VectorOperators.AND, 0xF);
            IntVector high =
                h.lanewise(VectorOperators.ASHR, 2 * k)
                    .lanewise(VectorOperators.AND, 3)
                    .lanewise(VectorOperators.LSHL, 4);
            FloatVector q = floats(low.lanewise(VectorOperators.OR, high).sub(32));
            acc =
                q.mul(xv(x, xo + 32 * k + l)).fma(FloatVector.broadcast(F, d * w[g + 2 * k]), acc);
          }
        }
      }
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  public static float dotQ6_KReference(byte[] w, int off, float[] x, int n) {
    float sum = 0;
    for (int b = 0; b < n / QK_K; b++) {
      int blk = off + b * Q6_K_BLOCK;
      float d = f16(w, blk + 208);
      for (int v = 0; v < QK_K; v += 16) {
        int half = v / 128;
        int k = (v % 128) / 32; // which of the four values ql/qh hold per l
        float s = 0;
        for (int i = 0; i < 16; i++) {
          int l = (v % 32) + i;
          int low = (w[blk + 64 * half + l + 32 * (k & 1)] & 0xff) >> (4 * (k >> 1)) & 0xF;
          int high = (w[blk + 128 + 32 * half + l] & 0xff) >> (2 * k) & 3;
          s += ((low | high << 4) - 32) * x[b * QK_K + v + i];
        }
        sum += d * w[blk + 192 + v / 16] * s;
      }
    }
    return sum;
  }
}
