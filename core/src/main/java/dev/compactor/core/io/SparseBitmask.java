package dev.compactor.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The two bitmask layouts of compressed-tensors' sparse compressors, for one 2-D weight {@code
 * [rows, cols]} whose elements are kept in their own dtype (no conversion, so a round trip is
 * bit-exact for every stored value). Written down from {@code sparse_24_bitmask.py} and {@code
 * sparse_bitmask.py} of neuralmagic/compressed-tensors; {@code make_sparse_bitmask_golden.py}
 * (core/src/test/python) implements the same rules with numpy.
 *
 * <p>Per weight {@code P.weight} the checkpoint stores, under the module name {@code P}:
 *
 * <ul>
 *   <li>{@link Structure#TWO_FOUR} ({@code format: "sparse-24-bitmask"}, {@code
 *       Sparse24BitMaskCompressor}): {@code P.shape} I64 {@code [2, 1] = [[rows], [cols]]}; {@code
 *       P.compressed} in the weight's dtype {@code [rows, cols / 2]}: the two kept elements of
 *       every group of 4 consecutive elements of a row, in column order; {@code P.bitmask} U8
 *       {@code [rows, ceil(cols / 8)]}: bit {@code c % 8} of byte {@code c / 8} of a row is set
 *       where column {@code c} is kept ({@code numpy.packbits(axis=-1, bitorder="little")}). The
 *       compressor keeps the 2 largest |w| of each group ({@code topk}); a group with more than 2
 *       zeros keeps zeros too, here the lowest-index ones (any choice decodes to the same tensor).
 *       {@code cols} must be a multiple of 4.
 *   <li>{@link Structure#UNSTRUCTURED} ({@code format: "sparse-bitmask"}, {@code
 *       BitmaskCompressor}): {@code P.shape} I64 {@code [2] = [rows, cols]}; {@code P.compressed}
 *       in the weight's dtype {@code [nnz]}: the nonzero elements in row-major order; {@code
 *       P.bitmask} U8 {@code [rows, ceil(cols / 8)]} as above, set where the element is nonzero;
 *       {@code P.row_offsets} I64 {@code [rows]}: index in {@code compressed} of each row's first
 *       element. A negative zero counts as zero (it is not stored and decodes to +0).
 * </ul>
 *
 * Decoding scatters {@code compressed} into a zero tensor at the set bits, in row-major order.
 */
public final class SparseBitmask {

  /** The sparsity structure of a compressor. */
  public enum Structure {
    TWO_FOUR,
    UNSTRUCTURED
  }

  /**
   * One compressed weight: the raw little-endian bytes of {@code compressed} (the weight's dtype),
   * {@code bitmask}, and {@code rowOffsets} (unstructured only, else null).
   */
  public record Compressed(
      Structure structure,
      DType dtype,
      int rows,
      int cols,
      ByteBuffer values,
      byte[] bitmask,
      long[] rowOffsets) {

    /** Elements stored in {@code compressed}. */
    public long storedElements() {
      return values.remaining() / dtype.bytes();
    }

    /** The shape of the {@code compressed} tensor. */
    public long[] valuesShape() {
      return structure == Structure.TWO_FOUR
          ? new long[] {rows, cols / 2}
          : new long[] {storedElements()};
    }

    /** The shape of the {@code bitmask} tensor. */
    public long[] bitmaskShape() {
      return new long[] {rows, bytesPerRow(cols)};
    }

    /** The {@code shape} tensor's shape: {@code [2, 1]} for 2:4, {@code [2]} unstructured. */
    public long[] shapeShape() {
      return structure == Structure.TWO_FOUR ? new long[] {2, 1} : new long[] {2};
    }
  }

  private SparseBitmask() {}

  /** Bitmask bytes per row: {@code ceil(cols / 8)}. */
  public static int bytesPerRow(int cols) {
    return (cols + 7) / 8;
  }

