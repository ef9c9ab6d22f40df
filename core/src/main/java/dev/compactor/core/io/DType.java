package dev.compactor.core.io;

/** Element types a checkpoint may hold, with their safetensors spelling and width in bytes. */
public enum DType {
  F64("F64", 8),
  F32("F32", 4),
  F16("F16", 2),
  BF16("BF16", 2),
  I64("I64", 8),
  I32("I32", 4),
  I16("I16", 2),
  I8("I8", 1),
  U8("U8", 1),
  BOOL("BOOL", 1);

  private final String safetensorsName;
  private final int bytes;

  DType(String safetensorsName, int bytes) {
    this.safetensorsName = safetensorsName;
    this.bytes = bytes;
  }

  /** The name used in a safetensors header, e.g. {@code "BF16"}. */
  public String safetensorsName() {
    return safetensorsName;
  }

  /** Width of one element in bytes. */
  public int bytes() {
    return bytes;
  }

  /** True for the floating-point types the model code can compute with (converted to fp32). */
  public boolean isFloat() {
    return this == F64 || this == F32 || this == F16 || this == BF16;
  }
}
