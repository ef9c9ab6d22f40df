package dev.compactor.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Smoke test: the synthetic checkpoint tool and the streaming GGUF bench on a 2-layer shape. */
class StreamingGgufBenchTest {

  static final SyntheticCheckpointTool.Shape SMALL =
      new SyntheticCheckpointTool.Shape(256, 2, 512, 4, 2, 512);

  @TempDir Path dir;

  @Test
  void toolWritesAValidShardedBf16Checkpoint() throws IOException {
    Path model = dir.resolve("m");
    long bytes = SyntheticCheckpointTool.write(model, SMALL, 300_000, 3);
    assertEquals(StreamingGgufBench.directorySize(model), bytes);
    try (TensorSource s = Checkpoints.open(model)) {
      assertEquals(1 + 2 * 9 + 2, s.names().size());
      assertEquals(DType.BF16, s.info("lm_head.weight").dtype());
      assertEquals(128, s.info("model.layers.1.self_attn.k_proj.weight").shape()[0]);
      float[] w = s.readFloats("model.layers.0.mlp.down_proj.weight");
      for (float v : w) {
        float a = Math.abs(v);
        assertTrue(a >= 0x1p-7f && a < 0x1p-3f, "weight " + v + " outside +-[2^-7, 2^-3)");
      }
      for (float v : s.readFloats("model.norm.weight")) {
        assertEquals(1f, v);
      }
    }
    try (var files = Files.list(model)) {
      assertTrue(files.filter(p -> p.toString().endsWith(".safetensors")).count() > 2);
    }
    assertEquals(2, ModelDirectory.open(model).configJson().path("num_key_value_heads").asInt());
    assertThrows(IOException.class, () -> SyntheticCheckpointTool.write(model, SMALL, 1 << 20, 3));
  }

  @Test
  void benchExportsInAChildJvmAndReportsRssAndBandwidth() throws Exception {
    Path model = dir.resolve("m");
    SyntheticCheckpointTool.write(model, SMALL, 300_000, 5);
    Path out = dir.resolve("m.gguf");
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream old = System.out;
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    try {
      StreamingGgufBench.main(
          new String[] {
            "--checkpoint",
            model.toString(),
            "--out",
            out.toString(),
            "--threads",
            "2",
            "--xmx",
            "256m",
            "--copy-mb",
            "4",
            "--chunk-values",
            "5000",
            "--keep"
          });
    } finally {
      System.setOut(old);
    }
    String report = captured.toString(StandardCharsets.UTF_8);
    old.print(report);
    assertTrue(report.contains("peak RSS (VmHWM)") && report.contains("PASS"), report);
    assertTrue(report.contains("memcpy bandwidth:") && report.contains("ratio:"), report);
    try (GgufReader r = GgufReader.open(out)) {
      assertEquals(2 + 2 * 9 + 1, r.tensors().size());
      for (GgufTensorInfo t : r.tensors()) {
        assertEquals(t.ggmlDims().length == 1 ? GgmlType.F32 : GgmlType.Q8_0, t.type(), t.name());
      }
      assertEquals(512L, r.require("llama.vocab_size").asLong());
    }
  }

  @Test
  void theStorageProbeReadsFilesThatEndOffABlock() throws IOException {
    Files.write(dir.resolve("a.safetensors"), new byte[3 * 4096 + 123]);
    Files.write(dir.resolve("b.safetensors"), new byte[4096 + 7]);
    double gbps = StreamingGgufBench.storageReadBandwidth(dir, 1L << 30);
    // -1 only where the file system refuses direct I/O (tmpfs); otherwise both files were read
    assertTrue(gbps > 0 || gbps == -1, "bandwidth " + gbps);
    if (!"tmpfs".equals(Files.getFileStore(dir).type())) {
      assertTrue(gbps > 0, "a file ending off a block must not end the probe: " + gbps);
    }
  }
}
