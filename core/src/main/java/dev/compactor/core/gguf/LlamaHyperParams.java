package dev.compactor.core.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.RopeScaling;
import dev.compactor.core.model.UnsupportedModelException;

/**
 * The hyper-parameters a GGUF file needs, read from a Hugging Face config.json and checked: missing
 * or impossible values give a {@link CheckpointFormatException} naming the key.
 *
 * <p>{@link #arch()} is llama.cpp's architecture and the prefix of every key: {@code llama} for
 * llama, mistral and mixtral (whose experts add {@code llama.expert_count} and {@code
 * llama.expert_used_count}, as convert_hf_to_gguf.py's TextModel writes them), {@code qwen2} and
 * {@code qwen3} for those (convert_hf_to_gguf.py's Qwen2Model/Qwen3Model, which write TextModel's
 * generic keys: no {@code rope.dimension_count} and no {@code vocab_size}, and {@code
 * attention.key_length}/{@code value_length} exactly when config.json has {@code head_dim}).
 * llama.cpp's qwen2/qwen3 attend to the whole context, so a checkpoint that uses Qwen's sliding
 * window is refused rather than exported as something else. {@code qwen2moe} and {@code qwen3moe}
 * (Qwen2-MoE, Qwen3-MoE; convert_hf_to_gguf.py's Qwen2MoeModel/Qwen3MoeModel) add {@code
 * expert_count}, {@code expert_used_count}, {@code expert_feed_forward_length}
 * (moe_intermediate_size) and, for qwen2moe, {@code expert_shared_feed_forward_length}; configs
 * llama.cpp's graph cannot compute are refused (see {@link #qwenMoe}).
 *
 * <p>RoPE scaling is written the way llama.cpp's convert_hf_to_gguf.py does for Llama: {@code
 * linear} as {@code llama.rope.scaling.type/.factor}; {@code yarn} as type, factor, {@code
 * .original_context_length} and the yarn betas (ggml's yarn assumes transformers' default attention
 * factor {@code 0.1 ln(factor) + 1} and rounded correction dims, so an explicit attention_factor,
 * mscale or truncate=false is refused); {@code llama3} as no key but a {@code rope_freqs.weight}
 * tensor (see {@link #ropeFreqs()}). Dynamic NTK has no llama.cpp equivalent and is refused.
 */
