package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class StudentOptimizerTest {

  /** loss = sum(c * w^3): the gradient 3 c w^2 changes every step, exercising the moments. */
  @Test
  void matchesPlainJavaAdamWWithWarmupCosineClippingAndDecay() {
    float[] w0 = {0.5f, -1.2f, 2.0f, 0.1f};
    float[] c = {1f, 2f, -0.5f, 3f};
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 6, 1, 0.05f, 2, 0.1f, 3f, 0, 1L);
    float[] expected = referenceAdamW(w0, c, spec);
    try (NDManager mgr = NDManager.newBaseManager()) {
      NDArray w = mgr.create(w0.clone());
      NDArray cc = mgr.create(c);
      Map<String, NDArray> params = new LinkedHashMap<>();
      params.put("w", w);
      try (StudentOptimizer opt = new StudentOptimizer(params, spec, mgr)) {
        for (int step = 0; step < spec.steps(); step++) {
          try (GradientCollector tape = Engine.getInstance().newGradientCollector()) {
            tape.zeroGradients();
            NDArray loss = w.pow(mgr.create(3f)).mul(cc).sum();
            tape.backward(loss);
          }
          opt.step(step);
        }
        float[] actual = w.toFloatArray();
        for (int i = 0; i < actual.length; i++) {
          assertEquals(expected[i], actual[i], 1e-5, "w[" + i + "]");
        }
        assertEquals(spec.steps(), opt.updates());
      }
    }
  }

  @Test
  void scheduleWarmsUpThenDecaysToTenPercent() {
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 100, 1, 1f, 10, 0f, 1f, 0, 1L);
    assertEquals(0.1f, StudentOptimizer.learningRate(spec, 0), 1e-6);
    assertEquals(1f, StudentOptimizer.learningRate(spec, 9), 1e-6);
    assertEquals(1f, StudentOptimizer.learningRate(spec, 10), 1e-6);
    assertEquals(0.55f, StudentOptimizer.learningRate(spec, 55), 1e-6);
    assertEquals(0.1f, StudentOptimizer.learningRate(spec, 100), 1e-6);
  }

  private static float[] referenceAdamW(float[] w0, float[] c, DistillationSpec spec) {
    double[] w = new double[w0.length];
    double[] m = new double[w0.length];
    double[] v = new double[w0.length];
    for (int i = 0; i < w.length; i++) {
      w[i] = w0[i];
    }
    for (int t = 1; t <= spec.steps(); t++) {
      int step = t - 1;
      double lr;
      if (step < spec.warmupSteps()) {
        lr = spec.learningRate() * (step + 1.0) / spec.warmupSteps();
      } else {
        double p = (double) (step - spec.warmupSteps()) / (spec.steps() - spec.warmupSteps());
        lr = spec.learningRate() * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
      }
      double[] g = new double[w.length];
      double norm = 0;
      for (int i = 0; i < w.length; i++) {
        g[i] = 3 * c[i] * w[i] * w[i];
        norm += g[i] * g[i];
      }
      norm = Math.sqrt(norm);
      double scale = norm > spec.maxGradNorm() ? spec.maxGradNorm() / (norm + 1e-6) : 1;
      for (int i = 0; i < w.length; i++) {
        double gi = g[i] * scale;
        m[i] = 0.9 * m[i] + 0.1 * gi;
        v[i] = 0.999 * v[i] + 0.001 * gi * gi;
        w[i] *= 1 - lr * spec.weightDecay();
        double mhat = m[i] / (1 - Math.pow(0.9, t));
        double vhat = v[i] / (1 - Math.pow(0.999, t));
        w[i] -= lr * mhat / (Math.sqrt(vhat) + 1e-8);
      }
    }
    float[] out = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      out[i] = (float) w[i];
    }
    return out;
  }
}
