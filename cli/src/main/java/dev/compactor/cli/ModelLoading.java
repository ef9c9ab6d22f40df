package dev.compactor.cli;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.lora.AdaptedModel;
import dev.compactor.core.lora.PeftAdapterFiles;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
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

  /**
   * Loads the model in {@code dir} like {@link #resident} with the PEFT LoRA adapter in {@code
   * adapter} applied on the fly (not merged); the adapter is checked against the model first.
   */
  static CausalLM adapted(Path dir, Path adapter) throws IOException {
    Transformer base = Transformer.load(dir, Device.cpu());
    try {
      return new AdaptedModel(base, PeftAdapterFiles.read(adapter, base));
    } catch (IOException | RuntimeException e) {
      base.close();
      throw e;
    }
  }

  /**
   * Keeps only embeddings, final norm and head resident and reads one decoder layer at a time from
   * the checkpoint during every pass: for models larger than RAM.
   */
  static CausalLM layerByLayer(Path dir) throws IOException {
    return StreamingTransformer.open(dir, Device.cpu());
  }
}
