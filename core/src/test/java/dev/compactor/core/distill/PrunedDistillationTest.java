package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.TestModels;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Distilling a pruned model keeps it pruned: composition is the product. */
class PrunedDistillationTest {

  @Test
  void distillingAWandaPrunedModelKeepsEveryZeroAndTheStorageType(@TempDir Path tmp)
      throws Exception {
    Path pruned = prunedBf16(tmp);
    WeightSparsity before = WeightSparsity.of(pruned);
    assertTrue(before.fraction() >= 0.29, "pruned to " + before.fraction());

    List<int[]> windows = DistillerTest.markovWindows(12, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 6, 4, 5e-3f, 1, 0.01f, 1f, 0, 5L);
    Path out = tmp.resolve("distilled");
    new Distiller(spec, new LocalCheckpointSink(tmp.resolve("ckpt"), 1))
        .distillDirectory(pruned, tmp.resolve("work"), out, 2, windows, DType.BF16, Device.cpu());

    assertSameZeros(pruned, out);
    assertEquals(before, WeightSparsity.of(out));
    try (TensorSource s = ModelDirectory.open(out).weights()) {
      for (String name : s.names()) {
        assertEquals(DType.BF16, s.info(name).dtype(), name);
      }
    }
  }

  @Test
  void aResumedRunKeepsTheZerosToo(@TempDir Path tmp) throws Exception {
    Path pruned = prunedBf16(tmp);
    List<int[]> windows = DistillerTest.markovWindows(12, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 6, 4, 5e-3f, 1, 0f, 1f, 3, 5L);
    LocalCheckpointSink sink = new LocalCheckpointSink(tmp.resolve("ckpt"), 2);
    CheckpointSink dying =
        new CheckpointSink() {
          @Override
          public void save(long step, Path directory) throws IOException {
            sink.save(step, directory);
            throw new IllegalStateException("worker killed after step " + step);
          }

          @Override
          public Optional<Checkpoint> latest() throws IOException {
            return sink.latest();
          }
        };
    try (Transformer teacher = Transformer.load(pruned, Device.cpu());
        Transformer first = Transformer.load(pruned, Device.cpu())) {
      assertThrows(
          IllegalStateException.class,
          () -> new Distiller(spec, dying).distill(teacher, first, windows));
    }
    Path out = tmp.resolve("resumed");
    try (Transformer teacher = Transformer.load(pruned, Device.cpu());
        Transformer student = Transformer.load(pruned, Device.cpu())) {
      DistillationReport r = new Distiller(spec, sink).distill(teacher, student, windows);
      assertEquals(3, r.resumedFromStep());
      student.save(out, DType.F32, java.util.Map.of());
    }
    assertSameZeros(pruned, out);
  }

  private static Path prunedBf16(Path tmp) throws IOException {
    Path dense;
    try (Transformer m = Transformer.randomInit(TestModels.tinyLlama(2), 9, Device.cpu())) {
      dense = TestModels.write(m, tmp.resolve("dense"), DType.BF16);
    }
    List<int[]> calibration = DistillerTest.markovWindows(8, 16, 3);
    Path pruned = tmp.resolve("pruned");
    Pruning.run(
        PruningSpec.of(PruningSpec.Method.WANDA, 0.3),
        dense,
        pruned,
        () -> calibration,
        Device.cpu());
    return pruned;
  }

  /**
   * Every decoder linear of {@code out} is 0.0 exactly where {@code in}'s is and nowhere else, and
   * training moved some of the other weights.
   */
  static void assertSameZeros(Path in, Path out) throws IOException {
    try (TensorSource a = Checkpoints.open(in);
        TensorSource b = Checkpoints.open(out)) {
      int checked = 0;
      long changed = 0;
      for (String name : a.names()) {
        if (!LayerwiseQuantizer.isDecoderLinear(name)) {
          continue;
        }
        float[] x = a.readFloats(name);
        float[] y = b.readFloats(name);
        int moved = 0;
        for (int i = 0; i < x.length; i++) {
          if ((x[i] == 0f) != (y[i] == 0f)) {
            moved++;
          }
          if (x[i] != y[i]) {
            changed++;
          }
        }
        assertEquals(0, moved, name + ": zero positions changed");
        checked++;
      }
      assertEquals(14, checked);
      assertTrue(changed > 0, "training moved no weight");
    }
  }
}
