package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufToHfTest {

  @TempDir Path dir;

  @Test
  void unpermuteInvertsTheExportersRopePermutationExactly() {
    Random r = new Random(5);
    for (int[] c : new int[][] {{8, 3, 2}, {32, 5, 4}, {16, 7, 1}, {24, 2, 3}}) {
      float[] w = new float[c[0] * c[1]];
      for (int i = 0; i < w.length; i++) {
        w[i] = r.nextFloat();
      }
      float[] p = LlamaGgufExporter.permuteForRope(w, c[0], c[1], c[2]);
      assertArrayEquals(w, GgufToHf.unpermuteForRope(p, c[0], c[1], c[2]));
    }
    // a hand-checked case: 1 head of 4 rows [a b | c d] is stored interleaved as [a c b d]
    float[] stored = {0, 2, 1, 3};
    assertArrayEquals(new float[] {0, 1, 2, 3}, GgufToHf.unpermuteForRope(stored, 4, 1, 1));
    assertThrows(IllegalArgumentException.class, () -> GgufToHf.unpermuteForRope(w(6), 6, 1, 2));
  }

  private static float[] w(int n) {
    return new float[n];
  }

  @Test
  void anF32GgufConvertsBackToTheIdenticalCheckpoint() throws Exception {
    Path model = TableTestModels.write(dir.resolve("m"), TableTestModels.CONFIG, 11);
    Path gguf = dir.resolve("m.gguf");
    GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
    Path back = dir.resolve("back");
    GgufToHf.Result r = GgufToHf.convert(gguf, model, back);
    assertEquals(GgmlType.F32, r.tensorTypes().get("blk.0.attn_q.weight"));
    try (TensorSource a = Checkpoints.open(model);
        TensorSource b = Checkpoints.open(back)) {
      assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()));
      for (String n : a.names()) {
        assertArrayEquals(a.info(n).shape(), b.info(n).shape(), n);
        assertArrayEquals(a.readFloats(n), b.readFloats(n), n);
      }
    }
  }

  @Test
  void aQuantizedGgufConvertsBackCloseToTheOriginalRowForRow() throws Exception {
    Path model = TableTestModels.write(dir.resolve("m"), TableTestModels.CONFIG, 12);
    for (LlamaFileType t : new LlamaFileType[] {LlamaFileType.Q8_0, LlamaFileType.Q4_K_M}) {
      Path gguf = dir.resolve(t + ".gguf");
      GgufExport.export(model, t, Map.of(), gguf);
      Path back = dir.resolve("back-" + t);
      GgufToHf.Result r = GgufToHf.convert(gguf, model, back);
      assertEquals(t.defaultType(), r.tensorTypes().get("blk.1.attn_k.weight"));
      double ceiling = t == LlamaFileType.Q8_0 ? 0.01 : 0.12;
      try (TensorSource a = Checkpoints.open(model);
          TensorSource b = Checkpoints.open(back)) {
        for (String n : a.names()) {
          float[] x = a.readFloats(n);
          float[] y = b.readFloats(n);
          double err = 0;
          double norm = 0;
          for (int i = 0; i < x.length; i++) {
            err += (x[i] - y[i]) * (double) (x[i] - y[i]);
            norm += x[i] * (double) x[i];
          }
          // a wrong row order would give a relative error near sqrt(2), far above the ceiling
          double rel = Math.sqrt(err / norm);
          assertTrue(rel < ceiling, t + " " + n + ": relative error " + rel);
        }
      }
    }
  }

  @Test
  void aGgufOfAnotherModelIsRefused() throws Exception {
    Path model = TableTestModels.write(dir.resolve("m"), TableTestModels.CONFIG, 13);
    Path gguf = dir.resolve("m.gguf");
    GgufExport.export(model, LlamaFileType.Q8_0, Map.of(), gguf);
    ModelConfig other = ModelConfig.llama(257, 256, 512, 3, 4, 2, 64);
    Path otherModel = TableTestModels.write(dir.resolve("o"), other, 14);
    CheckpointFormatException e =
        assertThrows(
            CheckpointFormatException.class,
            () -> GgufToHf.convert(gguf, otherModel, dir.resolve("x")));
    assertTrue(e.getMessage().contains("llama.block_count"), e.getMessage());
  }
}
