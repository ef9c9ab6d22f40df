package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class TransformerTest {

  static final ModelConfig LLAMA_GQA = ModelConfig.llama(61, 32, 48, 2, 4, 2, 64);
  static final ModelConfig GPT2 =
      ModelConfig.fromJson(
          "{\"model_type\":\"gpt2\",\"vocab_size\":57,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
              + "\"n_positions\":40}");

  @Test
  void decoderWithKvCacheGivesTheFullForwardLogits() {
    for (ModelConfig config : List.of(LLAMA_GQA, GPT2)) {
      try (Transformer model = Transformer.randomInit(config, 7, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        int[] ids = {3, 9, 1, 22, 5, 17, 8, 30, 2, 11};
        NDArray tokens = m.create(ids, new Shape(1, ids.length));
        float[] full = model.logits(m, tokens).toFloatArray();
        List<Float> stepped = new ArrayList<>();
        try (CausalLM.Decoder d = model.decoder(m, 1)) {
          NDArray first = d.step(tokens.get(new NDIndex(":, 0:4")));
          for (float f : first.toFloatArray()) {
            stepped.add(f);
          }
          for (int t = 4; t < ids.length; t++) {
            for (float f : d.step(tokens.get(new NDIndex(":, {}:{}", t, t + 1))).toFloatArray()) {
              stepped.add(f);
            }
          }
          assertEquals(ids.length, d.position());
        }
        assertEquals(full.length, stepped.size());
        float maxErr = 0;
        for (int i = 0; i < full.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(full[i] - stepped.get(i)));
        }
        assertTrue(maxErr < 1e-5, config + ": cached decoding differs by " + maxErr);
      }
    }
  }

  @Test
  void observerSeesEveryLinearInputOfEveryLayer() {
    try (Transformer model = Transformer.randomInit(LLAMA_GQA, 1, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      List<String> seen = new ArrayList<>();
      NDArray tokens = m.create(new int[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3));
      model.logits(
          m,
          tokens,
          (layer, name, input) -> {
            seen.add(layer + ":" + name);
            long in = name.equals("mlp.down_proj") ? 48 : 32;
            assertArrayEquals(new long[] {6, in}, input.getShape().getShape());
          });
      assertEquals(14, seen.size());
      assertEquals("0:self_attn.q_proj", seen.get(0));
      assertEquals("1:mlp.down_proj", seen.get(13));
    }
  }

  @Test
  void greedyGenerationIsDeterministicAndRespectsContext() {
    try (Transformer model = Transformer.randomInit(GPT2, 3, Device.cpu())) {
      int[] a = Generation.generate(model, new int[] {1, 2, 3}, 5, GenerationSettings.greedy());
      int[] b = Generation.generate(model, new int[] {1, 2, 3}, 5, GenerationSettings.greedy());
      assertArrayEquals(a, b);
      assertEquals(5, a.length);
      int[] sampled =
          Generation.generate(model, new int[] {1, 2, 3}, 100, new GenerationSettings(1.0, 5, 42));
      assertEquals(37, sampled.length);
    }
  }
}
