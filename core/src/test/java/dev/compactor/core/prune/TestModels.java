package dev.compactor.core.prune;

import ai.djl.ndarray.NDArray;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Writes small models as Hugging Face directories for the pruning and distillation tests. */
public final class TestModels {

  /** A tokenizer file stand-in: the stages copy it verbatim, nobody parses it. */
  public static final String TOKENIZER_JSON = "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\"}}";

  private TestModels() {}

  /** Writes {@code model}'s weights (stored as {@code dtype}), config.json and tokenizer.json. */
  public static Path write(Transformer model, Path dir, DType dtype) throws IOException {
    try (SafetensorsWriter w = new SafetensorsWriter(dir, Map.of("source", "test"))) {
      for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
        w.write(e.getKey(), dtype, e.getValue().getShape().getShape(), e.getValue().toFloatArray());
      }
    }
    Files.writeString(dir.resolve("config.json"), model.config().toJson());
    Files.writeString(dir.resolve("tokenizer.json"), TOKENIZER_JSON);
    return dir;
  }

  /** A 3-layer Llama with GQA, hidden 32: every decoder linear kind, tiny. */
  public static ModelConfig tinyLlama(int layers) {
    return ModelConfig.llama(67, 32, 48, layers, 4, 2, 64);
  }
}
