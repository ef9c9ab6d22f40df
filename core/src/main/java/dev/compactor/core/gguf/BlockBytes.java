package dev.compactor.core.gguf;

import dev.compactor.core.io.Fp16;

/** Little-endian reads and writes of the fp16 fields inside ggml blocks. */
final class BlockBytes {

  private BlockBytes() {}

  static void putF16(byte[] b, int off, float v) {
    short h = Fp16.fromFloat(v);
    b[off] = (byte) h;
    b[off + 1] = (byte) (h >> 8);
  }

  static float getF16(byte[] b, int off) {
    return Fp16.toFloat((short) ((b[off] & 0xff) | (b[off + 1] << 8)));
  }

  /**
   * The first value of largest magnitude among {@code x[from .. from + n)}, with its sign: the
   * strict {@code <} scan of ggml's q4_0/q5_0 reference quantizers (0 for an all-zero block).
   */
  static float firstLargestMagnitude(float[] x, int from, int n) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = from; j < from + n; j++) {
      float v = x[j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    return max;
  }

  static void checkRow(
      int n, int blockSize, float[] x, int xOff, byte[] y, int yOff, int typeSize) {
    if (n % blockSize != 0) {
      throw new IllegalArgumentException(
          "row length " + n + " is not a multiple of the block size " + blockSize);
    }
    if (xOff < 0 || xOff + n > x.length) {
      throw new IndexOutOfBoundsException("input range " + xOff + "+" + n + " of " + x.length);
    }
    long bytes = (long) n / blockSize * typeSize;
    if (yOff < 0 || yOff + bytes > y.length) {
      throw new IndexOutOfBoundsException("output range " + yOff + "+" + bytes + " of " + y.length);
    }
  }
}
