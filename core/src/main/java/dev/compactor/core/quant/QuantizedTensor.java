package dev.compactor.core.quant;

import java.util.Objects;

/**
 * A quantized 2-D weight ({@code rows} output channels x {@code cols} inputs, row-major) as packed
 * codes plus scales (and zero points for asymmetric integer codes), ready for an exporter such as
 * compressed-tensors.
 *
 * <p>Codes are unsigned: signed integer codes are stored with an offset of {@code 2^(bits-1)} (what
 * compressed-tensors' packer does), so code {@code c} means {@code c - 2^(bits-1)} when symmetric
 * and {@code c - zeroPoint} when asymmetric. 4-bit codes are packed two per byte, element {@code
 * 2i} in the low nibble (the bit order of compressed-tensors' int32 packing viewed as little-endian
 * bytes); 8-bit codes take one byte each. 2- and 3-bit codes (evaluation of the dequantized weights
 * only: no exporter writes them) are held in nibbles like 4-bit ones. Scale {@code s} covers the
 * {@code groupSize} consecutive elements of one row (per channel: {@code groupSize == cols}; per
 * tensor: one scale for all). The arrays are owned by the record and not copied.
 */
public record QuantizedTensor(
    Format format,
    int rows,
    int cols,
    int bits,
    Granularity granularity,
    int groupSize,
    byte[] packedCodes,
    float[] scales,
    byte[] zeroPoints) {

  /** How codes map to values. */
  public enum Format {
    /** Uniform integer grid: {@code (code - zero) * scale}. */
    INT,
    /** QLoRA's NormalFloat4 code book times the block's absmax. */
    NF4,
    /** OCP FP8 E4M3FN codes times the scale. */
    FP8_E4M3
  }

  /** Which elements share one scale. */
  public enum Granularity {
    TENSOR,
    CHANNEL,
    GROUP
  }

  public QuantizedTensor {
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(granularity, "granularity");
    Objects.requireNonNull(packedCodes, "packedCodes");
    Objects.requireNonNull(scales, "scales");
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      throw new IllegalArgumentException("bits must be 2, 3, 4 or 8, found " + bits);
    }
    long n = (long) rows * cols;
    if (packedCodes.length != (bits <= 4 ? (n + 1) / 2 : n)) {
      throw new IllegalArgumentException(
          "expected " + (bits <= 4 ? (n + 1) / 2 : n) + " code bytes, found " + packedCodes.length);
    }
    long groups = granularity == Granularity.TENSOR ? 1 : (long) rows * (cols / groupSize);
    if (cols % groupSize != 0 && granularity != Granularity.TENSOR) {
      throw new IllegalArgumentException("cols " + cols + " not a multiple of group " + groupSize);
    }
    if (scales.length != groups) {
      throw new IllegalArgumentException("expected " + groups + " scales, found " + scales.length);
    }
    if (zeroPoints != null && zeroPoints.length != groups) {
      throw new IllegalArgumentException(
          "expected " + groups + " zero points, found " + zeroPoints.length);
    }
  }

  /** True when integer codes carry zero points. */
  public boolean asymmetric() {
    return zeroPoints != null;
  }

  /** The unsigned code of element {@code i} (row-major index). */
  public int code(long i) {
    if (bits == 8) {
      return packedCodes[(int) i] & 0xff;
    }
    int b = packedCodes[(int) (i >> 1)] & 0xff;
    return (i & 1) == 0 ? b & 0x0f : b >>> 4;
  }

  /** Index into {@link #scales()} of element ({@code row}, {@code col}). */
  public int scaleIndex(int row, int col) {
    return granularity == Granularity.TENSOR ? 0 : row * (cols / groupSize) + col / groupSize;
  }

  /** The values these codes stand for, row-major. */
  public float[] dequantize() {
    float[] out = new float[rows * cols];
    int half = 1 << (bits - 1);
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        int i = r * cols + c;
        int s = scaleIndex(r, c);
        int code = code(i);
        out[i] =
            switch (format) {
              case INT -> (code - (zeroPoints != null ? zeroPoints[s] & 0xff : half)) * scales[s];
              case NF4 -> Nf4.CODE_BOOK[code] * scales[s];
              case FP8_E4M3 -> Fp8E4M3.decode((byte) code) * scales[s];
            };
      }
    }
    return out;
  }

  static byte[] pack(int[] codes, int bits) {
    if (bits == 8) {
      byte[] b = new byte[codes.length];
      for (int i = 0; i < codes.length; i++) {
        b[i] = (byte) codes[i];
      }
      return b;
    }
    byte[] b = new byte[(codes.length + 1) / 2];
    for (int i = 0; i < codes.length; i++) {
      b[i >> 1] |= (byte) ((codes[i] & 0x0f) << ((i & 1) * 4));
    }
    return b;
  }
}
