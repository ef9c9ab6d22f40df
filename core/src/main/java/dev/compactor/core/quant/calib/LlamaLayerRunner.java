package dev.compactor.core.quant.calib;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import dev.compactor.core.model.ModelConfig;
import java.util.List;
import java.util.Map;

/**
 * One Llama-family decoder layer applied to hidden states {@code [batch, seq, hidden]}, with the
 * same arithmetic as {@code dev.compactor.core.model.internal.Forward} (which only runs whole
 * models). Calibration needs the layer alone: GPTQ feeds layer {@code i+1} the outputs of the
 * already-quantized layer {@code i}, so hidden states are carried between layers here instead of
 * recomputed from the tokens. {@code LlamaLayerRunnerTest} checks it against the model's logits.
 */
final class LlamaLayerRunner {

  /** Sees each distinct linear input once, with the linears that read it. */
  interface InputObserver {
    void observe(List<String> linears, NDArray input);
  }

  static final List<String> ATTENTION_IN =
      List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj");
  static final List<String> O_IN = List.of("self_attn.o_proj");
  static final List<String> MLP_IN = List.of("mlp.gate_proj", "mlp.up_proj");
  static final List<String> DOWN_IN = List.of("mlp.down_proj");

  private final ModelConfig c;
  private final NDArray eps;
  private final NDArray scale;

  LlamaLayerRunner(ModelConfig c, NDManager constants) {
    if (c.family() != ModelConfig.Family.LLAMA) {
      throw new UnsupportedOperationException(
          "not supported yet: layer-wise calibration of " + c.modelType() + " (Llama family only)");
    }
    this.c = c;
    this.eps = constants.create((float) c.normEps());
    this.scale = constants.create((float) (1.0 / Math.sqrt(c.headDim())));
  }

  /** The layer's output; every array it makes is attached to {@code x}'s manager. */
  NDArray apply(Map<String, NDArray> w, NDArray x, InputObserver observer) {
    long batch = x.getShape().get(0);
    int seq = Math.toIntExact(x.getShape().get(1));
    if (c.slidingWindow() > 0 && seq > c.slidingWindow()) {
      throw new UnsupportedOperationException(
          "not supported yet: calibration windows longer than sliding_window " + c.slidingWindow());
    }
    NDManager m = x.getManager();
    NDArray[] rope = c.ropeScaling().tables(m, 0, seq);
    NDArray mask = causalMask(m, seq);
    NDArray h = rmsNorm(x, w.get("input_layernorm.weight"));
    see(observer, ATTENTION_IN, h);
    NDArray q = rope(heads(linear(w, "self_attn.q_proj", h), batch, seq, c.numHeads()), rope);
    NDArray k = rope(heads(linear(w, "self_attn.k_proj", h), batch, seq, c.numKvHeads()), rope);
    NDArray v = heads(linear(w, "self_attn.v_proj", h), batch, seq, c.numKvHeads());
    NDArray keys = repeatKv(k);
    NDArray values = repeatKv(v);
    NDArray scores = q.matMul(keys.transpose(0, 1, 3, 2)).mul(scale).add(mask);
    NDArray attn =
        scores
            .softmax(3)
            .matMul(values)
            .transpose(0, 2, 1, 3)
            .reshape(batch, seq, (long) c.numHeads() * c.headDim());
    see(observer, O_IN, attn);
    x = x.add(linear(w, "self_attn.o_proj", attn));
    h = rmsNorm(x, w.get("post_attention_layernorm.weight"));
    see(observer, MLP_IN, h);
    NDArray gate = linear(w, "mlp.gate_proj", h);
    NDArray up = linear(w, "mlp.up_proj", h);
    NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up);
    see(observer, DOWN_IN, act);
    return x.add(linear(w, "mlp.down_proj", act));
  }

  private static void see(InputObserver observer, List<String> linears, NDArray x) {
    if (observer != null) {
      observer.observe(linears, x.reshape(-1, x.getShape().get(2)));
    }
  }

  private static NDArray linear(Map<String, NDArray> w, String name, NDArray x) {
    NDArray bias = w.get(name + ".bias");
    NDArray weight = w.get(name + ".weight");
    return (bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias)).head();
  }

  private NDArray rmsNorm(NDArray x, NDArray weight) {
    NDArray rms = x.square().mean(new int[] {2}, true).add(eps).sqrt();
    return x.div(rms).mul(weight);
  }

  private NDArray heads(NDArray x, long batch, int seq, int n) {
    return x.reshape(batch, seq, n, c.headDim()).transpose(0, 2, 1, 3);
  }

  private NDArray repeatKv(NDArray kv) {
    Shape s = kv.getShape();
    int rep = c.numHeads() / c.numKvHeads();
    return kv.expandDims(2)
        .broadcast(s.get(0), s.get(1), rep, s.get(2), s.get(3))
        .reshape(s.get(0), s.get(1) * rep, s.get(2), s.get(3));
  }

  private static NDArray rope(NDArray x, NDArray[] table) {
    NDList halves = x.split(2, 3);
    NDArray rotated = halves.get(1).neg().concat(halves.get(0), 3);
    return x.mul(table[0]).add(rotated.mul(table[1]));
  }

  private static NDArray causalMask(NDManager m, int seq) {
    float[] mk = new float[seq * seq];
    for (int t = 0; t < seq; t++) {
      for (int s = t + 1; s < seq; s++) {
        mk[t * seq + s] = Float.NEGATIVE_INFINITY;
      }
    }
    return m.create(mk, new Shape(seq, seq));
  }
}
