package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class UncachedFileOutputTest {

  @TempDir Path tmp;

  /** Writes of every size, single bytes and flushes land in order, and the length is exact. */
  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void theFileHoldsExactlyTheBytesWritten(boolean allowDirect) throws IOException {
    Random r = new Random(allowDirect ? 1 : 2);
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    Path file = tmp.resolve("out-" + allowDirect + ".bin");
    Files.write(file, new byte[10_000_000]);
    try (OutputStream out = UncachedFileOutput.create(file, 1 << 20, allowDirect)) {
      for (int i = 0; i < 60; i++) {
        int kind = r.nextInt(5);
        if (kind == 0) {
          int b = r.nextInt(256);
          out.write(b);
          expected.write(b);
        } else if (kind == 1) {
          out.flush();
        } else {
          byte[] chunk = new byte[r.nextInt(kind == 2 ? 5000 : 3_000_000)];
          r.nextBytes(chunk);
          int off = chunk.length == 0 ? 0 : r.nextInt(chunk.length);
          out.write(chunk, off, chunk.length - off);
          expected.write(chunk, off, chunk.length - off);
        }
      }
    }
    assertArrayEquals(expected.toByteArray(), Files.readAllBytes(file));
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 4096, 1 << 20})
  void blockAlignedAndEmptyLengthsAreExact(int length) throws IOException {
    Path file = tmp.resolve("len-" + length);
    byte[] data = new byte[length];
    new Random(length).nextBytes(data);
    try (OutputStream out = UncachedFileOutput.create(file, 1 << 20, true)) {
      out.write(data);
    }
    assertArrayEquals(data, Files.readAllBytes(file));
    OutputStream closed = UncachedFileOutput.create(tmp.resolve("c-" + length), 4096, true);
    closed.close();
    closed.close();
    assertThrows(IOException.class, () -> closed.write(1));
  }
}
