package dev.compactor.core.quant.export;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.LinearGroups;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A {@link QuantizedLayerSink} that stores each finished layer in a compressed-tensors checkpoint:
 * quantized linears through {@link CompressedTensorsWriter#writeLinear}, norms and biases dense;
 * {@link #finish} adds the embeddings, final norm and head from the source checkpoint (kept dense,
 * {@code lm_head} listed in {@code ignore}), config.json and the tokenizer files. Mixtral is
 * refused (not supported yet).
 */
public final class QuantizedCheckpointWriter implements QuantizedLayerSink {

  private final ModelConfig config;
  private final CompressedTensorsWriter writer;

  public QuantizedCheckpointWriter(ModelConfig config, CompressedTensorsWriter writer) {
    if (config.moe()) {
      // vLLM reads a mixture of experts' compressed-tensors through fused-MoE kernels whose
      // layout nobody has checked against this writer yet
      throw new UnsupportedOperationException(
          "not supported yet: compressed-tensors export of "
              + config.modelType()
              + " (mixture-of-experts layers)");
    }
    this.config = config;
    this.writer = writer;
  }

  @Override
  public void accept(
      int layer, Map<String, float[]> weights, Map<String, QuantizedLinear> quantized)
      throws IOException {
    String prefix = Layout.layerPrefix(config, "", layer);
    for (Layout.Spec s : Layout.layer(config, layer)) {
      String name = s.name();
      String linear = name.endsWith(".weight") ? name.substring(0, name.length() - 7) : null;
      if (linear != null && quantized.containsKey(linear)) {
        writer.writeLinear(prefix + linear, quantized.get(linear));
      } else if (linear != null && LinearGroups.compressible(config, layer).contains(linear)) {
        throw new IllegalStateException(
            "layer " + layer + ": linear " + linear + " was not quantized");
      } else {
        writer.writeDense(prefix + name, s.shape(), weights.get(name));
      }
    }
  }

  /**
   * Writes the non-layer tensors of {@code source}, config.json, and copies the tokenizer files of
   * {@code sourceDir} (may be null) next to the weights.
   */
  public void finish(TensorSource source, Path sourceDir, Path outDir) throws IOException {
    finish(source, sourceDir, outDir, null);
  }

  /**
   * As {@link #finish(TensorSource, Path, Path)}, with {@code sparsityConfig} (may be null) in the
   * {@code quantization_config} for weights that are also sparse.
   */
  public void finish(TensorSource source, Path sourceDir, Path outDir, ObjectNode sparsityConfig)
      throws IOException {
    for (Layout.Spec s : Layout.globals(config, "")) {
      writer.writeDense(s.name(), s.shape(), source.readFloats(s.name()));
    }
    writer.finish(config, List.of("lm_head"), sparsityConfig);
    if (sourceDir != null) {
      ModelDirectory.copyAuxiliaryFiles(sourceDir, outDir);
    }
  }
}
