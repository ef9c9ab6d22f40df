package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.KQuantMath.nearestInt;

/**
 * ggml's Q6_K: 6-bit symmetric quantization in super-blocks of 256 values made of 16 sub-blocks of
 * 16, each with an int8 scale multiplied by the fp16 {@code d} (6.5625 bits per weight). Ports of
 * ggml's {@code quantize_row_q6_K_ref} ({@code make_qx_quants} per sub-block), {@code
 * quantize_row_q6_K_impl} (the same search weighted by importance) and {@code dequantize_row_q6_K}.
 *
 * <pre>
 * typedef struct {
 *     uint8_t ql[QK_K/2];      // bytes 0..127: low 4 bits of the codes
 *     uint8_t qh[QK_K/4];      // bytes 128..191: high 2 bits of the codes
 *     int8_t  scales[QK_K/16]; // bytes 192..207: sub-block scales
 *     ggml_half d;             // bytes 208..209: super-block scale
 * } block_q6_K;                // 210 bytes
 * For half h = 0,1 (values 128h..128h+127), l = 0..31, with ql' = ql + 64h, qh' = qh + 32h:
 *   value 128h + l      : low = ql'[l]    &amp; 0xF, high = qh'[l] bits 0-1
 *   value 128h + l + 32 : low = ql'[l+32] &amp; 0xF, high = qh'[l] bits 2-3
 *   value 128h + l + 64 : low = ql'[l]    &gt;&gt; 4,  high = qh'[l] bits 4-5
 *   value 128h + l + 96 : low = ql'[l+32] &gt;&gt; 4,  high = qh'[l] bits 6-7
 *   value = d * scales[value / 16] * ((low | high &lt;&lt; 4) - 32)
 * </pre>
 */
public final class BlockQ6_K {

  public static final int QK = GgmlType.QK_K;
  public static final int BLOCK_BYTES = 210;

  private BlockQ6_K() {}

  /** The reference path when {@code importance} is null, the weighted one otherwise. */
  public static void quantizeRow(
      float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    if (importance != null && importance.length < n) {
      throw new IllegalArgumentException(
          "importance has " + importance.length + " entries for a row of " + n);
    }
    byte[] L = new byte[QK];
    float[] scales = new float[QK / 16];
    for (int i = 0; i < n / QK; i++) {
      int xb = xOff + i * QK;
      int out = yOff + i * BLOCK_BYTES;
      float maxScale = 0;
      float maxAbsScale = 0;
      for (int ib = 0; ib < QK / 16; ++ib) {
        float scale =
            KQuantMath.makeQxQuants(
                16, 32, x, xb + 16 * ib, L, 16 * ib, importance, QK * i + 16 * ib);
        scales[ib] = scale;
        float absScale = Math.abs(scale);
        if (absScale > maxAbsScale) {
          maxAbsScale = absScale;
          maxScale = scale;
        }
      }
      if (maxAbsScale < KQuantMath.GROUP_MAX_EPS) {
        java.util.Arrays.fill(y, out, out + BLOCK_BYTES, (byte) 0);
        continue;
      }
      float iscale = -128.f / maxScale;
      BlockBytes.putF16(y, out + 208, 1 / iscale);
      for (int ib = 0; ib < QK / 16; ++ib) {
        y[out + 192 + ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
      }
      float dAll = BlockBytes.getF16(y, out + 208);
      for (int j = 0; j < QK / 16; ++j) {
        float d = dAll * y[out + 192 + j];
        if (d == 0) {
          continue;
        }
        for (int ii = 0; ii < 16; ++ii) {
          int l = nearestInt(x[xb + 16 * j + ii] / d);
          l = Math.max(-32, Math.min(31, l));
          L[16 * j + ii] = (byte) (l + 32);
        }
      }
      int ql = out;
      int qh = out + 128;
      for (int j = 0; j < QK; j += 128) {
        for (int l = 0; l < 32; ++l) {
          int q1 = L[j + l] & 0xF;
          int q2 = L[j + l + 32] & 0xF;
          int q3 = L[j + l + 64] & 0xF;
          int q4 = L[j + l + 96] & 0xF;
          y[ql + l] = (byte) (q1 | (q3 << 4));
          y[ql + l + 32] = (byte) (q2 | (q4 << 4));
          y[qh + l] =
              (byte)
                  ((L[j + l] >> 4)
                      | ((L[j + l + 32] >> 4) << 2)
                      | ((L[j + l + 64] >> 4) << 4)
                      | ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
      }
    }
  }

  /** {@code quantize_row_q6_K_ref}. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    quantizeRow(x, xOff, n, y, yOff, null);
  }

  /** {@code dequantize_row_q6_K}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in + 208);
      int ql = in;
      int qh = in + 128;
      int sc = in + 192;
      int o = xOff + i * QK;
      for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; ++l) {
          int is = l / 16;
          int h = y[qh + l] & 0xff;
          int q1 = ((y[ql + l] & 0xF) | (((h >> 0) & 3) << 4)) - 32;
          int q2 = ((y[ql + l + 32] & 0xF) | (((h >> 2) & 3) << 4)) - 32;
          int q3 = (((y[ql + l] & 0xff) >> 4) | (((h >> 4) & 3) << 4)) - 32;
          int q4 = (((y[ql + l + 32] & 0xff) >> 4) | (((h >> 6) & 3) << 4)) - 32;
          x[o + l] = d * y[sc + is] * q1;
          x[o + l + 32] = d * y[sc + is + 2] * q2;
          x[o + l + 64] = d * y[sc + is + 4] * q3;
          x[o + l + 96] = d * y[sc + is + 6] * q4;
        }
        o += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
    }
  }
}
