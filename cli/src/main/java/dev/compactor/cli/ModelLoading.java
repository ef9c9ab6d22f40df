package dev.compactor.cli;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Path;

/** Opens a Hugging Face style model directory as a {@link CausalLM} for the commands. */
final class ModelLoading {

  private ModelLoading() {}

  /** Loads every weight of the model in {@code dir} into memory (fp32, CPU). */
  static CausalLM resident(Path dir) throws IOException {
    ModelConfig config = ModelConfig.read(dir);
    try (TensorSource source = Checkpoints.open(dir)) {
      return Transformer.load(config, source, Device.cpu());
    }
  }
}
