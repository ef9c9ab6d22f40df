package dev.compactor.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

/**
 * Read access to the tensors of a checkpoint, one tensor at a time, so that a model larger than RAM
 * can be streamed. Implementations memory-map their files; nothing is read until asked for.
 */
public interface TensorSource extends AutoCloseable {

  /** Tensor names in file order. */
  List<String> names();

  /** The entry for {@code name}; throws {@link IllegalArgumentException} if absent. */
  TensorInfo info(String name);

  default boolean contains(String name) {
    return names().contains(name);
  }

  /** The tensor's raw little-endian bytes (a read-only view of the mapped file, no copy). */
  ByteBuffer raw(String name) throws IOException;

  /** The tensor converted to fp32 (F32, F16, BF16 and F64 are accepted), in row-major order. */
  float[] readFloats(String name) throws IOException;

  /**
   * The tensor converted to fp32 in a new direct buffer in native byte order, row-major. Engines
   * such as DJL wrap such a buffer without copying, so a layer needs no heap array on the way.
   */
  default ByteBuffer readFloatsDirect(String name) throws IOException {
    return TensorDecoding.toDirectFloats(info(name), raw(name), this);
  }

  /** The {@code __metadata__} map of the (first) file; empty when there is none. */
  Map<String, String> metadata();

  @Override
  void close() throws IOException;
}
