package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.GgufTestModels.HEADS;
import static dev.compactor.core.gguf.GgufTestModels.HIDDEN;
import static dev.compactor.core.gguf.GgufTestModels.KV_HEADS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chunked, multi-threaded export writes exactly the bytes of the unchunked path: whole tensor
 * read to fp32, q/k permuted with {@link LlamaGgufExporter#permuteForRope}, quantized at once with
 * {@link GgmlQuantizer#quantize}. Chunks from one row (one head for q/k) up to whole tensors, one
 * to three threads, and a sharded BF16 safetensors checkpoint read by positional reads.
 */
class ChunkedExportTest {

  @TempDir Path dir;

  private static void assertSameAsUnchunked(Path gguf, TensorSource src) throws IOException {
    try (GgufReader r = GgufReader.open(gguf)) {
      for (GgufTensorInfo t : r.tensors()) {
        String hf = LlamaGgufExporterTest.hfName(t.name());
        float[] x = src.readFloats(hf);
        int cols = (int) t.rowLength();
        int rows = x.length / cols;
        if (t.name().contains("attn_q")) {
          x = LlamaGgufExporter.permuteForRope(x, rows, cols, HEADS);
        } else if (t.name().contains("attn_k")) {
          x = LlamaGgufExporter.permuteForRope(x, rows, cols, KV_HEADS);
        }
        byte[] expected = GgmlQuantizer.quantize(t.type(), x, rows, cols, null);
        assertArrayEquals(expected, r.readTensorBytes(t.name()), t.toString());
      }
    }
  }

  @Test
  void everyChunkSizeAndThreadCountGivesTheUnchunkedBytes() throws IOException {
    InMemoryTensorSource src = GgufTestModels.checkpoint(true, 7);
    byte[] first = null;
    for (LlamaFileType base : new LlamaFileType[] {LlamaFileType.Q8_0, LlamaFileType.Q4_K_M}) {
      for (long chunk : new long[] {1, 300, 5 * HIDDEN + 1, 1L << 22}) {
        for (int threads : new int[] {1, 3}) {
          Path out = dir.resolve(base + "-" + chunk + "-" + threads + ".gguf");
          LlamaGgufExporter.export(
              GgufTestModels.config(false),
              src,
              GgufTestModels.tokenizer(),
              LlamaGgufExporter.Options.of("m", base).withThreads(threads, chunk),
              out);
          assertSameAsUnchunked(out, src);
          if (base == LlamaFileType.Q8_0) {
            byte[] bytes = Files.readAllBytes(out);
            if (first == null) {
              first = bytes;
            } else {
              assertArrayEquals(first, bytes, "whole file for chunk " + chunk + ", " + threads);
            }
          }
        }
      }
    }
  }

  @Test
  void shardedBf16CheckpointStreamsThroughPositionalReads() throws IOException {
    InMemoryTensorSource mem = GgufTestModels.checkpoint(true, 8);
    Path model = dir.resolve("model");
    try (SafetensorsWriter w = new SafetensorsWriter(model, 200_000, Map.of())) {
      for (String name : mem.names()) {
        w.write(name, DType.BF16, mem.info(name).shape(), mem.get(name));
      }
    }
    Path out = dir.resolve("bf16.gguf");
    try (TensorSource src = Checkpoints.open(model)) {
      LlamaGgufExporter.Options o =
          new LlamaGgufExporter.Options("m", LlamaFileType.Q8_0, Map.of(), Map.of(), 1, 1000)
              .withThreads(2, 1000);
      LlamaGgufExporter.export(
          GgufTestModels.config(false), src, GgufTestModels.tokenizer(), o, out);
      assertSameAsUnchunked(out, src);
      try (GgufReader r = GgufReader.open(out)) {
        assertEquals(GgmlType.Q8_0, r.tensor("output.weight").type());
        assertEquals(GgmlType.F32, r.tensor("blk.1.ffn_norm.weight").type());
      }
    }
  }

  @Test
  void writerRefusesPartsBeyondTheDeclaredSize() throws IOException {
    try (GgufWriter w = GgufWriter.create(dir.resolve("p.gguf"))) {
      w.addTensor("t", new long[] {2, 32}, GgmlType.Q8_0);
      w.writeTensorPart("t", new byte[40], 0, 40);
      assertThrows(
          IllegalArgumentException.class, () -> w.writeTensorPart("t", new byte[40], 0, 40));
      assertThrows(IllegalArgumentException.class, () -> w.writeTensor("t", new byte[68]));
      w.writeTensorPart("t", new byte[28], 0, 28);
    }
    try (GgufReader r = GgufReader.open(dir.resolve("p.gguf"))) {
      assertEquals(68, r.readTensorBytes("t").length);
    }
  }

  @Test
  void oddHeadDimensionIsRefusedForPermutedTensors() throws IOException {
    ChunkedTensorQuantizer.Job j =
        new ChunkedTensorQuantizer.Job("a", "b", 6, 32, GgmlType.Q8_0, 2, null);
    try (ChunkedTensorQuantizer q =
            new ChunkedTensorQuantizer(GgufTestModels.checkpoint(true, 1), 1, 100);
        GgufWriter w = GgufWriter.create(dir.resolve("o.gguf"))) {
      assertThrows(IllegalArgumentException.class, () -> q.run(List.of(j), w));
    }
  }
}
