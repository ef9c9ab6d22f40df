package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The pruned and merged checkpoints against make_moe_golden.py: the same plans applied to the
 * mixtral_moe golden model in plain PyTorch from the definitions (renumbered experts, sliced or
 * averaged router rows, updated config) and run by its HF-style MixtralSparseMoeBlock forward.
 */
class ExpertRewriteGoldenTest {

  @Test
  void prunedAndMergedModelsMatchThePyTorchReference(@TempDir Path tmp) throws Exception {
    Path golden =
        Paths.get(
            ExpertRewriteGoldenTest.class.getResource("/golden/moe/rewrite.safetensors").toURI());
    try (Golden g = new Golden("mixtral_moe");
        TensorSource expected = SafetensorsFile.open(golden)) {
      assertEquals("compactor-moe-golden", expected.metadata().get("magic"));
      List<List<ExpertRewrite.Group>> prune = new ArrayList<>();
      for (int[] keep : new int[][] {{0, 1, 3}, {0, 2, 3}}) {
        List<ExpertRewrite.Group> layer = new ArrayList<>();
        for (int e : keep) {
          layer.add(ExpertRewrite.Group.of(e));
        }
        prune.add(layer);
      }
      List<List<ExpertRewrite.Group>> merge =
          List.of(
              List.of(
                  new ExpertRewrite.Group(new int[] {0, 2}, new double[] {0.3, 0.7}),
                  ExpertRewrite.Group.of(1),
                  ExpertRewrite.Group.of(3)),
              List.of(
                  ExpertRewrite.Group.of(0),
                  new ExpertRewrite.Group(new int[] {1, 3}, new double[] {0.6, 0.4}),
                  ExpertRewrite.Group.of(2)));
      check(g, expected, "logits_pruned", prune, tmp.resolve("pruned"));
      check(g, expected, "logits_merged", merge, tmp.resolve("merged"));
    }
  }

  private static void check(
      Golden g,
      TensorSource expected,
      String tensor,
      List<List<ExpertRewrite.Group>> plan,
      Path out)
      throws Exception {
    ExpertRewrite.write(g.dir, out, plan, Map.of());
    ModelConfig c = ModelConfig.read(out);
    assertEquals(3, c.numExperts());
    assertEquals(2, c.expertsPerToken());
    try (Transformer t = Transformer.load(out, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      NDArray logits = t.logits(m, g.inputIds(m));
      float[] want = expected.readFloats(tensor);
      float[] got = logits.toFloatArray();
      assertEquals(want.length, got.length);
      double worst = 0;
      for (int i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(want[i] - got[i]));
      }
      assertEquals(0, worst, Golden.TOLERANCE, tensor + ": max abs error against PyTorch");
    }
  }
}
