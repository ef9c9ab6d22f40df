package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.KQuantMath.sqrtf;

/**
 * ggml's Q5_1: 5-bit asymmetric quantization in blocks of 32 values with an fp16 scale and an fp16
 * min (6 bits per weight), the type llama.cpp falls back to when a Q5_K tensor's rows are not a
 * multiple of 256 (as the Q4_K_S and Q4_K_M mixes ask Q5_K for some tensors). Ports of ggml's
 * {@code quantize_row_q5_1_ref}, {@code quantize_row_q5_1_impl} (with importance, {@code
 * make_qkx3_quants}) and {@code dequantize_row_q5_1}.
 *
 * <pre>
 * #define QK5_1 32
 * typedef struct {
 *     ggml_half d;            // bytes 0..1: scale
 *     ggml_half m;            // bytes 2..3: min (the value of code 0)
 *     uint8_t qh[4];          // bytes 4..7: bit j of this little-endian uint32 is bit 4 of value j
 *     uint8_t qs[QK5_1 / 2];  // bytes 8..23: low nibble of qs[j] = low 4 bits of value j,
 * } block_q5_1;               //   high nibble = low 4 bits of value j + 16
 *                             // 24 bytes; value = q * d + m
 * </pre>
 */
public final class BlockQ5_1 {

  public static final int QK = 32;
  public static final int BLOCK_BYTES = 24;

  private BlockQ5_1() {}

  /** The reference path when {@code importance} is null, the weighted one otherwise. */
  public static void quantizeRow(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    if (importance == null) {
      quantizeRowReference(x, xOff, n, y, yOff);
    } else {
      quantizeRowWeighted(x, xOff, n, y, yOff, importance);
    }
  }

  /** {@code quantize_row_q5_1_ref}: d = (max - min) / 31, codes truncated from x/d + 0.5. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    byte[] L = new byte[QK];
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
      float d = (max - min) / ((1 << 5) - 1);
      float id = d != 0 ? 1.0f / d : 0.0f;
      int out = yOff + i * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      BlockBytes.putF16(y, out + 2, min);
      for (int j = 0; j < QK; j++) {
        // C converts the non-negative float to uint8_t: truncation
        L[j] = (byte) (int) ((x[b + j] - min) * id + 0.5f);
      }
      pack(L, y, out);
    }
  }

  /**
   * {@code quantize_row_q5_1_impl} with non-null weights: per block the scale and min of {@code
   * make_qkx3_quants(32, 31, ...)} weighted by {@code importance * sqrt(sigma2 + x^2)}, sigma2 the
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
              QK, 31, x, xb, weight, L, 0, theMin, 0, laux, -0.9f, 0.05f, 36, false);
      int out = yOff + ib * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      BlockBytes.putF16(y, out + 2, -theMin[0]);
      pack(L, y, out);
    }
  }

  private static void pack(byte[] L, byte[] y, int out) {
    int qh = 0;
    for (int j = 0; j < QK / 2; j++) {
      int xi0 = L[j] & 0xff;
      int xi1 = L[j + QK / 2] & 0xff;
      y[out + 8 + j] = (byte) ((xi0 & 0x0f) | ((xi1 & 0x0f) << 4));
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
    }
    y[out + 4] = (byte) qh;
    y[out + 5] = (byte) (qh >>> 8);
    y[out + 6] = (byte) (qh >>> 16);
    y[out + 7] = (byte) (qh >>> 24);
  }

  /** {@code dequantize_row_q5_1}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      float m = BlockBytes.getF16(y, in + 2);
      int qh =
          (y[in + 4] & 0xff)
              | (y[in + 5] & 0xff) << 8
              | (y[in + 6] & 0xff) << 16
              | (y[in + 7] & 0xff) << 24;
      for (int j = 0; j < QK / 2; j++) {
        int q = y[in + 8 + j] & 0xff;
        int hi0 = ((qh >>> j) << 4) & 0x10;
        int hi1 = (qh >>> (j + 12)) & 0x10;
        x[xOff + i * QK + j] = ((q & 0x0f) | hi0) * d + m;
        x[xOff + i * QK + QK / 2 + j] = ((q >>> 4) | hi1) * d + m;
      }
    }
  }
}
