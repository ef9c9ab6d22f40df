package dev.compactor.core.quant.awq;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearGroups;
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
 * AWQ for one decoder layer, run by {@link dev.compactor.core.quant.calib.CalibrationCollector}
 * with {@link LinearGroups#oneStage} (all scales searched on the unmodified layer, as AutoAWQ
 * does). For each group of linears sharing an input ({@link LinearGroups}) it searches the
 * input-channel scale {@code s}, multiplies their weight columns by {@code s} and folds {@code 1/s}
 * into the op that produces the input, so the layer computes the same function before rounding:
 *
 * <ul>
 *   <li>attention input (q/k/v, or Phi-3's fused qkv_proj): {@code input_layernorm.weight /= s}.
 *       Qwen3's q/k norms come after the projections and normalise each head's vector, which {@code
 *       (h/s)(W diag s) = hW} leaves unchanged;
 *   <li>o_proj: rows (and bias) of v_proj {@code /= s} (attention output is linear in V per
 *       channel), only when every query head has its own kv head and v is its own linear; with
 *       grouped-query attention an o_proj channel's scale would have to be shared by all heads of a
 *       kv group, so, like AutoAWQ, o_proj then gets no scale; Phi-3's fused qkv_proj gets none
 *       either (AutoAWQ's phi3 leaves that scaling out). Qwen3 normalises only q and k, so v is
 *       folded into as in Llama (AutoAWQ's qwen3 does the same);
 *   <li>gate/up (or Phi-3's gate_up_proj): {@code post_attention_layernorm.weight /= s};
 *   <li>down_proj: rows (and bias) of up_proj (Phi-3: the up half, rows {@code [inter, 2 inter)},
 *       of gate_up_proj) {@code /= s} ({@code silu(gate) * up} is linear in up);
 *   <li>Mixtral: an expert's down: rows of that expert's up {@code /= s}, searched on its routed
 *       tokens. The experts' gate/up get <b>no</b> scale: folding into {@code
 *       post_attention_layernorm} would change the router's input too (it reads the same normed
 *       states, and stays in full precision), and each expert reads different tokens, so no single
 *       searched scale fits the group. An expert below {@link LinearGroups#minExpertTokens} routed
 *       tokens gets no scale and no clipping: it is rounded as it is. Qwen MoE's sparse layers
 *       alike; their dense layers are the ordinary MLP above;
 *   <li>Qwen2-MoE's shared expert: its down: rows of its up {@code /= s}, searched on every token.
 *       Its gate/up get <b>no</b> scale, like the experts': they read the same normed states as the
 *       router and {@code shared_expert_gate}, which stay in full precision, so {@code 1/s} cannot
 *       go into {@code post_attention_layernorm}. {@code shared_expert_gate} is never scaled or
 *       rounded.
 * </ul>
 *
 * Then, when enabled, each linear except q_proj, k_proj and the fused qkv_proj (whose errors are
 * amplified through the attention scores; AutoAWQ skips q and k too) gets a clipping search, and
 * every linear is rounded. The entries of the weights map become the values the quantized layer
 * computes with: rescaled norms, dequantized {@code Q(W diag(s))}.
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
    LinearGroups.of(model, 0); // refuses what calibration cannot run
    this.model = model;
    this.awq = new AwqQuantizer(config);
    this.round = round;
    this.sink = sink;
  }

  @Override
  public void quantize(
      int layer, List<String> linears, Map<String, float[]> w, Map<String, LinearStats> stats) {
    if (!linears.containsAll(LinearGroups.compressible(model, layer))) {
      throw new IllegalArgumentException(
          "AWQ needs all linears of a layer in one stage (LinearGroups.oneStage)");
    }
    // the input scale of each linear whose columns were scaled
    Map<String, float[]> scaleOf = new LinkedHashMap<>();
    for (LinearGroups.Group g : LinearGroups.of(model, layer)) {
      String fold = foldTarget(g, stats);
      if (fold == null) {
        continue;
      }
      LinearStats st = stats.get(g.linears().get(0));
      int cols = st.columns();
      List<float[]> weights = new ArrayList<>();
      int[] rows = new int[g.linears().size()];
      for (int k = 0; k < rows.length; k++) {
        weights.add(w.get(g.linears().get(k) + ".weight"));
        rows[k] = LinearGroups.shape(model, layer, g.linears().get(k))[0];
      }
      AwqQuantizer.ScaleSearch r = awq.searchScales(weights, rows, cols, st.gram(), st.meanAbs());
      LOG.debug("AWQ layer {} {}: alpha {}", layer, g.linears(), r.alpha());
      float[] s = r.scales();
      for (int k = 0; k < rows.length; k++) {
        String name = g.linears().get(k);
        w.put(name + ".weight", AwqQuantizer.scaleColumns(weights.get(k), rows[k], cols, s));
        scaleOf.put(name, s);
      }
      if (fold.endsWith("layernorm.weight")) {
        w.put(fold, divide(w.get(fold), s));
      } else {
        int[] shape = LinearGroups.shape(model, layer, fold);
        // the producing rows are the last s.length rows: all of v_proj/up_proj, gate_up_proj's up
        divideRows(w, fold, shape[0] - s.length, s.length, shape[1], s);
      }
    }
    if (!round) {
      return;
    }
    quantized.clear();
    for (String name : linears) {
      int[] shape = LinearGroups.shape(model, layer, name);
      int rows = shape[0];
      int cols = shape[1];
      float[] weight = w.get(name + ".weight");
      LinearStats st = stats.get(name);
      if (awq.config().clipSearch() && st.calibrated() && !attentionScores(name)) {
        float[] inputScale = scaleOf.get(name);
        double[] gram = st.gram();
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
    LOG.debug("AWQ layer {}: scaled {}", layer, scaleOf.keySet());
  }

  /**
   * What {@code 1/s} of group {@code g} folds into (a norm weight or the linear whose last rows
   * produce the input), or null when the group gets no scale.
   */
  private String foldTarget(LinearGroups.Group g, Map<String, LinearStats> stats) {
    return switch (g.input()) {
      case ATTENTION -> "input_layernorm.weight";
      case ATTENTION_OUT ->
          model.numKvHeads() == model.numHeads() && !model.fusedProjections()
              ? "self_attn.v_proj"
              : null;
      case MLP -> "post_attention_layernorm.weight";
      case MLP_OUT -> model.fusedProjections() ? "mlp.gate_up_proj" : "mlp.up_proj";
      case EXPERT_OUT ->
          stats.get(g.linears().get(0)).calibrated()
              ? Layout.expert(model, g.expert(), Layout.ExpertProj.UP)
              : null;
      case SHARED_EXPERT_OUT -> Layout.sharedExpert(model, Layout.ExpertProj.UP);
      case ROUTER, EXPERT, SHARED_EXPERT -> null;
    };
  }

  private static boolean attentionScores(String linear) {
    return linear.equals("self_attn.q_proj")
        || linear.equals("self_attn.k_proj")
        || linear.equals("self_attn.qkv_proj");
  }

  @Override
  public void layerDone(int layer, Map<String, float[]> weights) throws IOException {
    if (sink != null) {
      sink.accept(layer, weights, new LinkedHashMap<>(quantized));
    }
    quantized.clear();
  }

  private static float[] divide(float[] v, float[] s) {
    float[] out = v.clone();
    for (int j = 0; j < out.length; j++) {
      out[j] /= s[j];
    }
    return out;
  }

  /** Rows {@code first..first+count-1} (and their bias) of linear {@code name} divided by s. */
  private static void divideRows(
      Map<String, float[]> w, String name, int first, int count, int cols, float[] s) {
    float[] weight = w.get(name + ".weight").clone();
    for (int r = 0; r < count; r++) {
      for (int c = 0; c < cols; c++) {
        weight[(first + r) * cols + c] /= s[r];
      }
    }
    w.put(name + ".weight", weight);
    float[] bias = w.get(name + ".bias");
    if (bias != null) {
      bias = bias.clone();
      for (int r = 0; r < count; r++) {
        bias[first + r] /= s[r];
      }
      w.put(name + ".bias", bias);
    }
  }
}
