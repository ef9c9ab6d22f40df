package dev.compactor.core.quant.awq;

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
 * Quantizes a whole Hugging Face model directory with AWQ into a compressed-tensors checkpoint
 * (pack-quantized, scales folded into norms / v_proj / up_proj), streaming one decoder layer at a
 * time; like AutoAWQ, the next layer is calibrated on the full-precision outputs.
 */
public final class AwqModelQuantizer {

  private AwqModelQuantizer() {}

  /** The compressed-tensors scheme an AWQ config is stored with. */
  public static CompressedTensorsScheme scheme(AwqConfig c) {
    return new CompressedTensorsScheme(
        CompressedTensorsScheme.Format.PACK_QUANTIZED,
        c.bits(),
        c.symmetric(),
        c.groupSize(),
        null);
  }

  /** Reads {@code modelDir}, calibrates on {@code samples}, writes {@code outDir}. */
  public static void quantize(
      Path modelDir, List<int[]> samples, AwqConfig config, Path outDir, DType floatType)
      throws IOException {
    ModelConfig model = ModelConfig.read(modelDir);
    try (TensorSource source = Checkpoints.open(modelDir);
        CompressedTensorsWriter writer =
            new CompressedTensorsWriter(
                outDir, scheme(config), floatType, Map.of("quantizer", "compactor-awq"))) {
      QuantizedCheckpointWriter sink = new QuantizedCheckpointWriter(model, writer);
      new CalibrationCollector(
              model,
              i -> LinearGroups.oneStage(model, i),
              CalibrationCollector.Propagation.ORIGINAL,
              true,
              4)
          .run(source, samples, new AwqLayerQuantizer(model, config, true, sink));
      sink.finish(source, modelDir, outDir);
    }
  }
}
