package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.WeightTransform;
import dev.compactor.core.prune.TestModels;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainableTest {

  @Test
  void anIdentityTransformGivesThePlainLogits() {
    try (Transformer model = Transformer.randomInit(TestModels.tinyLlama(2), 3, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      NDArray tokens = m.create(new int[] {1, 5, 9, 2, 7, 7, 3, 0}, new Shape(2, 4));
      float[] plain = model.logits(m, tokens).toFloatArray();
      WeightTransform identity = (layer, name, stored, scope) -> stored;
      assertArrayEquals(plain, model.logits(m, tokens, identity).toFloatArray());
      assertArrayEquals(plain, model.forward(m, tokens, identity).toFloatArray());
    }
  }

  @Test
  void onlyTheGivenParametersLearnThroughTheTransform(@TempDir Path tmp) throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(8, 9, 5);
    DistillationSpec spec = new DistillationSpec(1f, 1f, 3, 2, 1e-2f, 0, 0f, 1f, 0, 7L);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        Transformer student = Transformer.randomInit(TestModels.tinyLlama(2), 2, Device.cpu());
        NDManager gains = NDManager.newBaseManager()) {
      Map<String, float[]> before = new LinkedHashMap<>();
      student.parameters().forEach((k, v) -> before.put(k, v.toFloatArray()));
      Map<String, NDArray> g = new LinkedHashMap<>();
      int rows = student.config().hiddenSize();
      for (int i = 0; i < student.config().numLayers(); i++) {
        g.put("gain." + i, gains.ones(new Shape(rows, 1)));
      }
      // each down_proj row scaled by a learned gain
      WeightTransform scaled =
          (layer, name, stored, scope) ->
              name.equals("mlp.down_proj.weight")
                  ? scope.zeros(stored.getShape()).add(stored).mul(g.get("gain." + layer))
                  : stored;
      new Distiller(spec, new LocalCheckpointSink(tmp, 1))
          .distill(teacher, Trainable.through(student, g, scaled), windows);

      student
          .parameters()
          .forEach((k, v) -> assertArrayEquals(before.get(k), v.toFloatArray(), k + " moved"));
      float moved = 0;
      for (NDArray gain : g.values()) {
        for (float x : gain.toFloatArray()) {
          moved = Math.max(moved, Math.abs(x - 1));
        }
      }
      assertTrue(moved > 1e-3f, "the gains did not learn: max |g - 1| = " + moved);
    }
  }
}
