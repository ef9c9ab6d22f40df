package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.model.ModelConfig;
import org.junit.jupiter.api.Test;

/** The Gram-matrix part of the GPTQ/AWQ estimate, against sums worked out by hand. */
class StepMemoryTest {

  /**
   * A Qwen2-MoE with a dense layer 0 (MLP width 96) and a sparse layer 1 (6 experts of width 32, a
   * shared expert of width 48); hidden 64, 4 heads of 16.
   */
  private static final ModelConfig QWEN2_MOE =
      ModelConfig.fromJson(
          """
          {"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 96,
           "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48,
           "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
           "num_experts": 6, "num_experts_per_tok": 2, "decoder_sparse_step": 1,
           "mlp_only_layers": [0], "vocab_size": 100, "max_position_embeddings": 128}
          """);

  @Test
  void gptqHoldsTheLargestTrueSequentialStageOfAnyLayer() {
    // dense layer: 64^2 (q/k/v), 64^2 (o), 64^2 (gate/up), 96^2 (down);
    // sparse layer: 64^2, 64^2, 6 experts' and the shared expert's gate/up 7 * 64^2,
    // their downs 6 * 32^2 + 48^2. Largest: 7 * 64^2; plus the widest linear's Hessian and
    // inverse (down_proj, 96 inputs).
    long expected = (7L * 64 * 64 + 2L * 96 * 96) * 8;
    assertEquals(expected, StepMemory.gramBytes(QWEN2_MOE, true));
  }

  @Test
  void awqHoldsEveryGroupOfTheLargestLayer() {
    // sparse layer in one stage: 64^2 + 64^2 + 6 * (64^2 + 32^2) + 64^2 + 48^2;
    // the dense one: 3 * 64^2 + 96^2 is smaller
    long sparse = 3L * 64 * 64 + 6L * (64 * 64 + 32 * 32) + 48L * 48;
    assertTrue(sparse > 3L * 64 * 64 + 96 * 96);
    assertEquals((sparse + 2L * 96 * 96) * 8, StepMemory.gramBytes(QWEN2_MOE, false));
  }

  @Test
  void qwen3MoeGramsFollowItsExpertsNotTheUnusedDenseWidth() {
    // Qwen3-30B-A3B's shape: every layer sparse, so its intermediate_size of 6144 is never a
    // linear's input; the widest stage is 128 experts' gate/up reading 2048 features, the widest
    // linear o_proj reading 32 * 128
    ModelConfig m =
        ModelConfig.fromJson(
            """
            {"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,
             "moe_intermediate_size": 768, "num_attention_heads": 32, "head_dim": 128,
             "num_key_value_heads": 4, "num_hidden_layers": 48, "num_experts": 128,
             "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
             "vocab_size": 151936, "max_position_embeddings": 40960}
            """);
    long expected = (128L * 2048 * 2048 + 2L * 4096 * 4096) * 8;
    assertEquals(expected, StepMemory.gramBytes(m, true));
  }
}
