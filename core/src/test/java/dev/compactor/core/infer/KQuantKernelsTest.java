package dev.compactor.core.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.GgmlQuantizer;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.io.Fp16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Q4_1 / Q5_0 / Q5_1 / Q4_K / Q5_K / Q6_K dot kernels (vector and scalar reference) against a
 * double-precision dot of the rows the project's GGUF block decoders ({@link
 * GgmlQuantizer#dequantizeRow}, ports of ggml's {@code dequantize_row_*}) produce, on blocks from
 * the quantizers and on random bytes (every code, every 6-bit scale/min of Q4_K's packing, every
 * int8 Q6_K scale); and the tiled matrix-matrix product of {@link QuantMatrix#matmul} against the
 * per-row dot for every type.
 */
class KQuantKernelsTest {

  private static final GgmlType[] TYPES = {
    GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K
  };

  /** Largest error seen, in units of {@code sqrt(n) * magnitude}; printed for the tolerance. */
  private double worstRatio;

  @Test
  void quantizedRowsAgreeWithDequantizeThenDot() {
    Random r = new Random(11);
    for (GgmlType t : TYPES) {
      for (int n : new int[] {256, 768, 2816}) {
        for (int trial = 0; trial < 2; trial++) {
          float[] w = QuantKernelsTest.gaussian(r, n, 0.05f);
          for (int i = 0; i < n; i += 97) {
            w[i] += 0.3f; // an outlier now and then, as real weights have
          }
          byte[] q = GgmlQuantizer.quantize(t, w, 1, n, null);
          float[] x = QuantKernelsTest.gaussian(r, n, 1f);
          check(q, 0, x, n, t);
          // the same blocks at an offset inside a larger array (a row of a matrix)
          int pad = 3 * t.typeSize();
          byte[] shifted = new byte[q.length + pad];
          System.arraycopy(q, 0, shifted, pad, q.length);
          check(shifted, pad, x, n, t);
        }
      }
    }
    System.err.printf("worst error / (sqrt(n) * magnitude): %.3g%n", worstRatio);
  }

  @Test
  void randomBlocksAgreeWithDequantizeThenDot() {
    Random r = new Random(12);
    for (GgmlType t : TYPES) {
      int n = 2048;
      for (int trial = 0; trial < 3; trial++) {
        byte[] b = new byte[(int) t.bytesFor(n)];
        r.nextBytes(b);
        for (int blk = 0; blk < n / t.blockSize(); blk++) {
          int o = blk * t.typeSize();
          for (int f : scaleOffsets(t)) {
            short h = Fp16.fromFloat((r.nextBoolean() ? 1 : -1) * (0.001f + r.nextFloat() * 0.01f));
            b[o + f] = (byte) h;
            b[o + f + 1] = (byte) (h >> 8);
          }
        }
        check(b, 0, QuantKernelsTest.gaussian(r, n, 1f), n, t);
      }
    }
  }

  @Test
  void q4_KScaleAndMinUnpackingIsGgmlsGetScaleMinK4() {
    // every 6-bit value in every one of the 8 slots, through the 12-byte packing
    Random r = new Random(13);
    for (int trial = 0; trial < 200; trial++) {
      int[] sc = new int[8];
      int[] mn = new int[8];
      byte[] p = new byte[12];
      for (int j = 0; j < 8; j++) {
        sc[j] = r.nextInt(64);
        mn[j] = r.nextInt(64);
        if (j < 4) {
          p[j] |= (byte) sc[j];
          p[j + 4] |= (byte) mn[j];
        } else {
          p[j + 4] = (byte) ((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
          p[j - 4] |= (byte) ((sc[j] >> 4) << 6);
          p[j] |= (byte) ((mn[j] >> 4) << 6);
        }
      }
      for (int j = 0; j < 8; j++) {
        assertEquals(sc[j], QuantKernels.scaleK(p, 0, j, false), "scale " + j);
        assertEquals(mn[j], QuantKernels.scaleK(p, 0, j, true), "min " + j);
      }
    }
  }

  @Test
  void matmulEqualsTheRowDotForEveryType() {
    Random r = new Random(14);
    int rows = 13; // not a multiple of the 4-row tile
    int cols = 512;
    for (GgmlType t : GgmlType.values()) {
      float[] w = QuantKernelsTest.gaussian(r, rows * cols, 0.05f);
      byte[] data =
          t == GgmlType.F32 ? f32Bytes(w) : GgmlQuantizer.quantize(t, w, rows, cols, null);
      if (t == GgmlType.F16) {
        data = f16Bytes(w);
      }
      QuantMatrix m = QuantMatrix.of("w", t, rows, cols, data);
      for (int tokens : new int[] {1, 2, 5}) {
        float[] x = QuantKernelsTest.gaussian(r, tokens * cols, 1f);
        float[] out = new float[tokens * rows];
        Arrays.fill(out, Float.NaN);
        // two calls on adjacent row ranges, as two threads would make them
        m.matmul(x, tokens, out, 0, 6);
        m.matmul(x, tokens, out, 6, rows);
        for (int tk = 0; tk < tokens; tk++) {
          float[] xt = Arrays.copyOfRange(x, tk * cols, (tk + 1) * cols);
          for (int row = 0; row < rows; row++) {
            float want = m.dot(row, xt);
            double mag = 0;
            for (int c = 0; c < cols; c++) {
              mag += Math.abs(0.1 * xt[c]);
            }
            assertEquals(
                want,
                out[tk * rows + row],
                4e-7 * Math.sqrt(cols) * mag,
                t + " tokens " + tokens + " row " + row + " token " + tk);
          }
        }
      }
    }
  }

  /** Byte offsets of a block's fp16 scale fields (set to finite values in random blocks). */
  private static int[] scaleOffsets(GgmlType t) {
    return switch (t) {
      case Q5_0 -> new int[] {0};
      case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
      case Q6_K -> new int[] {208};
      default -> throw new IllegalArgumentException(t.toString());
    };
  }

  /** Byte ranges holding codes (not scales): zeroed to find each value's offset term. */
  private static int[] codeRange(GgmlType t) {
    return switch (t) {
      case Q4_1 -> new int[] {4, 20};
      case Q5_0 -> new int[] {2, 22};
      case Q5_1 -> new int[] {4, 24};
      case Q4_K -> new int[] {16, 144};
      case Q5_K -> new int[] {16, 176};
      case Q6_K -> new int[] {0, 192};
      default -> throw new IllegalArgumentException(t.toString());
    };
  }

  /**
   * Vector kernel, scalar reference and a double dot of the dequantized row agree within fp32
   * rounding of the terms the kernels add: {@code scale * code * x} and the block's offset term
   * ({@code min * x}, or {@code -32 * scale * x}), which can cancel, so the magnitude is taken over
   * both (the offset term is what the decoder gives with the code bytes zeroed).
   */
  private void check(byte[] q, int off, float[] x, int n, GgmlType t) {
    float[] dq = new float[n];
    GgmlQuantizer.dequantizeRow(t, q, off, dq, 0, n);
    byte[] zero = q.clone();
    int[] cr = codeRange(t);
    for (int b = 0; b < n / t.blockSize(); b++) {
      int o = off + b * t.typeSize();
      Arrays.fill(zero, o + cr[0], o + cr[1], (byte) 0);
    }
    float[] base = new float[n];
    GgmlQuantizer.dequantizeRow(t, zero, off, base, 0, n);
    double ref = 0;
    double mag = 0;
    for (int i = 0; i < n; i++) {
      ref += (double) dq[i] * x[i];
      mag += (Math.abs((double) dq[i]) + 2 * Math.abs((double) base[i])) * Math.abs(x[i]);
    }
    float fast = kernel(t, q, off, x, n);
    float plain = reference(t, q, off, x, n);
    // measured worst 4e-10 * sqrt(n) * mag; one wrong code moves the dot by ~mag / n
    double tol = 1e-8 * Math.sqrt(n) * mag + 1e-30;
    worstRatio = Math.max(worstRatio, Math.abs(fast - ref) / (Math.sqrt(n) * mag));
    worstRatio = Math.max(worstRatio, Math.abs(plain - ref) / (Math.sqrt(n) * mag));
    assertEquals(ref, fast, tol, t + " vector n=" + n);
    assertEquals(ref, plain, tol, t + " reference n=" + n);
    assertTrue(Math.abs(ref) > 0 || mag == 0, t + ": a zero dot is no test");
  }

  private static float kernel(GgmlType t, byte[] q, int off, float[] x, int n) {
    return switch (t) {
      case Q4_1 -> QuantKernels.dotQ4_1(q, off, x, n);
      case Q5_0 -> QuantKernels.dotQ5_0(q, off, x, n);
      case Q5_1 -> QuantKernels.dotQ5_1(q, off, x, n);
      case Q4_K -> QuantKernels.dotQ4_K(q, off, x, n);
      case Q5_K -> QuantKernels.dotQ5_K(q, off, x, n);
      case Q6_K -> QuantKernels.dotQ6_K(q, off, x, n);
      default -> throw new IllegalArgumentException(t.toString());
    };
  }

  private static float reference(GgmlType t, byte[] q, int off, float[] x, int n) {
    return switch (t) {
      case Q4_1 -> QuantKernels.dotQ4_1Reference(q, off, x, n);
      case Q5_0 -> QuantKernels.dotQ5_0Reference(q, off, x, n);
      case Q5_1 -> QuantKernels.dotQ5_1Reference(q, off, x, n);
      case Q4_K -> QuantKernels.dotQ4_KReference(q, off, x, n);
      case Q5_K -> QuantKernels.dotQ5_KReference(q, off, x, n);
      case Q6_K -> QuantKernels.dotQ6_KReference(q, off, x, n);
      default -> throw new IllegalArgumentException(t.toString());
    };
  }

  private static byte[] f32Bytes(float[] v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    return b.array();
  }

  private static byte[] f16Bytes(float[] v) {
    ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : v) {
      b.putShort(Fp16.fromFloat(f));
    }
    return b.array();
  }
}
