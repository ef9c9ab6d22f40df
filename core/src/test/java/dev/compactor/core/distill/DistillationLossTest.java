package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

class DistillationLossTest {

  @Test
  void valueAndGradientMatchPyTorch() throws Exception {
    JsonNode doc;
    try (InputStream in = getClass().getResourceAsStream("/distill/distill_loss_golden.json")) {
      doc = new ObjectMapper().readTree(in);
    }
    assertEquals("compactor-distill-golden", doc.get("magic").asText());
    assertEquals(1, doc.get("version").asInt());
    for (JsonNode c : doc.get("cases")) {
      long[] shape = {c.get("shape").get(0).asLong(), c.get("shape").get(1).asLong(), 0};
      shape[2] = c.get("shape").get(2).asLong();
      float t = (float) c.get("temperature").asDouble();
      float alpha = (float) c.get("alpha").asDouble();
      try (NDManager m = NDManager.newBaseManager();
          DistillationLoss loss = new DistillationLoss(m, t, alpha)) {
        NDArray student = m.create(floats(c.get("student")), new Shape(shape));
        NDArray teacher = m.create(floats(c.get("teacher")), new Shape(shape));
        NDArray targets = m.create(ints(c.get("targets")), new Shape(shape[0], shape[1]));
        student.setRequiresGradient(true);
        DistillationLoss.Terms terms;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          terms = loss.terms(student, teacher, targets);
          // A collection before backward must not matter: the loss holds its scalars.
          System.gc();
          gc.backward(terms.loss());
        }
        assertEquals(c.get("loss").asDouble(), terms.loss().getFloat(), 1e-5, "loss");
        assertEquals(c.get("kl").asDouble(), terms.kl().getFloat(), 1e-5, "kl");
        assertEquals(c.get("ce").asDouble(), terms.crossEntropy().getFloat(), 1e-5, "ce");
        float[] grad = student.getGradient().toFloatArray();
        float[] expected = floats(c.get("grad"));
        for (int i = 0; i < grad.length; i++) {
          assertEquals(expected[i], grad[i], 1e-6, "grad[" + i + "]");
        }
      }
    }
  }

  @Test
  void valueMatchesPlainJavaReference() {
    Random rnd = new Random(7);
    int positions = 12;
    int vocab = 29;
    float[] s = new float[positions * vocab];
    float[] t = new float[positions * vocab];
    int[] y = new int[positions];
    for (int i = 0; i < s.length; i++) {
      s[i] = (float) rnd.nextGaussian() * 2;
      t[i] = (float) rnd.nextGaussian() * 3;
    }
    for (int i = 0; i < positions; i++) {
      y[i] = rnd.nextInt(vocab);
    }
    float temperature = 3f;
    float alpha = 0.6f;
    double expected = reference(s, t, y, vocab, temperature, alpha);
    try (NDManager m = NDManager.newBaseManager();
        DistillationLoss loss = new DistillationLoss(m, temperature, alpha)) {
      float actual =
          loss.compute(
                  m.create(s, new Shape(3, 4, vocab)),
                  m.create(t, new Shape(3, 4, vocab)),
                  m.create(y, new Shape(3, 4)))
              .getFloat();
      assertEquals(expected, actual, 1e-5 * Math.abs(expected));
    }
  }

  @Test
  void rejectsMismatchedShapesAndBadSettings() {
    try (NDManager m = NDManager.newBaseManager()) {
      assertThrows(IllegalArgumentException.class, () -> new DistillationLoss(m, 0f, 0.5f));
      assertThrows(IllegalArgumentException.class, () -> new DistillationLoss(m, 1f, 1.5f));
      try (DistillationLoss loss = new DistillationLoss(m, 1f, 0.5f)) {
        assertThrows(
            IllegalArgumentException.class,
            () ->
                loss.compute(
                    m.zeros(new Shape(2, 5)), m.zeros(new Shape(2, 6)), m.zeros(new Shape(2))));
        assertThrows(
            IllegalArgumentException.class,
            () ->
                loss.compute(
                    m.zeros(new Shape(2, 5)), m.zeros(new Shape(2, 5)), m.zeros(new Shape(3))));
      }
    }
  }

  /** Independent double-precision formula: log-sum-exp per row, KL summed, means over rows. */
  static double reference(float[] s, float[] t, int[] y, int vocab, float temp, float alpha) {
    int positions = y.length;
    double kl = 0;
    double ce = 0;
    for (int p = 0; p < positions; p++) {
      double[] ls = logSoftmax(s, p * vocab, vocab, temp);
      double[] lt = logSoftmax(t, p * vocab, vocab, temp);
      for (int v = 0; v < vocab; v++) {
        kl += Math.exp(lt[v]) * (lt[v] - ls[v]);
      }
      ce -= logSoftmax(s, p * vocab, vocab, 1.0)[y[p]];
    }
    kl /= positions;
    ce /= positions;
    return alpha * temp * temp * kl + (1 - alpha) * ce;
  }

  private static double[] logSoftmax(float[] x, int off, int n, double temp) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[off + i] / temp);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(x[off + i] / temp - max);
    }
    double lse = max + Math.log(sum);
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      out[i] = x[off + i] / temp - lse;
    }
    return out;
  }

  private static float[] floats(JsonNode a) {
    float[] f = new float[a.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) a.get(i).asDouble();
    }
    return f;
  }

  private static int[] ints(JsonNode a) {
    int[] f = new int[a.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = a.get(i).asInt();
    }
    return f;
  }
}
