package dev.compactor.core.quant.codebook;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.train.Autograd;
import dev.compactor.core.train.Losses;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * SqueezeLLM's sensitivity: the diagonal of the empirical Fisher information, {@code F_ij = 1/N
 * sum_n (dL_n / dW_ij)^2}, where {@code L_n} is the mean next-token cross entropy of calibration
 * window {@code n}, computed with DJL autograd on the whole model (one window per backward pass).
 * The model is held in memory in fp32 with one fp32 accumulator per selected weight.
 */
public final class FisherSensitivity {

  /** Progress phase name, one unit per calibration window. */
  public static final String PHASE = "fisher sensitivity";

  private FisherSensitivity() {}

  /**
   * The Fisher diagonal of every parameter of {@code model} whose name {@code select} accepts,
   * row-major like the weight, over {@code windows} (token windows of at least 2 tokens).
   */
  public static Map<String, float[]> compute(
      Transformer model, List<int[]> windows, Predicate<String> select, ProgressListener progress) {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("the Fisher sensitivity needs calibration windows");
    }
    Map<String, NDArray> params = new LinkedHashMap<>();
    model
        .parameters()
        .forEach(
            (k, v) -> {
              if (select.test(k)) {
                params.put(k, v);
              }
            });
    if (params.isEmpty()) {
      throw new IllegalArgumentException("no parameter selected for the Fisher sensitivity");
    }
    NDManager root = params.values().iterator().next().getManager();
    Map<String, float[]> out = new LinkedHashMap<>();
    try (NDManager state = root.newSubManager()) {
      Map<String, NDArray> sums = new LinkedHashMap<>();
      for (Map.Entry<String, NDArray> e : params.entrySet()) {
        e.getValue().setRequiresGradient(true);
        sums.put(e.getKey(), state.zeros(e.getValue().getShape()));
      }
      int done = 0;
      for (int[] w : windows) {
        try (NDManager m = state.newSubManager()) {
          NDArray tokens = m.create(w, new Shape(1, w.length));
          try (GradientCollector collector = Autograd.collector()) {
            NDArray logits = model.forward(m, tokens);
            NDArray loss = Losses.nextTokenCrossEntropy(logits, tokens);
            collector.backward(loss);
          }
          for (Map.Entry<String, NDArray> e : params.entrySet()) {
            try (NDArray g = e.getValue().getGradient();
                NDArray g2 = g.square()) {
              sums.get(e.getKey()).addi(g2);
              // gradients accumulate across backward passes: zero them for the next window
              g.subi(g);
            }
          }
        }
        progress.onProgress(PHASE, ++done, windows.size());
      }
      for (Map.Entry<String, NDArray> e : sums.entrySet()) {
        float[] f = e.getValue().toFloatArray();
        float inv = 1f / windows.size();
        for (int i = 0; i < f.length; i++) {
          f[i] *= inv;
        }
        out.put(e.getKey(), f);
      }
      for (NDArray p : params.values()) {
        p.setRequiresGradient(false);
      }
    }
    return out;
  }
}
