package dev.compactor.core.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.model.RopeScaling;
import dev.compactor.core.model.UnsupportedModelException;

/**
 * The Llama hyper-parameters a GGUF file needs, read from a Hugging Face config.json and checked:
 * missing or impossible values give a {@link CheckpointFormatException} naming the key.
 *
 * <p>RoPE scaling is written the way llama.cpp's convert_hf_to_gguf.py does for Llama: {@code
 * linear} as {@code llama.rope.scaling.type/.factor}; {@code yarn} as type, factor, {@code
 * .original_context_length} and the yarn betas (ggml's yarn assumes transformers' default attention
 * factor {@code 0.1 ln(factor) + 1} and rounded correction dims, so an explicit attention_factor,
 * mscale or truncate=false is refused); {@code llama3} as no key but a {@code rope_freqs.weight}
 * tensor (see {@link #ropeFreqs()}). Dynamic NTK has no llama.cpp equivalent and is refused.
 */
record LlamaHyperParams(
    int hidden,
    int layers,
    int heads,
    int kvHeads,
    int headDim,
    int ffn,
    int vocabSize,
    int contextLength,
    float ropeTheta,
    float rmsEps,
    boolean tiedEmbeddings,
    RopeScaling rope) {

  /** The GGUF name of llama.cpp's per-frequency RoPE divisors (llama3 scaling). */
  static final String ROPE_FREQS = "rope_freqs.weight";

  /**
   * llama.cpp's llama architecture has no sliding window, so a windowed Mistral is exported with
   * the window as its training context: within it full causal attention is exactly what the model
   * computes (convert_hf_to_gguf writes max_position_embeddings and lets longer prompts go wrong).
   */
  private static int contextLength(JsonNode c) throws CheckpointFormatException {
    int max = positive(c, "max_position_embeddings");
    JsonNode window = c.path("sliding_window");
    if (c.path("model_type").asText("").equals("mistral") && window.canConvertToInt()) {
      int w = window.intValue();
      if (w > 0 && w < max) {
        return w;
      }
    }
    return max;
  }

  static LlamaHyperParams from(JsonNode c) throws CheckpointFormatException {
    String modelType = c.path("model_type").asText("");
    switch (modelType) {
      case "llama", "mistral" -> {}
      case "qwen2", "qwen3", "phi3" ->
          throw new UnsupportedOperationException("not supported yet: GGUF export of " + modelType);
      case "mixtral" ->
          throw new UnsupportedOperationException("not supported yet: GGUF export of mixtral");
      default ->
          throw new CheckpointFormatException(
              "config.json: expected model_type 'llama' or 'mistral', found '" + modelType + "'");
    }
    int hidden = positive(c, "hidden_size");
    int heads = positive(c, "num_attention_heads");
    int kvHeads = c.has("num_key_value_heads") ? positive(c, "num_key_value_heads") : heads;
    int headDim =
        c.has("head_dim") && !c.get("head_dim").isNull() ? positive(c, "head_dim") : hidden / heads;
    if (heads % kvHeads != 0) {
      throw new CheckpointFormatException(
          "config.json: num_attention_heads "
              + heads
              + " is not a multiple of num_key_value_heads "
              + kvHeads);
    }
    if (headDim % 2 != 0) {
      throw new CheckpointFormatException("config.json: head dim " + headDim + " must be even");
    }
    RopeScaling rope;
    try {
      rope = RopeScaling.from(c, headDim);
    } catch (UnsupportedModelException e) {
      throw new UnsupportedOperationException(e.getMessage(), e);
    } catch (IllegalArgumentException e) {
      throw new CheckpointFormatException(e.getMessage());
    }
    switch (rope.type()) {
      case DYNAMIC ->
          throw new UnsupportedOperationException(
              "not supported yet: GGUF export of rope_scaling.rope_type=dynamic"
                  + " (llama.cpp has no dynamic NTK scaling)");
      case YARN -> {
        if (!rope.defaultYarnAttention()) {
          throw new UnsupportedOperationException(
              "not supported yet: GGUF export of yarn with attention factor "
                  + rope.attentionFactor()
                  + " (attention_factor/mscale; ggml assumes 0.1 ln(factor) + 1)");
        }
        if (!rope.truncate()) {
          throw new UnsupportedOperationException(
              "not supported yet: GGUF export of yarn with rope_scaling.truncate=false"
                  + " (ggml rounds the correction range)");
        }
      }
      default -> {}
    }
    return new LlamaHyperParams(
        hidden,
        positive(c, "num_hidden_layers"),
        heads,
        kvHeads,
        headDim,
        positive(c, "intermediate_size"),
        positive(c, "vocab_size"),
        contextLength(c),
        (float) rope.theta(),
        (float) c.path("rms_norm_eps").asDouble(1e-6),
        c.path("tie_word_embeddings").asBoolean(false),
        rope);
  }

  /**
   * llama.cpp's {@code rope_freqs.weight} (F32, one divisor per rotary pair) for llama3 scaling,
   * null otherwise. The original context comes from rope_scaling, where transformers reads it
   * (convert_hf_to_gguf.py reads a top-level original_max_position_embeddings and defaults to 8192,
   * which is the same number for every released Llama 3.x).
   */
  float[] ropeFreqs() {
    return rope.type() == RopeScaling.Type.LLAMA3 ? rope.llama3FreqFactors() : null;
  }

  void putMetadata(GgufWriter w) {
    w.put("llama.context_length", GgufValue.u32(contextLength));
    w.put("llama.embedding_length", GgufValue.u32(hidden));
    w.put("llama.block_count", GgufValue.u32(layers));
    w.put("llama.feed_forward_length", GgufValue.u32(ffn));
    w.put("llama.attention.head_count", GgufValue.u32(heads));
    w.put("llama.attention.head_count_kv", GgufValue.u32(kvHeads));
    w.put("llama.rope.freq_base", GgufValue.f32(ropeTheta));
    w.put("llama.attention.layer_norm_rms_epsilon", GgufValue.f32(rmsEps));
    w.put("llama.rope.dimension_count", GgufValue.u32(headDim));
    switch (rope.type()) {
      case LINEAR -> {
        w.put("llama.rope.scaling.type", GgufValue.string("linear"));
        w.put("llama.rope.scaling.factor", GgufValue.f32((float) rope.factor()));
      }
      case YARN -> {
        w.put("llama.rope.scaling.type", GgufValue.string("yarn"));
        w.put("llama.rope.scaling.factor", GgufValue.f32((float) rope.factor()));
        w.put(
            "llama.rope.scaling.original_context_length",
            GgufValue.u32(rope.originalMaxPositions()));
        w.put("llama.rope.scaling.yarn_beta_fast", GgufValue.f32((float) rope.betaFast()));
        w.put("llama.rope.scaling.yarn_beta_slow", GgufValue.f32((float) rope.betaSlow()));
      }
      default -> {}
    }
    if (headDim != hidden / heads) {
      w.put("llama.attention.key_length", GgufValue.u32(headDim));
      w.put("llama.attention.value_length", GgufValue.u32(headDim));
    }
    w.put("llama.vocab_size", GgufValue.u32(vocabSize));
  }

  private static int positive(JsonNode c, String key) throws CheckpointFormatException {
    JsonNode v = c.path(key);
    if (!v.isIntegralNumber() || v.asLong() <= 0 || v.asLong() > Integer.MAX_VALUE) {
      throw new CheckpointFormatException(
          "config.json: " + key + " must be a positive integer, found " + v);
    }
    return v.asInt();
  }
}
