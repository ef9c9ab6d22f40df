package dev.compactor.core.quant.gptq;

import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.export.CompressedTensorsScheme;
import dev.compactor.core.quant.export.CompressedTensorsWriter;
import dev.compactor.core.quant.export.QuantizedCheckpointWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Quantizes a whole Hugging Face model directory with GPTQ into a compressed-tensors checkpoint,
 * streaming: one decoder layer's weights in memory at a time, calibration in GPTQ's true-sequential
 * order with the quantized layers' outputs fed forward.
 */
public final class GptqModelQuantizer {

  private GptqModelQuantizer() {}

  /** The compressed-tensors scheme a GPTQ config is stored with (pack-quantized). */
  public static CompressedTensorsScheme scheme(GptqConfig c) {
    String actorder =
        switch (c.actOrder()) {
          case NONE -> null;
          case WEIGHT -> "weight";
          case GROUP -> "group";
        };
    return new CompressedTensorsScheme(
        CompressedTensorsScheme.Format.PACK_QUANTIZED,
        c.bits(),
        c.symmetric(),
        c.groupSize(),
        actorder);
  }

  /**
   * Reads {@code modelDir}, calibrates on {@code samples} (token windows of one length) and writes
   * the quantized checkpoint to {@code outDir} with dense tensors and scales as {@code floatType}.
   */
  public static void quantize(
      Path modelDir, List<int[]> samples, GptqConfig config, Path outDir, DType floatType)
      throws IOException {
    ModelConfig model = ModelConfig.read(modelDir);
    try (TensorSource source = Checkpoints.open(modelDir);
        CompressedTensorsWriter writer =
            new CompressedTensorsWriter(
                outDir, scheme(config), floatType, Map.of("quantizer", "compactor-gptq"))) {
      QuantizedCheckpointWriter sink = new QuantizedCheckpointWriter(model, writer);
      new CalibrationCollector(
              model,
              i -> LinearGroups.trueSequential(model, i),
              CalibrationCollector.Propagation.QUANTIZED,
              true,
              4)
          .run(source, samples, new GptqLayerQuantizer(config, sink));
      sink.finish(source, modelDir, outDir);
    }
  }
}
