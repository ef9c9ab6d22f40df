package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GGUF v3 byte layout, round trips of every value type, and typed errors on bad files. */
class GgufWriterReaderTest {

  @TempDir Path dir;

  @Test
  void headerBytesFollowTheSpec() throws IOException {
    Path p = dir.resolve("h.gguf");
    try (GgufWriter w = GgufWriter.create(p)) {
      w.put("a", GgufValue.u32(7));
      w.addTensor("t", new long[] {2, 3}, GgmlType.F32);
      w.writeTensor("t", new byte[24]);
    }
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals('G', b.get(0));
    assertEquals('G', b.get(1));
    assertEquals('U', b.get(2));
    assertEquals('F', b.get(3));
    assertEquals(3, b.getInt(4));
    assertEquals(1L, b.getLong(8)); // tensors
    assertEquals(1L, b.getLong(16)); // kv pairs
    assertEquals(1L, b.getLong(24)); // key length
    assertEquals('a', b.get(32));
    assertEquals(4, b.getInt(33)); // UINT32
    assertEquals(7, b.getInt(37));
    assertEquals(1L, b.getLong(41)); // tensor name length
    assertEquals('t', b.get(49));
    assertEquals(2, b.getInt(50)); // n_dims
    assertEquals(3L, b.getLong(54)); // ne[0] = row length (reversed shape)
    assertEquals(2L, b.getLong(62));
    assertEquals(0, b.getInt(70)); // F32
    assertEquals(0L, b.getLong(74)); // offset
    // infos end at 82, data starts at the next multiple of 32
    assertEquals(96 + 24 + 8, b.capacity()); // tensor data padded to 32 as well
  }

  @Test
  void everyValueTypeRoundTrips() throws IOException {
    Path p = dir.resolve("v.gguf");
    try (GgufWriter w = GgufWriter.create(p)) {
      w.put("u8", GgufValue.u8(250));
      w.put("i8", new GgufValue(GgufValueType.INT8, null, -5));
      w.put("u16", new GgufValue(GgufValueType.UINT16, null, 65000));
      w.put("i16", new GgufValue(GgufValueType.INT16, null, -30000));
      w.put("u32", GgufValue.u32(4_000_000_000L));
      w.put("i32", GgufValue.i32(-123456));
      w.put("u64", GgufValue.u64(1L << 40));
      w.put("i64", GgufValue.i64(-(1L << 40)));
      w.put("f32", GgufValue.f32(1.5e-5f));
      w.put("f64", GgufValue.f64(Math.PI));
      w.put("bool", GgufValue.bool(true));
      w.put("str", GgufValue.string("héllo ✓"));
      w.put("strs", GgufValue.stringArray(List.of("a", "", "Ġthe")));
      w.put("ints", GgufValue.i32Array(new int[] {1, -2, 3}));
      w.put("floats", GgufValue.f32Array(new float[] {0.5f, -1f}));
    }
    try (GgufReader r = GgufReader.open(p)) {
      assertEquals(3, r.version());
      assertEquals(250L, r.require("u8").asLong());
      assertEquals(-5L, r.require("i8").asLong());
      assertEquals(65000L, r.require("u16").asLong());
      assertEquals(-30000L, r.require("i16").asLong());
      assertEquals(4_000_000_000L, r.require("u32").asLong());
      assertEquals(-123456L, r.require("i32").asLong());
      assertEquals(1L << 40, r.require("u64").asLong());
      assertEquals(-(1L << 40), r.require("i64").asLong());
      assertEquals(1.5e-5f, (float) r.require("f32").asDouble());
      assertEquals(Math.PI, r.require("f64").asDouble());
      assertEquals(true, r.require("bool").value());
      assertEquals("héllo ✓", r.require("str").asString());
      assertEquals(List.of("a", "", "Ġthe"), r.require("strs").asList());
      assertEquals(List.of(1, -2, 3), r.require("ints").asList());
      assertEquals(List.of(0.5f, -1f), r.require("floats").asList());
      assertEquals(15, r.metadata().size());
    }
  }

