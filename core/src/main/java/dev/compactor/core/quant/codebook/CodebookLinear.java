package dev.compactor.core.quant.codebook;

import dev.compactor.core.io.Codebook;

/**
 * One linear quantized to a per-row codebook: {@code rows x 2^bits} F16-exact centroids and one
 * {@code bits}-bit code per weight (layout on disk in {@link Codebook}).
 *
 * @param codebook row-major {@code rows x 2^bits}, each row ascending, every value exact in F16
 * @param codes row-major {@code rows x cols}, each below {@code 2^bits}
 * @param converged rows whose k-means stopped before the iteration cap
 */
public record CodebookLinear(
    int rows, int cols, int bits, float[] codebook, byte[] codes, int converged) {

  public CodebookLinear {
    Codebook.checkBits(bits);
    if (codebook.length != (long) rows << bits || codes.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "a "
              + rows
              + "x"
              + cols
              + " "
              + bits
              + "-bit codebook linear needs "
              + ((long) rows << bits)
              + " centroids and "
              + ((long) rows * cols)
              + " codes, found "
              + codebook.length
              + " and "
              + codes.length);
    }
  }

  /** The weights the quantized linear computes with. */
  public float[] dequantize() {
    return Codebook.dequantize(codebook, codes, rows, cols, bits);
  }

  /** Bytes as stored: packed codes, F16 codebook and the I64 shape. */
  public long storedBytes() {
    return (long) rows * Codebook.bytesPerRow(cols, bits) + 2L * codebook.length + 16;
  }
}
