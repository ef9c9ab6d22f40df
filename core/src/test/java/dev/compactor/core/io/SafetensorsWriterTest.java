package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writer → reader round trips, single and sharded, checked with the validating reader. */
class SafetensorsWriterTest {

  @TempDir Path tmp;

  private static float[] gaussian(int n, long seed) {
    Random r = new Random(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * 3);
    }
    return v;
  }

  private static float[] expected(DType storeAs, float[] v) {
    float[] out = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] =
          switch (storeAs) {
            case F16 -> Fp16.toFloat(Fp16.fromFloat(v[i]));
            case BF16 -> Bf16.toFloat(Bf16.fromFloat(v[i]));
            default -> v[i];
          };
    }
    return out;
  }

  private static long headerLength(Path file) throws IOException {
    byte[] head = new byte[8];
    try (var in = Files.newInputStream(file)) {
      assertEquals(8, in.readNBytes(head, 0, 8));
    }
    return ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getLong();
  }

  @Test
  void singleFileRoundTripInEveryFloatStorageType() throws IOException {
    float[] a = gaussian(50_000, 1); // more than one conversion chunk
    float[] b = gaussian(12, 2);
    float[] c = gaussian(7, 3);
    try (SafetensorsWriter w = new SafetensorsWriter(tmp, Map.of("recipe", "wanda50"))) {
      w.write("a.f32", DType.F32, new long[] {250, 200}, a);
      w.write("b.f16", DType.F16, new long[] {3, 4}, b);
      w.write("c.bf16", DType.BF16, new long[] {7}, c);
      w.write("scalar", DType.F32, new long[] {}, new float[] {42f});
      assertEquals(50_000L * 4 + 24 + 14 + 4, w.totalBytes());
    }
    Path file = tmp.resolve("model.safetensors");
    assertEquals(0, (8 + headerLength(file)) % 8, "data section aligned to 8 bytes");
    try (Stream<Path> files = Files.list(tmp)) {
      assertEquals(List.of(file), files.toList(), "no temporary files left behind");
    }
    try (SafetensorsFile st = SafetensorsFile.open(file)) {
      assertEquals(List.of("a.f32", "b.f16", "c.bf16", "scalar"), st.names());
      assertEquals(Map.of("format", "pt", "recipe", "wanda50"), st.metadata());
      assertArrayEquals(new long[] {250, 200}, st.info("a.f32").shape());
      assertArrayEquals(a, st.readFloats("a.f32"));
      assertArrayEquals(expected(DType.F16, b), st.readFloats("b.f16"));
      assertArrayEquals(expected(DType.BF16, c), st.readFloats("c.bf16"));
      assertEquals(DType.BF16, st.info("c.bf16").dtype());
      assertArrayEquals(new float[] {42f}, st.readFloats("scalar"));
    }
  }

  @Test
  void shardsWhenLargeWithIndexAndMetadataInEveryShard() throws IOException {
    float[][] values = new float[5][];
    try (SafetensorsWriter w = new SafetensorsWriter(tmp, 1000, Map.of("job", "j1"))) {
      for (int i = 0; i < 4; i++) {
        values[i] = gaussian(100, 10 + i); // 400 bytes each: two per shard
        w.write("layer." + i, DType.F32, new long[] {10, 10}, values[i]);
      }
      values[4] = gaussian(600, 20); // 1200 bytes > max: a shard of its own
      w.write("big", DType.BF16, new long[] {600}, values[4]);
    }
    try (Stream<Path> files = Files.list(tmp)) {
      assertEquals(
          List.of(
              "model-00001-of-00003.safetensors",
              "model-00002-of-00003.safetensors",
              "model-00003-of-00003.safetensors",
              "model.safetensors.index.json"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    for (int i = 1; i <= 3; i++) {
      Path shard = tmp.resolve(String.format("model-%05d-of-00003.safetensors", i));
      try (SafetensorsFile st = SafetensorsFile.open(shard)) {
        assertEquals("j1", st.metadata().get("job"), "metadata in shard " + i);
        assertEquals(0, (8 + headerLength(shard)) % 8);
      }
    }
    assertFalse(Files.exists(tmp.resolve("model.safetensors")));
    JsonNode index =
        new ObjectMapper().readTree(tmp.resolve("model.safetensors.index.json").toFile());
    assertEquals(4 * 400 + 1200, index.get("metadata").get("total_size").asLong());
    assertEquals(
        "model-00001-of-00003.safetensors", index.get("weight_map").get("layer.1").asText());
    assertEquals(
        "model-00002-of-00003.safetensors", index.get("weight_map").get("layer.2").asText());
    assertEquals("model-00003-of-00003.safetensors", index.get("weight_map").get("big").asText());
    try (TensorSource src = Checkpoints.open(tmp)) {
      assertEquals(List.of("layer.0", "layer.1", "layer.2", "layer.3", "big"), src.names());
      for (int i = 0; i < 4; i++) {
        assertArrayEquals(values[i], src.readFloats("layer." + i));
      }
      assertArrayEquals(expected(DType.BF16, values[4]), src.readFloats("big"));
    }
  }

  @Test
  void rawWritesAndCopiesKeepBytesAndDtype() throws IOException {
    ByteBuffer ids = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
    ids.putLong(1).putLong(-2).putLong(Long.MAX_VALUE).flip();
    Path first = tmp.resolve("first");
    try (SafetensorsWriter w = new SafetensorsWriter(first, Map.of())) {
      w.writeRaw("ids", DType.I64, new long[] {3}, ids);
      w.write("w", DType.F16, new long[] {2}, new float[] {1f, -0.5f});
    }
    assertEquals(0, ids.position(), "caller's buffer untouched");
    Path second = tmp.resolve("second");
    try (TensorSource src = Checkpoints.open(first);
        SafetensorsWriter w = new SafetensorsWriter(second, Map.of())) {
      for (String name : src.names()) {
        w.copy(src, name);
      }
    }
    assertArrayEquals(
        Files.readAllBytes(first.resolve("model.safetensors")),
        Files.readAllBytes(second.resolve("model.safetensors")));
    try (TensorSource src = Checkpoints.open(second)) {
      assertEquals(Long.MAX_VALUE, src.raw("ids").getLong(16));
      assertArrayEquals(new float[] {1f, -0.5f}, src.readFloats("w"));
    }
  }

  @Test
  void aFailedWriteDiscardsThePartialOutputOnClose() throws IOException {
    SafetensorsWriter w = new SafetensorsWriter(tmp, 100, Map.of());
    w.write("a", DType.F32, new long[] {30}, new float[30]); // 120 bytes: shard 1 is full
    w.write("b", DType.F32, new long[] {2}, new float[2]);
    Thread.currentThread().interrupt(); // the next channel write fails (ClosedByInterrupt)
    try {
      assertThrows(IOException.class, () -> w.write("c", DType.F32, new long[] {2}, new float[2]));
    } finally {
      Thread.interrupted();
    }
    IllegalStateException again =
        assertThrows(
            IllegalStateException.class,
            () -> w.write("d", DType.F32, new long[] {1}, new float[1]));
    assertTrue(again.getMessage().contains("earlier write"), again.getMessage());
    w.close();
    try (Stream<Path> files = Files.list(tmp)) {
      assertEquals(List.of(), files.toList(), "no shard, index or temporary file is left");
    }
  }

  @Test
  void emptyWriterProducesAValidEmptyFile() throws IOException {
    new SafetensorsWriter(tmp, Map.of()).close();
    try (SafetensorsFile st = SafetensorsFile.open(tmp.resolve("model.safetensors"))) {
      assertTrue(st.names().isEmpty());
    }
  }

  @Test
  void rejectsMisuse() throws IOException {
    try (SafetensorsWriter w = new SafetensorsWriter(tmp, Map.of())) {
      w.write("a", DType.F32, new long[] {1}, new float[] {1});
      IllegalArgumentException dup =
          assertThrows(
              IllegalArgumentException.class,
              () -> w.write("a", DType.F32, new long[] {1}, new float[] {1}));
      assertTrue(dup.getMessage().contains("already written"));
      assertThrows(
          IllegalArgumentException.class,
          () -> w.write("b", DType.F32, new long[] {2}, new float[] {1}));
      assertThrows(
          IllegalArgumentException.class,
          () -> w.write("c", DType.I8, new long[] {1}, new float[] {1}));
      assertThrows(
          IllegalArgumentException.class,
          () -> w.writeRaw("d", DType.F32, new long[] {2}, ByteBuffer.allocate(4)));
      assertThrows(
          IllegalArgumentException.class,
          () -> w.write("__metadata__", DType.F32, new long[] {1}, new float[] {1}));
      assertThrows(
          IllegalArgumentException.class,
          () -> w.write("e", DType.F32, new long[] {-1}, new float[] {}));
      // A rejected name is not reserved: it can still be written correctly.
      w.write("b", DType.F32, new long[] {1}, new float[] {2});
    }
    try (SafetensorsFile st = SafetensorsFile.open(tmp.resolve("model.safetensors"))) {
      assertEquals(List.of("a", "b"), st.names());
    }
    IOException exists =
        assertThrows(IOException.class, () -> new SafetensorsWriter(tmp, Map.of()));
    assertTrue(exists.getMessage().contains("already exists"));
  }

  /** The tensors of the plan tests: odd sizes, a zero-length one, one larger than a shard. */
  private static final List<SafetensorsWriter.Planned> PLAN =
      List.of(
          new SafetensorsWriter.Planned("emb", DType.BF16, new long[] {7, 5}),
          new SafetensorsWriter.Planned("a", DType.F32, new long[] {10}),
          new SafetensorsWriter.Planned("empty", DType.F16, new long[] {0, 3}),
          new SafetensorsWriter.Planned("big", DType.F32, new long[] {40}),
          new SafetensorsWriter.Planned("b", DType.F16, new long[] {3, 3}),
          new SafetensorsWriter.Planned("c", DType.F32, new long[] {1}));

  private static void writeAll(SafetensorsWriter w) throws IOException {
    long seed = 0;
    for (SafetensorsWriter.Planned p : PLAN) {
      long n = 1;
      for (long d : p.shape()) {
        n *= d;
      }
      w.write(p.name(), p.dtype(), p.shape(), gaussian((int) n, ++seed));
    }
  }

  private static List<String> listing(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(f -> f.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aPlannedWriterWritesTheSameBytesInOnePass() throws IOException {
    for (long max : new long[] {Long.MAX_VALUE, 100, 1}) {
      Path plain = tmp.resolve("plain-" + max);
      Path planned = tmp.resolve("planned-" + max);
      try (SafetensorsWriter w = new SafetensorsWriter(plain, max, Map.of("k", "v"))) {
        writeAll(w);
      }
      try (SafetensorsWriter w = SafetensorsWriter.planned(planned, max, Map.of("k", "v"), PLAN)) {
        writeAll(w);
      }
      List<String> files = listing(plain);
      assertEquals(files, listing(planned), "max " + max);
      assertTrue(files.size() > (max == Long.MAX_VALUE ? 0 : 2), files.toString());
      for (String f : files) {
        assertArrayEquals(
            Files.readAllBytes(plain.resolve(f)),
            Files.readAllBytes(planned.resolve(f)),
            f + " with max " + max);
      }
    }
  }

  @Test
  void aPlannedWriterRefusesOtherTensorsAndAnUnfinishedPlan() throws IOException {
    Path wrongOrder = tmp.resolve("wrong");
    SafetensorsWriter w = SafetensorsWriter.planned(wrongOrder, 100, Map.of(), PLAN);
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> w.write("a", DType.F32, new long[] {10}, new float[10]));
    assertTrue(e.getMessage().contains("expected 'emb'"), e.getMessage());
    w.close();
    assertEquals(List.of(), listing(wrongOrder));

    Path unfinished = tmp.resolve("unfinished");
    SafetensorsWriter u = SafetensorsWriter.planned(unfinished, 100, Map.of(), PLAN);
    u.write("emb", DType.BF16, new long[] {7, 5}, new float[35]);
    IllegalStateException missing = assertThrows(IllegalStateException.class, u::close);
    assertTrue(missing.getMessage().contains("missing 'a'"), missing.getMessage());
    assertEquals(List.of(), listing(unfinished));
  }
}
