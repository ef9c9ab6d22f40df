package dev.compactor.core.quant.codebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.train.Losses;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Fisher diagonal of one window is the squared gradient: checked against central finite
 * differences of the loss on the tiny reference model, for the weights with the largest gradients
 * of two linears (fp32 loss, so only large gradients resolve: relative error 3%).
 */
class FisherSensitivityTest {

  @Test
  void oneWindowGivesTheSquaredGradientOfTheLoss() throws Exception {
    Random rnd = new Random(2);
    int[] window = new int[48];
    for (int i = 0; i < window.length; i++) {
      window[i] = rnd.nextInt(256);
    }
    List<String> names =
        List.of("model.layers.3.mlp.down_proj.weight", "model.layers.0.self_attn.v_proj.weight");
    try (Transformer model = Transformer.load(TinyReferenceModel.shipped(), Device.cpu())) {
      Map<String, float[]> fisher =
          FisherSensitivity.compute(model, List.of(window), names::contains, ProgressListener.NONE);
      assertEquals(names.size(), fisher.size());
      for (String name : names) {
        float[] f = fisher.get(name);
        NDArray p = model.parameters().get(name);
        assertEquals(p.size(), f.length);
        float[] w = p.toFloatArray();
        for (int idx : largest(f, 3)) {
          float eps = 1e-2f * Math.max(1e-2f, Math.abs(w[idx]));
          double up = lossWith(model, p, w, idx, eps, window);
          double down = lossWith(model, p, w, idx, -eps, window);
          double g = (up - down) / (2 * eps);
          double expected = g * g;
          assertEquals(expected, f[idx], 0.06 * expected, name + "[" + idx + "] g=" + g);
        }
        p.set(w);
        assertTrue(f[largest(f, 1)[0]] > 0);
      }
    }
  }

  private static double lossWith(
      Transformer model, NDArray p, float[] w, int idx, float delta, int[] window) {
    float[] v = w.clone();
    v[idx] += delta;
    p.set(v);
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray tokens = m.create(window, new Shape(1, window.length));
      return Losses.nextTokenCrossEntropy(model.logits(m, tokens), tokens).getFloat();
    }
  }

  private static int[] largest(float[] f, int n) {
    int[] out = new int[n];
    boolean[] taken = new boolean[f.length];
    for (int k = 0; k < n; k++) {
      int best = -1;
      for (int i = 0; i < f.length; i++) {
        if (!taken[i] && (best < 0 || f[i] > f[best])) {
          best = i;
        }
      }
      taken[best] = true;
      out[k] = best;
    }
    return out;
  }
}
