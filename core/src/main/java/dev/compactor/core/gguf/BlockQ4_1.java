package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.KQuantMath.sqrtf;

/**
 * ggml's Q4_1: 4-bit asymmetric quantization in blocks of 32 values with an fp16 scale and an fp16
 * min (5 bits per weight), the type llama.cpp's Q4_0 file type gives the first eighth of the
 * ffn_down tensors when an importance matrix is used. Ports of ggml's {@code
 * quantize_row_q4_1_ref}, {@code quantize_row_q4_1_impl} (with importance, {@code
 * make_qkx3_quants}) and {@code dequantize_row_q4_1}.
 *
 * <pre>
 * #define QK4_1 32
 * typedef struct {
 *     ggml_half d;            // bytes 0..1: scale
 *     ggml_half m;            // bytes 2..3: min (the value of code 0)
 *     uint8_t qs[QK4_1 / 2];  // bytes 4..19: low nibble of qs[j] = value j, high = value j + 16
 * } block_q4_1;               // 20 bytes; value = q * d + m
 * </pre>
 */
public final class BlockQ4_1 {

  public static final int QK = 32;
  public static final int BLOCK_BYTES = 20;

  private BlockQ4_1() {}

  /** The reference path when {@code importance} is null, the weighted one otherwise. */
  public static void quantizeRow(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    if (importance == null) {
      quantizeRowReference(x, xOff, n, y, yOff);
    } else {
      quantizeRowWeighted(x, xOff, n, y, yOff, importance);
    }
  }

  /** {@code quantize_row_q4_1_ref}: d = (max - min) / 15, codes truncated from x/d + 0.5. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int b = xOff + i * QK;
      float min = Float.MAX_VALUE;
      float max = -Float.MAX_VALUE;
      for (int j = 0; j < QK; j++) {
        float v = x[b + j];
        if (v < min) {
          min = v;
        }
        if (v > max) {
          max = v;
        }
      }
      float d = (max - min) / ((1 << 4) - 1);
      float id = d != 0 ? 1.0f / d : 0.0f;
      int out = yOff + i * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      BlockBytes.putF16(y, out + 2, min);
      for (int j = 0; j < QK / 2; j++) {
        float x0 = (x[b + j] - min) * id;
        float x1 = (x[b + QK / 2 + j] - min) * id;
        int xi0 = Math.min(15, (byte) (int) (x0 + 0.5f));
        int xi1 = Math.min(15, (byte) (int) (x1 + 0.5f));
        y[out + 4 + j] = (byte) (xi0 | (xi1 << 4));
      }
    }
  }

  /**
   * {@code quantize_row_q4_1_impl} with non-null weights: per block the scale and min of {@code
   * make_qkx3_quants(32, 15, ...)} weighted by {@code importance * sqrt(sigma2 + x^2)}, sigma2 the
   * mean square of the whole row (so this needs the whole row).
   */
  public static void quantizeRowWeighted(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    byte[] L = new byte[QK];
    byte[] laux = new byte[QK];
    float[] weight = new float[QK];
    float[] theMin = new float[1];
    float sigma2 = LegacyAsymmetric.rowSigma2(x, xOff, n, importance);
    for (int ib = 0; ib < n / QK; ib++) {
      int xb = xOff + QK * ib;
      for (int j = 0; j < QK; ++j) {
        weight[j] = importance[QK * ib + j] * sqrtf(sigma2 + x[xb + j] * x[xb + j]);
      }
      float d =
          KQuantMath.makeQkx3Quants(
              QK, 15, x, xb, weight, L, 0, theMin, 0, laux, -0.9f, 0.05f, 36, false);
      int out = yOff + ib * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      BlockBytes.putF16(y, out + 2, -theMin[0]);
      for (int j = 0; j < QK / 2; ++j) {
        y[out + 4 + j] = (byte) (L[j] | (L[j + QK / 2] << 4));
      }
    }
  }

  /** {@code dequantize_row_q4_1}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      float m = BlockBytes.getF16(y, in + 2);
      for (int j = 0; j < QK / 2; j++) {
        int q = y[in + 4 + j] & 0xff;
        x[xOff + i * QK + j] = (q & 0x0f) * d + m;
        x[xOff + i * QK + QK / 2 + j] = (q >>> 4) * d + m;
      }
    }
  }
}
