package dev.compactor.core.gguf;

/**
 * The ggml tensor types this project writes into GGUF files, with ggml's numeric id, the number of
 * values per block and the bytes per block (ggml's {@code blck_size} and {@code type_size}).
 *
 * <p>A row of {@code n} values of a block type takes {@code n / blockSize * typeSize} bytes; ggml
 * requires {@code n} to be a multiple of the block size, so callers pick a fallback type otherwise
 * (see {@link #fitsRowLength(long)}).
 */
public enum GgmlType {
  F32(0, 1, 4),
  F16(1, 1, 2),
  Q4_0(2, 32, 18),
  Q4_1(3, 32, 20),
  Q5_0(6, 32, 22),
  Q5_1(7, 32, 24),
  Q8_0(8, 32, 34),
  Q4_K(12, 256, 144),
  Q5_K(13, 256, 176),
  Q6_K(14, 256, 210);

  /** Super-block size of the k-quants ({@code QK_K} in ggml-common.h). */
  public static final int QK_K = 256;

  private final int id;
  private final int blockSize;
  private final int typeSize;

  GgmlType(int id, int blockSize, int typeSize) {
    this.id = id;
    this.blockSize = blockSize;
    this.typeSize = typeSize;
  }

  /** ggml's {@code enum ggml_type} value, as stored in a GGUF tensor info. */
  public int id() {
    return id;
  }

  /** Values per block (1 for the float types). */
  public int blockSize() {
    return blockSize;
  }

  /** Bytes per block. */
  public int typeSize() {
    return typeSize;
  }

  public boolean isQuantized() {
    return blockSize > 1;
  }

  /** True when a row of {@code rowLength} values can be stored as this type. */
  public boolean fitsRowLength(long rowLength) {
    return rowLength % blockSize == 0;
  }

  /** Bytes of {@code count} values; {@code count} must be a multiple of the block size. */
  public long bytesFor(long count) {
    if (count % blockSize != 0) {
      throw new IllegalArgumentException(
          name()
              + " stores values in blocks of "
              + blockSize
              + "; "
              + count
              + " is not a multiple");
    }
    return count / blockSize * typeSize;
  }

  /** The type with ggml id {@code id}; throws {@link IllegalArgumentException} for others. */
  public static GgmlType fromId(int id) {
    for (GgmlType t : values()) {
      if (t.id == id) {
        return t;
      }
    }
    throw new IllegalArgumentException("unsupported ggml type id " + id);
  }

  /** Parses a lower- or upper-case name such as {@code "q4_k"}. */
  public static GgmlType parse(String name) {
    try {
      return valueOf(name.trim().toUpperCase(java.util.Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "unknown ggml type '"
              + name
              + "'; expected one of f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k",
          e);
    }
  }
}
