package dev.compactor.core.quant.export;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SparseBitmask.Structure;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.MagnitudePruner;
import dev.compactor.core.prune.NmPattern;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A 2:4-pruned model written as sparse-24-bitmask (and sparse-bitmask) reads back tensor for tensor
 * and logit for logit; what is not 2:4 is refused.
 */
class SparseCheckpointWriterTest {

  @TempDir Path dir;

  private Path pruned24(DType dtype) throws Exception {
    Path dense = dir.resolve("dense");
    try (Transformer t = Transformer.randomInit(TestModels.tinyLlama(2), 5, Device.cpu())) {
      TestModels.write(t, dense, dtype);
    }
    Path pruned = dir.resolve("pruned");
    new MagnitudePruner(PruningSpec.of(PruningSpec.Method.MAGNITUDE, new NmPattern(2, 4)))
        .prune(dense, pruned);
    return pruned;
  }

  private static long safetensorsBytes(Path d) throws Exception {
    long n = 0;
    try (var s = Files.list(d)) {
      for (Path p : s.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
        n += Files.size(p);
      }
    }
    return n;
  }

  private static float[] logits(Path model) throws Exception {
    try (Transformer t = Transformer.load(model, Device.cpu());
        NDManager m = NDManager.newBaseManager(Device.cpu())) {
      return t.logits(m, m.create(new int[] {1, 5, 9, 2, 30, 7}, new Shape(1, 6))).toFloatArray();
    }
  }

  @Test
  void twoFourCheckpointDecodesToThePrunedTensorsAndLogitsBitForBit() throws Exception {
    Path pruned = pruned24(DType.BF16);
    Path out = dir.resolve("sparse24");
    SparseCheckpointWriter.Result r = SparseCheckpointWriter.write(pruned, out, Structure.TWO_FOUR);
    assertEquals(2 * 7, r.compressedTensors());
    try (TensorSource dense = Checkpoints.open(pruned);
        TensorSource sparse = Checkpoints.open(out);
        TensorSource stored = Checkpoints.openStored(out)) {
      assertEquals(dense.names().size(), sparse.names().size());
      for (String name : dense.names()) {
        assertEquals(dense.info(name).dtype(), sparse.info(name).dtype(), name);
        assertArrayEquals(dense.info(name).shape(), sparse.info(name).shape(), name);
        assertEquals(TestModels.bytes(dense.raw(name)), TestModels.bytes(sparse.raw(name)), name);
      }
      String q = "model.layers.1.self_attn.q_proj";
      assertFalse(stored.contains(q + ".weight"));
      assertEquals(DType.BF16, stored.info(q + ".compressed").dtype());
      assertArrayEquals(new long[] {32, 16}, stored.info(q + ".compressed").shape());
      assertArrayEquals(new long[] {32, 4}, stored.info(q + ".bitmask").shape());
      assertEquals(DType.U8, stored.info(q + ".bitmask").dtype());
      assertArrayEquals(new long[] {2, 1}, stored.info(q + ".shape").shape());
      assertTrue(stored.contains("lm_head.weight") && stored.contains("model.norm.weight"));
    }
    JsonNode s =
        new ObjectMapper()
            .readTree(out.resolve("config.json").toFile())
            .path("quantization_config")
            .path("sparsity_config");
    assertEquals("sparse-24-bitmask", s.path("format").asText());
    assertEquals("2:4", s.path("sparsity_structure").asText());
    assertEquals("Linear", s.path("targets").get(0).asText());
    assertEquals("lm_head", s.path("ignore").get(0).asText());
    assertTrue(s.path("global_sparsity").asDouble() > 0.2, s.toString());
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    assertEquals(
        ModelDirectory.open(pruned).parameterCount(), ModelDirectory.open(out).parameterCount());
    assertArrayEquals(logits(pruned), logits(out));
    assertEquals(WeightSparsity.of(pruned), WeightSparsity.of(out));
    // bf16 linears: 2 of 4 values (16 bits each) + 4 mask bits per 4 weights = 9/16 of dense
    assertEquals(9.0 / 16, (double) r.compressedBytes() / r.denseBytes(), 0.01);
    assertTrue(safetensorsBytes(out) < safetensorsBytes(pruned));
  }

  @Test
  void unstructuredBitmaskRoundTripsAnyModelAndTwoFourRefusesADenseOne() throws Exception {
    Path dense = dir.resolve("dense");
    try (Transformer t = Transformer.randomInit(TestModels.tinyLlama(2), 6, Device.cpu())) {
      TestModels.write(t, dense, DType.F32);
    }
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> SparseCheckpointWriter.write(dense, dir.resolve("no"), Structure.TWO_FOUR));
    assertTrue(
        e.getMessage().contains("model.layers.0.self_attn.q_proj.weight is not 2:4"),
        e.getMessage());
    Path pruned = dir.resolve("pruned");
    new MagnitudePruner(PruningSpec.of(PruningSpec.Method.MAGNITUDE, 0.6)).prune(dense, pruned);
    Path out = dir.resolve("bitmask");
    SparseCheckpointWriter.Result r =
        SparseCheckpointWriter.write(pruned, out, Structure.UNSTRUCTURED);
    try (TensorSource a = Checkpoints.open(pruned);
        TensorSource b = Checkpoints.open(out)) {
      for (String name : a.names()) {
        assertEquals(TestModels.bytes(a.raw(name)), TestModels.bytes(b.raw(name)), name);
      }
    }
    assertEquals(
        "sparse-bitmask",
        new ObjectMapper()
            .readTree(out.resolve("config.json").toFile())
            .at("/quantization_config/sparsity_config/format")
            .asText());
    assertTrue(r.compressedBytes() < r.denseBytes());
    assertArrayEquals(logits(pruned), logits(out));
  }
}
