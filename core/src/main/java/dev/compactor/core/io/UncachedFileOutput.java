package dev.compactor.core.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * An {@link OutputStream} to a new file for writing gigabytes once (an exported model): where the
 * file system allows {@code O_DIRECT}, bytes are staged in one aligned buffer and written around
 * the page cache in large aligned blocks; the last partial block is written padded and the file
 * truncated to its true length on {@link #close}. Elsewhere (tmpfs, some network mounts) it is a
 * plain buffered stream.
 *
 * <p>Why: on the 2-core development VM, 4.2 GB written through the page cache took 10.6 s of kernel
 * CPU and ran at 0.35 GB/s; with {@code O_DIRECT} it took 0.5 s and ran at 1.3 GB/s ({@code dd
 * bs=8M}, same disk). A model written once gains nothing from being cached, and caching it evicts
 * the checkpoint being read.
 *
 * <p>{@link #flush} writes only whole blocks; the bytes are complete on disk after {@link #close}.
 * Not thread-safe.
 */
public final class UncachedFileOutput extends OutputStream {

  /** Default staging buffer: 8 MiB, large enough for the device to stream. */
  public static final int DEFAULT_BUFFER_BYTES = 8 << 20;

  private final FileChannel plain;
  private final FileChannel direct;
  private final int align;
  private final ByteBuffer buffer;
  private long filePosition;
  private boolean closed;

  private UncachedFileOutput(FileChannel plain, FileChannel direct, int align, int bufferBytes) {
    this.plain = plain;
    this.direct = direct;
    this.align = align;
    int size = Math.max(align, bufferBytes / align * align);
    this.buffer = ByteBuffer.allocateDirect(size + align).alignedSlice(align).limit(size).slice();
  }

  /** Creates (or truncates) {@code path} with a {@value #DEFAULT_BUFFER_BYTES}-byte buffer. */
  public static OutputStream create(Path path) throws IOException {
    return create(path, DEFAULT_BUFFER_BYTES, true);
  }

  /**
   * Creates (or truncates) {@code path}; {@code allowDirect} false gives the plain buffered stream
   * (what file systems without direct I/O get).
   */
  static OutputStream create(Path path, int bufferBytes, boolean allowDirect) throws IOException {
    if (allowDirect) {
      FileChannel plain =
          FileChannel.open(
              path,
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.WRITE);
      try {
        long block = Files.getFileStore(path).getBlockSize();
        if (block > 0 && block <= (1 << 16)) {
          FileChannel direct =
              FileChannel.open(
                  path, StandardOpenOption.WRITE, com.sun.nio.file.ExtendedOpenOption.DIRECT);
          return new UncachedFileOutput(
              plain, direct, (int) Math.max(block, 4096), Math.max(bufferBytes, 4096));
        }
      } catch (IOException | UnsupportedOperationException e) {
        // no direct I/O on this file system: fall through to the buffered stream
      }
      plain.close();
    }
    return new BufferedOutputStream(Files.newOutputStream(path), 1 << 20);
  }

  @Override
  public void write(int b) throws IOException {
    ensureOpen();
    buffer.put((byte) b);
    if (!buffer.hasRemaining()) {
      writeBuffer();
    }
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    ensureOpen();
    java.util.Objects.checkFromIndexSize(off, len, b.length);
    while (len > 0) {
      int n = Math.min(len, buffer.remaining());
      buffer.put(b, off, n);
      off += n;
      len -= n;
      if (!buffer.hasRemaining()) {
        writeBuffer();
      }
    }
  }

  /** Writes the whole blocks staged so far; a partial block waits for more bytes or close. */
  @Override
  public void flush() throws IOException {
    ensureOpen();
    int staged = buffer.position();
    int whole = staged / align * align;
    if (whole == 0) {
      return;
    }
    buffer.flip().limit(whole);
    writeFully();
    ByteBuffer tail = buffer.duplicate().limit(staged).position(whole);
    buffer.clear();
    buffer.put(tail);
  }

  /** The staged bytes, a whole number of blocks, at the current file position. */
  private void writeBuffer() throws IOException {
    buffer.flip();
    writeFully();
    buffer.clear();
  }

  private void writeFully() throws IOException {
    while (buffer.hasRemaining()) {
      filePosition += direct.write(buffer, filePosition);
    }
  }

  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try (plain;
        direct) {
      int staged = buffer.position();
      if (staged > 0) {
        int padded = (staged + align - 1) / align * align;
        buffer.limit(padded);
        while (buffer.hasRemaining()) {
          buffer.put((byte) 0);
        }
        buffer.flip();
        long end = filePosition + staged;
        writeFully();
        plain.truncate(end);
      }
    }
  }

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException("stream closed");
    }
  }
}
