package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {

  @TempDir Path tmp;

  private static final String TWO_TENSORS =
      "{\"__metadata__\":{\"format\":\"pt\"},"
          + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
          + "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}";

  private static byte[] twoTensorData() {
    ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort((short) 0x3f80)
        .putShort((short) 0xc000)
        .putShort((short) 0x4049)
        .putShort((short) 0);
    b.putFloat(1.5f).putFloat(-2.25f);
    return b.array();
  }

  @Test
  void readsTensorsInFileOrderWithMetadata() throws IOException {
    Path f = StFiles.write(tmp.resolve("m.safetensors"), TWO_TENSORS, twoTensorData());
    try (SafetensorsFile st = SafetensorsFile.open(f)) {
      assertEquals(List.of("a", "b"), st.names());
      assertEquals(Map.of("format", "pt"), st.metadata());
      TensorInfo a = st.info("a");
      assertEquals(DType.BF16, a.dtype());
      assertArrayEquals(new long[] {2, 2}, a.shape());
      assertArrayEquals(new float[] {1f, -2f, 3.140625f, 0f}, st.readFloats("a"));
      assertArrayEquals(new float[] {1.5f, -2.25f}, st.readFloats("b"));
      ByteBuffer raw = st.raw("b");
      assertTrue(raw.isReadOnly());
      assertEquals(8, raw.remaining());
      assertEquals(1.5f, raw.getFloat(0));
      assertThrows(IllegalArgumentException.class, () -> st.info("missing"));
    }
  }

  @Test
  void zeroSizedAndScalarTensors() throws IOException {
    String h =
        "{\"e\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
            + "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
    Path f = StFiles.write(tmp.resolve("z.safetensors"), h, StFiles.f32(7f));
    try (SafetensorsFile st = SafetensorsFile.open(f)) {
      assertEquals(0, st.readFloats("e").length);
      assertArrayEquals(new float[] {7f}, st.readFloats("s"));
    }
  }

  @Test
  void filesBeyond2GiBAreMappedPerTensorAndHugeTensorsAreRefusedClearly() throws IOException {
    long big = 1L << 31;
    String h =
        "{\"big\":{\"dtype\":\"U8\",\"shape\":["
            + big
            + "],\"data_offsets\":[0,"
            + big
            + "]},"
            + "\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":["
            + big
            + ","
            + (big + 8)
            + "]}}";
    byte[] head = StFiles.bytes(h, new byte[0]);
    Path f = tmp.resolve("sparse.safetensors");
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.write(head);
      raf.seek(head.length + big); // the 2 GiB in between stay a hole: no disk used
      raf.write(StFiles.f32(0.5f, -4f));
    }
    try (SafetensorsFile st = SafetensorsFile.open(f)) {
      assertArrayEquals(new float[] {0.5f, -4f}, st.readFloats("tail"));
      UnsupportedOperationException e =
          assertThrows(UnsupportedOperationException.class, () -> st.raw("big"));
      assertTrue(e.getMessage().startsWith("not supported yet"), e.getMessage());
      assertTrue(e.getMessage().contains("2147483648 bytes"), e.getMessage());
    }
  }

  @Test
  void integerTensorsAreReadableRawButNotAsFloats() throws IOException {
    String h = "{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}";
    byte[] data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(42).array();
    Path f = StFiles.write(tmp.resolve("i.safetensors"), h, data);
    try (SafetensorsFile st = SafetensorsFile.open(f)) {
      assertEquals(42L, st.raw("ids").getLong(0));
      CheckpointFormatException e =
          assertThrows(CheckpointFormatException.class, () -> st.readFloats("ids"));
      assertTrue(e.getMessage().contains("found I64"), e.getMessage());
    }
  }
}
