package dev.compactor.core.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * What one pass of a {@link Transformer} computes with in place of a decoder layer's stored tensor:
 * fake quantization for quantization-aware training, a low-rank adapter added to a frozen weight.
 * The stored arrays stay as they are; gradients flow through whatever the transform computes into
 * the arrays it reads (the stored weight, learned scales, adapter matrices).
 *
 * <p>Memory: DJL attaches an op's result to its receiver's manager, and the stored weight lives as
 * long as the model. Start every chain from an array owned by {@code scope} (for example {@code
 * scope.zeros(weight.getShape()).add(weight)}) or attach each intermediate to {@code scope}, and
 * never use {@code mul(Number)} temporaries, so nothing accumulates in the model's manager.
 */
@FunctionalInterface
public interface WeightTransform {

  /**
   * The tensor layer {@code layer}'s pass uses for {@code name} (relative to the layer prefix, e.g.
   * {@code self_attn.q_proj.weight}); return {@code stored} itself to leave it unchanged. Anything
   * new lives in {@code scope}.
   */
  NDArray apply(int layer, String name, NDArray stored, NDManager scope);
}
