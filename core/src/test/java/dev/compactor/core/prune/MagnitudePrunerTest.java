package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.PruningSpec.Granularity;
import dev.compactor.core.prune.PruningSpec.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MagnitudePrunerTest {

  @Test
  void prunesEveryDecoderLinearToExactSparsityAndCopiesTheRestByteForByte(@TempDir Path tmp)
      throws Exception {
    ModelConfig config = TestModels.tinyLlama(2);
    Path in;
    try (Transformer model = Transformer.randomInit(config, 11, Device.cpu())) {
      in = TestModels.write(model, tmp.resolve("in"), DType.BF16);
    }
    Path out = tmp.resolve("out");
    PruningReport report =
        new MagnitudePruner(PruningSpec.of(Method.MAGNITUDE, 0.5)).prune(in, out);

    assertEquals(14, report.tensors().size(), "7 linears x 2 layers");
    assertEquals(0.5, report.overallSparsity(), 1e-12);
    try (TensorSource a = Checkpoints.open(in);
        TensorSource b = Checkpoints.open(out)) {
      assertEquals(a.names().size(), b.names().size());
      for (String name : a.names()) {
        assertEquals(a.info(name).dtype(), b.info(name).dtype(), name);
        assertArrayEquals(a.info(name).shape(), b.info(name).shape(), name);
        if (name.matches("model\\.layers\\.\\d+\\.(self_attn|mlp)\\.\\w+_proj\\.weight")) {
          long[] shape = a.info(name).shape();
          float[] expected =
              referencePerRow(a.readFloats(name), (int) shape[0], (int) shape[1], 0.5);
          assertArrayEquals(expected, b.readFloats(name), 0f, name);
        } else {
          assertEquals(
              TestModels.bytes(a.raw(name)),
              TestModels.bytes(b.raw(name)),
              name + " must be copied unchanged");
        }
      }
    }
    for (PruningReport.TensorSparsity t : report.tensors()) {
      assertEquals(0.5, t.sparsity(), 0.0, t.name());
    }
    assertEquals(
        Files.readString(in.resolve("config.json")), Files.readString(out.resolve("config.json")));
    assertEquals(TestModels.TOKENIZER_JSON, Files.readString(out.resolve("tokenizer.json")));
    try (Transformer pruned = Transformer.load(config, Checkpoints.open(out), Device.cpu())) {
      assertEquals(config.numLayers(), pruned.config().numLayers());
    }
  }

  @Test
  void perTensorScopeAndOddSizesReachTheClosestCount(@TempDir Path tmp) throws Exception {
    ModelConfig config = TestModels.tinyLlama(1);
    Path in;
    try (Transformer model = Transformer.randomInit(config, 5, Device.cpu())) {
      in = TestModels.write(model, tmp.resolve("in"), DType.F32);
    }
    PruningSpec spec =
        new PruningSpec(
            Method.MAGNITUDE,
            0.3,
            Granularity.PER_TENSOR,
            EnumSet.of(PruningSpec.Linear.UP_PROJ, PruningSpec.Linear.DOWN_PROJ));
    PruningReport report = new MagnitudePruner(spec).prune(in, tmp.resolve("out"));
    assertEquals(2, report.tensors().size());
    for (PruningReport.TensorSparsity t : report.tensors()) {
      assertEquals(Math.round(0.3 * t.elements()), t.masked());
      assertEquals(t.masked(), t.zeros());
    }
    try (TensorSource a = Checkpoints.open(in);
        TensorSource b = Checkpoints.open(tmp.resolve("out"))) {
      String q = "model.layers.0.self_attn.q_proj.weight";
      assertEquals(
          TestModels.bytes(a.raw(q)), TestModels.bytes(b.raw(q)), "out of scope: untouched");
    }
  }

  @Test
  void refusesNonEmptyOutputAndModelsWithoutDecoderLinears(@TempDir Path tmp) throws Exception {
    Path in;
    try (Transformer model = Transformer.randomInit(TestModels.tinyLlama(1), 5, Device.cpu())) {
      in = TestModels.write(model, tmp.resolve("in"), DType.F32);
    }
    MagnitudePruner pruner = new MagnitudePruner(PruningSpec.of("magnitude", 0.5));
    // The stage entry never asks magnitude pruning for calibration text.
    PruningReport viaStage =
        Pruning.run(
            PruningSpec.of("magnitude", 0.5),
            in,
            tmp.resolve("stage"),
            () -> {
              throw new AssertionError("magnitude needs no calibration");
            },
            Device.cpu());
    assertEquals(7, viaStage.tensors().size());
    assertThrows(Exception.class, () -> pruner.prune(in, in));
    assertThrows(IllegalArgumentException.class, () -> PruningSpec.of("magnitude", 1.0));
    assertThrows(IllegalArgumentException.class, () -> PruningSpec.of("obs", 0.5));
    assertThrows(
        IllegalArgumentException.class, () -> new MagnitudePruner(PruningSpec.of("wanda", 0.5)));
    ModelConfig gpt2 =
        ModelConfig.fromJson(
            "{\"model_type\":\"gpt2\",\"vocab_size\":57,\"n_embd\":32,\"n_layer\":1,\"n_head\":4,"
                + "\"n_positions\":40}");
    Path g;
    try (Transformer model = Transformer.randomInit(gpt2, 5, Device.cpu())) {
      g = TestModels.write(model, tmp.resolve("gpt2"), DType.F32);
    }
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class, () -> pruner.prune(g, tmp.resolve("gout")));
    assertTrue(e.getMessage().contains("not supported yet"), e.getMessage());
  }

  /** Independent reference: per row, zero the k = round(s*cols) smallest |w| (stable order). */
  static float[] referencePerRow(float[] w, int rows, int cols, double s) {
    float[] out = w.clone();
    int k = (int) Math.round(s * cols);
    for (int r = 0; r < rows; r++) {
      List<Integer> idx = new ArrayList<>();
      for (int c = 0; c < cols; c++) {
        idx.add(c);
      }
      final int row = r;
      idx.sort((x, y) -> Float.compare(Math.abs(w[row * cols + x]), Math.abs(w[row * cols + y])));
      for (int i = 0; i < k; i++) {
        out[r * cols + idx.get(i)] = 0f;
      }
    }
    return out;
  }
}
