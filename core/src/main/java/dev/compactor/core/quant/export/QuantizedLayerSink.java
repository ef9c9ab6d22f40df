package dev.compactor.core.quant.export;

import java.io.IOException;
import java.util.Map;

/**
 * Receives one finished decoder layer from a layer-wise quantizer (GPTQ, AWQ, RTN): every tensor of
 * the layer by its name relative to the layer prefix as the quantized layer computes with it
 * (dequantized linears, rescaled norms), and the quantized form of each linear by linear name (e.g.
 * {@code self_attn.q_proj}). A writer stores the layer; an evaluation copies the weights into a
 * model.
 */
@FunctionalInterface
public interface QuantizedLayerSink {
  void accept(int layer, Map<String, float[]> weights, Map<String, QuantizedLinear> quantized)
      throws IOException;
}
