package dev.compactor.core.moe;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/** Tiny random Mixtral checkpoints for the MoE tests, and helpers to edit and run them. */
final class MoeTestModels {

  private MoeTestModels() {}

  static ModelConfig mixtral(int layers, int experts, int k) {
    return ModelConfig.fromJson(
        "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\","
            + "\"vocab_size\":64,\"hidden_size\":32,\"intermediate_size\":24,"
            + "\"num_hidden_layers\":"
            + layers
            + ",\"num_attention_heads\":4,\"num_key_value_heads\":2,"
            + "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
            + "\"num_local_experts\":"
            + experts
            + ",\"num_experts_per_tok\":"
            + k
            + ",\"tie_word_embeddings\":false,\"sliding_window\":null}");
  }

  /**
   * A random model saved in {@code dir} (F32). The init's N(0, 0.02) is scaled up so routing and
   * experts differ visibly between tokens.
   */
  static Path save(ModelConfig c, long seed, Path dir) throws IOException {
    Path raw = dir.resolveSibling(dir.getFileName() + "-init");
    try (Transformer t = Transformer.randomInit(c, seed, Device.cpu())) {
      t.save(raw, DType.F32, Map.of());
    }
    return edit(raw, dir, null, Map.of(), name -> name.endsWith("norm.weight") ? 1f : 20f);
  }

  /**
   * Copies checkpoint {@code in} to {@code out} with {@code changes} applied (name to new values,
   * same shape) and every other float tensor multiplied by {@code scale.apply(name)}; {@code
   * config} replaces config.json when not null.
   */
  static Path edit(
      Path in,
      Path out,
      ModelConfig config,
      Map<String, float[]> changes,
      Function<String, Float> scale)
      throws IOException {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    Map<String, float[]> values = new LinkedHashMap<>();
    try (TensorSource src = Checkpoints.open(in)) {
      for (String n : src.names()) {
        shapes.put(n, src.info(n).shape());
        values.put(n, src.readFloats(n));
      }
    }
    return write(
        out, config == null ? ModelConfig.read(in) : config, shapes, values, changes, scale);
  }

  static Path write(
      Path out,
      ModelConfig config,
      Map<String, long[]> shapes,
      Map<String, float[]> values,
      Map<String, float[]> changes,
      Function<String, Float> scale)
      throws IOException {
    try (SafetensorsWriter w = new SafetensorsWriter(out, Map.of())) {
      for (Map.Entry<String, long[]> e : shapes.entrySet()) {
        float[] v = changes.get(e.getKey());
        if (v == null) {
          v = values.get(e.getKey()).clone();
          float s = scale == null ? 1f : scale.apply(e.getKey());
          for (int i = 0; i < v.length; i++) {
            v[i] *= s;
          }
        }
        w.write(e.getKey(), DType.F32, e.getValue(), v);
      }
    }
    Files.writeString(out.resolve("config.json"), config.toJson());
    return out;
  }

  static Map<String, float[]> tensors(Path dir) throws IOException {
    Map<String, float[]> m = new LinkedHashMap<>();
    try (TensorSource src = Checkpoints.open(dir)) {
      for (String n : src.names()) {
        m.put(n, src.readFloats(n));
      }
    }
    return m;
  }

  static Map<String, long[]> shapes(Path dir) throws IOException {
    Map<String, long[]> m = new LinkedHashMap<>();
    try (TensorSource src = Checkpoints.open(dir)) {
      for (String n : src.names()) {
        m.put(n, src.info(n).shape());
      }
    }
    return m;
  }

  static List<int[]> sequences(int count, int length, long seed) {
    Random r = new Random(seed);
    List<int[]> s = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] t = new int[length];
      for (int j = 0; j < length; j++) {
        t[j] = r.nextInt(64);
      }
      s.add(t);
    }
    return s;
  }

  /** Logits of every sequence, concatenated. */
  static float[] logits(Path dir, List<int[]> sequences) throws IOException {
    try (Transformer t = Transformer.load(dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      float[] out = new float[0];
      for (int[] s : sequences) {
        NDArray l = t.logits(m, m.create(s, new Shape(1, s.length)));
        float[] f = l.toFloatArray();
        float[] grown = new float[out.length + f.length];
        System.arraycopy(out, 0, grown, 0, out.length);
        System.arraycopy(f, 0, grown, out.length, f.length);
        out = grown;
      }
      return out;
    }
  }

  static double maxAbsDiff(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new AssertionError("lengths " + a.length + " vs " + b.length);
    }
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }
}
