package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding and validating the weights of a directory: single, sharded, refused. */
class CheckpointsTest {

  @TempDir Path tmp;
  private Path dir;

  @BeforeEach
  void twoShards() throws IOException {
    dir = Files.createDirectory(tmp.resolve("model"));
    shard("s1.safetensors", "a", "b");
    shard("s2.safetensors", "c");
  }

  private void shard(String file, String... names) throws IOException {
    StringBuilder h = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
    float[] values = new float[names.length];
    for (int i = 0; i < names.length; i++) {
      h.append(",\"")
          .append(names[i])
          .append("\":{\"dtype\":\"F32\",\"shape\":[1],")
          .append("\"data_offsets\":[")
          .append(4 * i)
          .append(',')
          .append(4 * i + 4)
          .append("]}");
      values[i] = names[i].charAt(0);
    }
    StFiles.write(dir.resolve(file), h.append('}').toString(), StFiles.f32(values));
  }

  private void index(String weightMapJson) throws IOException {
    Files.writeString(
        dir.resolve("model.safetensors.index.json"),
        "{\"metadata\":{\"total_size\":12},\"weight_map\":" + weightMapJson + "}");
  }

  private CheckpointFormatException rejected(String... fragments) {
    CheckpointFormatException e =
        assertThrows(CheckpointFormatException.class, () -> Checkpoints.open(dir).close());
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    }
    return e;
  }

  @Test
  void shardedSetIsReadThroughTheIndex() throws IOException {
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}");
    try (TensorSource src = Checkpoints.open(dir)) {
      assertEquals(List.of("a", "b", "c"), src.names());
      assertArrayEquals(new float[] {'c'}, src.readFloats("c"));
      assertEquals(Map.of("format", "pt"), src.metadata());
      assertTrue(src.contains("b"));
      assertThrows(IllegalArgumentException.class, () -> src.info("zzz"));
    }
  }

  @Test
  void closingTheCompositeClosesEveryShard() throws IOException {
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}");
    TensorSource src = Checkpoints.open(dir);
    src.close();
    assertThrows(IllegalStateException.class, () -> src.raw("a"));
    assertThrows(IllegalStateException.class, () -> src.raw("c"));
  }

  @Test
  void indexEntriesMustBePlainFileNamesInsideTheDirectory() throws IOException {
    Files.copy(dir.resolve("s2.safetensors"), tmp.resolve("outside.safetensors"));
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"../outside.safetensors\"}");
    rejected("weight_map.c", "plain file name", "\"../outside.safetensors\"");
    index(
        "{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\""
            + tmp.resolve("outside.safetensors")
            + "\"}");
    rejected("plain file name");
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"..\"}");
    rejected("plain file name");
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"pytorch_model.bin\"}");
    rejected("pickle", "arbitrary code");
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.txt\"}");
    rejected("a *.safetensors file name");
  }

  @Test
  void shardLinksLeadingOutsideAreRefused() throws IOException {
    Path outside = Files.copy(dir.resolve("s2.safetensors"), tmp.resolve("outside.safetensors"));
    Files.delete(dir.resolve("s2.safetensors"));
    Files.createSymbolicLink(dir.resolve("s2.safetensors"), outside);
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}");
    rejected("expected a file inside", "found a link to");
  }

  @Test
  void indexMustMatchTheShards() throws IOException {
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s3.safetensors\"}");
    rejected("s3.safetensors", "found nothing");
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s1.safetensors\"}");
    rejected("weight_map.c", "no such tensor in that shard");
    index("{\"a\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}");
    rejected("no entry for 'b' which is in s1.safetensors");
    index("{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\",\"c\":\"s2.safetensors\"}");
    rejected("weight_map.b", "shard s2.safetensors", "found the tensor in s1.safetensors");
    shard("s3.safetensors", "a");
    index("{\"a\":\"s3.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}");
    rejected("weight_map.a", "each tensor in exactly one shard");
  }

  @Test
  void invalidShardIsReportedWithItsFile() throws IOException {
    Files.write(dir.resolve("s2.safetensors"), new byte[] {1, 2, 3});
    index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}");
    SafetensorsFormatException e =
        assertThrows(SafetensorsFormatException.class, () -> Checkpoints.open(dir));
    assertEquals("s2.safetensors", e.file().getFileName().toString());
  }

  @Test
  void indexJsonShape() throws IOException {
    Path idx = dir.resolve("model.safetensors.index.json");
    Files.writeString(idx, "[1]");
    rejected("index: expected a JSON object");
    Files.writeString(idx, "{\"weight_map\":");
    rejected("expected well-formed JSON");
    Files.writeString(idx, "{\"metadata\":{}}");
    rejected("weight_map: expected an object of tensor name to shard file name", "no such key");
    Files.writeString(idx, "{\"weight_map\":{\"a\":1}}");
    rejected("weight_map.a: expected a shard file name, found NUMBER");
    Files.writeString(idx, "{\"weight_map\":{}}");
    rejected("at least one tensor");
    Files.writeString(idx, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s2.safetensors\"}}");
    rejected("Duplicate field 'a'");
    Files.writeString(idx, "{\"metadata\":3,\"weight_map\":{\"a\":\"s1.safetensors\"}}");
    rejected("metadata: expected an object");
  }

  @Test
  void unindexedDirectories() throws IOException {
    rejected("exactly one *.safetensors file", "found 2", "s1.safetensors", "s2.safetensors");
    Files.delete(dir.resolve("s2.safetensors"));
    try (TensorSource src = Checkpoints.open(dir)) {
      assertEquals(List.of("a", "b"), src.names());
    }
    Files.move(dir.resolve("s1.safetensors"), dir.resolve("model.safetensors"));
    shard("other.safetensors", "x");
    try (TensorSource src = Checkpoints.open(dir)) {
      assertEquals(List.of("a", "b"), src.names(), "model.safetensors wins");
    }
    Files.delete(dir.resolve("model.safetensors"));
    Files.delete(dir.resolve("other.safetensors"));
    rejected("found no weight files");
  }

  @Test
  void pickleCheckpointsAreRefusedAndNeverRead() throws IOException {
    Files.delete(dir.resolve("s1.safetensors"));
    Files.delete(dir.resolve("s2.safetensors"));
    // Not even a valid pickle: if anything tried to read it, the error would be different.
    Files.write(dir.resolve("pytorch_model.bin"), "\u0080garbage".getBytes(StandardCharsets.UTF_8));
    CheckpointFormatException e =
        rejected("pytorch_model.bin", "arbitrary code", "never deserializes", "safetensors");
    assertTrue(e.getMessage().contains("save_pretrained"), e.getMessage());
    for (String name : List.of("model.pt", "model.pth", "model.ckpt", "model.pkl", "X.BIN")) {
      Path f = Files.writeString(tmp.resolve(name), "x");
      CheckpointFormatException direct =
          assertThrows(CheckpointFormatException.class, () -> Checkpoints.open(f));
      assertTrue(direct.getMessage().contains("arbitrary code"), name);
    }
  }
}
