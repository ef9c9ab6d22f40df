package dev.compactor.core.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.core.io.CheckpointFormatException;

/**
 * The Llama hyper-parameters a GGUF file needs, read from a Hugging Face config.json and checked:
 * missing or impossible values give a {@link CheckpointFormatException} naming the key.
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
    boolean tiedEmbeddings) {

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
      default ->
          throw new CheckpointFormatException(
              "config.json: expected model_type 'llama' or 'mistral', found '" + modelType + "'");
    }
    JsonNode scaling = c.path("rope_scaling");
    if (!scaling.isMissingNode() && !scaling.isNull()) {
      throw new UnsupportedOperationException(
          "not supported yet: rope_scaling " + scaling + " (needs rope_freqs / scaling keys)");
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
    return new LlamaHyperParams(
        hidden,
        positive(c, "num_hidden_layers"),
        heads,
        kvHeads,
        headDim,
        positive(c, "intermediate_size"),
        positive(c, "vocab_size"),
        contextLength(c),
        (float) c.path("rope_theta").asDouble(10000.0),
        (float) c.path("rms_norm_eps").asDouble(1e-6),
        c.path("tie_word_embeddings").asBoolean(false));
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