  /**
   * Compresses {@code raw} (row-major little-endian elements of {@code dtype}).
   *
   * @param name the tensor, for error messages
   * @throws IllegalArgumentException for 2:4 when {@code cols} is not a multiple of 4 or a group of
   *     4 holds more than 2 nonzeros (the compressor would silently drop weights)
   */
  public static Compressed compress(
      String name, ByteBuffer raw, DType dtype, int rows, int cols, Structure structure) {
    if (!dtype.isFloat()) {
      throw new IllegalArgumentException(name + ": expected a float tensor, found " + dtype);
    }
    long numel = (long) rows * cols;
    int w = dtype.bytes();
    ByteBuffer in = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    if (in.remaining() != numel * w) {
      throw new IllegalArgumentException(
          name + ": expected " + numel * w + " bytes for [" + rows + ", " + cols + "] " + dtype);
    }
    if (numel * w > Integer.MAX_VALUE - 8) {
      throw new UnsupportedOperationException(
          "not supported yet: " + name + " holds " + numel * w + " bytes, more than 2 GiB");
    }
    int maskRow = bytesPerRow(cols);
    byte[] mask = new byte[rows * maskRow];
    if (structure == Structure.TWO_FOUR) {
      if (cols % 4 != 0) {
        throw new IllegalArgumentException(
            name + ": 2:4 needs a column count divisible by 4, found " + cols);
      }
      ByteBuffer out = ByteBuffer.allocate((int) (numel / 2 * w)).order(ByteOrder.LITTLE_ENDIAN);
      for (int r = 0; r < rows; r++) {
        for (int g = 0; g < cols; g += 4) {
          int nonzero = 0;
          for (int j = 0; j < 4; j++) {
            nonzero += isZero(in, (r * cols + g + j) * w, dtype) ? 0 : 1;
          }
          if (nonzero > 2) {
            throw new IllegalArgumentException(
                name
                    + " is not 2:4 sparse: row "
                    + r
                    + ", columns "
                    + g
                    + ".."
                    + (g + 3)
                    + " hold "
                    + nonzero
                    + " nonzeros (at most 2 of every 4 consecutive inputs may be nonzero);"
                    + " prune with --pattern 2:4 or export sparse-bitmask or dense");
          }
          // keep the nonzeros, then as many zeros as needed (lowest index first) to reach 2
          int zerosToKeep = 2 - nonzero;
          for (int j = 0; j < 4; j++) {
            int at = (r * cols + g + j) * w;
            boolean keep = !isZero(in, at, dtype);
            if (!keep && zerosToKeep > 0) {
              keep = true;
              zerosToKeep--;
            }
            if (keep) {
              setBit(mask, r * maskRow, g + j);
              for (int b = 0; b < w; b++) {
                out.put(in.get(at + b));
              }
            }
          }
        }
      }
      return new Compressed(structure, dtype, rows, cols, out.flip(), mask, null);
    }
    long nnz = 0;
    long[] offsets = new long[rows];
    for (int r = 0; r < rows; r++) {
      offsets[r] = nnz;
      for (int c = 0; c < cols; c++) {
        if (!isZero(in, (r * cols + c) * w, dtype)) {
          setBit(mask, r * maskRow, c);
          nnz++;
        }
      }
    }
    ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(nnz * w)).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < numel; i++) {
      int at = i * w;
      if (!isZero(in, at, dtype)) {
        for (int b = 0; b < w; b++) {
          out.put(in.get(at + b));
        }
      }
    }
    return new Compressed(structure, dtype, rows, cols, out.flip(), mask, offsets);
  }

  /**
   * The dense tensor's little-endian bytes (a new heap buffer). Checks that the bitmask has as many
   * set bits as {@code values} has elements, and for 2:4 that every group keeps exactly 2.
   *
   * @throws CheckpointFormatException when the parts disagree
   */
  public static ByteBuffer decompress(Compressed c, String name) throws CheckpointFormatException {
    int w = c.dtype().bytes();
    int maskRow = bytesPerRow(c.cols());
    if (c.bitmask().length != (long) c.rows() * maskRow) {
      throw new CheckpointFormatException(
          name
              + ".bitmask: expected "
              + (long) c.rows() * maskRow
              + " bytes, found "
              + c.bitmask().length);
    }
    ByteBuffer values = c.values().duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long stored = values.remaining() / w;
    ByteBuffer out =
        ByteBuffer.allocate(Math.toIntExact((long) c.rows() * c.cols() * w))
            .order(ByteOrder.LITTLE_ENDIAN);
    long next = 0;
    for (int r = 0; r < c.rows(); r++) {
      if (c.rowOffsets() != null && c.rowOffsets()[r] != next) {
        throw new CheckpointFormatException(
            name
                + ".row_offsets["
                + r
                + "]: expected "
                + next
                + " (set bits of the rows before), found "
                + c.rowOffsets()[r]);
      }
      int kept = 0;
      for (int col = 0; col < c.cols(); col++) {
        if (c.structure() == Structure.TWO_FOUR && col % 4 == 0 && col > 0 && kept != 2) {
          throw groupError(name, r, col - 4, kept);
        }
        if (col % 4 == 0) {
          kept = 0;
        }
        if ((c.bitmask()[r * maskRow + col / 8] >> (col % 8) & 1) != 0) {
          if (next >= stored) {
            throw new CheckpointFormatException(
                name + ".compressed: the bitmask sets more bits than its " + stored + " values");
          }
          int from = (int) (next * w);
          int to = (r * c.cols() + col) * w;
          for (int b = 0; b < w; b++) {
            out.put(to + b, values.get(from + b));
          }
          next++;
          kept++;
        }
      }
      if (c.structure() == Structure.TWO_FOUR && c.cols() > 0 && kept != 2) {
        throw groupError(name, r, c.cols() - 4, kept);
      }
    }
    if (next != stored) {
      throw new CheckpointFormatException(
          name + ".compressed: expected " + next + " values (set bits), found " + stored);
    }
    return out;
  }

  private static CheckpointFormatException groupError(String name, int row, int col, int kept) {
    return new CheckpointFormatException(
        name
            + ".bitmask: expected 2 set bits in every group of 4 (2:4), found "
            + kept
            + " at row "
            + row
            + ", columns "
            + col
            + ".."
            + (col + 3));
  }

  private static void setBit(byte[] mask, int rowStart, int col) {
    mask[rowStart + col / 8] |= (byte) (1 << (col % 8));
  }

  /** True for +0 and -0 in the element's own encoding. */
  static boolean isZero(ByteBuffer b, int at, DType dtype) {
    return switch (dtype) {
      case F32 -> (b.getInt(at) & 0x7fffffff) == 0;
      case F64 -> (b.getLong(at) & 0x7fffffffffffffffL) == 0;
      case F16, BF16 -> (b.getShort(at) & 0x7fff) == 0;
      default -> throw new IllegalArgumentException("not a float dtype: " + dtype);
    };
  }
}
