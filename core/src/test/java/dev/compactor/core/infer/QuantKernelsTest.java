package dev.compactor.core.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.GgmlQuantizer;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.io.Fp16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class QuantKernelsTest {

  private static final int[] LENGTHS = {32, 64, 96, 128, 4096, 11008};

  @Test
  void theKernelsRunVectorizedOnThisMachine() {
    // every CPU these tests run on has AVX2 or AVX-512; a silent scalar fallback would hide a
    // broken species choice behind a passing suite
    assertTrue(QuantKernels.VECTORIZED, "lanes " + QuantKernels.lanes());
  }

  @Test
  void halfToFloatMatchesTheGgufDequantizerForEveryBitPattern() {
    byte[] all = new byte[2 << 16];
    for (int h = 0; h < 1 << 16; h++) {
      all[2 * h] = (byte) h;
      all[2 * h + 1] = (byte) (h >>> 8);
    }
    float[] ref = GgmlQuantizer.dequantize(GgmlType.F16, all, 1 << 16);
    float[] vector = new float[1 << 16];
    QuantKernels.halfsToFloats(all, 0, vector, 1 << 16);
    for (int h = 0; h < 1 << 16; h++) {
      float got = QuantKernels.f16(all, 2 * h);
      if (Float.isNaN(ref[h])) {
        assertTrue(Float.isNaN(vector[h]), "vector 0x" + Integer.toHexString(h));
      } else {
        assertEquals(
            Float.floatToIntBits(ref[h]),
            Float.floatToIntBits(vector[h]),
            "vector 0x" + Integer.toHexString(h));
      }
      if (Float.isNaN(ref[h])) {
        assertTrue(Float.isNaN(got), "0x" + Integer.toHexString(h));
      } else {
        assertEquals(
            Float.floatToIntBits(ref[h]), Float.floatToIntBits(got), "0x" + Integer.toHexString(h));
      }
    }
  }

  @Test
  void q8_0VectorAndScalarAgreeWithDequantizeThenDot() {
    Random r = new Random(1);
    for (int n : LENGTHS) {
      for (int trial = 0; trial < 5; trial++) {
        float[] w = gaussian(r, n, 0.05f);
        float[] x = gaussian(r, n, 1f);
        byte[] q = GgmlQuantizer.quantize(GgmlType.Q8_0, w, 1, n, null);
        check(q, x, n, GgmlType.Q8_0, 0);
        // the same blocks at an offset inside a larger array (a row of a matrix)
        byte[] shifted = new byte[q.length + 34 * 3];
        System.arraycopy(q, 0, shifted, 34 * 3, q.length);
        check(shifted, x, n, GgmlType.Q8_0, 34 * 3);
      }
    }
  }

  @Test
  void q4_0VectorAndScalarAgreeWithDequantizeThenDot() {
    Random r = new Random(2);
    for (int n : LENGTHS) {
      for (int trial = 0; trial < 5; trial++) {
        float[] w = gaussian(r, n, 0.05f);
        float[] x = gaussian(r, n, 1f);
        byte[] q = GgmlQuantizer.quantize(GgmlType.Q4_0, w, 1, n, null);
        check(q, x, n, GgmlType.Q4_0, 0);
        byte[] shifted = new byte[q.length + 18 * 5];
        System.arraycopy(q, 0, shifted, 18 * 5, q.length);
        check(shifted, x, n, GgmlType.Q4_0, 18 * 5);
      }
    }
  }

  @Test
  void theTwoRowQ4_0KernelGivesEachRowExactlyTheOneRowResult() {
    Random r = new Random(5);
    for (int n : LENGTHS) {
      float[] w = gaussian(r, 3 * n, 0.05f);
      float[] x = gaussian(r, n, 1f);
      byte[] q = GgmlQuantizer.quantize(GgmlType.Q4_0, w, 3, n, null);
      int row = (int) GgmlType.Q4_0.bytesFor(n);
      float[] out = new float[4];
      QuantKernels.dotQ4_0x2(q, 2 * row, 0, x, n, out, 1);
      assertEquals(floatBits(QuantKernels.dotQ4_0(q, 2 * row, x, n)), floatBits(out[1]), "n=" + n);
      assertEquals(floatBits(QuantKernels.dotQ4_0(q, 0, x, n)), floatBits(out[2]), "n=" + n);
      assertEquals(0f, out[0]);
      assertEquals(0f, out[3]);
    }
  }

  private static int floatBits(float f) {
    return Float.floatToIntBits(f);
  }

  @Test
  void everyCodeValueIsDecodedIncludingTheExtremes() {
    // random code bytes (int8 -128..127, nibbles 0..15) with fp16 scales, not only what a quantizer
    // emits: Q8_0's -128 and Q4_0's sign handling of the high nibble are exercised
    Random r = new Random(3);
    for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0}) {
      int n = 1024;
      byte[] b = new byte[(int) t.bytesFor(n)];
      r.nextBytes(b);
      for (int blk = 0; blk < n / 32; blk++) {
        short h = Fp16.fromFloat(0.001f + r.nextFloat() * 0.01f);
        b[blk * t.typeSize()] = (byte) h;
        b[blk * t.typeSize() + 1] = (byte) (h >> 8);
      }
      check(b, gaussian(r, n, 1f), n, t, 0);
    }
  }

  @Test
  void f32AndF16RowsAgreeWithAPlainDot() {
    Random r = new Random(4);
    for (int n : new int[] {1, 7, 16, 33, 128, 4099}) {
      float[] w = gaussian(r, n + 3, 1f);
      float[] x = gaussian(r, n, 1f);
      double ref = 0;
      double mag = 0;
      for (int i = 0; i < n; i++) {
        ref += (double) w[3 + i] * x[i];
        mag += Math.abs((double) w[3 + i] * x[i]);
      }
      assertEquals(ref, QuantKernels.dotF32(w, 3, x, n), 1e-6 * mag + 1e-30, "f32 n=" + n);
      assertEquals(ref, QuantKernels.dotF32Reference(w, 3, x, n), 1e-6 * mag + 1e-30, "n=" + n);
      ByteBuffer bb = ByteBuffer.allocate(2 * n).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < n; i++) {
        bb.putShort(Fp16.fromFloat(w[3 + i]));
      }
      byte[] half = bb.array();
      float[] dq = GgmlQuantizer.dequantize(GgmlType.F16, half, n);
      double refH = 0;
      for (int i = 0; i < n; i++) {
        refH += (double) dq[i] * x[i];
      }
      assertEquals(refH, QuantKernels.dotF16(half, 0, x, n), 1e-6 * mag + 1e-30, "f16 n=" + n);
      assertEquals(
          refH, QuantKernels.dotF16Reference(half, 0, x, n), 1e-6 * mag + 1e-30, "f16 ref n=" + n);
    }
  }

  @Test
  void vectorDequantizationEqualsTheGgufDequantizerBitForBit() {
    Random r = new Random(9);
    int n = 256 * 5; // K-quant rows need multiples of 256
    float[] w = gaussian(r, n, 0.05f);
    w[5] = 0;
    w[40] = -w[41];
    for (GgmlType t :
        new GgmlType[] {GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K}) {
      byte[] q = GgmlQuantizer.quantize(t, w, 1, n, null);
      byte[] shifted = new byte[q.length + 3];
      System.arraycopy(q, 0, shifted, 3, q.length);
      float[] ref = new float[n + 5];
      float[] got = new float[n + 5];
      GgmlQuantizer.dequantizeRow(t, shifted, 3, ref, 5, n);
      QuantKernels.dequantizeRow(t, shifted, 3, got, 5, n);
      for (int i = 0; i < n + 5; i++) {
        assertEquals(
            Float.floatToRawIntBits(ref[i]), Float.floatToRawIntBits(got[i]), t + " value " + i);
      }
    }
  }

  /** Kernel, reference and a double-precision dot of the dequantized row agree to fp32 rounding. */
  private static void check(byte[] q, float[] x, int n, GgmlType t, int off) {
    float[] dq = new float[n];
    GgmlQuantizer.dequantizeRow(t, q, off, dq, 0, n);
    double ref = 0;
    double mag = 0;
    for (int i = 0; i < n; i++) {
      ref += (double) dq[i] * x[i];
      mag += Math.abs((double) dq[i] * x[i]);
    }
    float fast = t == GgmlType.Q8_0 ? QuantKernels.dotQ8_0(q, off, x, n) : dotQ4(q, off, x, n);
    float plain =
        t == GgmlType.Q8_0
            ? QuantKernels.dotQ8_0Reference(q, off, x, n)
            : QuantKernels.dotQ4_0Reference(q, off, x, n);
    // fp32 accumulation over n terms: a few ulps of the magnitude sum
    double tol = 4e-7 * Math.sqrt(n) * mag + 1e-30;
    assertEquals(ref, fast, tol, t + " vector n=" + n);
    assertEquals(ref, plain, tol, t + " reference n=" + n);
    assertEquals(plain, fast, tol, t + " vector vs reference n=" + n);
  }

  private static float dotQ4(byte[] q, int off, float[] x, int n) {
    return QuantKernels.dotQ4_0(q, off, x, n);
  }

  static float[] gaussian(Random r, int n, float scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) r.nextGaussian() * scale;
    }
    return v;
  }
}
