package dev.compactor.core.prune.depth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes whole decoder layers from a Hugging Face checkpoint. The kept layers' tensors are copied
 * byte for byte, one tensor at a time, under dense new indices ({@code model.layers.{i}} for the
 * i-th kept layer, in the original order); embeddings, final norm and head are copied unchanged.
 * {@code config.json} gets the new {@code num_hidden_layers}, its {@code layer_types} list without
 * the removed entries, and {@code max_window_layers} moved down by the removed layers below it (so
 * every kept layer keeps its sliding-window or full attention).
 *
 * <p>Refused as not supported yet: GPT-2 ({@code h.N}, {@code n_layer}), mixtures of experts (their
 * dense/sparse layer pattern, {@code decoder_sparse_step} and {@code mlp_only_layers}, would have
 * to be remapped; Mixtral is refused with them) and quantized checkpoints.
 */
public final class DepthPruner {

  private static final Logger LOG = LoggerFactory.getLogger(DepthPruner.class);
  private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");

  /** Hugging Face's default shard size, as the other pruning paths use. */
  static final long MAX_SHARD_BYTES = 5_000_000_000L;

  private DepthPruner() {}

  /** Throws "not supported yet" for a model whose layers this class cannot remove. */
  public static void requireSupported(ModelConfig c, JsonNode raw) {
    c.requireDenseLinears();
    if (c.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: depth pruning of " + c.modelType() + " (h.N layers, n_layer)");
    }
    if (c.moe()) {
      throw new UnsupportedOperationException(
          "not supported yet: depth pruning of the mixture-of-experts model "
              + c.modelType()
              + " (its per-layer expert layout is not remapped)");
    }
    if (raw.has("quantization_config")) {
      throw new UnsupportedOperationException(
          "not supported yet: depth pruning of a quantized checkpoint (quantization_config)");
    }
  }

  /** Checks {@code removed} (ascending, distinct layer indices) leaves at least one layer. */
  static void checkRemoved(ModelConfig c, int[] removed) {
    if (removed.length == 0 || removed.length >= c.numLayers()) {
      throw new IllegalArgumentException(
          "can remove 1.."
              + (c.numLayers() - 1)
              + " of "
              + c.numLayers()
              + " layers, asked for "
              + removed.length);
    }
    for (int k = 0; k < removed.length; k++) {
      if (removed[k] < 0
          || removed[k] >= c.numLayers()
          || (k > 0 && removed[k] <= removed[k - 1])) {
        throw new IllegalArgumentException(
            "layers to remove must be ascending distinct indices 0.."
                + (c.numLayers() - 1)
                + ", found "
                + Arrays.toString(removed));
      }
    }
  }

  /** The new index of every old layer, -1 for a removed one. */
  static int[] renumbering(int layers, int[] removed) {
    int[] to = new int[layers];
    int next = 0;
    int k = 0;
    for (int i = 0; i < layers; i++) {
      if (k < removed.length && removed[k] == i) {
        to[i] = -1;
        k++;
      } else {
        to[i] = next++;
      }
    }
    return to;
  }

  /** {@code raw} (the input config.json) with {@code removed} taken out. */
  public static ObjectNode prunedConfig(JsonNode raw, ModelConfig c, int[] removed) {
    requireSupported(c, raw);
    checkRemoved(c, removed);
    int[] to = renumbering(c.numLayers(), removed);
    ObjectNode out = raw.deepCopy();
    out.put("num_hidden_layers", c.numLayers() - removed.length);
    JsonNode types = raw.get("layer_types");
    if (types != null && !types.isNull()) {
      if (!types.isArray() || types.size() != c.numLayers()) {
        throw new IllegalArgumentException(
            "config.json: expected \"layer_types\" to list "
                + c.numLayers()
                + " layers, found "
                + types);
      }
      ArrayNode kept = out.putArray("layer_types");
      for (int i = 0; i < c.numLayers(); i++) {
        if (to[i] >= 0) {
          kept.add(types.get(i));
        }
      }
    }
    JsonNode window = raw.get("max_window_layers");
    if (window != null && window.canConvertToInt()) {
      int first = window.intValue();
      int below = 0;
      for (int r : removed) {
        below += r < first ? 1 : 0;
      }
      out.put("max_window_layers", first - below);
    }
    int[] keptLayers =
        java.util.stream.IntStream.range(0, c.numLayers()).filter(i -> to[i] >= 0).toArray();
    ModelConfig.keepLayerWidths(out, keptLayers);
    // the result must still be a config the project reads
    ModelConfig.fromJson(out.toString());
    return out;
  }

  /**
   * Writes {@code inputDir} without the layers {@code removed} (ascending) to {@code outputDir}
   * (absent or empty); {@code extraMetadata} goes into the safetensors metadata.
   */
  public static void prune(
      Path inputDir, Path outputDir, int[] removed, Map<String, String> extraMetadata)
      throws IOException {
    if (Files.exists(outputDir)) {
      try (var entries = Files.list(outputDir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException("output directory " + outputDir + " must be empty or absent");
        }
      }
    }
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig c = ModelConfig.fromJson(model.configJson().toString());
    ObjectNode config = prunedConfig(model.configJson(), c, removed);
    int[] to = renumbering(c.numLayers(), removed);
    try (TensorSource src = model.weights()) {
      Map<String, String> renamed = new LinkedHashMap<>();
      boolean[] present = new boolean[c.numLayers()];
      for (String name : src.names()) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) {
          renamed.put(name, name);
          continue;
        }
        int layer = Integer.parseInt(m.group(1));
        if (layer >= c.numLayers()) {
          throw new CheckpointFormatException(
              "tensor '"
                  + name
                  + "' belongs to layer "
                  + layer
                  + " of a "
                  + c.numLayers()
                  + "-layer model");
        }
        present[layer] = true;
        if (to[layer] >= 0) {
          renamed.put(name, "model.layers." + to[layer] + "." + m.group(2));
        }
      }
      for (int i = 0; i < present.length; i++) {
        if (!present[i]) {
          throw new CheckpointFormatException(
              inputDir + ": no tensors of decoder layer " + i + " (model.layers." + i + ".*)");
        }
      }
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.putAll(extraMetadata);
      metadata.put("compactor.prune.depth.removed_layers", Arrays.toString(removed));
      metadata.put("compactor.prune.depth.layers_before", Integer.toString(c.numLayers()));
      List<SafetensorsWriter.Planned> plan = new ArrayList<>();
      for (Map.Entry<String, String> e : renamed.entrySet()) {
        TensorInfo t = src.info(e.getKey());
        plan.add(new SafetensorsWriter.Planned(e.getValue(), t.dtype(), t.shape()));
      }
      try (SafetensorsWriter out =
          SafetensorsWriter.planned(outputDir, MAX_SHARD_BYTES, metadata, plan)) {
        for (Map.Entry<String, String> e : renamed.entrySet()) {
          TensorInfo t = src.info(e.getKey());
          out.writeRaw(e.getValue(), t.dtype(), t.shape(), src.raw(e.getKey()));
        }
      }
    }
    ModelDirectory.writeConfig(outputDir, config);
    model.copyAuxiliaryFilesTo(outputDir);
    LOG.info(
        "removed layers {} of {} ({} left), wrote {}",
        Arrays.toString(removed),
        c.numLayers(),
        c.numLayers() - removed.length,
        outputDir);
  }
}
