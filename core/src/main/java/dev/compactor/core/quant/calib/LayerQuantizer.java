package dev.compactor.core.quant.calib;

import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * The algorithm side of layer-wise calibration (GPTQ, AWQ, ...): {@link CalibrationCollector} runs
 * the calibration windows up to a layer and hands over the statistics of the inputs of the linears
 * it is about to quantize; the quantizer replaces their weights in place.
 */
public interface LayerQuantizer {

  /**
   * Quantizes the {@code linears} of decoder layer {@code layer}. {@code weights} holds every
   * tensor of the layer by its name relative to the layer prefix (e.g. {@code
   * self_attn.q_proj.weight}), fp32 row-major; replace entries with the values the quantized layer
   * computes with (the dequantized weights, rescaled norms). {@code stats} has one entry per linear
   * (linears that read the same input share one object).
   */
  void quantize(
      int layer, List<String> linears, Map<String, float[]> weights, Map<String, LinearStats> stats)
      throws IOException;

  /**
   * Called once layer {@code layer} is final, with the weights the next layer's inputs were
   * computed from: write them out here (the collector forgets them afterwards).
   */
  default void layerDone(int layer, Map<String, float[]> weights) throws IOException {}
}
