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
  void maskedAndTopKLossesMatchPyTorch() throws Exception {
    JsonNode doc = HiddenStateLossTest.golden();
    for (JsonNode c : doc.get("kd")) {
      long[] shape = new long[3];
      for (int i = 0; i < 3; i++) {
        shape[i] = c.get("shape").get(i).asLong();
      }
      int k = c.get("k").asInt();
      Shape positions = new Shape(shape[0], shape[1]);
      try (NDManager m = NDManager.newBaseManager();
          DistillationLoss loss =
              new DistillationLoss(
                  m, (float) c.get("temperature").asDouble(), (float) c.get("alpha").asDouble())) {
        NDArray teacher = m.create(floats(c.get("teacher")), new Shape(shape));
        NDArray targets = m.create(ints(c.get("targets")), positions);
        NDArray mask = m.create(floats(c.get("mask")), positions);
        NDArray student = m.create(floats(c.get("student")), new Shape(shape));
        student.setRequiresGradient(true);
        DistillationLoss.Terms terms;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          terms = loss.terms(student, teacher, targets, mask);
          gc.backward(terms.loss());
        }
        assertEquals(c.get("loss").asDouble(), terms.loss().getFloat(), 1e-5, "masked loss");
        assertEquals(c.get("kl").asDouble(), terms.kl().getFloat(), 1e-5, "masked kl");
        assertEquals(c.get("ce").asDouble(), terms.crossEntropy().getFloat(), 1e-5, "masked ce");
        assertGrad(
            floats(c.get("grad")), student.getGradient().toFloatArray(), floats(c.get("mask")));

        Shape topShape = new Shape(shape[0], shape[1], k);
        NDArray values = m.create(floats(c.get("topk_values")), topShape);
        NDArray indices = m.create(ints(c.get("topk_indices")), topShape);
        NDArray student2 = m.create(floats(c.get("student")), new Shape(shape));
        student2.setRequiresGradient(true);
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          terms = loss.topKTerms(student2, values, indices, targets, mask);
          System.gc();
          gc.backward(terms.loss());
        }
        assertEquals(c.get("topk_loss").asDouble(), terms.loss().getFloat(), 1e-5, "top-k loss");
        assertEquals(c.get("topk_kl").asDouble(), terms.kl().getFloat(), 1e-5, "top-k kl");
        assertGrad(
            floats(c.get("topk_grad")),
            student2.getGradient().toFloatArray(),
            floats(c.get("mask")));
      }
    }
  }

  @Test
  void maskedPositionsContributeNothing() {
    Random rnd = new Random(3);
    int vocab = 11;
    float[] s = new float[6 * vocab];
    float[] t = new float[6 * vocab];
    for (int i = 0; i < s.length; i++) {
      s[i] = (float) rnd.nextGaussian();
      t[i] = (float) rnd.nextGaussian() * 2;
    }
    float[] mask = {1, 0, 1, 0, 0, 1};
    int[] y = {1, 2, 3, 4, 5, 6};
    try (NDManager m = NDManager.newBaseManager();
        DistillationLoss loss = new DistillationLoss(m, 2f, 0.5f)) {
      float before =
          loss.terms(
                  m.create(s, new Shape(2, 3, vocab)),
                  m.create(t, new Shape(2, 3, vocab)),
                  m.create(y, new Shape(2, 3)),
                  m.create(mask, new Shape(2, 3)))
              .loss()
              .getFloat();
      // scramble everything at the masked positions: student, teacher and target
      for (int p = 0; p < 6; p++) {
        if (mask[p] == 0) {
          for (int v = 0; v < vocab; v++) {
            s[p * vocab + v] = 50f * (float) rnd.nextGaussian();
            t[p * vocab + v] = -50f * (float) rnd.nextGaussian();
          }
          y[p] = 0;
        }
      }
      float after =
          loss.terms(
                  m.create(s, new Shape(2, 3, vocab)),
                  m.create(t, new Shape(2, 3, vocab)),
                  m.create(y, new Shape(2, 3)),
                  m.create(mask, new Shape(2, 3)))
              .loss()
              .getFloat();
      assertEquals(before, after, 1e-6);
      // only the kept positions, computed with the unmasked formula
      float[] sk = new float[3 * vocab];
      float[] tk = new float[3 * vocab];
      int[] yk = new int[3];
      int at = 0;
      for (int p = 0; p < 6; p++) {
        if (mask[p] == 1) {
          System.arraycopy(s, p * vocab, sk, at * vocab, vocab);
          System.arraycopy(t, p * vocab, tk, at * vocab, vocab);
          yk[at++] = y[p];
        }
      }
      assertEquals(reference(sk, tk, yk, vocab, 2f, 0.5f), after, 1e-5);
    }
  }

  private static void assertGrad(float[] expected, float[] actual, float[] mask) {
    int vocab = actual.length / mask.length;
    for (int i = 0; i < actual.length; i++) {
      assertEquals(expected[i], actual[i], 1e-6, "grad[" + i + "]");
      if (mask[i / vocab] == 0) {
        assertEquals(0f, actual[i], "a masked position has no gradient");
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
