package dev.compactor.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** AdamW and the cosine schedule against torch.optim.AdamW + LambdaLR (make_train_golden.py). */
class AdamWTest {

  @Test
  void matchesTorchAdamWWithWarmupCosineSchedule() throws Exception {
    JsonNode golden;
    try (InputStream in = getClass().getResourceAsStream("/golden/train/adamw.json")) {
      golden = new ObjectMapper().readTree(in);
    }
    assertEquals("compactor-train-golden", golden.get("magic").asText());
    assertEquals(1, golden.get("version").asInt());
    CosineSchedule schedule =
        new CosineSchedule(
            golden.get("peak_lr").asDouble(),
            golden.get("min_lr").asDouble(),
            golden.get("warmup").asInt(),
            golden.get("total").asInt());
    try (NDManager m = NDManager.newBaseManager()) {
      Map<String, NDArray> params = new LinkedHashMap<>();
      params.put("a", m.create(floats(golden.get("init").get("a")), new Shape(3, 4)));
      params.put("b", m.create(floats(golden.get("init").get("b")), new Shape(5)));
      try (AdamW adamw =
          new AdamW(
              params,
              golden.get("beta1").asDouble(),
              golden.get("beta2").asDouble(),
              golden.get("eps").asDouble(),
              golden.get("weight_decay").asDouble(),
              name -> true)) {
        int t = 0;
        for (JsonNode step : golden.get("steps")) {
          assertEquals(step.get("lr").asDouble(), schedule.lr(t), 1e-12, "lr at step " + t);
          setGradient(m, params.get("a"), floats(step.get("grad_a")));
          setGradient(m, params.get("b"), floats(step.get("grad_b")));
          adamw.step(schedule.lr(t));
          assertClose(floats(step.get("a")), params.get("a").toFloatArray(), "a after step " + t);
          assertClose(floats(step.get("b")), params.get("b").toFloatArray(), "b after step " + t);
          t++;
        }
        assertEquals(8, adamw.steps());
      }
    }
  }

  /** Makes the gradient of {@code p} equal {@code g} via backward of sum(p * g). */
  static void setGradient(NDManager m, NDArray p, float[] g) {
    try (NDManager scope = m.newSubManager()) {
      NDArray target = scope.create(g, p.getShape());
      try (GradientCollector c = Engine.getInstance().newGradientCollector()) {
        NDArray prod = p.mul(target);
        prod.attach(scope);
        c.backward(prod.sum());
      }
    }
  }

  static float[] floats(JsonNode node) {
    int n = 0;
    for (JsonNode row : node) {
      n += row.isArray() ? row.size() : 1;
    }
    float[] out = new float[n];
    int i = 0;
    for (JsonNode row : node) {
      if (row.isArray()) {
        for (JsonNode x : row) {
          out[i++] = (float) x.asDouble();
        }
      } else {
        out[i++] = (float) row.asDouble();
      }
    }
    return out;
  }

  static void assertClose(float[] expected, float[] actual, String what) {
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], actual[i], 1e-5, what + " [" + i + "]");
    }
  }

  @Test
  void scheduleShape() {
    CosineSchedule s = new CosineSchedule(1.0, 0.1, 10, 110);
    assertEquals(0.0, s.lr(0));
    assertEquals(0.5, s.lr(5), 1e-12);
    assertEquals(1.0, s.lr(10), 1e-12);
    assertEquals(0.55, s.lr(60), 1e-12);
    assertEquals(0.1, s.lr(110), 1e-12);
    assertEquals(0.1, s.lr(500), 1e-12);
  }
}
