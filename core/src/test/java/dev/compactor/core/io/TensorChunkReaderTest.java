package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Partial positional reads against whole-tensor reads of the same files. */
class TensorChunkReaderTest {

  @TempDir Path dir;

  private Path writeSharded() throws IOException {
    Random r = new Random(11);
    Path out = dir.resolve("m");
    try (SafetensorsWriter w = new SafetensorsWriter(out, 4000, Map.of())) {
      w.write("a", DType.BF16, new long[] {37, 29}, values(r, 37 * 29));
      w.write("b", DType.F16, new long[] {1001}, values(r, 1001));
      w.write("c", DType.F32, new long[] {13, 7}, values(r, 91));
      w.write("d", DType.BF16, new long[] {3000}, values(r, 3000));
    }
    return out;
  }

  private static float[] values(Random r, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) r.nextGaussian();
    }
    return v;
  }

  @Test
  void readRawMatchesTheMappedBytesInEveryShard() throws IOException {
    try (TensorSource s = Checkpoints.open(writeSharded())) {
      for (String name : s.names()) {
        ByteBuffer mapped = s.raw(name);
        int len = mapped.remaining();
        for (int off : new int[] {0, 1, len / 3, len - 1}) {
          ByteBuffer got = ByteBuffer.allocateDirect(len - off);
          s.readRaw(name, off, got);
          assertEquals(0, got.remaining());
          got.flip();
          assertEquals(mapped.duplicate().position(off), got, name + " from " + off);
        }
      }
    }
  }

  @Test
  void readRawRefusesRangesOutsideTheTensor() throws IOException {
    try (TensorSource s = Checkpoints.open(writeSharded())) {
      long len = s.info("c").byteLength();
      assertThrows(
          IllegalArgumentException.class, () -> s.readRaw("c", len - 3, ByteBuffer.allocate(4)));
      assertThrows(
          IllegalArgumentException.class, () -> s.readRaw("c", -1, ByteBuffer.allocate(1)));
      assertThrows(
          IllegalArgumentException.class, () -> s.readRaw("zz", 0, ByteBuffer.allocate(1)));
    }
  }

  @Test
  void chunksWidenExactlyLikeWholeTensorReads() throws IOException {
    try (TensorSource s = Checkpoints.open(writeSharded())) {
      // A 10-byte scratch forces many reads per call, including odd element counts per read.
      for (TensorChunkReader reader :
          new TensorChunkReader[] {new TensorChunkReader(10), new TensorChunkReader()}) {
        for (String name : s.names()) {
          float[] whole = s.readFloats(name);
          float[] got = new float[whole.length + 5];
          int step = 17;
          for (int first = 0; first < whole.length; first += step) {
            int n = Math.min(step, whole.length - first);
            reader.read(s, name, first, got, first + 5, n);
          }
          assertArrayEquals(whole, Arrays.copyOfRange(got, 5, got.length), name);
        }
      }
    }
  }

  @Test
  void f64IsNarrowedAndRangesAreChecked() throws IOException {
    double[] d = {1.5, -2.25, 1e-3, 7};
    ByteBuffer data = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : d) {
      data.putDouble(v);
    }
    data.flip();
    try (SafetensorsWriter w = new SafetensorsWriter(dir.resolve("x"), Map.of())) {
      w.writeRaw("t", DType.F64, new long[] {2, 2}, data);
    }
    try (TensorSource s = Checkpoints.open(dir.resolve("x"))) {
      float[] got = new float[3];
      new TensorChunkReader(8).read(s, "t", 1, got, 0, 3);
      assertArrayEquals(new float[] {-2.25f, 1e-3f, 7f}, got);
      assertThrows(
          IllegalArgumentException.class,
          () -> new TensorChunkReader().read(s, "t", 2, new float[3], 0, 3));
    }
  }

  @Test
  void integerTensorsAreRefused() throws IOException {
    try (SafetensorsWriter w = new SafetensorsWriter(dir.resolve("i"), Map.of())) {
      w.writeRaw("ids", DType.I32, new long[] {2}, ByteBuffer.allocate(8));
    }
    try (TensorSource s = Checkpoints.open(dir.resolve("i"))) {
      CheckpointFormatException e =
          assertThrows(
              CheckpointFormatException.class,
              () -> new TensorChunkReader().read(s, "ids", 0, new float[2], 0, 2));
      assertEquals(true, e.getMessage().contains("found I32"), e.getMessage());
    }
  }

  @Test
  void decodeStartsAtTheBufferPositionAndChecksSizes() {
    ByteBuffer b = ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort(0, (short) 0x7777)
        .putShort(2, Bf16.fromFloat(1.5f))
        .putShort(4, Bf16.fromFloat(-2f));
    b.position(2);
    float[] got = new float[3];
    TensorChunkReader r = new TensorChunkReader();
    r.decode(DType.BF16, b, got, 1, 2);
    assertArrayEquals(new float[] {0, 1.5f, -2f}, got);
    assertEquals(2, b.position());
    assertThrows(IllegalArgumentException.class, () -> r.decode(DType.BF16, b, got, 0, 5));
    assertThrows(IllegalArgumentException.class, () -> r.decode(DType.BF16, b, got, 2, 2));
    assertThrows(IllegalArgumentException.class, () -> r.decode(DType.I32, b, got, 0, 1));
  }
}
