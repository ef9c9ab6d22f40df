package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.gguf.ImatrixCollector;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The layer-by-layer importance matrix equals the one captured from a whole-model forward pass (the
 * linear-input hook of {@link Transformer#logits}), llama-imatrix's definition.
 */
class GgufExportImatrixTest {

  @TempDir Path tmp;

  @Test
  void layerwiseImatrixMatchesAWholeModelForwardHook() throws Exception {
    Path model = tmp.resolve("m");
    ModelConfig config = ModelConfig.llama(257, 64, 128, 2, 4, 2, 64);
    try (Transformer t = Transformer.randomInit(config, 5, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
    Random r = new Random(3);
    List<int[]> samples = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      int[] s = new int[24];
      for (int j = 0; j < s.length; j++) {
        s[j] = r.nextInt(257);
      }
      samples.add(s);
    }

    assertLayerwiseEqualsHooked(model, samples, 2 * 7);
  }

  @Test
  void qwen3ImatrixComesFromItsOwnLayersWithQkNorms() throws Exception {
    try (Golden g = new Golden("qwen3_qk_norm")) {
      Random r = new Random(4);
      List<int[]> samples = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        int[] s = new int[12];
        for (int j = 0; j < s.length; j++) {
          s[j] = r.nextInt(ModelConfig.read(g.dir).vocabSize());
        }
        samples.add(s);
      }
      assertLayerwiseEqualsHooked(g.dir, samples, ModelConfig.read(g.dir).numLayers() * 7);
    }
  }

  private static void assertLayerwiseEqualsHooked(Path model, List<int[]> samples, int linears)
      throws Exception {
    Map<String, float[]> layerwise = GgufExport.imatrix(model, samples);

    Map<String, ImatrixCollector> hooked = new HashMap<>();
    try (Transformer t = Transformer.load(model, Device.cpu());
        NDManager root = NDManager.newBaseManager(Device.cpu())) {
      for (int[] sample : samples) {
        try (NDManager m = root.newSubManager()) {
          NDArray tokens = m.create(sample).reshape(1, sample.length);
          t.logits(
              m,
              tokens,
              (layer, linear, input) -> {
                int cols = (int) input.getShape().get(1);
                float[] x = input.toFloatArray();
                ImatrixCollector c =
                    hooked.computeIfAbsent(
                        GgufToHf.ggufLinearName(layer, linear), k -> new ImatrixCollector(cols));
                for (int off = 0; off < x.length; off += cols) {
                  c.accumulate(x, off);
                }
              });
        }
      }
    }
    assertEquals(hooked.keySet(), layerwise.keySet());
    assertEquals(linears, layerwise.size());
    for (Map.Entry<String, ImatrixCollector> e : hooked.entrySet()) {
      float[] expected = e.getValue().importance();
      float[] actual = layerwise.get(e.getKey());
      assertEquals(expected.length, actual.length, e.getKey());
      for (int j = 0; j < expected.length; j++) {
        assertEquals(expected[j], actual[j], 1e-4 * Math.max(1e-3, expected[j]), e.getKey());
      }
      assertTrue(expected[0] > 0, e.getKey());
    }
  }
}
