package dev.compactor.core.quant.export;

import dev.compactor.core.quant.QuantizedTensor;
import java.util.Objects;

/**
 * One linear layer's weight quantized to a uniform integer grid, in the shape every exporter needs:
 * codes in the original column order, one scale (and, asymmetric, one zero point) per output row
 * and group, and an optional {@code gIdx} mapping each input column to its group (GPTQ with
 * activation order, compressed-tensors' {@code actorder: group}).
 *
 * <p>Codes and zero points are unsigned, offset by {@code 2^(bits-1)} from the signed grid {@code
 * [-2^(bits-1), 2^(bits-1) - 1]} (the convention of {@link QuantizedTensor} and of
 * compressed-tensors' packer): element value = {@code (code - zero) * scale}, with {@code zero =
 * 2^(bits-1)} when symmetric. Arrays are owned by the record and not copied.
 *
 * @param rows output features
 * @param cols input features
 * @param bits 4 or 8; 2 or 3 only for evaluation and QAT (every exporter refuses them)
 * @param symmetric true when there are no zero points
 * @param groupSize columns per group; {@code cols} for one scale per output channel
 * @param codes {@code rows * cols} unsigned codes, row-major
 * @param scales {@code rows * (cols / groupSize)} scales, row-major
 * @param zeros unsigned zero points like {@code scales}, or null when symmetric
 * @param gIdx group of every input column, or null when column {@code c} is in group {@code c /
 *     groupSize}
 */
public record QuantizedLinear(
    int rows,
    int cols,
    int bits,
    boolean symmetric,
    int groupSize,
    byte[] codes,
    float[] scales,
    byte[] zeros,
    int[] gIdx) {

  public QuantizedLinear {
    Objects.requireNonNull(codes, "codes");
    Objects.requireNonNull(scales, "scales");
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      throw new IllegalArgumentException("bits must be 2, 3, 4 or 8, found " + bits);
    }
    if (groupSize <= 0 || cols % groupSize != 0) {
      throw new IllegalArgumentException(
          "group size must divide the " + cols + " columns, found " + groupSize);
    }
    if (codes.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "expected " + (long) rows * cols + " codes, found " + codes.length);
    }
    int groups = rows * (cols / groupSize);
    if (scales.length != groups) {
      throw new IllegalArgumentException("expected " + groups + " scales, found " + scales.length);
    }
    if (symmetric != (zeros == null)) {
      throw new IllegalArgumentException("zero points must be given exactly when asymmetric");
    }
    if (zeros != null && zeros.length != groups) {
      throw new IllegalArgumentException(
          "expected " + groups + " zero points, found " + zeros.length);
    }
    if (gIdx != null) {
      if (gIdx.length != cols) {
        throw new IllegalArgumentException(
            "expected " + cols + " g_idx entries, found " + gIdx.length);
      }
      for (int g : gIdx) {
        if (g < 0 || g >= cols / groupSize) {
          throw new IllegalArgumentException("g_idx entry " + g + " is not a group index");
        }
      }
    }
  }

  /** Groups per row. */
  public int groups() {
    return cols / groupSize;
  }

  /** True when one scale covers a whole row. */
  public boolean perChannel() {
    return groupSize == cols;
  }

  /** Group of input column {@code col}. */
  public int group(int col) {
    return gIdx == null ? col / groupSize : gIdx[col];
  }

  /** The unsigned code of ({@code row}, {@code col}). */
  public int code(int row, int col) {
    return codes[row * cols + col] & 0xff;
  }

  /** The unsigned zero point of ({@code row}, group {@code g}). */
  public int zero(int row, int g) {
    return zeros == null ? 1 << (bits - 1) : zeros[row * groups() + g] & 0xff;
  }

  /** The weight these codes stand for, row-major {@code rows x cols}. */
  public float[] dequantize() {
    float[] out = new float[rows * cols];
    int groups = groups();
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        int g = group(c);
        out[r * cols + c] = (code(r, c) - zero(r, g)) * scales[r * groups + g];
      }
    }
    return out;
  }

  /** Takes an integer {@link QuantizedTensor} (per channel or per group) from RTN or AWQ. */
  public static QuantizedLinear of(QuantizedTensor t) {
    if (t.format() != QuantizedTensor.Format.INT) {
      throw new IllegalArgumentException("expected an INT quantized tensor, found " + t.format());
    }
    if (t.granularity() == QuantizedTensor.Granularity.TENSOR) {
      throw new UnsupportedOperationException("not supported yet: per-tensor integer weights");
    }
    byte[] codes = new byte[t.rows() * t.cols()];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) t.code(i);
    }
    return new QuantizedLinear(
        t.rows(),
        t.cols(),
        t.bits(),
        !t.asymmetric(),
        t.groupSize(),
        codes,
        t.scales(),
        t.zeroPoints(),
        null);
  }
}
