package dev.compactor.core.moe;

import dev.compactor.core.model.ModelConfig;

/**
 * Multiply-add work per token counted from the shapes (2 FLOPs per weight a token is multiplied
 * by): the decoder linears and the LM head. Attention scores and the weighted sum of values are
 * left out: they grow with the context and MoEfication does not change them. Norms, RoPE and
 * activations are left out too (O(hidden) per token).
 */
public final class MoeFlops {

  private MoeFlops() {}

  /** One layer's dense MLP: gate, up and down, {@code 2 * 3 * hidden * inter}. */
  public static long denseMlp(ModelConfig c) {
    return 2L * 3 * c.hiddenSize() * c.intermediateSize();
  }

  /** One layer's MoEfied MLP with k of E experts: the router plus k/E of the dense MLP. */
  public static long moefiedMlp(ModelConfig c, int experts, int k) {
    return 2L * c.hiddenSize() * experts + denseMlp(c) / experts * k;
  }

  /** The whole model per token with each layer's MLP costing {@code mlpPerLayer}. */
  public static long total(ModelConfig c, long mlpPerLayer) {
    long h = c.hiddenSize();
    long q = (long) c.numHeads() * c.headDim();
    long kv = (long) c.numKvHeads() * c.headDim();
    long attention = 2 * h * (q + 2 * kv) + 2 * q * h;
    return c.numLayers() * (attention + mlpPerLayer) + 2 * h * c.vocabSize();
  }
}
