package dev.compactor.core.quant.export;

/**
 * compressed-tensors' {@code pack_to_int32} / {@code unpack_from_int32}
 * (src/compressed_tensors/compressors/quantized_compressors/pack_quantized.py): {@code 32 / bits}
 * unsigned (offset-binary) codes per int32, the first code in the lowest bits ({@code value |=
 * code_k << (bits * k)}), rows padded with zero codes to a whole number of int32s. {@code
 * packed_dim=1} packs along a row (weights: {@code [rows, ceil(cols / f)]}); {@code packed_dim=0}
 * packs down a column (asymmetric zero points: {@code [ceil(rows / f), cols]}).
 */
public final class Int32Packing {

  private Int32Packing() {}

  /** Codes per int32. */
  public static int factor(int bits) {
    if (bits != 4 && bits != 8) {
      throw new IllegalArgumentException("packing supports 4 and 8 bits, found " + bits);
    }
    return 32 / bits;
  }

  /** Packs unsigned {@code codes} [rows, cols] along each row (packed_dim=1). */
  public static int[] packRows(byte[] codes, int rows, int cols, int bits) {
    int f = factor(bits);
    int width = (cols + f - 1) / f;
    int[] out = new int[rows * width];
    int mask = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[r * width + c / f] |= (codes[r * cols + c] & mask) << (bits * (c % f));
      }
    }
    return out;
  }

  /** Inverse of {@link #packRows}. */
  public static byte[] unpackRows(int[] packed, int rows, int cols, int bits) {
    int f = factor(bits);
    int width = (cols + f - 1) / f;
    if (packed.length != rows * width) {
      throw new IllegalArgumentException(
          "expected "
              + rows * width
              + " int32 for ["
              + rows
              + ", "
              + cols
              + "], found "
              + packed.length);
    }
    byte[] out = new byte[rows * cols];
    int mask = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[r * cols + c] = (byte) ((packed[r * width + c / f] >>> (bits * (c % f))) & mask);
      }
    }
    return out;
  }

  /** Packs unsigned {@code codes} [rows, cols] down each column (packed_dim=0). */
  public static int[] packColumns(byte[] codes, int rows, int cols, int bits) {
    int f = factor(bits);
    int height = (rows + f - 1) / f;
    int[] out = new int[height * cols];
    int mask = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[(r / f) * cols + c] |= (codes[r * cols + c] & mask) << (bits * (r % f));
      }
    }
    return out;
  }

  /** Inverse of {@link #packColumns}. */
  public static byte[] unpackColumns(int[] packed, int rows, int cols, int bits) {
    int f = factor(bits);
    int height = (rows + f - 1) / f;
    if (packed.length != height * cols) {
      throw new IllegalArgumentException(
          "expected "
              + height * cols
              + " int32 for ["
              + rows
              + ", "
              + cols
              + "], found "
              + packed.length);
    }
    byte[] out = new byte[rows * cols];
    int mask = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[r * cols + c] = (byte) ((packed[(r / f) * cols + c] >>> (bits * (r % f))) & mask);
      }
    }
    return out;
  }
}