record LlamaHyperParams(
    String arch,
    boolean explicitHeadDim,
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
    RopeScaling rope,
    int originalContextLength,
    int slidingWindow,
    int experts,
    int expertsUsed,
    int expertFfn,
    int sharedExpertFfn) {

  /** The GGUF name of llama.cpp's per-frequency RoPE divisors (llama3 scaling). */
  static final String ROPE_FREQS = "rope_freqs.weight";

  /**
   * llama.cpp's llama architecture has no sliding window, so a windowed Mistral or Mixtral is
   * exported with the window as its training context: within it full causal attention is exactly
   * what the model computes (convert_hf_to_gguf writes max_position_embeddings and lets longer
   * prompts go wrong).
   */
  private static int contextLength(JsonNode c) throws CheckpointFormatException {
    int max = positive(c, "max_position_embeddings");
    if (c.path("model_type").asText("").equals("phi3")) {
      return max;
    }
    JsonNode window = c.path("sliding_window");
    String type = c.path("model_type").asText("");
    if ((type.equals("mistral") || type.equals("mixtral")) && window.canConvertToInt()) {
      int w = window.intValue();
      if (w > 0 && w < max) {
        return w;
      }
    }
    return max;
  }

  static LlamaHyperParams from(JsonNode c) throws CheckpointFormatException {
    String modelType = c.path("model_type").asText("");
    String arch =
        switch (modelType) {
          case "llama", "mistral", "mixtral" -> "llama";
          case "qwen2", "qwen3", "phi3" -> modelType;
          case "qwen2_moe" -> "qwen2moe";
          case "qwen3_moe" -> "qwen3moe";
          default ->
              throw new CheckpointFormatException(
                  "config.json: expected model_type 'llama', 'mistral', 'mixtral', 'qwen2', 'qwen3',"
                      + " 'phi3', 'qwen2_moe' or 'qwen3_moe', found '"
                      + modelType
                      + "'");
        };
    if (arch.equals("phi3")) {
      String t =
          c.path("rope_scaling")
              .path("type")
              .asText(c.path("rope_scaling").path("rope_type").asText(""));
      if (t.equals("longrope") || t.equals("su")) {
        throw new UnsupportedOperationException(
            "not supported: rope_scaling.type=" + t + " (phi3)");
      }
    }
    if (arch.startsWith("qwen")) {
      refuseSlidingWindow(c, arch);
    }
    if (c.has(ModelConfig.LAYER_INTERMEDIATE_SIZES)) {
      throw new UnsupportedOperationException(
          "not supported yet: GGUF export of per-layer MLP widths ("
              + ModelConfig.LAYER_INTERMEDIATE_SIZES
              + "): llama.cpp's "
              + arch
              + " graph gives every layer one feed_forward_length (its deci arch, which reads one"
              + " per layer, is not written)");
    }
    int hidden = positive(c, "hidden_size");
    int heads = positive(c, "num_attention_heads");
    int kvHeads = c.has("num_key_value_heads") ? positive(c, "num_key_value_heads") : heads;
    boolean explicitHeadDim = c.has("head_dim") && !c.get("head_dim").isNull();
    int headDim = explicitHeadDim ? positive(c, "head_dim") : hidden / heads;
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
      rope = RopeScaling.from(c, headDim, arch.equals("phi3"));
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
      case LLAMA3 -> {
        if (!arch.equals("llama")) {
          // llama.cpp loads rope_freqs.weight for llama only; qwen would refuse the file
          throw new UnsupportedOperationException(
              "not supported yet: GGUF export of " + arch + " with llama3 RoPE scaling");
        }
      }
      default -> {}
    }
    int experts = 0;
    int expertsUsed = 0;
    int expertFfn = 0;
    int sharedExpertFfn = 0;
    if (arch.endsWith("moe")) {
      ModelConfig m = qwenMoe(c, arch);
      experts = m.numExperts();
      expertsUsed = m.expertsPerToken();
      expertFfn = m.expertIntermediateSize();
      sharedExpertFfn = m.sharedExpertIntermediateSize();
      if (arch.equals("qwen2moe") && heads * headDim != hidden) {
        // llama.cpp's qwen2moe loads attn_q and attn_output as [n_embd, n_embd]
        throw new UnsupportedOperationException(
            "not supported: GGUF export of qwen2_moe with heads * head_dim = "
                + heads * headDim
                + " != hidden_size "
                + hidden
                + " (llama.cpp's qwen2moe has square attention projections)");
      }
    } else if (modelType.equals("mixtral")) {
      // MixtralConfig's defaults, as ModelConfig reads them
      experts = c.has("num_local_experts") ? positive(c, "num_local_experts") : 8;
      expertsUsed = c.has("num_experts_per_tok") ? positive(c, "num_experts_per_tok") : 2;
      if (expertsUsed > experts) {
        throw new CheckpointFormatException(
            "config.json: num_experts_per_tok "
                + expertsUsed
                + " is more than num_local_experts "
                + experts);
      }
    }
    return new LlamaHyperParams(
        arch,
        explicitHeadDim,
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
        rope,
        c.path("original_max_position_embeddings").asInt(0),
        c.path("sliding_window").canConvertToInt() ? c.path("sliding_window").intValue() : 0,
        experts,
        expertsUsed,
        expertFfn,
        sharedExpertFfn);
  }

  /**
   * A Qwen MoE config as the model code reads it, refused where llama.cpp's graph computes
   * something else: src/models/qwen2moe.cpp and qwen3moe.cpp load {@code ffn_gate_inp} and the
   * expert stacks for every layer (no dense MLP), qwen2moe's {@code build_moe_ffn} never
   * renormalises the top-k weights and qwen3moe's always does (neither reads a key for it), and
   * qwen2moe requires the shared expert and {@code output.weight}.
   */
  private static ModelConfig qwenMoe(JsonNode c, String arch) throws CheckpointFormatException {
    ModelConfig m;
    try {
      m = ModelConfig.fromJson(c.toString());
    } catch (UnsupportedModelException e) {
      throw new UnsupportedOperationException(e.getMessage(), e);
    } catch (IllegalArgumentException e) {
      throw new CheckpointFormatException("config.json: " + e.getMessage());
    }
    String type = m.modelType();
    for (int i = 0; i < m.numLayers(); i++) {
      if (!m.sparseLayer(i)) {
        throw new UnsupportedOperationException(
            "not supported: GGUF export of "
                + type
                + " with dense layer "
                + i
                + " (mlp_only_layers/decoder_sparse_step; llama.cpp's "
                + arch
                + " makes every layer a mixture of experts)");
      }
    }
    boolean renormalises = arch.equals("qwen3moe");
    if (m.normTopkProb() != renormalises) {
      throw new UnsupportedOperationException(
          "not supported: norm_topk_prob="
              + m.normTopkProb()
              + " for GGUF export of "
              + type
              + " (llama.cpp's "
              + arch
              + (renormalises ? " always renormalises" : " never renormalises")
              + " the top-k routing weights)");
    }
    if (arch.equals("qwen2moe")) {
      if (m.sharedExpertIntermediateSize() <= 0) {
        throw new UnsupportedOperationException(
            "not supported: shared_expert_intermediate_size="
                + m.sharedExpertIntermediateSize()
                + " for GGUF export of qwen2_moe (llama.cpp's qwen2moe requires the shared"
                + " expert)");
      }
      if (m.tieWordEmbeddings()) {
        throw new UnsupportedOperationException(
            "not supported: tie_word_embeddings=true for GGUF export of qwen2_moe (llama.cpp's"
                + " qwen2moe requires output.weight)");
      }
    }
    return m;
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

  /** llama.cpp's llama arch (convert_hf_to_gguf.py's LlamaModel, which permutes q/k for RoPE). */
  boolean isLlama() {
    return arch.equals("llama");
  }

  void putMetadata(GgufWriter w) {
    String a = arch + ".";
    w.put(a + "context_length", GgufValue.u32(contextLength));
    w.put(a + "embedding_length", GgufValue.u32(hidden));
    w.put(a + "block_count", GgufValue.u32(layers));
    w.put(a + "feed_forward_length", GgufValue.u32(ffn));
    w.put(a + "attention.head_count", GgufValue.u32(heads));
    w.put(a + "attention.head_count_kv", GgufValue.u32(kvHeads));
    w.put(a + "rope.freq_base", GgufValue.f32(ropeTheta));
    w.put(a + "attention.layer_norm_rms_epsilon", GgufValue.f32(rmsEps));
    if (isLlama()) {
      w.put(a + "rope.dimension_count", GgufValue.u32(headDim));
    }
    if (arch.equals("phi3")) {
      // convert_hf_to_gguf.py's Phi3MiniModel: rope dims (head_dim * partial_rotary_factor: the
      // NEOX rope of llama.cpp's phi3 graph rotates the first n_rot dims), original context,
      // sliding window
      w.put(a + "rope.dimension_count", GgufValue.u32(rope.rotaryDim()));
      if (originalContextLength > 0) {
        w.put(a + "rope.scaling.original_context_length", GgufValue.u32(originalContextLength));
      }
      if (slidingWindow > 0) {
        w.put(a + "attention.sliding_window", GgufValue.u32(slidingWindow));
      }
    }
    switch (rope.type()) {
      case LINEAR -> {
        w.put(a + "rope.scaling.type", GgufValue.string("linear"));
        w.put(a + "rope.scaling.factor", GgufValue.f32((float) rope.factor()));
      }
      case YARN -> {
        w.put(a + "rope.scaling.type", GgufValue.string("yarn"));
        w.put(a + "rope.scaling.factor", GgufValue.f32((float) rope.factor()));
        w.put(
            a + "rope.scaling.original_context_length", GgufValue.u32(rope.originalMaxPositions()));
        w.put(a + "rope.scaling.yarn_beta_fast", GgufValue.f32((float) rope.betaFast()));
        w.put(a + "rope.scaling.yarn_beta_slow", GgufValue.f32((float) rope.betaSlow()));
      }
      default -> {}
    }
    if (isLlama() ? headDim != hidden / heads : explicitHeadDim) {
      w.put(a + "attention.key_length", GgufValue.u32(headDim));
      w.put(a + "attention.value_length", GgufValue.u32(headDim));
    }
    if (isLlama()) {
      w.put(a + "vocab_size", GgufValue.u32(vocabSize));
    }
    if (experts > 0) {
      w.put(a + "expert_count", GgufValue.u32(experts));
      w.put(a + "expert_used_count", GgufValue.u32(expertsUsed));
    }
    if (expertFfn > 0) {
      // convert_hf_to_gguf.py's Qwen2MoeModel (and Qwen3MoeModel, its subclass)
      w.put(a + "expert_feed_forward_length", GgufValue.u32(expertFfn));
    }
    if (sharedExpertFfn > 0) {
      w.put(a + "expert_shared_feed_forward_length", GgufValue.u32(sharedExpertFfn));
    }
  }

  /**
   * HF Qwen windows attention only with {@code use_sliding_window} (from {@code max_window_layers}
   * on) or with {@code layer_types}; llama.cpp's qwen2/qwen3 have no window at all.
   */
  private static void refuseSlidingWindow(JsonNode c, String arch) {
    boolean windowed = c.path("use_sliding_window").asBoolean(false);
    for (JsonNode t : c.path("layer_types")) {
      windowed |= t.asText().equals("sliding_attention");
    }
    JsonNode window = c.path("sliding_window");
    if (windowed && window.canConvertToInt() && window.intValue() > 0) {
      throw new UnsupportedOperationException(
          "not supported yet: GGUF export of "
              + arch
              + " with a sliding window of "
              + window.intValue()
              + " (llama.cpp's "
              + arch
              + " attends to the whole context)");
    }
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
