package dev.compactor.core.prune.structured;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small random models with editable weights, written as Hugging Face directories. */
final class StructuredTestModels {

  private StructuredTestModels() {}

  /** A model's weights by full name, fp32, with their shapes. */
  record Weights(ModelConfig config, Map<String, float[]> values, Map<String, long[]> shapes) {
    float[] get(String name) {
      float[] v = values.get(name);
      if (v == null) {
        throw new IllegalArgumentException("no tensor " + name + " in " + values.keySet());
      }
      return v;
    }

    Path write(Path dir) throws IOException {
      try (SafetensorsWriter w = new SafetensorsWriter(dir, Map.of("source", "test"))) {
        for (var e : values.entrySet()) {
          w.write(e.getKey(), DType.F32, shapes.get(e.getKey()), e.getValue());
        }
      }
      Files.writeString(dir.resolve("config.json"), config.toJson());
      Files.writeString(dir.resolve("tokenizer.json"), "{\"version\":\"1.0\"}");
      return dir;
    }
  }

  /**
   * Random weights with linears and biases N(0, 0.3) (HF's 0.02 makes nearly uniform logits, where
   * a wrong cut would hardly show) and norms 1.
   */
  static Weights random(ModelConfig c, long seed) {
    Random r = new Random(seed);
    Map<String, float[]> values = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    try (Transformer t = Transformer.randomInit(c, seed, Device.cpu())) {
      for (Map.Entry<String, NDArray> e : t.parameters().entrySet()) {
        float[] v = e.getValue().toFloatArray();
        boolean norm = e.getKey().contains("norm");
        if (!norm) {
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * 0.3);
          }
        }
        values.put(e.getKey(), v);
        shapes.put(e.getKey(), e.getValue().getShape().getShape());
      }
    }
    return new Weights(c, values, shapes);
  }

  /** Logits of {@code dir}'s model for {@code windows}, flattened. */
  static float[] logits(Path dir, List<int[]> windows) throws IOException {
    try (Transformer m = Transformer.load(dir, Device.cpu());
        NDManager scope = NDManager.newBaseManager(Device.cpu())) {
      int seq = windows.get(0).length;
      int[] ids = new int[windows.size() * seq];
      for (int i = 0; i < windows.size(); i++) {
        System.arraycopy(windows.get(i), 0, ids, i * seq, seq);
      }
      NDArray tokens = scope.create(ids, new Shape(windows.size(), seq));
      return m.logits(scope, tokens).toFloatArray();
    }
  }

  static List<int[]> windows(int count, int seq, int vocab, long seed) {
    Random r = new Random(seed);
    List<int[]> out = new java.util.ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] w = new int[seq];
      for (int t = 0; t < seq; t++) {
        w[t] = r.nextInt(vocab);
      }
      out.add(w);
    }
    return out;
  }

  static double maxAbsDiff(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new IllegalArgumentException(a.length + " vs " + b.length + " values");
    }
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }
}
