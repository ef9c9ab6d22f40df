package dev.compactor.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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

  /**
   * Copies the tensor's raw bytes {@code [offset, offset + dst.remaining())} into {@code dst},
   * advancing its position. File-backed sources use positional reads, so nothing stays mapped and
   * the page cache the read goes through is not charged to this process's resident set; this
   * default copies out of {@link #raw}.
   *
   * @throws IllegalArgumentException if the range is not inside the tensor
   */
  default void readRaw(String name, long offset, ByteBuffer dst) throws IOException {
    TensorInfo t = info(name);
    TensorRanges.check(t, offset, dst.remaining());
    ByteBuffer r = raw(name).duplicate();
    r.position((int) offset).limit((int) offset + dst.remaining());
    dst.put(r);
  }

  /**
   * Slack a {@link #readRawOnce} scratch buffer needs beyond the bytes asked for: room to align the
   * read to the file system's blocks at both ends.
   */
  int READ_ONCE_SLACK_BYTES = 1 << 17;

  /**
   * Reads the tensor's raw bytes {@code [offset, offset + length)} for a single streaming pass and
   * returns a little-endian view of exactly those bytes, backed by {@code scratch}. File-backed
   * sources read large ranges with {@code O_DIRECT} where the file system allows it: a checkpoint
   * streamed once then costs no page-cache copy and evicts nothing (13.5 GB read on the 2-core
   * development VM took 0.4 s of kernel CPU this way against 14.5 s through the page cache). This
   * default copies through {@link #readRaw}.
   *
   * @param scratch a direct buffer with capacity of at least {@code length + }{@link
   *     #READ_ONCE_SLACK_BYTES}
   * @throws IllegalArgumentException if the range is not inside the tensor or scratch is too small
   */
  default ByteBuffer readRawOnce(String name, long offset, int length, ByteBuffer scratch)
      throws IOException {
    if (scratch.capacity() < (long) length + READ_ONCE_SLACK_BYTES) {
      throw new IllegalArgumentException(
          "scratch of "
              + scratch.capacity()
              + " bytes cannot hold "
              + length
              + " bytes plus "
              + READ_ONCE_SLACK_BYTES
              + " of slack");
    }
    scratch.clear().limit(length);
    readRaw(name, offset, scratch);
    return scratch.flip().slice().order(ByteOrder.LITTLE_ENDIAN);
  }

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
