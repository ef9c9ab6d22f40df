package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The Java forward against the plain-PyTorch reference, case by case: resident, streaming
 * (layer-by-layer) and KV-cache decoding.
 */
class GoldenModelTest {

  private static final String HINT =
      "if every position is off check RMSNorm/LayerNorm eps and the head (tied?); if only later"
          + " positions are off check RoPE (rotate_half, theta) or the causal mask; if one layer type"
          + " is off check biases, GQA repeat order, or the Conv1D [in,out] layout";

  @TestFactory
  Stream<DynamicTest> residentLogitsMatchReference() {
    return Golden.CASES.stream()
        .map(
            name ->
                DynamicTest.dynamicTest(
                    name,
                    () -> {
                      try (Golden g = new Golden(name);
                          Transformer model = Transformer.load(g.dir, Device.cpu());
                          NDManager m = NDManager.newBaseManager()) {
                        g.assertClose("logits", model.logits(m, g.inputIds(m)), HINT);
                      }
                    }));
  }

  @TestFactory
  Stream<DynamicTest> streamingEqualsResident() {
    return Golden.CASES.stream()
        .map(
            name ->
                DynamicTest.dynamicTest(
                    name,
                    () -> {
                      try (Golden g = new Golden(name);
                          Transformer resident = Transformer.load(g.dir, Device.cpu());
                          StreamingTransformer streaming =
                              StreamingTransformer.open(g.dir, Device.cpu());
                          NDManager m = NDManager.newBaseManager()) {
                        NDArray ids = g.inputIds(m);
                        List<String> residentSeen = new ArrayList<>();
                        List<String> streamingSeen = new ArrayList<>();
                        float[] a =
                            resident
                                .logits(
                                    m,
                                    ids,
                                    (l, n, x) -> residentSeen.add(l + n + x.sum().getFloat()))
                                .toFloatArray();
                        float[] b =
                            streaming
                                .logits(
                                    m,
                                    ids,
                                    (l, n, x) -> streamingSeen.add(l + n + x.sum().getFloat()))
                                .toFloatArray();
                        assertTrue(
                            maxAbs(a, b) <= 1e-5, name + ": streaming differs by " + maxAbs(a, b));
                        assertEquals(residentSeen, streamingSeen, "observer calls");
                        g.assertClose("logits", streaming.logits(m, ids), HINT);
                      }
                    }));
  }

  @Test
  void kvCacheDecodingMatchesReference() throws Exception {
    // The windowed cases run past their window, so the cache must drop positions correctly.
    for (String name :
        List.of(
            "llama_gqa_untied_bias_bf16",
            "gpt2_tied",
            "llama3_rope_tied",
            "qwen2_rope_yarn",
            "mistral_rope_linear",
            "llama_rope_dynamic",
            "qwen3_qk_norm",
            "mistral_window",
            "qwen2_window_layers",
            "phi3_fused",
            "phi3_partial_rotary",
            "mixtral_moe",
            "qwen2_moe_shared",
            "qwen3_moe_qk_norm")) {
      try (Golden g = new Golden(name);
          Transformer resident = Transformer.load(g.dir, Device.cpu());
          StreamingTransformer streaming = StreamingTransformer.open(g.dir, Device.cpu())) {
        for (CausalLM model : List.of(resident, streaming)) {
          // dynamic NTK past max_position_embeddings: each step's keys keep the rotation of the
          // step's length, so decoding matches transformers' cached generation, not the full pass
          checkDecoder(g, model, g.has("logits_decode") ? "logits_decode" : "logits");
        }
      }
    }
  }

  private static void checkDecoder(Golden g, CausalLM model, String expected) throws Exception {
    try (NDManager m = NDManager.newBaseManager();
        CausalLM.Decoder decoder = model.decoder(m, 2)) {
      NDArray ids = g.inputIds(m);
      long seq = ids.getShape().get(1);
      List<NDArray> parts = new ArrayList<>();
      parts.add(decoder.step(ids.get(new NDIndex(":, 0:3"))));
      for (long t = 3; t < seq; t++) {
        parts.add(decoder.step(ids.get(new NDIndex(":, {}:{}", t, t + 1))));
      }
      NDArray all = parts.get(0);
      for (int i = 1; i < parts.size(); i++) {
        all = all.concat(parts.get(i), 1);
      }
      g.assertClose(expected, all, "KV cache: check key positions / RoPE offset / mask offset");
    }
  }

  static float maxAbs(float[] a, float[] b) {
    float worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }
}
