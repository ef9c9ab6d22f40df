package dev.compactor.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file, validated on open and read one tensor at a time through memory
 * maps, so a checkpoint larger than the heap (or than 2 GiB) can be streamed.
 *
 * <h2>Byte layout (safetensors spec, all integers little-endian)</h2>
 *
 * <pre>
 * offset      size  field
 * 0           8     N: u64, length of the JSON header in bytes
 * 8           N     header: UTF-8 JSON object, may be padded at the end with spaces (0x20)
 *                     { "__metadata__": { "key": "value", ... },          (optional, strings only)
 *                       "tensor.name": { "dtype": "BF16",
 *                                        "shape": [d0, d1, ...],
 *                                        "data_offsets": [begin, end] },   ... }
 * 8+N         D     data section: D = file size - 8 - N; tensor bytes row-major, little-endian,
 *                   at [8+N+begin, 8+N+end); the tensors tile [0, D) with no hole or overlap
 * </pre>
 *
 * <p>Writers (ours and Hugging Face's) pad the header so that 8 + N is a multiple of 8, keeping
 * tensors aligned. Every field is checked on open (see {@link SafetensorsHeader}); a violation is a
 * {@link SafetensorsFormatException} naming the field, what was expected and what was found. The
 * data section is never read until a tensor is asked for.
 *
 * <p>Limits: a header over {@value #MAX_HEADER_BYTES} bytes is refused (it is a few MB even for
 * 100B-parameter models); a single tensor of 2 GiB or more cannot be returned as one {@link
 * ByteBuffer} yet and is refused when read. Thread-safe for reads.
 */
public final class SafetensorsFile implements TensorSource {

  /** Largest accepted header: 100 MiB, as in the reference implementation's order of magnitude. */
  public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

  private final Path file;
  private final FileChannel channel;
  private final long dataStart;
  private final List<String> names;
  private final Map<String, TensorInfo> byName;
  private final Map<String, String> metadata;
  private volatile boolean closed;

  /** Reads of at least this many bytes go around the page cache when they can. */
  static final int DIRECT_MIN_BYTES = 1 << 20;

  private final Object directLock = new Object();
  private FileChannel direct;
  private int directAlign;
  private boolean directTried;

  private SafetensorsFile(
      Path file, FileChannel channel, long dataStart, SafetensorsHeader header) {
    this.file = file;
    this.channel = channel;
    this.dataStart = dataStart;
    List<String> n = new ArrayList<>(header.tensors.size());
    Map<String, TensorInfo> m = new HashMap<>();
    for (TensorInfo t : header.tensors) {
      n.add(t.name());
      m.put(t.name(), t);
    }
    this.names = Collections.unmodifiableList(n);
    this.byName = m;
    this.metadata = header.metadata;
  }

  /**
   * Opens and validates {@code file}. Reads only the 8-byte length and the header.
   *
   * @throws SafetensorsFormatException if any header field breaks the format
   * @throws IOException if the file cannot be read
   */
  public static SafetensorsFile open(Path file) throws IOException {
    FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
    try {
      long size = ch.size();
      if (size < 8) {
        throw new SafetensorsFormatException(
            file, "header length", "a file of at least 8 bytes", size + " bytes");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0);
      long n = lenBuf.getLong(0);
      long maxN = Math.min(size - 8, MAX_HEADER_BYTES);
      if (n < 2 || n > maxN) {
        String found = n < 0 ? Long.toUnsignedString(n) + " (as unsigned 64-bit)" : n + "";
        throw new SafetensorsFormatException(
            file,
            "header length",
            "2 ≤ N ≤ "
                + maxN
                + " (file is "
                + size
                + " bytes, header limit "
                + MAX_HEADER_BYTES
                + ")",
            found);
      }
      ByteBuffer headerBuf = ByteBuffer.allocate((int) n);
      readFully(ch, headerBuf, 8);
      SafetensorsHeader header = SafetensorsHeader.parse(file, headerBuf.array(), size - 8 - n);
      return new SafetensorsFile(file, ch, 8 + n, header);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
    long pos = position;
    while (buf.hasRemaining()) {
      int r = ch.read(buf, pos);
      if (r < 0) {
        throw new IOException("unexpected end of file at byte " + pos);
      }
      pos += r;
    }
  }

  /** The file this reads. */
  public Path path() {
    return file;
  }

  /** Absolute byte offset of the data section (8 + header length). */
  public long dataStart() {
    return dataStart;
  }

  @Override
  public List<String> names() {
    return names;
  }

  /** Tensor entries in file order. */
  public List<TensorInfo> infos() {
    List<TensorInfo> out = new ArrayList<>(names.size());
    for (String n : names) {
      out.add(byName.get(n));
    }
    return out;
  }

  @Override
  public TensorInfo info(String name) {
    TensorInfo t = byName.get(name);
    if (t == null) {
      throw new IllegalArgumentException("no tensor named '" + name + "' in " + file);
    }
    return t;
  }

  @Override
  public boolean contains(String name) {
    return byName.containsKey(name);
  }

  @Override
  public ByteBuffer raw(String name) throws IOException {
    TensorInfo t = info(name);
    if (closed) {
      throw new IllegalStateException(file + " is closed");
    }
    long length = t.byteLength();
    if (length > Integer.MAX_VALUE) {
      throw new UnsupportedOperationException(
          "not supported yet: tensor '"
              + name
              + "' in "
              + file
              + " is "
              + length
              + " bytes; tensors of 2 GiB or more cannot be mapped as one buffer");
    }
    if (length == 0) {
      return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer();
    }
    return channel
        .map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin(), length)
        .asReadOnlyBuffer()
        .order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Positional reads from the file channel (thread-safe, no mapping): works for tensors of any
   * size, and the pages read are not charged to this process's resident set as mapped ones are.
   */
  @Override
  public void readRaw(String name, long offset, ByteBuffer dst) throws IOException {
    TensorInfo t = info(name);
    if (closed) {
      throw new IllegalStateException(file + " is closed");
    }
    TensorRanges.check(t, offset, dst.remaining());
    long pos = dataStart + t.begin() + offset;
    while (dst.hasRemaining()) {
      int r = channel.read(dst, pos);
      if (r < 0) {
        throw new SafetensorsFormatException(
            file,
            "data of " + name,
            "bytes up to " + (dataStart + t.end()),
            "end of file at " + pos);
      }
      pos += r;
    }
  }

  /**
   * Reads ranges of {@value #DIRECT_MIN_BYTES} bytes or more with {@code O_DIRECT}: the aligned
   * block span around the range goes straight into {@code scratch} and the view skips the head.
   * Where the file system refuses direct I/O (tmpfs, some network mounts) it falls back to the
   * positional read through the page cache.
   */
  @Override
  public ByteBuffer readRawOnce(String name, long offset, int length, ByteBuffer scratch)
      throws IOException {
    TensorInfo t = info(name);
    TensorRanges.check(t, offset, length);
    FileChannel d = length >= DIRECT_MIN_BYTES && scratch.isDirect() ? directChannel() : null;
    if (d == null) {
      return TensorSource.super.readRawOnce(name, offset, length, scratch);
    }
    int align = directAlign;
    long pos = dataStart + t.begin() + offset;
    long start = pos - pos % align;
    int head = (int) (pos - start);
    long span = (head + (long) length + align - 1) / align * align;
    ByteBuffer a = scratch.clear().alignedSlice(align);
    if (a.capacity() < span) {
      return TensorSource.super.readRawOnce(name, offset, length, scratch);
    }
    a.limit((int) span);
    long p = start;
    while (a.position() < head + length) {
      int r = d.read(a, p);
      if (r <= 0) {
        throw new SafetensorsFormatException(
            file, "data of " + name, "bytes up to " + (dataStart + t.end()), "end of file at " + p);
      }
      p += r;
    }
    return a.position(head).limit(head + length).slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** The file opened for direct I/O, or null where the file system does not allow it. */
  private FileChannel directChannel() {
    synchronized (directLock) {
      if (!directTried && !closed) {
        directTried = true;
        try {
          long block = Files.getFileStore(file).getBlockSize();
          if (block > 0 && block <= READ_ONCE_SLACK_BYTES / 2) {
            direct =
                FileChannel.open(
                    file, StandardOpenOption.READ, com.sun.nio.file.ExtendedOpenOption.DIRECT);
            directAlign = (int) Math.max(block, 4096);
          }
        } catch (IOException | UnsupportedOperationException e) {
          direct = null;
        }
      }
      return direct;
    }
  }

  @Override
  public float[] readFloats(String name) throws IOException {
    return TensorDecoding.toFloats(info(name), raw(name), file);
  }

  @Override
  public ByteBuffer readFloatsDirect(String name) throws IOException {
    return TensorDecoding.toDirectFloats(info(name), raw(name), file);
  }

  @Override
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public void close() throws IOException {
    closed = true;
    synchronized (directLock) {
      if (direct != null) {
        direct.close();
      }
    }
    channel.close();
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + file + ", " + names.size() + " tensors]";
  }

  /** Size of the file in bytes. */
  public long fileSize() throws IOException {
    return Files.size(file);
  }
}
