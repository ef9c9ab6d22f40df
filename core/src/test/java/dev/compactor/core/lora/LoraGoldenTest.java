package dev.compactor.core.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.WeightTransform;
import dev.compactor.core.prune.TestModels;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The LoRA transform against PyTorch autograd (make_lora_golden.py): the output of one adapted
 * linear and the gradients of A and B, unmasked (PEFT's activation-side form) and masked.
 */
class LoraGoldenTest {

  private static final String TENSOR = "self_attn.q_proj.weight";

  @Test
  void forwardAndGradientsMatchTorch() throws Exception {
    JsonNode doc;
    try (InputStream in = getClass().getResourceAsStream("/lora/lora_golden.json")) {
      doc = new ObjectMapper().readTree(in);
    }
    assertEquals("compactor-lora-golden", doc.get("magic").asText());
    assertEquals(1, doc.get("version").asInt());
    for (JsonNode c : doc.get("cases")) {
      check(c);
    }
  }

  private static void check(JsonNode c) {
    int n = c.get("n").asInt();
    int out = c.get("out").asInt();
    int in = c.get("in").asInt();
    int r = c.get("r").asInt();
    boolean masked = c.get("masked").asBoolean();
    String label = "case out=" + out + " in=" + in + " r=" + r + (masked ? " masked" : "");
    LoraAdapter.Target t =
        new LoraAdapter.Target(0, TENSOR, "model.layers.0.self_attn.q_proj", out, in);
    Map<String, float[]> values = new LinkedHashMap<>();
    values.put(t.keyA(), floats(c.get("a")));
    values.put(t.keyB(), floats(c.get("b")));
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray w = m.create(floats(c.get("w")), new Shape(out, in));
      try (LoraAdapter adapter =
          LoraAdapter.of(
              Device.cpu(),
              r,
              (float) c.get("alpha").asDouble(),
              masked,
              List.of(t),
              values,
              x -> w)) {
        NDArray a = adapter.parameters().get(t.keyA());
        NDArray b = adapter.parameters().get(t.keyB());
        a.setRequiresGradient(true);
        b.setRequiresGradient(true);
        NDArray x = m.create(floats(c.get("x")), new Shape(n, in));
        NDArray g = m.create(floats(c.get("upstream")), new Shape(n, out));
        WeightTransform transform = adapter.transform();
        float[] y;
        try (NDManager pass = m.newSubManager();
            GradientCollector tape = Engine.getInstance().newGradientCollector()) {
          NDArray effective = transform.apply(0, TENSOR, w, pass);
          NDArray result = x.matMul(effective.transpose());
          result.attach(pass);
          NDArray loss = result.mul(g).sum();
          tape.backward(loss);
          y = result.toFloatArray();
        }
        near(label + " y", floats(c.get("y")), y);
        near(label + " dL/dA", floats(c.get("grad_a")), a.getGradient().toFloatArray());
        near(label + " dL/dB", floats(c.get("grad_b")), b.getGradient().toFloatArray());
        // the transform leaves every other tensor as stored
        assertTrue(transform.apply(0, "mlp.up_proj.weight", w, m) == w, label);
        assertTrue(transform.apply(1, TENSOR, w, m) == w, label);
      }
    }
  }

  @Test
  void freshAdaptersStartAsPeftDoes() {
    LoraSpec spec = new LoraSpec(4, 8f, List.of("q_proj", "down_proj"), 5L);
    try (Transformer base = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        LoraAdapter adapter = LoraAdapter.create(base, spec, false)) {
      assertEquals(4, adapter.targets().size());
      assertEquals(List.of("q_proj", "down_proj"), adapter.targetModules());
      assertEquals(2f, adapter.scaling());
      for (LoraAdapter.Target t : adapter.targets()) {
        float[] a = adapter.parameters().get(t.keyA()).toFloatArray();
        float[] b = adapter.parameters().get(t.keyB()).toFloatArray();
        double bound = 1 / Math.sqrt(t.in());
        double sumSq = 0;
        for (float v : a) {
          assertTrue(Math.abs(v) <= bound, t.module() + ": |A| beyond 1/sqrt(in)");
          sumSq += v * v;
        }
        // uniform(-bound, bound) has variance bound^2 / 3
        double std = Math.sqrt(sumSq / a.length);
        assertEquals(bound / Math.sqrt(3), std, 0.2 * bound / Math.sqrt(3), t.module());
        for (float v : b) {
          assertEquals(0f, v, t.module() + ": B must start at 0");
        }
      }
      try (LoraAdapter again = LoraAdapter.create(base, spec, false)) {
        String k = adapter.targets().get(0).keyA();
        assertEquals(
            java.util.Arrays.toString(adapter.parameters().get(k).toFloatArray()),
            java.util.Arrays.toString(again.parameters().get(k).toFloatArray()),
            "same seed, same A");
      }
    }
  }

  private static float[] floats(JsonNode array) {
    float[] v = new float[array.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) array.get(i).asDouble();
    }
    return v;
  }

  private static void near(String what, float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length, what + ": length");
    for (int i = 0; i < expected.length; i++) {
      double tol = 1e-4 * Math.max(1, Math.abs(expected[i]));
      assertEquals(expected[i], actual[i], tol, what + " [" + i + "]");
    }
  }
}
