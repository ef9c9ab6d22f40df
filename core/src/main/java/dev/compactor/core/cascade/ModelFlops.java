package dev.compactor.core.cascade;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;

/**
 * Forward FLOPs of one token counted from a model's shapes, 2 per multiply-add: every decoder
 * layer's linear weights as the checkpoint stores them (a low-rank factorized linear counts its two
 * factors) and the LM head, plus attention's scores and weighted sum of values, {@code 4 * heads *
 * headDim} per layer per attended position (causal: the token at position {@code p} attends to
 * {@code p + 1} positions; a sliding window is not taken into account). Norms, RoPE and activations
 * (O(hidden) per token) are left out. Zeros of a pruned model are counted: dense kernels multiply
 * them too.
 *
 * @param linear FLOPs of the linears and the head, the same for every token
 * @param attentionPerPosition FLOPs of attention per attended position, all layers
 */
public record ModelFlops(long linear, long attentionPerPosition) {

  /** The shapes of {@code config}; mixture-of-experts models are refused. */
  public static ModelFlops of(ModelConfig config) {
    if (config.moe() || config.moefied()) {
      throw new UnsupportedOperationException(
          "not supported yet: FLOPs of a mixture-of-experts model (only k experts run per token)");
    }
    long linear = 0;
    for (int i = 0; i < config.numLayers(); i++) {
      for (Layout.Spec s : Layout.layer(config, i)) {
        if (s.shape().length == 2) {
          linear += 2 * s.shape()[0] * s.shape()[1];
        }
      }
    }
    linear += 2L * config.hiddenSize() * config.vocabSize();
    long attention = 4L * config.numLayers() * config.numHeads() * config.headDim();
    return new ModelFlops(linear, attention);
  }

  /** FLOPs of the token at {@code position} (0-based) with a KV cache holding the earlier ones. */
  public long token(int position) {
    return linear + attentionPerPosition * (position + 1L);
  }

  /** FLOPs of feeding positions {@code [from, to)} (a prefill, or a KV cache catching up). */
  public long span(int from, int to) {
    long n = to - from;
    long attended = (long) to * (to + 1) / 2 - (long) from * (from + 1) / 2;
    return linear * n + attentionPerPosition * attended;
  }
}
