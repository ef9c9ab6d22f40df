package dev.compactor.core.gguf;

/**
 * ggml's Q8_0: 8-bit symmetric quantization in blocks of 32 values. This class holds the plain
 * reference quantizer (a line-by-line port of ggml's {@code quantize_row_q8_0_ref}) and the
 * dequantizer; {@link FastRowQuantizer} has the fast version that is tested against this one.
 *
 * <pre>
 * #define QK8_0 32
 * typedef struct {
 *     ggml_half d;        // bytes 0..1: scale, fp16 little-endian
 *     int8_t  qs[QK8_0];  // bytes 2..33: quants, value j = qs[j] * d
 * } block_q8_0;           // 34 bytes
 * </pre>
 *
 * <p>Quantization: {@code d = amax / 127}; {@code qs[j] = roundf(x[j] / d)} with {@code roundf}
 * rounding halves away from zero; the fp32 {@code d} (not its fp16 rounding) is used for the
 * quants, as ggml does.
 */
public final class BlockQ8_0 {

  public static final int QK = 32;
  public static final int BLOCK_BYTES = 34;

  private BlockQ8_0() {}

  /** Quantizes {@code n} values of {@code x} from {@code xOff} into {@code y} at {@code yOff}. */
  public static void quantizeRowReference(float[] x, int xOff, int n, byte[] y, int yOff) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    int nb = n / QK;
    for (int i = 0; i < nb; i++) {
      float amax = 0.0f;
      for (int j = 0; j < QK; j++) {
        float v = x[xOff + i * QK + j];
        amax = Math.max(amax, Math.abs(v));
      }
      float d = amax / ((1 << 7) - 1);
      float id = d != 0 ? 1.0f / d : 0.0f;
      int out = yOff + i * BLOCK_BYTES;
      BlockBytes.putF16(y, out, d);
      for (int j = 0; j < QK; j++) {
        float x0 = x[xOff + i * QK + j] * id;
        y[out + 2 + j] = (byte) roundf(x0);
      }
    }
  }

  /** {@code dequantize_row_q8_0}: {@code n} values from the blocks at {@code yOff}. */
  public static void dequantizeRow(byte[] y, int yOff, float[] x, int xOff, int n) {
    BlockBytes.checkRow(n, QK, x, xOff, y, yOff, BLOCK_BYTES);
    for (int i = 0; i < n / QK; i++) {
      int in = yOff + i * BLOCK_BYTES;
      float d = BlockBytes.getF16(y, in);
      for (int j = 0; j < QK; j++) {
        x[xOff + i * QK + j] = y[in + 2 + j] * d;
      }
    }
  }

  /** C's {@code roundf}: nearest integer, halves away from zero (Java's Math.round differs). */
  static int roundf(float v) {
    double a = Math.floor(Math.abs((double) v) + 0.5);
    return (int) (v < 0 ? -a : a);
  }
}
