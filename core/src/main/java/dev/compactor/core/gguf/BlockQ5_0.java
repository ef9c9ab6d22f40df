package dev.compactor.core.gguf;

/**
 * ggml's Q5_0: 5-bit symmetric quantization in blocks of 32 values with one fp16 scale, the type
 * llama.cpp falls back to when a Q4_K tensor's rows are not a multiple of 256. A port of ggml's
 * {@code quantize_row_q5_0_ref} and {@code dequantize_row_q5_0}.
 *
 * <pre>
 * #define QK5_0 32
 * typedef struct {
 *     ggml_half d;            // bytes 0..1: scale, fp16 little-endian
 *     uint8_t qh[4];          // bytes 2..5: bit j of this little-endian uint32 is bit 4 of value j
 *     uint8_t qs[QK5_0 / 2];  // bytes 6..21: low nibble of qs[j] = low 4 bits of value j,
 * } block_q5_0;               //   high nibble = low 4 bits of value j + 16; value = (q - 16) * d
 *                             // 22 bytes
 * </pre>
 *
 * <p>Quantization: {@code max} is the signed value of largest magnitude (the first one, as C's
 * strict {@code <} scan keeps), {@code d = max / -16} so that value maps to code 0, and {@code q =
 * min(31, (int8)(x / d + 16.5))} with truncation; product and add are two fp32 operations, as in
 * {@link BlockQ4_0}.
 */
public final class BlockQ5_0 {

  public static final int QK = 32;
  public static final int BLOCK_BYTES = 22;

  private BlockQ5_0() {}

  /** Quantizes {@code n} values of {@code x} from {@code xOff} into {@code y} at {@code yOff}. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int b = xOff + i * QK;
      float d = BlockBytes.firstLargestMagnitude(x, b, QK) / -16;
      float id = d != 0 ? 1.0f / d : 0.0f;
      int out = yOff + i * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      int qh = 0;
      for (int j = 0; j < QK / 2; j++) {
        float x0 = x[b + j] * id;
        float x1 = x[b + QK / 2 + j] * id;
        int xi0 = Math.min(31, (byte) (int) (x0 + 16.5f));
        int xi1 = Math.min(31, (byte) (int) (x1 + 16.5f));
        y[out + 6 + j] = (byte) ((xi0 & 0x0f) | ((xi1 & 0x0f) << 4));
        qh |= ((xi0 & 0x10) >>> 4) << j;
        qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
      }
      y[out + 2] = (byte) qh;
      y[out + 3] = (byte) (qh >>> 8);
      y[out + 4] = (byte) (qh >>> 16);
      y[out + 5] = (byte) (qh >>> 24);
    }
  }

  /** {@code dequantize_row_q5_0}: {@code n} values from the blocks at {@code yOff}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      int qh =
          (y[in + 2] & 0xff)
              | (y[in + 3] & 0xff) << 8
              | (y[in + 4] & 0xff) << 16
              | (y[in + 5] & 0xff) << 24;
      for (int j = 0; j < QK / 2; j++) {
        int q = y[in + 6 + j] & 0xff;
        int hi0 = ((qh >>> j) << 4) & 0x10;
        int hi1 = (qh >>> (j + 12)) & 0x10;
        x[xOff + i * QK + j] = ((q & 0x0f | hi0) - 16) * d;
        x[xOff + i * QK + QK / 2 + j] = ((q >>> 4 | hi1) - 16) * d;
      }
    }
  }
}