  @Test
  void tensorsOfEveryTypeRoundTripWithAlignment() throws IOException {
    Path p = dir.resolve("t.gguf");
    float[] x = BlockFormatTest.gaussian(4 * 512, 5);
    GgmlType[] types = GgmlType.values();
    try (GgufWriter w = GgufWriter.create(p)) {
      w.put(GgufWriter.ALIGNMENT_KEY, GgufValue.u32(64));
      for (GgmlType t : types) {
        w.addTensor("w." + t, new long[] {4, 512}, t);
      }
      w.addTensor("bias", new long[] {3}, GgmlType.F32);
      for (GgmlType t : types) {
        w.writeTensor("w." + t, GgmlQuantizer.quantize(t, x, 4, 512, null));
      }
      w.writeTensor(
          "bias", GgmlQuantizer.quantize(GgmlType.F32, new float[] {1, 2, 3}, 1, 3, null));
    }
    try (GgufReader r = GgufReader.open(p)) {
      assertEquals(64, r.alignment());
      assertEquals(0, r.dataOffset() % 64);
      for (GgmlType t : types) {
        GgufTensorInfo info = r.tensor("w." + t);
        assertEquals(t, info.type());
        assertArrayEquals(new long[] {4, 512}, info.shape());
        assertEquals(0, info.offset() % 64);
        float[] expect =
            GgmlQuantizer.dequantize(t, GgmlQuantizer.quantize(t, x, 4, 512, null), x.length);
        assertArrayEquals(expect, r.readTensorFloats("w." + t), t.name());
      }
      assertArrayEquals(new float[] {1, 2, 3}, r.readTensorFloats("bias"));
    }
  }

  @Test
  void writerRefusesMisuse() throws IOException {
    try (GgufWriter w = GgufWriter.create(dir.resolve("m.gguf"))) {
      assertThrows(
          IllegalArgumentException.class,
          () -> w.addTensor("x", new long[] {4, 100}, GgmlType.Q4_K));
      assertThrows(
          IllegalArgumentException.class, () -> w.put(GgufWriter.ALIGNMENT_KEY, GgufValue.u32(48)));
      w.addTensor("a", new long[] {32}, GgmlType.Q8_0);
      assertThrows(IllegalArgumentException.class, () -> w.writeTensor("a", new byte[33]));
      assertThrows(IllegalStateException.class, () -> w.writeTensor("b", new byte[34]));
      w.writeTensor("a", new byte[34]);
    }
    GgufWriter incomplete = GgufWriter.create(dir.resolve("i.gguf"));
    incomplete.addTensor("a", new long[] {32}, GgmlType.F32);
    assertThrows(IllegalStateException.class, incomplete::close);
  }

  @Test
  void readerGivesTypedErrorsOnBadFiles() throws IOException {
    Path good = dir.resolve("g.gguf");
    try (GgufWriter w = GgufWriter.create(good)) {
      w.put("k", GgufValue.string("v"));
      w.addTensor("t", new long[] {64}, GgmlType.Q8_0);
      w.writeTensor("t", new byte[68]);
    }
    byte[] bytes = Files.readAllBytes(good);

    assertBad(patch(bytes, 0, new byte[] {'G', 'G', 'M', 'L'}), "magic");
    assertBad(patch(bytes, 4, new byte[] {9, 0, 0, 0}), "version");
    assertBad(java.util.Arrays.copyOf(bytes, 30), "impossible for a file of 30 bytes");
    assertBad(java.util.Arrays.copyOf(bytes, 40), "file ends");
    assertBad(java.util.Arrays.copyOf(bytes, bytes.length - 40), "truncated");
    // value type of "k" (at 24 + 8 + 1) set to 99
    assertBad(patch(bytes, 33, new byte[] {99, 0, 0, 0}), "unknown value type");
    // tensor ggml type (after name 't' and 1 dim): 37 + 8 + 1 = 46 is the string value end
    int tensorType = 24 + 9 + 4 + 9 + 9 + 4 + 8;
    assertBad(patch(bytes, tensorType, new byte[] {77, 0, 0, 0}), "ggml type 77");
    assertBad(patch(bytes, tensorType + 4, new byte[] {3, 0, 0, 0, 0, 0, 0, 0}), "offset");
    assertBad(
        patch(bytes, 8, new byte[] {(byte) 0xff, (byte) 0xff, 0, 0, 0, 0, 0, 0}), "tensor_count");
  }

  private void assertBad(byte[] content, String messagePart) throws IOException {
    Path p = Files.write(dir.resolve("bad.gguf"), content);
    GgufFormatException e = assertThrows(GgufFormatException.class, () -> GgufReader.open(p));
    assertTrue(e.getMessage().contains(messagePart), e.getMessage());
  }

  private static byte[] patch(byte[] b, int at, byte[] with) {
    byte[] c = b.clone();
    System.arraycopy(with, 0, c, at, with.length);
    return c;
  }
}
