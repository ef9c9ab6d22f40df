package dev.compactor.core.quant.awq;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearStats;
import dev.compactor.core.quant.export.QuantizedLayerSink;
import dev.compactor.core.quant.export.QuantizedLinear;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * AWQ for one Llama decoder layer, run by {@link
 * dev.compactor.core.quant.calib.CalibrationCollector} with {@code ONE_STAGE} (all scales searched
 * on the unmodified layer, as AutoAWQ does). For each group of linears sharing an input it searches
 * the input-channel scale {@code s}, multiplies their weight columns by {@code s} and folds {@code
 * 1/s} into the op that produces the input, so the layer computes the same function before
 * rounding:
 *
 * <ul>
 *   <li>q/k/v: {@code input_layernorm.weight /= s};
 *   <li>gate/up: {@code post_attention_layernorm.weight /= s};
 *   <li>o_proj: rows (and bias) of v_proj {@code /= s} (attention output is linear in V per
 *       channel), only when every query head has its own kv head; with grouped-query attention an
 *       o_proj channel's scale would have to be shared by all heads of a kv group, so, like
 *       AutoAWQ, o_proj then gets no scale;
 *   <li>down_proj: rows (and bias) of up_proj {@code /= s} ({@code silu(gate) * up} is linear in
 *       up).
 * </ul>
 *
 * Then, when enabled, each linear except q_proj and k_proj (whose errors are amplified through the
 * attention scores; AutoAWQ skips them too) gets a clipping search, and every linear is rounded.
 * The entries of the weights map become the values the quantized layer computes with: rescaled
 * norms, dequantized {@code Q(W diag(s))}.
 */
public final class AwqLayerQuantizer implements LayerQuantizer {

  private static final Logger LOG = LoggerFactory.getLogger(AwqLayerQuantizer.class);

  private final ModelConfig model;
  private final AwqQuantizer awq;
  private final boolean round;
  private final QuantizedLayerSink sink;
  private final Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();

  /**
   * @param round false applies only the scales (for tests of the folding and for inspection)
   * @param sink receives each finished layer (may be null)
   */
  public AwqLayerQuantizer(
      ModelConfig model, AwqConfig config, boolean round, QuantizedLayerSink sink) {
    if (model.family() != ModelConfig.Family.LLAMA) {
      throw new UnsupportedOperationException("not supported yet: AWQ for " + model.modelType());
    }
    this.model = model;
    this.awq = new AwqQuantizer(config);
    this.round = round;
    this.sink = sink;
  }

