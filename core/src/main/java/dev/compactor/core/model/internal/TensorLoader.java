package dev.compactor.core.model.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Fp16;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Turns checkpoint tensors into fp32 NDArrays with bounded extra memory. Conversion (BF16/F16 to
 * fp32) happens in Java because libtorch aborts on BF16 casts here.
 *
 * <p>Memory choices, all measured with the layer-streaming benchmark: tensors are converted in
 * chunks of at most {@value #CHUNK_ELEMENTS} elements through small reusable direct buffers, never
 * a whole-tensor staging copy; a {@link SafetensorsFile} is read with positional reads rather than
 * through a memory map (mapped pages count towards RSS until a GC unmaps them); and a streamed
 * layer is loaded into the same direct buffers every time ({@link #loadInto}) because libtorch
 * allocating and freeing a layer's tensors per pass leaves glibc arenas fragmented and RSS growing.
 */
public final class TensorLoader implements AutoCloseable {

  static final int CHUNK_ELEMENTS = 1 << 22;

  private final ByteBuffer floats =
      ByteBuffer.allocateDirect(4 * CHUNK_ELEMENTS).order(ByteOrder.nativeOrder());
  private final ByteBuffer raw = ByteBuffer.allocateDirect(4 * CHUNK_ELEMENTS);
  private final Map<Path, FileChannel> channels = new HashMap<>();

  /** A chunk of converted values: elements {@code [offset, offset + values.remaining())}. */
  private interface ChunkSink {
    void accept(FloatBuffer values, ByteBuffer bytes, long offset);
  }

  /**
   * Reads {@code name} into a libtorch-owned fp32 array, checking its shape is {@code expected}.
   */
  public NDArray load(NDManager manager, TensorSource source, String name, long... expected)
      throws IOException {
    TensorInfo info = check(source, name, expected);
    NDArray out = manager.create(new Shape(expected), DataType.FLOAT32);
    long rowLength = expected.length == 0 ? 1 : info.numel() / Math.max(1, expected[0]);
    long[] rowShape =
        expected.length == 0 ? new long[0] : Arrays.copyOfRange(expected, 1, expected.length);
    int chunk = (int) Math.max(rowLength, CHUNK_ELEMENTS / rowLength * rowLength);
    if (rowLength > CHUNK_ELEMENTS) {
      throw new UnsupportedOperationException(
          "not supported yet: tensor \""
              + name
              + "\" has rows of more than "
              + CHUNK_ELEMENTS
              + " elements");
    }
    read(
        source,
        info,
        chunk,
        (values, bytes, offset) -> {
          long rows = values.remaining() / rowLength;
          long[] shape = new long[rowShape.length + 1];
          shape[0] = rows;
          System.arraycopy(rowShape, 0, shape, 1, rowShape.length);
          try (NDArray part =
              manager.create(
                  bytes, new Shape(expected.length == 0 ? new long[0] : shape), DataType.FLOAT32)) {
            if (expected.length == 0) {
              out.set(new NDIndex(), part);
            } else {
              long row0 = offset / rowLength;
              out.set(new NDIndex("{}:{}", row0, row0 + rows), part);
            }
          }
        });
    return out;
  }

  /**
   * Reads {@code name} as fp32 into {@code slot} (a native-order direct buffer of exactly {@code 4
   * * numel} bytes, reused across calls) and returns an array viewing it. The caller closes the
   * array before the slot is reused.
   */
  public NDArray loadInto(
      NDManager manager, TensorSource source, String name, ByteBuffer slot, long... expected)
      throws IOException {
    TensorInfo info = check(source, name, expected);
    if (slot.capacity() != 4 * info.numel()) {
      throw new IllegalArgumentException("slot for " + name + " has the wrong size");
    }
    FloatBuffer target = slot.duplicate().order(ByteOrder.nativeOrder()).clear().asFloatBuffer();
    read(source, info, CHUNK_ELEMENTS, (values, bytes, offset) -> target.put(values));
    return manager.create(
        slot.duplicate().order(ByteOrder.nativeOrder()).clear(),
        new Shape(expected),
        DataType.FLOAT32);
  }

  /** Copies {@code values} into a libtorch-owned fp32 array of {@code shape}. */
  public NDArray create(NDManager manager, float[] values, long... shape) {
    NDArray out = manager.create(new Shape(shape), DataType.FLOAT32);
    long rowLength = shape.length == 0 ? 1 : values.length / Math.max(1, shape[0]);
    int rowsPerChunk = (int) Math.max(1, CHUNK_ELEMENTS / rowLength);
    long rows = shape.length == 0 ? 1 : shape[0];
    for (long r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      long r1 = Math.min(rows, r0 + rowsPerChunk);
      long[] partShape = shape.clone();
      if (partShape.length > 0) {
        partShape[0] = r1 - r0;
      }
      ByteBuffer bytes = floats.clear().limit((int) (4 * (r1 - r0) * rowLength));
      bytes.asFloatBuffer().put(values, (int) (r0 * rowLength), (int) ((r1 - r0) * rowLength));
      try (NDArray part =
          manager.create(
              bytes.slice().order(ByteOrder.nativeOrder()),
              new Shape(partShape),
              DataType.FLOAT32)) {
        out.set(shape.length == 0 ? new NDIndex() : new NDIndex("{}:{}", r0, r1), part);
      }
    }
    return out;
  }

  private static TensorInfo check(TensorSource source, String name, long[] expected)
      throws CheckpointFormatException {
    if (!source.contains(name)) {
      throw new CheckpointFormatException(
          "checkpoint: expected tensor \"" + name + "\" " + Arrays.toString(expected) + ", absent");
    }
    TensorInfo info = source.info(name);
    if (!Arrays.equals(info.shape(), expected)) {
      throw new CheckpointFormatException(
          "checkpoint: tensor \""
              + name
              + "\" expected shape "
              + Arrays.toString(expected)
              + ", found "
              + Arrays.toString(info.shape()));
    }
    if (!info.dtype().isFloat()) {
      throw new CheckpointFormatException(
          "checkpoint: tensor \"" + name + "\" expected a float type, found " + info.dtype());
    }
    return info;
  }

  /** Converts the tensor to fp32 chunk by chunk (chunk a multiple of the caller's row length). */
  private void read(TensorSource source, TensorInfo info, int chunk, ChunkSink sink)
      throws IOException {
    long n = info.numel();
    if (info.dtype() == dev.compactor.core.io.DType.F64) {
      float[] all = source.readFloats(info.name());
      for (long off = 0; off < n; off += chunk) {
        int count = (int) Math.min(chunk, n - off);
        ByteBuffer bytes = floats.clear().limit(4 * count);
        FloatBuffer out = bytes.slice().order(ByteOrder.nativeOrder()).asFloatBuffer();
        out.put(all, (int) off, count).flip();
        sink.accept(out, bytes.slice().order(ByteOrder.nativeOrder()), off);
      }
      return;
    }
    int width = info.dtype().bytes();
    ByteBuffer mapped =
        source instanceof SafetensorsFile
            ? null
            : source.raw(info.name()).duplicate().order(ByteOrder.LITTLE_ENDIAN);
    for (long off = 0; off < n; off += chunk) {
      int count = (int) Math.min(chunk, n - off);
      ByteBuffer in;
      if (mapped == null) {
        in = pread((SafetensorsFile) source, info.begin() + off * width, count * width);
      } else {
        in =
            mapped
                .duplicate()
                .position((int) (off * width))
                .limit((int) ((off + count) * width))
                .slice()
                .order(ByteOrder.LITTLE_ENDIAN);
      }
      ByteBuffer bytes = floats.clear().limit(4 * count).slice().order(ByteOrder.nativeOrder());
      FloatBuffer out = bytes.asFloatBuffer();
      switch (info.dtype()) {
        case F32 -> out.put(in.asFloatBuffer());
        case BF16 -> {
          for (int i = 0; i < count; i++) {
            out.put(Float.intBitsToFloat((in.getShort(2 * i) & 0xffff) << 16));
          }
        }
        default -> {
          for (int i = 0; i < count; i++) {
            out.put(Fp16.toFloat(in.getShort(2 * i)));
          }
        }
      }
      out.flip();
      sink.accept(out, bytes, off);
    }
  }

  private ByteBuffer pread(SafetensorsFile file, long begin, int length) throws IOException {
    FileChannel channel = channels.get(file.path());
    if (channel == null) {
      channel = FileChannel.open(file.path(), StandardOpenOption.READ);
      channels.put(file.path(), channel);
    }
    ByteBuffer buf = raw.clear().limit(length);
    long position = file.dataStart() + begin;
    while (buf.hasRemaining()) {
      int read = channel.read(buf, position);
      if (read < 0) {
        throw new CheckpointFormatException(
            file.path() + ": tensor data ends past the end of the file");
      }
      position += read;
    }
    return buf.flip().slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public void close() throws IOException {
    for (FileChannel c : channels.values()) {
      c.close();
    }
    channels.clear();
  }
}
