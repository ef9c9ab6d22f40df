package dev.compactor.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reads any run of a tensor's elements as fp32 into a caller's array, through one reused direct
 * buffer and {@link TensorSource#readRaw} (positional reads), so a whole checkpoint can be streamed
 * with a working set of a few megabytes and without mapping its files. F32, F16, BF16 and F64 are
 * widened exactly as {@link TensorSource#readFloats} does.
 *
 * <p>Not thread-safe: give each thread its own reader.
 */
public final class TensorChunkReader {

  /** Default scratch size: 1 MiB of raw bytes per positional read. */
  public static final int DEFAULT_SCRATCH_BYTES = 1 << 20;

  private final ByteBuffer scratch;
  private short[] halves = new short[0];

  public TensorChunkReader() {
    this(DEFAULT_SCRATCH_BYTES);
  }

  /** {@code scratchBytes} bounds each positional read (at least 8 bytes). */
  public TensorChunkReader(int scratchBytes) {
    if (scratchBytes < 8) {
      throw new IllegalArgumentException("scratch must hold at least 8 bytes, got " + scratchBytes);
    }
    scratch = ByteBuffer.allocateDirect(scratchBytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Widens elements {@code [first, first + count)} of {@code name} (row-major order) into {@code
   * dst[dstOffset .. dstOffset + count)}.
   *
   * @throws CheckpointFormatException if the tensor is not a floating-point type
   * @throws IllegalArgumentException if the range is outside the tensor or {@code dst}
   */
  public void read(
      TensorSource source, String name, long first, float[] dst, int dstOffset, int count)
      throws IOException {
    TensorInfo t = source.info(name);
    DType dtype = t.dtype();
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16 && dtype != DType.F64) {
      throw new CheckpointFormatException(
          "tensor '"
              + name
              + "': expected a floating-point dtype (F32, F16, BF16, F64) to read as fp32, found "
              + dtype.safetensorsName());
    }
    if (first < 0 || count < 0 || first + count > t.numel()) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': expected elements inside [0, "
              + t.numel()
              + "), asked for ["
              + first
              + ", "
              + (first + count)
              + ")");
    }
    if (dstOffset < 0 || dstOffset + count > dst.length) {
      throw new IllegalArgumentException(
          count + " values from " + dstOffset + " do not fit an array of " + dst.length);
    }
    int width = dtype.bytes();
    int perRead = scratch.capacity() / width;
    for (int done = 0; done < count; ) {
      int n = Math.min(perRead, count - done);
      scratch.clear().limit(n * width);
      source.readRaw(name, (first + done) * width, scratch);
      scratch.flip();
      widen(dtype, scratch, n, dst, dstOffset + done);
      done += n;
    }
  }

  /**
   * Widens {@code count} little-endian values of {@code dtype} from {@code src} (from its position,
   * which is not moved) into {@code dst[dstOffset..]}.
   */
  public void decode(DType dtype, ByteBuffer src, float[] dst, int dstOffset, int count) {
    if (!dtype.isFloat()) {
      throw new IllegalArgumentException("expected a floating-point dtype, found " + dtype);
    }
    if ((long) count * dtype.bytes() > src.remaining()) {
      throw new IllegalArgumentException(
          count + " " + dtype + " values need more than the " + src.remaining() + " bytes given");
    }
    if (dstOffset < 0 || dstOffset + count > dst.length) {
      throw new IllegalArgumentException(
          count + " values from " + dstOffset + " do not fit an array of " + dst.length);
    }
    widen(dtype, src.slice().order(ByteOrder.LITTLE_ENDIAN), count, dst, dstOffset);
  }

  private void widen(DType dtype, ByteBuffer src, int n, float[] dst, int off) {
    switch (dtype) {
      case F32 -> src.asFloatBuffer().get(dst, off, n);
      case F64 -> {
        for (int i = 0; i < n; i++) {
          dst[off + i] = (float) src.getDouble(8 * i);
        }
      }
      default -> {
        // A bulk copy into a short[] and a plain loop is what the JIT vectorizes; per-element
        // getShort on the direct buffer is several times slower.
        if (halves.length < n) {
          halves = new short[n];
        }
        short[] h = halves;
        src.asShortBuffer().get(h, 0, n);
        if (dtype == DType.BF16) {
          for (int i = 0; i < n; i++) {
            dst[off + i] = Float.intBitsToFloat(h[i] << 16);
          }
        } else {
          for (int i = 0; i < n; i++) {
            dst[off + i] = Fp16.toFloat(h[i]);
          }
        }
      }
    }
  }
}