  @Override
  public void quantize(
      int layer, List<String> linears, Map<String, float[]> w, Map<String, LinearStats> stats) {
    if (!linears.containsAll(List.of("self_attn.q_proj", "mlp.down_proj"))) {
      throw new IllegalArgumentException(
          "AWQ needs all linears of a layer in one stage (CalibrationCollector.ONE_STAGE)");
    }
    int h = model.hiddenSize();
    int q = model.numHeads() * model.headDim();
    int kv = model.numKvHeads() * model.headDim();
    int inter = model.intermediateSize();
    Map<String, float[]> scales = new LinkedHashMap<>();
    scales.put(
        "qkv",
        search(
            w,
            stats.get("self_attn.q_proj"),
            h,
            List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
            new int[] {q, kv, kv}));
    if (model.numKvHeads() == model.numHeads()) {
      scales.put(
          "o",
          search(w, stats.get("self_attn.o_proj"), q, List.of("self_attn.o_proj"), new int[] {h}));
    }
    scales.put(
        "mlp",
        search(
            w,
            stats.get("mlp.gate_proj"),
            h,
            List.of("mlp.gate_proj", "mlp.up_proj"),
            new int[] {inter, inter}));
    scales.put(
        "down",
        search(w, stats.get("mlp.down_proj"), inter, List.of("mlp.down_proj"), new int[] {h}));

    float[] s = scales.get("qkv");
    divide(w.get("input_layernorm.weight"), s);
    for (String name : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")) {
      w.put(name + ".weight", AwqQuantizer.scaleColumns(w.get(name + ".weight"), rows(name), h, s));
    }
    if (scales.containsKey("o")) {
      s = scales.get("o");
      w.put(
          "self_attn.o_proj.weight",
          AwqQuantizer.scaleColumns(w.get("self_attn.o_proj.weight"), h, q, s));
      divideRows(w, "self_attn.v_proj", kv, h, s);
    }
    s = scales.get("mlp");
    divide(w.get("post_attention_layernorm.weight"), s);
    for (String name : List.of("mlp.gate_proj", "mlp.up_proj")) {
      w.put(name + ".weight", AwqQuantizer.scaleColumns(w.get(name + ".weight"), inter, h, s));
    }
    s = scales.get("down");
    w.put(
        "mlp.down_proj.weight",
        AwqQuantizer.scaleColumns(w.get("mlp.down_proj.weight"), h, inter, s));
    divideRows(w, "mlp.up_proj", inter, h, s);

    if (!round) {
      return;
    }
    quantized.clear();
    for (String name : linears) {
      int rows = rows(name);
      int cols = cols(name);
      float[] weight = w.get(name + ".weight");
      if (awq.config().clipSearch()
          && !name.equals("self_attn.q_proj")
          && !name.equals("self_attn.k_proj")) {
        float[] inputScale = scales.get(groupOf(name));
        double[] gram = stats.get(name).gram();
        if (inputScale != null) {
          for (int i = 0; i < cols; i++) {
            for (int j = 0; j < cols; j++) {
              gram[i * cols + j] /= (double) inputScale[i] * inputScale[j];
            }
          }
        }
        weight = awq.clip(weight, rows, cols, gram);
      }
      QuantizedLinear ql = awq.quantize(weight, rows, cols);
      quantized.put(name, ql);
      w.put(name + ".weight", ql.dequantize());
    }
    LOG.debug("AWQ layer {}: scales for {}", layer, scales.keySet());
  }

  @Override
  public void layerDone(int layer, Map<String, float[]> weights) throws IOException {
    if (sink != null) {
      sink.accept(layer, weights, new LinkedHashMap<>(quantized));
    }
    quantized.clear();
  }

  private float[] search(
      Map<String, float[]> w, LinearStats stats, int cols, List<String> names, int[] rows) {
    List<float[]> weights = new ArrayList<>();
    for (String n : names) {
      weights.add(w.get(n + ".weight"));
    }
    AwqQuantizer.ScaleSearch result =
        awq.searchScales(weights, rows, cols, stats.gram(), stats.meanAbs());
    LOG.debug("AWQ {}: alpha {}", names, result.alpha());
    return result.scales();
  }

  private static String groupOf(String linear) {
    return switch (linear) {
      case "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" -> "qkv";
      case "self_attn.o_proj" -> "o";
      case "mlp.gate_proj", "mlp.up_proj" -> "mlp";
      default -> "down";
    };
  }

  private int rows(String linear) {
    return switch (linear) {
      case "self_attn.q_proj" -> model.numHeads() * model.headDim();
      case "self_attn.k_proj", "self_attn.v_proj" -> model.numKvHeads() * model.headDim();
      case "mlp.gate_proj", "mlp.up_proj" -> model.intermediateSize();
      default -> model.hiddenSize();
    };
  }

  private int cols(String linear) {
    return switch (linear) {
      case "self_attn.o_proj" -> model.numHeads() * model.headDim();
      case "mlp.down_proj" -> model.intermediateSize();
      default -> model.hiddenSize();
    };
  }

  private static void divide(float[] v, float[] s) {
    for (int j = 0; j < v.length; j++) {
      v[j] /= s[j];
    }
  }

  /** Row j (and bias j) of linear {@code name} divided by {@code s[j]}. */
  private static void divideRows(
      Map<String, float[]> w, String name, int rows, int cols, float[] s) {
    float[] weight = w.get(name + ".weight").clone();
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        weight[r * cols + c] /= s[r];
      }
    }
    w.put(name + ".weight", weight);
    float[] bias = w.get(name + ".bias");
    if (bias != null) {
      bias = bias.clone();
      divide(bias, s);
      w.put(name + ".bias", bias);
    }
  }
}
