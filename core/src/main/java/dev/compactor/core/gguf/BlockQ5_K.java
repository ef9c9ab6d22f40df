package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.KQuantMath.nearestInt;
import static dev.compactor.core.gguf.KQuantMath.sqrtf;

/**
 * ggml's Q5_K: 5-bit asymmetric quantization in super-blocks of 256 values made of 8 sub-blocks of
 * 32, with Q4_K's 6-bit scales and mins (5.5 bits per weight). llama.cpp's Q4_K_S mix uses it for
 * the first attn_v and ffn_down tensors. Ports of ggml's {@code quantize_row_q5_K_ref} ({@code
 * make_qkx2_quants} search), {@code quantize_row_q5_K_impl} (with importance weights, {@code
 * make_qkx3_quants} + {@code make_qp_quants}) and {@code dequantize_row_q5_K}.
 *
 * <pre>
 * typedef struct {
 *     ggml_half d;                    // bytes 0..1: super-block scale for the sub-block scales
 *     ggml_half dmin;                 // bytes 2..3: super-block scale for the sub-block mins
 *     uint8_t scales[K_SCALE_SIZE];   // bytes 4..15: 8 scales + 8 mins, 6 bits each, as in Q4_K
 *     uint8_t qh[QK_K/8];             // bytes 16..47: bit 2c of qh[l] is bit 4 of value 64c + l,
 *                                     //   bit 2c+1 is bit 4 of value 64c + 32 + l (c = 0..3)
 *     uint8_t qs[QK_K/2];             // bytes 48..175: low 4 bits, laid out as Q4_K's nibbles
 * } block_q5_K;                       // 176 bytes; value = d*scale*q - dmin*min
 * </pre>
 */
public final class BlockQ5_K {

  public static final int QK = GgmlType.QK_K;
  public static final int BLOCK_BYTES = 176;

  private BlockQ5_K() {}

  /** The reference path when {@code importance} is null, the weighted one otherwise. */
  public static void quantizeRow(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    if (importance == null) {
      quantizeRowReference(x, xOff, n, y, yOff);
    } else {
      quantizeRowWeighted(x, xOff, n, y, yOff, importance);
    }
  }

  /** {@code quantize_row_q5_K_ref}. */
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
                32, 31, x, xb + 32 * j, weights, L, 32 * j, mins, j, laux, -0.5f, 0.1f, 15, false);
        if (scales[j] > maxScale) {
          maxScale = scales[j];
        }
        if (mins[j] > maxMin) {
          maxMin = mins[j];
        }
      }
      int out = yOff + i * BLOCK_BYTES;
      java.util.Arrays.fill(y, out, out + BLOCK_BYTES, (byte) 0);
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

  /** {@code quantize_row_q5_K_impl} with non-null {@code quant_weights}. */
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
                32, 31, x, xb + 32 * j, weights, L, 32 * j, mins, j, laux, -0.9f, 0.05f, 36, false);
      }
      float dBlock = KQuantMath.makeQpQuants(QK / 32, 63, scales, ls, sw);
      float mBlock = KQuantMath.makeQpQuants(QK / 32, 63, mins, lm, sw);
      int out = yOff + i * BLOCK_BYTES;
      java.util.Arrays.fill(y, out, out + BLOCK_BYTES, (byte) 0);
      for (int j = 0; j < QK / 32; ++j) {
        packScaleMin(y, out + 4, j, Math.min(63, ls[j] & 0xff), Math.min(63, lm[j] & 0xff));
      }
      BlockBytes.putF16(y, out, dBlock);
      BlockBytes.putF16(y, out + 2, mBlock);
      requantizeAndPack(x, xb, y, out, L);
    }
  }

  /** {@code dequantize_row_q5_K}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    int[] sm = new int[2];
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      float min = BlockBytes.getF16(y, in + 2);
      int qh = in + 16;
      int ql = in + 48;
      int o = xOff + i * QK;
      int u1 = 1;
      int u2 = 2;
      for (int j = 0, is = 0; j < QK; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        BlockQ4_K.scaleMin(is, y, in + 4, sm);
        float d1 = d * sm[0];
        float m1 = min * sm[1];
        BlockQ4_K.scaleMin(is + 1, y, in + 4, sm);
        float d2 = d * sm[0];
        float m2 = min * sm[1];
        for (int l = 0; l < 32; ++l) {
          x[o++] = d1 * ((y[ql + l] & 0xF) + ((y[qh + l] & u1) != 0 ? 16 : 0)) - m1;
        }
        for (int l = 0; l < 32; ++l) {
          x[o++] = d2 * (((y[ql + l] & 0xff) >> 4) + ((y[qh + l] & u2) != 0 ? 16 : 0)) - m2;
        }
      }
    }
  }

  /** Q4_K's 6-bit scale/min packing (the same 12 bytes in both block types). */
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

  /** Recomputes the codes against the rounded scales/mins, then packs low nibbles and high bits. */
  private static void requantizeAndPack(float[] x, int xb, byte[] y, int out, byte[] L) {
    int[] sm = new int[2];
    float dAll = BlockBytes.getF16(y, out);
    float dminAll = BlockBytes.getF16(y, out + 2);
    for (int j = 0; j < QK / 32; ++j) {
      BlockQ4_K.scaleMin(j, y, out + 4, sm);
      float d = dAll * sm[0];
      if (d == 0) {
        continue;
      }
      float dm = dminAll * sm[1];
      for (int ii = 0; ii < 32; ++ii) {
        int l = nearestInt((x[xb + 32 * j + ii] + dm) / d);
        L[32 * j + ii] = (byte) Math.max(0, Math.min(31, l));
      }
    }
    int qh = out + 16;
    int ql = out + 48;
    int m1 = 1;
    int m2 = 2;
    for (int n = 0; n < QK; n += 64) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j];
        if (l1 > 15) {
          l1 -= 16;
          y[qh + j] |= (byte) m1;
        }
        int l2 = L[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          y[qh + j] |= (byte) m2;
        }
        y[ql + j] = (byte) (l1 | (l2 << 4));
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}
