package dev.compactor.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Builds safetensors files byte by byte for tests, independently of {@link SafetensorsWriter}: the
 * header JSON is given verbatim, so tests can write exactly the malformed files they need.
 */
final class StFiles {

  private StFiles() {}

  /** 8-byte little-endian {@code headerLength}, then {@code header}, then {@code data}. */
  static byte[] bytes(long headerLength, byte[] header, byte[] data) {
    ByteBuffer b =
        ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(headerLength).put(header).put(data);
    return b.array();
  }

  /** A well-formed file: the length field matches the header. */
  static byte[] bytes(String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return bytes(h.length, h, data);
  }

  static Path write(Path file, byte[] content) throws IOException {
    Files.write(file, content);
    return file;
  }

  static Path write(Path file, String header, byte[] data) throws IOException {
    return write(file, bytes(header, data));
  }

  static byte[] f32(float... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return b.array();
  }

  static byte[] concat(byte[]... parts) {
    int n = 0;
    for (byte[] p : parts) {
      n += p.length;
    }
    ByteBuffer b = ByteBuffer.allocate(n);
    for (byte[] p : parts) {
      b.put(p);
    }
    return b.array();
  }
}
