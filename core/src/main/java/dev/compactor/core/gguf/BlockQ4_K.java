package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.KQuantMath.nearestInt;
import static dev.compactor.core.gguf.KQuantMath.sqrtf;

/**
 * ggml's Q4_K: 4-bit asymmetric quantization in super-blocks of 256 values made of 8 sub-blocks of
 * 32, each with a 6-bit scale and a 6-bit min that are themselves scaled by the fp16 {@code d} and
 * {@code dmin} (4.5 bits per weight). Ports of ggml's {@code quantize_row_q4_K_ref} (no importance,
 * {@code make_qkx2_quants} search), {@code quantize_row_q4_K_impl} (with importance weights, {@code
 * make_qkx3_quants} + {@code make_qp_quants}) and {@code dequantize_row_q4_K}.
 *
 * <pre>
 * #define QK_K 256
 * #define K_SCALE_SIZE 12
 * typedef struct {
 *     ggml_half d;                    // bytes 0..1: super-block scale for the sub-block scales
 *     ggml_half dmin;                 // bytes 2..3: super-block scale for the sub-block mins
 *     uint8_t scales[K_SCALE_SIZE];   // bytes 4..15: 8 scales + 8 mins, 6 bits each:
 *                                     //   j < 4: scale = scales[j] & 63, min = scales[j+4] & 63
 *                                     //   j >= 4: scale = (scales[j+4] & 0xF) | (scales[j-4] >> 6) << 4
 *                                     //           min   = (scales[j+4] >> 4)  | (scales[j]   >> 6) << 4
 *     uint8_t qs[QK_K/2];             // bytes 16..143: nibbles; qs[32*c + l] holds value 64*c + l
 * } block_q4_K;                       //   (low nibble) and 64*c + 32 + l (high nibble), c = 0..3
 *                                     // 144 bytes; value = d*scale*q - dmin*min
 * </pre>
 */
public final class BlockQ4_K {

  public static final int QK = GgmlType.QK_K;
  public static final int BLOCK_BYTES = 144;

  private BlockQ4_K() {}

  /**
   * Quantizes one row as {@code ggml_quantize_chunk} does: the reference path when {@code
   * importance} is null, the importance-weighted path otherwise ({@code importance[c]} is the
   * weight of column c, i.e. of {@code x[xOff + c]}; its length must be at least {@code n}).
   */
  public static void quantizeRow(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    if (importance == null) {
      quantizeRowReference(x, xOff, n, y, yOff);
    } else {
      quantizeRowWeighted(x, xOff, n, y, yOff, importance);
    }
  }

  /** {@code quantize_row_q4_K_ref}. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    byte[] L = new byte[QK];
    byte[] laux = new byte[32];
    float[] weights = new float[32];
    float[] mins = new float[QK / 32];
    float[] scales = new float[QK / 32];
    for (int i = 0; i < n / QK; i++) {
      int xb = xOff + i * QK;
      float maxScale = 0;
      float maxMin = 0;
      for (int j = 0; j < QK / 32; ++j) {
        float sumX2 = 0;
        for (int l = 0; l < 32; ++l) {
          sumX2 += x[xb + 32 * j + l] * x[xb + 32 * j + l];
        }
        float avX = sqrtf(sumX2 / 32);
        for (int l = 0; l < 32; ++l) {
          weights[l] = avX + Math.abs(x[xb + 32 * j + l]);
        }
        scales[j] =
            KQuantMath.makeQkx2Quants(
                32, 15, x, xb + 32 * j, weights, L, 32 * j, mins, j, laux, -1.f, 0.1f, 20, false);
        if (scales[j] > maxScale) {
          maxScale = scales[j];
        }
        if (mins[j] > maxMin) {
          maxMin = mins[j];
        }
      }
      int out = yOff + i * BLOCK_BYTES;
      float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
      float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
      for (int j = 0; j < QK / 32; ++j) {
        int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xff);
        int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xff);
        packScaleMin(y, out + 4, j, ls, lm);
      }
      BlockBytes.putF16(y, out, maxScale / 63.f);
      BlockBytes.putF16(y, out + 2, maxMin / 63.f);
      requantizeAndPack(x, xb, y, out, L);
    }
  }

  /** {@code quantize_row_q4_K_impl} with non-null {@code quant_weights}. */
  public static void quantizeRowWeighted(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    if (importance.length < n) {
      throw new IllegalArgumentException(
          "importance has " + importance.length + " entries for a row of " + n);
    }
    byte[] L = new byte[QK];
    byte[] laux = new byte[32];
    byte[] ls = new byte[QK / 32];
    byte[] lm = new byte[QK / 32];
    float[] weights = new float[32];
    float[] sw = new float[QK / 32];
    float[] mins = new float[QK / 32];
    float[] scales = new float[QK / 32];
    for (int i = 0; i < n / QK; i++) {
      int xb = xOff + i * QK;
      float sumX2 = 0;
      for (int l = 0; l < QK; ++l) {
        sumX2 += x[xb + l] * x[xb + l];
      }
      float sigma2 = 2 * sumX2 / QK;
      for (int j = 0; j < QK / 32; ++j) {
        int qw = QK * i + 32 * j;
        for (int l = 0; l < 32; ++l) {
          float v = x[xb + 32 * j + l];
          weights[l] = importance[qw + l] * sqrtf(sigma2 + v * v);
        }
        float sumw = 0;
        for (int l = 0; l < 32; ++l) {
          sumw += weights[l];
        }
        sw[j] = sumw;
        scales[j] =
            KQuantMath.makeQkx3Quants(
                32, 15, x, xb + 32 * j, weights, L, 32 * j, mins, j, laux, -0.9f, 0.05f, 36, false);
      }
      float dBlock = KQuantMath.makeQpQuants(QK / 32, 63, scales, ls, sw);
      float mBlock = KQuantMath.makeQpQuants(QK / 32, 63, mins, lm, sw);
      int out = yOff + i * BLOCK_BYTES;
      for (int j = 0; j < QK / 32; ++j) {
        packScaleMin(y, out + 4, j, ls[j] & 0xff, lm[j] & 0xff);
      }
      BlockBytes.putF16(y, out, dBlock);
      BlockBytes.putF16(y, out + 2, mBlock);
      requantizeAndPack(x, xb, y, out, L);
    }
  }

