package dev.compactor.core.moe;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Writes a copy of a mixture-of-experts checkpoint whose layers have fewer experts, each new expert
 * a weighted average of a group of old ones ({@link Group}). A group of one with weight 1 is the
 * old expert renamed: its tensors and its router row are copied byte for byte. A larger group's
 * gate, up and down weights and router row are the weighted averages of its members' (in double,
 * stored in the checkpoint's dtype). Every other tensor is copied as it is (a Qwen MoE model's
 * dense layers and its shared experts and their gates included); {@code config.json} gets the new
 * expert count ({@code num_local_experts} for Mixtral, {@code num_experts} for Qwen MoE) and {@code
 * num_experts_per_tok = min(k, n)}; tokenizer and other auxiliary files are copied. One tensor (or
 * one layer's group) is in memory at a time.
 */
final class ExpertRewrite {

  /** Hugging Face's default shard size. */
  static final long MAX_SHARD_BYTES = 5_000_000_000L;

  /** A new expert: the old experts it is made of and their weights (summing to 1). */
  record Group(int[] members, double[] weights) {
    Group {
      if (members.length == 0 || members.length != weights.length) {
        throw new IllegalArgumentException("a group needs members, each with one weight");
      }
      members = members.clone();
      weights = weights.clone();
    }

    static Group of(int expert) {
      return new Group(new int[] {expert}, new double[] {1});
    }

    boolean single() {
      return members.length == 1;
    }
  }

  private static final Layout.ExpertProj[] PROJ = Layout.ExpertProj.values();

  private ExpertRewrite() {}

  /**
   * Checks the model is one this rewrite knows how to write (Mixtral, Qwen2-MoE, Qwen3-MoE);
   * returns its config.
   */
  static ModelConfig requireExpertModel(ModelDirectory model) {
    ModelConfig c = ModelConfig.fromJson(model.configJson().toString());
    if (!c.moe()) {
      throw new UnsupportedOperationException(
          "not supported: expert pruning or merging of " + c.modelType() + " (no MoE layers)");
    }
    return switch (c.family()) {
      case MIXTRAL, QWEN2_MOE, QWEN3_MOE -> c;
      default ->
          throw new UnsupportedOperationException(
              "not supported yet: expert pruning or merging of " + c.modelType());
    };
  }

  static void write(
      Path inputDir, Path outputDir, List<List<Group>> layers, Map<String, String> extraMetadata)
      throws IOException {
    if (Files.exists(outputDir)) {
      try (Stream<Path> s = Files.list(outputDir)) {
        if (s.findAny().isPresent()) {
          throw new IOException("output directory " + outputDir + " must be empty or absent");
        }
      }
    }
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig c = requireExpertModel(model);
    if (layers.size() != c.numLayers()) {
      throw new IllegalArgumentException(
          "expected a plan for each of " + c.numLayers() + " layers, got " + layers.size());
    }
    int n = -1;
    for (int i = 0; i < layers.size(); i++) {
      if (!c.sparseLayer(i)) {
        if (layers.get(i) != null) {
          throw new IllegalArgumentException("layer " + i + " is dense: its plan must be null");
        }
        continue;
      }
      n = n < 0 ? layers.get(i).size() : n;
      checkPlan(layers.get(i), i, n, c.numExperts());
    }
    // Which layer and old expert each expert tensor belongs to; its layer's experts are written
    // where the first of them stood.
    Map<String, Integer> expertTensorLayer = new HashMap<>();
    Map<String, Integer> routerLayer = new HashMap<>();
    Set<String> expertModules = new HashSet<>();
    for (int i = 0; i < c.numLayers(); i++) {
      if (!c.sparseLayer(i)) {
        continue;
      }
      String prefix = Layout.layerPrefix(c, "", i);
      routerLayer.put(prefix + Layout.router(c) + ".weight", i);
      for (int e = 0; e < c.numExperts(); e++) {
        for (Layout.ExpertProj p : PROJ) {
          expertTensorLayer.put(prefix + Layout.expert(c, e, p) + ".weight", i);
          expertModules.add(prefix + Layout.expert(c, e, p));
        }
      }
    }
    try (TensorSource src = model.weights()) {
      for (String name : src.names()) {
        int dot = name.lastIndexOf('.');
        boolean ofAnExpert = dot > 0 && expertModules.contains(name.substring(0, dot));
        if (ofAnExpert && !expertTensorLayer.containsKey(name)) {
          throw new UnsupportedOperationException(
              "not supported yet: expert tensor " + name + " (only bias-free linear weights)");
        }
      }
      for (String name : expertTensorLayer.keySet()) {
        if (!src.contains(name)) {
          throw new IllegalArgumentException(inputDir + ": checkpoint lacks " + name);
        }
      }
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.putAll(extraMetadata);
      boolean[] layerWritten = new boolean[c.numLayers()];
      try (SafetensorsWriter out = new SafetensorsWriter(outputDir, MAX_SHARD_BYTES, metadata)) {
        for (String name : src.names()) {
          Integer router = routerLayer.get(name);
          Integer expertLayer = expertTensorLayer.get(name);
          if (router != null) {
            writeRouter(src, out, name, layers.get(router));
          } else if (expertLayer != null) {
            if (!layerWritten[expertLayer]) {
              writeExperts(src, out, c, expertLayer, layers.get(expertLayer));
              layerWritten[expertLayer] = true;
            }
          } else {
            out.copy(src, name);
          }
        }
      }
    }
    ObjectNode config = model.configJson().deepCopy();
    config.put(c.family() == ModelConfig.Family.MIXTRAL ? "num_local_experts" : "num_experts", n);
    config.put("num_experts_per_tok", Math.min(c.expertsPerToken(), n));
    ModelDirectory.writeConfig(outputDir, config);
    model.copyAuxiliaryFilesTo(outputDir);
  }

  private static void checkPlan(List<Group> groups, int layer, int n, int experts) {
    if (groups == null || groups.size() != n || n < 1) {
      throw new IllegalArgumentException(
          "layer "
              + layer
              + ": expected "
              + n
              + " (>= 1) new experts, got "
              + (groups == null ? "no plan" : groups.size()));
    }
    boolean[] used = new boolean[experts];
    for (Group g : groups) {
      double sum = 0;
      for (int j = 0; j < g.members().length; j++) {
        int e = g.members()[j];
        if (e < 0 || e >= experts || used[e]) {
          throw new IllegalArgumentException(
              "layer " + layer + ": expert " + e + " is out of range or in two groups");
        }
        used[e] = true;
        if (!(g.weights()[j] >= 0)) {
          throw new IllegalArgumentException("layer " + layer + ": negative or NaN group weight");
        }
        sum += g.weights()[j];
      }
      if (Math.abs(sum - 1) > 1e-9) {
        throw new IllegalArgumentException(
            "layer " + layer + ": group weights sum to " + sum + ", expected 1");
      }
    }
  }

  private static void writeRouter(
      TensorSource src, SafetensorsWriter out, String name, List<Group> groups) throws IOException {
    TensorInfo t = src.info(name);
    long[] shape = t.shape();
    int hidden = Math.toIntExact(shape[1]);
    long[] newShape = {groups.size(), hidden};
    if (groups.stream().allMatch(Group::single)) {
      int rowBytes = hidden * t.dtype().bytes();
      ByteBuffer raw = src.raw(name);
      ByteBuffer rows =
          ByteBuffer.allocateDirect(groups.size() * rowBytes).order(ByteOrder.LITTLE_ENDIAN);
      for (Group g : groups) {
        ByteBuffer row = raw.duplicate();
        row.position(raw.position() + g.members()[0] * rowBytes);
        row.limit(row.position() + rowBytes);
        rows.put(row);
      }
      out.writeRaw(name, t.dtype(), newShape, rows.flip());
      return;
    }
    float[] w = src.readFloats(name);
    float[] merged = new float[groups.size() * hidden];
    for (int g = 0; g < groups.size(); g++) {
      Group group = groups.get(g);
      for (int d = 0; d < hidden; d++) {
        double v = 0;
        for (int j = 0; j < group.members().length; j++) {
          v += group.weights()[j] * w[group.members()[j] * hidden + d];
        }
        merged[g * hidden + d] = (float) v;
      }
    }
    out.write(name, storable(t), newShape, merged);
  }

  private static void writeExperts(
      TensorSource src, SafetensorsWriter out, ModelConfig c, int layer, List<Group> groups)
      throws IOException {
    String prefix = Layout.layerPrefix(c, "", layer);
    for (int g = 0; g < groups.size(); g++) {
      Group group = groups.get(g);
      for (Layout.ExpertProj p : PROJ) {
        String target = prefix + Layout.expert(c, g, p) + ".weight";
        if (group.single()) {
          TensorInfo t = src.info(prefix + Layout.expert(c, group.members()[0], p) + ".weight");
          out.writeRaw(target, t.dtype(), t.shape(), src.raw(t.name()));
          continue;
        }
        TensorInfo first = src.info(prefix + Layout.expert(c, group.members()[0], p) + ".weight");
        List<float[]> members = new ArrayList<>();
        for (int e : group.members()) {
          members.add(src.readFloats(prefix + Layout.expert(c, e, p) + ".weight"));
        }
        out.write(target, storable(first), first.shape(), average(members, group.weights()));
      }
    }
  }

  /** The weighted average of equally long arrays, accumulated in double. */
  static float[] average(List<float[]> values, double[] weights) {
    int len = values.get(0).length;
    float[] avg = new float[len];
    for (int i = 0; i < len; i++) {
      double v = 0;
      for (int j = 0; j < values.size(); j++) {
        v += weights[j] * values.get(j)[i];
      }
      avg[i] = (float) v;
    }
    return avg;
  }

  private static DType storable(TensorInfo t) {
    return switch (t.dtype()) {
      case F32, F16, BF16 -> t.dtype();
      default ->
          throw new UnsupportedOperationException(
              "not supported: merging experts stored as " + t.dtype() + " (" + t.name() + ")");
    };
  }
}
