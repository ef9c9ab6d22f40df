package dev.compactor.core.infer;

import dev.compactor.core.gguf.GgmlQuantizer;
import dev.compactor.core.gguf.GgmlType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A weight matrix {@code [rows, cols]} kept in its GGUF encoding: one heap array per tensor (a
 * {@code byte[]} of blocks, or a {@code float[]} for F32, which is what the file stores), so a
 * tensor may be up to 2 GiB and a model larger than that is simply many arrays. Nothing is
 * dequantized into a second copy; {@link #dot} decodes each block inside the kernel.
 *
 * <p>Types: F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Others are refused with "not
 * supported yet: ggml type X".
 */
public final class QuantMatrix {

  private final String name;
  private final GgmlType type;
  private final int rows;
  private final int cols;
  private final int rowBytes;
  private final byte[] blocks;
  private final float[] floats;

  private QuantMatrix(String name, GgmlType type, int rows, int cols, byte[] data) {
    this.name = name;
    this.type = type;
    this.rows = rows;
    this.cols = cols;
    this.rowBytes = Math.toIntExact(type.bytesFor(cols));
    long expected = (long) rowBytes * rows;
    if (data.length != expected) {
      throw new IllegalArgumentException(
          name
              + ": expected "
              + expected
              + " bytes for "
              + rows
              + "x"
              + cols
              + " "
              + type
              + ", found "
              + data.length);
    }
    if (type == GgmlType.F32) {
      floats = new float[Math.multiplyExact(rows, cols)];
      ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(floats);
      blocks = null;
    } else {
      floats = null;
      blocks = data;
    }
  }

  /**
   * Wraps the stored bytes of a {@code [rows, cols]} tensor; F32 bytes are read into a {@code
   * float[]} (the Vector API of JDK 17..25 loads fp32 lanes portably only from float arrays).
   */
  public static QuantMatrix of(String name, GgmlType type, int rows, int cols, byte[] data) {
    switch (type) {
      case F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K -> {}
      default ->
          throw new UnsupportedOperationException(
              "not supported yet: ggml type " + type + " (tensor " + name + ")");
    }
    return new QuantMatrix(name, type, rows, cols, data);
  }

  public String name() {
    return name;
  }

  public GgmlType type() {
    return type;
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  /** Bytes of the stored encoding, i.e. what one full matrix-vector product reads. */
  public long storedBytes() {
    return (long) rowBytes * rows;
  }

  /** Row {@code r} dotted with {@code x[0..cols)}. */
  public float dot(int r, float[] x) {
    return switch (type) {
      case F32 -> QuantKernels.dotF32(floats, r * cols, x, cols);
      case F16 -> QuantKernels.dotF16(blocks, r * rowBytes, x, cols);
      case Q8_0 -> QuantKernels.dotQ8_0(blocks, r * rowBytes, x, cols);
      case Q4_0 -> QuantKernels.dotQ4_0(blocks, r * rowBytes, x, cols);
      case Q4_1 -> QuantKernels.dotQ4_1(blocks, r * rowBytes, x, cols);
      case Q5_0 -> QuantKernels.dotQ5_0(blocks, r * rowBytes, x, cols);
      case Q5_1 -> QuantKernels.dotQ5_1(blocks, r * rowBytes, x, cols);
      case Q4_K -> QuantKernels.dotQ4_K(blocks, r * rowBytes, x, cols);
      case Q5_K -> QuantKernels.dotQ5_K(blocks, r * rowBytes, x, cols);
      case Q6_K -> QuantKernels.dotQ6_K(blocks, r * rowBytes, x, cols);
      default -> throw new IllegalStateException(type.toString());
    };
  }

  /** {@code out[r] = row r . x} for {@code r} in {@code [from, to)}. */
  public void dotRows(float[] x, float[] out, int from, int to) {
    int r = from;
    // two Q4_0 rows per pass over x share the x loads (decode 78 -> 104 tok/s on JDK 17 in
    // QuantDecodeBench); the same pairing for Q8_0 measured 0.55x of one row at a time
    if (type == GgmlType.Q4_0) {
      for (; r + 1 < to; r += 2) {
        QuantKernels.dotQ4_0x2(blocks, r * rowBytes, (r + 1) * rowBytes, x, cols, out, r);
      }
    }
    for (; r < to; r++) {
      out[r] = dot(r, x);
    }
  }

  /** Weight rows decoded together by {@link #matmul}: one tile of the matrix-matrix product. */
  private static final int TILE_ROWS = 4;

  /**
   * The matrix-matrix product for a block of {@code tokens} activation rows: {@code out[t * rows +
   * r] = row r . x[t * cols .. (t + 1) * cols)} for {@code r} in {@code [from, to)} and every
   * {@code t < tokens}. Each tile of {@value #TILE_ROWS} weight rows is decoded once ({@link
   * QuantKernels#dequantizeRow}) into fp32 scratch (F32 rows are used in place) and then dotted
   * with all the activation rows, two at a time ({@link QuantKernels#dotF32x4x2}), so the cost of
   * decoding is shared by the block and the inner loop is an fp32 matrix kernel. Results equal
   * {@link #dot} up to fp32 rounding (the sum is over {@code dequantized weight * x} instead of
   * {@code scale * sum(code * x)}).
   */
  public void matmul(float[] x, int tokens, float[] out, int from, int to) {
    float[] scratch = type == GgmlType.F32 ? null : new float[TILE_ROWS * cols];
    for (int r = from; r < to; r += TILE_ROWS) {
      int nr = Math.min(TILE_ROWS, to - r);
      float[] w;
      int wOff;
      if (scratch == null) {
        w = floats;
        wOff = r * cols;
      } else {
        for (int k = 0; k < nr; k++) {
          QuantKernels.dequantizeRow(type, blocks, (r + k) * rowBytes, scratch, k * cols, cols);
        }
        w = scratch;
        wOff = 0;
      }
      int t = 0;
      if (nr == TILE_ROWS) {
        for (; t + 1 < tokens; t += 2) {
          QuantKernels.dotF32x4x2(w, wOff, cols, x, t * cols, cols, cols, out, t * rows + r, rows);
        }
      }
      for (; t < tokens; t++) {
        for (int k = 0; k < nr; k++) {
          out[t * rows + r + k] = QuantKernels.dotF32(w, wOff + k * cols, x, t * cols, cols);
        }
      }
    }
  }

  /** Row {@code r} decoded to fp32 into {@code out[0..cols)} (embedding lookup). */
  public void row(int r, float[] out) {
    if (type == GgmlType.F32) {
      System.arraycopy(floats, r * cols, out, 0, cols);
    } else {
      GgmlQuantizer.dequantizeRow(type, blocks, r * rowBytes, out, 0, cols);
    }
  }
}