  /** {@code dequantize_row_q4_K}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    int[] sm = new int[2];
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      float min = BlockBytes.getF16(y, in + 2);
      int q = in + 16;
      int o = xOff + i * QK;
      for (int j = 0, is = 0; j < QK; j += 64, is += 2, q += 32) {
        scaleMin(is, y, in + 4, sm);
        float d1 = d * sm[0];
        float m1 = min * sm[1];
        scaleMin(is + 1, y, in + 4, sm);
        float d2 = d * sm[0];
        float m2 = min * sm[1];
        for (int l = 0; l < 32; ++l) {
          x[o++] = d1 * (y[q + l] & 0xF) - m1;
        }
        for (int l = 0; l < 32; ++l) {
          x[o++] = d2 * ((y[q + l] & 0xff) >> 4) - m2;
        }
      }
    }
  }

  /** {@code get_scale_min_k4}: the 6-bit scale and min of sub-block {@code j}. */
  static void scaleMin(int j, byte[] q, int qo, int[] out) {
    if (j < 4) {
      out[0] = q[qo + j] & 63;
      out[1] = q[qo + j + 4] & 63;
    } else {
      out[0] = (q[qo + j + 4] & 0xF) | (((q[qo + j - 4] & 0xff) >> 6) << 4);
      out[1] = ((q[qo + j + 4] & 0xff) >> 4) | (((q[qo + j] & 0xff) >> 6) << 4);
    }
  }

  private static void packScaleMin(byte[] y, int sc, int j, int ls, int lm) {
    if (j < 4) {
      y[sc + j] = (byte) ls;
      y[sc + j + 4] = (byte) lm;
    } else {
      y[sc + j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
      y[sc + j - 4] |= (byte) ((ls >> 4) << 6);
      y[sc + j] |= (byte) ((lm >> 4) << 6);
    }
  }

  /** Recomputes the codes against the rounded scales/mins, then packs nibbles (shared tail). */
  private static void requantizeAndPack(float[] x, int xb, byte[] y, int out, byte[] L) {
    int[] sm = new int[2];
    float dAll = BlockBytes.getF16(y, out);
    float dminAll = BlockBytes.getF16(y, out + 2);
    for (int j = 0; j < QK / 32; ++j) {
      scaleMin(j, y, out + 4, sm);
      float d = dAll * sm[0];
      if (d == 0) {
        continue;
      }
      float dm = dminAll * sm[1];
      for (int ii = 0; ii < 32; ++ii) {
        int l = nearestInt((x[xb + 32 * j + ii] + dm) / d);
        L[32 * j + ii] = (byte) Math.max(0, Math.min(15, l));
      }
    }
    int q = out + 16;
    for (int j = 0; j < QK; j += 64) {
      for (int l = 0; l < 32; ++l) {
        y[q + l] = (byte) (L[j + l] | (L[j + l + 32] << 4));
      }
      q += 32;
    }
  }
}
