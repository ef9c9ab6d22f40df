package dev.compactor.core.io;

/** Bounds checks for partial reads of a tensor's bytes. */
final class TensorRanges {

  private TensorRanges() {}

  static void check(TensorInfo t, long offset, long length) {
    if (offset < 0 || length < 0 || offset + length > t.byteLength()) {
      throw new IllegalArgumentException(
          "tensor '"
              + t.name()
              + "': expected a byte range inside [0, "
              + t.byteLength()
              + "), found ["
              + offset
              + ", "
              + (offset + length)
              + ")");
    }
  }
}
