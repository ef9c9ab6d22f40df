package dev.compactor.core.cascade;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.compactor.core.model.ModelConfig;
import org.junit.jupiter.api.Test;

/** FLOPs from shapes, against hand counts of the reference models' configs. */
class ModelFlopsTest {

  @Test
  void tinyLlamaByHand() throws Exception {
    // tiny-llama-v1's shape
    ModelConfig c = ModelConfig.llama(257, 128, 512, 4, 4, 2, 256);
    ModelFlops f = ModelFlops.of(c);
    // hidden 128, 4 heads of 32, 2 KV heads, inter 512, 4 layers, vocab 257
    long q = 128 * 128;
    long kv = 128 * 64;
    long o = 128 * 128;
    long mlp = 3 * 128 * 512;
    long perLayer = 2 * (q + 2 * kv + o + mlp);
    assertEquals(4 * perLayer + 2 * 128 * 257, f.linear());
    assertEquals(4 * 4 * 4 * 32, f.attentionPerPosition());
    assertEquals(f.linear() + 3 * f.attentionPerPosition(), f.token(2));
  }

  @Test
  void spanIsTheSumOfItsTokens() {
    ModelFlops f = new ModelFlops(1000, 7);
    long sum = 0;
    for (int p = 5; p < 17; p++) {
      sum += f.token(p);
    }
    assertEquals(sum, f.span(5, 17));
    assertEquals(0, f.span(3, 3));
  }

  @Test
  void mixtureOfExpertsIsRefused() {
    ModelConfig c =
        ModelConfig.llama(257, 128, 512, 4, 4, 2, 256)
            .with(
                "{\"model_type\": \"mixtral\", \"architectures\": [\"MixtralForCausalLM\"],"
                    + " \"num_local_experts\": 4, \"num_experts_per_tok\": 2}");
    assertThrows(UnsupportedOperationException.class, () -> ModelFlops.of(c));
  }
}
