package dev.compactor.core.distill;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Builds a distillation student from a teacher checkpoint by keeping a subset of its decoder
 * layers: embeddings, final norm and head are copied, the kept layers' weights are copied and
 * renumbered 0..k-1, and config.json gets the new layer count. Initialising from the teacher's own
 * layers (as DistilBERT does) starts the student far closer to the teacher than random weights.
 * Tensors are streamed one at a time.
 */
public final class StudentBuilder {

  private static final Pattern LAYER_TENSOR =
      Pattern.compile("^(model\\.layers|transformer\\.h|h)\\.(\\d+)\\.(.+)$");
  private static final String[] LAYER_COUNT_KEYS = {"num_hidden_layers", "n_layer"};

  /** The student written: where, from how many teacher layers, and which were kept. */
  public record Student(Path directory, int teacherLayers, int[] keptLayers) {
    public Student {
      keptLayers = keptLayers.clone();
    }

    @Override
    public int[] keptLayers() {
      return keptLayers.clone();
    }
  }

  private StudentBuilder() {}

  /** Keeps {@code count} layers evenly spaced over the teacher, first and last included. */
  public static Student build(Path teacherDir, Path studentDir, int count) throws IOException {
    ModelDirectory teacher = ModelDirectory.open(teacherDir);
    refuseMixtureOfExperts(teacher.configJson());
    int total = layerCount(teacher.configJson(), teacherDir);
    return write(teacher, studentDir, total, LayerSelection.evenlySpaced(total, count));
  }

  /** Keeps exactly the teacher layers {@code indices} (strictly increasing). */
  public static Student buildWithLayers(Path teacherDir, Path studentDir, int... indices)
      throws IOException {
    ModelDirectory teacher = ModelDirectory.open(teacherDir);
    refuseMixtureOfExperts(teacher.configJson());
    int total = layerCount(teacher.configJson(), teacherDir);
    return write(teacher, studentDir, total, LayerSelection.explicit(total, indices));
  }

  private static Student write(ModelDirectory teacher, Path studentDir, int total, int[] kept)
      throws IOException {
    Map<Integer, Integer> renumber = new LinkedHashMap<>();
    for (int i = 0; i < kept.length; i++) {
      renumber.put(kept[i], i);
    }
    if (Files.exists(studentDir.resolve(ModelDirectory.CONFIG))) {
      throw new IOException(studentDir + " already holds a model; refusing to overwrite it");
    }
    try (TensorSource src = teacher.weights()) {
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.put(
          "compactor.student.teacher_layers",
          Arrays.stream(kept).mapToObj(Integer::toString).collect(Collectors.joining(",")));
      try (SafetensorsWriter out = new SafetensorsWriter(studentDir, metadata)) {
        for (String name : src.names()) {
          Matcher m = LAYER_TENSOR.matcher(name);
          if (!m.matches()) {
            out.copy(src, name);
            continue;
          }
          int layer = Integer.parseInt(m.group(2));
          if (layer >= total) {
            throw new CheckpointFormatException(
                "tensor '"
                    + name
                    + "' belongs to layer "
                    + layer
                    + " but config.json has "
                    + total);
          }
          Integer to = renumber.get(layer);
          if (to != null) {
            var info = src.info(name);
            out.writeRaw(
                m.group(1) + "." + to + "." + m.group(3),
                info.dtype(),
                info.shape(),
                src.raw(name));
          }
        }
      }
    }
    ModelDirectory.writeConfig(studentDir, studentConfig(teacher.configJson(), total, kept));
    teacher.copyAuxiliaryFilesTo(studentDir);
    return new Student(studentDir, total, kept);
  }

  /** The teacher's config with the layer count and any per-layer list cut down to the kept. */
  static JsonNode studentConfig(JsonNode teacherConfig, int total, int[] kept) {
    ObjectNode c = teacherConfig.deepCopy();
    for (String key : LAYER_COUNT_KEYS) {
      if (c.has(key)) {
        c.put(key, kept.length);
      }
    }
    // Newer configs (e.g. Qwen3, Gemma) list a per-layer attention type; keep the kept layers'.
    c.fields()
        .forEachRemaining(
            e -> {
              if (e.getKey().equals("layer_types")
                  && e.getValue().isArray()
                  && e.getValue().size() == total) {
                ArrayNode sub = c.arrayNode();
                for (int k : kept) {
                  sub.add(e.getValue().get(k));
                }
                e.setValue(sub);
              }
            });
    ModelConfig.keepLayerWidths(c, kept);
    return c;
  }

  /**
   * Training a mixture-of-experts student (Mixtral, Qwen MoE) would need HF's router load-balancing
   * loss ({@code router_aux_loss_coef}), which the distillation loss does not have: the experts
   * would collapse onto a few.
   */
  private static void refuseMixtureOfExperts(JsonNode config) {
    String modelType = config.path("model_type").asText("");
    if (List.of("mixtral", "qwen2_moe", "qwen3_moe").contains(modelType)) {
      throw new UnsupportedOperationException(
          "not supported yet: distilling " + modelType + " (mixture-of-experts layers)");
    }
  }

  static int layerCount(JsonNode config, Path dir) throws CheckpointFormatException {
    for (String key : LAYER_COUNT_KEYS) {
      JsonNode n = config.get(key);
      if (n != null) {
        if (!n.canConvertToInt() || n.asInt() < 1) {
          throw new CheckpointFormatException(
              dir + "/config.json: expected " + key + " to be a positive integer, found " + n);
        }
        return n.asInt();
      }
    }
    throw new CheckpointFormatException(
        dir
            + "/config.json: expected num_hidden_layers (or n_layer) to know the teacher's depth,"
            + " found neither");
  }
}
