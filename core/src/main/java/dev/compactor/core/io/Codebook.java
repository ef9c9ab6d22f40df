package dev.compactor.core.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The {@value #QUANT_METHOD} layout of one linear {@code X} with {@code out} rows, {@code in}
 * columns and {@code bits} (2, 3 or 4) bits per weight, as stored in safetensors:
 *
 * <ul>
 *   <li>{@code X.weight_shape}: I64 {@code [2]}, {@code [out, in]} (the packed width alone does not
 *       give {@code in} at 3 bits);
 *   <li>{@code X.codebook}: F16 {@code [out, 2^bits]}, row {@code r}'s centroids (the values its
 *       weights may take), ascending;
 *   <li>{@code X.indices}: U8 {@code [out, ceil(in * bits / 8)]}, row {@code r}'s codes packed as a
 *       little-endian bit stream: code {@code j} occupies bits {@code [j*bits, (j+1)*bits)} of the
 *       row, least significant bit first, so 4-bit puts code {@code 2i} in the low nibble of byte
 *       {@code i} and 3-bit stores 8 codes in 3 bytes; unused high bits of a row's last byte are 0.
 * </ul>
 *
 * Weight {@code (r, j)} is {@code codebook[r, code(r, j)]}. {@code config.json} says {@code
 * "quantization_config": {"quant_method": "compactor-codebook", "bits": b, ...}}; only this project
 * reads it (vLLM and llama.cpp have no such format), so {@link Checkpoints#open} shows each pair as
 * a dense F16 {@code X.weight}.
 */
public final class Codebook {

  /** {@code quantization_config.quant_method} of a codebook checkpoint. */
  public static final String QUANT_METHOD = "compactor-codebook";

  /** Suffix of the centroid table. */
  public static final String CODEBOOK = ".codebook";

  /** Suffix of the packed codes. */
  public static final String INDICES = ".indices";

  /** Suffix of the dense shape. */
  public static final String SHAPE = ".weight_shape";

  private Codebook() {}

  /** Whether {@code dir}'s config.json declares {@value #QUANT_METHOD}. */
  public static boolean isCodebookCheckpoint(Path dir) throws IOException {
    Path config = dir.resolve(ModelDirectory.CONFIG);
    if (!Files.isRegularFile(config)) {
      return false;
    }
    return QUANT_METHOD.equals(
        ModelDirectory.readJsonObject(config)
            .path("quantization_config")
            .path("quant_method")
            .asText());
  }

  /**
   * Refuses to export a codebook checkpoint to {@code format}: GGUF and compressed-tensors have no
   * per-row codebooks, and re-quantizing the dequantized weights would stack a second error on the
   * first without saying so.
   *
   * @throws UnsupportedOperationException when {@code dir} is a codebook checkpoint
   */
  public static void refuseExport(Path dir, String format) throws IOException {
    if (isCodebookCheckpoint(dir)) {
      throw new UnsupportedOperationException(
          "not supported: codebook checkpoint "
              + dir
              + " exported as "
              + format
              + " (that format has no per-row codebooks; export the unquantized model instead)");
    }
  }

  /** Rejects anything but 2, 3 or 4 bits. */
  public static int checkBits(int bits) {
    if (bits < 2 || bits > 4) {
      throw new IllegalArgumentException(
          "codebook quantization stores 2, 3 or 4 bits per weight, found " + bits);
    }
    return bits;
  }

  /** Bytes one row of {@code cols} codes takes packed. */
  public static int bytesPerRow(int cols, int bits) {
    return Math.toIntExact(((long) cols * bits + 7) / 8);
  }

  /**
   * Packs {@code codes} ({@code rows x cols}, each below {@code 2^bits}) row by row as described
   * above.
   */
  public static byte[] pack(byte[] codes, int rows, int cols, int bits) {
    checkBits(bits);
    if (codes.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "expected " + rows + "x" + cols + " codes, found " + codes.length);
    }
    int stride = bytesPerRow(cols, bits);
    byte[] out = new byte[Math.multiplyExact(rows, stride)];
    int limit = 1 << bits;
    for (int r = 0; r < rows; r++) {
      int base = r * stride;
      for (int j = 0; j < cols; j++) {
        int c = codes[r * cols + j] & 0xff;
        if (c >= limit) {
          throw new IllegalArgumentException(
              "code " + c + " at (" + r + ", " + j + ") does not fit in " + bits + " bits");
        }
        int bit = j * bits;
        int v = c << (bit & 7);
        out[base + (bit >> 3)] |= (byte) v;
        if ((bit & 7) + bits > 8) {
          out[base + (bit >> 3) + 1] |= (byte) (v >> 8);
        }
      }
    }
    return out;
  }

  /** The inverse of {@link #pack}. */
  public static byte[] unpack(byte[] packed, int rows, int cols, int bits) {
    checkBits(bits);
    int stride = bytesPerRow(cols, bits);
    if (packed.length != (long) rows * stride) {
      throw new IllegalArgumentException(
          "expected " + rows + "x" + stride + " packed bytes, found " + packed.length);
    }
    byte[] codes = new byte[rows * cols];
    int mask = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
      int base = r * stride;
      for (int j = 0; j < cols; j++) {
        int bit = j * bits;
        int at = base + (bit >> 3);
        int v = packed[at] & 0xff;
        if ((bit & 7) + bits > 8) {
          v |= (packed[at + 1] & 0xff) << 8;
        }
        codes[r * cols + j] = (byte) ((v >> (bit & 7)) & mask);
      }
    }
    return codes;
  }

  /** Weight {@code (r, j)} = {@code codebook[r * 2^bits + codes[r * cols + j]]}. */
  public static float[] dequantize(float[] codebook, byte[] codes, int rows, int cols, int bits) {
    int k = 1 << bits;
    if (codebook.length != (long) rows * k || codes.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "expected a "
              + rows
              + "x"
              + k
              + " codebook and "
              + rows
              + "x"
              + cols
              + " codes, found "
              + codebook.length
              + " centroids and "
              + codes.length
              + " codes");
    }
    float[] w = new float[codes.length];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) {
        w[r * cols + j] = codebook[r * k + (codes[r * cols + j] & 0xff)];
      }
    }
    return w;
  }

  /** Checks that {@code info} has {@code dtype} and {@code shape}, naming both when not. */
  static void expect(TensorInfo info, DType dtype, long[] shape) throws CheckpointFormatException {
    if (info.dtype() != dtype || !Arrays.equals(info.shape(), shape)) {
      throw new CheckpointFormatException(
          info.name()
              + ": expected "
              + dtype
              + Arrays.toString(shape)
              + ", found "
              + info.dtype()
              + Arrays.toString(info.shape()));
    }
  }
}
