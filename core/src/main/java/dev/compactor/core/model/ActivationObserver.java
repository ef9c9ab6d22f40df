package dev.compactor.core.model;

import ai.djl.ndarray.NDArray;

/**
 * Sees the input of every linear layer of every decoder layer during a forward pass; calibration
 * for pruning (Wanda), GPTQ and AWQ collects its statistics here.
 *
 * <p>Linear names are the Hugging Face module names relative to the decoder layer: Llama family
 * {@code self_attn.q_proj}, {@code self_attn.k_proj}, {@code self_attn.v_proj}, {@code
 * self_attn.o_proj}, {@code mlp.gate_proj}, {@code mlp.up_proj}, {@code mlp.down_proj}; GPT-2
 * {@code attn.c_attn}, {@code attn.c_proj}, {@code mlp.c_fc}, {@code mlp.c_proj}; Phi-3 {@code
 * self_attn.qkv_proj} and {@code mlp.gate_up_proj}; Mixtral the router {@code
 * block_sparse_moe.gate} (every token) and {@code block_sparse_moe.experts.E.w1|w3|w2} (only the
 * tokens routed to expert E; an expert no token chose is not observed). The weight of that linear
 * is {@code parameters().get(prefix + linearName + ".weight")} (for GPT-2 stored {@code [in, out]},
 * for Llama {@code [out, in]}).
 *
 * <p>In a MoEfied model ({@link ModelConfig#moefied()}) gate_proj and up_proj see every token's
 * input, and down_proj sees the SwiGLU activation with the expert slices a token was not routed to
 * set to 0, which is what it multiplies.
 */
@FunctionalInterface
public interface ActivationObserver {

  /**
   * Called before the linear is applied. {@code input} is fp32 {@code [tokens, in_features]} (batch
   * and sequence flattened); it is only valid during the call: copy what you keep.
   */
  void observe(int layerIndex, String linearName, NDArray input);
}
