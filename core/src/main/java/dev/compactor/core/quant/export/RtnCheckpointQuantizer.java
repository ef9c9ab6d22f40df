package dev.compactor.core.quant.export;

import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.RtnQuantizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Round-to-nearest of every decoder-layer linear of a model directory into a compressed-tensors
 * checkpoint (pack-quantized), one layer in memory at a time: the no-calibration baseline that GPTQ
 * and AWQ are compared with, in the same output format.
 */
public final class RtnCheckpointQuantizer {

  private RtnCheckpointQuantizer() {}

  /** The scheme an RTN checkpoint is stored with. */
  public static CompressedTensorsScheme scheme(int bits, boolean symmetric, int groupSize) {
    return new CompressedTensorsScheme(
        CompressedTensorsScheme.Format.PACK_QUANTIZED, bits, symmetric, groupSize, null);
  }

  /** Quantizes {@code modelDir} with {@link RtnQuantizer} into {@code outDir}. */
  public static void quantize(
      Path modelDir, int bits, boolean symmetric, int groupSize, Path outDir, DType floatType)
      throws IOException {
    ModelConfig model = ModelConfig.read(modelDir);
    model.requireDenseLinears();
    if (model.family() != ModelConfig.Family.LLAMA) {
      throw new UnsupportedOperationException(
          "not supported yet: compressed-tensors export of " + model.modelType());
    }
    RtnQuantizer rtn = new RtnQuantizer(bits, symmetric, groupSize);
    try (TensorSource source = Checkpoints.open(modelDir);
        CompressedTensorsWriter writer =
            new CompressedTensorsWriter(
                outDir,
                scheme(bits, symmetric, groupSize),
                floatType,
                Map.of("quantizer", "compactor-rtn"))) {
      QuantizedCheckpointWriter sink = new QuantizedCheckpointWriter(model, writer);
      for (int i = 0; i < model.numLayers(); i++) {
        String prefix = Layout.layerPrefix(model, "", i);
        Map<String, float[]> weights = new LinkedHashMap<>();
        Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();
        for (Layout.Spec s : Layout.layer(model, i)) {
          float[] w = source.readFloats(prefix + s.name());
          weights.put(s.name(), w);
          String linear = s.name().substring(0, s.name().length() - ".weight".length());
          if (s.name().endsWith(".weight") && Layout.linears(model, i).contains(linear)) {
            QuantizedLinear q =
                QuantizedLinear.of(rtn.quantize(w, (int) s.shape()[0], (int) s.shape()[1]));
            quantized.put(linear, q);
            weights.put(s.name(), q.dequantize());
          }
        }
        sink.accept(i, weights, quantized);
      }
      sink.finish(source, modelDir, outDir);
    }
  }
}
