package dev.compactor.core.gguf;

/**
 * ggml's Q4_0: 4-bit symmetric quantization in blocks of 32 values with one fp16 scale. Holds the
 * plain reference quantizer (a port of ggml's {@code quantize_row_q4_0_ref}) and the dequantizer;
 * {@link FastRowQuantizer} has the fast version tested against this one.
 *
 * <pre>
 * #define QK4_0 32
 * typedef struct {
 *     ggml_half d;            // bytes 0..1: scale, fp16 little-endian
 *     uint8_t qs[QK4_0 / 2];  // bytes 2..17: nibbles; low nibble of qs[j] = value j,
 * } block_q4_0;               //   high nibble of qs[j] = value j + 16; value = (q - 8) * d
 *                             // 18 bytes
 * </pre>
 *
 * <p>Quantization: {@code max} is the signed value of largest magnitude, {@code d = max / -8} (so
 * that value maps to code 0, i.e. -8), {@code q = min(15, (int8)(x / d + 8.5))} with truncation.
 * The product and the add are two fp32 operations here; a C build that contracts them into one FMA
 * can differ in the last bit for inputs right on a rounding boundary (gguf-py notes the same).
 */
public final class BlockQ4_0 {

  public static final int QK = 32;
  public static final int BLOCK_BYTES = 18;

  private BlockQ4_0() {}

  /** Quantizes {@code n} values of {@code x} from {@code xOff} into {@code y} at {@code yOff}. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    int nb = n / QK;
    for (int i = 0; i < nb; i++) {
      float d = BlockBytes.firstLargestMagnitude(x, xOff + i * QK, QK) / -8;
      float id = d != 0 ? 1.0f / d : 0.0f;
      int out = yOff + i * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      for (int j = 0; j < QK / 2; j++) {
        float x0 = x[xOff + i * QK + j] * id;
        float x1 = x[xOff + i * QK + QK / 2 + j] * id;
        int xi0 = Math.min(15, (byte) (int) (x0 + 8.5f));
        int xi1 = Math.min(15, (byte) (int) (x1 + 8.5f));
        y[out + 2 + j] = (byte) (xi0 | (xi1 << 4));
      }
    }
  }

  /** {@code dequantize_row_q4_0}: {@code n} values from the blocks at {@code yOff}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      for (int j = 0; j < QK / 2; j++) {
        int q = y[in + 2 + j] & 0xff;
        x[xOff + i * QK + j] = ((q & 0x0f) - 8) * d;
        x[xOff + i * QK + QK / 2 + j] = ((q >> 4) - 8) * d;
      }
    }
  }
}
