package dev.compactor.core.quant.gptq;

import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearStats;
import dev.compactor.core.quant.export.QuantizedLayerSink;
import dev.compactor.core.quant.export.QuantizedLinear;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * GPTQ as a {@link LayerQuantizer}: each linear of a stage is quantized from the Hessian of its
 * calibration inputs, and its weight replaced by the dequantized result so later stages and layers
 * see the quantized model. Finished layers go to a {@link QuantizedLayerSink}. Linears whose
 * statistics are {@link LinearStats#calibrated() uncalibrated} (experts with too few routed tokens)
 * are rounded to nearest.
 */
public final class GptqLayerQuantizer implements LayerQuantizer {

  private static final Logger LOG = LoggerFactory.getLogger(GptqLayerQuantizer.class);

  private final GptqQuantizer gptq;
  private final QuantizedLayerSink sink;
  private final Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();

  /** {@code sink} may be null. */
  public GptqLayerQuantizer(GptqConfig config, QuantizedLayerSink sink) {
    this.gptq = new GptqQuantizer(config);
    this.sink = sink;
  }

  @Override
  public void quantize(
      int layer,
      List<String> linears,
      Map<String, float[]> weights,
      Map<String, LinearStats> stats) {
    for (String name : linears) {
      float[] w = weights.get(name + ".weight");
      LinearStats s = stats.get(name);
      int cols = s.columns();
      // An expert the router hardly used has no Hessian worth the name (none at all with zero
      // tokens, which GPTQ would read as all inputs dead and zero the expert): the identity makes
      // GPTQ's error feedback vanish, i.e. round-to-nearest on the same grid and in the same
      // format as its neighbours.
      GptqResult r =
          gptq.quantizeConsuming(
              w, w.length / cols, cols, s.calibrated() ? s.hessian() : identity(cols));
      weights.put(name + ".weight", r.dequantized());
      quantized.put(name, r.weight());
      LOG.debug(
          "GPTQ layer {} {}: loss {} ({} dead inputs{})",
          layer,
          name,
          r.loss(),
          r.deadColumns(),
          s.calibrated() ? "" : ", round-to-nearest: " + s.tokens() + " tokens");
    }
  }

  private static double[] identity(int n) {
    double[] h = new double[n * n];
    for (int j = 0; j < n; j++) {
      h[j * n + j] = 1;
    }
    return h;
  }

  @Override
  public void layerDone(int layer, Map<String, float[]> weights) throws IOException {
    if (sink != null) {
      sink.accept(layer, weights, new LinkedHashMap<>(quantized));
    }
    quantized.clear();
  }
}
