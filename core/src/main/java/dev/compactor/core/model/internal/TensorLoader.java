package dev.compactor.core.model.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;

/**
 * Turns checkpoint tensors into fp32 NDArrays. Conversion (BF16/F16 to fp32) happens in Java
 * because libtorch aborts on BF16 casts here. Bytes go through one reusable direct staging buffer
 * and are then cloned into libtorch-owned memory, so closing the NDManager frees a tensor at once
 * (a direct buffer per tensor would only be freed by a later GC, which inflates peak RSS when
 * layers are streamed).
 */
public final class TensorLoader {

  private ByteBuffer staging = ByteBuffer.allocateDirect(0);

  /** Reads {@code name} as fp32, checking that its shape is {@code expected}. */
  public NDArray load(NDManager manager, TensorSource source, String name, long... expected)
      throws IOException {
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
    int n = Math.toIntExact(info.numel());
    FloatBuffer out = stage(n);
    switch (info.dtype()) {
      case F32 -> {
        ByteBuffer raw = source.raw(name).duplicate().order(ByteOrder.LITTLE_ENDIAN);
        out.put(raw.asFloatBuffer());
      }
      case BF16 -> {
        ShortBuffer raw =
            source.raw(name).duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
        for (int i = 0; i < n; i++) {
          out.put(Float.intBitsToFloat((raw.get(i) & 0xffff) << 16));
        }
      }
      default -> {
        if (!info.dtype().isFloat()) {
          throw new CheckpointFormatException(
              "checkpoint: tensor \"" + name + "\" expected a float type, found " + info.dtype());
        }
        out.put(source.readFloats(name));
      }
    }
    return commit(manager, n, new Shape(expected));
  }

  /** Copies {@code values} into a libtorch-owned fp32 array of {@code shape}. */
  public NDArray create(NDManager manager, float[] values, long... shape) {
    stage(values.length).put(values);
    return commit(manager, values.length, new Shape(shape));
  }

  private FloatBuffer stage(int n) {
    long bytes = 4L * n;
    if (staging.capacity() < bytes) {
      staging = ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
    }
    staging.clear();
    staging.limit((int) bytes);
    return staging.slice().order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  private NDArray commit(NDManager manager, int n, Shape shape) {
    staging.clear();
    staging.limit(4 * n);
    ByteBuffer view = staging.slice().order(ByteOrder.nativeOrder());
    try (NDArray alias = manager.create(view, shape, DataType.FLOAT32)) {
      return alias.duplicate();
    }
  }
}
