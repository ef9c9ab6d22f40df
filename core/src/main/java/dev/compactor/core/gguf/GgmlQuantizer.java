package dev.compactor.core.gguf;

/**
 * One entry point to turn fp32 rows into the bytes of any {@link GgmlType} and back, as ggml's
 * {@code ggml_quantize_chunk} / {@code to_float} do. Q8_0 and Q4_0 go through the fast quantizers;
 * Q4_1, Q5_1, Q4_K, Q5_K and Q6_K through the reference ports, which take an optional per-column
 * importance (the imatrix; Q4_1/Q5_1 use it per whole row, as ggml does). F32 and F16 are stored
 * little-endian.
 */
public final class GgmlQuantizer {

  private GgmlQuantizer() {}

  /**
   * Writes {@code n} values of {@code x} (from {@code xOff}) as {@code type} into {@code y} at
   * {@code yOff}. {@code importance} (nullable) is indexed by position in the row and is used by
   * the k-quants only, as in llama.cpp.
   */
  public static void quantizeRow(
      GgmlType type, float[] x, int xOff, int n, byte[] y, int yOff, float[] importance) {
    switch (type) {
      case F32 -> {
        BlockBytes.checkRow(n, 1, x, xOff, y, yOff, 4);
        for (int i = 0; i < n; i++) {
          int b = Float.floatToRawIntBits(x[xOff + i]);
          int o = yOff + 4 * i;
          y[o] = (byte) b;
          y[o + 1] = (byte) (b >> 8);
          y[o + 2] = (byte) (b >> 16);
          y[o + 3] = (byte) (b >> 24);
        }
      }
      case F16 -> {
        BlockBytes.checkRow(n, 1, x, xOff, y, yOff, 2);
        for (int i = 0; i < n; i++) {
          BlockBytes.putF16(y, yOff + 2 * i, x[xOff + i]);
        }
      }
      case Q8_0 -> FastRowQuantizer.quantizeRowQ8_0(x, xOff, n, y, yOff);
      case Q4_0 -> FastRowQuantizer.quantizeRowQ4_0(x, xOff, n, y, yOff);
      case Q5_0 -> BlockQ5_0.quantizeRowReference(x, xOff, n, y, yOff);
      case Q4_1 -> BlockQ4_1.quantizeRow(x, xOff, n, y, yOff, importance);
      case Q5_1 -> BlockQ5_1.quantizeRow(x, xOff, n, y, yOff, importance);
      case Q4_K -> BlockQ4_K.quantizeRow(x, xOff, n, y, yOff, importance);
      case Q5_K -> BlockQ5_K.quantizeRow(x, xOff, n, y, yOff, importance);
      case Q6_K -> BlockQ6_K.quantizeRow(x, xOff, n, y, yOff, importance);
    }
  }

  /** Decodes {@code n} values of {@code type} from {@code y} at {@code yOff} into {@code x}. */
  public static void dequantizeRow(GgmlType type, byte[] y, int yOff, float[] x, int xOff, int n) {
    switch (type) {
      case F32 -> {
        BlockBytes.checkRow(n, 1, x, xOff, y, yOff, 4);
        for (int i = 0; i < n; i++) {
          int o = yOff + 4 * i;
          int b =
              (y[o] & 0xff) | (y[o + 1] & 0xff) << 8 | (y[o + 2] & 0xff) << 16 | (y[o + 3] << 24);
          x[xOff + i] = Float.intBitsToFloat(b);
        }
      }
      case F16 -> {
        BlockBytes.checkRow(n, 1, x, xOff, y, yOff, 2);
        for (int i = 0; i < n; i++) {
          x[xOff + i] = BlockBytes.getF16(y, yOff + 2 * i);
        }
      }
      case Q8_0 -> BlockQ8_0.dequantizeRow(y, yOff, x, xOff, n);
      case Q4_0 -> BlockQ4_0.dequantizeRow(y, yOff, x, xOff, n);
      case Q5_0 -> BlockQ5_0.dequantizeRow(y, yOff, x, xOff, n);
      case Q4_1 -> BlockQ4_1.dequantizeRow(y, yOff, x, xOff, n);
      case Q5_1 -> BlockQ5_1.dequantizeRow(y, yOff, x, xOff, n);
      case Q4_K -> BlockQ4_K.dequantizeRow(y, yOff, x, xOff, n);
      case Q5_K -> BlockQ5_K.dequantizeRow(y, yOff, x, xOff, n);
      case Q6_K -> BlockQ6_K.dequantizeRow(y, yOff, x, xOff, n);
    }
  }

  /** A whole row-major {@code rows x cols} matrix, single-threaded. */
  public static byte[] quantize(GgmlType type, float[] x, int rows, int cols, float[] importance) {
    if (importance != null && importance.length != cols) {
      throw new IllegalArgumentException(
          "importance must have one entry per column: expected "
              + cols
              + ", found "
              + importance.length);
    }
    return FastRowQuantizer.quantizeMatrix(type, x, rows, cols, importance, 1);
  }

  /** Decodes {@code count} values (a multiple of the block size) of {@code type}. */
  public static float[] dequantize(GgmlType type, byte[] y, int count) {
    float[] x = new float[count];
    dequantizeRow(type, y, 0, x, 0, count);
    return x;
  }
}
